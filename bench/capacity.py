"""Redis memory per indexed article, and what a decision costs as the index grows.

    python bench/capacity.py [--redis-url URL] [--sizes 10000,100000] [--probe 100] [--rounds 10]

Fills the index through the service's own decide step (``Store.decide_many``, the Lua script)
with distinct synthetic stories of news length, under a throw-away key prefix. At each size it
measures the Redis memory the prefix holds (``MEMORY USAGE`` of every key) and the time to
decide ``--probe`` new articles, in batches of 200 as the batch endpoint does, ``--rounds``
times. Fingerprints are computed up front in worker processes, so the timings are the index
step alone. Prints figures and the ratio of decision cost between the largest and the
smallest size.

On a shared machine a round can take twice as long as the one before it, in bursts of a few
seconds (on the 2-core VM this was written on, rounds at one size spanned 0.27-0.51 ms). Noise
only ever adds time, so besides the median of the rounds the figures give the least disturbed
round, and the ratio of those. The server's own CPU time per decision (``INFO cpu``, main
thread) is not stretched when the server is descheduled, and the EVALSHA count tells whether
another client ran scripts meanwhile (then the server-side figures include its work).

The paired rounds carry a baseline: bare HMGETs of the fields a decision reads, in the same
two indexes' hashes (``lookup_cost``). A decision's work does not depend on the index's size,
but a hash ten times larger misses the CPU caches more often on every lookup; how much more
depends on the machine and on what else shares its caches. The baseline measures that in the
same run, so a decision cost that grows no more than bare lookups grow is the machine's, and
one that grows more is the index's.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import cache

from _service import build_sentence_pool, sentence_pool

from service.fingerprint import index_meta
from service.index import Store, connect
from service.keys import Keys
from service.models import Params, Prepared
from service.prepare import prepared_from_body

BATCH = 200
PARAMS = Params()  # the service's defaults


@dataclass(frozen=True, slots=True)
class Cost:
    """Milliseconds per decision over one round of probes."""

    wall: float  # as the client sees it
    script: float  # inside EVALSHA on the server (INFO commandstats)
    cpu: float  # CPU time of the server's main thread (INFO cpu)
    foreign_calls: int  # EVALSHA calls of other clients during the round
    rehashing: tuple[str, ...] = ()  # epoch hashes Redis was rehashing (describe_shape)


def _words(seed: int = 7, size: int = 60_000) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return sorted({"".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(size)})


@cache
def _sentences() -> tuple[list[str], list[str]]:
    return sentence_pool()


@cache
def _vocabulary() -> list[str]:
    return _words()


# Share of a pooled sentence's words swapped for random words of the pool: each story is
# then unique, while shingles keep the statistics of real text. At 0.7 a run of four words
# survives 0.8% of the time, so an anchor (a word 4-gram) recurs about as rarely as in news.
_SWAP = 0.7


def make_prepared(index: int, words_per_article: int) -> Prepared:
    """A distinct story of ``words_per_article`` words, fingerprinted like the service does."""
    rng = random.Random(index)
    pool, pool_words = _sentences()
    paragraphs = []
    remaining = words_per_article
    while remaining > 0:
        if pool:
            tokens = [
                w if rng.random() >= _SWAP else rng.choice(pool_words)
                for sentence in rng.choices(pool, k=rng.randint(2, 4))
                for w in sentence.split()
            ]
        else:
            tokens = rng.choices(_vocabulary(), k=rng.randint(30, 70))
        paragraphs.append(" ".join(tokens))
        remaining -= len(tokens)
    return prepared_from_body(
        f"cap-{index}",
        "\n\n".join(paragraphs),
        PARAMS,
        source="bench",
        url=f"https://example.com/story/{index}",
    )


def _chunk(start: int, stop: int, words: int) -> list[Prepared]:
    return [make_prepared(i, words) for i in range(start, stop)]


def prepare_range(pool: ProcessPoolExecutor, start: int, stop: int, words: int) -> list[Prepared]:
    step = 2000
    futures = [pool.submit(_chunk, i, min(i + step, stop), words) for i in range(start, stop, step)]
    return [p for f in futures for p in f.result()]


async def fill(store: Store, items: list[Prepared]) -> None:
    for i in range(0, len(items), BATCH):
        await store.decide_many(items[i : i + BATCH], dry_run=False)


async def prefix_memory(store: Store) -> tuple[int, dict[str, int]]:
    """Bytes held by every key of the prefix, in total and by key kind."""
    total = 0
    kinds: dict[str, int] = {}
    client = store.client
    batch: list[bytes] = []

    async def measure() -> None:
        nonlocal total
        # One round trip per thousand keys: millions of keys one by one take many minutes.
        async with client.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.memory_usage(key, samples=0)
            sizes = await pipe.execute()
        for key, used in zip(batch, sizes, strict=True):
            kind = key.decode().split(":")[1]
            kinds[kind] = kinds.get(kind, 0) + int(used or 0)
            total += int(used or 0)
        batch.clear()

    async for key in client.scan_iter(match=store.keys.all_pattern(), count=2000):
        batch.append(key)
        if len(batch) >= 1000:
            await measure()
    if batch:
        await measure()
    return total, kinds


async def index_shape(store: Store) -> dict[str, int]:
    """The fields of each of the index's epoch hashes, by key (without the prefix)."""
    shape = {}
    for kind in ("lsh", "anc"):
        async for key in store.client.scan_iter(match=f"{store.keys.ns}{kind}:*", count=1000):
            name = key.decode().removeprefix(store.keys.ns)
            shape[name] = int(await store.client.hlen(key))
    return shape


def describe_shape(before: dict[str, int], after: dict[str, int]) -> str:
    """The epoch hashes over a size's rounds, and which Redis was rehashing meanwhile.

    Redis doubles a hash's table when its fields reach a power of two, then moves the old
    table over one bucket per field each command reads or writes. A new story reads each of
    its fields and writes it (a lookup, then a lookup and an insert): 3 steps a field, while
    ~63% of the old buckets hold entries, so the move ends when the hash has about a fifth
    more fields (a quarter is allowed for here). A round in that stretch costs more (by half,
    on the machine this was written on) than one before or after it, at any size: compare
    sizes measured in the same state. Two epoch hashes of a kind mean the fill crossed an
    epoch boundary, and a lookup reads both.
    """
    parts = []
    for name in sorted(after):
        low, high = before.get(name, 0), after[name]
        state = f", rehashing after {_last_power(high)}" if name in rehashing(before, after) else ""
        parts.append(f"{name} {low / 1e6:.2f}-{high / 1e6:.2f}M fields{state}")
    return "; ".join(parts) or "no epoch hashes"


def _last_power(fields: int) -> int:
    return 1 << max(0, fields.bit_length() - 1)


def rehashing(before: dict[str, int], after: dict[str, int]) -> tuple[str, ...]:
    """The epoch hashes likely rehashed at some point between two shapes (describe_shape)."""
    return tuple(
        name
        for name, fields in sorted(after.items())
        if _last_power(fields) >= 1024 and before.get(name, 0) < _last_power(fields) * 5 // 4
    )


async def _command_stats(store: Store, command: str) -> tuple[int, int]:
    """Calls of ``command`` that ran to the end and microseconds the server has spent in it so
    far (all clients). A script call refused with NOSCRIPT counts as failed, and its batch is
    sent again."""
    stats = await store.client.info("commandstats")
    entry = stats.get(f"cmdstat_{command}", {"calls": 0, "usec": 0})
    return int(entry["calls"]) - int(entry.get("failed_calls", 0)), int(entry["usec"])


async def _server_cpu_s(store: Store) -> float:
    """CPU seconds the server's main thread has used so far (0 where INFO does not say)."""
    stats = await store.client.info("cpu")
    return float(stats.get("used_cpu_user_main_thread", 0)) + float(
        stats.get("used_cpu_sys_main_thread", 0)
    )


async def decision_cost(store: Store, probes: list[Prepared]) -> Cost:
    """What deciding the probes (inserted, so each run uses fresh ones) cost per decision.

    The server-side figures separate what the index costs from the client and network. They
    count every client's work: ``foreign_calls`` says whether another client ran scripts.
    """
    cpu_before = await _server_cpu_s(store)
    calls_before, usec_before = await _command_stats(store, "evalsha")
    started = time.perf_counter()
    await fill(store, probes)
    elapsed = (time.perf_counter() - started) * 1000 / len(probes)
    calls_after, usec_after = await _command_stats(store, "evalsha")
    cpu_after = await _server_cpu_s(store)
    calls = calls_after - calls_before
    return Cost(
        wall=elapsed,
        script=(usec_after - usec_before) / 1000 / max(1, calls),
        cpu=(cpu_after - cpu_before) * 1000 / len(probes),
        foreign_calls=max(0, calls - len(probes)),
    )


def index_fields(item: Prepared) -> tuple[list[bytes], list[bytes]]:
    """The fields decide.lua reads for an article: each band as its number (2 bytes,
    big-endian) then its binary digest, and each anchor's binary digest."""
    bands = [i.to_bytes(2, "big") + bytes.fromhex(d) for i, d in enumerate(item.bands)]
    return bands, [bytes.fromhex(a) for a in item.anchors]


async def lookup_cost(store: Store, probes: list[Prepared]) -> float:
    """Microseconds of server time per probe for bare HMGETs of the fields a decision reads,
    in the index's epoch hashes: what this Redis charges for those lookups alone, at the
    index's size, with none of the index's logic.

    A decision's cost beyond this is the index's own. Run on probes that are then never
    decided: looking up a probe's fields warms exactly the buckets its decision would read.
    """
    epochs = await _epoch_hashes(store)
    _, before = await _command_stats(store, "hmget")
    async with store.client.pipeline(transaction=False) as pipe:
        for item in probes:
            bands, anchors = index_fields(item)
            for key in epochs["lsh"]:
                pipe.hmget(key, bands)
            for key in epochs["anc"]:
                pipe.hmget(key, anchors)
        await pipe.execute()
    _, after = await _command_stats(store, "hmget")
    return (after - before) / len(probes)


async def _epoch_hashes(store: Store) -> dict[str, list[str]]:
    """The epoch hashes a decision made now reads, by kind: decide.lua's arithmetic (epochs of
    half the window, the current one and two back), those that exist. Named, not scanned for:
    a SCAN of the whole keyspace before each measurement would sweep the caches it measures."""
    seconds, micros = await store.client.time()
    now_ms = seconds * 1000 + micros // 1000
    epoch = now_ms // max(1, -(-store.window_ms // 2))
    found: dict[str, list[str]] = {}
    for kind in ("lsh", "anc"):
        names = [f"{store.keys.ns}{kind}:{epoch - back}" for back in range(3)]
        found[kind] = [name for name in names if await store.client.exists(name)]
    return found


def median_interval(
    values: list[float], confidence: float = 0.9, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """A bootstrap interval for the median of ``values`` (percentile method, fixed seed).

    The per-round ratios of a paired measurement scatter with the machine's noise; the
    interval says how far their median could move had other rounds been drawn, so one
    favourable or unlucky run is not read as the index's behaviour.
    """
    if not values:
        return math.nan, math.nan
    rng = random.Random(seed)
    medians = sorted(
        statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples)
    )
    tail = (1 - confidence) / 2
    low = medians[int(tail * (resamples - 1))]
    high = medians[int((1 - tail) * (resamples - 1))]
    return low, high


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ms (least disturbed {min(values):.3f})"


async def run(args: argparse.Namespace) -> None:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    prefix = f"bench-cap-{uuid.uuid4().hex[:8]}"

    def make_store(name: str) -> Store:
        return Store(
            connect(args.redis_url, timeout_s=30.0),
            Keys(name),
            threshold=PARAMS.threshold,
            window_s=3600,
            stream_maxlen=10_000_000,
            meta=index_meta(
                num_perm=PARAMS.num_perm,
                shingle_size=PARAMS.shingle_size,
                threshold=PARAMS.threshold,
                shingle_unit=PARAMS.shingle_unit,
            ),
        )

    store = make_store(prefix)
    small = make_store(f"{prefix}-small")
    text = build_sentence_pool(os.cpu_count() or 1)
    print("news-ingest capacity benchmark")
    print(f"  stories built from {text}")
    print(f"  redis {args.redis_url}, prefix {prefix} (deleted at the end)")
    print(f"  {await _server_state(store)}")
    print(
        f"  sizes {sizes}, {args.words} words per article, "
        f"{args.rounds} rounds of {args.probe} decisions at each"
    )
    rows: list[Row] = []
    try:
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            filled = 0
            probe_base = 10_000_000
            for size in sizes:
                started = time.perf_counter()
                await fill(store, prepare_range(pool, filled, size, args.words))
                fill_s = time.perf_counter() - started
                filled = size
                shape = start_shape = await index_shape(store)
                costs = []
                for round_ in range(args.rounds):
                    first = probe_base + (len(rows) * args.rounds + round_) * args.probe
                    probes = prepare_range(pool, first, first + args.probe, args.words)
                    cost = await decision_cost(store, probes)
                    filled += args.probe  # probes are indexed too
                    before, shape = shape, await index_shape(store)
                    costs.append(replace(cost, rehashing=rehashing(before, shape)))
                during = sum(1 for c in costs if c.rehashing)
                print(
                    f"... {size:>7} indexed (filled in {fill_s:.0f} s): decision "
                    f"{_spread([c.wall for c in costs])}, "
                    f"{statistics.median(c.script for c in costs):.3f} ms of it in the script; "
                    f"{during} of {len(costs)} rounds while Redis rehashed an epoch hash",
                    flush=True,
                )
                memory, kinds = await prefix_memory(store)
                rows.append(Row(size, costs, memory / filled, kinds, filled))
                print(f"... {size:>7} indexed: {memory / filled / 1024:.1f} KiB per article")
                print(f"... {size:>7} indexed: {describe_shape(start_shape, shape)}")
            paired = await paired_rounds(store, small, pool, sizes[0], args)
    finally:
        deleted = await store.reset() + await small.reset()
        await store.client.aclose()
        await small.client.aclose()
        print(f"... deleted {deleted} keys")

    print("\nFigures (ms per decision: median of the rounds, least disturbed round in brackets)")
    for row in rows:
        breakdown = ", ".join(
            f"{k} {v / row.filled:.0f} B"
            for k, v in sorted(row.kinds.items(), key=lambda kv: -kv[1])
        )
        print(
            f"  {row.size:>7} indexed   decision {row.median('wall'):.3f} ({row.least('wall'):.3f})"
            f"   in script {row.median('script'):.3f}   server CPU {row.median('cpu'):.3f}"
            f"   memory {row.per_article:.0f} B/article"
        )
        print(f"                    per article: {breakdown}")
    foreign = sum(c.foreign_calls for row in rows for c in row.costs)
    if foreign:
        print(
            f"  (other clients ran {foreign} scripts during the rounds: the in-script and "
            "server CPU figures include their work)"
        )
    smallest, largest = rows[0], rows[-1]

    def ratio(metric: str, least: bool = False) -> float:
        if least:
            return largest.least(metric) / smallest.least(metric)
        return largest.median(metric) / smallest.median(metric)

    print("\nRatios (same run)")
    print(
        f"  decision cost at {largest.size} / at {smallest.size}, the same Redis grown "
        f"{largest.size / smallest.size:.0f}x: "
        f"{ratio('wall'):.2f}x, least disturbed rounds {ratio('wall', least=True):.2f}x "
        f"(in the script {ratio('script'):.2f}x, server CPU {ratio('cpu'):.2f}x)"
    )
    outside = [row.median_outside_rehash("wall") for row in (smallest, largest)]
    if outside[0] and outside[1]:
        print(
            f"  the same, only the rounds while Redis rehashed no epoch hash: "
            f"{outside[1] / outside[0]:.2f}x ({outside[0]:.3f} -> {outside[1]:.3f} ms)"
        )
    low, high = median_interval(paired.wall)
    print(
        f"  decision cost at {largest.size} / at {smallest.size}, both indexes in one Redis "
        f"(median of {len(paired.wall)} rounds' ratios): {statistics.median(paired.wall):.2f}x, "
        f"90% interval {low:.2f}-{high:.2f}x (in the script "
        f"{statistics.median(paired.script):.2f}x)"
    )
    if paired.lookups:
        low, high = median_interval(paired.lookups)
        lookups = statistics.median(paired.lookups)
        print(
            f"  baseline: bare HMGETs of a decision's fields in the same two indexes' hashes, "
            f"no index logic: {lookups:.2f}x, 90% interval {low:.2f}-{high:.2f}x; the "
            f"decision's growth over it: {statistics.median(paired.wall) / lookups:.2f}x"
        )
    gib = largest.per_article * 1_000_000 / 2**30
    print(
        f"  Redis memory per million indexed articles: {gib:.2f} GiB "
        f"({args.words}-word articles, full text stored for GET and replays)"
    )


@dataclass(frozen=True, slots=True)
class Row:
    size: int
    costs: list[Cost]
    per_article: float
    kinds: dict[str, int]
    filled: int

    def median(self, metric: str) -> float:
        return float(statistics.median(getattr(c, metric) for c in self.costs))

    def least(self, metric: str) -> float:
        return float(min(getattr(c, metric) for c in self.costs))

    def median_outside_rehash(self, metric: str) -> float | None:
        values = [getattr(c, metric) for c in self.costs if not c.rehashing]
        return float(statistics.median(values)) if values else None


async def _server_state(store: Store) -> str:
    """What else the server holds: figures from a server other work also uses are noisier,
    and a server already grown large (memory it keeps after deletes) misses its caches more.

    Waits first (up to a minute) for what an earlier run deleted to be freed: UNLINK frees a
    large index in a background thread, which would otherwise share the CPU with this run.
    """
    for _ in range(600):
        if not int((await store.client.info("memory")).get("lazyfree_pending_objects", 0)):
            break
        await asyncio.sleep(0.1)
    info = await store.client.info()
    return (
        f"server {info.get('redis_version', '?')}: {await store.client.dbsize()} keys of others, "
        f"{info['used_memory_human']} used, {info['used_memory_rss_human']} resident, "
        f"{info.get('connected_clients', '?')} clients"
    )


# The machine's noise comes in bursts of seconds: many short rounds, and the median of their
# ratios with its interval. Probes are indexed as they are decided, so all rounds together add
# 2,000 articles to each index (20% of a 10k one), not enough to take either past a doubling.
PAIRED_ROUNDS = 40
PAIRED_PROBE = 50


async def paired_rounds(
    big: Store, small: Store, pool: ProcessPoolExecutor, size: int, args: argparse.Namespace
) -> Paired:
    """The cost of a decision against the large index and against a small one held in the
    same Redis, round by round with fresh probes, the order alternating.

    Filling one Redis from 10k to 100k articles makes the whole server 10x larger, so its
    lookups miss the CPU caches and TLB more often, whatever the index does; with both
    indexes in one server that effect is the same for both, and the ratio is the index's own.
    The rounds add to the large index: when they take one of its hashes past a power of two,
    its rehash (see ``describe_shape``) is in this ratio and not in the small index's cost.
    """
    await fill(small, prepare_range(pool, 50_000_000, 50_000_000 + size, args.words))
    shape = await index_shape(big)
    paired = Paired([], [], [])
    for round_ in range(PAIRED_ROUNDS):
        base = 60_000_000 + round_ * 3 * PAIRED_PROBE
        probes_big = prepare_range(pool, base, base + PAIRED_PROBE, args.words)
        probes_small = prepare_range(pool, base + PAIRED_PROBE, base + 2 * PAIRED_PROBE, args.words)
        # Looked up in both and decided in neither (see lookup_cost).
        probes_bare = prepare_range(
            pool, base + 2 * PAIRED_PROBE, base + 3 * PAIRED_PROBE, args.words
        )
        if round_ % 2:
            bare_small = await lookup_cost(small, probes_bare)
            bare_big = await lookup_cost(big, probes_bare)
            on_small = await decision_cost(small, probes_small)
            on_big = await decision_cost(big, probes_big)
        else:
            bare_big = await lookup_cost(big, probes_bare)
            bare_small = await lookup_cost(small, probes_bare)
            on_big = await decision_cost(big, probes_big)
            on_small = await decision_cost(small, probes_small)
        paired.wall.append(on_big.wall / on_small.wall)
        paired.script.append(on_big.script / on_small.script)
        if bare_small > 0:
            paired.lookups.append(bare_big / bare_small)
        print(
            f"... paired round {round_ + 1}: {on_big.wall:.3f} ms against the large index, "
            f"{on_small.wall:.3f} ms against the small one; bare lookups "
            f"{bare_big:.0f} and {bare_small:.0f} µs",
            flush=True,
        )
    print(f"... paired rounds, the large index: {describe_shape(shape, await index_shape(big))}")
    return paired


@dataclass(frozen=True, slots=True)
class Paired:
    """Per-round ratios, large index / small index, of the paired rounds."""

    wall: list[float]  # a decision as the client sees it
    script: list[float]  # a decision inside EVALSHA
    lookups: list[float]  # bare HMGETs of a decision's fields (lookup_cost)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
    )
    parser.add_argument("--sizes", default="10000,100000")
    # Probes are indexed too: 10 rounds of 100 leave the largest index 1% above its size.
    parser.add_argument("--probe", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10, help="probe rounds at each size")
    parser.add_argument("--words", type=int, default=600)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
