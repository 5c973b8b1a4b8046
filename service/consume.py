"""A consumer-group helper for downstream users of the streams: at-least-once delivery.

    async with redis.asyncio.Redis.from_url(url) as client:
        consumer = StreamConsumer(client, "news:articles", group="indexer", consumer="indexer-1")
        await consumer.run(handle)      # handle(event) -> awaitable; raise to retry later

An entry is acknowledged only after the handler returned. Entries left pending by a consumer
that died are reclaimed with XAUTOCLAIM once idle for ``min_idle_ms``; an entry delivered
``max_deliveries`` times without success goes to a dead-letter stream with the reason, so one
poison event cannot stall the group. A group that Redis lost (a restart without persistence)
is created again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from .models import Event, parse_event

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry: its id, the raw fields, and the decoded event."""

    stream: str
    entry_id: str
    fields: dict[str, str]

    @property
    def type(self) -> str:
        return self.fields.get("type", "")

    def event(self) -> Event:
        return parse_event(self.type, self.fields.get("data", ""))


def _decode(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _entry(stream: str, entry_id: Any, fields: Any) -> Entry:
    return Entry(
        stream, _decode(entry_id), {_decode(k): _decode(v) for k, v in (fields or {}).items()}
    )


class StreamConsumer:
    """One consumer of one group on one stream."""

    def __init__(
        self,
        client: aioredis.Redis,
        stream: str,
        *,
        group: str,
        consumer: str,
        start_id: str = "0",
        count: int = 100,
        block_ms: int = 5000,
        min_idle_ms: int = 60_000,
        max_deliveries: int = 5,
        dead_letter_stream: str | None = None,
    ) -> None:
        if max_deliveries < 1:
            raise ValueError(f"max_deliveries must be at least 1, got {max_deliveries}")
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.start_id = start_id
        self.count = count
        self.block_ms = block_ms
        self.min_idle_ms = min_idle_ms
        self.max_deliveries = max_deliveries
        self.dead_letter_stream = dead_letter_stream or f"{stream}:dead:{group}"
        self._claim_cursor = "0-0"

    async def ensure_group(self) -> None:
        """Create the group (and the stream) unless it exists; safe to call any time."""
        try:
            await self.client.xgroup_create(
                self.stream, self.group, id=self.start_id, mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _with_group(self, call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await call()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("consumer group missing; creating it again", extra={"group": self.group})
            await self.ensure_group()
            return await call()

    async def reclaim(self) -> list[Entry]:
        """Entries idle in other consumers' pending lists for longer than ``min_idle_ms``."""
        result = await self._with_group(
            lambda: self.client.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=self.min_idle_ms,
                start_id=self._claim_cursor,
                count=self.count,
            )
        )
        self._claim_cursor = _decode(result[0])
        return [_entry(self.stream, eid, fields) for eid, fields in result[1] if fields]

    async def read(self, *, block: bool = True) -> list[Entry]:
        """Reclaimed stale entries first, then new ones (waiting up to ``block_ms``)."""
        stale = await self.reclaim()
        if stale:
            return stale
        response = await self._with_group(
            lambda: self.client.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: ">"},
                count=self.count,
                block=self.block_ms if block else None,
            )
        )
        entries: list[Entry] = []
        for _stream, items in response or []:
            entries.extend(_entry(self.stream, eid, fields) for eid, fields in items)
        return entries

    async def ack(self, *entry_ids: str) -> int:
        if not entry_ids:
            return 0
        return int(await self.client.xack(self.stream, self.group, *entry_ids))

    async def deliveries(self, entry_id: str) -> int:
        """How many times the entry has been delivered to this group."""
        pending = await self._with_group(
            lambda: self.client.xpending_range(
                self.stream, self.group, min=entry_id, max=entry_id, count=1
            )
        )
        return int(pending[0]["times_delivered"]) if pending else 0

    async def dead_letter(self, entry: Entry, reason: str) -> None:
        """Park an entry that keeps failing, with the reason, and take it off the group."""
        fields = {**entry.fields, "source_stream": self.stream, "source_id": entry.entry_id}
        fields["error"] = reason[:2000]
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_letter_stream, fields)  # type: ignore[arg-type]
            pipe.xack(self.stream, self.group, entry.entry_id)
            await pipe.execute()

    async def handle(self, entry: Entry, handler: Callable[[Entry], Awaitable[None]]) -> bool:
        """Run the handler on one entry; ack on success. Answers whether it succeeded."""
        try:
            await handler(entry)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            delivered = await self.deliveries(entry.entry_id)
            reason = f"{type(exc).__name__}: {exc}"
            if delivered >= self.max_deliveries:
                log.error(
                    "event moved to dead-letter stream",
                    extra={"entry_id": entry.entry_id, "deliveries": delivered, "error": reason},
                )
                await self.dead_letter(entry, reason)
            else:
                log.warning(
                    "handler failed; the entry stays pending",
                    extra={"entry_id": entry.entry_id, "deliveries": delivered, "error": reason},
                )
            return False
        await self.ack(entry.entry_id)
        return True

    async def run(
        self,
        handler: Callable[[Entry], Awaitable[None]],
        *,
        stop: asyncio.Event | None = None,
    ) -> None:
        """Consume until ``stop`` is set (or forever)."""
        await self.ensure_group()
        while stop is None or not stop.is_set():
            for entry in await self.read():
                await self.handle(entry, handler)
