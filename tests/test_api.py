"""The HTTP API end to end against real Redis: every endpoint and every error code."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from service.keys import Keys
from service.models import ArticleEvent, Decision, DuplicateEvent, parse_event
from service.settings import Settings

from .conftest import free_port, stream_entries
from .factories import seed_records, seed_text, story, vocabulary

Client = TestClient[Any, Any]


async def events(redis_client: aioredis.Redis, stream: str) -> list[tuple[str, Any]]:
    """(type, parsed event) of every entry of a stream."""
    entries = await stream_entries(redis_client, stream)
    return [
        (fields[b"type"].decode(), parse_event(fields[b"type"].decode(), fields[b"data"]))
        for _id, fields in entries
    ]


async def post(client: Client, body: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    resp = await client.post("/v1/articles", json=body, **kwargs)
    return resp.status, await resp.json()


# --- the seeds ------------------------------------------------------------------------------


async def test_seeds_are_five_unique_stories(
    client: Client, redis_client: aioredis.Redis, prefix: str
) -> None:
    keys = Keys(prefix)
    for record in seed_records():
        status, body = await post(client, record)
        assert status == 201, body
        decision = Decision.model_validate(body)
        assert decision.status == "unique"
        assert decision.id == record["id"]
        assert decision.event_id is not None
        assert not decision.replayed
    created = await events(redis_client, keys.articles_stream)
    assert [t for t, _ in created] == ["article.created"] * 5
    assert {e.id for _, e in created} == {r["id"] for r in seed_records()}
    assert await redis_client.xlen(keys.duplicates_stream) == 0


async def test_repost_is_a_replay_and_publishes_nothing(
    client: Client, redis_client: aioredis.Redis, prefix: str
) -> None:
    record = seed_records()[1]
    status, first = await post(client, record)
    assert status == 201
    status, again = await post(client, record)
    assert status == 200
    assert again["replayed"] is True
    assert again["id"] == first["id"]
    assert again["event_id"] == first["event_id"]
    assert again["status"] == "unique"
    assert await redis_client.xlen(Keys(prefix).articles_stream) == 1


async def test_seed_000_without_its_header_is_a_duplicate(
    client: Client, redis_client: aioredis.Redis, prefix: str
) -> None:
    original = seed_records()[0]
    await post(client, original)
    lines = seed_text("000").splitlines()
    # Drop the three title lines (the third carries the CNN header blob).
    headless = "\n".join(lines[3:])
    status, body = await post(client, {"id": "copy-of-000", "text": headless})
    assert status == 200, body
    assert body["status"] == "duplicate"
    assert body["duplicate_of"] == original["id"]
    assert body["similarity"] >= 0.9
    assert body["relation"] in {"exact", "near_duplicate"}
    dups = await events(redis_client, Keys(prefix).duplicates_stream)
    assert len(dups) == 1
    kind, event = dups[0]
    assert kind == "article.duplicate"
    assert isinstance(event, DuplicateEvent)
    assert (event.id, event.duplicate_of) == ("copy-of-000", original["id"])
    assert event.similarity >= 0.9


async def test_created_event_carries_the_cleaned_article(
    client: Client, redis_client: aioredis.Redis, prefix: str
) -> None:
    record = seed_records()[3]
    await post(client, record)
    ((kind, event),) = await events(redis_client, Keys(prefix).articles_stream)
    assert kind == "article.created"
    assert isinstance(event, ArticleEvent)
    assert event.schema_version == 1
    assert event.decision.status == "unique"
    assert "Leave a comment" not in event.article.text
    assert "Your email address will not be published" not in event.article.text
    assert "Federal Judge William Orrick" in event.article.text
    assert event.article.word_count > 300
    assert event.article.removed_counts


async def test_an_html_article_event_carries_the_page_metadata(
    client: Client, redis_client: aioredis.Redis, prefix: str
) -> None:
    text = story(random.Random(11), vocabulary(), paragraphs=4, length=40)
    paragraphs = "".join(f"<p>{paragraph}</p>" for paragraph in text.split("\n\n"))
    page = (
        "<html><head><title>Harbour reopens | Example Gazette</title>"
        '<meta property="og:site_name" content="Example Gazette">'
        '<meta name="description" content="The harbour reopened after repairs.">'
        '<meta name="keywords" content="harbour, shipping; Harbour">'
        f"</head><body><article><h1>Harbour reopens</h1>{paragraphs}</article></body></html>"
    )
    status, body = await post(client, {"id": "page-1", "html": page, "source": "gazette"})
    assert status == 201, body
    ((_, event),) = await events(redis_client, Keys(prefix).articles_stream)
    assert isinstance(event, ArticleEvent)
    assert event.article.sitename == "Example Gazette"
    assert event.article.description == "The harbour reopened after repairs."
    assert event.article.tags == ["harbour", "shipping"]
    assert event.article.categories == []
    resp = await client.get("/v1/articles/page-1")
    assert (await resp.json())["article"]["tags"] == ["harbour", "shipping"]


# --- dry run and GET ------------------------------------------------------------------------


async def test_dry_run_shows_the_article_and_stores_nothing(
    client: Client, redis_client: aioredis.Redis, prefix: str
) -> None:
    record = seed_records()[2]
    status, body = await post(client, record, params={"dry_run": "true"})
    assert status == 200
    assert body["status"] == "unique"
    assert body["event_id"] is None
    article = body["article"]
    assert article["title"].startswith("Mayors boycott Trump meeting")
    assert not article["text"].startswith(article["title"])
    assert "clock menu more-arrow" not in article["text"]
    assert article["word_count"] > 200
    assert len(article["content_hash"]) == 64
    reasons = {r["reason"] for r in article["removed"]}
    assert reasons, "the audit names what cleaning removed"
    assert all({"text", "layer", "reason"} <= set(r) for r in article["removed"])
    assert await redis_client.exists(Keys(prefix).articles_stream) == 0
    resp = await client.get(f"/v1/articles/{record['id']}")
    assert resp.status == 404
    # A dry run of an accepted article answers what a real post would: a replay.
    await post(client, record)
    status, body = await post(client, record, params={"dry_run": "1"})
    assert body["replayed"] is True


async def test_get_article(client: Client) -> None:
    record = seed_records()[4]
    await post(client, record)
    resp = await client.get(f"/v1/articles/{record['id']}")
    assert resp.status == 200
    body = await resp.json()
    assert body["decision"]["status"] == "unique"
    assert body["article"]["title"] == record["title"]
    assert "Related Content" not in body["article"]["text"]
    resp = await client.get("/v1/articles/no-such-article")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    resp = await client.get("/v1/articles/bad%20id")
    assert resp.status == 422
    assert (await resp.json())["error"]["details"][0]["field"] == "id"


async def test_ids_are_derived_from_url_then_content(client: Client) -> None:
    text = seed_text("004")
    _, by_url = await post(
        client, {"url": "https://www.example.com/a/story/?utm_source=x", "text": text}
    )
    assert by_url["id"].startswith("u-")
    _, same_url = await post(client, {"url": "http://example.com/a/story#top", "text": text})
    assert same_url["id"] == by_url["id"]
    assert same_url["replayed"] is True
    _, by_content = await post(client, {"text": seed_text("001")})
    assert by_content["id"].startswith("c-")


# --- batch ----------------------------------------------------------------------------------


async def test_batch_json_array_dedups_within_the_batch(
    client: Client, redis_client: aioredis.Redis, prefix: str
) -> None:
    rng = random.Random(1)
    words = vocabulary()
    base = story(rng, words)
    other = story(rng, words)
    items = [
        {"id": "a", "text": base},
        {"id": "b", "text": base.replace(".", "!", 1) + " Extra closing words here."},
        {"id": "c", "text": other},
        {"id": "bad", "text": "x", "html": "<p>x</p>"},
    ]
    resp = await client.post("/v1/articles/batch", json=items)
    assert resp.status == 200
    results = (await resp.json())["results"]
    assert [r.get("status") for r in results[:3]] == ["unique", "duplicate", "unique"]
    assert results[1]["duplicate_of"] == "a"
    assert results[3]["error"]["code"] == "validation_error"
    assert results[3]["error"]["details"][0]["field"] == "text"
    keys = Keys(prefix)
    assert await redis_client.xlen(keys.articles_stream) == 2
    assert await redis_client.xlen(keys.duplicates_stream) == 1


async def test_batch_ndjson_with_a_broken_line(client: Client) -> None:
    body = "\n".join(
        [json.dumps({"id": "n1", "text": seed_text("001")}), "{not json", json.dumps({"id": 5})]
    )
    resp = await client.post(
        "/v1/articles/batch", data=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert resp.status == 200
    results = (await resp.json())["results"]
    assert results[0]["status"] == "unique"
    assert results[1]["error"]["code"] == "malformed_json"
    assert results[2]["error"]["code"] == "validation_error"
    fields = {d["field"] for d in results[2]["error"]["details"]}
    assert "id" in fields


async def test_ndjson_lines_end_only_at_newline(client: Client) -> None:
    """U+2028, U+2029 and U+0085 may stand raw inside JSON strings: not line ends."""
    texts = [seed_text("001") + "\u2028tail", "Line\u2029two\u0085three " + seed_text("004")]
    body = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\r\n" for t in texts)
    resp = await client.post(
        "/v1/articles/batch", data=body.encode(), headers={"Content-Type": "application/x-ndjson"}
    )
    assert resp.status == 200
    results = (await resp.json())["results"]
    assert [r.get("status") for r in results] == ["unique", "unique"]


async def test_batch_limits(make_client: Callable[..., Any], make_settings: Any) -> None:
    client = await make_client(make_settings(max_batch_items=3))
    resp = await client.post("/v1/articles/batch", json=[{"text": "a b c"}] * 4)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "too_many_items"
    resp = await client.post("/v1/articles/batch", json=[])
    assert resp.status == 422
    resp = await client.post("/v1/articles/batch", json={"text": "not an array"})
    assert resp.status == 422
    assert (await resp.json())["error"]["details"][0]["field"] == "body"
    resp = await client.post("/v1/articles/batch", json=[{"nope": 1}, {"text": ""}])
    assert resp.status == 422
    body = await resp.json()
    assert body["error"]["code"] == "all_items_invalid"
    assert [d["index"] for d in body["error"]["details"]] == [0, 1]


# --- errors ---------------------------------------------------------------------------------


async def test_malformed_json_is_400(client: Client) -> None:
    resp = await client.post(
        "/v1/articles", data=b'{"text": ', headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["code"] == "malformed_json"
    assert body["error"]["request_id"] == resp.headers["X-Request-ID"]


async def test_invalid_utf8_is_400(client: Client) -> None:
    resp = await client.post(
        "/v1/articles", data=b'{"text": "\xff\xfe"}', headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_utf8"


async def test_wrong_media_type_is_415(client: Client) -> None:
    resp = await client.post(
        "/v1/articles", data="text=hello", headers={"Content-Type": "text/plain"}
    )
    assert resp.status == 415
    assert (await resp.json())["error"]["code"] == "unsupported_media_type"


async def test_body_over_the_limit_is_413(
    make_client: Callable[..., Any], make_settings: Any
) -> None:
    client = await make_client(make_settings(max_body_bytes=2048))
    resp = await client.post("/v1/articles", json={"text": "word " * 1000})
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "body_too_large"
    # A small gzip body that inflates past the limit is refused as well.
    packed = gzip.compress(json.dumps({"text": "a" * 100_000}).encode())
    assert len(packed) < 2048
    resp = await client.post(
        "/v1/articles",
        data=packed,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert resp.status == 413


async def test_validation_errors_name_the_field(client: Client) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"text": "a", "html": "<p>a</p>"}, "text"),
        ({}, "text"),
        ({"text": "body", "url": "ftp://example.com/x"}, "url"),
        ({"text": "body", "url": "http://example.com:99999/x"}, "url"),
        ({"text": "body", "id": "has space"}, "id"),
        ({"text": "body", "id": "a" * 201}, "id"),
        ({"text": "body", "id": "{tag}"}, "id"),
        ({"text": "body", "published_at": "yesterday"}, "published_at"),
        ({"text": "body", "published_at": "2024-02-30T10:00:00Z"}, "published_at"),
        ({"text": "body", "language": "english please"}, "language"),
        ({"text": 42}, "text"),
        ({"text": "body", "titel": "typo"}, "titel"),
        ({"text": "nul \x00 inside"}, "text"),
    ]
    for payload, field in cases:
        status, body = await post(client, payload)
        assert status == 422, (payload, body)
        assert body["error"]["code"] == "validation_error"
        fields = {d["field"] for d in body["error"]["details"]}
        assert field in fields, (payload, body)


async def test_text_empty_after_cleaning_is_422(client: Client) -> None:
    status, body = await post(client, {"text": "Read More\n\nLeave a comment"})
    assert status == 422
    assert body["error"]["code"] in {"empty_after_cleaning", "empty_text"}
    assert body["error"]["details"][0]["field"] == "text"
    status, body = await post(client, {"text": "   \n  "})
    assert status == 422


async def test_bad_dry_run_flag_is_422(client: Client) -> None:
    # An empty value is no boolean either: the OpenAPI document says true or false
    # (schemathesis found `?dry_run=` accepted as false).
    for value in ("maybe", ""):
        status, body = await post(client, {"text": "body"}, params={"dry_run": value})
        assert status == 422
        assert body["error"]["details"][0]["field"] == "dry_run"


async def test_api_keys(make_client: Callable[..., Any], make_settings: Any) -> None:
    client = await make_client(make_settings(api_keys="k1,k2"))
    record = {"text": seed_text("002")}
    status, body = await post(client, record)
    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    status, _ = await post(client, record, headers={"Authorization": "Bearer wrong"})
    assert status == 401
    status, _ = await post(client, record, headers={"Authorization": "Bearer k2"})
    assert status == 201
    status, body = await post(client, record, headers={"X-API-Key": "k1"})
    assert status == 200
    assert body["replayed"] is True
    # Probes stay open so orchestrators need no key.
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/v1/articles/x")).status == 401


async def test_redis_down_is_503_with_retry_after(
    make_client: Callable[..., Any], make_settings: Any
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = await make_client(make_settings(redis_url=dead, redis_timeout_s=0.5))
    status, body = await post(client, {"text": seed_text("001")})
    assert status == 503
    assert body["error"]["code"] == "store_unavailable"
    resp = await client.post("/v1/articles", json={"text": seed_text("002")})
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1"
    resp = await client.get("/readyz")
    assert resp.status == 503
    resp = await client.get("/healthz")
    assert resp.status == 200
    resp = await client.get("/v1/articles/some-id")
    assert resp.status == 503


async def test_unknown_route_and_method_are_json(client: Client) -> None:
    resp = await client.get("/nope")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    resp = await client.get("/v1/articles")
    assert resp.status == 405
    assert (await resp.json())["error"]["code"] == "method_not_allowed"


# --- probes, metrics, OpenAPI ---------------------------------------------------------------


async def test_probes_and_metrics(client: Client) -> None:
    assert (await (await client.get("/healthz")).json())["status"] == "ok"
    resp = await client.get("/readyz")
    assert resp.status == 200
    await post(client, {"text": seed_text("004")})
    resp = await client.get("/metrics")
    assert resp.status == 200
    text = await resp.text()
    assert 'news_ingest_articles_total{relation="none",status="unique"} 1.0' in text
    assert "news_ingest_request_seconds_bucket" in text
    assert 'news_ingest_source_articles_total{source="unknown",status="unique"} 1.0' in text
    assert "news_ingest_worker_replacements" in text
    assert "news_ingest_pool_pending" in text


async def test_openapi_document(client: Client, settings: Settings) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    assert {
        "/v1/articles",
        "/v1/articles/batch",
        "/v1/articles/{id}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    } <= set(doc["paths"])
    schemas = doc["components"]["schemas"]
    assert {"ArticleIn", "Decision", "DryRunDecision", "ErrorResponse"} <= set(schemas)
    assert schemas["ArticleIn"]["additionalProperties"] is False
    batch = doc["paths"]["/v1/articles/batch"]["post"]["requestBody"]["content"]
    assert batch["application/json"]["schema"]["maxItems"] == settings.max_batch_items
    # Every $ref resolves.
    refs = [m for m in json.dumps(doc).split('"$ref": "')[1:]]
    for ref in refs:
        name = ref.split('"')[0].rsplit("/", 1)[-1]
        assert name in schemas, name


@pytest.mark.parametrize("article_id", [".", "..", "..."])
async def test_an_id_of_dots_only_is_refused(client: Client, article_id: str) -> None:
    # /v1/articles/.. is a dot segment: HTTP clients resolve it away, so such an article
    # could be stored but never read back (schemathesis found "." once).
    status, body = await post(client, {"id": article_id, "text": seed_text("000")})
    assert status == 422, body
    assert body["error"]["details"][0]["field"] == "id"
    status, _ = await post(client, {"id": f"{article_id}x", "text": seed_text("000")})
    assert status == 201
