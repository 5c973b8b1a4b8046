"""StreamConsumer against real Redis: groups, acks, reclaiming, dead letters, NOGROUP, run/stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from service.consume import Entry, StreamConsumer
from service.models import ArticleEvent, ArticlePayload, DuplicateEvent, EventDecision

from .conftest import decoded, stream_entries

GROUP = "indexer"
IDLE_MS = 50
IDLE_S = IDLE_MS / 1000 + 0.02  # a little longer than min_idle_ms, so the entry counts as idle

MakeConsumer = Callable[..., StreamConsumer]


def article_event(article_id: str = "a-1") -> ArticleEvent:
    return ArticleEvent(
        type="article.created",
        id=article_id,
        decision=EventDecision(status="unique", relation=None, duplicate_of=None, similarity=None),
        article=ArticlePayload(
            title="Council approves budget",
            text="The council approved the budget on Tuesday.\n\nIt passed seven to two.",
            source="example.com",
            url="https://example.com/budget",
            published_at="2024-05-01T12:00:00Z",
            language="en",
            word_count=13,
            content_hash="0" * 64,
        ),
    )


def duplicate_event(article_id: str = "d-1", of: str = "a-1") -> DuplicateEvent:
    return DuplicateEvent(
        id=article_id,
        duplicate_of=of,
        similarity=0.92,
        relation="near_duplicate",
        source="wire.example.org",
        url=None,
    )


async def add(client: aioredis.Redis, stream: str, event: ArticleEvent | DuplicateEvent) -> str:
    entry_id = await client.xadd(
        stream, {"type": event.type, "id": event.id, "data": event.model_dump_json()}
    )
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def pending_count(client: aioredis.Redis, stream: str, group: str = GROUP) -> int:
    summary = await client.xpending(stream, group)
    return int(summary["pending"])


async def pending_owners(client: aioredis.Redis, stream: str) -> dict[str, str]:
    rows = await client.xpending_range(stream, GROUP, min="-", max="+", count=100)
    return {decoded(row["message_id"]): decoded(row["consumer"]) for row in rows}


async def group_names(client: aioredis.Redis, stream: str) -> list[str]:
    return [g["name"].decode() for g in await client.xinfo_groups(stream)]


async def ok(entry: Entry) -> None:
    entry.event()


@pytest.fixture
def stream(prefix: str) -> str:
    return f"{prefix}:articles"


@pytest.fixture
def make_consumer(redis_client: aioredis.Redis, stream: str) -> MakeConsumer:
    def make(name: str = "c1", **overrides: Any) -> StreamConsumer:
        options: dict[str, Any] = {
            "group": GROUP,
            "consumer": name,
            "block_ms": 100,
            "min_idle_ms": IDLE_MS,
        }
        options.update(overrides)
        return StreamConsumer(redis_client, stream, **options)

    return make


async def test_ensure_group_is_idempotent(
    redis_client: aioredis.Redis, stream: str, make_consumer: MakeConsumer
) -> None:
    consumer = make_consumer()
    await consumer.ensure_group()
    await consumer.ensure_group()
    assert await redis_client.exists(stream) == 1  # MKSTREAM made the stream
    groups = await redis_client.xinfo_groups(stream)
    assert [g["name"].decode() for g in groups] == [GROUP]
    assert groups[0]["last-delivered-id"].decode() == "0-0"


async def test_ensure_group_keeps_an_existing_groups_position(
    redis_client: aioredis.Redis, stream: str, make_consumer: MakeConsumer
) -> None:
    consumer = make_consumer()
    await consumer.ensure_group()
    entry_id = await add(redis_client, stream, article_event())
    assert [e.entry_id for e in await consumer.read(block=False)] == [entry_id]
    await consumer.ensure_group()  # BUSYGROUP: nothing is reset
    (group,) = await redis_client.xinfo_groups(stream)
    assert group["last-delivered-id"].decode() == entry_id
    assert await consumer.read(block=False) == []


async def test_read_handle_ack(
    redis_client: aioredis.Redis, stream: str, make_consumer: MakeConsumer
) -> None:
    consumer = make_consumer()
    await consumer.ensure_group()
    events: list[ArticleEvent | DuplicateEvent] = [
        article_event("a-1"),
        duplicate_event("d-1", of="a-1"),
        article_event("a-2"),
    ]
    ids = [await add(redis_client, stream, e) for e in events]

    entries = await consumer.read(block=False)
    assert [e.entry_id for e in entries] == ids
    assert all(e.stream == stream for e in entries)
    assert await pending_count(redis_client, stream) == 3

    seen: list[Any] = []

    async def handler(entry: Entry) -> None:
        seen.append(entry.event())

    for entry in entries:
        assert await consumer.handle(entry, handler) is True

    assert seen == events
    assert [e.type for e in entries] == ["article.created", "article.duplicate", "article.created"]
    assert entries[0].fields["id"] == "a-1"
    assert isinstance(seen[1], DuplicateEvent)
    assert await pending_count(redis_client, stream) == 0
    assert await consumer.read(block=False) == []


async def test_read_blocks_for_at_most_block_ms(
    redis_client: aioredis.Redis, stream: str, make_consumer: MakeConsumer
) -> None:
    consumer = make_consumer(block_ms=100)
    await consumer.ensure_group()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await consumer.read() == []
    assert 0.05 <= loop.time() - started < 1.0


async def test_dead_consumers_entries_are_reclaimed(
    redis_client: aioredis.Redis, stream: str, make_consumer: MakeConsumer
) -> None:
    dying = make_consumer("c1")
    await dying.ensure_group()
    ids = [await add(redis_client, stream, article_event(f"a-{i}")) for i in range(3)]
    assert [e.entry_id for e in await dying.read(block=False)] == ids
    # c1 "dies" here: it never acks.
    assert await pending_owners(redis_client, stream) == dict.fromkeys(ids, "c1")

    patient = make_consumer("c2", min_idle_ms=60_000)
    assert await patient.read(block=False) == []  # not idle long enough for this consumer

    await asyncio.sleep(IDLE_S)
    rescuer = make_consumer("c3")
    reclaimed = await rescuer.read(block=False)
    assert [e.entry_id for e in reclaimed] == ids
    assert [e.event() for e in reclaimed] == [article_event(f"a-{i}") for i in range(3)]
    assert await pending_owners(redis_client, stream) == dict.fromkeys(ids, "c3")
    assert [await rescuer.deliveries(i) for i in ids] == [2, 2, 2]

    for entry in reclaimed:
        assert await rescuer.handle(entry, ok) is True
    assert await pending_count(redis_client, stream) == 0
    await asyncio.sleep(IDLE_S)
    assert await rescuer.read(block=False) == []


async def test_failing_entry_is_retried_then_dead_lettered(
    redis_client: aioredis.Redis, stream: str, make_consumer: MakeConsumer
) -> None:
    consumer = make_consumer(max_deliveries=3)
    await consumer.ensure_group()
    poison_id = await add(redis_client, stream, article_event("poison"))
    event_json = article_event("poison").model_dump_json()
    calls: list[str] = []

    async def always_fails(entry: Entry) -> None:
        calls.append(entry.entry_id)
        raise RuntimeError("downstream rejected it")

    for attempt in (1, 2, 3):
        if attempt > 1:
            await asyncio.sleep(IDLE_S)
        entries = await consumer.read(block=False)
        assert [e.entry_id for e in entries] == [poison_id]
        assert await consumer.deliveries(poison_id) == attempt
        assert await consumer.handle(entries[0], always_fails) is False
        if attempt < 3:
            assert await pending_count(redis_client, stream) == 1
            assert await redis_client.exists(consumer.dead_letter_stream) == 0

    assert calls == [poison_id] * 3
    assert await pending_count(redis_client, stream) == 0
    assert await consumer.deliveries(poison_id) == 0

    assert consumer.dead_letter_stream == f"{stream}:dead:{GROUP}"
    (dead,) = await stream_entries(redis_client, consumer.dead_letter_stream)
    fields = {k.decode(): v.decode() for k, v in dead[1].items()}
    assert fields["error"] == "RuntimeError: downstream rejected it"
    assert fields["source_id"] == poison_id
    assert fields["source_stream"] == stream
    assert fields["type"] == "article.created"
    assert fields["data"] == event_json  # the event is kept intact for a replay

    # Parked: it is not delivered again, and it is still in the source stream.
    await asyncio.sleep(IDLE_S)
    assert await consumer.read(block=False) == []
    assert await redis_client.xlen(stream) == 1


async def test_max_deliveries_one_dead_letters_on_first_failure(
    redis_client: aioredis.Redis, stream: str, make_consumer: MakeConsumer
) -> None:
    consumer = make_consumer(max_deliveries=1, dead_letter_stream=f"{stream}:parked")
    await consumer.ensure_group()
    entry_id = await add(redis_client, stream, duplicate_event())

    async def fails(entry: Entry) -> None:
        raise ValueError("x" * 5000)

    (entry,) = await consumer.read(block=False)
    assert await consumer.handle(entry, fails) is False
    assert await pending_count(redis_client, stream) == 0
    (dead,) = await stream_entries(redis_client, f"{stream}:parked")
    assert dead[1][b"source_id"].decode() == entry_id
    assert dead[1][b"error"].decode().startswith("ValueError: xxx")
    assert len(dead[1][b"error"]) == 2000  # the reason is bounded


async def test_a_failure_does_not_hold_back_other_entries(
    redis_client: aioredis.Redis, stream: str, make_consumer: MakeConsumer
) -> None:
    consumer = make_consumer()
    await consumer.ensure_group()
    bad_id = await add(redis_client, stream, article_event("bad"))
    good_id = await add(redis_client, stream, article_event("good"))

    async def picky(entry: Entry) -> None:
        if entry.fields["id"] == "bad":
            raise RuntimeError("no")

    results = {e.entry_id: await consumer.handle(e, picky) for e in await consumer.read()}
    assert results == {bad_id: False, good_id: True}
    assert await pending_owners(redis_client, stream) == {bad_id: "c1"}


@pytest.mark.parametrize("loss", ["destroy-group", "delete-stream"])
async def test_lost_group_is_created_again(
    redis_client: aioredis.Redis, stream: str, make_consumer: MakeConsumer, loss: str
) -> None:
    consumer = make_consumer()
    await consumer.ensure_group()
    entry_id = await add(redis_client, stream, article_event())
    (entry,) = await consumer.read(block=False)
    assert await consumer.handle(entry, ok) is True

    if loss == "destroy-group":
        assert await redis_client.xgroup_destroy(stream, GROUP) == 1
    else:
        assert await redis_client.delete(stream) == 1

    entries = await consumer.read(block=False)
    assert await group_names(redis_client, stream) == [GROUP]
    if loss == "destroy-group":
        # The new group starts from start_id "0": at-least-once means a redelivery.
        assert [e.entry_id for e in entries] == [entry_id]
    else:
        assert entries == []

    new_id = await add(redis_client, stream, duplicate_event())
    assert [e.entry_id for e in await consumer.read(block=False)] == [new_id]


# When the handler fails, handle() asks XPENDING for the delivery count: with the group gone,
# that must recreate the group rather than let NOGROUP escape handle() (and so run()).
async def test_failure_after_the_group_was_lost_does_not_crash(
    redis_client: aioredis.Redis, stream: str, make_consumer: MakeConsumer
) -> None:
    consumer = make_consumer()
    await consumer.ensure_group()
    entry_id = await add(redis_client, stream, article_event())
    (entry,) = await consumer.read(block=False)
    await redis_client.xgroup_destroy(stream, GROUP)

    async def fails(entry: Entry) -> None:
        raise RuntimeError("downstream unavailable")

    assert await consumer.handle(entry, fails) is False
    assert [e.entry_id for e in await consumer.read(block=False)] == [entry_id]


async def test_run_stops_when_the_event_is_set(
    redis_client: aioredis.Redis, stream: str, make_consumer: MakeConsumer
) -> None:
    consumer = make_consumer(block_ms=100)
    events: list[ArticleEvent | DuplicateEvent] = [
        article_event("a-1"),
        duplicate_event("d-1"),
        article_event("a-2"),
    ]
    handled: list[Any] = []
    all_handled = asyncio.Event()

    async def handler(entry: Entry) -> None:
        handled.append(entry.event())
        if len(handled) == len(events):
            all_handled.set()

    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(handler, stop=stop))
    try:
        for event in events:
            await add(redis_client, stream, event)
        await asyncio.wait_for(all_handled.wait(), timeout=5)
        stop.set()
        # The read in flight blocks for at most block_ms; then the loop sees the event.
        await asyncio.wait_for(task, timeout=2)
    finally:
        task.cancel()
    assert task.done()
    assert task.exception() is None
    assert handled == events
    assert await pending_count(redis_client, stream) == 0


@pytest.mark.parametrize("max_deliveries", [0, -1])
async def test_max_deliveries_must_be_positive(
    redis_client: aioredis.Redis, stream: str, max_deliveries: int
) -> None:
    with pytest.raises(ValueError, match="max_deliveries must be at least 1"):
        StreamConsumer(
            redis_client, stream, group=GROUP, consumer="c1", max_deliveries=max_deliveries
        )
