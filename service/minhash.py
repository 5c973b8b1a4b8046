"""MinHash signatures bit-identical to datasketch's ``affine32`` scheme, computed with numpy.

datasketch 2.0's ``affine32`` signature of a set of 32-bit shingle hashes ``h`` is, for each
permutation ``k``, ``min(a[k] * fmix32(h) + b[k])`` in uint32 arithmetic (wrapping modulo
2**32, no Mersenne prime: that is the ``legacy`` scheme), or 2**32 - 1 everywhere for the
empty set. ``(a, b)`` come from datasketch itself, so a signature made here is the one
``MinHash.update_batch`` would make, and stays readable by datasketch.

Shingle hashes are xxh32 (seed 0) of each shingle's utf-8 bytes, as in
``service.fingerprint``. The helpers here hash shingles without building a ``bytes`` object
per shingle where that is faster: word shingles as slices of one encoded buffer, character
shingles with xxh32 itself vectorised over spans of that buffer.

Pure and synchronous, like ``service.fingerprint``. Besides one uint32 per shingle, the
temporaries of a call are bounded by the block sizes below, whatever the length of the text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Sized
from functools import cache
from typing import Final

import numpy as np
import numpy.typing as npt
import xxhash
from datasketch import MinHash

U32Array = npt.NDArray[np.uint32]
I64Array = npt.NDArray[np.int64]

SCHEME: Final = "affine32"
SEED: Final = 1
MAX_HASH: Final = 0xFFFFFFFF

# The (num_perm x width) block of permuted values is the only large temporary of
# `signature`: 2**19 uint32 is 2 MB, about the L2 size, and at 128 permutations a width of
# 4096 shingles. Wider blocks measured no faster, narrower ones pay numpy's per-call cost.
_BLOCK_ELEMENTS: Final = 1 << 19
# Text is shingled and hashed this many shingles at a time, so a multi-megabyte body never
# holds more than one window of spans and temporaries besides the output hashes.
_WINDOW: Final = 1 << 16
# xxh32 vectorised runs one numpy step per 16-byte stripe of the longest span: beyond this
# length, a span is cheaper to hash on its own (a pathological 1 MB "word" would otherwise
# cost 65536 numpy steps).
_MAX_VECTOR_SPAN: Final = 256
# numpy requires its ufunc buffer size to be a multiple of this many elements.
_BUFSIZE_QUANTUM: Final = 16
# Spans shorter than a round still read that round's word or byte, whose value is then
# discarded: the furthest such read is a 4-byte word starting at the end of the data.
_READ_PAST_END: Final = 4

_P1: Final = np.uint32(0x9E3779B1)
_P2: Final = np.uint32(0x85EBCA77)
_P3: Final = np.uint32(0xC2B2AE3D)
_P4: Final = np.uint32(0x27D4EB2F)
_P5: Final = np.uint32(0x165667B1)
_LANE_INIT: Final = np.array(
    [(0x9E3779B1 + 0x85EBCA77) & MAX_HASH, 0x85EBCA77, 0, -0x9E3779B1 & MAX_HASH], dtype=np.uint32
)
_LANE_OFFSETS: Final = np.array([0, 4, 8, 12], dtype=np.int64)
_LANE_ROTATIONS: Final = np.array([1, 7, 12, 18], dtype=np.uint32)


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
    """xxh32 (seed 0) of each item, in iteration order."""
    count = len(items) if isinstance(items, Sized) else -1
    return np.fromiter(map(xxhash.xxh32_intdigest, items), dtype=np.uint32, count=count)


def word_shingle_hashes(tokens: Sequence[str], size: int) -> U32Array:
    """xxh32 of every word ``size``-gram ``" ".join(tokens[i : i + size])`` in utf-8, one per
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
    data = " ".join(tokens).encode("utf-8")
    spaces = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord(" "))
    if len(spaces) != len(tokens) - 1:
        # A token holds a space itself, so spaces no longer mark token boundaries.
        return _joined_hashes(tokens, size)
    if len(tokens) <= size:
        return shingle_hashes([data])
    # Every shingle is a slice of the joined buffer: from just after the space before its
    # first word to the space after its last word.
    count = len(tokens) - size + 1
    starts = [0, *(spaces[: count - 1] + 1).tolist()]
    ends = [*spaces[size - 1 :].tolist(), len(data)]
    digest = xxhash.xxh32_intdigest
    hashes = [digest(data[s:e]) for s, e in zip(starts, ends, strict=True)]
    return np.array(hashes, dtype=np.uint32)


def _joined_hashes(tokens: Sequence[str], size: int) -> U32Array:
    if len(tokens) <= size:
        return shingle_hashes([" ".join(tokens).encode("utf-8")])
    grams = (" ".join(tokens[i : i + size]).encode("utf-8") for i in range(len(tokens) - size + 1))
    return np.fromiter(
        map(xxhash.xxh32_intdigest, grams), dtype=np.uint32, count=len(tokens) - size + 1
    )


def char_shingle_hashes(text: str, size: int) -> U32Array:
    """xxh32 of every ``text[i : i + size]`` in utf-8, one per position (repeats included); a
    non-empty text of ``size`` characters or fewer is one shingle."""
    if size < 1:
        raise ValueError(f"shingle size must be positive, got {size}")
    if not text:
        return np.empty(0, dtype=np.uint32)
    count = max(1, len(text) - size + 1)
    out = np.empty(count, dtype=np.uint32)
    for lo in range(0, count, _WINDOW):
        hi = min(lo + _WINDOW, count)
        out[lo:hi] = _char_window(text[lo : hi + size - 1], size)
    return out


def _char_window(text: str, size: int) -> U32Array:
    data = text.encode("utf-8")
    count = max(1, len(text) - size + 1)
    width = min(size, len(text))
    if len(data) == len(text):
        starts = np.arange(count, dtype=np.int64)
        return xxh32_spans(data, starts, starts + width)
    # Byte offset of every character (the bytes that do not continue a utf-8 sequence),
    # and of the end.
    lead = np.frombuffer(data, dtype=np.uint8) & 0xC0 != 0x80
    offsets = np.append(np.flatnonzero(lead), len(data))
    return xxh32_spans(data, offsets[:count], offsets[width : width + count])


def xxh32_spans(data: bytes, starts: I64Array, ends: I64Array) -> U32Array:
    """xxh32 (seed 0) of ``data[s:e]`` for each pair, computed with numpy across the spans.

    Worth it for many short spans (character n-grams); for a few hundred word shingles a
    Python loop over ``xxhash`` is faster (see ``bench/hashing.py``).
    """
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    lengths = ends - starts
    if len(lengths) and (
        starts.min() < 0 or lengths.min() < 0 or (starts + lengths).max() > len(data)
    ):
        raise ValueError("spans must lie within data")
    long = np.flatnonzero(lengths > _MAX_VECTOR_SPAN)
    if len(long):
        lengths = lengths.copy()
        lengths[long] = 0
    padded = data + bytes(_READ_PAST_END)
    out = np.empty(len(starts), dtype=np.uint32)
    for lo in range(0, len(starts), _WINDOW):
        hi = lo + _WINDOW
        out[lo:hi] = _xxh32_vector(padded, starts[lo:hi], lengths[lo:hi])
    for i in long.tolist():
        out[i] = xxhash.xxh32_intdigest(data[int(starts[i]) : int(ends[i])])
    return out


def _rotl(x: U32Array, r: np.uint32 | U32Array) -> U32Array:
    result: U32Array = (x << r) | (x >> (np.uint32(32) - r))
    return result


def _xxh32_vector(padded: bytes, starts: I64Array, lengths: I64Array) -> U32Array:
    """The xxh32 reference algorithm, one numpy step per round across all spans."""
    b8 = np.frombuffer(padded, dtype=np.uint8)
    # The little-endian word starting at every byte offset (unaligned reads are what xxh32
    # does), copied out of a 1-byte-strided view: numpy copies such a view at memcpy speed
    # but gathers from it 4x slower than from a contiguous array, and every round gathers.
    words_at: U32Array = np.ndarray(
        shape=(len(padded) - 3,), dtype="<u4", buffer=padded, strides=(1,)
    )
    w32: U32Array = np.ascontiguousarray(words_at)
    stripes = lengths >> 4
    most = int(stripes.max()) if len(stripes) else 0
    if most:
        h = np.full(len(starts), _P5, dtype=np.uint32)
        # Only the spans of 16 bytes or more have stripes, and they are few among character
        # n-grams: sorting just them costs a fraction of sorting every span (0.56 ms at 4.5 KB,
        # 40% of hashing the text). Longest first, so the spans still hashing at stripe k are
        # a prefix: slices, not masks.
        striped = np.flatnonzero(stripes)
        order = striped[np.argsort(stripes[striped])[::-1]]
        remaining = np.bincount(stripes[order], minlength=most + 1)[::-1].cumsum()[::-1]
        active = len(order)
        lanes = np.tile(_LANE_INIT, (active, 1))
        at = starts[order, None] + _LANE_OFFSETS
        for k in range(most):
            c = int(remaining[k + 1])
            x = w32[at[:c]] * _P2
            x += lanes[:c]
            x = _rotl(x, np.uint32(13))
            x *= _P1
            lanes[:c] = x
            at[:c] += 16
        h[order] = _rotl(lanes, _LANE_ROTATIONS).sum(axis=1, dtype=np.uint32)
        h += lengths.astype(np.uint32)
    else:
        h = lengths.astype(np.uint32)
        h += _P5
    at_tail = starts + (stripes << 4)
    tail = lengths & 15
    words = tail >> 2
    for j in range(int(words.max()) if len(words) else 0):
        x = w32[at_tail] * _P3
        x += h
        x = _rotl(x, np.uint32(17))
        x *= _P4
        more = words > j
        h = x if more.all() else np.where(more, x, h)
        at_tail += more * 4
    single = tail & 3
    for j in range(int(single.max()) if len(single) else 0):
        x = b8[at_tail].astype(np.uint32)
        x *= _P5
        x += h
        x = _rotl(x, np.uint32(11))
        x *= _P1
        more = single > j
        h = x if more.all() else np.where(more, x, h)
        at_tail += 1
    h ^= h >> np.uint32(15)
    h *= _P2
    h ^= h >> np.uint32(13)
    h *= _P3
    h ^= h >> np.uint32(16)
    return h


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
