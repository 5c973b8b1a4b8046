"""service.minhash: signatures byte for byte those of datasketch via service.fingerprint."""

from __future__ import annotations

import random
from collections.abc import Iterable

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import example, given, settings
from hypothesis import strategies as st

from service import fingerprint as fp
from service import minhash as mh

from .factories import story, vocabulary

NUM_PERM = 128

# Shingles are hashed by code point, the interesting text holds characters of one to four
# utf-8 bytes (and astral ones, two utf-16 units), with the spaces and punctuation that end
# words.
_TEXT = st.text(
    alphabet=st.sampled_from("ab cz.\u00e9\u00df\u0301\u4e2d\U0001f600 \n\t-'"), max_size=300
) | st.text(max_size=200)
_TOKENS = st.lists(st.text(alphabet=st.sampled_from("ab \u00e9\u4e2d"), max_size=4), max_size=30)
_SLOW = settings(deadline=None, max_examples=150)


def _reference(items: set[bytes], num_perm: int = NUM_PERM) -> bytes:
    return fp.signature_bytes(fp.minhash(items, num_perm))


def _ours(items: Iterable[bytes], num_perm: int = NUM_PERM) -> bytes:
    return mh.signature(mh.shingle_hashes(items), num_perm)


def _word_items(text: str, size: int) -> tuple[list[str], set[bytes]]:
    tokens = fp.words(fp.normalise(text))
    return tokens, fp.shingles(tokens, size)


def _char_items(text: str, size: int) -> set[bytes]:
    if not text:
        return set()
    return {text[i : i + size].encode("utf-8") for i in range(max(1, len(text) - size + 1))}


def test_parameters_are_those_fingerprint_stores() -> None:
    assert (mh.SCHEME, mh.SEED) == (fp.MINHASH_SCHEME, fp.MINHASH_SEED)
    assert fp.SHINGLE_HASH == mh.HASH_NAME == "poly64-fmix64-xor32"
    a, b = mh.permutations(NUM_PERM)
    template = MinHash(num_perm=NUM_PERM, seed=fp.MINHASH_SEED, scheme="affine32")
    assert np.array_equal(np.stack([a[:, 0], b[:, 0]]), template.permutations)
    assert not a.flags.writeable


def test_empty_set_is_all_max_values() -> None:
    empty = np.empty(0, dtype=np.uint32)
    assert mh.signature(empty, NUM_PERM) == _reference(set()) == b"\xff" * 4 * NUM_PERM
    assert mh.word_shingle_hashes([], 5).size == 0
    assert mh.char_shingle_hashes("", 5).size == 0


def test_one_shingle() -> None:
    assert _ours([b"one"]) == _reference({b"one"})
    tokens, items = _word_items("Just three words", 5)
    assert len(items) == 1
    assert mh.signature(mh.word_shingle_hashes(tokens, 5), NUM_PERM) == _reference(items)


@pytest.mark.parametrize("num_perm", [1, 2, 17, 128, 256])
def test_stories(num_perm: int) -> None:
    rng = random.Random(3)
    vocab = vocabulary()
    for paragraphs in (1, 5, 15):
        text = story(rng, vocab, paragraphs=paragraphs, length=40)
        tokens, items = _word_items(text, 5)
        expected = _reference(items, num_perm)
        assert _ours(items, num_perm) == expected
        assert mh.signature(mh.word_shingle_hashes(tokens, 5), num_perm) == expected


def test_more_shingles_than_datasketch_update_slice() -> None:
    items = {f"shingle number {i}".encode() for i in range(70_000)}
    assert len(items) > 1 << 16
    assert _ours(items) == _reference(items)


def test_arbitrary_hash_values_match_datasketch_update_batch() -> None:
    rng = np.random.default_rng(5)
    cases = [
        np.array([0], dtype=np.uint32),
        np.array([mh.MAX_HASH], dtype=np.uint32),
        np.array([0, 1, mh.MAX_HASH, 0x80000000], dtype=np.uint32),
        rng.integers(0, 1 << 32, 1000, dtype=np.uint32),
        rng.integers(0, 1 << 32, 9000, dtype=np.uint32),
    ]
    for hashes in cases:
        # An identity hashfunc feeds the values straight into datasketch's permutation step.
        ds = MinHash(num_perm=NUM_PERM, seed=mh.SEED, scheme="affine32", hashfunc=int)
        ds.update_batch(hashes.tolist())
        assert mh.signature(hashes, NUM_PERM) == fp.signature_bytes(ds)


def test_many_blocks_give_the_same_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = np.random.default_rng(9).integers(0, 1 << 32, 5000, dtype=np.uint32)
    whole = mh.signature(hashes, NUM_PERM)
    monkeypatch.setattr(mh, "_BLOCK_ELEMENTS", NUM_PERM * 48)
    assert mh._layout(len(hashes), NUM_PERM)[1] > 100
    assert mh.signature(hashes, NUM_PERM) == whole
    assert mh.signature(hashes[::-1].copy(), NUM_PERM) == whole


@given(count=st.integers(1, 10**8), num_perm=st.integers(1, 4096))
def test_block_is_bounded_and_covers_every_hash(count: int, num_perm: int) -> None:
    width, blocks = mh._layout(count, num_perm)
    quantum = mh._BUFSIZE_QUANTUM
    assert width % quantum == 0
    assert num_perm * width <= max(mh._BLOCK_ELEMENTS, num_perm * quantum)
    assert count <= width * blocks < count + quantum * (blocks + 1)


def test_numpy_buffer_size_is_restored() -> None:
    before = np.getbufsize()
    mh.signature(np.arange(1000, dtype=np.uint32), NUM_PERM)
    assert np.getbufsize() == before


def test_rejects_what_datasketch_would_not_hash_alike() -> None:
    with pytest.raises(TypeError):
        mh.signature(np.arange(10, dtype=np.int64), NUM_PERM)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mh.signature(np.zeros((2, 2), dtype=np.uint32), NUM_PERM)
    with pytest.raises(ValueError, match="num_perm"):
        mh.signature(np.arange(10, dtype=np.uint32), 0)
    with pytest.raises(ValueError, match="size"):
        mh.word_shingle_hashes(["a"], 0)
    with pytest.raises(ValueError, match="size"):
        mh.char_shingle_hashes("a", 0)


@_SLOW
@given(text=_TEXT, size=st.integers(1, 6))
@example(text="", size=5)
@example(text="Stra\u00dfe \u00c9t\u00e9 \u4e2d\u6587 \U0001f600 end", size=2)
def test_word_shingles_of_any_text(text: str, size: int) -> None:
    tokens, items = _word_items(text, size)
    expected = _reference(items)
    assert _ours(items) == expected
    hashes = mh.word_shingle_hashes(tokens, size)
    assert set(hashes.tolist()) == set(mh.shingle_hashes(items).tolist())
    assert mh.signature(hashes, NUM_PERM) == expected


@_SLOW
@given(tokens=_TOKENS, size=st.integers(1, 4))
@example(tokens=["a b", "c"], size=1)
@example(tokens=["", "", "x"], size=2)
def test_word_shingle_hashes_of_any_tokens(tokens: list[str], size: int) -> None:
    # Tokens from fingerprint.words never hold a space or are empty; other callers may.
    expected = mh.shingle_hashes(fp.shingles(tokens, size))
    assert set(mh.word_shingle_hashes(tokens, size).tolist()) == set(expected.tolist())


@_SLOW
@given(text=_TEXT, size=st.integers(1, 8))
@example(text="abcd", size=5)
def test_char_shingles_of_any_text(text: str, size: int) -> None:
    items = _char_items(text, size)
    hashes = mh.char_shingle_hashes(text, size)
    assert len(hashes) == (max(1, len(text) - size + 1) if text else 0)
    assert set(hashes.tolist()) == set(mh.shingle_hashes(items).tolist())
    assert mh.signature(hashes, NUM_PERM) == _reference(items)


def test_windows_join_up(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(4)
    text = story(rng, vocabulary(), paragraphs=3, length=40) + " \u00e9t\u00e9 \u4e2d\u6587"
    tokens = fp.words(fp.normalise(text))
    whole_words = mh.word_shingle_hashes(tokens, 5)
    whole_chars = mh.char_shingle_hashes(text, 5)
    monkeypatch.setattr(mh, "_WINDOW", 7)
    assert np.array_equal(mh.word_shingle_hashes(tokens, 5), whole_words)
    assert np.array_equal(mh.char_shingle_hashes(text, 5), whole_chars)
    assert np.array_equal(
        whole_chars, mh.shingle_hashes(text[i : i + 5].encode() for i in range(len(text) - 4))
    )


def _spec(shingle: str) -> int:
    """The shingle hash as written down in the README, independently of service.minhash."""
    mask = (1 << 64) - 1
    h = 0
    for code in (ord(ch) + 1 for ch in shingle):
        h = (h * 0x9E3779B97F4A7C15 + code) & mask
    for shift, factor in ((33, 0xFF51AFD7ED558CCD), (33, 0xC4CEB9FE1A85EC53), (33, 1)):
        h ^= h >> shift
        h = (h * factor) & mask
    return (h >> 32) ^ (h & 0xFFFFFFFF)


@settings(deadline=None, max_examples=200)
@given(text=_TEXT | st.text(alphabet=st.characters(codec=None), max_size=60))
@example(text="\x00")
@example(text="\ud800 lone")
def test_shingle_hash_is_the_written_polynomial(text: str) -> None:
    assert mh.shingle_hash(text) == _spec(text)
    # A leading U+0000 is not nothing: the +1 per code point keeps "\0a" apart from "a".
    assert mh.shingle_hash("\x00" + text) != mh.shingle_hash(text)


def test_long_shingles_are_hashed_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    # A token longer than a run of text (a pasted blob with no space in it) is hashed alone,
    # a piece at a time, so the prefix sums never grow with it.
    monkeypatch.setattr(mh, "_WINDOW_CHARS", 16)
    tokens = ["x" * 40, "ab", "\u00e9t\u00e9", "d" * 17, "e", "f", "g" * 33, "\U0001f600"]
    for size in (1, 2, 3):
        expected = [_spec(" ".join(tokens[i : i + size])) for i in range(len(tokens) - size + 1)]
        assert mh.word_shingle_hashes(tokens, size).tolist() == expected
