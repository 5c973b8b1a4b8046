"""What the benchmarks share: the service under test, its keys, its inputs and /proc readers.

``bench/throughput.py`` and ``bench/soak.py`` both start a real ``news-ingest serve`` on a free
loopback port under a throw-away key prefix, wait for it to be ready, delete the prefix's keys
when they are done, and feed it synthetic news-like text built from the seed articles' words.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import redis

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
NDJSON = "application/x-ndjson"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
SEED = 20240501


def step(message: str) -> None:
    """One line of progress."""
    print(f"... {message}", flush=True)


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def git_commit() -> str:
    """The commit measured, and whether service/ or bench/ differ from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short=12", "HEAD") or "none (no commit yet)"
    dirty = git("status", "--porcelain", "--", "service", "bench")
    return commit + (" + uncommitted changes in service/ or bench/" if dirty else "")


# --- synthetic text ---------------------------------------------------------------------------

_FIRST = ["Maria", "James", "Aiko", "Olusegun", "Priya", "Tomas", "Leila", "Chen", "Sofia", "Omar"]
_LAST = ["Lopez", "Okafor", "Tanaka", "Novak", "Haddad", "Singh", "Berg", "Moreau", "Kim", "Reyes"]
_SOURCES = ["Daily Ledger", "Metro Wire", "Coast Herald", "Capital Post", "Valley Times"]
_LABELS = ["world news", "politics", "business", "local", "science"]
_MONTHS = ["January", "March", "May", "July", "September", "November"]


CORPUS = REPO.parent / "shared" / "corpora" / "trafilatura-eval"
SENTENCES = Path(tempfile.gettempdir()) / "news-ingest-bench-sentences.txt"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _extract_sentences(path: Path) -> list[str]:
    import trafilatura

    text = trafilatura.extract(gzip.decompress(path.read_bytes()).decode("utf-8", "replace")) or ""
    return [s for s in _SENTENCE_END.split(" ".join(text.split())) if len(s.split()) >= 6]


def build_sentence_pool(workers: int) -> str:
    """Real sentences from the trafilatura-eval pages, one per line, cached in a temp file.

    Stories built from real sentences (with most words swapped, see ``make_prepared``) have
    the background similarity of real news: character 7-grams of two unrelated stories share
    about 1%. Random words from a small vocabulary share far more and would make every article
    a candidate of every other, which no real index sees. Without the corpus, stories of
    random letter-words are used instead.
    """
    if SENTENCES.exists():
        return "corpus sentences (cached)"
    pages = sorted((CORPUS / "html").glob("*.html.gz")) if CORPUS.is_dir() else []
    if not pages:
        return "random letter-words (no corpus at ../shared/corpora)"
    with ProcessPoolExecutor(max_workers=workers) as pool:
        found = sorted({s for page in pool.map(_extract_sentences, pages) for s in page})
    SENTENCES.write_text("\n".join(found), encoding="utf-8")
    return f"{len(found)} corpus sentences"


@functools.cache
def sentence_pool() -> tuple[list[str], list[str]]:
    """The cached corpus sentences and every word in them, repeats kept (drawing from the
    list follows the words' real frequencies); empty without the corpus."""
    if not SENTENCES.exists():
        return [], []
    pool = SENTENCES.read_text(encoding="utf-8").splitlines()
    return pool, [word for sentence in pool for word in sentence.split()]


def vocabulary(seeds_dir: Path = SEEDS) -> list[str]:
    """Distinct words of the seed articles: real English, so shingles look like news."""
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(seeds_dir.glob("*.txt")))
    words = {w.lower() for w in re.findall(r"[A-Za-z]{2,}", text)}
    if len(words) < 200:
        raise SystemExit(f"{seeds_dir}: expected seed articles with a few hundred distinct words")
    return sorted(words)


def zipf_weights(count: int) -> list[float]:
    """Zipf-like word frequencies, as in prose: a few words are everywhere, most are rare."""
    weights = [1.0 / (rank + 1) for rank in range(count)]
    random.Random(SEED).shuffle(weights)
    return weights


def sentence(rng: random.Random, words: list[str], weights: list[float] | None) -> str:
    """One sentence of 8-28 words drawn with ``weights``, capitalised, sometimes with a comma."""
    tokens = rng.choices(words, weights, k=rng.randint(8, 28))
    if len(tokens) > 12 and rng.random() < 0.5:
        tokens[rng.randrange(4, len(tokens) - 4)] += ","
    return " ".join(tokens).capitalize() + "."


def chrome_line(rng: random.Random) -> str:
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


def text_article(
    index: int, words: list[str], weights: list[float] | None, kind: str
) -> dict[str, Any]:
    """A distinct synthetic story of 400-800 words, as raw scraped text with some chrome."""
    rng = random.Random(f"{SEED}:{kind}:{index}")
    title = " ".join(rng.choices(words, weights, k=rng.randint(6, 12))).capitalize()
    author = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    lines = [rng.choice(_LABELS), title, chrome_line(rng), f"By {author}"]
    lines.append(
        f"Updated {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} GMT "
        f"{rng.choice(_MONTHS)} {rng.randint(1, 28)}, 2024"
    )
    target = rng.randint(400, 800)
    count = 0
    while count < target:
        paragraph = " ".join(sentence(rng, words, weights) for _ in range(rng.randint(2, 5)))
        lines.append(paragraph)
        count += len(paragraph.split())
        if rng.random() < 0.15:
            lines.append(chrome_line(rng))
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
    """``count`` distinct stories of stream ``kind``; the same arguments give the same list.

    Words are drawn with the frequencies of the corpus's real text when it is there: then two
    unrelated stories share about 1.4% of their character 7-grams, as real news does. The
    seeds' 1,500 words alone make every story share ~13% with every other, so each would be
    an LSH candidate of many others, which no real index sees.
    """
    build_sentence_pool(os.cpu_count() or 1)
    _, pool_words = sentence_pool()
    if pool_words:
        return [text_article(i, pool_words, None, kind) for i in range(count)]
    words = vocabulary()
    weights = zipf_weights(len(words))
    return [text_article(i, words, weights, kind) for i in range(count)]


# --- NDJSON -----------------------------------------------------------------------------------

# JSON may carry these raw inside strings, but Python's str.splitlines() ends a line at each of
# them, and the service splits NDJSON bodies with it: escaped, every item stays one line.
LINE_BREAKS_IN_JSON = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def json_line(item: dict[str, Any]) -> str:
    """``item`` as one line of NDJSON, whatever line-break characters its strings hold."""
    line = json.dumps(item, ensure_ascii=False)
    for raw, escaped in LINE_BREAKS_IN_JSON.items():
        line = line.replace(raw, escaped)
    return line


def ndjson(items: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(json_line(item).encode() + b"\n" for item in items)


# --- the service under test -------------------------------------------------------------------


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


def start_service(
    redis_url: str | None,
    workers: int,
    scratch: Path,
    *,
    flags: Sequence[str] = (),
    label: str = "bench",
) -> Service:
    """Start the service on a free port under a fresh key prefix; it is not ready yet.

    ``redis_url`` None: the service starts its embedded server with its data in ``scratch``.
    ``flags`` are more ``serve`` flags (settings under test); ``label`` starts the prefix.
    """
    port = free_port()
    prefix = f"{label}-{secrets.token_hex(4)}"
    data_dir = scratch / "data"
    log_path = scratch / "service.log"
    command = [
        sys.executable, "-m", "service", "serve",
        "--port", str(port),
        "--key-prefix", prefix,
        "--workers", str(workers),
        "--log-level", "WARNING",
        "--data-dir", str(data_dir),
        *flags,
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


def glob_escape(text: str) -> str:
    """``text`` with the characters SCAN MATCH treats as a pattern escaped."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def delete_matching(url: str, pattern: str) -> int:
    """SCAN ``pattern`` and UNLINK what it finds; answers how many keys went."""
    client = redis.Redis.from_url(url, socket_timeout=10.0)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(client.unlink(*batch))
                batch = []
        if batch:
            deleted += int(client.unlink(*batch))
    finally:
        client.close()
    return deleted


def delete_keys(url: str, prefix: str) -> int:
    """Delete every ``<prefix>:*`` key; answers how many went."""
    return delete_matching(url, f"{glob_escape(prefix)}:*")


def finish(service: Service, *, show_log: bool = False) -> int | None:
    """Delete the service's keys, then stop it; print its log's tail when it ended badly."""
    url = cleanup_url(service)
    if url is not None:
        started = time.perf_counter()
        try:
            count = delete_keys(url, service.prefix)
            step(
                f"deleted {count} keys under {service.prefix}:* in "
                f"{time.perf_counter() - started:.1f} s"
            )
        except redis.RedisError as exc:
            print(f"warning: could not delete the keys under {service.prefix}:*: {exc}")
    code = stop_service(service)
    step(f"service stopped (exit status {code})")
    if show_log or code not in (0, -signal.SIGTERM):
        print(service.log_tail())
    return code


@contextlib.contextmanager
def serving(redis_url: str | None, workers: int, label: str) -> Iterator[Service]:
    """A started (not yet ready) service in a scratch directory; its keys deleted and the
    process stopped on the way out, whatever happened inside."""
    with tempfile.TemporaryDirectory(prefix=f"news-ingest-{label}-") as scratch:
        service = start_service(redis_url, workers, Path(scratch))
        try:
            yield service
        finally:
            finish(service)


# --- /proc readers (Linux; zero elsewhere) ----------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first); None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name sits in parentheses and may hold spaces: split after its end.
    return text[text.rfind(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 when it is gone)."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS if fields else 0.0


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have spent busy (from /proc/stat)."""
    try:
        first = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()
    except (OSError, IndexError):
        return 0.0
    ticks = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / _CLOCK_TICKS
