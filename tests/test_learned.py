"""The learned layer: a source's own template, learned from its unique articles in Redis."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from service import prepare
from service.clean.learned import (
    NOTHING_LEARNED,
    LearnedCache,
    LearnedSet,
    apply_learned,
    digest,
    segment_digests,
    sentences,
)
from service.clean.text import clean_text
from service.keys import Keys, source_digest
from service.models import ArticleIn, ArticlePayload, ItemError, Params, Prepared
from service.pool import WorkerPool
from service.state import PIPELINE

from .conftest import decoded
from .factories import story, vocabulary

Client = TestClient[Any, Any]

# Template lines that read like body text, so only recurrence can tell them apart.
HEADER = "The Daily Valley Courier has reported on the towns of the upper valley since 1887."
FOOTER = "Stories like this one are written by the reporters of the Courier's county desk."
GLUED = "The Courier's newsroom can be reached at the desk around the clock."


def _bodies(n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    words = vocabulary()
    return [story(rng, words, paragraphs=4, length=35) for _ in range(n)]


def _article(i: int, body: str, *, source: str = "courier", header: str = HEADER) -> str:
    # The footer sentence is glued to the last paragraph, as scraped text often has it.
    return f"{header}\n\n{body} {GLUED}\n\n{FOOTER}"


async def _post(client: Client, record: dict[str, Any], dry_run: bool = False) -> Any:
    path = "/v1/articles?dry_run=true" if dry_run else "/v1/articles"
    resp = await client.post(
        path, data=json.dumps(record), headers={"Content-Type": "application/json"}
    )
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


# --- the pure half -----------------------------------------------------------------------------


def test_digests_ignore_case_spacing_and_punctuation() -> None:
    assert digest("Follow us on  Twitter!") == digest("follow us on twitter")
    assert digest("Follow us on Twitter") != digest("Follow us on Mastodon")


def test_segments_are_lines_and_the_sentences_of_long_lines() -> None:
    line = "First sentence of the paragraph here. Second sentence follows it closely."
    assert sentences(line) == [
        "First sentence of the paragraph here.",
        "Second sentence follows it closely.",
    ]
    found = segment_digests([line, "Too short", line])
    assert found == [digest(line), *(digest(s) for s in sentences(line))]


def test_only_whole_lines_and_edge_sentences_are_removed() -> None:
    stock = "The company did not respond to a request for comment."
    body = f"Opening words of the story itself. {stock} Closing words of this paragraph."
    learned = frozenset({digest(HEADER), digest(stock), digest(GLUED)})
    result = apply_learned([HEADER, body, f"Last paragraph of the story. {GLUED}"], learned)
    assert result.paragraphs == (body, "Last paragraph of the story.")
    assert [(r.text, r.layer, r.reason) for r in result.removed] == [
        (HEADER, "learned", "source_repeated_line"),
        (GLUED, "learned", "source_repeated_sentence"),
    ]


def test_nothing_learned_changes_nothing() -> None:
    lines = [HEADER, "A body line of the article."]
    assert apply_learned(lines, frozenset()).paragraphs == tuple(lines)


# --- through the service and Redis --------------------------------------------------------------


async def test_template_is_removed_from_the_fourth_article_on(client: Client) -> None:
    bodies = _bodies(10)
    results = []
    for i, body in enumerate(bodies):
        record = {
            "id": f"c{i}",
            "title": f"Story {i}",
            "source": "courier",
            "text": _article(i, body),
        }
        decision = await _post(client, record)
        assert decision["status"] == "unique"
        stored = await (await client.get(f"/v1/articles/c{i}")).json()
        results.append(stored["article"]["text"])
    for i, text in enumerate(results):
        # The first two layers keep the template: it reads like body text.
        first_layers = clean_text(_article(i, bodies[i]), f"Story {i}").text
        assert all(line in first_layers for line in (HEADER, FOOTER, GLUED))
        if i < 3:
            assert text == first_layers
        else:
            assert not any(line in text for line in (HEADER, FOOTER, GLUED)), (i, text)
            # The body itself is untouched.
            assert all(p in text for p in bodies[i].split("\n\n")[:-1])


async def test_copies_do_not_teach_and_sources_are_apart(client: Client) -> None:
    (body,) = _bodies(1, seed=5)
    # The same article three times under other ids: one story, counted once.
    for i in range(3):
        await _post(client, {"id": f"copy{i}", "source": "courier", "text": _article(i, body)})
    # Another source with the same template has learned nothing either.
    others = _bodies(3, seed=6)
    for i, other in enumerate(others):
        await _post(client, {"id": f"o{i}", "source": "gazette", "text": _article(i, other)})
    (fresh,) = _bodies(1, seed=7)
    preview = await _post(
        client, {"id": "next", "source": "courier", "text": _article(9, fresh)}, dry_run=True
    )
    assert HEADER in preview["article"]["text"]
    # The gazette has had three unique articles: its fourth is cleaned.
    preview = await _post(
        client, {"id": "g4", "source": "gazette", "text": _article(9, fresh)}, dry_run=True
    )
    assert HEADER not in preview["article"]["text"]
    learned = [r for r in preview["article"]["removed"] if r["layer"] == "learned"]
    assert {r["reason"] for r in learned} == {"source_repeated_line", "source_repeated_sentence"}
    assert preview["article"]["removed_counts"]["learned"] == len(learned)


async def test_a_new_template_is_learned_and_stock_sentences_are_not(
    client: Client, redis_client: aioredis.Redis, prefix: str
) -> None:
    bodies = _bodies(16, seed=8)
    stock = "A spokesperson for the council declined to comment on the matter."
    for i, body in enumerate(bodies[:8]):
        # One article in four ends with the same stock sentence as its own paragraph.
        text = _article(i, body) + (f"\n\n{stock}" if i % 4 == 1 else "")
        await _post(client, {"id": f"s{i}", "title": "T", "source": "courier", "text": text})
    new_header = "The Valley Courier is now published by the Mountain Media Group of Denver."
    for i, body in enumerate(bodies[8:11]):
        await _post(
            client,
            {
                "id": f"n{i}",
                "title": "T",
                "source": "courier",
                "text": _article(i, body, header=new_header),
            },
        )
    probe = _article(0, bodies[11], header=new_header) + f"\n\n{stock}"
    record = {"title": "T", "source": "courier", "text": probe}
    preview = await _post(client, record, dry_run=True)
    text = preview["article"]["text"]
    assert new_header not in text
    assert stock in text
    learned_key = Keys(prefix).learned(source_digest("courier"))
    members = {decoded(m) for m in await redis_client.zrange(learned_key, 0, -1)}
    assert digest(new_header) in members
    assert digest(stock) not in members


async def test_a_tagline_taken_for_the_title_is_learned_and_the_headline_restored(
    client: Client,
) -> None:
    tagline = "Example Herald — Your Daily Local News"
    bodies = _bodies(4, seed=12)
    for i, body in enumerate(bodies[:3]):
        text = f"{tagline}\n\nHeadline number {i} of the week\n\n{body}"
        first = await _post(client, {"id": f"h{i}", "source": "herald", "text": text}, dry_run=True)
        assert first["article"]["title"] == tagline  # what the first layers make of it
        await _post(client, {"id": f"h{i}", "source": "herald", "text": text})
    text = f"{tagline}\n\nCouncil delays the vote on the bridge\n\n{bodies[3]}"
    preview = await _post(client, {"source": "herald", "text": text}, dry_run=True)
    article = preview["article"]
    assert article["title"] == "Council delays the vote on the bridge"
    assert tagline not in article["text"]
    assert "Council delays" not in article["text"]
    assert {"text": tagline, "layer": "learned", "reason": "source_repeated_title"} in article[
        "removed"
    ]


def test_stripping_a_learned_sentence_keeps_the_rest_of_the_line_as_it_was() -> None:
    body = "He said: “We will not comply.” Officials disagreed (sharply.) “It is the law.”"
    result = apply_learned([f"{body} {GLUED}"], frozenset({digest(GLUED)}))
    assert result.paragraphs == (body,)


async def test_a_replayed_article_is_counted_once(
    client: Client, redis_client: aioredis.Redis, prefix: str
) -> None:
    (body,) = _bodies(1, seed=13)
    record = {"id": "once", "title": "T", "source": "courier", "text": _article(0, body)}
    for _ in range(3):  # a client retrying after lost replies
        await _post(client, record)
    src = Keys(prefix).source(source_digest("courier"))
    assert await redis_client.hget(src, "n") == b"1"
    preview = await _post(client, {**record, "id": "next"}, dry_run=True)
    assert HEADER in preview["article"]["text"]


async def test_an_article_of_template_only_is_a_422(client: Client) -> None:
    for i, body in enumerate(_bodies(3, seed=9)):
        await _post(client, {"id": f"t{i}", "source": "courier", "text": _article(i, body)})
    resp = await client.post(
        "/v1/articles",
        data=json.dumps({"source": "courier", "text": f"{HEADER}\n\n{FOOTER}"}),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "empty_after_cleaning"
    assert error["details"][0]["field"] == "text"


# --- the learned layer in the worker's one trip --------------------------------------------------


def test_a_worker_keeps_the_set_it_was_sent_for_the_next_articles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prepare, "_KNOWN", LearnedCache(prepare.KNOWN_DIGESTS))
    bodies = _bodies(4, seed=21)
    template = LearnedSet.of({digest(HEADER), digest(FOOTER), digest(GLUED)})

    def article(i: int, source: str = "courier") -> ArticleIn:
        return ArticleIn(source=source, title=f"T{i}", text=_article(i, bodies[i]))

    def text_of(prepared: Prepared | ItemError) -> str:
        assert isinstance(prepared, Prepared)
        return ArticlePayload.model_validate_json(prepared.payload_json).text

    sent = prepare.prepare_article(article(0), Params(), template)
    kept = prepare.prepare_article(article(1), Params())  # nothing sent: the set kept for it
    other = prepare.prepare_article(article(2, source="gazette"), Params())
    for prepared in (sent, kept):
        assert isinstance(prepared, Prepared)
        assert prepared.learned_version == template.version
        assert not any(line in text_of(prepared) for line in (HEADER, FOOTER, GLUED))
    assert isinstance(other, Prepared)
    assert other.learned_version is None
    assert HEADER in text_of(other)
    # Sent that nothing is learned, the worker forgets the set; the article is the same one
    # (id, request hash, segments) whichever set it was cleaned with.
    without = prepare.prepare_article(article(3), Params(), NOTHING_LEARNED)
    with_it = prepare.prepare_article(article(3), Params(), template)
    assert isinstance(without, Prepared)
    assert isinstance(with_it, Prepared)
    assert without.learned_version is None
    assert HEADER in text_of(without)
    assert HEADER not in text_of(with_it)
    assert (without.id, without.request_hash, without.segments) == (
        with_it.id,
        with_it.request_hash,
        with_it.segments,
    )
    # A set sent along with a task as a hint is kept for the source too.
    (hinted,) = prepare.prepare_items(
        [{"source": "courier", "title": "T", "text": _article(3, bodies[3])}],
        Params(),
        hints=[("courier", template)],
    )
    assert isinstance(hinted, Prepared)
    assert hinted.learned_version == template.version
    # Bounded by digests: past the bound the process starts afresh.
    cache = LearnedCache(5)
    cache.put("a", template)
    cache.put("a", template)
    assert (list(cache.sets), cache.digests) == (["a"], 3)
    cache.put("b", template)
    assert (list(cache.sets), cache.digests) == (["b"], 3)


def _count_trips(monkeypatch: pytest.MonkeyPatch, pool: WorkerPool) -> Counter[str]:
    """Count the pool's tasks by function name (the pool is the test session's, shared)."""
    trips: Counter[str] = Counter()
    run, run_each = pool.run, pool.run_each

    async def counted_run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips[fn.__name__] += 1
        return await run(fn, *args, **kwargs)

    async def counted_each(fn: Any, items: Any, *args: Any, **kwargs: Any) -> Any:
        trips[fn.__name__] += len(items)
        return await run_each(fn, items, *args, **kwargs)

    monkeypatch.setattr(pool, "run", counted_run)
    monkeypatch.setattr(pool, "run_each", counted_each)
    return trips


async def test_a_known_template_costs_no_second_trip(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = _bodies(12, seed=22)
    for i, body in enumerate(bodies[:3]):
        await _post(
            client, {"id": f"k{i}", "title": "T", "source": "courier", "text": _article(i, body)}
        )
    trips = _count_trips(monkeypatch, client.app[PIPELINE].pool)
    for i, body in enumerate(bodies[3:], start=3):
        record = {"id": f"k{i}", "title": "T", "source": "courier", "text": _article(i, body)}
        await _post(client, record)
        stored = await (await client.get(f"/v1/articles/k{i}")).json()
        assert not any(line in stored["article"]["text"] for line in (HEADER, FOOTER, GLUED))
    # Nine articles, each in one trip, but for at most one more per worker: its first article
    # of the source since the set was learned (a worker may also have kept an older one).
    assert trips["prepare_single"] == 9
    assert trips["_prepare_single_with"] <= client.app[PIPELINE].pool.size


async def test_an_answer_made_with_an_older_set_is_made_again(
    client: Client, redis_client: aioredis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = _bodies(8, seed=23)
    for i, body in enumerate(bodies[:6]):
        await _post(
            client, {"id": f"s{i}", "title": "T", "source": "courier", "text": _article(i, body)}
        )
    # The source learns one more line (written as learn.lua would); every worker still keeps
    # the set it had, and this replica's cache is dropped as after one of its own decisions.
    pitch = "Readers of the Courier can order the printed weekly at the county desk."
    learned_key = Keys(prefix).learned(source_digest("courier"))
    now_ms = int((await redis_client.time())[0]) * 1000
    await redis_client.zadd(learned_key, {digest(pitch): now_ms})
    client.app[PIPELINE]._learned.forget("courier")
    trips = _count_trips(monkeypatch, client.app[PIPELINE].pool)
    record = {"title": "T", "source": "courier", "text": f"{_article(7, bodies[7])}\n\n{pitch}"}
    preview = await _post(client, record, dry_run=True)
    assert pitch not in preview["article"]["text"]
    assert HEADER not in preview["article"]["text"]
    assert trips["_prepare_single_with"] == 1
