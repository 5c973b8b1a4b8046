"""HTTP handlers: read and check the request, hand it to the pipeline, answer JSON.

Errors are mapped to status codes here and only here, by :func:`error_middleware`; every
error answer has the shape ``{"error": {"code", "message", "details", "request_id"}}``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import logs
from .codings import Inflater, coding_of
from .errors import InputError, StoreUnavailable
from .models import ID_MAX_LENGTH, ID_PATTERN, Decision, ErrorBody, ItemError
from .state import METRICS, OPENAPI, PIPELINE, POOL, SETTINGS, STORE

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/jsonlines"})
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
RETRY_AFTER_S = "1"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ID = re.compile(ID_PATTERN)
_READ_CHUNK = 1 << 16
# A compressed chunk up to this size inflates to at most ~1 MB: a few ms, done on the loop.
_INFLATE_ON_LOOP = 1024


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = ErrorBody(
        code=code, message=message, details=details or [], request_id=logs.request_id.get()
    )
    return web.json_response({"error": body.model_dump()}, status=status, headers=headers)


def _item_error_json(err: ItemError) -> dict[str, Any]:
    body = ErrorBody(code=err.code, message=err.message, details=err.details)
    return {"error": body.model_dump(exclude={"request_id"})}


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


# aiohttp accepts any token as a method: label values must stay a bounded set.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, latency metric, access log, and the one mapping of errors to JSON answers."""
    given = request.headers.get("X-Request-ID", "")
    rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    token = logs.request_id.set(rid)
    started = time.perf_counter()
    try:
        response = await _answer(request, handler)
        response.headers["X-Request-ID"] = rid
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        elapsed_s = time.perf_counter() - started
        method = request.method if request.method in _METHODS else "other"
        metrics = request.app[METRICS]
        metrics.child(metrics.requests, name, method, str(response.status)).observe(elapsed_s)
        # One line per request, in place of aiohttp's access log: the route pattern rather
        # than the path (ids stay out of aggregations), never a body or a header value.
        log.info(
            "request",
            extra={
                "method": request.method,
                "route": name,
                "status": response.status,
                "duration_ms": round(elapsed_s * 1000, 2),
            },
        )
        return response
    finally:
        logs.request_id.reset(token)


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's response, or the JSON error its exception maps to."""
    try:
        return await handler(request)
    except InputError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    except StoreUnavailable as exc:
        request.app[METRICS].redis_errors.inc()
        log.warning("redis unavailable", extra={"error": str(exc)})
        return error_response(
            503,
            "store_unavailable",
            "Redis is unavailable; the article was not accepted. Retry later.",
            headers={"Retry-After": RETRY_AFTER_S},
        )
    except web.HTTPException as exc:
        code = _HTTP_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return error_response(500, "internal_error", "internal error; see the service log")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    keys = request.app[SETTINGS].api_keys
    if not keys or request.path in PUBLIC_PATHS:
        return await handler(request)
    given = request.headers.get("X-API-Key")
    auth = request.headers.get("Authorization", "")
    if given is None and auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    if given is None:
        raise InputError(
            401, "unauthorized", "an API key is required: Authorization: Bearer <key> or X-API-Key"
        )
    # Compare against every key, always, in constant time: timing must not tell which
    # prefix or which key came close.
    # aiohttp decodes header bytes that are not UTF-8 as surrogate escapes; encode them back
    # to those bytes (a wrong key, so a 401) instead of failing the encode with a 500.
    presented = given.encode("utf-8", "surrogateescape")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key.encode())
    if not matched:
        raise InputError(401, "unauthorized", "the API key is not valid")
    return await handler(request)


def _dry_run(request: web.Request) -> bool:
    raw = request.query.get("dry_run")
    if raw is None:
        return False
    lowered = raw.lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise InputError(
        422,
        "validation_error",
        "dry_run must be true or false",
        [{"field": "dry_run", "message": f"expected true or false, got {raw!r}"}],
    )


def _require_media(request: web.Request, allowed: frozenset[str]) -> str:
    media = request.content_type
    if media not in allowed:
        shown = request.headers.get("Content-Type", "none")
        raise InputError(
            415,
            "unsupported_media_type",
            f"Content-Type {shown} is not accepted here; use {' or '.join(sorted(allowed))}",
            [{"field": "Content-Type", "allowed": sorted(allowed)}],
        )
    charset = request.charset
    if charset is not None and charset.lower().replace("-", "") != "utf8":
        raise InputError(
            415,
            "unsupported_media_type",
            f"charset {charset} is not accepted; send UTF-8",
            [{"field": "Content-Type"}],
        )
    return media


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body, inflated when it comes gzip or deflate encoded (see :mod:`.codings`), and
    refused as soon as it passes ``limit`` bytes, compressed or inflated."""
    too_large = InputError(
        413,
        "body_too_large",
        f"request body is larger than the {limit} byte limit",
        [{"field": "body", "limit_bytes": limit}],
    )
    coding = coding_of(request.headers.get("Content-Encoding", ""))
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large
    inflater = Inflater(coding) if coding != "identity" else None
    body = bytearray()
    received = 0
    try:
        async for chunk in request.content.iter_chunked(_READ_CHUNK):
            received += len(chunk)
            if inflater is None:
                body += chunk
            elif len(chunk) <= _INFLATE_ON_LOOP:
                body += inflater.feed(chunk, limit - len(body))
            else:
                # Deflate inflates up to ~1000x: a 64 KiB chunk can be 64 MB of batch body,
                # a few hundred ms of CPU. zlib releases the GIL while it works.
                body += await asyncio.to_thread(inflater.feed, chunk, limit - len(body))
            if len(body) > limit or received > limit:
                raise too_large
    except web.RequestPayloadError as exc:
        # Broken chunked framing, or a body that ends before its Content-Length.
        reason = getattr(exc.__cause__, "message", None) or str(exc)
        raise InputError(
            400,
            "undecodable_body",
            f"the request body could not be read: {reason}",
            [{"field": "body", "message": reason}],
        ) from exc
    if inflater is not None:
        inflater.finish()
    return bytes(body)


def _decision_response(decision: Decision, dry_run: bool) -> web.Response:
    created = decision.status == "unique" and not decision.replayed and not dry_run
    headers = {"Location": f"/v1/articles/{decision.id}"} if not dry_run else None
    return web.json_response(
        decision.model_dump(mode="json"), status=201 if created else 200, headers=headers
    )


async def post_article(request: web.Request) -> web.Response:
    dry_run = _dry_run(request)
    _require_media(request, JSON_TYPES)
    raw = await _read_body(request, request.app[SETTINGS].max_body_bytes)
    outcome = await request.app[PIPELINE].ingest_one(raw, dry_run=dry_run)
    if isinstance(outcome, ItemError):
        return error_response(outcome.status, outcome.code, outcome.message, outcome.details)
    return _decision_response(outcome, dry_run)


async def post_batch(request: web.Request) -> web.Response:
    dry_run = _dry_run(request)
    media = _require_media(request, JSON_TYPES | NDJSON_TYPES)
    raw = await _read_body(request, request.app[SETTINGS].max_batch_body_bytes)
    outcomes = await request.app[PIPELINE].ingest_batch(
        raw, ndjson=media in NDJSON_TYPES, dry_run=dry_run
    )
    results = [
        _item_error_json(o) if isinstance(o, ItemError) else o.model_dump(mode="json")
        for o in outcomes
    ]
    if all(isinstance(o, ItemError) for o in outcomes):
        details = [{"index": i, **r["error"]} for i, r in enumerate(results)]
        body = ErrorBody(
            code="all_items_invalid",
            message="no article of the batch was accepted; see details and results",
            details=details,
            request_id=logs.request_id.get(),
        )
        return web.json_response({"error": body.model_dump(), "results": results}, status=422)
    return web.json_response({"results": results})


async def get_article(request: web.Request) -> web.Response:
    article_id = request.match_info["id"]
    # The length first: the pattern backtracks, and a path segment can be 8 KB long.
    if len(article_id) > ID_MAX_LENGTH or not _ID.fullmatch(article_id):
        raise InputError(
            422,
            "validation_error",
            "invalid article id",
            [{"field": "id", "message": "1-200 characters of A-Z a-z 0-9 . _ : -, not only dots"}],
        )
    stored = await request.app[STORE].get_article(article_id)
    if stored is None:
        raise InputError(
            404,
            "not_found",
            f"no article {article_id!r}: never accepted, or expired",
            [{"field": "id"}],
        )
    return web.json_response(stored.model_dump(mode="json"))


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[STORE].ping()
    except StoreUnavailable as exc:
        return web.json_response(
            {"status": "unavailable", "redis": str(exc)},
            status=503,
            headers={"Retry-After": RETRY_AFTER_S},
        )
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    request.app[METRICS].worker_replacements.set(request.app[POOL].replacements)
    payload = generate_latest(request.app[METRICS].registry)
    return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/v1/articles", post_article)
    app.router.add_post("/v1/articles/batch", post_batch)
    # aiohttp's default for {id} is [^{}/]+: an id with a brace would be a bare 404 "Not
    # Found" from the router; matching any segment lets get_article answer 422 on the id.
    app.router.add_get("/v1/articles/{id:[^/]+}", get_article)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
