"""Per-document deadlines: the worker pool kills a task past its deadline and replaces the
worker; through the app, a document that takes too long fails alone with extraction_timeout.

The pool is tested with the functions below (module level, so spawned workers import them);
the app with a real HTML page that trafilatura needs seconds for, against a tiny deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from service.errors import TaskTimeout, WorkerCrashed, WorkerError
from service.pool import WorkerPool

# Workers import this module for the functions below: what only the tests need stays out.
if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from aiohttp.test_utils import TestClient

    from service.settings import Settings

    Client = TestClient[Any, Any]

# --- run in the workers -----------------------------------------------------------------------


def echo(value: Any) -> Any:
    return value


def fail(message: str) -> None:
    raise ValueError(message)


def nap(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def hang() -> None:
    time.sleep(3600)


def die(code: int) -> None:
    os._exit(code)


def frozen_objects() -> int:
    import gc

    return gc.get_freeze_count()


def step(item: str) -> tuple[str, int]:
    """One item of a run_each job; some items misbehave on purpose."""
    if item == "hang":
        hang()
    elif item == "die":
        die(3)
    elif item == "fail":
        fail("bad item")
    return item, os.getpid()


# --- helpers ----------------------------------------------------------------------------------


def gone(pid: int) -> bool:
    """The process is neither running nor a zombie (it was reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return not Path(f"/proc/{pid}").exists()
    return False


async def until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def workers() -> Iterator[WorkerPool]:
    """Two light workers, started in a fraction of a second each.

    The initializer makes every worker import this module at start-up, as the service's
    warm-up does with the cleaning stack: an import inside a task would count against its
    deadline.
    """
    with WorkerPool(2, initializer=echo, initargs=(None,)) as pool:
        yield pool


@pytest.fixture
async def full(workers: WorkerPool) -> WorkerPool:
    """The module's pool with every worker up (a test before may have had one replaced)."""
    await until(lambda: len(workers.pids) == workers.size)
    return workers


# --- the pool ---------------------------------------------------------------------------------


async def test_run_answers_and_raises(full: WorkerPool) -> None:
    assert await full.run(echo, {"a": [1, 2]}, timeout_s=5) == {"a": [1, 2]}
    with pytest.raises(ValueError, match="boom"):
        await full.run(fail, "boom", timeout_s=5)
    # Executor interface: what loop.run_in_executor and submit() use (no deadline).
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(full, echo, 7) == 7
    # An argument that does not pickle fails its own task and leaves the worker usable.
    with pytest.raises(TypeError):
        await full.run(echo, threading.Lock(), timeout_s=5)
    assert await full.run(echo, "still fine", timeout_s=5) == "still fine"


async def test_workers_exempt_their_start_up_heap_from_the_collector(full: WorkerPool) -> None:
    # What the initializer and imports made lives as long as the worker; a full collection
    # walking it held tasks for 60-150 ms in the service's workers.
    assert await full.run(frozen_objects, timeout_s=5) > 1000


async def test_hung_task_is_killed_and_its_worker_replaced(full: WorkerPool) -> None:
    before = set(full.pids)
    replaced = full.replacements
    started = time.monotonic()
    with pytest.raises(TaskTimeout) as caught:
        await full.run(hang, timeout_s=0.3)
    assert 0.3 <= time.monotonic() - started < 3.0
    killed = caught.value.pid
    assert killed in before
    assert gone(killed), "the hung worker was killed and reaped"
    await until(lambda: len(full.pids) == full.size)
    assert full.replacements == replaced + 1
    assert killed not in full.pids
    assert len(set(full.pids) - before) == 1  # only the hung worker was replaced
    assert await full.run(echo, "next", timeout_s=5) == "next"


async def test_a_timeout_does_not_disturb_other_tasks(full: WorkerPool) -> None:
    napper, hung = await asyncio.gather(
        full.run(nap, 0.6, timeout_s=10), full.run(hang, timeout_s=0.2), return_exceptions=True
    )
    assert isinstance(napper, int)
    assert not gone(napper)
    assert isinstance(hung, TaskTimeout)


async def test_time_in_the_queue_does_not_count(full: WorkerPool) -> None:
    # Two long tasks hold both workers; the third waits ~1 s, then runs 0.2 s of its 0.8 s.
    results = await asyncio.gather(
        full.run(nap, 1.0, timeout_s=10),
        full.run(nap, 1.0, timeout_s=10),
        full.run(nap, 0.2, timeout_s=0.8),
    )
    assert all(isinstance(pid, int) for pid in results)


async def test_a_call_queued_behind_a_hung_one_runs_on_the_next_worker() -> None:
    # One worker: while it naps, a hanging call and a quick one queue up. The hang costs that
    # worker; the quick call waits in the queue (never in the doomed worker) and runs on the
    # replacement.
    async with WorkerPool(1, initializer=echo, initargs=(None,)) as pool:
        first = asyncio.ensure_future(pool.run(nap, 0.5, timeout_s=10))
        await until(lambda: pool.pending == 1)
        hung = asyncio.ensure_future(pool.run(hang, timeout_s=0.3))
        quick = asyncio.ensure_future(pool.run(nap, 0, timeout_s=10))
        napped = await first
        with pytest.raises(TaskTimeout):
            await hung
        assert await quick not in {napped, None}
        assert pool.replacements == 1


async def test_urgent_tasks_go_ahead_of_queued_ones() -> None:
    """A single-article request does not wait behind the queued parts of a batch."""
    finished: list[str] = []

    async def track(name: str, job: Any) -> None:
        await job
        finished.append(name)

    async with WorkerPool(1, initializer=echo, initargs=(None,)) as pool:
        busy = asyncio.ensure_future(pool.run(nap, 0.3, timeout_s=10))
        await until(lambda: pool.pending == 1)
        batch = [
            asyncio.ensure_future(track(f"batch-{i}", pool.run_each(echo, [i], timeout_s=10)))
            for i in range(3)
        ]
        single = asyncio.ensure_future(
            track("single", pool.run(echo, 1, timeout_s=10, urgent=True))
        )
        await asyncio.gather(busy, single, *batch)
    assert finished == ["single", "batch-0", "batch-1", "batch-2"]


async def test_a_crashed_worker_is_replaced(full: WorkerPool) -> None:
    with pytest.raises(WorkerCrashed) as caught:
        await full.run(die, 7, timeout_s=5)
    assert caught.value.exitcode == 7
    assert gone(caught.value.pid or 0)
    assert await full.run(echo, "after", timeout_s=30) == "after"


async def test_run_each_fails_only_the_items_that_misbehave(full: WorkerPool) -> None:
    items = ["a", "hang", "b", "die", "c", "fail", "d"]
    results = await full.run_each(step, items, timeout_s=1.0)
    assert len(results) == len(items)
    a, hung, b, died, c, failed, d = results
    assert isinstance(hung, TaskTimeout)
    assert isinstance(died, WorkerCrashed)
    assert isinstance(failed, ValueError)
    assert str(failed) == "bad item"
    assert [r[0] for r in (a, b, c, d) if isinstance(r, tuple)] == ["a", "b", "c", "d"]
    pids = [r[1] for r in (a, b, c) if isinstance(r, tuple)]
    # The items after a hung or dead worker ran in another worker, never the killed one.
    assert pids[0] != pids[1] != pids[2]
    assert hung.pid == pids[0]
    assert died.pid == pids[1]
    assert gone(pids[0])
    assert gone(pids[1])
    assert await full.run_each(step, [], timeout_s=1) == []


def test_one_pool_serves_several_event_loops(workers: WorkerPool) -> None:
    # pytest-asyncio gives each test its own loop; the session's pool must outlive them.
    assert asyncio.run(workers.run(echo, 1, timeout_s=30)) == 1
    assert asyncio.run(workers.run(echo, 2, timeout_s=30)) == 2


async def test_close_stops_every_worker_and_settles_every_task() -> None:
    pool = WorkerPool(2, initializer=echo, initargs=(None,))
    await pool.start()
    pids = pool.pids
    assert len(pids) == 2
    assert not any(gone(pid) for pid in pids)
    # Both workers stuck in tasks without a deadline, and one more task queued behind them.
    stuck = [asyncio.ensure_future(pool.run(hang, timeout_s=None)) for _ in range(2)]
    queued = asyncio.ensure_future(pool.run(echo, 1, timeout_s=None))
    await until(lambda: pool.pending == 3)
    await asyncio.sleep(0.2)  # let both hang() calls reach their workers
    started = time.monotonic()
    await pool.close(grace_s=0.3)
    assert time.monotonic() - started < 5.0
    assert all(gone(pid) for pid in pids), "no worker outlives close()"
    for task in stuck:
        with pytest.raises(WorkerError, match="closed"):
            await task
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert pool.pending == 0
    with pytest.raises(RuntimeError, match="closed"):
        await pool.run(echo, 1, timeout_s=1)


async def test_a_worker_killed_while_idle_is_replaced_before_use(full: WorkerPool) -> None:
    victim = full.pids[0]
    os.kill(victim, signal.SIGKILL)
    await asyncio.sleep(0.1)
    # Enough tasks to reach both workers: none of them is blamed for the dead one.
    results = await asyncio.gather(*(full.run(nap, 0.05, timeout_s=30) for _ in range(4)))
    assert victim not in results
    await until(lambda: victim not in full.pids and gone(victim))


async def test_a_worker_that_cannot_start_fails_start() -> None:
    pool = WorkerPool(1, initializer=fail, initargs=("no warm-up today",))
    with pytest.raises(WorkerError, match="no warm-up today"):
        await pool.start()
    assert pool.pids == []
    with pytest.raises(RuntimeError, match="closed"):
        await pool.run(echo, 1, timeout_s=1)


async def test_idle_workers_exit_when_asked() -> None:
    async with WorkerPool(1) as pool:
        (pid,) = pool.pids
    assert gone(pid)


# --- through the app --------------------------------------------------------------------------

DEADLINE_S = 0.25


def slow_page(paragraphs: int = 5000) -> str:
    """Plain article markup that trafilatura needs seconds for (its cost grows faster than
    the page: ~1.4 s for 2,000 paragraphs on the 2-core development machine)."""
    body = "".join(
        f"<div><p>Paragraph {i} of a long report with <a href='/n/{i}'>a link</a> and "
        f"<b>bold words</b> in it.</p></div>"
        for i in range(paragraphs)
    )
    head = "<head><title>Long report</title></head>"
    return f"<html>{head}<body><article>{body}</article></body></html>"


@pytest.fixture(scope="module")
def app_pool() -> Iterator[WorkerPool]:
    """One warmed worker, so a replacement is visible and the next request needs it."""
    from service.models import Params
    from service.pipeline import warm_worker

    params = Params()
    with WorkerPool(1, initializer=warm_worker, initargs=(params,)) as pool:
        yield pool


@pytest.fixture
async def deadline_client(
    aiohttp_client: Any,
    app_pool: WorkerPool,
    make_settings: Callable[..., Settings],
    redis_client: aioredis.Redis,
) -> Client:
    from service.app import create_app

    await until(lambda: len(app_pool.pids) == 1, timeout_s=60)
    from service.state import PIPELINE

    app = create_app(make_settings(doc_timeout_s=DEADLINE_S), pool=app_pool)
    client: Client = await aiohttp_client(app)
    assert app[PIPELINE].doc_timeout_s == DEADLINE_S, "create_app passes doc_timeout_s on"
    return client


def normal_article(n: int) -> dict[str, Any]:
    words = " ".join(f"word{n}x{i}" for i in range(120))
    return {"id": f"normal-{n}", "text": f"A normal story number {n}. {words}."}


async def test_a_slow_document_answers_422_and_the_next_request_is_served(
    deadline_client: Client, app_pool: WorkerPool, caplog: pytest.LogCaptureFixture
) -> None:
    from .test_security import EmitCapture

    caplog.set_level(logging.INFO)
    (before,) = app_pool.pids
    capture = EmitCapture()
    logging.getLogger().addHandler(capture)
    try:
        started = time.monotonic()
        resp = await deadline_client.post("/v1/articles", json={"id": "slow", "html": slow_page()})
        elapsed = time.monotonic() - started
    finally:
        logging.getLogger().removeHandler(capture)
    body = await resp.json()
    assert resp.status == 422, body
    error = body["error"]
    assert error["code"] == "extraction_timeout"
    assert error["details"][0]["field"] == "html"
    assert error["details"][0]["limit_s"] == DEADLINE_S
    assert error["request_id"] == resp.headers["X-Request-ID"]
    assert elapsed < 3.0, "the answer comes at the deadline, not when extraction would end"
    # The pool's thread and the pipeline both logged it, under the request's id.
    lines = [json.loads(line) for _level, line in capture.lines if "deadline" in line]
    assert {entry["logger"] for entry in lines} >= {"service.pool", "service.pipeline"}
    assert all(entry["request_id"] == error["request_id"] for entry in lines)
    assert gone(before)
    resp = await deadline_client.post("/v1/articles", json=normal_article(1))
    assert resp.status == 201, await resp.json()
    (after,) = app_pool.pids
    assert after != before


async def test_in_a_batch_only_the_slow_document_fails(
    deadline_client: Client, app_pool: WorkerPool
) -> None:
    (before,) = app_pool.pids
    batch = [normal_article(2), {"id": "slow-2", "html": slow_page()}, normal_article(3)]
    resp = await deadline_client.post("/v1/articles/batch", json=batch)
    body = await resp.json()
    assert resp.status == 200, body
    first, slow, last = body["results"]
    assert first["status"] == "unique"
    assert last["status"] == "unique"
    assert slow["error"]["code"] == "extraction_timeout"
    assert slow["error"]["details"][0]["field"] == "html"
    assert gone(before)
    metrics = await (await deadline_client.get("/metrics")).text()
    assert 'news_ingest_rejected_total{code="extraction_timeout"} 1.0' in metrics
