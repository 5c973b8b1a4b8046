"""The Redis side: the LSH index, the atomic decide-and-publish step, stored articles.

Every Redis command of the ingest path goes through :class:`Store`; its Lua scripts live in
``scripts/`` beside this module. Redis-py exceptions are translated here into
:class:`StoreUnavailable` so the API can answer 503 without knowing redis-py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .errors import IndexMismatch, StoreUnavailable
from .fingerprint import SETTABLE_META
from .keys import Keys, source_digest
from .models import ArticlePayload, Decision, Prepared, StoredArticle

log = logging.getLogger(__name__)

T = TypeVar("T")

# A bucket holding more ids than this is a template or a spam wave, not a story; checking
# its newest entries keeps one decision's cost bounded whatever the index holds.
MAX_CANDIDATES_PER_BUCKET = 64


@dataclass(frozen=True, slots=True)
class LearnParams:
    """How the learned layer counts a source's segments (see ``scripts/learn.lua``)."""

    min_articles: int = 3
    min_share: float = 0.5
    window_s: int = 2 * 24 * 3600
    # Bounds on what one source can make Redis hold: new segments per epoch hash, and the
    # learned set (the freshest are kept).
    max_fields: int = 100_000
    max_learned: int = 2000

    @property
    def epoch_ms(self) -> int:
        return max(1, self.window_s * 1000 // 2)


Call = tuple["_Script", list[str], list[Any]]


def _script(name: str) -> str:
    return resources.files("service").joinpath("scripts", name).read_text(encoding="utf-8")


def _pack(digests: Sequence[str]) -> tuple[int, str]:
    """Digests of one width as one argument (see decide.lua), and that width (0 for none)."""
    if not digests:
        return 0, ""
    width = len(digests[0])
    if width == 0 or any(len(d) != width for d in digests):
        raise ValueError("digests sent packed must all have the same, non-zero width")
    return width, "".join(digests)


def _pack_binary(digests: Sequence[str]) -> tuple[int, bytes]:
    """Hex digests of one width as one argument of their bytes, and the width in bytes.

    The index stores digests binary (see decide.lua): half the bytes of hex.
    """
    width, packed = _pack(digests)
    if width % 2:
        raise ValueError("digests sent binary must have an even number of hex digits")
    return width // 2, bytes.fromhex(packed)


def connect(url: str, *, timeout_s: float) -> aioredis.Redis:
    """A client whose failures surface fast: an outage must turn into a 503, not a hang.

    One retry covers a pooled connection that a Redis restart left dead; retrying the
    decide step is safe because a replay of an accepted article publishes nothing.
    Timeouts are not retried: a hung server (stopped, swapping, a long script) had the
    whole ``timeout_s`` already, and a retry doubled the wait a client sees before its 503
    (measured 1.14 s with timeout_s=0.5 against a SIGSTOPped server, tests/test_outage.py).
    """
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=min(timeout_s, 1.0),
        # supported_errors replaces redis-py's default (connection errors and timeouts).
        retry=Retry(
            ExponentialBackoff(cap=0.2, base=0.05),
            retries=1,
            supported_errors=(RedisConnectionError,),
        ),
        health_check_interval=30,
    )


class _Script:
    """A Lua script called by its SHA, loaded again when the server has lost it."""

    def __init__(self, name: str) -> None:
        self.source = _script(name)
        self.sha = hashlib.sha1(self.source.encode("utf-8"), usedforsecurity=False).hexdigest()

    async def load(self, client: aioredis.Redis) -> None:
        await client.script_load(self.source)


class Store:
    """The index and streams of one key prefix on one Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        *,
        threshold: float,
        window_s: int,
        stream_maxlen: int,
        meta: dict[str, str],
        timeout_s: float | None = None,
        learn: LearnParams | None = None,
        containment: float = 0.8,
    ) -> None:
        self.client = client
        # The most one operation may take in all, connection, retry and NOSCRIPT reload
        # included; None for tools that may wait (reset).
        self.timeout_s = timeout_s
        self.meta = meta
        self._meta_checked = False
        self.keys = keys
        self.threshold = threshold
        self.window_ms = window_s * 1000
        self.stream_maxlen = stream_maxlen
        self.learn = learn or LearnParams()
        self.containment = containment
        self._decide = _Script("decide.lua")
        self._learn = _Script("learn.lua")
        self._init_meta = _Script("init_meta.lua")

    @contextlib.asynccontextmanager
    async def _deadline(self) -> AsyncIterator[None]:
        """Bound a whole operation by ``timeout_s``, so a 503 comes within it whatever fails.

        redis-py bounds each connect and each read on its own; an operation of several
        steps (meta check, pipeline, script reload, second pipeline) could otherwise take
        a multiple of the timeout. Cancelling a redis-py call is safe: a connection
        interrupted mid-command is disconnected, not returned to the pool half-read.
        """
        try:
            async with asyncio.timeout(self.timeout_s):
                yield
        except TimeoutError as exc:
            raise StoreUnavailable(f"Redis did not answer within {self.timeout_s:g} s") from exc

    async def ping(self) -> None:
        try:
            async with self._deadline():
                await self.client.ping()
        except RedisError as exc:
            raise StoreUnavailable(f"Redis is unreachable: {exc}") from exc

    async def ensure_meta(self) -> dict[str, str]:
        """Record the fingerprint parameters of a new index; refuse to mix with other ones."""
        meta = self.meta
        args = [v for pair in sorted(meta.items()) for v in pair]
        try:
            async with self._deadline():
                raw = await self._call(self._init_meta, [self.keys.index_meta], args)
        except ResponseError as exc:
            raise StoreUnavailable(f"Redis refused the index setup: {exc}") from exc
        recorded = {raw[i].decode(): raw[i + 1].decode() for i in range(0, len(raw), 2)}
        differing = {k: (recorded.get(k), v) for k, v in meta.items() if recorded.get(k) != v}
        if differing:
            listed = ", ".join(
                f"{k}: index has {a!r}, settings say {b!r}"
                for k, (a, b) in sorted(differing.items())
            )
            remedy = (
                "use the recorded parameters, another key_prefix, or `news-ingest reset`"
                if differing.keys() <= SETTABLE_META
                else "this version fingerprints differently: use another key_prefix, or "
                "`news-ingest reset`"
            )
            raise IndexMismatch(
                f"the index under prefix {self.keys.prefix!r} was built with other fingerprint "
                f"parameters ({listed}). Signatures made differently are not comparable: "
                f"{remedy} to drop it."
            )
        self._meta_checked = True
        return recorded

    async def _call(self, script: _Script, keys: list[str], args: list[Any]) -> Any:
        try:
            try:
                return await self.client.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:
                await script.load(self.client)
                return await self.client.evalsha(script.sha, len(keys), *keys, *args)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise StoreUnavailable(f"Redis is unreachable: {exc}") from exc

    def _decide_call(self, item: Prepared, dry_run: bool) -> Call:
        k = self.keys
        keys = [
            k.article(item.id),
            k.content_hash(item.content_hash),
            k.articles_stream,
            k.duplicates_stream,
        ]
        args: list[Any] = [
            k.ns,
            item.id,
            item.request_hash,
            item.content_hash,
            item.signature,
            repr(self.threshold),
            self.window_ms,
            self.stream_maxlen,
            "1" if dry_run else "0",
            item.payload_json,
            item.source,
            item.url or "",
            MAX_CANDIDATES_PER_BUCKET,
            item.shingle_count,
            repr(self.containment),
            item.url_key or "",
            len(item.bands),
            _pack_binary(item.bands)[1],
            *_pack_binary(item.anchors),
        ]
        return self._decide, keys, args

    def _learn_call(self, item: Prepared) -> Call:
        k, learn = self.keys, self.learn
        sd = source_digest(item.source)
        keys = [k.article(item.id), k.source(sd), k.learned(sd)]
        args: list[Any] = [
            k.ns,
            sd,
            learn.epoch_ms,
            learn.min_articles,
            repr(learn.min_share),
            learn.max_fields,
            learn.max_learned,
            *_pack(item.segments),
        ]
        return self._learn, keys, args

    async def decide_many(self, items: Sequence[Prepared], *, dry_run: bool) -> list[Decision]:
        """Decide on each article in order, in one round trip.

        The script calls run one after another on the server, so a later item of the batch
        is checked against the earlier ones it already indexed.
        """
        decisions, _ = await self.decide_and_learn(items, dry_run=dry_run)
        return decisions

    async def decide_and_learn(
        self, items: Sequence[Prepared], *, dry_run: bool
    ) -> tuple[list[Decision], set[str]]:
        """:meth:`decide_many`, also counting each unique article's segments for its source.

        Answers the decisions and the sources whose learned set changed.
        """
        if not items:
            return [], set()
        calls: list[Call] = []
        decide_at: list[int] = []
        learn_at: dict[int, str] = {}  # call position -> the source it counts for
        for item in items:
            decide_at.append(len(calls))
            calls.append(self._decide_call(item, dry_run))
            if not dry_run and item.segments:
                # Right behind its decision, in the same round trip: the script counts the
                # article only if the decision made it unique.
                learn_at[len(calls)] = item.source
                calls.append(self._learn_call(item))
        async with self._deadline():
            results = await self._run_calls(calls)
        learn_failures = [results[i] for i in learn_at if isinstance(results[i], Exception)]
        changed = {source for i, source in learn_at.items() if results[i] == 1}
        if learn_failures:
            # Learning is best effort: a lost count delays a template's removal by an
            # article, while failing the request would lose an article already published.
            log.warning("counting segments for the learned layer failed: %s", learn_failures[0])
        decisions = []
        for r in (results[i] for i in decide_at):
            if isinstance(r, Exception):
                raise StoreUnavailable(f"the decide step failed: {r}") from r
            decision_json, replayed = r
            decision = Decision.model_validate_json(decision_json)
            decision.replayed = bool(replayed)
            decisions.append(decision)
        return decisions, changed

    async def _run_calls(self, calls: list[Call]) -> list[Any]:
        if not self._meta_checked:
            await self.ensure_meta()
        results = await self._pipeline(calls)
        if any(isinstance(r, NoScriptError) for r in results):
            # The server lost its scripts (a restart, SCRIPT FLUSH). A call refused with
            # NOSCRIPT did nothing, so running it again cannot publish or count twice. A
            # server that lost its scripts may have lost its data too: record the meta again.
            self._meta_checked = False
            await self.ensure_meta()
            for script in {call[0].sha: call[0] for call in calls}.values():
                await self._wrap(script.load(self.client))
            retry_at = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            again = await self._pipeline([calls[i] for i in retry_at])
            for i, r in zip(retry_at, again, strict=True):
                results[i] = r
        return results

    async def _pipeline(self, calls: list[Call]) -> list[Any]:
        async def run() -> list[Any]:
            async with self.client.pipeline(transaction=False) as pipe:
                for script, keys, args in calls:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                result: list[Any] = await pipe.execute(raise_on_error=False)
                return result

        return await self._wrap(run())

    async def _wrap(self, awaitable: Awaitable[T]) -> T:
        try:
            async with self._deadline():
                return await awaitable
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise StoreUnavailable(f"Redis is unreachable: {exc}") from exc

    async def learned_for(self, sources: Iterable[str]) -> dict[str, frozenset[str]]:
        """The learned segment digests of each source, freshest first, in one round trip."""
        wanted = list(dict.fromkeys(sources))
        if not wanted:
            return {}

        async def run() -> list[Any]:
            async with self.client.pipeline(transaction=False) as pipe:
                for source in wanted:
                    key = self.keys.learned(source_digest(source))
                    pipe.zrevrange(key, 0, self.learn.max_learned - 1)
                result: list[Any] = await pipe.execute()
                return result

        found = await self._wrap(run())
        return {
            source: frozenset(d.decode() for d in digests)
            for source, digests in zip(wanted, found, strict=True)
        }

    async def get_article(self, article_id: str) -> StoredArticle | None:
        """The stored article and its decision, or None when unknown or expired."""
        raw = await self._wrap(
            self.client.hmget(self.keys.article(article_id), ["decision", "article"])
        )
        if raw[0] is None or raw[1] is None:
            return None
        return StoredArticle(
            decision=Decision.model_validate_json(raw[0]),
            article=ArticlePayload.model_validate_json(raw[1]),
        )

    async def stream_lengths(self) -> dict[str, int]:
        pipe_result = await self._wrap(self._xlens())
        return {
            self.keys.articles_stream: int(pipe_result[0]),
            self.keys.duplicates_stream: int(pipe_result[1]),
        }

    async def _xlens(self) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xlen(self.keys.articles_stream)
            pipe.xlen(self.keys.duplicates_stream)
            result: list[Any] = await pipe.execute()
            return result

    async def reset(self) -> int:
        """Delete every key of this prefix; answers how many went."""
        deleted = 0
        batch: list[bytes] = []
        async for key in self.client.scan_iter(match=self.keys.all_pattern(), count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(await self._wrap(self.client.unlink(*batch)))
                batch.clear()
        if batch:
            deleted += int(await self._wrap(self.client.unlink(*batch)))
        return deleted
