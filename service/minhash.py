"""MinHash signatures bit-identical to datasketch's ``affine32`` scheme, computed with numpy.

datasketch 2.0's ``affine32`` signature of a set of 32-bit shingle hashes ``h`` is, for each
permutation ``k``, ``min(a[k] * fmix32(h) + b[k])`` in uint32 arithmetic (wrapping modulo
2**32, no Mersenne prime: that is the ``legacy`` scheme), or 2**32 - 1 everywhere for the
empty set. ``(a, b)`` come from datasketch itself, so a signature made here is the one
``MinHash.update_batch`` would make with :func:`shingle_hash` as its ``hashfunc``, and stays
readable by datasketch.

The shingle hash (``HASH_NAME``) is a polynomial over the shingle's code points modulo 2**64,
finished by MurmurHash3's 64-bit mixer and folded to 32 bits; :func:`shingle_hash` is its
definition, one shingle at a time. It replaced xxh32 because every shingle of a text, of any
length, can then be hashed from one prefix sum over the text: about twenty numpy steps over
the text's code points, where xxh32 vectorised took a gather per 4-byte round of the longest
shingle (``bench/hashing.py`` measures both).

Pure and synchronous, like ``service.fingerprint``. Besides one uint32 per shingle, the
temporaries of a call are bounded by the block sizes below, whatever the length of the text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Final

import numpy as np
import numpy.typing as npt
from datasketch import MinHash

U32Array = npt.NDArray[np.uint32]
U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]

SCHEME: Final = "affine32"
SEED: Final = 1
MAX_HASH: Final = 0xFFFFFFFF
HASH_NAME: Final = "poly64-fmix64-xor32"

# The (num_perm x width) block of permuted values is the only large temporary of
# `signature`: 2**19 uint32 is 2 MB, about the L2 size, and at 128 permutations a width of
# 4096 shingles. Wider blocks measured no faster, narrower ones pay numpy's per-call cost.
_BLOCK_ELEMENTS: Final = 1 << 19
# Text is shingled and hashed this many shingles at a time, so a multi-megabyte body never
# holds more than one window of prefix sums and temporaries besides the output hashes.
_WINDOW: Final = 1 << 16
# The same bound for word shingles, in characters of their joined text.
_WINDOW_CHARS: Final = 1 << 18
# numpy requires its ufunc buffer size to be a multiple of this many elements.
_BUFSIZE_QUANTUM: Final = 16

_M64: Final = (1 << 64) - 1
# Odd, so that multiplying by it is invertible modulo 2**64 (the prefix sums divide by its
# powers); the golden-ratio constant spreads every code point over all 64 bits.
_BASE: Final = 0x9E3779B97F4A7C15
_BASE_INV: Final = pow(_BASE, -1, 1 << 64)
_MIX1: Final = 0xFF51AFD7ED558CCD
_MIX2: Final = 0xC4CEB9FE1A85EC53


def shingle_hash(shingle: str) -> int:
    """The 32-bit hash of one shingle: what the vectorised functions below compute for each.

    ``h = h * B + (code point + 1)`` over the shingle modulo 2**64 (the + 1 keeps a leading
    U+0000 from hashing like nothing), MurmurHash3's fmix64, then high ^ low 32 bits.
    """
    h = 0
    for ch in shingle:
        h = (h * _BASE + ord(ch) + 1) & _M64
    h ^= h >> 33
    h = (h * _MIX1) & _M64
    h ^= h >> 33
    h = (h * _MIX2) & _M64
    h ^= h >> 33
    return (h >> 32) ^ (h & MAX_HASH)


@cache
def permutations(num_perm: int) -> tuple[U32Array, U32Array]:
    """datasketch's ``(a, b)`` for ``num_perm`` permutations at seed 1, as read-only
    ``(num_perm, 1)`` columns.

    Taken from a datasketch ``MinHash`` rather than re-derived from its RNG calls, so a change
    in how datasketch draws them shows up as a test failure instead of silent drift.
    """
    if num_perm < 1:
        raise ValueError(f"num_perm must be positive, got {num_perm}")
    a, b = MinHash(num_perm=num_perm, seed=SEED, scheme=SCHEME).permutations
    columns = []
    for values in (a, b):
        column = np.array(values, dtype=np.uint32).reshape(num_perm, 1)
        column.flags.writeable = False  # shared by every caller in the process
        columns.append(column)
    return columns[0], columns[1]


def shingle_hashes(items: Iterable[bytes]) -> U32Array:
    """:func:`shingle_hash` of each utf-8 item, in iteration order: the one-at-a-time way, as
    datasketch's ``hashfunc`` sees shingles (for tests and tools; the service hashes whole
    texts with the functions below)."""
    return np.fromiter(map(hashfunc, items), dtype=np.uint32)


def hashfunc(item: bytes) -> int:
    """:func:`shingle_hash` of a utf-8 shingle: datasketch's ``hashfunc`` for these signatures."""
    return shingle_hash(item.decode("utf-8", "surrogatepass"))


def word_shingle_hashes(tokens: Sequence[str], size: int) -> U32Array:
    """The hash of every word ``size``-gram ``" ".join(tokens[i : i + size])``, one per
    position (repeats included); a text of ``size`` words or fewer is one shingle.

    The distinct values are the hashes of ``service.fingerprint.shingles(tokens, size)``.
    """
    if size < 1:
        raise ValueError(f"shingle size must be positive, got {size}")
    if not tokens:
        return np.empty(0, dtype=np.uint32)
    count = max(1, len(tokens) - size + 1)
    out = np.empty(count, dtype=np.uint32)
    for lo in range(0, count, _WINDOW):
        hi = min(lo + _WINDOW, count)
        out[lo:hi] = _word_window(tokens[lo : hi + size - 1], size)
    return out


def _word_window(tokens: Sequence[str], size: int) -> U32Array:
    # Each shingle is a slice of the joined tokens, from its first token's start to its last
    # token's end: where the tokens lie follows from their lengths, whatever they hold.
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    starts = np.zeros(len(tokens), dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=starts[1:])
    ends = starts + lengths
    if len(tokens) <= size:
        first, last = starts[:1], ends[-1:]
    else:
        first, last = starts[: len(tokens) - size + 1], ends[size - 1 :]
    joined = " ".join(tokens)
    out = np.empty(len(first), dtype=np.uint32)
    # Shingles are hashed a run at a time, each run's text at most _WINDOW_CHARS long: the
    # prefix sums take 40 bytes a character, and a token may be megabytes long. Both ends
    # only grow from one shingle to the next, so a run is found by bisection.
    i = 0
    while i < len(first):
        if last[i] - first[i] > _WINDOW_CHARS:
            out[i] = _long_hash(joined, int(first[i]), int(last[i]))
            i += 1
            continue
        j = int(np.searchsorted(last, first[i] + _WINDOW_CHARS, side="right"))
        base = int(first[i])
        codes = _codes(joined[base : int(last[j - 1])])
        out[i:j] = _finish(_polynomials(codes, first[i:j] - base, last[i:j] - base))
        i = j
    return out


def char_shingle_hashes(text: str, size: int) -> U32Array:
    """The hash of every ``text[i : i + size]``, one per position (repeats included); a
    non-empty text of ``size`` characters or fewer is one shingle."""
    if size < 1:
        raise ValueError(f"shingle size must be positive, got {size}")
    if not text:
        return np.empty(0, dtype=np.uint32)
    count = max(1, len(text) - size + 1)
    out = np.empty(count, dtype=np.uint32)
    for lo in range(0, count, _WINDOW):
        hi = min(lo + _WINDOW, count)
        window = text[lo : hi + size - 1]
        starts = np.arange(hi - lo, dtype=np.int64)
        ends = starts + min(size, len(window))
        out[lo:hi] = _finish(_polynomials(_codes(window), starts, ends))
    return out


def _codes(text: str) -> U64Array:
    """Each code point of ``text`` plus one, as uint64 (a lone surrogate is one code point)."""
    raw = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    codes = raw.astype(np.uint64)
    codes += np.uint64(1)
    return codes


def _polynomials(codes: U64Array, starts: I64Array, ends: I64Array) -> U64Array:
    """The polynomial (before mixing) of ``codes[s:e]`` for each pair, from one prefix sum."""
    # With S[m] = sum(c[j] * B**-(j + 1) for j < m), the polynomial of c[s:e] is
    # B**e * (S[e] - S[s]) modulo 2**64: uint64 arithmetic wraps exactly so.
    n = len(codes)
    inverse = np.full(n, _BASE_INV, dtype=np.uint64)
    np.multiply.accumulate(inverse, out=inverse)
    prefix = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(codes * inverse, out=prefix[1:])
    powers = np.full(n + 1, _BASE, dtype=np.uint64)
    powers[0] = 1
    np.multiply.accumulate(powers, out=powers)
    h = prefix[ends]
    h -= prefix[starts]
    h *= powers[ends]
    return h


def _finish(h: U64Array) -> U32Array:
    """fmix64, then high ^ low 32 bits; ``h`` is overwritten."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(_MIX1)
    h ^= h >> np.uint64(33)
    h *= np.uint64(_MIX2)
    h ^= h >> np.uint64(33)
    h ^= h >> np.uint64(32)
    return h.astype(np.uint32)


def _long_hash(text: str, start: int, end: int) -> int:
    """:func:`shingle_hash` of ``text[start:end]``, one bounded piece at a time."""
    h = 0
    for lo in range(start, end, _WINDOW_CHARS):
        piece = text[lo : min(end, lo + _WINDOW_CHARS)]
        (raw,) = _polynomials(_codes(piece), np.zeros(1, np.int64), np.full(1, len(piece))).tolist()
        h = (h * pow(_BASE, len(piece), 1 << 64) + raw) & _M64
    return int(_finish(np.array([h], dtype=np.uint64))[0])


def _fmix32(x: U32Array) -> None:
    """MurmurHash3's finaliser, which datasketch applies to every input hash once; in place."""
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    x ^= x >> np.uint32(16)


def _layout(count: int, num_perm: int) -> tuple[int, int]:
    """Block width and number of blocks for ``count`` hashes: the width a multiple of
    ``_BUFSIZE_QUANTUM``, ``num_perm * width`` within ``_BLOCK_ELEMENTS`` unless one quantum
    alone exceeds it, and blocks of equal width so one numpy buffer size fits them all."""
    quanta = -(-count // _BUFSIZE_QUANTUM)
    max_quanta = max(1, _BLOCK_ELEMENTS // (num_perm * _BUFSIZE_QUANTUM))
    blocks = -(-quanta // max_quanta)
    width = -(-quanta // blocks) * _BUFSIZE_QUANTUM
    return width, blocks


def _block_min(a: U32Array, b: U32Array, mixed: U32Array, block: U32Array) -> U32Array:
    np.multiply(a, mixed, out=block)
    block += b
    column_min: U32Array = np.minimum.reduce(block, axis=1)
    return column_min


def signature(hashes: U32Array, num_perm: int) -> bytes:
    """The ``affine32`` MinHash signature of a set of shingle hashes, as packed little-endian
    uint32: what ``signature_bytes(minhash(items, num_perm))`` gives for the items hashed.

    Order and repeats in ``hashes`` do not matter, as for a set.
    """
    a, b = permutations(num_perm)
    if not isinstance(hashes, np.ndarray) or hashes.dtype != np.uint32 or hashes.ndim != 1:
        raise TypeError("hashes must be a one-dimensional uint32 array")
    if not len(hashes):
        return np.full(num_perm, MAX_HASH, dtype="<u4").tobytes()
    width, blocks = _layout(len(hashes), num_perm)
    mixed = np.empty(width * blocks, dtype=np.uint32)
    mixed[: len(hashes)] = hashes
    # Repeating a hash already present leaves every minimum unchanged, so padding to whole
    # blocks is free in correctness and spares a ragged last block.
    mixed[len(hashes) :] = hashes[0]
    _fmix32(mixed)
    block = np.empty((num_perm, width), dtype=np.uint32)
    # Below its buffer size, numpy copies broadcast operands through buffers (3-5x slower on
    # numpy 2.4 at a few hundred shingles); a buffer of exactly one block row avoids that.
    # The setting is per thread and context, and restored before returning.
    previous = np.setbufsize(width)
    try:
        best = _block_min(a, b, mixed[:width], block)
        for start in range(width, len(mixed), width):
            np.minimum(best, _block_min(a, b, mixed[start : start + width], block), out=best)
    finally:
        np.setbufsize(previous)
    return best.astype("<u4", copy=False).tobytes()
