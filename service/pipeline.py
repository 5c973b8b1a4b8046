"""The one place where the order is written: parse -> clean -> fingerprint -> index -> publish.

CPU work (parsing, cleaning, hashing) runs in the process pool; the index step, which also
publishes, is one Lua call per article, pipelined so a chunk costs one Redis round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, TypeVar

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
from .prepare import parse_batch, prepare_items, prepare_single

T = TypeVar("T")

# Articles per Redis round trip: large enough to amortise the trip, small enough that one
# batch does not hold Redis's single thread for long.
INDEX_CHUNK = 200

Outcome = Decision | ItemError


class Pipeline:
    """Runs articles through the stages; shared by the HTTP API and the seed loader."""

    def __init__(
        self,
        store: Store,
        executor: Executor,
        params: Params,
        *,
        workers: int,
        max_batch_items: int,
        metrics: Metrics,
    ) -> None:
        self.store = store
        self.executor = executor
        self.params = params
        self.workers = max(1, workers)
        self.max_batch_items = max_batch_items
        self.metrics = metrics

    async def _offload(self, fn: Callable[..., T], *args: Any) -> T:
        self.metrics.pool_pending.inc()
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        finally:
            self.metrics.pool_pending.dec()

    async def ingest_one(self, raw: bytes, *, dry_run: bool) -> Outcome:
        """One request body holding one article. Body-level problems raise InputError."""
        prepared = await self._offload(prepare_single, raw, self.params)
        return (await self._decide([prepared], dry_run=dry_run))[0]

    async def ingest_batch(self, raw: bytes, *, ndjson: bool, dry_run: bool) -> list[Outcome]:
        """A batch body; each item succeeds or fails alone, results in input order."""
        items = await self._offload(_parse_batch, raw, ndjson, self.max_batch_items)
        chunks = _split(items, self.workers)
        prepared_chunks = await asyncio.gather(
            *(self._offload(prepare_items, chunk, self.params) for chunk in chunks)
        )
        prepared = [p for chunk in prepared_chunks for p in chunk]
        return await self._decide(prepared, dry_run=dry_run)

    async def _decide(
        self, prepared: Sequence[Prepared | ItemError], *, dry_run: bool
    ) -> list[Outcome]:
        ready = [p for p in prepared if isinstance(p, Prepared)]
        decided: list[Decision] = []
        for start in range(0, len(ready), INDEX_CHUNK):
            chunk = ready[start : start + INDEX_CHUNK]
            decided.extend(await self.store.decide_many(chunk, dry_run=dry_run))
        by_position = iter(decided)
        results: list[Outcome] = []
        for item in prepared:
            if isinstance(item, ItemError):
                self.metrics.rejected.labels(item.code).inc()
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
        self.metrics.articles.labels(decision.status, decision.relation or "none").inc()
        for _text, layer, _reason in item.removed:
            self.metrics.removed.labels(layer).inc()


def _parse_batch(raw: bytes, ndjson: bool, max_items: int) -> list[Any]:
    return parse_batch(raw, ndjson=ndjson, max_items=max_items)


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    """Contiguous, nearly equal chunks, so results come back in input order."""
    size = max(1, -(-len(items) // parts))
    return [items[i : i + size] for i in range(0, len(items), size)]


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
