"""Cost of a MinHash signature per article: the off-the-shelf way (a shingle set, datasketch's
``MinHash.update_batch`` with xxh32 per shingle) against service.minhash, on the same article
bodies in the same run.

    python bench/hashing.py [--articles 100] [--rounds 7] [--no-large]

Bodies are real text: trafilatura's extraction of the trafilatura-eval pages (read by path
from ../shared/corpora), cut into articles of 600 words. Both representations are measured:
word 5-grams and character 5-grams of the normalised body (about five times as many
shingles; the service uses character 7-grams by default). Every signature of service.minhash
is checked byte for byte against datasketch's with the service's shingle hash as
``hashfunc`` before anything is timed. That hash, a polynomial over code points
(service.minhash.shingle_hash), is slow one shingle at a time in Python and fast over a whole
text; xxh32 is the fast per-shingle hash in C an off-the-shelf pipeline would use, so it is
the baseline.

Each figure is the mean over articles of each call's best of ``--rounds``, the stages
interleaved article by article, because the machine is shared: the best call is the one least
disturbed. The script prints figures and ratios and never judges an absolute time.
"""

from __future__ import annotations

import argparse
import gzip
import os
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import trafilatura
import xxhash
from datasketch import MinHash

from service import fingerprint as fp
from service import minhash as mh

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared/corpora/trafilatura-eval/html"
ARTICLE_WORDS = 600
SHINGLE = 5
NUM_PERM = 128
LARGE_BYTES = 1_000_000


def corpus_words(needed: int) -> list[str]:
    """Words of extracted article text, in page order, until there are ``needed``."""
    words: list[str] = []
    for path in sorted(CORPUS.glob("*.html.gz")):
        raw = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        words.extend((trafilatura.extract(raw, deduplicate=False) or "").split())
        if len(words) >= needed:
            break
    if not words:
        raise SystemExit(f"no text extracted from {CORPUS}")
    return words


def articles(words: Sequence[str], count: int) -> list[str]:
    # A corpus shorter than asked for wraps around rather than giving fewer articles.
    stream = list(words) * (-(-count * ARTICLE_WORDS // len(words)))
    return [" ".join(stream[i * ARTICLE_WORDS : (i + 1) * ARTICLE_WORDS]) for i in range(count)]


def char_shingles(text: str, size: int) -> set[bytes]:
    """Character ``size``-grams as the datasketch path would take them: a set of bytes."""
    if not text:
        return set()
    return {text[i : i + size].encode("utf-8") for i in range(max(1, len(text) - size + 1))}


@dataclass
class Article:
    body: str
    norm: str
    tokens: list[str]
    words: set[bytes]
    word_hashes: np.ndarray[Any, np.dtype[np.uint32]]
    chars: set[bytes]
    char_hashes: np.ndarray[Any, np.dtype[np.uint32]]


def prepare(body: str) -> Article:
    norm = fp.normalise(body)
    tokens = fp.words(norm)
    words = fp.shingles(tokens, SHINGLE)
    chars = char_shingles(norm, SHINGLE)
    return Article(
        body,
        norm,
        tokens,
        words,
        mh.word_shingle_hashes(tokens, SHINGLE),
        chars,
        mh.char_shingle_hashes(norm, SHINGLE),
    )


def datasketch_sig(items: set[bytes]) -> bytes:
    """datasketch with the service's shingle hash: what every new path must equal."""
    return fp.signature_bytes(fp.minhash(items, NUM_PERM))


def off_the_shelf_sig(items: set[bytes]) -> bytes:
    """datasketch with xxh32 (C) per shingle, slices as fingerprint.minhash feeds it."""
    mh_ = MinHash(
        num_perm=NUM_PERM, seed=fp.MINHASH_SEED, hashfunc=xxhash.xxh32_intdigest, scheme="affine32"
    )
    ordered = list(items)
    for start in range(0, len(ordered), 1 << 16):
        mh_.update_batch(ordered[start : start + (1 << 16)])
    return fp.signature_bytes(mh_)


def check(items: Sequence[Article]) -> None:
    """Every new path gives datasketch's signature on every article, or the figures mean
    nothing."""
    for a in items:
        words = datasketch_sig(a.words)
        chars = datasketch_sig(a.chars)
        assert mh.signature(a.word_hashes, NUM_PERM) == words
        assert mh.signature(mh.word_shingle_hashes(a.tokens, SHINGLE), NUM_PERM) == words
        assert mh.signature(a.char_hashes, NUM_PERM) == chars
        assert mh.signature(mh.char_shingle_hashes(a.norm, SHINGLE), NUM_PERM) == chars


Stage = Callable[[Article], object]


def measure(items: Sequence[Article], stages: dict[str, Stage], rounds: int) -> dict[str, float]:
    """Seconds per article of each stage: each call's best over ``rounds``, then the mean over
    articles. Timing single calls and keeping the best of each drops the calls another
    process preempted, which a best over whole passes would keep on a loaded machine."""
    best = {name: [float("inf")] * len(items) for name in stages}
    clock = time.perf_counter
    for _ in range(rounds):
        for i, a in enumerate(items):
            for name, stage in stages.items():
                start = clock()
                stage(a)
                elapsed = clock() - start
                if elapsed < best[name][i]:
                    best[name][i] = elapsed
    return {name: sum(times) / len(times) for name, times in best.items()}


def stages(kind: str) -> dict[str, Stage]:
    if kind == "word":
        return {
            "today: fingerprint.shingles": lambda a: fp.shingles(a.tokens, SHINGLE),
            "today: datasketch, xxh32 per shingle": lambda a: off_the_shelf_sig(a.words),
            "new: word_shingle_hashes(tokens)": lambda a: mh.word_shingle_hashes(a.tokens, SHINGLE),
            "new: signature(hashes)": lambda a: mh.signature(a.word_hashes, NUM_PERM),
        }
    return {
        "today: set of char 5-grams": lambda a: char_shingles(a.norm, SHINGLE),
        "today: datasketch, xxh32 per shingle": lambda a: off_the_shelf_sig(a.chars),
        "new: char_shingle_hashes(text)": lambda a: mh.char_shingle_hashes(a.norm, SHINGLE),
        "new: signature(hashes)": lambda a: mh.signature(a.char_hashes, NUM_PERM),
    }


def report(kind: str, items: Sequence[Article], rounds: int) -> None:
    t = measure(items, stages(kind), rounds)
    shingles = statistics_line(items, kind)
    shingling = (
        t["today: fingerprint.shingles"] if kind == "word" else t["today: set of char 5-grams"]
    )
    fused = (
        t["new: word_shingle_hashes(tokens)"]
        if kind == "word"
        else t["new: char_shingle_hashes(text)"]
    )
    today = shingling + t["today: datasketch, xxh32 per shingle"]
    fused_total = fused + t["new: signature(hashes)"]
    print(f"\n{kind} 5-grams: {shingles}")
    for name, seconds in t.items():
        print(f"  {name:<46} {seconds * 1e6:9.1f} us/article")
    print(f"  {'-' * 46}")
    print(f"  {'today (shingle set + datasketch)':<46} {today * 1e6:9.1f} us/article")
    print(
        f"  {'new, no set (spans hashed + min)':<46} {fused_total * 1e6:9.1f} us/article"
        f"   {today / fused_total:5.2f}x faster"
    )
    perm = t["new: signature(hashes)"]
    print(
        f"  split of the new path: shingling+hashing fused {fused * 1e6:.1f}"
        f" / permutation-min {perm * 1e6:.1f} us"
    )


def statistics_line(items: Sequence[Article], kind: str) -> str:
    counts = [len(a.words) if kind == "word" else len(a.chars) for a in items]
    return f"{sum(counts) / len(counts):.0f} distinct shingles per article on average"


def large(words: Sequence[str]) -> None:
    """One body of about a megabyte: best time of three and peak traced memory of each path."""
    body_words: list[str] = []
    size = 0
    while size < LARGE_BYTES:
        for w in words:
            body_words.append(w)
            size += len(w) + 1
            if size >= LARGE_BYTES:
                break
    norm = fp.normalise(" ".join(body_words))
    tokens = fp.words(norm)
    paths: dict[str, Callable[[], bytes]] = {
        "word, today": lambda: off_the_shelf_sig(fp.shingles(tokens, SHINGLE)),
        "word, new": lambda: mh.signature(mh.word_shingle_hashes(tokens, SHINGLE), NUM_PERM),
        "char, today": lambda: off_the_shelf_sig(char_shingles(norm, SHINGLE)),
        "char, new": lambda: mh.signature(mh.char_shingle_hashes(norm, SHINGLE), NUM_PERM),
    }
    print(f"\none body of {len(norm.encode()) / 1e6:.1f} MB ({len(tokens)} words):")
    results: dict[str, bytes] = {}
    for name, path in paths.items():
        seconds = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            results[name] = path()
            seconds = min(seconds, time.perf_counter() - start)
        tracemalloc.start()
        path()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"  {name:<12} {seconds * 1e3:8.0f} ms   peak traced memory {peak / 1e6:6.0f} MB")
    # The two paths hash shingles differently; each new one must still be datasketch's.
    assert results["word, new"] == datasketch_sig(fp.shingles(tokens, SHINGLE))
    assert results["char, new"] == datasketch_sig(char_shingles(norm, SHINGLE))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-large", action="store_true", help="skip the 1 MB body")
    args = parser.parse_args(argv)

    words = corpus_words(args.articles * ARTICLE_WORDS)
    items = [prepare(body) for body in articles(words, args.articles)]
    check(items)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{args.articles} articles of {ARTICLE_WORDS} words from {CORPUS.parent.name}, "
        f"num_perm {NUM_PERM}, best of {args.rounds} per call; numpy {np.__version__}; "
        f"load average {load} on {os.cpu_count()} CPUs"
    )
    prep = measure(
        items, {"normalise + words": lambda a: fp.words(fp.normalise(a.body))}, args.rounds
    )
    print(
        f"(for scale: normalise + words, before any shingling, "
        f"{prep['normalise + words'] * 1e6:.1f} us/article)"
    )
    report("word", items, args.rounds)
    report("char", items, args.rounds)
    if not args.no_large:
        large(words)


if __name__ == "__main__":
    main()
