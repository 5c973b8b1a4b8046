"""Redis memory per indexed article, and what a decision costs as the index grows.

    python bench/capacity.py [--redis-url URL] [--sizes 10000,100000] [--probe 500]

Fills the index through the service's own decide step (``Store.decide_many``, the Lua script)
with distinct synthetic stories of news length, under a throw-away key prefix. At each size it
measures the Redis memory the prefix holds (``MEMORY USAGE`` of every key) and the time to
decide ``--probe`` new articles, in batches of 200 as the batch endpoint does. Fingerprints
are computed up front in worker processes, so the timings are the index step alone. Prints
figures and the ratio of decision cost between the largest and the smallest size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from functools import cache

from _service import build_sentence_pool, sentence_pool

from service.fingerprint import index_meta
from service.index import Store, connect
from service.keys import Keys
from service.models import Params, Prepared
from service.prepare import prepared_from_body

BATCH = 200
PARAMS = Params()  # the service's defaults


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


async def _script_usec(store: Store) -> tuple[int, int]:
    """Calls and microseconds the server has spent in EVALSHA so far (all clients)."""
    stats = await store.client.info("commandstats")
    entry = stats.get("cmdstat_evalsha", {"calls": 0, "usec": 0})
    return int(entry["calls"]), int(entry["usec"])


async def decision_cost(store: Store, probes: list[Prepared]) -> tuple[float, float]:
    """Milliseconds per decision over the probes (inserted, so each run uses fresh ones):
    as the client sees it, and as the server spent it inside the script.

    The server-side figure separates what the index costs from the client and network, and
    is less disturbed by other work on a shared machine. It counts every client's EVALSHA, so
    run the benchmark against a Redis nothing else is scripting.
    """
    calls_before, usec_before = await _script_usec(store)
    started = time.perf_counter()
    await fill(store, probes)
    elapsed = (time.perf_counter() - started) * 1000 / len(probes)
    calls_after, usec_after = await _script_usec(store)
    server = (usec_after - usec_before) / 1000 / max(1, calls_after - calls_before)
    return elapsed, server


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
    print(f"  sizes {sizes}, {args.words} words per article, probe {args.probe} decisions")
    rows = []
    try:
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            filled = 0
            probe_base = 10_000_000
            for size in sizes:
                started = time.perf_counter()
                await fill(store, prepare_range(pool, filled, size, args.words))
                fill_s = time.perf_counter() - started
                filled = size
                costs, server = [], []
                for round_ in range(3):
                    first = probe_base + (len(rows) * 3 + round_) * args.probe
                    probes = prepare_range(pool, first, first + args.probe, args.words)
                    wall, in_script = await decision_cost(store, probes)
                    costs.append(wall)
                    server.append(in_script)
                    filled += args.probe  # probes are indexed too
                cost, server_cost = statistics.median(costs), statistics.median(server)
                print(
                    f"... {size:>7} indexed (filled in {fill_s:.0f} s): decision {cost:.3f} ms, "
                    f"{server_cost:.3f} ms of it in the script (median of 3 x {args.probe})",
                    flush=True,
                )
                memory, kinds = await prefix_memory(store)
                per_article = memory / filled
                rows.append((size, cost, server_cost, per_article, kinds, filled))
                print(f"... {size:>7} indexed: {per_article / 1024:.1f} KiB per article")
            paired = await paired_rounds(store, small, pool, sizes[0], args)
    finally:
        deleted = await store.reset() + await small.reset()
        await store.client.aclose()
        await small.client.aclose()
        print(f"... deleted {deleted} keys")

    print("\nFigures")
    for size, cost, server_cost, per_article, kinds, filled in rows:
        breakdown = ", ".join(
            f"{k} {v / filled:.0f} B" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])
        )
        print(
            f"  {size:>7} indexed   decision {cost:.3f} ms (in script {server_cost:.3f} ms)   "
            f"memory {per_article:.0f} B/article"
        )
        print(f"                    per article: {breakdown}")
    smallest, largest = rows[0], rows[-1]
    print("\nRatios (same run)")
    print(
        f"  decision cost at {largest[0]} / at {smallest[0]}, the same Redis grown 10x: "
        f"{largest[1] / smallest[1]:.2f}x (in the script {largest[2] / smallest[2]:.2f}x)"
    )
    wall_ratio, script_ratio = paired
    print(
        f"  decision cost at {largest[0]} / at {smallest[0]}, both indexes in one Redis "
        f"(median of the rounds' ratios): {wall_ratio:.2f}x (in the script {script_ratio:.2f}x)"
    )
    gib = largest[3] * 1_000_000 / 2**30
    print(
        f"  Redis memory per million indexed articles: {gib:.2f} GiB "
        f"({args.words}-word articles, full text stored for GET and replays)"
    )


PAIRED_ROUNDS = 7


async def paired_rounds(
    big: Store, small: Store, pool: ProcessPoolExecutor, size: int, args: argparse.Namespace
) -> tuple[float, float]:
    """The cost of a decision against the large index and against a small one held in the
    same Redis, round by round with fresh probes, the order alternating.

    Filling one Redis from 10k to 100k articles makes the whole server 10x larger, so its
    lookups miss the CPU caches and TLB more often, whatever the index does; with both
    indexes in one server that effect is the same for both, and the ratio is the index's own.
    """
    await fill(small, prepare_range(pool, 50_000_000, 50_000_000 + size, args.words))
    wall, script = [], []
    for round_ in range(PAIRED_ROUNDS):
        base = 60_000_000 + round_ * 2 * args.probe
        probes_big = prepare_range(pool, base, base + args.probe, args.words)
        probes_small = prepare_range(pool, base + args.probe, base + 2 * args.probe, args.words)
        if round_ % 2:
            on_small = await decision_cost(small, probes_small)
            on_big = await decision_cost(big, probes_big)
        else:
            on_big = await decision_cost(big, probes_big)
            on_small = await decision_cost(small, probes_small)
        wall.append(on_big[0] / on_small[0])
        script.append(on_big[1] / on_small[1])
        print(
            f"... paired round {round_ + 1}: {on_big[0]:.3f} ms against the large index, "
            f"{on_small[0]:.3f} ms against the small one",
            flush=True,
        )
    return statistics.median(wall), statistics.median(script)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
    )
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--probe", type=int, default=500)
    parser.add_argument("--words", type=int, default=600)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
