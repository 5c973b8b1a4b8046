"""Fingerprints of a cleaned body: exact hash, shingles, MinHash signature, LSH bands, anchors.

Pure and synchronous; runs in the worker processes. Signatures are datasketch ``MinHash``
values (scheme ``affine32``, ``hashfunc`` :func:`service.minhash.shingle_hash` of the
shingle's text), so anything stored can be checked with datasketch itself; they are computed
with numpy by :mod:`service.minhash`, which gives the same bytes faster.

Shingles are character 7-grams of the normalised body by default. Word shingles break on
every typo: at a 2% character error rate only about a third of 5-word shingles survive, so a
copy with typos scores a Jaccard of ~0.35, while its character 7-grams keep ~0.76. Different
stories stay far apart in either (at most 0.13 in ``bench/noise_study.py``), so the default
threshold is 0.5, with containment telling excerpts and supersets from copies.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from math import ceil, comb

import numpy as np
import xxhash
from datasketch import MinHash

from . import minhash as fast

# Bump when normalisation or tokenisation changes: stored signatures stop being comparable.
TOKENIZER_VERSION = "casefold-v2"
MINHASH_SCHEME = "affine32"
MINHASH_SEED = 1
SHINGLE_HASH = fast.HASH_NAME

_QUOTES = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"', "\u2039": "'", "\u203a": "'",
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u00a0": " ",
}  # fmt: skip
# A regex finds the few quotes of a body at C speed; str.translate with a table looks up
# every character of a non-ASCII string in a dict (0.29 against 0.02 ms at 4.5 KB).
_QUOTE = re.compile("|".join(map(re.escape, _QUOTES)))
_UPDATE_SLICE = 1 << 16
_WORD = re.compile(r"\w+")

# Anchors: the word 4-grams whose hash is 0 modulo ANCHOR_RATE, a sample that is the same
# whichever document a passage appears in. Two documents share the anchors of the passages
# they share, so the fraction of one's anchors found in the other estimates how much of it
# the other contains: what tells an excerpt or a superset, which MinHash cannot find when
# the sizes differ (a teaser a quarter of its story's length has a Jaccard of about 0.25).
ANCHOR_WORDS = 4
ANCHOR_RATE = 16
MAX_ANCHORS = 256
ANCHOR_SCHEME = f"w{ANCHOR_WORDS}-{fast.HASH_NAME}-mod{ANCHOR_RATE}-max{MAX_ANCHORS}"

SHINGLE_UNITS = ("chars", "words")


def normalise(text: str) -> str:
    """The canonical form of a body for hashing: NFC, plain quotes and dashes, casefolded,
    whitespace collapsed. Two bodies that differ only in those respects hash alike."""
    if text.isascii():
        # Already NFC, no quote to map, and casefold is lower for ASCII.
        return " ".join(text.lower().split())
    text = _QUOTE.sub(_plain_quote, unicodedata.normalize("NFC", text)).casefold()
    # casefold can expand a letter ("ß" -> "ss") that a following accent then composes with,
    # so compose again: otherwise "SS\u0301" and "\u00df\u0301" would hash differently.
    text = unicodedata.normalize("NFC", text)
    # str.split() splits on exactly the characters \s matches in a str pattern.
    return " ".join(text.split())


def _plain_quote(match: re.Match[str]) -> str:
    return _QUOTES[match.group()]


def content_hash(normalised: str) -> str:
    """sha256 of the normalised body, hex."""
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def words(normalised: str) -> list[str]:
    return _WORD.findall(normalised)


def shingles(tokens: Sequence[str], size: int) -> set[bytes]:
    """Distinct word ``size``-grams; a text shorter than ``size`` words is one shingle."""
    if not tokens:
        return set()
    if len(tokens) <= size:
        return {" ".join(tokens).encode("utf-8")}
    return {" ".join(tokens[i : i + size]).encode("utf-8") for i in range(len(tokens) - size + 1)}


@cache
def _template(num_perm: int) -> MinHash:
    # Permutation parameters depend only on (num_perm, seed); make them once per process.
    return MinHash(num_perm=num_perm, seed=MINHASH_SEED, hashfunc=fast.hashfunc, scheme="affine32")


def minhash(items: set[bytes], num_perm: int) -> MinHash:
    """datasketch MinHash of a shingle set."""
    template = _template(num_perm)
    mh = MinHash(
        seed=MINHASH_SEED,
        hashfunc=fast.hashfunc,
        permutations=template.permutations,
        num_perm=num_perm,
        scheme="affine32",
    )
    ordered = list(items)
    # update_batch builds a (shingles x num_perm) matrix: feeding it in slices gives the same
    # minimum with memory bounded per slice (a 10 MB article would otherwise take ~2 GB).
    for start in range(0, len(ordered), _UPDATE_SLICE):
        mh.update_batch(ordered[start : start + _UPDATE_SLICE])
    return mh


def signature_bytes(mh: MinHash) -> bytes:
    """The signature as packed little-endian uint32, the form the Lua script compares."""
    return np.asarray(mh.hashvalues, dtype="<u4").tobytes()


def signature_from_bytes(data: bytes) -> MinHash:
    values = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    return MinHash(
        seed=MINHASH_SEED,
        hashfunc=fast.hashfunc,
        hashvalues=values,
        permutations=_template(len(values)).permutations,
        scheme="affine32",
    )


def band_digests(sig: bytes, bands: int, rows: int) -> list[str]:
    """One bucket digest per band: xxh3-64 of the band's packed rows, hex."""
    step = rows * 4
    return [xxhash.xxh3_64_hexdigest(sig[i * step : (i + 1) * step]) for i in range(bands)]


def estimated_jaccard(a: bytes, b: bytes) -> float:
    """Fraction of equal signature positions: what the Lua script computes server-side."""
    va = np.frombuffer(a, dtype="<u4")
    vb = np.frombuffer(b, dtype="<u4")
    if len(va) != len(vb):
        raise ValueError(f"signatures differ in length: {len(va)} vs {len(vb)} permutations")
    return float(np.count_nonzero(va == vb)) / len(va)


def _collision_probability(s: np.ndarray, bands: int, rows: int) -> np.ndarray:
    result: np.ndarray = 1.0 - (1.0 - s**rows) ** bands
    return result


def match_probability(similarity: float, bands: int, rows: int) -> float:
    """Probability that two sets of this Jaccard similarity share at least one bucket."""
    return float(_collision_probability(np.array(similarity), bands, rows))


def verified_probability(similarity: float, num_perm: int, threshold: float) -> float:
    """Probability that the signature estimate of a pair of this Jaccard similarity reaches
    ``threshold``: each of the ``num_perm`` positions agrees with probability ``similarity``."""
    need = ceil(threshold * num_perm - 1e-9)
    return float(
        sum(
            comb(num_perm, k) * similarity**k * (1 - similarity) ** (num_perm - k)
            for k in range(need, num_perm + 1)
        )
    )


# Where LSH recall is required: this many standard deviations of the signature estimate
# above the threshold. Below it, the verification itself matches a pair only part of the time
# (exactly at the threshold, half the time), so banding for full recall there would buy little
# and cost much: every extra band multiplies the strangers that become candidates.
RECALL_MARGIN_SD = 2.0


@cache
def lsh_params(threshold: float, num_perm: int, min_recall: float = 0.97) -> tuple[int, int]:
    """Bands and rows: the most rows per band (fewest candidates) that still make a pair that
    the signature estimate reliably puts above ``threshold`` (``RECALL_MARGIN_SD`` deviations
    above it) share a bucket with probability ``min_recall`` or more.

    At 0.5 and 128 permutations that is 32 bands x 4 rows, where banding for recall exactly at
    0.5 would take 42 x 3. At the ~0.013 similarity of unrelated news (bench/noise_study.py),
    42 x 3 makes about a hundred times more strangers candidates (42 s^3 against 32 s^4).
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if num_perm < 2:
        raise ValueError(f"num_perm must be at least 2 for LSH banding, got {num_perm}")
    deviation = (threshold * (1 - threshold) / num_perm) ** 0.5
    target = min(1.0, threshold + RECALL_MARGIN_SD * deviation)
    best = (num_perm, 1)  # one row per band: every shared value is a candidate
    for rows in range(1, num_perm // 2 + 1):
        bands = num_perm // rows
        if match_probability(target, bands, rows) >= min_recall:
            best = (bands, rows)
    return best


def anchors(tokens: Sequence[str]) -> list[str]:
    """The document's anchors as hex digests, smallest first, at most MAX_ANCHORS.

    Past the cap, keeping the smallest hashes keeps the sample consistent between documents.
    """
    hashes = fast.word_shingle_hashes(tokens, ANCHOR_WORDS)
    kept = np.unique(hashes[hashes % ANCHOR_RATE == 0])[:MAX_ANCHORS]
    return [f"{int(h):08x}" for h in kept]


def shingle_hashes(norm: str, tokens: Sequence[str], unit: str, size: int) -> np.ndarray:
    """The hash of every shingle of a normalised body, repeats included (a set's worth for
    MinHash): character ``size``-grams of the string, or word ``size``-grams."""
    if unit == "chars":
        return fast.char_shingle_hashes(norm, size)
    if unit == "words":
        return fast.word_shingle_hashes(tokens, size)
    raise ValueError(f"shingle unit must be one of {SHINGLE_UNITS}, got {unit!r}")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    content_hash: str
    signature: bytes
    bands: list[str]
    shingle_count: int
    word_count: int
    anchors: list[str]


def fingerprint(
    body: str, *, num_perm: int, shingle_size: int, threshold: float, shingle_unit: str = "chars"
) -> Fingerprint:
    """Everything the index needs to decide on a cleaned body."""
    norm = normalise(body)
    tokens = words(norm)
    hashes = np.sort(shingle_hashes(norm, tokens, shingle_unit, shingle_size))
    distinct = hashes[np.flatnonzero(hashes[1:] != hashes[:-1]) + 1] if len(hashes) else hashes
    distinct = np.concatenate((hashes[:1], distinct))
    sig = fast.signature(distinct, num_perm)
    bands, rows = lsh_params(threshold, num_perm)
    return Fingerprint(
        content_hash=content_hash(norm),
        signature=sig,
        bands=band_digests(sig, bands, rows),
        # Distinct 32-bit hashes: a collision undercounts by one, a rounding error for the
        # size ratios the index compares.
        shingle_count=len(distinct),
        word_count=len(tokens),
        anchors=anchors(tokens),
    )


# The entries of index_meta that settings choose (bands and rows follow from the threshold);
# the others are how this version of the service computes and stores fingerprints.
SETTABLE_META = frozenset({"num_perm", "shingle_unit", "shingle_size", "bands", "rows"})


def index_meta(
    *, num_perm: int, shingle_size: int, threshold: float, shingle_unit: str = "chars"
) -> dict[str, str]:
    """The parameters stored beside the index; signatures made otherwise are not comparable."""
    bands, rows = lsh_params(threshold, num_perm)
    return {
        "scheme": MINHASH_SCHEME,
        "seed": str(MINHASH_SEED),
        "shingle_hash": SHINGLE_HASH,
        "tokenizer": TOKENIZER_VERSION,
        "num_perm": str(num_perm),
        "shingle_unit": shingle_unit,
        "shingle_size": str(shingle_size),
        "bands": str(bands),
        "rows": str(rows),
        "anchors": ANCHOR_SCHEME,
        # v3: band and anchor digests are stored binary, not hex (scripts/decide.lua).
        "layout": "epoch-hashes-v3",
        "datasketch": "2.0.0",
    }
