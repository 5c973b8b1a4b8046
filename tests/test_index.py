"""The Redis index and its atomic decide-and-publish step, without HTTP or cleaning."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest
import redis.asyncio as aioredis

from service.clean.learned import digest
from service.errors import IndexMismatch, StoreUnavailable
from service.fingerprint import index_meta
from service.index import LearnParams, Store, _pack_binary, connect
from service.keys import Keys
from service.models import DuplicateEvent, Params, Prepared, parse_event
from service.prepare import prepared_from_body

from .conftest import free_port, stream_entries
from .factories import near_copy, story, vocabulary

PARAMS = Params()
THRESHOLD = PARAMS.threshold
NUM_PERM = PARAMS.num_perm
SHINGLE = PARAMS.shingle_size

MakeStore = Callable[..., Store]


def prepared(
    article_id: str, text: str, *, source: str = "wire", url: str | None = None
) -> Prepared:
    return prepared_from_body(article_id, text, PARAMS, source=source, url=url)


@pytest.fixture
async def make_store(
    redis_url: str, prefix: str, redis_client: aioredis.Redis
) -> AsyncIterator[MakeStore]:
    stores: list[Store] = []

    def make(window_s: int = 3600, url: str | None = None, shingle_size: int = SHINGLE) -> Store:
        store = Store(
            connect(url or redis_url, timeout_s=1.0),
            Keys(prefix),
            threshold=THRESHOLD,
            window_s=window_s,
            stream_maxlen=10_000,
            meta=index_meta(num_perm=NUM_PERM, shingle_size=shingle_size, threshold=THRESHOLD),
        )
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.client.aclose()


@pytest.fixture
def texts() -> Callable[[int], list[str]]:
    rng = random.Random(11)
    words = vocabulary()
    return lambda n: [story(rng, words) for _ in range(n)]


async def test_exact_near_and_unique(
    make_store: MakeStore, texts: Callable[[int], list[str]], redis_client: aioredis.Redis
) -> None:
    store = make_store()
    a, b = texts(2)
    rng = random.Random(3)
    decisions = await store.decide_many(
        [
            prepared("a", a),
            prepared("a-exact", a),
            prepared("a-near", near_copy(a, rng, edits=2)),
            prepared("b", b),
        ],
        dry_run=False,
    )
    assert [d.status for d in decisions] == ["unique", "duplicate", "duplicate", "unique"]
    assert [d.relation for d in decisions] == [None, "exact", "near_duplicate", None]
    assert decisions[1].similarity == 1.0
    assert decisions[2].similarity is not None
    assert 0.8 <= decisions[2].similarity < 1.0
    assert {d.duplicate_of for d in decisions[1:3]} == {"a"}
    keys = store.keys
    assert await redis_client.xlen(keys.articles_stream) == 2
    entries = await stream_entries(redis_client, keys.duplicates_stream)
    assert len(entries) == 2
    event = parse_event("article.duplicate", entries[1][1][b"data"])
    assert isinstance(event, DuplicateEvent)
    assert (event.id, event.duplicate_of, event.relation) == ("a-near", "a", "near_duplicate")
    assert decisions[2].event_id == entries[1][0].decode()


async def test_bucket_hit_alone_does_not_make_a_duplicate(
    make_store: MakeStore, texts: Callable[[int], list[str]]
) -> None:
    """Half the story shared: LSH may propose it, the stored signature must refuse it."""
    store = make_store()
    a, b = texts(2)
    half = "\n\n".join(a.split("\n\n")[:3] + b.split("\n\n")[3:])
    first, second = await store.decide_many(
        [prepared("a", a), prepared("half", half)], dry_run=False
    )
    assert first.status == "unique"
    assert second.status == "unique"


async def test_duplicate_of_is_always_the_canonical(
    make_store: MakeStore, texts: Callable[[int], list[str]]
) -> None:
    store = make_store()
    (a,) = texts(1)
    rng = random.Random(5)
    copy1 = near_copy(a, rng, edits=3)
    copy2 = near_copy(copy1, rng, edits=3)
    decisions = await store.decide_many(
        [prepared("a", a), prepared("c1", copy1), prepared("c2", copy2)], dry_run=False
    )
    assert [d.duplicate_of for d in decisions] == [None, "a", "a"]


async def test_replay_and_revision(
    make_store: MakeStore, texts: Callable[[int], list[str]], redis_client: aioredis.Redis
) -> None:
    store = make_store()
    a, b = texts(2)
    (first,) = await store.decide_many([prepared("x", a)], dry_run=False)
    (again,) = await store.decide_many([prepared("x", a)], dry_run=False)
    assert again.replayed
    assert again.event_id == first.event_id
    (revised,) = await store.decide_many([prepared("x", b)], dry_run=False)
    assert (revised.status, revised.relation, revised.duplicate_of) == ("updated", "revision", "x")
    assert revised.event_id != first.event_id
    entries = await stream_entries(redis_client, store.keys.articles_stream)
    assert [e[1][b"type"] for e in entries] == [b"article.created", b"article.updated"]
    stored = await store.get_article("x")
    assert stored is not None
    assert stored.article.text == b
    # The revised text is what copies are now matched against.
    (copy,) = await store.decide_many([prepared("y", b)], dry_run=False)
    assert copy.duplicate_of == "x"


async def test_dry_run_writes_nothing(
    make_store: MakeStore,
    texts: Callable[[int], list[str]],
    redis_client: aioredis.Redis,
    prefix: str,
) -> None:
    store = make_store()
    (a,) = texts(1)
    (decision,) = await store.decide_many([prepared("a", a)], dry_run=True)
    assert decision.status == "unique"
    assert decision.event_id is None
    keys = [k async for k in redis_client.scan_iter(match=f"{prefix}:*")]
    assert keys == [Keys(prefix).index_meta.encode()]


async def test_window_forgets(make_store: MakeStore, texts: Callable[[int], list[str]]) -> None:
    store = make_store(window_s=1)
    (a,) = texts(1)
    (first,) = await store.decide_many([prepared("a", a)], dry_run=False)
    assert first.status == "unique"
    (copy,) = await store.decide_many([prepared("b", a)], dry_run=False)
    assert copy.status == "duplicate"
    await asyncio.sleep(1.2)
    (later,) = await store.decide_many([prepared("c", a)], dry_run=False)
    assert later.status == "unique"
    assert await store.get_article("a") is None


def _long_story(seed: int, paragraphs: int = 10) -> str:
    return story(random.Random(seed), vocabulary(), paragraphs=paragraphs, length=50)


async def test_excerpt_is_a_duplicate_of_its_story(
    make_store: MakeStore, redis_client: aioredis.Redis
) -> None:
    store = make_store()
    full = _long_story(1)
    paragraphs = full.split("\n\n")
    teaser = "\n\n".join(paragraphs[:3])  # the first 30%: a teaser, a truncated copy
    middle = "\n\n".join(paragraphs[4:7])  # a passage from the middle
    story_, first, second = await store.decide_many(
        [prepared("story", full), prepared("teaser", teaser), prepared("middle", middle)],
        dry_run=False,
    )
    assert story_.status == "unique"
    for decision in (first, second):
        assert (decision.status, decision.relation, decision.duplicate_of) == (
            "duplicate",
            "excerpt",
            "story",
        )
        assert decision.containment is not None
        assert decision.containment >= 0.8
        assert decision.similarity is not None
        assert decision.similarity < 0.8
    entries = await stream_entries(redis_client, store.keys.duplicates_stream)
    events = [parse_event(e[b"type"].decode(), e[b"data"]) for _, e in entries]
    assert [(e.id, e.relation) for e in events if isinstance(e, DuplicateEvent)] == [
        ("teaser", "excerpt"),
        ("middle", "excerpt"),
    ]


async def test_superset_is_published_as_an_update_of_its_story(
    make_store: MakeStore, redis_client: aioredis.Redis
) -> None:
    store = make_store()
    full = _long_story(2)
    update = _long_story(3, paragraphs=5)
    extended = full + "\n\n" + update  # the story plus an update half its length
    first, bigger = await store.decide_many(
        [prepared("story", full), prepared("extended", extended)], dry_run=False
    )
    assert first.status == "unique"
    assert (bigger.status, bigger.relation, bigger.duplicate_of) == (
        "updated",
        "superset",
        "story",
    )
    assert bigger.containment is not None
    assert bigger.containment >= 0.8
    entries = await stream_entries(redis_client, store.keys.articles_stream)
    assert [(e[b"type"], e[b"id"]) for _, e in entries] == [
        (b"article.created", b"story"),
        (b"article.updated", b"extended"),
    ]
    # Copies of the superset, and its own excerpts, join the same cluster.
    rng = random.Random(3)
    (copy, tail) = await store.decide_many(
        [prepared("copy", near_copy(extended, rng)), prepared("tail", update)], dry_run=False
    )
    assert (copy.relation, copy.duplicate_of) == ("near_duplicate", "story")
    assert (tail.relation, tail.duplicate_of) == ("excerpt", "story")


async def test_a_second_excerpt_is_judged_against_the_story_not_the_first(
    make_store: MakeStore,
) -> None:
    store = make_store()
    paragraphs = _long_story(20, paragraphs=20).split("\n\n")
    lead = "\n\n".join(paragraphs[:11])  # the first 55%
    inner = "\n\n".join(paragraphs[3:11])  # 15% to 55%: closer to the lead than to the story
    decisions = await store.decide_many(
        [
            prepared("story", "\n\n".join(paragraphs)),
            prepared("lead", lead),
            prepared("inner", inner),
        ],
        dry_run=False,
    )
    assert [(d.relation, d.duplicate_of) for d in decisions] == [
        (None, None),
        ("excerpt", "story"),
        ("excerpt", "story"),
    ]


async def test_a_copy_with_some_extra_chrome_is_a_copy_not_an_update(make_store: MakeStore) -> None:
    store = make_store()
    full = _long_story(21)
    chrome = "\n\n".join(_long_story(22, paragraphs=2).split("\n\n"))  # ~20% more text
    decisions = await store.decide_many(
        [prepared("story", full), prepared("copy", full + "\n\n" + chrome)], dry_run=False
    )
    assert (decisions[1].status, decisions[1].relation) == ("duplicate", "near_duplicate")


async def test_different_stories_sharing_a_paragraph_stay_apart(
    make_store: MakeStore,
) -> None:
    """A shared quote or background paragraph is not containment."""
    store = make_store()
    a, b = _long_story(4), _long_story(5)
    shared = a.split("\n\n")[0]
    b = shared + "\n\n" + b
    decisions = await store.decide_many([prepared("a", a), prepared("b", b)], dry_run=False)
    assert [d.status for d in decisions] == ["unique", "unique"]


async def test_a_passage_many_stories_share_is_no_evidence_of_containment(
    make_store: MakeStore,
) -> None:
    """A disclaimer printed under twenty stories does not make it an excerpt of one of them."""
    store = make_store()
    disclaimer = _long_story(90, paragraphs=2)
    stories = [prepared(f"s{i}", _long_story(100 + i) + "\n\n" + disclaimer) for i in range(20)]
    decisions = await store.decide_many(stories, dry_run=False)
    assert [d.status for d in decisions] == ["unique"] * 20
    (alone,) = await store.decide_many([prepared("alone", disclaimer)], dry_run=False)
    assert alone.relation != "excerpt"


async def test_same_url_under_another_id_is_a_revision(
    make_store: MakeStore, texts: Callable[[int], list[str]]
) -> None:
    store = make_store()
    a, b = texts(2)
    url = "https://www.example.com/news/story-1/?utm_source=feed"
    first, same, changed = await store.decide_many(
        [
            prepared("feed-1", a, url=url),
            # The same page again from another scraper: its own id, a tracking-free url.
            prepared("crawl-1", a, url="https://example.com/news/story-1"),
            # And once more after the newsroom rewrote it.
            prepared("crawl-2", b, url="https://example.com/news/story-1#comments"),
        ],
        dry_run=False,
    )
    assert first.status == "unique"
    assert (same.status, same.relation, same.duplicate_of) == ("duplicate", "exact", "feed-1")
    assert (changed.status, changed.relation, changed.duplicate_of) == (
        "updated",
        "revision",
        "feed-1",
    )
    # Another url with that rewritten text is a copy of the story, not a new one.
    (copy,) = await store.decide_many(
        [prepared("elsewhere", b, url="https://other.example.org/x")], dry_run=False
    )
    assert (copy.relation, copy.duplicate_of) == ("exact", "feed-1")


async def test_window_forgets_excerpts_and_urls(make_store: MakeStore) -> None:
    store = make_store(window_s=1)
    full = _long_story(6)
    teaser = "\n\n".join(full.split("\n\n")[:3])
    url = "https://example.com/a"
    await store.decide_many([prepared("a", full, url=url)], dry_run=False)
    await asyncio.sleep(1.2)
    later = await store.decide_many(
        [prepared("t", teaser), prepared("b", _long_story(7), url=url)], dry_run=False
    )
    assert [d.status for d in later] == ["unique", "unique"]


async def test_lost_scripts_are_reloaded(
    make_store: MakeStore, texts: Callable[[int], list[str]], redis_client: aioredis.Redis
) -> None:
    store = make_store()
    a, b = texts(2)
    await store.decide_many([prepared("a", a)], dry_run=False)
    await redis_client.script_flush()
    (decision,) = await store.decide_many([prepared("b", b)], dry_run=False)
    assert decision.status == "unique"


async def test_meta_mismatch_is_refused(make_store: MakeStore) -> None:
    await make_store().ensure_meta()
    with pytest.raises(IndexMismatch, match=r"shingle_size.*use the recorded parameters"):
        await make_store(shingle_size=3).ensure_meta()


async def test_an_index_of_an_older_shingle_hash_is_refused(
    make_store: MakeStore, redis_client: aioredis.Redis, prefix: str
) -> None:
    # An index written before the polynomial shingle hash: no setting can bring that back.
    await make_store().ensure_meta()
    await redis_client.hset(Keys(prefix).index_meta, "shingle_hash", "xxh32-seed0")
    with pytest.raises(IndexMismatch, match=r"shingle_hash.*this version fingerprints differently"):
        await make_store().ensure_meta()


async def test_unreachable_redis_is_store_unavailable(make_store: MakeStore) -> None:
    store = make_store(url=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreUnavailable):
        await store.decide_many([prepared("a", "some words here")], dry_run=False)
    with pytest.raises(StoreUnavailable):
        await store.ping()


async def test_racing_stores_make_one_unique_per_pair(
    make_store: MakeStore, texts: Callable[[int], list[str]]
) -> None:
    """Two clients (as two replicas would) send near-identical articles at the same time."""
    left, right = make_store(), make_store()
    rng = random.Random(9)
    originals = texts(50)
    pairs = [(t, near_copy(t, rng, edits=1)) for t in originals]
    results = await asyncio.gather(
        *(
            store.decide_many([prepared(f"{side}-{i}", text)], dry_run=False)
            for i, pair in enumerate(pairs)
            for store, side, text in ((left, "l", pair[0]), (right, "r", pair[1]))
        )
    )
    statuses: dict[int, list[str]] = {}
    for (decision,) in results:
        statuses.setdefault(int(decision.id.split("-")[1]), []).append(decision.status)
    assert all(sorted(s) == ["duplicate", "unique"] for s in statuses.values()), statuses


async def _server_ms(client: aioredis.Redis) -> int:
    seconds, micros = await client.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def _sleep_until_ms(client: aioredis.Redis, at_ms: int) -> None:
    """Sleep until the server's clock, which picks the epoch, reads ``at_ms``."""
    for _ in range(10):
        now = await _server_ms(client)
        if now >= at_ms:
            return
        await asyncio.sleep((at_ms - now) / 1000)
    raise AssertionError("the server's clock did not reach the time slept to")


async def test_lookups_read_the_earlier_epochs_of_the_window(
    make_store: MakeStore, redis_client: aioredis.Redis
) -> None:
    """A story indexed one and two epochs ago is found, by LSH and by its anchors, while the
    current epoch's hashes do not exist yet (they are skipped, not read)."""
    store = make_store(window_s=2)  # epochs of 1 s: a lookup spans 3 of them
    epoch_ms = 1000
    rng = random.Random(12)
    full, other = _long_story(30), _long_story(31)
    # Index late in an epoch, so that two epochs later the story is still in the window.
    now = await _server_ms(redis_client)
    await _sleep_until_ms(redis_client, (now // epoch_ms + 1) * epoch_ms + 750)
    indexed_at = await _server_ms(redis_client)
    await store.decide_many([prepared("story", full), prepared("other", other)], dry_run=False)
    epoch = indexed_at // epoch_ms
    await _sleep_until_ms(redis_client, (epoch + 1) * epoch_ms + 20)
    assert not await redis_client.exists(f"{store.keys.ns}lsh:{epoch + 1}")
    teaser = "\n\n".join(full.split("\n\n")[:3])
    (excerpt, copy) = await store.decide_many(
        [prepared("teaser", teaser), prepared("copy", near_copy(full, rng))], dry_run=False
    )
    assert (excerpt.relation, excerpt.duplicate_of) == ("excerpt", "story")
    assert (copy.relation, copy.duplicate_of) == ("near_duplicate", "story")
    await _sleep_until_ms(redis_client, (epoch + 2) * epoch_ms + 20)
    assert await _server_ms(redis_client) < indexed_at + 1900, "too slow to test: the window passed"
    (later,) = await store.decide_many([prepared("later", near_copy(other, rng))], dry_run=False)
    assert (later.relation, later.duplicate_of) == ("near_duplicate", "other")


async def test_an_epoch_hash_past_every_lookup_is_unlinked_not_left_to_expire(
    make_store: MakeStore, redis_client: aioredis.Redis
) -> None:
    """Expiring, a hash of millions of fields is freed on Redis's main thread (1.7 s for 4M
    fields on Redis 7); the decision that starts an epoch's hash unlinks the one three epochs
    back instead, and its TTL, an epoch later, is only the backstop."""
    store = make_store(window_s=2)  # epochs of 1 s
    epoch_ms = 1000
    ns = store.keys.ns
    now = await _server_ms(redis_client)
    await _sleep_until_ms(redis_client, (now // epoch_ms + 1) * epoch_ms + 20)
    first = (await _server_ms(redis_client)) // epoch_ms
    await store.decide_many([prepared("old", _long_story(33))], dry_run=False)
    old_keys = [f"{ns}{kind}:{first}" for kind in ("lsh", "anc")]
    for key in old_keys:
        assert await redis_client.pexpiretime(key) == (first + 4) * epoch_ms
    await _sleep_until_ms(redis_client, (first + 3) * epoch_ms + 20)
    assert await redis_client.exists(*old_keys) == 2, "expired before the backstop"
    await store.decide_many([prepared("new", _long_story(34))], dry_run=False)
    assert await redis_client.exists(*old_keys) == 0
    assert await redis_client.exists(f"{ns}lsh:{first + 3}", f"{ns}anc:{first + 3}") == 2


async def test_a_source_epoch_hash_past_every_read_is_unlinked(
    redis_url: str, prefix: str, redis_client: aioredis.Redis
) -> None:
    store = Store(
        connect(redis_url, timeout_s=1.0),
        Keys(prefix),
        threshold=THRESHOLD,
        window_s=3600,
        stream_maxlen=10_000,
        meta=index_meta(num_perm=NUM_PERM, shingle_size=SHINGLE, threshold=THRESHOLD),
        learn=LearnParams(window_s=2),  # epochs of 1 s
    )
    try:
        epoch_ms = 1000
        now = await _server_ms(redis_client)
        await _sleep_until_ms(redis_client, (now // epoch_ms + 1) * epoch_ms + 20)
        first = (await _server_ms(redis_client)) // epoch_ms
        # Segments travel with what the cleaner made (prepared_from_body makes none).
        template = tuple(digest(line) for line in ("Subscribe to the Courier", "Share this"))
        one = replace(prepared("one", _long_story(35), source="courier"), segments=template)
        two = replace(prepared("two", _long_story(36), source="courier"), segments=template)
        await store.decide_and_learn([one], dry_run=False)
        (old_key,) = [k async for k in redis_client.scan_iter(match=f"{store.keys.ns}seg:*")]
        assert old_key.decode().endswith(f":{first}")
        assert await redis_client.pexpiretime(old_key) == (first + 3) * epoch_ms
        await _sleep_until_ms(redis_client, (first + 2) * epoch_ms + 20)
        assert await redis_client.exists(old_key), "expired before the backstop"
        await store.decide_and_learn([two], dry_run=False)
        assert not await redis_client.exists(old_key)
    finally:
        await store.client.aclose()


async def test_index_fields_are_binary_digests(
    make_store: MakeStore, redis_client: aioredis.Redis
) -> None:
    """The layout decide.lua documents: a band's field is its number (2 bytes) and its 8-byte
    digest, an anchor's field its 4-byte digest, each value the ids indexed under it."""
    store = make_store()
    item = prepared("a", _long_story(32))
    await store.decide_many([item], dry_run=False)
    ns = store.keys.ns
    (lsh_key,) = [k async for k in redis_client.scan_iter(match=f"{ns}lsh:*")]
    (anc_key,) = [k async for k in redis_client.scan_iter(match=f"{ns}anc:*")]
    lsh = await redis_client.hgetall(lsh_key)
    assert lsh == {
        band.to_bytes(2, "big") + bytes.fromhex(digest): b"a"
        for band, digest in enumerate(item.bands)
    }
    anc = await redis_client.hgetall(anc_key)
    assert anc == {bytes.fromhex(digest): b"a" for digest in item.anchors}


def test_digests_travel_binary() -> None:
    assert _pack_binary([]) == (0, b"")
    assert _pack_binary(["00ff", "a0b1"]) == (2, b"\x00\xff\xa0\xb1")
    with pytest.raises(ValueError, match="same"):
        _pack_binary(["00ff", "a0"])
    with pytest.raises(ValueError, match="even"):
        _pack_binary(["abc", "def"])
