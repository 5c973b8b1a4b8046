"""Soak: does news-ingest hold its memory and its throughput under a steady load for minutes?

One run starts a real ``news-ingest serve`` (one worker per core, on a free loopback port, under
a throw-away key prefix) and sends it a fixed, seeded load for ``--duration-s`` seconds:

* batches of 50 text articles to ``POST /v1/articles/batch`` (NDJSON) from two senders, and
  single articles to ``POST /v1/articles`` from two more (about 5% of the articles);
* of every stream of articles, about 10% are near-duplicates of an earlier article (a few
  words changed, another source) and 2% replays (same id, same body); one single in ten is a
  dry run;
* at a fixed rate: ``--rate`` articles/s, or else 65% of what the service reached when
  pushed flat out for the first seconds of the warm-up, so memory is watched under a steady,
  not a saturating, load.

Every ``--window-s`` it prints one line: requests/s, articles/s, latency p50/p99 of batches
and of singles, each HTTP status, the cores the service, Redis and the rest of the machine
kept busy (from /proc), the RSS of the service process plus its worker processes, and Redis's
``used_memory``. Every 5xx and client exception is printed as it happens and counted.

At the end it compares memory after the warm-up with memory at the end, says which process
grew, and prints the verdict against the bar of issue 5: memory at the end within 10% of memory
after the warm-up, and throughput steady (every post-warm-up window's articles/s within ±25% of
their median). It exits 0 either way: it is a benchmark that prints figures. Usage::

    python bench/soak.py [--duration-s 600] [--warmup-s 60] [--window-s 30] [--rate N]
                         [--redis-url URL] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import redis
import redis.asyncio as aioredis

# Shared with bench/throughput.py: the article generator, the service's start-up and clean-up,
# and the /proc readers.
from _service import (
    DEFAULT_REDIS_URL,
    NDJSON,
    SEED,
    Service,
    chrome_line,
    cpu_seconds,
    finish,
    git_commit,
    load_average,
    machine_busy_seconds,
    ndjson,
    redis_answers,
    sentence,
    start_service,
    step,
    vocabulary,
    wait_ready,
    zipf_weights,
)

BATCH_SIZE = 50
BATCH_SENDERS = 2
SINGLE_SENDERS = 2
SINGLE_SHARE = 0.05  # of the articles, sent one per request
NEAR_SHARE = 0.10  # near-duplicates of an earlier article
REPLAY_SHARE = 0.02  # the same id and body again
DRY_SHARE = 0.10  # of the single requests
# Near-duplicates and replays copy an article at least this many slots back, long answered.
COPY_LAG = 500
BUSY_TARGET = 0.65  # of the rate reached flat out
CALIBRATE_S = 10.0
# A sender that starts this late shifts the schedule instead of sending a burst to catch up.
MAX_LAG_S = 2.0
REQUEST_TIMEOUT_S = 60.0
SENTENCE_POOL = 20_000
MEMORY_BAR = 1.10
STEADY_BAR = 0.25
PRINTED_FAILURES = 20
MIB = 1024 * 1024


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    duration_s: float
    warmup_s: float
    window_s: float
    rate: float | None  # articles/s; None: calibrate
    redis_url: str
    workers: int

    @property
    def calibrate_s(self) -> float:
        return 0.0 if self.rate is not None else min(CALIBRATE_S, self.warmup_s / 2)


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration-s", type=float, help="length of the load (default 600)")
    parser.add_argument(
        "--warmup-s", type=float, help="first part of the load not judged (default 60)"
    )
    parser.add_argument("--window-s", type=float, help="length of one report line (default 30)")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="articles/s to offer (default: 65%% of the rate reached flat out at the start)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis to run against (default: $REDIS_URL or %(default)s); when it does not "
        "answer, the service starts its embedded server in a temporary directory",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 60 s, warm-up 15 s, windows of 10 s"
    )
    args = parser.parse_args(argv)

    def pick(given: float | None, quick: float, default: float) -> float:
        return given if given is not None else (quick if args.quick else default)

    config = Config(
        duration_s=pick(args.duration_s, 60, 600),
        warmup_s=pick(args.warmup_s, 15, 60),
        window_s=pick(args.window_s, 10, 30),
        rate=args.rate,
        redis_url=args.redis_url,
        workers=os.cpu_count() or 1,
    )
    if config.window_s <= 0:
        parser.error("--window-s must be positive")
    if not 0 <= config.warmup_s < config.duration_s:
        parser.error("--warmup-s must be at least 0 and shorter than --duration-s")
    if config.duration_s - config.warmup_s < config.window_s:
        parser.error("the load after the warm-up must last at least one --window-s")
    if config.rate is not None and config.rate <= 0:
        parser.error("--rate must be positive")
    if config.rate is None and config.calibrate_s < 2:
        parser.error("without --rate the first half of the warm-up calibrates: make it >= 4 s")
    return config


def boundaries(config: Config) -> list[float]:
    """Window edges in seconds since the load started; one falls exactly at the warm-up's end."""

    def split(start: float, end: float) -> list[float]:
        parts = max(1, round((end - start) / config.window_s))
        return [start + (end - start) * i / parts for i in range(1, parts)] + [end]

    warm = split(0.0, config.warmup_s) if config.warmup_s > 0 else []
    return [0.0, *warm, *split(config.warmup_s, config.duration_s)]


# --- the load: articles ---------------------------------------------------------------------


class Articles:
    """Distinct stories of 400-800 words, seeded per id, built from a pool of sentences.

    ``_service.text_article`` writes every sentence afresh, ~1.5 ms an article: at a few
    hundred articles/s that is a third of a core taken from the service being measured. Here
    the sentences (same generator, same vocabulary) are written once; an article draws ~35 of
    20,000, so two stories share a sentence now and then but never a paragraph.
    """

    def __init__(self) -> None:
        self.words = vocabulary()
        weights = zipf_weights(len(self.words))  # as in _service.text_articles
        self.cum_weights = list(accumulate(weights))
        rng = random.Random(f"{SEED}:soak:sentences")
        self.sentences = [sentence(rng, self.words, weights) for _ in range(SENTENCE_POOL)]
        self.lengths = [s.count(" ") + 1 for s in self.sentences]

    def _lines(self, rng: random.Random) -> tuple[list[str], str]:
        title = " ".join(
            rng.choices(self.words, cum_weights=self.cum_weights, k=rng.randint(6, 12))
        )
        author = f"{rng.choice(['Maria', 'James', 'Aiko', 'Priya', 'Omar'])} "
        author += rng.choice(["Lopez", "Okafor", "Tanaka", "Novak", "Haddad"])
        lines = [rng.choice(["world news", "politics", "business", "local", "science"])]
        lines += [title.capitalize(), chrome_line(rng), f"By {author}"]
        lines.append(f"Updated {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} GMT")
        target, count = rng.randint(400, 800), 0
        while count < target:
            picks = [rng.randrange(SENTENCE_POOL) for _ in range(rng.randint(2, 5))]
            lines.append(" ".join(self.sentences[i] for i in picks))
            count += sum(self.lengths[i] for i in picks)
            if rng.random() < 0.15:
                lines.append(chrome_line(rng))
        return lines, title.capitalize()

    def story(self, kind: str, index: int) -> dict[str, Any]:
        """Story ``index`` of stream ``kind``; the same arguments give the same record."""
        rng = random.Random(f"{SEED}:soak:{kind}:{index}")
        lines, title = self._lines(rng)
        record: dict[str, Any] = {
            "id": f"soak-{kind}-{index:07d}",
            "source": rng.choice(["Daily Ledger", "Metro Wire", "Coast Herald", "Capital Post"]),
            "language": "en",
            "published_at": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T08:00:00Z",
            "text": "\n\n".join(lines),
        }
        if index % 2:
            record["title"] = title
        return record

    def near_copy(self, kind: str, index: int, copy_id: str) -> dict[str, Any]:
        """Story ``index`` syndicated: another id and source, three body words changed."""
        rng = random.Random(f"{SEED}:soak:near:{copy_id}")
        record = self.story(kind, index)
        paragraphs = record["text"].split("\n\n")
        body = [i for i, p in enumerate(paragraphs) if i >= 5 and p.count(" ") > 10]
        for i in rng.sample(body, min(3, len(body))):
            tokens = paragraphs[i].split(" ")
            tokens[rng.randrange(1, len(tokens) - 1)] = rng.choice(self.words)
            paragraphs[i] = " ".join(tokens)
        record.update(id=copy_id, source="Syndicate Wire", text="\n\n".join(paragraphs))
        return record


@dataclass(frozen=True, slots=True)
class Item:
    """One article to send and what the service should answer for it."""

    expect: str  # new | near | replay | dry
    record: dict[str, Any]


def slot_kind(kind: str, slot: int) -> str:
    """What slot ``slot`` of stream ``kind`` carries; a pure function of its arguments."""
    rng = random.Random(f"{SEED}:soak:plan:{kind}:{slot}")
    draw = rng.random()
    if kind == "s" and rng.random() < DRY_SHARE:
        return "dry"
    if slot >= COPY_LAG and draw < NEAR_SHARE:
        return "near"
    if slot >= COPY_LAG and draw < NEAR_SHARE + REPLAY_SHARE:
        return "replay"
    return "new"


def earlier_new(kind: str, slot: int) -> int:
    """A slot at least COPY_LAG back that carried a new story (so it was stored)."""
    rng = random.Random(f"{SEED}:soak:copy:{kind}:{slot}")
    while True:
        candidate = rng.randrange(0, slot - COPY_LAG + 1)
        if slot_kind(kind, candidate) == "new":
            return candidate


def item_for(articles: Articles, kind: str, slot: int) -> Item:
    """Slot ``slot`` of stream ``kind`` (b: batch items, s: singles, some of them dry runs)."""
    what = slot_kind(kind, slot)
    if what in ("new", "dry"):
        return Item(what, articles.story(kind, slot))
    source = earlier_new(kind, slot)
    if what == "replay":
        return Item("replay", articles.story(kind, source))
    return Item("near", articles.near_copy(kind, source, f"soak-{kind}near-{slot:07d}"))


# --- the load: pacing -------------------------------------------------------------------------


class Schedule:
    """Due times of a fixed rate, shared by the senders of one stream; ends at ``end_s``."""

    def __init__(self, per_s: float, start_s: float, end_s: float, first_slot: int = 0) -> None:
        self.interval_s = 1.0 / per_s if per_s > 0 else 0.0
        self.next_due_s = start_s
        self.end_s = end_s
        self.next_slot = first_slot
        self.shifted_s = 0.0  # how far the schedule moved because the service fell behind

    def take(self, now_s: float) -> tuple[int, float] | None:
        """The next (slot, due time), or None once the due time reaches the end."""
        due = self.next_due_s
        if due >= self.end_s or now_s >= self.end_s:
            return None
        if now_s - due > MAX_LAG_S:
            self.shifted_s += now_s - due
            due = now_s
        self.next_due_s = due + self.interval_s
        slot = self.next_slot
        self.next_slot += 1
        return slot, due


# --- the load: requests and what they answered ------------------------------------------------


@dataclass(slots=True)
class Request:
    done_s: float
    route: str  # batch | single
    articles: int
    latency_s: float
    status: str  # an HTTP status, or exc:<class>


@dataclass(slots=True)
class Tally:
    """Everything the load saw, in total and for the window being filled."""

    window: list[Request] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    # (what was sent, what came back): ("near", "duplicate/near_duplicate"), ...
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: int = 0  # 5xx answers and client exceptions
    item_errors: int = 0
    printed: int = 0
    articles: int = 0

    def add(self, request: Request) -> None:
        self.window.append(request)
        self.statuses[request.status] += 1
        if request.status.startswith("2"):
            self.articles += request.articles

    def show(self, at_s: float, what: str, detail: str) -> None:
        """Print something that went wrong, up to PRINTED_FAILURES of them."""
        self.printed += 1
        if self.printed <= PRINTED_FAILURES:
            print(f"  ! t={at_s:7.1f} s {what}: {detail[:300]}", flush=True)
        elif self.printed == PRINTED_FAILURES + 1:
            print("  ! (further problems are counted, not printed)", flush=True)

    def answer(self, at_s: float, item: Item, answer: Any) -> None:
        if not isinstance(answer, dict):
            self.outcomes[(item.expect, "unreadable")] += 1
            return
        if "error" in answer:
            code = answer["error"].get("code") if isinstance(answer["error"], dict) else None
            self.outcomes[(item.expect, f"error:{code}")] += 1
            self.item_errors += 1
            self.show(at_s, f"item {item.record['id']}", json.dumps(answer["error"]))
            return
        got = str(answer.get("status"))
        if answer.get("relation"):
            got += f"/{answer['relation']}"
        if answer.get("replayed"):
            got = "replayed"
        self.outcomes[(item.expect, got)] += 1


class Load:
    """The senders: batches and singles, each stream on its own schedule."""

    def __init__(self, base_url: str, articles: Articles, tally: Tally, origin: float) -> None:
        self.base_url = base_url
        self.articles = articles
        self.tally = tally
        self.origin = origin  # loop time of t=0
        self.batch_slot = 0  # next batch number, kept across calibration and the paced load

    def now_s(self) -> float:
        return asyncio.get_running_loop().time() - self.origin

    async def _post(
        self, session: aiohttp.ClientSession, route: str, url: str, body: bytes, media: str
    ) -> tuple[str, Any, Request]:
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers={"Content-Type": media}) as resp:
                raw = await resp.read()
                status = str(resp.status)
        except (TimeoutError, aiohttp.ClientError) as exc:
            status, raw = f"exc:{type(exc).__name__}", str(exc).encode()
        latency_s = time.perf_counter() - started
        try:
            payload = json.loads(raw) if status[0].isdigit() else None
        except ValueError:
            payload = None
        count = body.count(b"\n") if route == "batch" else 1
        request = Request(self.now_s(), route, count, latency_s, status)
        if not status.startswith("2"):
            self.tally.failures += not status.startswith("4")
            self.tally.show(request.done_s, f"{route} -> {status}", raw.decode(errors="replace"))
        return status, payload, request

    async def send_batch(self, session: aiohttp.ClientSession, slot: int) -> int:
        """Post batch ``slot``; answers how many articles a 2xx answer covered."""
        items = [item_for(self.articles, "b", slot * BATCH_SIZE + i) for i in range(BATCH_SIZE)]
        url = self.base_url + "/v1/articles/batch"
        status, payload, request = await self._post(
            session, "batch", url, ndjson([i.record for i in items]), NDJSON
        )
        self.tally.add(request)
        results = payload.get("results") if isinstance(payload, dict) else None
        if isinstance(results, list) and len(results) == len(items):
            for item, answer in zip(items, results, strict=True):
                self.tally.answer(request.done_s, item, answer)
        elif status.startswith("2"):
            self.tally.show(request.done_s, "batch", f"{len(items)} items, answer {payload!r}")
        return request.articles if status.startswith("2") else 0

    async def send_single(self, session: aiohttp.ClientSession, slot: int) -> None:
        item = item_for(self.articles, "s", slot)
        dry = item.expect == "dry"
        url = self.base_url + "/v1/articles" + ("?dry_run=true" if dry else "")
        body = json.dumps(item.record).encode()
        status, payload, request = await self._post(
            session, "single", url, body, "application/json"
        )
        self.tally.add(request)
        if status[0] in "24" and payload is not None:
            self.tally.answer(request.done_s, item, payload)

    async def flat_out(self, session: aiohttp.ClientSession, until_s: float) -> float:
        """Batches back to back from BATCH_SENDERS senders; answers the articles/s reached."""
        first_done: list[float] = []
        articles = 0

        async def sender() -> None:
            nonlocal articles
            while self.now_s() < until_s:
                slot, self.batch_slot = self.batch_slot, self.batch_slot + 1
                answered = await self.send_batch(session, slot)
                if not first_done:
                    first_done.append(self.now_s())  # the first answer pays the cold start
                else:
                    articles += answered

        await asyncio.gather(*(sender() for _ in range(BATCH_SENDERS)))
        measured_s = self.now_s() - first_done[0] if first_done else 0.0
        return articles / measured_s if measured_s > 0 else 0.0

    async def paced(self, session: aiohttp.ClientSession, rate: float, end_s: float) -> Schedule:
        """The steady load until ``end_s``: batches and singles at ``rate`` articles/s."""
        start_s = self.now_s()
        batches = Schedule(
            rate * (1 - SINGLE_SHARE) / BATCH_SIZE, start_s, end_s, first_slot=self.batch_slot
        )
        singles = Schedule(max(rate * SINGLE_SHARE, 1.0), start_s, end_s)

        async def sender(schedule: Schedule, route: str) -> None:
            while (taken := schedule.take(self.now_s())) is not None:
                slot, due_s = taken
                wait_s = due_s - self.now_s()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
                if route == "batch":
                    await self.send_batch(session, slot)
                else:
                    await self.send_single(session, slot)

        await asyncio.gather(
            *(sender(batches, "batch") for _ in range(BATCH_SENDERS)),
            *(sender(singles, "single") for _ in range(SINGLE_SENDERS)),
        )
        self.batch_slot = batches.next_slot
        return batches


# --- what the machine holds -------------------------------------------------------------------


def _status_kib(pid: int, *names: str) -> dict[str, int]:
    """Fields of /proc/<pid>/status in KiB (empty when the process is gone)."""
    found: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in names:
            found[key] = int(value.split()[0])
    return found


def children(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc/<pid>/task/*/children."""
    kids: list[int] = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            kids += [int(x) for x in path.read_text(encoding="ascii").split()]
    return sorted(set(kids))


def role(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    if "spawn_main" in cmdline:
        return "worker"
    if "resource_tracker" in cmdline:
        return "resource tracker"
    return cmdline.split(" ")[0].rsplit("/", 1)[-1] or "?"


@dataclass(frozen=True, slots=True)
class ProcMem:
    pid: int
    role: str
    rss_kib: int
    anon_kib: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Memory and CPU counters at one instant."""

    at_s: float
    procs: tuple[ProcMem, ...]  # the service process first, then its children
    redis_used: int | None  # bytes
    redis_rss: int | None  # bytes
    indexed: int | None  # entries in the prefix's two streams
    cpu: dict[str, float]

    @property
    def rss_mib(self) -> float:
        return sum(p.rss_kib for p in self.procs) / 1024

    def part_mib(self, which: str) -> float:
        main = self.procs[0].rss_kib if self.procs else 0
        return (main if which == "main" else sum(p.rss_kib for p in self.procs) - main) / 1024


class Meter:
    """Reads the service's processes and Redis."""

    def __init__(self, service: Service, redis_url: str | None) -> None:
        self.service = service
        self.redis_url = redis_url
        self.client = aioredis.Redis.from_url(redis_url, socket_timeout=5.0) if redis_url else None
        self.redis_pid: int | None = None
        self.streams = [f"{service.prefix}:articles", f"{service.prefix}:duplicates"]
        self.child_cpu_gone = 0.0  # CPU seconds of children that exited (replaced workers)
        self._child_cpu: dict[int, float] = {}

    async def start(self) -> None:
        if self.client is None:
            return
        host = urlsplit(self.redis_url or "").hostname
        if host in {"127.0.0.1", "localhost", "::1"}:
            with contextlib.suppress(redis.RedisError):
                self.redis_pid = int((await self.client.info("server"))["process_id"])

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def redis_figures(self) -> tuple[int | None, int | None, int | None]:
        if self.client is None:
            return None, None, None
        try:
            info = await self.client.info("memory")
            async with self.client.pipeline(transaction=False) as pipe:
                for stream in self.streams:
                    pipe.xlen(stream)
                lengths = await pipe.execute()
        except redis.RedisError as exc:
            print(f"  ! Redis figures unavailable: {exc}", flush=True)
            return None, None, None
        return int(info["used_memory"]), int(info["used_memory_rss"]), sum(map(int, lengths))

    async def snapshot(self, at_s: float) -> Snapshot:
        main = self.service.process.pid
        pids = [main, *children(main)]
        procs = []
        for pid in pids:
            fields = _status_kib(pid, "VmRSS", "RssAnon")
            if fields:
                name = "service" if pid == main else role(pid)
                procs.append(ProcMem(pid, name, fields.get("VmRSS", 0), fields.get("RssAnon", 0)))
        kids_cpu = {pid: cpu_seconds(pid) for pid in pids[1:]}
        for pid, seconds in self._child_cpu.items():
            if pid not in kids_cpu:
                self.child_cpu_gone += seconds
        self._child_cpu = kids_cpu
        used, rss, indexed = await self.redis_figures()
        cpu = {
            "service": cpu_seconds(main),
            "workers": sum(kids_cpu.values()) + self.child_cpu_gone,
            "redis": cpu_seconds(self.redis_pid) if self.redis_pid else 0.0,
            "client": time.process_time(),
            "machine": machine_busy_seconds(),
        }
        return Snapshot(at_s, tuple(procs), used, rss, indexed, cpu)


# --- windows ----------------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in (0, 100]; NaN when there are none."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class Window:
    start_s: float
    end_s: float
    warmup: bool
    requests: int
    articles: int  # in 2xx answers
    statuses: Counter[str]
    batch_ms: tuple[float, float]
    single_ms: tuple[float, float]
    cores: dict[str, float]
    memory: Snapshot

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s

    @property
    def article_rate(self) -> float:
        return self.articles / self.seconds


def close_window(start: Snapshot, end: Snapshot, requests: list[Request], warmup: bool) -> Window:
    seconds = end.at_s - start.at_s
    used = {name: end.cpu[name] - start.cpu[name] for name in start.cpu}
    machine = used.pop("machine")
    used["other"] = max(0.0, machine - sum(used.values()))
    cores = {name: value / seconds for name, value in used.items()}

    def pcts(route: str) -> tuple[float, float]:
        samples = [r.latency_s * 1000 for r in requests if r.route == route]
        return percentile(samples, 50), percentile(samples, 99)

    return Window(
        start_s=start.at_s,
        end_s=end.at_s,
        warmup=warmup,
        requests=len(requests),
        articles=sum(r.articles for r in requests if r.status.startswith("2")),
        statuses=Counter(r.status for r in requests),
        batch_ms=pcts("batch"),
        single_ms=pcts("single"),
        cores=cores,
        memory=end,
    )


HEADER = (
    f"  {'t (s)':>13} {'':4} {'req/s':>6} {'art/s':>6}  {'batch p50/p99 ms':>16}"
    f"  {'single p50/p99':>14}  {'cores svc+wrk/redis/cli/other':>29}"
    f"  {'RSS MiB main+wrk=total':>24}  {'redis MiB':>9}  statuses"
)


def window_line(w: Window) -> str:
    def pair(values: tuple[float, float]) -> str:
        return "-" if math.isnan(values[0]) else f"{values[0]:.0f}/{values[1]:.0f}"

    c = w.cores
    cores = f"{c['service'] + c['workers']:.2f}/{c['redis']:.2f}/{c['client']:.2f}/{c['other']:.2f}"
    m = w.memory
    rss = f"{m.part_mib('main'):.0f}+{m.part_mib('workers'):.0f}={m.rss_mib:.0f}"
    redis_mib = "-" if m.redis_used is None else f"{m.redis_used / MIB:.0f}"
    statuses = " ".join(f"{k}:{v}" for k, v in sorted(w.statuses.items()))
    return (
        f"  {w.start_s:6.1f}-{w.end_s:6.1f} {'warm' if w.warmup else '':4}"
        f" {w.requests / w.seconds:6.1f} {w.article_rate:6.1f}  {pair(w.batch_ms):>16}"
        f"  {pair(w.single_ms):>14}  {cores:>29}  {rss:>24}  {redis_mib:>9}  {statuses}"
    )


# --- the run ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    rate: float = 0.0
    calibrated: float | None = None
    windows: list[Window] = field(default_factory=list)
    start: Snapshot | None = None
    after_warmup: Snapshot | None = None
    end: Snapshot | None = None
    tally: Tally = field(default_factory=Tally)
    shifted_s: float = 0.0
    stopped_early: str | None = None


async def soak(config: Config, service: Service, redis_url: str | None, run: Run) -> None:
    ready_s = await wait_ready(service)
    step(f"service ready after {ready_s:.1f} s at {service.base_url}, prefix {service.prefix}")
    meter = Meter(service, redis_url)
    await meter.start()
    step("generating the sentence pool")
    articles = Articles()
    edges = boundaries(config)
    loop = asyncio.get_running_loop()
    origin = loop.time()
    load = Load(service.base_url, articles, run.tally, origin)
    run.start = previous = await meter.snapshot(0.0)
    if config.warmup_s == 0:
        run.after_warmup = run.start
    if run.start.indexed is not None:
        step(f"Redis used_memory at the start: {(run.start.redis_used or 0) / MIB:.1f} MiB")
    connector = aiohttp.TCPConnector(limit=BATCH_SENDERS + SINGLE_SENDERS + 2)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)

    async def drive(session: aiohttp.ClientSession) -> None:
        if config.rate is None:
            step(f"calibrating: batches flat out for {config.calibrate_s:.0f} s")
            run.calibrated = await load.flat_out(session, config.calibrate_s)
            run.rate = BUSY_TARGET * run.calibrated
            step(
                f"flat out: {run.calibrated:.1f} articles/s; offering {run.rate:.1f} articles/s "
                f"({BUSY_TARGET:.0%}) from now on"
            )
        else:
            run.rate = config.rate
            step(f"offering {run.rate:.1f} articles/s (--rate)")
        schedule = await load.paced(session, run.rate, config.duration_s)
        run.shifted_s = schedule.shifted_s

    print()
    print(HEADER, flush=True)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        driver = asyncio.create_task(drive(session))
        try:
            for index, edge in enumerate(edges[1:], start=1):
                last = index == len(edges) - 1
                while (wait_s := origin + edge - loop.time()) > 0 and not driver.done():
                    await asyncio.sleep(min(wait_s, 1.0))
                    if service.process.poll() is not None:
                        run.stopped_early = f"the service exited ({service.process.returncode})"
                        driver.cancel()
                if last or driver.done():
                    # The end: let the requests in flight answer (each has its timeout).
                    with contextlib.suppress(asyncio.CancelledError):
                        await driver
                if driver.done() and not last and run.stopped_early is None:
                    run.stopped_early = "the load stopped before its deadline"
                snapshot = await meter.snapshot(loop.time() - origin)
                requests, run.tally.window = run.tally.window, []
                window = close_window(previous, snapshot, requests, edge <= config.warmup_s)
                run.windows.append(window)
                print(window_line(window), flush=True)
                previous = snapshot
                if edge == config.warmup_s:
                    run.after_warmup = snapshot
                if driver.done():
                    break
        finally:
            if not driver.done():
                driver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await driver
            await meter.close()
    run.end = previous


def run_soak(config: Config) -> Run:
    if redis_answers(config.redis_url):
        redis_url: str | None = config.redis_url
        note = f"{config.redis_url} (shared; key prefix bench-<random>, deleted at the end)"
    else:
        redis_url = None
        note = f"{config.redis_url} does not answer: the embedded server in a temporary directory"
    print("news-ingest soak")
    print(f"  commit      {git_commit()}")
    print(
        f"  machine     {os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}, load average {load_average()}"
    )
    print(f"  redis       {note}")
    rate = f"{config.rate:g} articles/s" if config.rate else f"{BUSY_TARGET:.0%} of flat out"
    print(
        f"  load        {config.duration_s:g} s (warm-up {config.warmup_s:g} s, windows of "
        f"{config.window_s:g} s), {rate}; {BATCH_SENDERS} senders of {BATCH_SIZE}-article "
        f"batches, {SINGLE_SENDERS} of singles ({SINGLE_SHARE:.0%} of articles, {DRY_SHARE:.0%} "
        f"of them dry runs); {NEAR_SHARE:.0%} near-duplicates, {REPLAY_SHARE:.0%} replays; "
        f"{config.workers} service workers"
    )
    print(flush=True)
    run = Run()
    with tempfile.TemporaryDirectory(prefix="news-ingest-soak-") as scratch:
        service = start_service(redis_url, config.workers, Path(scratch))
        try:
            asyncio.run(soak(config, service, redis_url, run))
        finally:
            finish(service, show_log=run.stopped_early is not None)
    return run


# --- report -----------------------------------------------------------------------------------


def _ratio(end: float, start: float) -> str:
    return f"{end / start:.3f}" if start else "-"


def report(config: Config, run: Run) -> None:
    print()
    if run.stopped_early:
        print(f"note: {run.stopped_early}")
    tally = run.tally
    sent = Counter[str]()
    for (expect, _got), n in tally.outcomes.items():
        sent[expect] += n
    if run.calibrated is not None:
        print(
            f"Rate: flat out {run.calibrated:.1f} articles/s in the first {config.calibrate_s:.0f}"
            f" s; offered {run.rate:.1f} articles/s after"
        )
    else:
        print(f"Rate: offered {run.rate:.1f} articles/s (--rate)")
    if run.shifted_s:
        print(
            f"  the senders fell behind the schedule by {run.shifted_s:.1f} s in all (each lag "
            f"over {MAX_LAG_S:g} s moved the schedule on instead of sending a burst)"
        )
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(tally.statuses.items()))
    print(f"Requests: {sum(tally.statuses.values())} ({statuses}); {tally.articles} articles")
    print(
        f"  5xx answers and client exceptions: {tally.failures}; items answered with an error: "
        f"{tally.item_errors}"
    )
    print("Answers by what was sent (sent -> answered: count)")
    for expect in ("new", "near", "replay", "dry"):
        got = {g: n for (e, g), n in tally.outcomes.items() if e == expect}
        parts = ", ".join(f"{g} {n}" for g, n in sorted(got.items(), key=lambda x: -x[1]))
        print(f"  {expect:<7} {sent[expect]:>7}: {parts or '-'}")

    after, end = run.after_warmup, run.end
    print()
    if after is None or end is None:
        print("Memory: no sample after the warm-up (the run stopped early)")
        return
    print(
        f"Memory (RSS, MiB)       after warm-up (t={after.at_s:.0f} s)   end (t={end.at_s:.0f} s)"
    )
    print(f"  {'process':<22}{'':>22}{'':>16}   end/after")
    rows = [("service (event loop)", after.part_mib("main"), end.part_mib("main"))]
    rows.append(("workers + children", after.part_mib("workers"), end.part_mib("workers")))
    rows.append(("total", after.rss_mib, end.rss_mib))
    for name, a, e in rows:
        print(f"  {name:<22}{a:>22.1f}{e:>16.1f}   {_ratio(e, a)} ({e - a:+.1f} MiB)")
    print("  per process (RSS / anonymous RSS, MiB):")
    before = {p.pid: p for p in after.procs}
    for proc in end.procs:
        was = before.get(proc.pid)
        was_text = f"{was.rss_kib / 1024:.1f} / {was.anon_kib / 1024:.1f}" if was else "(new)"
        print(
            f"    pid {proc.pid:<8} {proc.role:<17} {was_text:>15} -> "
            f"{proc.rss_kib / 1024:.1f} / {proc.anon_kib / 1024:.1f}"
        )
    gone = [p for p in after.procs if p.pid not in {q.pid for q in end.procs}]
    for proc in gone:
        print(f"    pid {proc.pid:<8} {proc.role:<17} gone by the end (replaced?)")
    peak = max(w.memory.rss_mib for w in run.windows)
    print(f"  peak total over the windows: {peak:.1f} MiB")
    if after.redis_used is not None and end.redis_used is not None and run.start:
        grown = end.redis_used - after.redis_used
        entries = (end.indexed or 0) - (after.indexed or 0)
        per = f", {grown / entries / 1024:.1f} KiB per stream entry added" if entries > 0 else ""
        print(
            f"  Redis used_memory: start {(run.start.redis_used or 0) / MIB:.1f}, after warm-up "
            f"{after.redis_used / MIB:.1f}, end {end.redis_used / MIB:.1f} MiB "
            f"(end/after {_ratio(end.redis_used, after.redis_used)}{per}); stream entries "
            f"{after.indexed} -> {end.indexed}"
        )
        print(
            "  (Redis grows with the index and the streams, as expected: every accepted article "
            "is kept for the dedup window; shared server, so other users' keys count too; "
            "not part of the bar)"
        )

    print()
    verdict(config, run, after, end)


def verdict(config: Config, run: Run, after: Snapshot, end: Snapshot) -> None:
    judged = [w for w in run.windows if not w.warmup]
    memory_ratio = end.rss_mib / after.rss_mib if after.rss_mib else math.inf
    memory_ok = memory_ratio <= MEMORY_BAR
    rates = [w.article_rate for w in judged]
    median = statistics.median(rates) if rates else 0.0
    low, high = (min(rates) / median, max(rates) / median) if median else (0.0, 0.0)
    steady = bool(rates) and low >= 1 - STEADY_BAR and high <= 1 + STEADY_BAR
    p50s = [w.batch_ms[0] for w in judged if not math.isnan(w.batch_ms[0])]
    if len(p50s) >= 2:
        print(
            f"Batch latency p50, last / first post-warm-up window: {p50s[-1] / p50s[0]:.2f}x "
            f"({p50s[0]:.0f} -> {p50s[-1]:.0f} ms; not part of the bar)"
        )
    failures = run.tally.failures
    print(
        f"VERDICT memory: end {end.rss_mib:.1f} MiB / after warm-up {after.rss_mib:.1f} MiB = "
        f"{memory_ratio:.3f} (bar <= {MEMORY_BAR:.2f}): {'MET' if memory_ok else 'NOT MET'}"
    )
    print(
        f"VERDICT throughput: {len(rates)} post-warm-up windows, median {median:.1f} articles/s, "
        f"min/median {low:.3f}, max/median {high:.3f} (bar {1 - STEADY_BAR:.2f}-"
        f"{1 + STEADY_BAR:.2f}): {'STEADY' if steady else 'NOT STEADY'}"
    )
    overall = "MET" if memory_ok and steady else "NOT MET"
    print(
        f"VERDICT overall (issue 5 bar): {overall}"
        + (f"; {failures} 5xx answers or client exceptions" if failures else "")
    )


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    started = time.perf_counter()
    run = run_soak(config)
    report(config, run)
    print()
    print(f"total {time.perf_counter() - started:.1f} s; load average at the end {load_average()}")


if __name__ == "__main__":
    main()
