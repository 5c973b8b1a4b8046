"""The one place where the order is written: parse -> clean -> fingerprint -> index -> publish.

CPU work (parsing, cleaning, hashing) runs in the worker pool; the index step, which also
publishes, is one Lua call per article, pipelined so a chunk costs one Redis round trip.

Every document has a deadline (``doc_timeout_s``) for cleaning and fingerprinting, counted
from the moment a worker starts on it. A document past it fails alone with
``extraction_timeout``: for one article the request answers 422; in a batch only that item
fails, the items after it in its chunk continue on another worker. The worker that ran it is
killed and replaced (see :mod:`service.pool`). Parsing a batch body has no deadline: it is
linear in a body whose size is already capped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from .clean.learned import NOTHING_LEARNED, LearnedCache, LearnedSet
from .errors import ExtractionTimeout, TaskTimeout, WorkerCrashed
from .index import Store
from .metrics import Metrics
from .models import (
    ArticlePayload,
    Decision,
    DryRunArticle,
    DryRunDecision,
    ItemError,
    Params,
    Prepared,
    RemovedSegment,
)
from .pool import WorkerPool
from .prepare import parse_batch, prepare_items, prepare_single, warm
from .settings import DEFAULT_DOC_TIMEOUT_S

log = logging.getLogger(__name__)

T = TypeVar("T")

# Articles per Redis round trip: large enough to amortise the trip, small enough that one
# batch does not hold Redis's single thread for long.
INDEX_CHUNK = 200
# Batch items per worker task. A worker finishes its task before it takes the next one, so
# this bounds how long a single-article request (queued ahead of batch tasks) can wait for
# a worker: a few articles' worth, not half a batch. Each task costs ~0.3 ms of hand-over.
WORKER_TASK_ITEMS = 8

# How long a source's learned set is reused before it is read again. This replica drops it
# as soon as one of its own decisions changes the set; other replicas see the change within
# this delay.
LEARNED_CACHE_S = 1.0
LEARNED_CACHE_DIGESTS = 500_000
# A learned set sent to a worker with an article made again rides along with the next tasks
# too, this many per worker, so that every worker soon keeps it: which worker takes a task
# is not ours to choose, and with one request at a time one worker can take every first trip
# while the other takes every second one. At most MAX_HINTS sets ride at once.
HINT_TASKS_PER_WORKER = 2
MAX_HINTS = 16

Outcome = Decision | ItemError


class Pipeline:
    """Runs articles through the stages; shared by the HTTP API and the seed loader."""

    def __init__(
        self,
        store: Store,
        pool: WorkerPool,
        params: Params,
        *,
        max_batch_items: int,
        metrics: Metrics,
        doc_timeout_s: float = DEFAULT_DOC_TIMEOUT_S,
    ) -> None:
        self.store = store
        self.pool = pool
        self.params = params
        self.max_batch_items = max_batch_items
        self.metrics = metrics
        self.doc_timeout_s = doc_timeout_s
        self._learned = LearnedCache(LEARNED_CACHE_DIGESTS)
        self._hints: dict[str, tuple[LearnedSet, int]] = {}

    @contextmanager
    def _pending(self) -> Iterator[None]:
        self.metrics.pool_pending.inc()
        try:
            yield
        finally:
            self.metrics.pool_pending.dec()

    async def _offload(
        self, fn: Callable[..., T], *args: Any, timeout_s: float | None, urgent: bool = False
    ) -> T:
        with self._pending():
            return await self.pool.run(fn, *args, timeout_s=timeout_s, urgent=urgent)

    async def ingest_one(self, raw: bytes, *, dry_run: bool) -> Outcome:
        """One request body holding one article. Body-level problems raise InputError."""
        prepared: Prepared | ItemError
        try:
            prepared = await self._offload(
                prepare_single,
                raw,
                self.params,
                None,
                self._take_hints(),
                timeout_s=self.doc_timeout_s,
                urgent=True,
            )
        except (TaskTimeout, WorkerCrashed) as exc:
            # Which field to name: parse the body again, off the event loop. Only this rare
            # path pays for it; the body's size is capped by max_body_bytes.
            field = await asyncio.to_thread(_body_field, raw)
            prepared = self._worker_failure(exc, field, index=None)
        (prepared,) = await self._learned_pass([prepared], [raw], single=True)
        return (await self._decide([prepared], dry_run=dry_run))[0]

    async def ingest_batch(self, raw: bytes, *, ndjson: bool, dry_run: bool) -> list[Outcome]:
        """A batch body; each item succeeds or fails alone, results in input order."""
        items = await self._offload(_parse_batch, raw, ndjson, self.max_batch_items, timeout_s=None)
        prepared = await self._prepare_chunk(items)
        prepared = await self._learned_pass(prepared, items, single=False)
        return await self._decide(prepared, dry_run=dry_run)

    async def _learned_sets(self, sources: set[str]) -> dict[str, LearnedSet]:
        now = time.monotonic()
        found = {s: hit for s in sources if (hit := self._learned.get(s, now)) is not None}
        missing = sources - found.keys()
        if missing:
            fetched = {
                source: LearnedSet.of(digests)
                for source, digests in (await self.store.learned_for(missing)).items()
            }
            for source, learned in fetched.items():
                self._learned.put(source, learned, now + LEARNED_CACHE_S)
            found.update(fetched)
        return found

    async def _learned_pass(
        self, prepared: list[Prepared | ItemError], inputs: Sequence[Any], *, single: bool
    ) -> list[Prepared | ItemError]:
        """Make sure every answer was cleaned with the learned set its source holds now.

        The source of an article is known once a worker has parsed it, and what the source
        has learned is in Redis, so the worker cleans with the set it was last sent for the
        source (service.prepare.learned_for) and names its version. An answer made with another
        set, or with none where the current one holds some of the article's segments, is made
        again from ``inputs`` (the request body, or the batch's items) with the current set,
        which that worker then keeps. In steady state that is no second trip at all; there is
        one for a worker's first article of a source and after the source's set changed.
        """
        ready = [p for p in prepared if isinstance(p, Prepared) and p.segments]
        if not ready:
            return prepared
        learned = await self._learned_sets({p.source for p in ready})
        todo: list[tuple[int, str, tuple[Any, LearnedSet]]] = []
        for position, item in enumerate(prepared):
            if not isinstance(item, Prepared) or not item.segments:
                continue
            current = learned.get(item.source, NOTHING_LEARNED)
            wanted = current.version if current.applies_to(item.segments) else None
            if item.learned_version != wanted:
                todo.append((position, item.field, (inputs[position], current)))
                self._hint(item.source, current)
        if not todo:
            return prepared
        self.metrics.learned_again.inc(len(todo))
        result = list(prepared)
        chunks = [todo[i : i + WORKER_TASK_ITEMS] for i in range(0, len(todo), WORKER_TASK_ITEMS)]

        async def run(chunk: list[tuple[int, str, tuple[Any, LearnedSet]]]) -> None:
            with self._pending():
                outcomes = await self.pool.run_each(
                    _prepare_single_with if single else _prepare_one_with,
                    [pair for _, _, pair in chunk],
                    self.params,
                    timeout_s=self.doc_timeout_s,
                    urgent=single,
                )
            for (position, field, _), outcome in zip(chunk, outcomes, strict=True):
                result[position] = self._task_outcome(outcome, field, position)

        await asyncio.gather(*(run(chunk) for chunk in chunks))
        return result

    def _hint(self, source: str, learned: LearnedSet) -> None:
        self._hints.pop(source, None)
        self._hints[source] = (learned, HINT_TASKS_PER_WORKER * self.pool.size)
        while len(self._hints) > MAX_HINTS:
            del self._hints[next(iter(self._hints))]

    def _take_hints(self) -> tuple[tuple[str, LearnedSet], ...]:
        """The learned sets to send along with the next task (see HINT_TASKS_PER_WORKER)."""
        if not self._hints:
            return ()
        hints = tuple((source, learned) for source, (learned, _) in self._hints.items())
        for source, (learned, left) in list(self._hints.items()):
            if left > 1:
                self._hints[source] = (learned, left - 1)
            else:
                del self._hints[source]
        return hints

    async def _prepare_chunk(self, chunk: list[Any]) -> list[Prepared | ItemError]:
        """Prepare batch items, each with its own deadline, in worker tasks of a few items."""
        parts = [chunk[i : i + WORKER_TASK_ITEMS] for i in range(0, len(chunk), WORKER_TASK_ITEMS)]
        with self._pending():
            answers = await asyncio.gather(
                *(
                    self.pool.run_each(
                        _prepare_one,
                        part,
                        self.params,
                        self._take_hints(),
                        timeout_s=self.doc_timeout_s,
                    )
                    for part in parts
                )
            )
        results = [r for answer in answers for r in answer]
        return [
            self._task_outcome(result, _item_field(obj), position)
            for position, (obj, result) in enumerate(zip(chunk, results, strict=True))
        ]

    def _task_outcome(
        self, result: Prepared | ItemError | Exception, field: str, position: int
    ) -> Prepared | ItemError:
        """One item's answer from a worker task, its failures turned into item errors."""
        if isinstance(result, Prepared | ItemError):
            return result
        if isinstance(result, TaskTimeout | WorkerCrashed):
            return self._worker_failure(result, field, position)
        # The worker functions turn every failure of an item into an ItemError; this is a
        # failure around it (the worker could not read the task, say).
        log.error(
            "unexpected failure processing an article", exc_info=result, extra={"index": position}
        )
        message = "the article could not be processed"
        return ItemError(422, "unprocessable", message, [{"field": field, "message": message}])

    def _worker_failure(
        self, exc: TaskTimeout | WorkerCrashed, field: str, index: int | None
    ) -> ItemError:
        """The answer for a document that overran its deadline or killed its worker."""
        if isinstance(exc, TaskTimeout):
            timeout = ExtractionTimeout(self.doc_timeout_s, field)
            log.warning(
                "document past its deadline; its worker was killed and is being replaced",
                extra={"field": field, "index": index, "limit_s": timeout.limit_s, "pid": exc.pid},
            )
            detail = {"field": field, "message": timeout.message, "limit_s": timeout.limit_s}
            return ItemError(422, timeout.reason, timeout.message, [detail])
        log.error(
            "worker died on a document; it is being replaced",
            extra={"field": field, "index": index, "pid": exc.pid, "exitcode": exc.exitcode},
        )
        message = "the article could not be processed: its worker process died"
        return ItemError(422, "unprocessable", message, [{"field": field, "message": message}])

    async def _decide(
        self, prepared: Sequence[Prepared | ItemError], *, dry_run: bool
    ) -> list[Outcome]:
        ready = [p for p in prepared if isinstance(p, Prepared)]
        decided: list[Decision] = []
        for start in range(0, len(ready), INDEX_CHUNK):
            chunk = ready[start : start + INDEX_CHUNK]
            chunk_decisions, changed = await self.store.decide_and_learn(chunk, dry_run=dry_run)
            decided.extend(chunk_decisions)
            for source in changed:
                self._learned.forget(source)
        by_position = iter(decided)
        results: list[Outcome] = []
        for item in prepared:
            if isinstance(item, ItemError):
                self.metrics.child(self.metrics.rejected, item.code).inc()
                results.append(item)
                continue
            decision = next(by_position)
            if dry_run:
                decision = _with_article(decision, item)
            elif not decision.replayed:
                self._count(decision, item)
            results.append(decision)
        return results

    def _count(self, decision: Decision, item: Prepared) -> None:
        m = self.metrics
        m.child(m.articles, decision.status, decision.relation or "none").inc()
        m.child(m.by_source, m.source_label(item.source), decision.status).inc()
        for layer, count in Counter(layer for _text, layer, _reason in item.removed).items():
            m.child(m.removed, layer).inc(count)


# --- run in the worker processes -------------------------------------------------------------


def warm_worker(params: Params) -> int:
    """The pool's initializer: warm every cleaning path (and import this module) once."""
    # Passing this function, not prepare.warm, makes each worker import service.pipeline at
    # start-up, so the first batch does not pay for the import inside its deadline.
    return warm(params)


def _parse_batch(raw: bytes, ndjson: bool, max_items: int) -> list[Any]:
    return parse_batch(raw, ndjson=ndjson, max_items=max_items)


def _prepare_one(
    obj: Any, params: Params, hints: tuple[tuple[str, LearnedSet], ...] = ()
) -> Prepared | ItemError:
    return prepare_items([obj], params, hints=hints)[0]


def _prepare_one_with(pair: tuple[Any, LearnedSet], params: Params) -> Prepared | ItemError:
    """A batch item prepared again with its source's current learned set."""
    return prepare_items([pair[0]], params, pair[1])[0]


def _prepare_single_with(pair: tuple[bytes, LearnedSet], params: Params) -> Prepared | ItemError:
    """A one-article request body prepared again with its source's current learned set."""
    return prepare_single(pair[0], params, pair[1])


# --- run in the service process ---------------------------------------------------------------


def _item_field(obj: Any) -> str:
    """The field holding the body of a parsed batch item: ``html`` or ``text``."""
    return "html" if isinstance(obj, dict) and obj.get("html") is not None else "text"


def _body_field(raw: bytes) -> str:
    """The body field of a one-article request body (``body`` if it does not parse)."""
    try:
        return _item_field(json.loads(raw))
    except (ValueError, RecursionError):
        return "body"


def _with_article(decision: Decision, item: Prepared) -> DryRunDecision:
    payload = ArticlePayload.model_validate_json(item.payload_json)
    article = DryRunArticle(
        **payload.model_dump(),
        removed=[
            RemovedSegment(text=text, layer=layer, reason=reason)
            for text, layer, reason in item.removed
        ],
    )
    return DryRunDecision(**decision.model_dump(), article=article)
