"""Throughput and latency of news-ingest, side by side with the in-process pipeline.

One run measures, on the same machine and the same inputs:

a. text articles/s through ``POST /v1/articles/batch`` (NDJSON) of a real ``news-ingest serve``;
b. HTML pages/s through the same endpoint, with real pages from the trafilatura corpus;
c. the in-process pipeline on the same inputs: ``prepare_items`` (clean + fingerprint) and an
   in-memory datasketch ``MinHashLSH`` query + insert, one process, no HTTP, no Redis;
d. single-article latency of ``POST /v1/articles`` at concurrency 1 and 8.

Each HTTP phase also reports the CPU time the service's event loop, its workers, Redis, this
client and the rest of the machine spent per item (read from /proc), so a figure taken while
other work shared the cores can be told apart from a slow service.

The machine is shared and noisy, so the script prints figures and ratios of one run and never
judges an absolute time. Usage::

    python bench/throughput.py [--redis-url URL] [--articles N] [--html-pages N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import math
import os
import platform
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import redis

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
CORPUS = Path("/work/shared/corpora/trafilatura-eval")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
NDJSON = "application/x-ndjson"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
SEED = 20240501

T = TypeVar("T")


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    """What one run measures and how big it is."""

    redis_url: str
    articles: int
    html_pages: int
    latency_requests: int
    batch_size: int
    html_batch_size: int
    senders: int
    workers: int


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis to run against (default: $REDIS_URL or %(default)s); when it does not "
        "answer, the service starts its embedded server in a temporary directory",
    )
    parser.add_argument("--articles", type=int, help="text articles (default 2000, quick 300)")
    parser.add_argument("--html-pages", type=int, help="HTML pages (default 100, quick 30)")
    parser.add_argument(
        "--latency-requests", type=int, help="requests per concurrency (default 300, quick 100)"
    )
    parser.add_argument("--batch-size", type=int, default=200, help="text articles per batch")
    parser.add_argument("--html-batch-size", type=int, default=25, help="HTML pages per batch")
    parser.add_argument("--senders", type=int, default=2, help="concurrent batch senders")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="service worker processes"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, well under a minute")
    args = parser.parse_args(argv)
    quick = bool(args.quick)

    def size(given: int | None, quick_size: int, default: int) -> int:
        return given if given is not None else (quick_size if quick else default)

    config = Config(
        redis_url=args.redis_url,
        articles=size(args.articles, 300, 2000),
        html_pages=size(args.html_pages, 30, 100),
        latency_requests=size(args.latency_requests, 100, 300),
        batch_size=args.batch_size,
        html_batch_size=args.html_batch_size,
        senders=args.senders,
        workers=args.workers,
    )
    positive = ("articles", "html_pages", "latency_requests", "batch_size", "html_batch_size")
    for name in (*positive, "senders", "workers"):
        if getattr(config, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if config.batch_size > 1000 or config.html_batch_size > 1000:
        parser.error("a batch holds at most 1000 articles (the service's max_batch_items)")
    return config


# --- inputs -----------------------------------------------------------------------------------

_FIRST = ["Maria", "James", "Aiko", "Olusegun", "Priya", "Tomas", "Leila", "Chen", "Sofia", "Omar"]
_LAST = ["Lopez", "Okafor", "Tanaka", "Novak", "Haddad", "Singh", "Berg", "Moreau", "Kim", "Reyes"]
_SOURCES = ["Daily Ledger", "Metro Wire", "Coast Herald", "Capital Post", "Valley Times"]
_LABELS = ["world news", "politics", "business", "local", "science"]
_MONTHS = ["January", "March", "May", "July", "September", "November"]


def vocabulary(seeds_dir: Path = SEEDS) -> list[str]:
    """Distinct words of the seed articles: real English, so shingles look like news."""
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(seeds_dir.glob("*.txt")))
    words = {w.lower() for w in re.findall(r"[A-Za-z]{2,}", text)}
    if len(words) < 200:
        raise SystemExit(f"{seeds_dir}: expected seed articles with a few hundred distinct words")
    return sorted(words)


def _sentence(rng: random.Random, words: list[str], weights: list[float]) -> str:
    tokens = rng.choices(words, weights, k=rng.randint(8, 28))
    if len(tokens) > 12 and rng.random() < 0.5:
        tokens[rng.randrange(4, len(tokens) - 4)] += ","
    return " ".join(tokens).capitalize() + "."


def _chrome(rng: random.Random) -> str:
    """One line of scraping boilerplate that the text cleaner's rules should take out."""
    return rng.choice(
        [
            "Advertisement",
            "Share this article",
            "Read more",
            "Facebook Twitter Email",
            "Sign up for our daily newsletter",
            "Related: " + rng.choice(_LABELS).title() + " roundup",
        ]
    )


def text_article(index: int, words: list[str], weights: list[float], kind: str) -> dict[str, Any]:
    """A distinct synthetic story of 400-800 words, as raw scraped text with some chrome."""
    rng = random.Random(f"{SEED}:{kind}:{index}")
    title = " ".join(rng.choices(words, weights, k=rng.randint(6, 12))).capitalize()
    author = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    lines = [rng.choice(_LABELS), title, _chrome(rng), f"By {author}"]
    lines.append(
        f"Updated {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} GMT "
        f"{rng.choice(_MONTHS)} {rng.randint(1, 28)}, 2024"
    )
    target = rng.randint(400, 800)
    count = 0
    while count < target:
        paragraph = " ".join(_sentence(rng, words, weights) for _ in range(rng.randint(2, 5)))
        lines.append(paragraph)
        count += len(paragraph.split())
        if rng.random() < 0.15:
            lines.append(_chrome(rng))
    record: dict[str, Any] = {
        "id": f"bench-{kind}-{index:06d}",
        "source": rng.choice(_SOURCES),
        "language": "en",
        "published_at": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T08:00:00Z",
        "text": "\n\n".join(lines),
    }
    if index % 2:
        record["title"] = title
    return record


def text_articles(count: int, kind: str) -> list[dict[str, Any]]:
    words = vocabulary()
    # Zipf-like word frequencies, as in prose: a few words are everywhere, most are rare.
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    random.Random(SEED).shuffle(weights)
    return [text_article(i, words, weights, kind) for i in range(count)]


def _decode_html(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = re.search(rb"charset=[\"']?([A-Za-z0-9_-]+)", raw[:4096])
    if declared:
        with contextlib.suppress(LookupError, UnicodeDecodeError):
            return raw.decode(declared.group(1).decode("ascii"))
    return raw.decode("cp1252", errors="replace")


def _usable_url(url: Any) -> str | None:
    if not isinstance(url, str) or len(url) > 2048:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in {"http", "https"} and parts.hostname else None


def html_pages(count: int, corpus: Path = CORPUS) -> list[dict[str, Any]]:
    """The first ``count`` corpus pages (sorted by name), each with a distinct id."""
    paths = sorted((corpus / "html").glob("*.html.gz"))
    if not paths:
        raise SystemExit(f"no pages in {corpus / 'html'}")
    if count > len(paths):
        print(f"note: the corpus holds {len(paths)} pages; using all of them, not {count}")
    try:
        expected = json.loads((corpus / "expected.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        expected = {}
    pages = []
    for path in paths[:count]:
        stem = path.name.removesuffix(".html.gz")
        record: dict[str, Any] = {
            "id": f"bench-html-{stem}",
            "html": _decode_html(gzip.decompress(path.read_bytes())),
        }
        url = _usable_url(expected.get(path.name, {}).get("url"))
        if url:
            record["url"] = url
        pages.append(record)
    return pages


# JSON may carry these raw inside strings, but Python's str.splitlines() ends a line at each of
# them, and the service splits NDJSON bodies with it: escaped, every item stays one line.
_LINE_BREAKS_IN_JSON = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def json_line(item: dict[str, Any]) -> str:
    line = json.dumps(item, ensure_ascii=False)
    for raw, escaped in _LINE_BREAKS_IN_JSON.items():
        line = line.replace(raw, escaped)
    return line


def warmup_page(index: int) -> dict[str, Any]:
    """A small page whose footer sends htmldate to dateparser, whose first use in a process
    compiles its locale patterns for seconds; the service's warm-up does not reach it."""
    paragraphs = "".join(
        f"<p>Paragraph {i} of warm-up story {index}, with enough words in it to be kept as text "
        "by the extractor.</p>"
        for i in range(8)
    )
    return {
        "id": f"bench-warmup-{index}",
        "html": f"<html><head><title>Warm-up story {index}</title></head><body><article>"
        f"<h1>Warm-up story {index}</h1>{paragraphs}</article><div class='footer'>Hire the top "
        f"{index + 1}% of talentCopyright 2010</div></body></html>",
    }


def ndjson(items: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(json_line(item).encode() + b"\n" for item in items)


def raw_line_breaks(items: Sequence[dict[str, Any]]) -> int:
    """How many items hold a character that ``str.splitlines()`` breaks an NDJSON line at."""
    return sum(
        any(ch in json.dumps(item, ensure_ascii=False) for ch in _LINE_BREAKS_IN_JSON)
        for item in items
    )


def batches(items: Sequence[dict[str, Any]], size: int) -> list[bytes]:
    return [ndjson(items[i : i + size]) for i in range(0, len(items), size)]


# --- in-process baseline ----------------------------------------------------------------------


@dataclass(slots=True)
class InProcess:
    """One single-process pass: clean + fingerprint, then the in-memory LSH."""

    items: int
    prepare_s: float
    lsh_s: float
    outcomes: Counter[str]
    item_s: list[tuple[float, str]]  # (prepare seconds, id) of each item
    warmup_s: float  # preparing the warm-up items, before the measured pass

    @property
    def total_s(self) -> float:
        return self.prepare_s + self.lsh_s

    @property
    def rate(self) -> float:
        return self.items / self.total_s


def run_in_process(
    items: Sequence[dict[str, Any]], warmup: Sequence[dict[str, Any]] = ()
) -> InProcess:
    """``prepare_items`` on the parsed items, then a datasketch MinHashLSH query + insert each.

    Candidates are verified against their stored signatures, as the service's Lua step does.
    """
    from datasketch import MinHashLSH

    from service.app import params_of
    from service.fingerprint import estimated_jaccard, lsh_params, signature_from_bytes
    from service.models import ItemError, Prepared
    from service.prepare import prepare_items, warm
    from service.settings import Settings

    params = params_of(Settings())
    warm(params)
    started = time.perf_counter()
    prepare_items(list(warmup), params)
    warmup_s = time.perf_counter() - started
    prepared: list[Prepared | ItemError] = []
    item_s: list[tuple[float, str]] = []
    # One call per item (the per-call cost is nil) to see the spread, not only the mean.
    for obj in items:
        started = time.perf_counter()
        prepared.extend(prepare_items([obj], params))
        item_s.append((time.perf_counter() - started, str(obj.get("id"))))
    prepare_s = sum(seconds for seconds, _ in item_s)

    lsh = MinHashLSH(num_perm=params.num_perm, params=lsh_params(params.threshold, params.num_perm))
    signatures: dict[str, bytes] = {}
    outcomes: Counter[str] = Counter()
    started = time.perf_counter()
    for item in prepared:
        if isinstance(item, ItemError):
            outcomes[f"error:{item.code}"] += 1
            continue
        candidates = lsh.query(signature_from_bytes(item.signature))
        best = max(
            (estimated_jaccard(signatures[c], item.signature) for c in candidates), default=0.0
        )
        if best >= params.threshold:
            outcomes["duplicate"] += 1
            continue
        lsh.insert(item.id, signature_from_bytes(item.signature))
        signatures[item.id] = item.signature
        outcomes["unique"] += 1
    lsh_s = time.perf_counter() - started
    return InProcess(len(items), prepare_s, lsh_s, outcomes, item_s, warmup_s)


# --- the service ------------------------------------------------------------------------------


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(slots=True)
class Service:
    """A ``news-ingest serve`` child process and where it keeps its keys."""

    process: subprocess.Popen[bytes]
    base_url: str
    prefix: str
    redis_url: str | None  # None until the embedded server has announced itself
    data_dir: Path
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start_service(redis_url: str | None, workers: int, scratch: Path) -> Service:
    """Start the service on a free port under a fresh key prefix; it is not ready yet."""
    port = free_port()
    prefix = f"bench-{secrets.token_hex(4)}"
    data_dir = scratch / "data"
    log_path = scratch / "service.log"
    command = [
        sys.executable, "-m", "service", "serve",
        "--port", str(port),
        "--key-prefix", prefix,
        "--workers", str(workers),
        "--log-level", "WARNING",
        "--data-dir", str(data_dir),
    ]  # fmt: skip
    if redis_url is not None:
        command += ["--redis-url", redis_url]
    # Measure the defaults: a NEWS_INGEST_* variable of the caller (API keys, another Redis)
    # would change what is measured or make every request fail.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWS_INGEST_")}
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return Service(process, f"http://127.0.0.1:{port}", prefix, redis_url, data_dir, log_path)


async def wait_ready(service: Service, timeout_s: float = READY_TIMEOUT_S) -> float:
    """Poll /readyz until it answers 200; answers the seconds it took."""
    started = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.perf_counter() - started < timeout_s:
            if service.process.poll() is not None:
                raise RuntimeError(
                    f"the service exited with status {service.process.returncode}:\n"
                    + service.log_tail()
                )
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with session.get(service.base_url + "/readyz") as resp:
                    if resp.status == 200:
                        return time.perf_counter() - started
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the service was not ready after {timeout_s:.0f} s:\n{service.log_tail()}")


def stop_service(service: Service) -> int | None:
    """SIGTERM, wait; kill the process group only if it does not stop in time."""
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
        try:
            service.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"warning: the service ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait()
    return service.process.returncode


def cleanup_url(service: Service) -> str | None:
    """The Redis the service wrote to: the given one, or the embedded one it recorded."""
    if service.redis_url is not None:
        return service.redis_url
    from service.embedded import recorded_url

    return recorded_url(service.data_dir)


def delete_keys(url: str, prefix: str) -> int:
    """SCAN ``<prefix>:*`` and UNLINK what it finds; answers how many keys went."""
    client = redis.Redis.from_url(url, socket_timeout=10.0)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(client.unlink(*batch))
                batch = []
        if batch:
            deleted += int(client.unlink(*batch))
    finally:
        client.close()
    return deleted


# --- CPU accounting (Linux /proc; skipped elsewhere) -------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name sits in parentheses and may hold spaces: split after its end.
    return text[text.rfind(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 when it is gone)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS if fields else 0.0


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have spent busy (from /proc/stat)."""
    try:
        first = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()
    except (OSError, IndexError):
        return 0.0
    ticks = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / _CLOCK_TICKS


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of the direct children of ``pid``."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat_fields(int(entry.name))
        if fields and int(fields[1]) == pid:
            with contextlib.suppress(OSError):
                found.append((int(entry.name), (entry / "comm").read_text().strip()))
    return found


@dataclass(frozen=True, slots=True)
class CpuMeter:
    """Who to account CPU time to: the service's event loop, its workers, Redis, this client."""

    service_pid: int
    worker_pids: tuple[int, ...]
    redis_pid: int | None

    def snapshot(self) -> dict[str, float]:
        return {
            "event loop": cpu_seconds(self.service_pid),
            "workers": sum(cpu_seconds(pid) for pid in self.worker_pids),
            "redis": cpu_seconds(self.redis_pid) if self.redis_pid else 0.0,
            "bench client": time.process_time(),
            "machine": machine_busy_seconds(),
        }


def cpu_meter(service: Service, redis_url: str | None) -> CpuMeter | None:
    """A meter for the running service; None where /proc is not there to read."""
    if not Path("/proc/self/stat").exists():
        return None
    kids = children_of(service.process.pid)
    workers = tuple(pid for pid, name in kids if name.startswith("python"))
    embedded = [pid for pid, name in kids if not name.startswith("python")]
    redis_pid = embedded[0] if embedded else None
    if redis_pid is None and redis_url is not None:
        host = urlsplit(redis_url).hostname
        if host in {"127.0.0.1", "localhost", "::1"}:
            client = redis.Redis.from_url(redis_url, socket_timeout=2.0)
            with contextlib.suppress(redis.RedisError), contextlib.closing(client):
                redis_pid = int(client.info("server")["process_id"])
    return CpuMeter(service.process.pid, workers, redis_pid)


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per component between two snapshots; "others" is the rest of the machine."""
    used = {name: after[name] - before[name] for name in before}
    machine = used.pop("machine")
    used["others"] = max(0.0, machine - sum(used.values()))
    return used


# --- HTTP load --------------------------------------------------------------------------------


@dataclass(slots=True)
class Throughput:
    items: int
    seconds: float
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.items / self.seconds


def _count_results(body: Any, outcomes: Counter[str], size: int, status: int) -> None:
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        outcomes[f"http_{status}"] += size
        return
    if len(results) != size:
        # The service answered more or fewer results than the batch had lines.
        outcomes["result_count_mismatch"] += abs(len(results) - size)
    for result in results:
        if "error" in result:
            outcomes[f"error:{result['error'].get('code')}"] += 1
        else:
            outcomes["replayed" if result.get("replayed") else str(result.get("status"))] += 1


async def post_batches(
    base_url: str, bodies: Sequence[bytes], items: int, senders: int
) -> Throughput:
    """Post NDJSON batch bodies with ``senders`` concurrent clients; wall time of them all."""
    queue: Iterator[bytes] = iter(bodies)
    outcomes: Counter[str] = Counter()
    endpoint = base_url + "/v1/articles/batch"
    headers = {"Content-Type": NDJSON}

    async def sender(session: aiohttp.ClientSession) -> None:
        for body in queue:  # a shared iterator: each body goes to exactly one sender
            async with session.post(endpoint, data=body, headers=headers) as resp:
                payload = await resp.json(content_type=None)
            _count_results(payload, outcomes, body.count(b"\n"), resp.status)

    connector = aiohttp.TCPConnector(limit=senders)
    timeout = aiohttp.ClientTimeout(total=900)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(sender(session) for _ in range(senders)))
        seconds = time.perf_counter() - started
    return Throughput(items, seconds, outcomes)


@dataclass(slots=True)
class Latency:
    concurrency: int
    samples_s: list[float]
    seconds: float
    outcomes: Counter[str]

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile, ``q`` in (0, 100]."""
        ordered = sorted(self.samples_s)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]

    @property
    def rate(self) -> float:
        return len(self.samples_s) / self.seconds


async def measure_latency(
    base_url: str, bodies: Sequence[bytes], concurrency: int, *, dry_run: bool = False
) -> Latency:
    """POST /v1/articles once per body, ``concurrency`` requests in flight."""
    queue: Iterator[bytes] = iter(bodies)
    samples: list[float] = []
    outcomes: Counter[str] = Counter()
    endpoint = base_url + "/v1/articles" + ("?dry_run=true" if dry_run else "")
    headers = {"Content-Type": "application/json"}

    async def client(session: aiohttp.ClientSession) -> None:
        for body in queue:
            started = time.perf_counter()
            async with session.post(endpoint, data=body, headers=headers) as resp:
                payload = await resp.read()
            samples.append(time.perf_counter() - started)
            if resp.status in (200, 201):
                outcomes[str(json.loads(payload).get("status"))] += 1
            else:
                outcomes[f"http_{resp.status}"] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=120)
    ) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Latency(concurrency, samples, seconds, outcomes)


# --- the run ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Results:
    text_http: Throughput | None = None
    html_http: Throughput | None = None
    text_local: InProcess | None = None
    html_local: InProcess | None = None
    latency: list[Latency] = field(default_factory=list)
    html_warmup: Latency | None = None
    # phase -> (items, wall seconds, CPU seconds per component)
    cpu: dict[str, tuple[int, float, dict[str, float]]] = field(default_factory=dict)


def git_commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short=12", "HEAD") or "none (no commit yet)"
    dirty = git("status", "--porcelain", "--", "service", "bench")
    return commit + (" + uncommitted changes in service/ or bench/" if dirty else "")


def print_header(config: Config, redis_note: str) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print("news-ingest throughput benchmark")
    print(f"  commit      {git_commit()}")
    print(
        f"  machine     {os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}, load average {load}"
    )
    print(f"  redis       {redis_note}")
    print(
        f"  sizes       {config.articles} text articles (batches of {config.batch_size}), "
        f"{config.html_pages} HTML pages (batches of {config.html_batch_size}), "
        f"{config.senders} senders, {config.latency_requests} latency requests per "
        f"concurrency, {config.workers} service workers"
    )
    print(flush=True)


def step(message: str) -> None:
    print(f"... {message}", flush=True)


async def _metered(
    meter: CpuMeter | None, results: Results, phase: str, items: int, work: Awaitable[T]
) -> T:
    """Await ``work`` and record the CPU seconds each component spent on it."""
    before = meter.snapshot() if meter else None
    started = time.perf_counter()
    outcome = await work
    wall_s = time.perf_counter() - started
    if meter and before:
        results.cpu[phase] = (items, wall_s, cpu_used(before, meter.snapshot()))
    return outcome


async def run_http(
    config: Config,
    service: Service,
    results: Results,
    texts: list[dict[str, Any]],
    pages: list[dict[str, Any]],
) -> None:
    ready_s = await wait_ready(service)
    step(f"service ready after {ready_s:.1f} s at {service.base_url}, prefix {service.prefix}")
    meter = cpu_meter(service, cleanup_url(service))
    text_bodies = batches(texts, config.batch_size)
    results.text_http = await _metered(
        meter, results, "HTTP text batch", len(texts),
        post_batches(service.base_url, text_bodies, len(texts), config.senders),
    )  # fmt: skip
    step(f"HTTP text: {results.text_http.rate:.1f} articles/s")
    # One warm-up page per worker at a time, twice over: each worker pays its cold start here.
    warmups = [json_line(warmup_page(i)).encode() for i in range(2 * config.workers)]
    warm = await measure_latency(service.base_url, warmups, config.workers, dry_run=True)
    results.html_warmup = warm
    step(
        f"HTML warm-up: {len(warmups)} dry-run pages, {config.workers} at a time, in "
        f"{warm.seconds:.1f} s (slowest {max(warm.samples_s):.2f} s)"
    )
    html_bodies = batches(pages, config.html_batch_size)
    results.html_http = await _metered(
        meter, results, "HTTP HTML batch", len(pages),
        post_batches(service.base_url, html_bodies, len(pages), config.senders),
    )  # fmt: skip
    step(f"HTTP html: {results.html_http.rate:.1f} pages/s")
    singles = [json_line(a).encode() for a in text_articles(2 * config.latency_requests, "latency")]
    for concurrency, chunk in (
        (1, singles[: config.latency_requests]),
        (8, singles[config.latency_requests :]),
    ):
        lat = await _metered(
            meter, results, f"POST /v1/articles c={concurrency}", len(chunk),
            measure_latency(service.base_url, chunk, concurrency),
        )  # fmt: skip
        results.latency.append(lat)
        step(f"latency c={concurrency}: p50 {lat.percentile(50) * 1000:.1f} ms")


def run(config: Config) -> Results:
    if redis_answers(config.redis_url):
        redis_url: str | None = config.redis_url
        redis_note = f"{config.redis_url} (key prefix bench-<random>, deleted at the end)"
    else:
        redis_url = None
        redis_note = (
            f"{config.redis_url} does not answer: using the embedded server in a "
            "temporary directory"
        )
    print_header(config, redis_note)
    results = Results()
    step("generating inputs")
    texts = text_articles(config.articles, "text")
    pages = html_pages(config.html_pages)
    words = sum(len(t["text"].split()) for t in texts) / len(texts)
    html_kb = sum(len(p["html"].encode()) for p in pages) / len(pages) / 1024
    step(
        f"{len(texts)} text articles, {words:.0f} words each on average; "
        f"{len(pages)} HTML pages, {html_kb:.0f} KiB each on average"
    )

    broken = raw_line_breaks(pages) + raw_line_breaks(texts)
    if broken:
        step(
            f"note: {broken} inputs hold U+2028, U+2029 or U+0085, which the service's NDJSON "
            "parser takes for line ends; they are sent escaped (\\uXXXX) so each stays one line"
        )

    # In-process first, while nothing else of ours runs: a single-process baseline.
    results.text_local = run_in_process(texts)
    step(f"in-process text: {results.text_local.rate:.1f} articles/s")
    results.html_local = run_in_process(pages, [warmup_page(0)])
    step(
        f"in-process html: {results.html_local.rate:.1f} pages/s (after a warm-up page that "
        f"took {results.html_local.warmup_s:.2f} s)"
    )

    with tempfile.TemporaryDirectory(prefix="news-ingest-bench-") as scratch:
        service = start_service(redis_url, config.workers, Path(scratch))
        try:
            asyncio.run(run_http(config, service, results, texts, pages))
        finally:
            url = cleanup_url(service)
            if url is not None:
                try:
                    step(
                        f"deleted {delete_keys(url, service.prefix)} keys under {service.prefix}:*"
                    )
                except redis.RedisError as exc:
                    print(f"warning: could not delete the keys under {service.prefix}:*: {exc}")
            code = stop_service(service)
            step(f"service stopped (exit status {code})")
            if code not in (0, -signal.SIGTERM):
                print(service.log_tail())
    return results


# --- report -----------------------------------------------------------------------------------


def _outcomes(counts: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def _row(name: str, figure: str, note: str = "") -> str:
    return f"  {name:<44} {figure:>18}   {note}"


def report(config: Config, results: Results) -> None:
    print()
    print("Figures")
    text_http, html_http = results.text_http, results.html_http
    text_local, html_local = results.text_local, results.html_local
    if text_http:
        print(
            _row(
                "a. HTTP batch, text",
                f"{text_http.rate:.1f} articles/s",
                f"{text_http.items} in {text_http.seconds:.2f} s; {_outcomes(text_http.outcomes)}",
            )
        )
    if html_http:
        print(
            _row(
                "b. HTTP batch, HTML",
                f"{html_http.rate:.1f} pages/s",
                f"{html_http.items} in {html_http.seconds:.2f} s; {_outcomes(html_http.outcomes)}",
            )
        )
    for label, local, unit in (("text", text_local, "articles/s"), ("HTML", html_local, "pages/s")):
        if local:
            print(
                _row(
                    f"c. in-process, {label}",
                    f"{local.rate:.1f} {unit}",
                    f"prepare {local.prepare_s * 1000 / local.items:.2f} ms/item + LSH "
                    f"{local.lsh_s * 1000 / local.items:.3f} ms/item; "
                    f"{_outcomes(local.outcomes)}",
                )
            )
            ordered = sorted(local.item_s)
            p50 = ordered[len(ordered) // 2][0] * 1000
            slowest_s, slowest_id = ordered[-1]
            print(
                _row(
                    "",
                    "",
                    f"prepare per item: p50 {p50:.1f} ms, max {slowest_s * 1000:.1f} ms "
                    f"({slowest_id})",
                )
            )
    if results.html_warmup and html_local:
        warm = results.html_warmup
        print(
            _row(
                "HTML cold start (dateparser's first use)",
                f"{max(warm.samples_s):.2f} s",
                f"slowest of {len(warm.samples_s)} dry-run warm-up pages at concurrency "
                f"{warm.concurrency} (excluded from b); in-process {html_local.warmup_s:.2f} s "
                "(excluded from c)",
            )
        )
    for lat in results.latency:
        print(
            _row(
                f"d. POST /v1/articles, concurrency {lat.concurrency}",
                f"p50 {lat.percentile(50) * 1000:.1f} ms",
                f"p95 {lat.percentile(95) * 1000:.1f} ms, p99 {lat.percentile(99) * 1000:.1f}"
                f" ms, max {max(lat.samples_s) * 1000:.1f} ms; {lat.rate:.1f} req/s; "
                f"{_outcomes(lat.outcomes)}",
            )
        )

    print()
    print("Ratios (same run)")
    workers = config.workers
    if text_http and text_local:
        ratio = text_http.rate / text_local.rate
        print(
            _row(
                "HTTP text / in-process text",
                f"{ratio:.2f}x",
                f"{workers} workers; {ratio / workers:.2f} of a linear {workers}x",
            )
        )
    if html_http and html_local:
        ratio = html_http.rate / html_local.rate
        print(
            _row(
                "HTTP HTML / in-process HTML",
                f"{ratio:.2f}x",
                f"{workers} workers; {ratio / workers:.2f} of a linear {workers}x",
            )
        )
    if text_local and html_local:
        print(
            _row(
                "in-process HTML / in-process text",
                f"{html_local.rate / text_local.rate:.3f}x",
                "cost of extraction per item",
            )
        )
    if text_http and html_http:
        print(_row("HTTP HTML / HTTP text", f"{html_http.rate / text_http.rate:.3f}x"))
    if text_local and results.latency:
        per_item_ms = text_local.total_s * 1000 / text_local.items
        for lat in results.latency:
            print(
                _row(
                    f"latency p50 c={lat.concurrency} / in-process ms per article",
                    f"{lat.percentile(50) * 1000 / per_item_ms:.2f}x",
                    f"in-process {per_item_ms:.2f} ms per article",
                )
            )
            print(
                _row(
                    f"latency p99 / p50, c={lat.concurrency}",
                    f"{lat.percentile(99) / lat.percentile(50):.2f}x",
                )
            )
    if text_http and len(results.latency) == 2:
        one, eight = results.latency
        print(_row("single requests c=8 / c=1", f"{eight.rate / one.rate:.2f}x", "req/s"))
        print(
            _row(
                "HTTP text batch / single requests c=8",
                f"{text_http.rate / eight.rate:.2f}x",
                "articles/s",
            )
        )


def report_cpu(results: Results) -> None:
    """CPU per item by component, and how many cores each kept busy during the phase."""
    if not results.cpu:
        return
    names = list(next(iter(results.cpu.values()))[2])
    print()
    print("CPU per item, ms (from /proc; 'others' is the rest of this shared machine)")
    print("  " + f"{'phase':<26}" + "".join(f"{n:>13}" for n in names) + f"{'service':>10}")
    for label, local in (
        ("in-process text", results.text_local),
        ("in-process HTML", results.html_local),
    ):
        if local:
            wall_ms = local.total_s * 1000 / local.items
            print("  " + f"{label:<26}" + f"{'(wall) ' + format(wall_ms, '.2f'):>13}")
    for phase, (items, _wall, used) in results.cpu.items():
        cells = "".join(f"{used[n] * 1000 / items:>13.2f}" for n in names)
        ours = used["event loop"] + used["workers"] + used["redis"]
        print("  " + f"{phase:<26}" + cells + f"{ours * 1000 / items:>10.2f}")
    print("Cores busy during each phase (of " + str(os.cpu_count()) + ")")
    for phase, (_items, wall, used) in results.cpu.items():
        parts = ", ".join(f"{n} {used[n] / wall:.2f}" for n in names)
        print(f"  {phase:<26} {parts}")


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    started = time.perf_counter()
    results = run(config)
    report(config, results)
    report_cpu(results)
    print()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total {time.perf_counter() - started:.1f} s; load average at the end {load}")


if __name__ == "__main__":
    main()
