"""Hostile input over HTTP: every case gets a clear 4xx JSON error and stores nothing.

Each error answer is ``{"error": {"code", "message", "details", "request_id"}}`` with the
details naming the field where there is one; after each case the test's key prefix holds no
article data and both streams are absent or empty. A 5xx is never an acceptable answer.

Control characters, as decided in ``service.models``: NUL is refused (422 on its field)
everywhere; the other C0 and C1 controls are cleaned away silently in ``text``, ``html`` and
``title`` (scraping debris) and refused in ``source`` and ``url`` (identifiers, published as
given).
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from service.keys import Keys
from service.prepare import MAX_ITEM_DEPTH

from .conftest import stream_entries
from .factories import seed_text

Client = TestClient[Any, Any]

SINGLE = "/v1/articles"
BATCH = "/v1/articles/batch"
JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}
# Key kinds that hold article data (service.keys); index:meta is written at start-up.
ARTICLE_KEY_KINDS = frozenset({"art", "sig", "hash", "url", "lsh"})
# A body long enough to be accepted, for the cases where only one field is hostile.
BODY = seed_text("004")


async def nothing_stored(redis_client: aioredis.Redis, prefix: str) -> None:
    keys = Keys(prefix)
    found = [k.decode() async for k in redis_client.scan_iter(match=keys.all_pattern())]
    data = [k for k in found if k[len(prefix) + 1 :].split(":", 1)[0] in ARTICLE_KEY_KINDS]
    assert data == [], data
    assert await redis_client.xlen(keys.articles_stream) == 0
    assert await redis_client.xlen(keys.duplicates_stream) == 0


async def error_of(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The ``error`` object of a JSON error answer, after checking its shape."""
    text = await resp.text()
    assert resp.status == status, text
    assert resp.content_type == "application/json", text
    body = json.loads(text)
    assert set(body) <= {"error", "results"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}, error
    assert error["message"]
    assert error["request_id"] == resp.headers["X-Request-ID"]
    assert isinstance(error["details"], list)
    if code is not None:
        assert error["code"] == code, error
    return error


def fields(error: dict[str, Any]) -> set[str]:
    return {d["field"] for d in error["details"] if "field" in d}


async def post(client: Client, path: str, data: bytes | str, **headers: str) -> Any:
    """POST ``data`` as JSON; ``Content_Encoding="gzip"`` sends a Content-Encoding header."""
    raw = data.encode() if isinstance(data, str) else data
    # aiohttp warns that large bytes bodies block the loop; a stream does not.
    body = io.BytesIO(raw) if len(raw) > 1 << 20 else raw
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    return await client.post(path, data=body, headers={**JSON, **named})


# --- malformed bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "data"),
    [
        (SINGLE, b'{"text": '),
        (SINGLE, b""),
        (SINGLE, b'{"text": "a"} trailing'),
        (SINGLE, b"{'text': 'single quotes'}"),
        (SINGLE, b'{"text": "a",}'),
        (BATCH, b'[{"text": "a"},'),
        (BATCH, b"[" + json.dumps({"text": BODY}).encode() + b"] ]"),
    ],
)
async def test_malformed_json_is_400(
    client: Client, redis_client: aioredis.Redis, prefix: str, path: str, data: bytes
) -> None:
    error = await error_of(await post(client, path, data), 400, "malformed_json")
    assert fields(error) == {"body"}
    assert {"line", "column"} <= set(error["details"][0])
    await nothing_stored(redis_client, prefix)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": 42}, "text"),
        ({"html": ["<p>x</p>"]}, "html"),
        ({"text": BODY, "title": {"a": 1}}, "title"),
        ({"text": BODY, "id": 7}, "id"),
        ({"text": BODY, "url": True}, "url"),
        ({"text": BODY, "published_at": 20240501}, "published_at"),
        ({"text": BODY, "language": ["en"]}, "language"),
        ({"text": BODY, "source": ""}, "source"),
        ({"text": BODY, "html": "<p>both</p>"}, "text"),
        ({"text": None}, "text"),
        ("an article as a bare string", "body"),
        ([{"text": BODY}], "body"),
        (None, "body"),
        (3.5, "body"),
    ],
)
async def test_wrong_types_are_422_on_the_field(
    client: Client, redis_client: aioredis.Redis, prefix: str, body: Any, field: str
) -> None:
    error = await error_of(await post(client, SINGLE, json.dumps(body)), 422, "validation_error")
    assert field in fields(error), error
    await nothing_stored(redis_client, prefix)


@pytest.mark.parametrize("unknown", ["titel", "Text", "body", "__proto__", "", "extra.field"])
async def test_unknown_fields_are_rejected(
    client: Client, redis_client: aioredis.Redis, prefix: str, unknown: str
) -> None:
    """extra="forbid" (README): a misspelt field is a 422, not a value silently dropped."""
    resp = await post(client, SINGLE, json.dumps({"text": BODY, unknown: "value"}))
    error = await error_of(resp, 422, "validation_error")
    (detail,) = error["details"]
    assert detail["field"] == unknown
    assert detail["type"] == "extra_forbidden"
    resp = await post(client, BATCH, json.dumps([{"text": BODY, unknown: 1}]))
    error = await error_of(resp, 422, "all_items_invalid")
    assert error["details"][0]["details"][0]["field"] == unknown
    await nothing_stored(redis_client, prefix)


# --- size limits, checked while reading -----------------------------------------------------


async def raw_exchange(
    client: Client, head: str, body: bytes, *, timeout_s: float = 5.0
) -> tuple[int, dict[str, Any], float]:
    """Send ``head`` and ``body`` on a raw socket, never finish the body, read the answer."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        await writer.drain()
        started = time.perf_counter()
        status_line = await asyncio.wait_for(reader.readline(), timeout_s)
        length = 0
        while (line := await asyncio.wait_for(reader.readline(), timeout_s)) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        payload = await asyncio.wait_for(reader.readexactly(length), timeout_s)
        elapsed = time.perf_counter() - started
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1]), json.loads(payload), elapsed


def request_head(path: str, **headers: str) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: localhost", "Content-Type: application/json"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("path", [SINGLE, BATCH])
async def test_declared_length_over_the_limit_is_refused_before_reading(
    client: Client, redis_client: aioredis.Redis, prefix: str, path: str
) -> None:
    """A terabyte announced, a few bytes sent: the 413 comes back at once."""
    head = request_head(path, Content_Length=str(10**12))
    status, body, elapsed = await raw_exchange(client, head, b'{"text": "' + b"a" * 1000)
    assert status == 413
    assert body["error"]["code"] == "body_too_large"
    assert fields(body["error"]) == {"body"}
    assert elapsed < 2.0
    await nothing_stored(redis_client, prefix)


async def test_chunked_body_is_refused_once_it_passes_the_limit(
    make_client: Callable[..., Any],
    make_settings: Callable[..., Any],
    redis_client: aioredis.Redis,
    prefix: str,
) -> None:
    """No Content-Length at all: the limit is counted as the body streams in."""
    client = await make_client(make_settings(max_body_bytes=64 * 1024))
    chunks = [b'{"text": "'] + [b"a" * 8192] * 10
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    # The body is never finished (no last chunk): only a streaming check can answer.
    head = request_head(SINGLE, Transfer_Encoding="chunked")
    status, body, _ = await raw_exchange(client, head, framed)
    assert status == 413
    assert body["error"]["details"] == [{"field": "body", "limit_bytes": 64 * 1024}]
    await nothing_stored(redis_client, prefix)


def gzip_of_spaces(inflated_mib: int) -> bytes:
    """A gzip member of ``inflated_mib`` MiB of spaces, about 1,000 times smaller.

    Built from one fully flushed deflate block repeated (a full flush resets the window, so
    the block's bytes are the same every time), which is far faster than compressing it all.
    """
    block = b" " * (1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    unit = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(inflated_mib):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", crc, (inflated_mib << 20) & 0xFFFFFFFF)
    return header + unit * inflated_mib + packer.flush() + trailer


async def test_gzip_bomb_is_413_without_inflating_it(
    client: Client, redis_client: aioredis.Redis, prefix: str
) -> None:
    """256 KB of gzip that inflates to 256 MiB against the 5 MB limit."""
    bomb = gzip_of_spaces(256)
    assert len(bomb) < 300_000
    tracemalloc.start()
    started = time.perf_counter()
    try:
        resp = await post(client, SINGLE, bomb, Content_Encoding="gzip")
        error = await error_of(resp, 413, "body_too_large")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fields(error) == {"body"}
    print(f"gzip bomb: 413 after {elapsed:.2f} s, traced memory peak {peak / 2**20:.1f} MiB")
    # The body is inflated in bounded steps and dropped at the limit: a few limits' worth of
    # memory at most, never the 256 MiB.
    assert peak < 40 * 2**20, peak
    assert elapsed < 10.0
    # Half a bomb, the rest never sent: the answer cannot wait for the whole body to inflate.
    head = request_head(SINGLE, Content_Encoding="gzip", Content_Length=str(len(bomb)))
    status, body, elapsed = await raw_exchange(client, head, bomb[: len(bomb) // 2])
    assert (status, body["error"]["code"]) == (413, "body_too_large")
    assert elapsed < 2.0
    await nothing_stored(redis_client, prefix)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_corrupt_compressed_body_is_400(
    client: Client, redis_client: aioredis.Redis, prefix: str, encoding: str
) -> None:
    resp = await post(client, SINGLE, b"this is not compressed", Content_Encoding=encoding)
    error = await error_of(resp, 400, "undecodable_body")
    assert fields(error) == {"Content-Encoding"}
    await nothing_stored(redis_client, prefix)


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "x-unknown", "gzip, br"])
async def test_unsupported_content_encoding_is_415_json(
    client: Client, redis_client: aioredis.Redis, prefix: str, encoding: str
) -> None:
    """br and zstd used to get aiohttp's plain-text 400, and unknown codings were stored raw."""
    for path in (SINGLE, BATCH):
        data = json.dumps({"text": BODY} if path == SINGLE else [{"text": BODY}])
        resp = await post(client, path, data, Content_Encoding=encoding)
        error = await error_of(resp, 415, "unsupported_content_encoding")
        assert fields(error) == {"Content-Encoding"}
        assert error["details"][0]["allowed"] == ["deflate", "gzip", "identity"]
    await nothing_stored(redis_client, prefix)


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("GZIP", gzip.compress),
        ("deflate", zlib.compress),  # the zlib format RFC 9110 names
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some send
        ("identity", lambda data: data),
        ("identity, gzip", gzip.compress),
    ],
)
async def test_supported_content_encodings_are_inflated(
    client: Client, encoding: str, pack: Callable[[bytes], bytes]
) -> None:
    article = {"id": "coded-1", "text": BODY}
    resp = await post(client, SINGLE, pack(json.dumps(article).encode()), Content_Encoding=encoding)
    assert resp.status == 201, await resp.text()
    # The same article sent plain: what was stored from the encoded one is what it gives.
    plain = await post(client, SINGLE + "?dry_run=true", json.dumps(article))
    stored = await (await client.get("/v1/articles/coded-1")).json()
    assert stored["article"]["text"] == (await plain.json())["article"]["text"]


@pytest.mark.parametrize(
    "data",
    [
        gzip.compress(b'{"text": "one"}') + b"trailing bytes",
        gzip.compress(b'{"text": "one"}') + gzip.compress(b'{"text": "two"}'),
        gzip.compress(json.dumps({"text": BODY}).encode())[:-20],
    ],
    ids=["trailing-garbage", "second-member", "truncated"],
)
async def test_gzip_body_that_does_not_end_with_its_stream_is_400(
    client: Client, redis_client: aioredis.Redis, prefix: str, data: bytes
) -> None:
    """Inflating only the first part would store a silently truncated article."""
    resp = await post(client, SINGLE, data, Content_Encoding="gzip")
    error = await error_of(resp, 400, "undecodable_body")
    assert fields(error) == {"Content-Encoding"}
    await nothing_stored(redis_client, prefix)


def long_line(size: int) -> str:
    """One line of ``size`` characters of prose, no newline anywhere."""
    sentence = " ".join(BODY.split()[:300]) + " "
    return (sentence * (size // len(sentence) + 1))[:size]


async def test_ten_megabyte_line(client: Client, redis_client: aioredis.Redis, prefix: str) -> None:
    """Over the 5 MB single-article limit: 413. Within the 64 MB batch limit: processed."""
    line = long_line(10_000_000)
    resp = await post(client, SINGLE, json.dumps({"text": line}))
    error = await error_of(resp, 413, "body_too_large")
    assert error["details"][0]["limit_bytes"] == 5_000_000
    await nothing_stored(redis_client, prefix)
    started = time.perf_counter()
    resp = await post(client, BATCH, json.dumps([{"id": "long-line", "text": line}]))
    assert resp.status == 200, await resp.text()
    (result,) = (await resp.json())["results"]
    elapsed = time.perf_counter() - started
    print(f"10 MB line in a batch: {elapsed:.1f} s, {result}")
    assert elapsed < 60
    if "error" in result:  # a clear refusal is acceptable too, a hang or a 5xx is not
        assert result["error"]["code"] in {"extraction_timeout", "body_too_large"}, result
    else:
        assert (result["id"], result["status"]) == ("long-line", "unique")


@pytest.mark.parametrize("ndjson", [False, True])
async def test_batch_over_the_item_limit_is_413(
    client: Client, redis_client: aioredis.Redis, prefix: str, ndjson: bool
) -> None:
    items = [{"id": f"i{n}", "text": f"Article number {n} has a few words."} for n in range(1001)]
    if ndjson:
        resp = await client.post(
            BATCH, data="\n".join(json.dumps(i) for i in items), headers=NDJSON
        )
    else:
        resp = await post(client, BATCH, json.dumps(items))
    error = await error_of(resp, 413, "too_many_items")
    assert error["details"] == [{"field": "body", "limit": 1000, "count": 1001}]
    await nothing_stored(redis_client, prefix)


# --- nesting --------------------------------------------------------------------------------


def nested(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize(
    ("path", "data"),
    [
        (SINGLE, nested(10_000)),
        (SINGLE, '{"text": ' + nested(10_000) + "}"),
        (SINGLE, '{"text": "x", "title": ' + '{"a": ' * 10_000 + "1" + "}" * 10_000 + "}"),
        (BATCH, nested(10_000)),
        (BATCH, "[" + '{"text": ' + nested(10_000) + "}]"),
    ],
)
async def test_json_nested_ten_thousand_deep_is_400(
    client: Client, redis_client: aioredis.Redis, prefix: str, path: str, data: str
) -> None:
    error = await error_of(await post(client, path, data), 400, "json_too_deep")
    assert fields(error) == {"body"}
    await nothing_stored(redis_client, prefix)


async def test_deep_ndjson_lines_fail_alone(
    client: Client, redis_client: aioredis.Redis, prefix: str
) -> None:
    lines = [nested(10_000), '{"text": ' + nested(10_000) + "}"]
    resp = await client.post(BATCH, data="\n".join(lines), headers=NDJSON)
    error = await error_of(resp, 422, "all_items_invalid")
    assert [d["code"] for d in error["details"]] == ["json_too_deep", "json_too_deep"]
    await nothing_stored(redis_client, prefix)


@pytest.mark.parametrize("depth", [MAX_ITEM_DEPTH + 1, 600, 900])
async def test_batch_items_nested_below_the_json_limit_fail_alone(
    client: Client, redis_client: aioredis.Redis, prefix: str, depth: int
) -> None:
    """Deep enough to break pickling between processes (a 500 once), not json.loads."""
    items = ['{"text": ' + nested(depth) + "}", nested(depth)]
    resp = await post(client, BATCH, "[" + ",".join(items) + "]")
    error = await error_of(resp, 422, "all_items_invalid")
    assert [d["details"][0]["field"] for d in error["details"]] == ["text", "body"]
    resp = await client.post(BATCH, data="\n".join(items), headers=NDJSON)
    error = await error_of(resp, 422, "all_items_invalid")
    assert [d["details"][0]["field"] for d in error["details"]] == ["text", "body"]
    resp = await post(client, SINGLE, items[0])
    assert "text" in fields(await error_of(resp, 422, "validation_error"))
    await nothing_stored(redis_client, prefix)


@pytest.mark.parametrize(
    "html",
    [
        "<div>" * 100_000,
        "<div>" * 100_000 + "<p>" + BODY + "</p>" + "</div>" * 100_000,
        "<table><tr><td>" * 30_000 + BODY,
        "<svg>" + "<g>" * 100_000,
    ],
    ids=["divs", "divs-around-text", "tables", "svg"],
)
async def test_html_nested_a_hundred_thousand_deep_is_422(
    client: Client, redis_client: aioredis.Redis, prefix: str, html: str
) -> None:
    """libxml2 stops building the tree at depth 256, so no worker recurses or crashes."""
    error = await error_of(await post(client, SINGLE, json.dumps({"html": html})), 422)
    assert error["code"] in {"no_article_text", "unparseable_html"}
    assert fields(error) == {"html"}
    resp = await post(client, BATCH, json.dumps([{"html": html}]))
    await error_of(resp, 422, "all_items_invalid")
    await nothing_stored(redis_client, prefix)
    # The workers are alive and well: the next article goes through.
    resp = await post(client, SINGLE, json.dumps({"text": BODY}))
    assert resp.status == 201, await resp.text()


# --- encodings and characters ---------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80"],
    ids=["ff", "overlong", "utf8-surrogate", "truncated", "five-byte"],
)
async def test_invalid_utf8_is_400(
    client: Client, redis_client: aioredis.Redis, prefix: str, bad: bytes
) -> None:
    single = b'{"text": "Story ' + bad + b' text"}'
    for path, data, headers in [
        (SINGLE, single, JSON),
        (BATCH, b"[" + single + b"]", JSON),
        (BATCH, single + b"\n" + json.dumps({"text": BODY}).encode(), NDJSON),
    ]:
        resp = await client.post(path, data=data, headers=headers)
        error = await error_of(resp, 400, "invalid_utf8")
        assert error["details"] == [{"field": "body", "position": data.index(bad)}]
    await nothing_stored(redis_client, prefix)


@pytest.mark.parametrize("field", ["text", "html", "title", "source"])
async def test_lone_surrogate_escape_is_422_on_the_field(
    client: Client, redis_client: aioredis.Redis, prefix: str, field: str
) -> None:
    """``"\\ud800"`` is valid JSON but not Unicode: it can be neither hashed nor stored."""
    body = {"text": BODY, field: "Story \ud800 text"}
    if field == "html":
        del body["text"]
    error = await error_of(await post(client, SINGLE, json.dumps(body)), 422, "validation_error")
    assert fields(error) == {field}
    await nothing_stored(redis_client, prefix)


@pytest.mark.parametrize("field", ["text", "html", "title", "source", "url"])
async def test_nul_is_422_on_the_field(
    client: Client, redis_client: aioredis.Redis, prefix: str, field: str
) -> None:
    body = {"text": BODY, field: "https://example.com/a\x00b" if field == "url" else "a\x00b"}
    if field == "html":
        del body["text"]
    error = await error_of(await post(client, SINGLE, json.dumps(body)), 422, "validation_error")
    assert fields(error) == {field}
    await nothing_stored(redis_client, prefix)


C0 = "".join(chr(c) for c in range(1, 9)) + "\x0b\x0e\x1f\x7f"


async def test_other_controls_are_cleaned_from_prose(client: Client) -> None:
    """\\x01-\\x08 and friends in text and title: dropped silently, the article is kept."""
    text = BODY.replace(" ", " " + C0, 40)
    body = {"text": text, "title": f"A {C0}headline"}
    resp = await client.post(SINGLE, params={"dry_run": "true"}, json=body)
    assert resp.status == 200, await resp.text()
    article = (await resp.json())["article"]
    assert article["title"] == "A headline"
    assert not any(ch in article["text"] for ch in C0)
    assert article["word_count"] > 100
    paragraphs = "".join(f"<p>{line}</p>" for line in text.split("\n") if line.strip())
    html = f"<html><body><article><h1>A {C0}headline</h1>{paragraphs}</article></body></html>"
    resp = await client.post(SINGLE, params={"dry_run": "true"}, json={"html": html})
    assert resp.status == 200, await resp.text()
    article = (await resp.json())["article"]
    assert not any(ch in article["text"] + article["title"] for ch in C0)
    assert article["word_count"] > 100


@pytest.mark.parametrize("field", ["source", "url"])
@pytest.mark.parametrize("control", ["\x01", "\x08", "\x1b", "\x7f", "\n"])
async def test_controls_in_identifiers_are_422(
    client: Client, redis_client: aioredis.Redis, prefix: str, field: str, control: str
) -> None:
    value = f"https://example.com/a{control}b" if field == "url" else f"Wire{control}Service"
    body = {"text": BODY, field: value}
    error = await error_of(await post(client, SINGLE, json.dumps(body)), 422, "validation_error")
    assert fields(error) == {field}
    await nothing_stored(redis_client, prefix)


# --- ids ------------------------------------------------------------------------------------


BAD_IDS = ["{tag}", "a}", "{a", "a*", "*", "has space", " lead", "a\tb", "a\nb", "", "a" * 201]
BAD_IDS += ["ü", "a/b", "a?b", "a#b", "a%20b", "[a]"]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_bad_ids_are_422_on_id(
    client: Client, redis_client: aioredis.Redis, prefix: str, bad: str
) -> None:
    body = {"id": bad, "text": BODY}
    error = await error_of(await post(client, SINGLE, json.dumps(body)), 422, "validation_error")
    assert fields(error) == {"id"}
    await nothing_stored(redis_client, prefix)


async def test_bad_ids_in_a_get_are_422(client: Client) -> None:
    for bad in ["%7Btag%7D", "a%7D", "a*", "has%20space", "a%0Ab", "%C3%BC", "a" * 201]:
        resp = await client.get(f"/v1/articles/{bad}")
        error = await error_of(resp, 422, "validation_error")
        assert fields(error) == {"id"}


async def test_id_with_colons_works_end_to_end(
    client: Client, redis_client: aioredis.Redis, prefix: str
) -> None:
    """':' is allowed by the id pattern; the article's keys stay under the prefix."""
    resp = await post(client, SINGLE, json.dumps({"id": "a:b:c", "text": BODY}))
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["id"] == "a:b:c"
    resp = await client.get("/v1/articles/a:b:c")
    assert resp.status == 200
    assert (await resp.json())["decision"]["id"] == "a:b:c"
    keys = Keys(prefix)
    assert await redis_client.exists(keys.article("a:b:c")) == 1
    ((_, entry),) = await stream_entries(redis_client, keys.articles_stream)
    assert entry[b"id"] == b"a:b:c"
    # No key outside the prefix carries the id, none starts with it.
    assert not [k async for k in redis_client.scan_iter(match="a:b:c*")]
    ours = [k.decode() async for k in redis_client.scan_iter(match=keys.all_pattern())]
    assert all(k.startswith(f"{prefix}:") for k in ours)
    resp = await post(client, SINGLE, json.dumps({"id": "a:b:c", "text": BODY}))
    assert (await resp.json())["replayed"] is True


# --- empty after cleaning, all-bad batches --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "codes"),
    [
        ({"text": "Read More\n\nLeave a comment"}, {"empty_after_cleaning"}),
        ({"text": "   \n\t\n  "}, {"empty_text"}),
        ({"text": ""}, {"empty_text"}),
        ({"text": "\x01\x02\u200b\ufeff"}, {"empty_text"}),
        ({"text": "!!! ... ???\n\n— • —"}, {"empty_after_cleaning"}),
        (
            {"html": "<html><body><script>var story = 1;</script></body></html>"},
            {"no_article_text"},
        ),
        ({"html": "<p>" + "Read more" + "</p>"}, {"no_article_text", "empty_after_cleaning"}),
        ({"html": ""}, {"no_article_text"}),
    ],
)
async def test_nothing_left_after_cleaning_is_422(
    client: Client, redis_client: aioredis.Redis, prefix: str, body: Any, codes: set[str]
) -> None:
    error = await error_of(await post(client, SINGLE, json.dumps(body)), 422)
    assert error["code"] in codes
    assert fields(error) == set(body)
    await nothing_stored(redis_client, prefix)


async def test_batch_of_only_bad_items_is_422_with_every_item(
    client: Client, redis_client: aioredis.Redis, prefix: str
) -> None:
    items: list[Any] = [
        1,
        "text",
        None,
        [],
        {"titel": "typo", "text": BODY},
        {"text": ""},
        {"text": "a\x00b"},
        {"id": "{x}", "text": BODY},
        {"html": "<div>" * 100_000},
        {"text": BODY, "html": "<p>both</p>"},
        {"text": nested(50)},
    ]
    resp = await post(client, BATCH, json.dumps(items))
    error = await error_of(resp, 422, "all_items_invalid")
    details = error["details"]
    assert [d["index"] for d in details] == list(range(len(items)))
    assert [d["details"][0]["field"] for d in details] == [
        "body", "body", "body", "body", "titel", "text", "text", "id", "html", "text", "text",
    ]  # fmt: skip
    assert all(d["code"] and d["message"] for d in details)
    results = (await resp.json())["results"]
    assert [r["error"]["code"] for r in results] == [d["code"] for d in details]
    # NDJSON, with lines that are not even JSON.
    lines = ["{not json", "[", '"str"', json.dumps({"text": "Read more"})]
    resp = await client.post(BATCH, data="\n".join(lines), headers=NDJSON)
    error = await error_of(resp, 422, "all_items_invalid")
    assert [d["code"] for d in error["details"]] == [
        "malformed_json", "malformed_json", "validation_error", "empty_after_cleaning",
    ]  # fmt: skip
    await nothing_stored(redis_client, prefix)


# --- never a 5xx ----------------------------------------------------------------------------


PATHOLOGICAL: list[tuple[str, bytes, dict[str, str]]] = [
    (SINGLE, b'{"text": NaN}', JSON),
    (SINGLE, b'{"text": "x", "title": Infinity}', JSON),
    (SINGLE, b'{"text": 1e999999}', JSON),
    (SINGLE, b'{"text": ' + b"9" * 5000 + b"}", JSON),
    (SINGLE, b'{"text": "a", "text": {"b": 1}}', JSON),
    (SINGLE, json.dumps({"text": "\ud83d"}).encode(), JSON),
    (SINGLE, json.dumps({"text": BODY, "url": "http://[::1/"}).encode(), JSON),
    (SINGLE, json.dumps({"text": BODY, "url": "http://ex\u2100ample.com/"}).encode(), JSON),
    (SINGLE, json.dumps({"text": BODY, "url": "http://a.com:99999999/"}).encode(), JSON),
    (SINGLE, json.dumps({"text": BODY, "published_at": "0000-01-01T00:00:00Z"}).encode(), JSON),
    (SINGLE, json.dumps({"text": BODY, "language": "en-" + "a" * 10_000}).encode(), JSON),
    (SINGLE, json.dumps({"html": "<!--" * 50_000}).encode(), JSON),
    (SINGLE, json.dumps({"html": "&amp;" * 200_000}).encode(), JSON),
    (SINGLE, json.dumps({"html": '<?xml version="1.0"?>' + "<a>" * 50_000}).encode(), JSON),
    (SINGLE, b"\x00" * 100, JSON),
    (BATCH, b"\n\n\n", NDJSON),
    (BATCH, b"[]", JSON),
    (BATCH, b"{}", JSON),
    (BATCH, b"[" + b"[]," * 999 + b"[]]", JSON),
    (BATCH, b"\x1f\x8b\x08\x00", {**JSON, "Content-Encoding": "gzip"}),
    (SINGLE, b"{}", {"Content-Type": "application/json; charset=latin-1"}),
    (SINGLE, b"{}", {"Content-Type": "application/x-ndjson"}),
    (SINGLE, b"{}", {"Content-Type": "multipart/form-data"}),
]


async def test_pathological_inputs_never_answer_5xx(
    client: Client, redis_client: aioredis.Redis, prefix: str
) -> None:
    for path, data, headers in PATHOLOGICAL:
        resp = await client.post(path, data=data, headers=headers)
        error = await error_of(resp, resp.status)
        assert 400 <= resp.status < 500, (path, data[:80], resp.status, error)
    for path in ["/v1/articles/" + "a" * 10_000, "/v1/articles/%00", "/v1/articles/..%2F..%2Fx"]:
        resp = await client.get(path)
        assert 400 <= resp.status < 500, (path, resp.status)
    await nothing_stored(redis_client, prefix)


async def test_undecodable_api_key_is_401(
    make_client: Callable[..., Any], make_settings: Callable[..., Any]
) -> None:
    """A key header that is not UTF-8 is a wrong key (it was a 500 while encoding it)."""
    client = await make_client(make_settings(api_keys="k1"))
    for header in ["X-API-Key", "Authorization"]:
        value = b"\xff\xfe" if header == "X-API-Key" else b"Bearer \xff\xfe"
        head = f"GET /v1/articles/x HTTP/1.1\nHost: localhost\n{header}: "
        reader, writer = await asyncio.open_connection(client.host, client.port)
        try:
            writer.write(head.replace("\n", "\r\n").encode() + value + b"\r\n\r\n")
            status_line = await asyncio.wait_for(reader.readline(), 5)
        finally:
            writer.close()
            await writer.wait_closed()
        assert status_line.split()[1] == b"401", status_line
