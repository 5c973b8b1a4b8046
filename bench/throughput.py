"""Throughput and latency of news-ingest, side by side with its baselines, in one run.

One run measures, on the same machine and the same inputs (the letters of issue 6, item 3):

a. text articles/s through ``POST /v1/articles/batch`` (NDJSON) of a real ``news-ingest serve``,
   and single-article latency of ``POST /v1/articles`` at concurrency 1, 8 and 32;
b. HTML pages/s through the same batch endpoint, with real pages from the trafilatura corpus;
c. the in-process limit on the same inputs: ``prepare_items`` (clean + fingerprint) and an
   in-memory datasketch ``MinHashLSH`` query + insert, one process, no HTTP, no Redis;
d. bare ``trafilatura.extract`` on the same HTML pages, one process;
e. the off-the-shelf peer on the same text: no cleaning, a datasketch ``MinHash`` of word
   5-shingles with its defaults, then ``MinHashLSH`` with its Redis storage backend doing query
   + insert per article, one process;
f. the cost of one decision (``Store.decide_many``, the service's Lua step) with 10k and with
   100k articles already indexed, using ``bench/capacity.py``'s fill and probe functions.

Each HTTP phase also reports the CPU time the service's event loop, its workers, Redis, this
client and the rest of the machine spent per item (read from /proc), so a figure taken while
other work shared the cores can be told apart from a slow service. The run ends with the
targets of issue 6, each with PASS or FAIL.

The machine is shared and noisy, so the script prints figures and ratios of one run and never
compares with an absolute time from another run. Every Redis key it writes is under a
throw-away prefix and deleted at the end. Usage::

    python bench/throughput.py [--redis-url URL] [--articles N] [--html-pages N] [--quick]
                               [--index-sizes 10000,100000] [--skip-index-growth]
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import gzip
import importlib
import json
import math
import os
import platform
import re
import secrets
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiohttp
import redis
from _service import (
    DEFAULT_REDIS_URL,
    LINE_BREAKS_IN_JSON,
    NDJSON,
    Service,
    cleanup_url,
    cpu_seconds,
    delete_matching,
    git_commit,
    json_line,
    load_average,
    machine_busy_seconds,
    ndjson,
    redis_answers,
    serving,
    stat_fields,
    step,
    text_articles,
    wait_ready,
)

if TYPE_CHECKING:
    from service.index import Store
    from service.models import Prepared

CORPUS = Path("/work/shared/corpora/trafilatura-eval")
# Item f: words per article of the synthetic stories bench/capacity.py indexes, how many are
# fingerprinted at a time while the previous lot is decided, and where the probes' story
# numbers start (far above the fill's, so every probe is a new story).
GROWTH_WORDS = 600
GROWTH_CHUNK = 10_000
PROBE_BASE = 10_000_000
BARE_PROBE_BASE = 20_000_000
# Item e: the peer's word shingles, as the service's.
PEER_SHINGLE_WORDS = 5

T = TypeVar("T")


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    """What one run measures and how big it is."""

    redis_url: str
    articles: int
    html_pages: int
    latency_requests: int
    concurrencies: tuple[int, ...]
    batch_size: int
    html_batch_size: int
    senders: int
    workers: int
    index_sizes: tuple[int, int] | None  # None: item f skipped
    probe: int  # decisions per probe round of item f
    probe_rounds: int


def _index_sizes(text: str) -> tuple[int, int]:
    try:
        small, large = (int(part.replace("_", "")) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two sizes as SMALL,LARGE such as 10000,100000, got {text!r}"
        ) from None
    if not 0 < small < large:
        raise argparse.ArgumentTypeError(f"need 0 < SMALL < LARGE, got {small},{large}")
    return small, large


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis to run against (default: $REDIS_URL or %(default)s); when it does not "
        "answer, the service starts its embedded server in a temporary directory and the peer "
        "and the index-growth phase use that",
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
    parser.add_argument(
        "--index-sizes",
        type=_index_sizes,
        help="item f: articles indexed before the decision cost is measured, SMALL,LARGE "
        "(default 10000,100000, quick 2000,20000)",
    )
    parser.add_argument(
        "--skip-index-growth",
        action="store_true",
        help="skip item f (filling the large index takes a minute or two)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    args = parser.parse_args(argv)
    quick = bool(args.quick)

    def size(given: int | None, quick_size: int, default: int) -> int:
        return given if given is not None else (quick_size if quick else default)

    sizes: tuple[int, int] = args.index_sizes or ((2000, 20_000) if quick else (10_000, 100_000))
    config = Config(
        redis_url=args.redis_url,
        articles=size(args.articles, 300, 2000),
        html_pages=size(args.html_pages, 30, 100),
        latency_requests=size(args.latency_requests, 100, 300),
        concurrencies=(1, 8, 32),
        batch_size=args.batch_size,
        html_batch_size=args.html_batch_size,
        senders=args.senders,
        workers=args.workers,
        index_sizes=None if args.skip_index_growth else sizes,
        # Probes are indexed as they are decided, so all rounds together must leave both
        # indexes near their sizes: 2,000 more articles is 2% of the large one and keeps it
        # short of the anchor hash's doubling at ~105k (see capacity.describe_shape), where
        # Redis rehashes for the next ~25k articles; 20% more for the small one.
        probe=50,
        probe_rounds=20 if quick else 40,
    )
    positive = ("articles", "html_pages", "latency_requests", "batch_size", "html_batch_size")
    for name in (*positive, "senders", "workers"):
        if getattr(config, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if config.batch_size > 1000 or config.html_batch_size > 1000:
        parser.error("a batch holds at most 1000 articles (the service's max_batch_items)")
    return config


# --- inputs -----------------------------------------------------------------------------------

_HEAD_BYTES = 16_384
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9_.:-]+)""", re.I)
_META_CHARSET = re.compile(rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# The WHATWG Encoding standard, which browsers follow, decodes these labels as windows-1252,
# and a page that declares UTF-16 in a <meta> (so in ASCII-compatible bytes) as UTF-8.
_READ_AS_CP1252 = {"ascii", "iso8859-1", "cp1252"}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_REPLACEMENT = "\ufffd"


def declared_charset(raw: bytes) -> str | None:
    """The Python codec of the charset the page declares in its head, if it names one."""
    head = raw[:_HEAD_BYTES]
    match = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    if match is None:
        return None
    try:
        name = codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None
    if name in _READ_AS_CP1252:
        return "cp1252"
    return "utf-8" if name.startswith(("utf-16", "utf-32")) else name


def decode_html(raw: bytes) -> tuple[str, str]:
    """A page's text and how it was decoded.

    A UTF-8 page with a few invalid bytes (a truncated character, one pasted from elsewhere)
    stays UTF-8 with those bytes replaced: decoding it all as cp1252 would garble every
    non-ASCII letter. In order: a byte-order mark; strict UTF-8; UTF-8 with replacements when
    most non-ASCII characters decode as valid UTF-8, or the page declares UTF-8 and some do;
    the charset the page declares; cp1252 for the rest (no declaration, or a UTF-8 declaration
    over bytes holding no UTF-8 at all, which the corpus has).
    """
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            return raw.decode(codec, errors="replace"), codec
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    declared = declared_charset(raw)
    lenient = raw.decode("utf-8", errors="replace")
    literal = raw.count(_REPLACEMENT.encode("utf-8"))  # U+FFFD the page itself holds
    invalid = lenient.count(_REPLACEMENT) - literal
    valid = sum(1 for ch in lenient if ord(ch) > 0x7F) - invalid
    if valid > invalid or (declared == "utf-8" and valid > 0):
        return lenient, "utf-8 with invalid bytes replaced"
    if declared is not None and declared != "utf-8":
        return raw.decode(declared, errors="replace"), f"{declared} (declared)"
    how = "declares utf-8 but holds no valid UTF-8" if declared else "no charset declared"
    return raw.decode("cp1252", errors="replace"), f"cp1252 ({how})"


def _usable_url(url: Any) -> str | None:
    if not isinstance(url, str) or len(url) > 2048:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in {"http", "https"} and parts.hostname else None


def html_pages(count: int, corpus: Path = CORPUS) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The first ``count`` corpus pages (sorted by name), each with a distinct id, and how many
    pages were decoded which way."""
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
    decoded: Counter[str] = Counter()
    for path in paths[:count]:
        stem = path.name.removesuffix(".html.gz")
        html, how = decode_html(gzip.decompress(path.read_bytes()))
        decoded[how] += 1
        record: dict[str, Any] = {"id": f"bench-html-{stem}", "html": html}
        url = _usable_url(expected.get(path.name, {}).get("url"))
        if url:
            record["url"] = url
        pages.append(record)
    return pages, decoded


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


def raw_line_breaks(items: Sequence[dict[str, Any]]) -> int:
    """How many items hold a character that ``str.splitlines()`` breaks an NDJSON line at."""
    return sum(
        any(ch in json.dumps(item, ensure_ascii=False) for ch in LINE_BREAKS_IN_JSON)
        for item in items
    )


def batches(items: Sequence[dict[str, Any]], size: int) -> list[bytes]:
    return [ndjson(items[i : i + size]) for i in range(0, len(items), size)]


# --- c. the in-process limit ------------------------------------------------------------------


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
    from service.models import ItemError
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


# --- d. bare trafilatura ----------------------------------------------------------------------


@dataclass(slots=True)
class Bare:
    """``trafilatura.extract`` with its defaults over the pages, one process."""

    items: int
    seconds: float
    extracted: int  # pages it answered text for
    warmup_s: float

    @property
    def rate(self) -> float:
        return self.items / self.seconds


def _extract_pages(pages: Sequence[dict[str, Any]]) -> int:
    import trafilatura

    return sum(trafilatura.extract(p["html"], url=p.get("url")) is not None for p in pages)


def run_bare_trafilatura(
    pages: Sequence[dict[str, Any]], warmup: Sequence[dict[str, Any]] = ()
) -> Bare:
    """Extract each page's text as a plain trafilatura user would: defaults, the page's URL."""
    import trafilatura

    started = time.perf_counter()
    for page in warmup:
        trafilatura.extract(page["html"])
    warmup_s = time.perf_counter() - started
    started = time.perf_counter()
    extracted = _extract_pages(pages)
    return Bare(len(pages), time.perf_counter() - started, extracted, warmup_s)


def _warm_extractor(page: dict[str, Any], hold_s: float) -> int:
    """Warm one pool process; holding it a while makes the other process take the other."""
    import trafilatura

    trafilatura.extract(page["html"])
    time.sleep(hold_s)
    return os.getpid()


def run_bare_parallel(
    pages: Sequence[dict[str, Any]], warmup: dict[str, Any], processes: int = 2
) -> Bare:
    """The same extraction in ``processes`` processes at once, the pages split between them:
    what this machine's cores give for the very work of d. Two processes on the 2-core VM
    this was written on ran a CPU-bound loop 1.25-1.8x as fast as one, not 2x."""
    with ProcessPoolExecutor(processes) as pool:
        started = time.perf_counter()
        futures = [pool.submit(_warm_extractor, warmup, 0.5) for _ in range(processes)]
        warmed = {future.result() for future in futures}
        warmup_s = time.perf_counter() - started
        if len(warmed) < processes:
            print(f"warning: only {len(warmed)} of {processes} extraction processes warmed")
        parts = [pages[i::processes] for i in range(processes)]
        started = time.perf_counter()
        extracted = sum(pool.map(_extract_pages, parts))
        return Bare(len(pages), time.perf_counter() - started, extracted, warmup_s)


# --- e. the off-the-shelf peer: datasketch MinHashLSH on Redis --------------------------------


@dataclass(slots=True)
class Peer:
    """One single-process pass of the datasketch-on-Redis peer."""

    items: int
    minhash_s: float
    query_s: float
    insert_s: float
    with_candidates: int  # articles whose query found any key
    bands: int
    rows: int
    deleted: int  # keys deleted afterwards

    @property
    def seconds(self) -> float:
        return self.minhash_s + self.query_s + self.insert_s

    @property
    def rate(self) -> float:
        return self.items / self.seconds


def redis_params(url: str) -> dict[str, Any]:
    """``redis.Redis`` keyword arguments for a redis://, rediss:// or unix:// URL."""
    parts = urlsplit(url)
    params: dict[str, Any]
    if parts.scheme == "unix":
        params = {"unix_socket_path": parts.path}
    else:
        params = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 6379}
        if parts.scheme == "rediss":
            params["ssl"] = True
        db = parts.path.strip("/")
        if db.isdigit():
            params["db"] = int(db)
    if parts.username:
        params["username"] = unquote(parts.username)
    if parts.password:
        params["password"] = unquote(parts.password)
    return params


def word_shingles(text: str, size: int) -> list[bytes]:
    """Distinct word ``size``-grams of the raw text, split at whitespace, as bytes."""
    tokens = text.split()
    if len(tokens) <= size:
        return [" ".join(tokens).encode("utf-8")]
    return list(
        {" ".join(tokens[i : i + size]).encode("utf-8") for i in range(len(tokens) - size + 1)}
    )


def run_peer(
    items: Sequence[dict[str, Any]], redis_url: str, *, threshold: float, num_perm: int
) -> Peer:
    """What a team would write with datasketch alone, per article: no cleaning, a ``MinHash``
    of the raw text's word 5-shingles with datasketch's defaults, ``query``, ``insert``.

    Its keys live under a throw-away basename and are deleted at the end.
    """
    from datasketch import MinHash, MinHashLSH

    basename = f"bench-peer-{secrets.token_hex(4)}"
    lsh = MinHashLSH(
        threshold=threshold,
        num_perm=num_perm,
        storage_config={
            "type": "redis",
            "redis": redis_params(redis_url),
            "basename": basename.encode(),
        },
    )
    minhash_s = query_s = insert_s = 0.0
    with_candidates = 0
    try:
        for item in items:
            started = time.perf_counter()
            minhash = MinHash(num_perm=num_perm)
            minhash.update_batch(word_shingles(item["text"], PEER_SHINGLE_WORDS))
            hashed = time.perf_counter()
            with_candidates += bool(lsh.query(minhash))
            queried = time.perf_counter()
            lsh.insert(item["id"], minhash)
            inserted = time.perf_counter()
            minhash_s += hashed - started
            query_s += queried - hashed
            insert_s += inserted - queried
    finally:
        # Every key of the index starts with the basename: <basename>_bucket_<i>... and
        # <basename>_keys...; the bucket tables' names hold binary band numbers.
        deleted = delete_matching(redis_url, f"{basename}_*")
    return Peer(len(items), minhash_s, query_s, insert_s, with_candidates, lsh.b, lsh.r, deleted)


# --- f. decision cost as the index grows ------------------------------------------------------


@dataclass(slots=True)
class IndexGrowth:
    """Milliseconds per decision of the same probes, against a small and a large index."""

    small: int
    large: int
    probe: int
    costs_ms: dict[int, list[float]]  # size -> ms per decision seen by the client, per round
    script_ms: dict[int, list[float]]  # size -> ms per decision inside the Lua script, per round
    # size -> µs per probe of bare HMGETs of a decision's fields (capacity.lookup_cost), per round
    lookup_us: dict[int, list[float]] = field(default_factory=dict)
    fill_s: float = 0.0  # fingerprinting and deciding the fill, overlapped
    deleted: int = 0

    def cost_ms(self, size: int) -> float:
        return statistics.median(self.costs_ms[size])

    @staticmethod
    def _ratios(small: list[float], large: list[float]) -> list[float]:
        # Each round measured both sizes back to back, under the same load from the rest of
        # the machine: the median of the per-round ratios cancels that load better than the
        # ratio of the medians.
        return [b / a for a, b in zip(small, large, strict=False) if a > 0]

    @property
    def ratio(self) -> float:
        """Cost at ``large`` / at ``small``: the median of the per-round ratios."""
        ratios = self._ratios(self.costs_ms[self.small], self.costs_ms[self.large])
        return statistics.median(ratios) if ratios else math.nan

    def ratio_interval(self) -> tuple[float, float]:
        """A 90% bootstrap interval for :attr:`ratio` (capacity.median_interval)."""
        ratios = self._ratios(self.costs_ms[self.small], self.costs_ms[self.large])
        low, high = _capacity().median_interval(ratios)
        return float(low), float(high)

    @property
    def script_ratio(self) -> float | None:
        """The same ratio from the server's time in the script, when capacity.py reports it."""
        ratios = self._ratios(self.script_ms[self.small], self.script_ms[self.large])
        return statistics.median(ratios) if ratios else None

    @property
    def lookup_ratio(self) -> float | None:
        """The baseline: the same ratio for bare lookups of a decision's fields in the two
        indexes' hashes, which is what this Redis's memory charges any hash index for growing.
        """
        small, large = self.lookup_us.get(self.small, []), self.lookup_us.get(self.large, [])
        ratios = self._ratios(small, large)
        return statistics.median(ratios) if ratios else None


def _capacity() -> ModuleType:
    """bench/capacity.py, the sibling benchmark that fills an index through the decide step.

    Imported by name, not statically: only what it promises is used (make_prepared,
    prepare_range, fill, decision_cost answering a ``Cost`` with ``wall`` and ``script``, and
    lookup_cost answering microseconds).
    """
    return importlib.import_module("capacity")


async def _decision_cost(
    capacity: ModuleType, store: Store, probes: list[Prepared]
) -> tuple[float, float | None]:
    """capacity.decision_cost: ms per decision, and ms of it inside the script."""
    measured = await capacity.decision_cost(store, probes)
    return float(measured.wall), float(measured.script)


async def measure_index_growth(
    redis_url: str, sizes: tuple[int, int], probe: int, rounds: int
) -> IndexGrowth:
    """Fill two throw-away indexes to ``sizes`` with the service's decide step, then decide the
    same fresh probes against both, round after round, alternating which goes first.

    Both indexes hold the same first stories and see the same probes, so the only difference
    between their figures is the size of the index; alternating, they share the machine's noise.
    """
    from service.errors import StoreUnavailable
    from service.fingerprint import index_meta
    from service.index import Store, connect
    from service.keys import Keys
    from service.settings import Settings

    capacity = _capacity()
    settings = Settings()
    meta = index_meta(
        num_perm=settings.num_perm,
        shingle_size=settings.shingle_size,
        threshold=settings.dedup_threshold,
    )
    small, large = sizes
    tag = secrets.token_hex(4)
    stores = {
        size: Store(
            connect(redis_url, timeout_s=30.0),
            Keys(f"bench-grow{size}-{tag}"),
            threshold=settings.dedup_threshold,
            window_s=settings.dedup_window_s,
            stream_maxlen=settings.stream_maxlen,
            meta=meta,
        )
        for size in sizes
    }
    growth = IndexGrowth(small, large, probe, {small: [], large: []}, {small: [], large: []})
    pending: asyncio.Future[list[Prepared]] | None = None
    try:
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            # Fork every worker now, from this thread, before the loop opens a connection or
            # starts a thread (the HTTP phases' loop and its resolver threads are gone).
            pool.submit(int).result()

            def prepare(start: int) -> Awaitable[list[Prepared]]:
                stop = min(start + GROWTH_CHUNK, large)
                return asyncio.to_thread(capacity.prepare_range, pool, start, stop, GROWTH_WORDS)

            # The workers fingerprint the next chunk while this process decides the current one.
            started = time.perf_counter()
            pending = asyncio.ensure_future(prepare(0))
            for start in range(0, large, GROWTH_CHUNK):
                stop = min(start + GROWTH_CHUNK, large)
                items = await pending
                if stop < large:
                    pending = asyncio.ensure_future(prepare(stop))
                if start == 0 and len(items[0].bands) != int(meta["bands"]):
                    raise SystemExit(
                        f"bench/capacity.py fingerprints with {len(items[0].bands)} bands, the "
                        f"service's settings with {meta['bands']}: its THRESHOLD and NUM_PERM "
                        "no longer match the service's defaults"
                    )
                if start < small:
                    await capacity.fill(stores[small], items[: small - start])
                await capacity.fill(stores[large], items)
                growth.fill_s = time.perf_counter() - started
                if start < small <= stop or stop * 4 // large > start * 4 // large:
                    full = f" (the small one full at {small})" if start < small <= stop else ""
                    step(f"index growth: {stop} articles indexed in {growth.fill_s:.0f} s{full}")
            for round_ in range(rounds):
                first = PROBE_BASE + round_ * probe
                probes: list[Prepared] = capacity.prepare_range(
                    pool, first, first + probe, GROWTH_WORDS
                )
                # Looked up in both indexes and decided in neither (capacity.lookup_cost).
                bare = capacity.prepare_range(
                    pool,
                    BARE_PROBE_BASE + round_ * probe,
                    BARE_PROBE_BASE + (round_ + 1) * probe,
                    GROWTH_WORDS,
                )
                for size in (small, large) if round_ % 2 == 0 else (large, small):
                    lookup_us = await capacity.lookup_cost(stores[size], bare)
                    growth.lookup_us.setdefault(size, []).append(float(lookup_us))
                for size in (small, large) if round_ % 2 == 0 else (large, small):
                    wall_ms, script_ms = await _decision_cost(capacity, stores[size], probes)
                    growth.costs_ms[size].append(wall_ms)
                    if script_ms is not None:
                        growth.script_ms[size].append(script_ms)
    finally:
        if pending is not None:
            pending.cancel()  # a chunk still being fingerprinted when something failed
        for store in stores.values():
            try:
                growth.deleted += await store.reset()
            except (StoreUnavailable, redis.RedisError) as exc:
                print(f"warning: could not delete the keys under {store.keys.prefix}:*: {exc}")
            await store.client.aclose()
    return growth


# --- CPU accounting (Linux /proc; skipped elsewhere) -------------------------------------------


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of the direct children of ``pid``."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        fields = stat_fields(int(entry.name))
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


class _Connection:
    """One keep-alive HTTP/1.1 connection that POSTs prepared bodies and reads the answers.

    The latency phase runs its client on the same two cores as the service, so the client
    is kept as lean as a load generator should be (as wrk is): a request is one prepared
    write, an answer is read by its Content-Length, and nothing else happens per request.
    aiohttp's client spent ~0.4-0.8 ms of CPU per request here, taken from the service.
    """

    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port = host, port
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode("ascii")
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(b"".join((self.head, str(len(body)).encode(), b"\r\n\r\n", body)))
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        payload = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.writer = None


async def measure_latency(
    base_url: str, bodies: Sequence[bytes], concurrency: int, *, dry_run: bool = False
) -> Latency:
    """POST /v1/articles once per body, ``concurrency`` requests in flight, each client on its
    own keep-alive connection (see ``_Connection``)."""
    queue: Iterator[bytes] = iter(bodies)
    samples: list[float] = []
    outcomes: Counter[str] = Counter()
    url = urlsplit(base_url)
    path = "/v1/articles" + ("?dry_run=true" if dry_run else "")
    host, port = url.hostname or "127.0.0.1", url.port or 80

    async def client() -> None:
        connection = _Connection(host, port, path)
        try:
            for body in queue:
                started = time.perf_counter()
                status, payload = await asyncio.wait_for(connection.post(body), 120)
                samples.append(time.perf_counter() - started)
                if status in (200, 201):
                    outcomes[str(json.loads(payload).get("status"))] += 1
                else:
                    outcomes[f"http_{status}"] += 1
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return Latency(concurrency, samples, seconds, outcomes)


# --- the run ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Results:
    text_http: Throughput | None = None
    html_http: Throughput | None = None
    text_local: InProcess | None = None
    html_local: InProcess | None = None
    bare: Bare | None = None
    bare_parallel: Bare | None = None
    peer: Peer | None = None
    growth: IndexGrowth | None = None
    latency: list[Latency] = field(default_factory=list)
    html_warmup: Latency | None = None
    # phase -> (items, wall seconds, CPU seconds per component)
    cpu: dict[str, tuple[int, float, dict[str, float]]] = field(default_factory=dict)

    def latency_at(self, concurrency: int) -> Latency | None:
        return next((lat for lat in self.latency if lat.concurrency == concurrency), None)


def print_header(config: Config, redis_note: str) -> None:
    print("news-ingest throughput benchmark")
    print(f"  commit      {git_commit()}")
    print(
        f"  machine     {os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}, load average {load_average()}"
    )
    print(f"  redis       {redis_note}")
    concurrencies = ", ".join(str(c) for c in config.concurrencies)
    print(
        f"  sizes       {config.articles} text articles (batches of {config.batch_size}), "
        f"{config.html_pages} HTML pages (batches of {config.html_batch_size}), "
        f"{config.senders} senders, {config.latency_requests} latency requests at each "
        f"concurrency ({concurrencies}), {config.workers} service workers"
    )
    if config.index_sizes:
        small, large = config.index_sizes
        print(
            f"  index       decision cost at {small} and {large} indexed articles, "
            f"{config.probe_rounds} rounds of {config.probe} probes"
        )
    else:
        print("  index       decision cost as the index grows: skipped (--skip-index-growth)")
    print(flush=True)


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
    per = config.latency_requests
    singles = text_articles(per * len(config.concurrencies), "latency")
    for i, concurrency in enumerate(config.concurrencies):
        chunk = [json_line(a).encode() for a in singles[i * per : (i + 1) * per]]
        lat = await _metered(
            meter, results, f"POST /v1/articles c={concurrency}", len(chunk),
            measure_latency(service.base_url, chunk, concurrency),
        )  # fmt: skip
        results.latency.append(lat)
        step(
            f"latency c={concurrency}: p50 {lat.percentile(50) * 1000:.1f} ms, "
            f"p99 {lat.percentile(99) * 1000:.1f} ms"
        )


def run_redis_baselines(
    config: Config, results: Results, texts: list[dict[str, Any]], redis_url: str
) -> None:
    """Items e and f: they need a Redis, not the service, which sits idle meanwhile."""
    from service.errors import StoreUnavailable
    from service.settings import Settings

    settings = Settings()
    try:
        peer = results.peer = run_peer(
            texts, redis_url, threshold=settings.dedup_threshold, num_perm=settings.num_perm
        )
    except redis.RedisError as exc:
        print(f"warning: the datasketch peer failed against {redis_url}: {exc}")
    else:
        step(
            f"peer (datasketch MinHashLSH on Redis, {peer.bands} bands x {peer.rows} rows): "
            f"{peer.rate:.1f} articles/s; deleted its {peer.deleted} keys"
        )
    if config.index_sizes is None:
        return
    try:
        growth = results.growth = asyncio.run(
            measure_index_growth(redis_url, config.index_sizes, config.probe, config.probe_rounds)
        )
    except (StoreUnavailable, redis.RedisError) as exc:
        print(f"warning: the index-growth phase failed against {redis_url}: {exc}")
    else:
        step(
            f"decision cost: {growth.cost_ms(growth.small):.3f} ms at {growth.small}, "
            f"{growth.cost_ms(growth.large):.3f} ms at {growth.large} indexed; deleted "
            f"{growth.deleted} keys"
        )


def run(config: Config) -> Results:
    if redis_answers(config.redis_url):
        redis_url: str | None = config.redis_url
        redis_note = (
            f"{config.redis_url} (shared; key prefixes bench-<random>, bench-peer-<random>, "
            "bench-grow<size>-<random>, each deleted at the end)"
        )
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
    pages, decoded = html_pages(config.html_pages)
    words = sum(len(t["text"].split()) for t in texts) / len(texts)
    html_kb = sum(len(p["html"].encode()) for p in pages) / len(pages) / 1024
    step(
        f"{len(texts)} text articles, {words:.0f} words each on average; "
        f"{len(pages)} HTML pages, {html_kb:.0f} KiB each on average"
    )
    step("HTML pages decoded as " + "; ".join(f"{how}: {n}" for how, n in decoded.most_common()))

    broken = raw_line_breaks(pages) + raw_line_breaks(texts)
    if broken:
        step(
            f"note: {broken} inputs hold U+2028, U+2029 or U+0085, which the service's NDJSON "
            "parser takes for line ends; they are sent escaped (\\uXXXX) so each stays one line"
        )

    # Single-process baselines first, while nothing else of ours runs.
    results.text_local = run_in_process(texts)
    step(f"in-process text: {results.text_local.rate:.1f} articles/s")
    results.html_local = run_in_process(pages, [warmup_page(0)])
    step(
        f"in-process html: {results.html_local.rate:.1f} pages/s (after a warm-up page that "
        f"took {results.html_local.warmup_s:.2f} s)"
    )
    results.bare = run_bare_trafilatura(pages, [warmup_page(0)])
    step(f"bare trafilatura.extract: {results.bare.rate:.1f} pages/s")
    results.bare_parallel = run_bare_parallel(pages, warmup_page(0), config.workers)
    step(
        f"bare trafilatura.extract in {config.workers} processes: "
        f"{results.bare_parallel.rate:.1f} pages/s"
    )

    with serving(redis_url, config.workers, "bench") as service:
        asyncio.run(run_http(config, service, results, texts, pages))
        url = cleanup_url(service)
        if url is None:
            print("warning: the embedded server recorded no URL; skipping items e and f")
        else:
            run_redis_baselines(config, results, texts, url)
    return results


# --- report -----------------------------------------------------------------------------------


def _outcomes(counts: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def _row(name: str, figure: str, note: str = "") -> str:
    return f"  {name:<46} {figure:>18}   {note}".rstrip()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def report_figures(results: Results) -> None:
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
    for lat in results.latency:
        print(
            _row(
                f"a. POST /v1/articles, concurrency {lat.concurrency}",
                f"p50 {_ms(lat.percentile(50))}",
                f"p95 {_ms(lat.percentile(95))}, p99 {_ms(lat.percentile(99))}, max "
                f"{_ms(max(lat.samples_s))}; {lat.rate:.1f} req/s; {_outcomes(lat.outcomes)}",
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
            p50 = ordered[len(ordered) // 2][0]
            slowest_s, slowest_id = ordered[-1]
            print(
                _row(
                    "", "", f"prepare per item: p50 {_ms(p50)}, max {_ms(slowest_s)} ({slowest_id})"
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
    if results.bare:
        bare = results.bare
        print(
            _row(
                "d. bare trafilatura.extract, HTML",
                f"{bare.rate:.1f} pages/s",
                f"{bare.items} in {bare.seconds:.2f} s; text for {bare.extracted}; defaults, "
                f"one process (warm-up page {bare.warmup_s:.2f} s, excluded)",
            )
        )
    if results.bare_parallel:
        both = results.bare_parallel
        print(
            _row(
                "d2. the same, pages split over processes",
                f"{both.rate:.1f} pages/s",
                f"{both.items} in {both.seconds:.2f} s; text for {both.extracted}; as many "
                "processes as the service has workers, all running at once",
            )
        )
    if results.peer:
        peer = results.peer
        per = 1000 / peer.items
        print(
            _row(
                "e. datasketch MinHashLSH on Redis, text",
                f"{peer.rate:.1f} articles/s",
                f"MinHash {peer.minhash_s * per:.2f} + query {peer.query_s * per:.2f} + insert "
                f"{peer.insert_s * per:.2f} ms/article; {peer.bands} bands x {peer.rows} rows; "
                f"{peer.with_candidates} queries found candidates",
            )
        )
    if results.growth:
        growth = results.growth
        for size in (growth.small, growth.large):
            costs = ", ".join(f"{c:.3f}" for c in growth.costs_ms[size])
            script = growth.script_ms[size]
            in_script = f"; in the script {statistics.median(script):.3f} ms" if script else ""
            print(
                _row(
                    f"f. decision with {size} indexed",
                    f"{growth.cost_ms(size):.3f} ms",
                    f"median of {len(growth.costs_ms[size])} rounds of {growth.probe} "
                    f"(Store.decide_many, batches of 200): {costs}{in_script}",
                )
            )
        print(
            _row(
                "",
                "",
                f"filled both indexes ({growth.small + growth.large} inserts) in "
                f"{growth.fill_s:.0f} s, fingerprinting in worker processes meanwhile",
            )
        )


def report_ratios(config: Config, results: Results) -> None:
    print()
    print("Ratios (same run)")
    text_http, html_http = results.text_http, results.html_http
    text_local, html_local = results.text_local, results.html_local
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
    if text_http and results.peer:
        print(
            _row("HTTP text / datasketch-Redis peer", f"{text_http.rate / results.peer.rate:.2f}x")
        )
    if text_local and results.peer:
        print(
            _row(
                "in-process text / datasketch-Redis peer",
                f"{text_local.rate / results.peer.rate:.2f}x",
                "one process each",
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
    if html_http and results.bare:
        print(_row("HTTP HTML / bare trafilatura", f"{html_http.rate / results.bare.rate:.2f}x"))
    if results.bare_parallel and results.bare:
        print(
            _row(
                "bare trafilatura, parallel / one process (d2 / d)",
                f"{results.bare_parallel.rate / results.bare.rate:.2f}x",
                "what the cores give for the same work: the ceiling of a linear speedup here",
            )
        )
    if html_http and results.bare_parallel:
        print(
            _row(
                "HTTP HTML / bare trafilatura in parallel (b / d2)",
                f"{html_http.rate / results.bare_parallel.rate:.2f}x",
            )
        )
    if html_local and results.bare:
        print(
            _row(
                "in-process HTML / bare trafilatura",
                f"{html_local.rate / results.bare.rate:.2f}x",
                "one process each: the service's extraction, rules and MinHash vs extract alone",
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
    if text_local:
        per_item_ms = text_local.total_s * 1000 / text_local.items
        for lat in results.latency:
            print(
                _row(
                    f"latency p50 c={lat.concurrency} / in-process ms per article",
                    f"{lat.percentile(50) * 1000 / per_item_ms:.2f}x",
                    f"in-process {per_item_ms:.2f} ms per article",
                )
            )
    for lat in results.latency:
        print(
            _row(
                f"latency p99 / p50, c={lat.concurrency}",
                f"{lat.percentile(99) / lat.percentile(50):.2f}x",
            )
        )
    one = results.latency_at(1)
    for lat in results.latency:
        if one and lat is not one:
            print(
                _row(
                    f"single requests c={lat.concurrency} / c=1",
                    f"{lat.rate / one.rate:.2f}x",
                    "req/s",
                )
            )
    if text_http and results.latency:
        busiest = max(results.latency, key=lambda lat: lat.rate)
        print(
            _row(
                f"HTTP text batch / single requests c={busiest.concurrency}",
                f"{text_http.rate / busiest.rate:.2f}x",
                "articles/s",
            )
        )
    if results.growth:
        growth = results.growth
        low, high = growth.ratio_interval()
        print(
            _row(
                f"decision cost at {growth.large} / at {growth.small}",
                f"{growth.ratio:.3f}x",
                f"median of the {len(growth.costs_ms[growth.small])} rounds' ratios (each round "
                f"decides the same probes against both, back to back); 90% interval "
                f"{low:.3f}-{high:.3f}x",
            )
        )
        if growth.script_ratio is not None:
            print(
                _row(
                    "  the same, time inside the script",
                    f"{growth.script_ratio:.3f}x",
                    "server-side EVALSHA time; counts other clients' scripts on a shared Redis",
                )
            )
        if growth.lookup_ratio is not None:
            print(
                _row(
                    "  baseline: bare lookups, same hashes",
                    f"{growth.lookup_ratio:.3f}x",
                    "server-side HMGET time for a decision's fields in the two indexes' hashes, "
                    "no index logic: what this Redis's memory charges any hash index for "
                    f"{growth.large / growth.small:.0f}x the entries; the decision grows "
                    f"{growth.ratio / growth.lookup_ratio:.2f}x of that",
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


@dataclass(frozen=True, slots=True)
class Target:
    """One bar of issue 6: a figure of this run, at least or at most ``bar``."""

    name: str
    value: float | None  # None: not measured in this run
    bar: float
    at_least: bool
    unit: str  # "x" for a ratio, "ms"
    detail: str

    @property
    def met(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.bar if self.at_least else self.value <= self.bar

    def line(self) -> str:
        unit = "x" if self.unit == "x" else f" {self.unit}"
        digits = 3 if self.unit == "x" else 1
        shown = "-" if self.value is None else f"{self.value:.{digits}f}{unit}"
        bar = (">= " if self.at_least else "<= ") + f"{self.bar:g}{unit}"
        verdict = "NOT MEASURED" if self.value is None else ("PASS" if self.met else "FAIL")
        return f"  {self.name:<46} {shown:>9}  {bar:<10} {verdict:<12} {self.detail}".rstrip()


def targets(results: Results) -> list[Target]:
    """The bars of issue 6's "Done when", from this run's figures."""
    text_http, html_http = results.text_http, results.html_http
    text_local, bare, peer = results.text_local, results.bare, results.peer

    def ratio(name: str, top: float | None, bottom: float | None, bar: float, unit: str) -> Target:
        if top is None or not bottom:
            return Target(name, None, bar, True, "x", "")
        return Target(name, top / bottom, bar, True, "x", f"{top:.1f} vs {bottom:.1f} {unit}")

    text_rate = text_http.rate if text_http else None
    found = [
        ratio(
            "text batch / in-process limit (a / c)",
            text_rate,
            text_local.rate if text_local else None,
            1.0,
            "articles/s",
        ),
        ratio(
            "text batch / datasketch-Redis peer (a / e)",
            text_rate,
            peer.rate if peer else None,
            4.0,
            "articles/s",
        ),
        ratio(
            "HTML via API / bare trafilatura (b / d)",
            html_http.rate if html_http else None,
            bare.rate if bare else None,
            1.5,
            "pages/s",
        ),
    ]
    eight = results.latency_at(8)
    found.append(
        Target(
            "single-article text p99 at concurrency 8 (a)",
            eight.percentile(99) * 1000 if eight else None,
            25.0,
            False,
            "ms",
            f"p50 {eight.percentile(50) * 1000:.1f} ms over {len(eight.samples_s)} requests"
            if eight
            else "",
        )
    )
    growth = results.growth
    measured = growth is not None and not math.isnan(growth.ratio)
    low, high = growth.ratio_interval() if growth and measured else (math.nan, math.nan)
    found.append(
        Target(
            f"decision cost at {growth.large} / at {growth.small} (f)"
            if growth
            else "decision cost at 100k / at 10k (f)",
            growth.ratio if growth and measured else None,
            1.1,
            False,
            "x",
            f"{growth.cost_ms(growth.large):.3f} vs {growth.cost_ms(growth.small):.3f} ms "
            "(medians; the ratio pairs the rounds; 90% interval "
            f"{low:.3f}-{high:.3f}x; bare lookups {growth.lookup_ratio or math.nan:.3f}x)"
            if growth and measured
            else "skipped (--skip-index-growth) or failed (see above)",
        )
    )
    return found


def report_targets(results: Results) -> None:
    print()
    print("Targets of issue 6 (ratios from this run)")
    found = targets(results)
    for target in found:
        print(target.line())
    print(f"  {sum(t.met for t in found)} of {len(found)} met")


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    started = time.perf_counter()
    results = run(config)
    report_figures(results)
    report_ratios(config, results)
    report_cpu(results)
    report_targets(results)
    print()
    print(f"total {time.perf_counter() - started:.1f} s; load average at the end {load_average()}")


if __name__ == "__main__":
    main()
