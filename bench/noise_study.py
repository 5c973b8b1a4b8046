"""Which shingle representation separates copies from different stories best, typos included?

A measurement study (no Redis, no service process). It builds a labelled pair set from real text:

* sources: ~150 bodies that ``trafilatura.extract`` gets from the trafilatura-eval pages in
  ``../shared/corpora`` (only pages with >= 250 words after ``fingerprint.normalise``);
* positives, one per source and kind, made with a seeded RNG (deterministic):
  ``boiler`` (other header/footer lines around the same body), ``edit`` (sentences reworded or
  replaced, ~10% of the words), ``lede`` (first paragraph replaced), ``shuffle`` (paragraph
  order), ``typo1/2/3`` (1/2/3% character error rate: letter substitutions, deletions,
  insertions, transpositions), ``combo`` (2% typos + edits + other boilerplate);
* hard negatives: each source with its most similar other source (by shared vocabulary and by
  word-5 Jaccard), plus all 10 pairs of the five same-topic seeds in ``../shared/seeds``
  (their lines of >= 8 words);
* containment, reported only: ``excerpt`` (first 20-60% of the body), ``teaser`` (the first
  paragraph) and ``superset`` (body + 30-100% more text from another article).

Every representation works on ``fingerprint.normalise(body)``: word n-shingles (``fingerprint``
words/shingles), character n-grams of the normalised string (``cN``) and of the string with
spaces removed (``nsN``). For each it reports (MinHash: 128 permutations, datasketch
update_batch, affine32, xxh32 of the shingle bytes: a fast hash one shingle at a time; which
32-bit hash it is does not change what the study measures):

1. exact set Jaccard per kind (mean / 5th percentile), of the negatives (mean / 99th percentile
   / max), and the background (mean estimate over all pairs of sources);
2. the best threshold ``t``: as many MinHash standard deviations below the positives' 1st
   percentile as above the highest negative (the gap in deviations is ``z``); recall per kind
   at ``t`` on exact Jaccard and on the estimate, the positives whose estimate falls below ``t``
   and the negatives at or above it, and the LSH banding (``fingerprint.lsh_params``) for ``t``
   with the share of all source pairs it makes candidates;
3. MinHash recall at the service's threshold (0.8) per kind, and at 0.7 ... 0.4 with the LSH
   candidate share there;
4. the containment pairs' exact and estimated Jaccard; cost: distinct shingles per 1000 words
   and CPU ms to shingle and to MinHash 100 sources.

It ends with the representation of widest separation and a recommended operating point: the
highest threshold (cheapest LSH) at which a representation keeps >= 99.5% of the positives with
no negative over it and <= 1% of pairs as candidates; of those, the one whose highest negative
is most deviations below the threshold. The whole run takes ~1 CPU minute per core on 2 cores.

Usage::

    python bench/noise_study.py [--sources N] [--workers N] [--seed S]
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import random
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trafilatura
import xxhash
from datasketch import MinHash

from service import fingerprint as fp

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpora" / "trafilatura-eval" / "html"
SEEDS = SHARED / "seeds"

NUM_PERM = 128
MIN_WORDS = 250
TIMED_ARTICLES = 100
SERVICE_THRESHOLD = 0.8  # the default of settings.dedup_threshold
MAX_CANDIDATE_PCT = 1.0  # LSH candidates among unrelated pairs that a recommendation may cost
MIN_RECALL = 99.5  # % of positives an operating point must keep with the MinHash estimate
Z_TIES = 0.25  # separations (in MinHash deviations) closer than this are not told apart

POSITIVE_KINDS = ("boiler", "edit", "lede", "shuffle", "typo1", "typo2", "typo3", "combo")
CONTAINMENT_KINDS = ("excerpt", "teaser", "superset")
NEGATIVE_KINDS = ("neg-vocab", "neg-w5", "neg-seeds")

# Lines a scraper lets through around a body; a variant gets a few of them above and below.
BOILERPLATE = (
    "Share this article",
    "Share on Facebook Share on Twitter Share via Email",
    "Follow us on Twitter and Instagram for the latest updates.",
    "Sign up for our daily newsletter",
    "Subscribe now and get unlimited access for just $1 a week.",
    "Advertisement",
    "Read more:",
    "Related articles",
    "Most popular",
    "This article has been updated.",
    "Updated 14:32 GMT, March 29, 2017",
    "Photo: Reuters / AP",
    "Copyright 2024 The Daily Courier. All rights reserved.",
    "This material may not be published, broadcast, rewritten or redistributed.",
    "Comments are closed.",
    "Click here to report a typo.",
    "We use cookies to improve your experience. By continuing you accept our cookie policy.",
    "Listen to this article (4 min)",
    "Skip to main content",
    "Home > News > Politics",
    "Artikel teilen",
    "Lesen Sie auch:",
    "Mehr zum Thema",
    "Anzeige",
    "Jetzt abonnieren und weiterlesen",
    "Alle Rechte vorbehalten.",
    "Diesen Artikel bewerten: 4,5 von 5 Sternen",
    "Foto: dpa / Bernd von Jutrczenka",
    "Kommentare (12)",
    "Leer más",
    "Compartir en WhatsApp",
    "Suscríbete a nuestro boletín",
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


# ----------------------------------------------------------------------------------------------
# Text sources


def _extract(path: Path) -> tuple[str, str] | None:
    html = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
    body = trafilatura.extract(html)
    if not body or len(fp.words(fp.normalise(body))) < MIN_WORDS:
        return None
    return path.name, body


def load_sources(count: int, seed: int, workers: int) -> list[str]:
    """Bodies of ``count`` pages (of those with enough words), chosen with a fixed seed."""
    paths = sorted(CORPUS.glob("*.html.gz"))
    if not paths:
        sys.exit(f"no pages under {CORPUS}")
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        found = [item for item in pool.map(_extract, paths, chunksize=8) if item is not None]
    chosen = random.Random(f"{seed}:sources").sample(found, min(count, len(found)))
    return [body for _, body in sorted(chosen)]


def load_seeds() -> list[str]:
    """The five same-topic seed stories as bodies: their distinct lines of at least 8 words.

    A fixed stand-in for the service's cleaner (which is being changed), so that these numbers
    do not move with it; it keeps headlines and some boilerplate, which makes the negatives a
    little harder, not easier.
    """
    bodies = []
    for path in sorted(SEEDS.glob("*.txt")):
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        kept = dict.fromkeys(line for line in lines if len(line.split()) >= 8)
        bodies.append(join(list(kept)))
    return bodies


# ----------------------------------------------------------------------------------------------
# Variants


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n") if p.strip()]


def sentences(paragraph: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(paragraph) if s]


def word_count(text: str) -> int:
    return len(text.split())


def join(paras: Iterable[str]) -> str:
    return "\n".join(paras)


def with_boilerplate(body: str, rng: random.Random) -> str:
    head = rng.sample(BOILERPLATE, rng.randint(1, 3))
    foot = rng.sample(BOILERPLATE, rng.randint(1, 3))
    return join([*head, body, *foot])


def edit_sentences(
    body: str, rng: random.Random, donor: str, share: float = 0.10
) -> tuple[str, float]:
    """Reword or replace whole sentences (at least 2) until about ``share`` of the words."""
    paras = [sentences(p) for p in paragraphs(body)]
    total = word_count(body)
    slots = [(i, j) for i, p in enumerate(paras) for j, _ in enumerate(p)]
    rng.shuffle(slots)
    donor_sentences = [s for p in paragraphs(donor) for s in sentences(p) if word_count(s) >= 5]
    vocabulary = sorted(set(body.split()))
    edited_words = edited = 0
    for i, j in slots:
        if edited >= 2 and edited_words >= share * total:
            break
        sentence = paras[i][j]
        size = word_count(sentence)
        if size < 4 or size > 0.15 * total:
            continue
        if rng.random() < 0.5 and donor_sentences:
            paras[i][j] = rng.choice(donor_sentences)
        else:  # reworded: about half the words swapped for others of this article, one dropped
            tokens = [rng.choice(vocabulary) if rng.random() < 0.5 else w for w in sentence.split()]
            del tokens[rng.randrange(len(tokens))]
            paras[i][j] = " ".join(tokens)
        edited += 1
        edited_words += size
    return join(" ".join(p) for p in paras), edited_words / total


def replace_lede(
    body: str, rng: random.Random, donor: str, cap: float = 0.20, least: int = 30
) -> tuple[str, float]:
    """A new headline and lede: the leading sentences, across paragraphs, up to ``least`` words
    (never over ``cap`` of the body), replaced by as many words of the donor's opening."""
    paras = [sentences(p) for p in paragraphs(body)]
    total = word_count(body)
    flat = [(k, m, word_count(s)) for k, para in enumerate(paras) for m, s in enumerate(para)]
    size = cut = 0
    for _, _, words in flat:
        if size and (size >= least or size + words > cap * total):
            break
        size += words
        cut += 1
    rest: list[str] = []
    tail: list[list[str]] = []
    if cut < len(flat):
        k, m, _ = flat[cut]
        rest, tail = paras[k][m:], paras[k + 1 :]
    new_lede = " ".join(donor.split()[: max(size + rng.randint(-3, 3), 3)])
    return join([new_lede, *(" ".join(p) for p in [rest, *tail] if p)]), size / total


def shuffle_paragraphs(body: str, rng: random.Random) -> str:
    paras = paragraphs(body)
    if len(paras) < 2:  # one block: shuffle its sentences instead
        paras = sentences(body)
    order = list(range(len(paras)))
    while len(order) > 1 and order == sorted(order):
        rng.shuffle(order)
    return join(paras[k] for k in order)


def add_typos(text: str, rate: float, rng: random.Random) -> str:
    """``rate`` x len(text) letter edits: substitution, deletion, insertion or transposition."""
    chars = list(text)
    letters = [i for i, c in enumerate(chars) if c.isalpha()]
    alphabet = sorted({c for c in text if c.isalpha()})
    edits = min(round(rate * len(chars)), len(letters))
    for i in sorted(rng.sample(letters, edits), reverse=True):  # right to left: indices hold
        op = rng.randrange(4)
        if op == 1:
            del chars[i]
        elif op == 2:
            chars.insert(i, rng.choice(alphabet))
        elif op == 3 and i + 1 < len(chars) and chars[i + 1].isalpha() and chars[i + 1] != chars[i]:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        else:
            chars[i] = rng.choice([c for c in alphabet if c != chars[i]] or alphabet)
    return "".join(chars)


def excerpt(body: str, rng: random.Random) -> str:
    tokens = body.split(" ")
    return " ".join(tokens[: max(1, round(rng.uniform(0.2, 0.6) * len(tokens)))])


def teaser(body: str) -> str:
    first = paragraphs(body)[0]
    if word_count(first) > 0.6 * word_count(body):
        first = " ".join(sentences(first)[:2])
    return first


def superset(body: str, rng: random.Random, others: Sequence[str]) -> str:
    """The body with 30-100% as many words again, taken from other articles in turn."""
    want = round(rng.uniform(0.3, 1.0) * word_count(body))
    extra: list[str] = []
    for other in others:
        extra += other.split()[: want - len(extra)]
        if len(extra) >= want:
            break
    return join([body, " ".join(extra)])


@dataclass(frozen=True, slots=True)
class PairSet:
    texts: list[str]  # every document; pairs index into it
    pairs: list[tuple[int, int, str]]  # (a, b, kind)
    sources: list[int]  # the clean source bodies, for cost


def build_pairs(bodies: list[str], seeds: list[str], seed: int) -> tuple[PairSet, dict[str, float]]:
    texts: list[str] = []
    pairs: list[tuple[int, int, str]] = []
    edit_shares: list[float] = []
    lede_shares: list[float] = []

    def add(text: str) -> int:
        texts.append(text)
        return len(texts) - 1

    sources = [add(b) for b in bodies]
    for k, body in enumerate(bodies):

        def rng(kind: str, k: int = k) -> random.Random:
            return random.Random(f"{seed}:{k}:{kind}")

        others = [bodies[d] for d in range(len(bodies)) if d != k]
        rng("donors").shuffle(others)
        donors = others[:2]
        src = sources[k]
        boiler_a = add(with_boilerplate(body, rng("boiler-a")))
        pairs.append((boiler_a, add(with_boilerplate(body, rng("boiler-b"))), "boiler"))
        edited, share = edit_sentences(body, rng("edit"), donors[0])
        edit_shares.append(share)
        pairs.append((src, add(edited), "edit"))
        new_lede, share = replace_lede(body, rng("lede"), donors[1])
        lede_shares.append(share)
        pairs.append((src, add(new_lede), "lede"))
        pairs.append((src, add(shuffle_paragraphs(body, rng("shuffle"))), "shuffle"))
        for pct in (1, 2, 3):
            pairs.append((src, add(add_typos(body, pct / 100, rng(f"typo{pct}"))), f"typo{pct}"))
        combo = with_boilerplate(add_typos(edited, 0.02, rng("combo-typo")), rng("combo-b"))
        pairs.append((boiler_a, add(combo), "combo"))
        pairs.append((src, add(excerpt(body, rng("excerpt"))), "excerpt"))
        pairs.append((src, add(teaser(body)), "teaser"))
        pairs.append((src, add(superset(body, rng("superset"), others[2:])), "superset"))

    negatives, dropped = nearest_negatives(bodies)
    pairs += [(sources[a], sources[b], kind) for a, b, kind in negatives]
    seed_ids = [add(s) for s in seeds]
    pairs += [
        (a, b, "neg-seeds") for i, a in enumerate(seed_ids) for b in seed_ids[i + 1 :]
    ]  # all 10
    info = {
        "dropped": float(dropped),
        "edit_share": float(np.mean(edit_shares)),
        "lede_share": float(np.mean(lede_shares)),
    }
    return PairSet(texts, pairs, sources), info


def _jaccard(a: set[bytes] | set[str], b: set[bytes] | set[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def nearest_negatives(bodies: list[str]) -> tuple[list[tuple[int, int, str]], int]:
    """Each body with its nearest other body by word set and by word-5 shingles.

    A pair over word-5 Jaccard 0.5 would be the same story twice in the corpus, not a
    different story: it is left out (and counted).
    """
    tokens = [fp.words(fp.normalise(b)) for b in bodies]
    vocab = [set(t) for t in tokens]
    w5 = [fp.shingles(t, 5) for t in tokens]
    seen: set[tuple[int, int]] = set()
    out: list[tuple[int, int, str]] = []
    dropped = 0
    for kind, sets in (("neg-vocab", vocab), ("neg-w5", w5)):
        for i in range(len(bodies)):
            scores = [(-1.0 if j == i else _jaccard(sets[i], sets[j]), j) for j in range(len(sets))]
            _, j = max(scores)
            key = (min(i, j), max(i, j))
            if key in seen:
                continue
            seen.add(key)
            if _jaccard(w5[i], w5[j]) > 0.5:
                dropped += 1
                continue
            out.append((key[0], key[1], kind))
    return out, dropped


# ----------------------------------------------------------------------------------------------
# Representations


@dataclass(frozen=True, slots=True)
class Rep:
    name: str
    unit: str  # "word", "char" or "nospace"
    n: int

    def shingle(self, text: str) -> set[bytes]:
        norm = fp.normalise(text)
        if self.unit == "word":
            return fp.shingles(fp.words(norm), self.n)
        if self.unit == "nospace":
            norm = norm.replace(" ", "")
        n = self.n
        if len(norm) <= n:
            return {norm.encode("utf-8")} if norm else set()
        return {g.encode("utf-8") for g in {norm[i : i + n] for i in range(len(norm) - n + 1)}}


REPS = (
    *(Rep(f"w{n}", "word", n) for n in (5, 4, 3, 2)),
    *(Rep(f"c{n}", "char", n) for n in (4, 5, 6, 7, 8, 9)),
    *(Rep(f"ns{n}", "nospace", n) for n in (5, 7, 9)),
)


@dataclass(frozen=True, slots=True)
class RepResult:
    rep: Rep
    exact: np.ndarray  # per pair
    estimate: np.ndarray  # per pair
    per_kwords: float  # distinct shingles per 1000 words, mean over sources
    shingle_ms: float  # CPU time per TIMED_ARTICLES sources
    minhash_ms: float
    source_sigs: np.ndarray  # (sources, NUM_PERM)
    background: float  # mean estimate over all pairs of sources


_PAIRS: PairSet | None = None  # set before the pool forks


def _minhash(items: set[bytes]) -> MinHash:
    mh = MinHash(
        num_perm=NUM_PERM, seed=fp.MINHASH_SEED, hashfunc=xxhash.xxh32_intdigest, scheme="affine32"
    )
    mh.update_batch(list(items))
    return mh


def measure(rep: Rep) -> RepResult:
    assert _PAIRS is not None
    data = _PAIRS
    used = sorted({i for a, b, _ in data.pairs for i in (a, b)})
    sets: dict[int, set[bytes]] = {i: rep.shingle(data.texts[i]) for i in used}
    sigs = {i: np.asarray(_minhash(sets[i]).hashvalues) for i in used}
    exact = np.array([_jaccard(sets[a], sets[b]) for a, b, _ in data.pairs])
    estimate = np.array([np.count_nonzero(sigs[a] == sigs[b]) / NUM_PERM for a, b, _ in data.pairs])
    per_kwords = float(
        np.mean(
            [1000 * len(sets[i]) / len(fp.words(fp.normalise(data.texts[i]))) for i in data.sources]
        )
    )
    timed = [data.texts[i] for i in data.sources[:TIMED_ARTICLES]]
    shingle_ms = minhash_ms = float("inf")
    for _ in range(2):  # best of two, CPU time: other load on the machine does not count
        start = time.process_time()
        timed_sets = [rep.shingle(t) for t in timed]
        middle = time.process_time()
        for s in timed_sets:
            _minhash(s)
        end = time.process_time()
        shingle_ms = min(shingle_ms, 1000 * (middle - start))
        minhash_ms = min(minhash_ms, 1000 * (end - middle))
    source_sigs = np.stack([sigs[i] for i in data.sources])
    equal = [
        np.count_nonzero(source_sigs[i + 1 :] == source_sigs[i], axis=1)
        for i in range(len(source_sigs) - 1)
    ]
    background = float(np.mean(np.concatenate(equal))) / NUM_PERM
    return RepResult(
        rep, exact, estimate, per_kwords, shingle_ms, minhash_ms, source_sigs, background
    )


# ----------------------------------------------------------------------------------------------
# Analysis and report


def sigma(j: float) -> float:
    """Standard deviation of a 128-permutation MinHash estimate of Jaccard ``j``."""
    return float(np.sqrt(max(j * (1 - j), 1e-4) / NUM_PERM))


@dataclass(frozen=True, slots=True)
class Cut:
    low_pos: float  # 1st percentile of the positives' exact Jaccard
    high_neg: float  # highest exact Jaccard of a negative
    z: float  # gap in MinHash standard deviations
    t: float  # the threshold as many deviations from both


def best_cut(pos: np.ndarray, neg: np.ndarray) -> Cut:
    """The threshold that separates the lowest positives from the highest negative best under
    MinHash noise: equally many standard deviations above the one and below the other."""
    lo, hi = pct(pos, 1), float(np.max(neg))
    z = (lo - hi) / (sigma(lo) + sigma(hi))
    return Cut(lo, hi, z, hi + z * sigma(hi))


def pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def candidate_rate(sigs: np.ndarray, t: float) -> float:
    """Fraction of all pairs of sources that share an LSH bucket at the service's banding for t."""
    bands, rows = fp.lsh_params(t, NUM_PERM)
    banded = sigs[:, : bands * rows].reshape(len(sigs), bands, rows)
    hits = 0
    for i in range(len(sigs) - 1):
        same = np.all(banded[i + 1 :] == banded[i], axis=2)
        hits += int(np.count_nonzero(np.any(same, axis=1)))
    return hits / (len(sigs) * (len(sigs) - 1) / 2)


def report(results: Sequence[RepResult], pairs: PairSet, info: dict[str, float]) -> None:
    kinds = np.array([k for _, _, k in pairs.pairs])
    neg_mask = np.isin(kinds, NEGATIVE_KINDS)
    pos_mask = np.isin(kinds, POSITIVE_KINDS)
    seed_mask = kinds == "neg-seeds"
    n_neg = {k: int(np.sum(kinds == k)) for k in NEGATIVE_KINDS}
    print(
        f"{len(pairs.sources)} sources (trafilatura-eval bodies >= {MIN_WORDS} words), one pair"
        f" per source and kind; edit changes {100 * info['edit_share']:.0f}% of the words on"
        f" average, lede {100 * info['lede_share']:.0f}%.\nHard negatives: "
        + ", ".join(f"{k} {v}" for k, v in n_neg.items())
        + f" ({info['dropped']:.0f} nearest pairs over w5 0.5 left out as duplicates)."
        f" MinHash: datasketch, {NUM_PERM} perms, affine32, xxh32 of shingle bytes.\n"
    )

    def row(name: str, cells: Sequence[str], width: int = 10) -> None:
        print(f"{name:<5}" + "".join(f"{c:>{width}}" for c in cells))

    print("1. Exact Jaccard: positives mean/p5; negatives mean, p99, max, max of the seed pairs;")
    print("   mean estimate over all pairs of sources (background)")
    row("rep", [*POSITIVE_KINDS, "neg mean", "neg p99", "neg max", "seeds max", "bg mean"])
    for r in results:
        cells = [
            f"{np.mean(r.exact[kinds == k]):.2f}/{pct(r.exact[kinds == k], 5):.2f}"
            for k in POSITIVE_KINDS
        ]
        neg = r.exact[neg_mask]
        cells += [f"{np.mean(neg):.3f}", f"{pct(neg, 99):.3f}", f"{np.max(neg):.3f}"]
        cells += [f"{np.max(r.exact[seed_mask]):.3f}", f"{r.background:.3f}"]
        row(r.rep.name, cells)

    cuts = {r.rep.name: best_cut(r.exact[pos_mask], r.exact[neg_mask]) for r in results}
    print(
        "\n2. Best threshold t: as many MinHash deviations below the positives' 1st percentile"
        " (pos p1) as above the\n   highest negative (z: the gap in deviations). Recall % per"
        " kind at t, exact/estimate; est<t: positives whose\n   estimate is below t, %; neg>=t:"
        " negatives at or above t, exact/estimate, %; LSH: bands x rows for t;\n   cand: % of"
        " all pairs of sources that share an LSH bucket"
    )
    row(
        "rep",
        ["pos p1", "neg max", "z", "t", *POSITIVE_KINDS, "est<t", "neg>=t", "LSH", "cand"],
        width=8,
    )
    candidates: dict[str, float] = {}
    for r in results:
        cut = cuts[r.rep.name]
        bands, rows = fp.lsh_params(cut.t, NUM_PERM)
        candidates[r.rep.name] = 100 * candidate_rate(r.source_sigs, cut.t)
        cells = [f"{cut.low_pos:.3f}", f"{cut.high_neg:.3f}", f"{cut.z:.1f}", f"{cut.t:.3f}"]
        for k in POSITIVE_KINDS:
            mask = kinds == k
            cells.append(
                f"{100 * np.mean(r.exact[mask] >= cut.t):.0f}/"
                f"{100 * np.mean(r.estimate[mask] >= cut.t):.0f}"
            )
        cells.append(f"{100 * np.mean(r.estimate[pos_mask] < cut.t):.2f}")
        cells.append(
            f"{100 * np.mean(r.exact[neg_mask] >= cut.t):.1f}/"
            f"{100 * np.mean(r.estimate[neg_mask] >= cut.t):.1f}"
        )
        cells += [f"{bands}x{rows}", f"{candidates[r.rep.name]:.1f}"]
        row(r.rep.name, cells, width=8)

    print(
        f"\n3. MinHash recall %: per kind and all at the service's threshold {SERVICE_THRESHOLD}"
        " (settings.dedup_threshold), negatives >= it %;\n   at lower thresholds (LSH bands x"
        " rows): recall of all positives / % of all source pairs made LSH candidates"
    )
    operating = (0.7, 0.6, 0.5, 0.4)
    points = (SERVICE_THRESHOLD, *operating)
    shapes = {t: "x".join(map(str, fp.lsh_params(t, NUM_PERM))) for t in points}
    print(
        f"{'rep':<5}"
        + "".join(f"{c:>8}" for c in [*POSITIVE_KINDS, "all", "neg>=t"])
        + "".join(f"{f'{t} {shapes[t]}':>12}" for t in operating)
    )
    rates = {
        (r.rep.name, t): 100 * candidate_rate(r.source_sigs, t) for r in results for t in points
    }

    def recall(r: RepResult, kind: str, t: float) -> float:
        """% of the pairs of ``kind`` (all positives for "all") whose estimate reaches t."""
        mask = pos_mask if kind == "all" else kinds == kind
        return 100 * float(np.mean(r.estimate[mask] >= t))

    for r in results:
        cells = [f"{recall(r, k, SERVICE_THRESHOLD):.0f}" for k in POSITIVE_KINDS]
        cells.append(f"{recall(r, 'all', SERVICE_THRESHOLD):.1f}")
        cells.append(f"{100 * np.mean(r.estimate[neg_mask] >= SERVICE_THRESHOLD):.1f}")
        cells += [f"{recall(r, 'all', t):.1f}/{rates[r.rep.name, t]:.1f}" for t in operating]
        print(
            f"{r.rep.name:<5}"
            + "".join(f"{c:>8}" for c in cells[:-4])
            + "".join(f"{c:>12}" for c in cells[-4:])
        )

    print(
        "\n4. Containment: mean exact/estimated Jaccard, the highest estimate, % with an estimate"
        f" >= {SERVICE_THRESHOLD} and >= the\n   representation's t from table 2; cost: distinct"
        f" shingles per 1000 words, CPU ms per {TIMED_ARTICLES} sources to shingle, to MinHash"
    )
    row(
        "rep",
        [
            *CONTAINMENT_KINDS,
            "est max",
            f">={SERVICE_THRESHOLD}",
            ">=t",
            "sh/kword",
            "shingle",
            "minhash",
        ],
        width=10,
    )
    cont_mask = np.isin(kinds, CONTAINMENT_KINDS)
    for r in results:
        cells = [
            f"{np.mean(r.exact[kinds == k]):.2f}/{np.mean(r.estimate[kinds == k]):.2f}"
            for k in CONTAINMENT_KINDS
        ]
        cells += [
            f"{np.max(r.estimate[cont_mask]):.2f}",
            f"{100 * np.mean(r.estimate[cont_mask] >= SERVICE_THRESHOLD):.1f}",
            f"{100 * np.mean(r.estimate[cont_mask] >= cuts[r.rep.name].t):.0f}",
            f"{r.per_kwords:.0f}",
            f"{r.shingle_ms:.0f}",
            f"{r.minhash_ms:.0f}",
        ]
        row(r.rep.name, cells, width=10)

    # Widest separation: the largest z among representations whose t keeps LSH candidates
    # rare; gaps within Z_TIES count as equal, then the fewest candidates wins.
    affordable = [r for r in results if candidates[r.rep.name] <= MAX_CANDIDATE_PCT] or results
    widest = max(cuts[r.rep.name].z for r in affordable)
    sep = min(
        (r for r in affordable if cuts[r.rep.name].z >= widest - Z_TIES),
        key=lambda r: (candidates[r.rep.name], r.per_kwords),
    )
    print(
        f"\nWidest separation: {sep.rep.name} (z {cuts[sep.rep.name].z:.1f} at t"
        f" {cuts[sep.rep.name].t:.2f}, LSH candidates {candidates[sep.rep.name]:.1f}% of pairs)."
    )

    # Operating point: the highest threshold (cheapest LSH) at which a representation keeps
    # MIN_RECALL of the positives with no negative over it and few candidates; among those,
    # the one whose highest negative lies most MinHash deviations below the threshold.
    w5 = next(r for r in results if r.rep.name == "w5")
    for t in points:
        ok = [
            r
            for r in results
            if recall(r, "all", t) >= MIN_RECALL
            and not np.any(r.estimate[neg_mask] >= t)
            and rates[r.rep.name, t] <= MAX_CANDIDATE_PCT
        ]
        if not ok:
            continue
        best = max(
            ok, key=lambda r: (t - cuts[r.rep.name].high_neg) / sigma(cuts[r.rep.name].high_neg)
        )
        high = cuts[best.rep.name].high_neg
        print(
            f"Recommendation: {best.rep.name} at threshold {t} (LSH {shapes[t]}):"
            f" MinHash recall {recall(best, 'all', t):.1f}% (typo3 {recall(best, 'typo3', t):.0f}%,"
            f" combo {recall(best, 'combo', t):.0f}%, edit {recall(best, 'edit', t):.0f}%),"
            f" highest negative {high:.2f} = {(t - high) / sigma(high):.0f} deviations below t,"
            f" candidates {rates[best.rep.name, t]:.1f}% of pairs; also matched: superset"
            f" {recall(best, 'superset', t):.0f}%, excerpt {recall(best, 'excerpt', t):.0f}%;"
            f" today's w5 at"
            f" {SERVICE_THRESHOLD} keeps {recall(w5, 'all', SERVICE_THRESHOLD):.0f}% (typo1"
            f" {recall(w5, 'typo1', SERVICE_THRESHOLD):.0f}%); cost {best.per_kwords:.0f} vs"
            f" {w5.per_kwords:.0f} shingles/kword."
        )
        return
    print(f"Recommendation: {sep.rep.name} at {cuts[sep.rep.name].t:.2f} (no cheaper point).")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--sources", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    bodies = load_sources(args.sources, args.seed, args.workers)
    pairs, info = build_pairs(bodies, load_seeds(), args.seed)

    global _PAIRS
    _PAIRS = pairs
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        results = pool.map(measure, REPS, chunksize=1)
    report(results, pairs, info)
    print(f"\n(ran in {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
