"""Fingerprints: normalisation, shingles, MinHash signatures readable by datasketch, LSH bands."""

from __future__ import annotations

import random
import unicodedata

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import example, given, settings
from hypothesis import strategies as st

from service.fingerprint import (
    MINHASH_SCHEME,
    MINHASH_SEED,
    RECALL_MARGIN_SD,
    band_digests,
    content_hash,
    estimated_jaccard,
    fingerprint,
    index_meta,
    lsh_params,
    match_probability,
    minhash,
    normalise,
    shingles,
    signature_bytes,
    signature_from_bytes,
    verified_probability,
    words,
)
from service.minhash import shingle_hash

from .factories import story, vocabulary

NUM_PERM = 128
SHINGLE = 5
THRESHOLD = 0.8

# Escapes rather than literal typographic characters, so the intent is visible in review.
LDQUO, RDQUO, LSQUO, RSQUO = "\u201c", "\u201d", "\u2018", "\u2019"
EN_DASH, EM_DASH, MINUS, NBSP = "\u2013", "\u2014", "\u2212", "\u00a0"


def _items(text: str, size: int = SHINGLE) -> set[bytes]:
    return shingles(words(normalise(text)), size)


def _sig(text: str, num_perm: int = NUM_PERM) -> bytes:
    return signature_bytes(minhash(_items(text), num_perm))


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rng = random.Random(11)
    vocab = vocabulary()
    return [story(rng, vocab, paragraphs=3, length=40) for _ in range(4)]


def _variant(text: str, fraction: float, seed: int) -> str:
    """The text with ``fraction`` of its words replaced by words never seen before."""
    rng = random.Random(seed)
    tokens = text.split(" ")
    for i in rng.sample(range(len(tokens)), int(len(tokens) * fraction)):
        tokens[i] = f"novel{seed}w{i}"
    return " ".join(tokens)


# --- normalise and content_hash ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Cafe\u0301", "caf\u00e9"),  # decomposed accent composed (NFC)
        ("\u212b", "\u00e5"),  # angstrom sign -> A with ring -> casefolded
        (f"{LDQUO}Hi{RDQUO} {LSQUO}there{RSQUO}", "\"hi\" 'there'"),
        (f"1990{EN_DASH}2000 a{EM_DASH}b {MINUS}5", "1990-2000 a-b -5"),
        ("Stra\u00dfe GROSS", "strasse gross"),  # casefold, not lower
        (f"  a \t\n\n b{NBSP}{NBSP}c\r\n", "a b c"),
        ("", ""),
        (" \n\t ", ""),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_content_hash_ignores_what_normalise_ignores() -> None:
    fancy = f"  The {LDQUO}Quick{RDQUO}{EM_DASH}Brown\n\nFox{NBSP}isn{RSQUO}t Cafe\u0301 "
    plain = 'the "quick"-brown fox isn\'t caf\u00e9'
    assert normalise(fancy) == plain
    assert content_hash(normalise(fancy)) == content_hash(normalise(plain))
    digest = content_hash(plain)
    assert len(digest) == 64
    assert int(digest, 16) >= 0


# Casefolding can expand a character into letters that a following accent composes with
# ("\u00df" + U+0301 -> "ss" + U+0301 -> "s" + U+015B): normalise() must compose again after it.
EXPANDS_BEFORE_ACCENT = [
    "\u00df\u0301",  # sharp s, acute
    "\u017f\u0301",  # long s, acute
    "\ufb01\u0301",  # fi ligature, acute
    "\u03aa\u0301",  # capital iota with dialytika, acute
    "\u1f82\u0301",  # alpha with psili, varia and ypogegrammeni, acute
]


@pytest.mark.parametrize("text", EXPANDS_BEFORE_ACCENT)
def test_normalise_is_idempotent_when_casefold_expands(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@pytest.mark.parametrize(("a", "b"), [("SS\u0301", "\u00df\u0301"), ("fi\u0301", "\ufb01\u0301")])
def test_content_hash_equal_for_caseless_equal_texts(a: str, b: str) -> None:
    # Caseless-equal under Unicode's canonical caseless match: NFD(casefold(NFD(x))).
    assert content_hash(normalise(a)) == content_hash(normalise(b))


@pytest.mark.parametrize(
    "other",
    [
        "the quick brown fox.",  # punctuation is content
        "the quick brown fax",
        "the quickbrown fox",  # whitespace is collapsed, never removed
        "the quick brown fox fox",
    ],
)
def test_content_hash_differs_for_other_text(other: str) -> None:
    assert content_hash(normalise(other)) != content_hash(normalise("The Quick  Brown Fox"))


# --- shingles ------------------------------------------------------------------------------------


def test_shingles_are_distinct_word_ngrams() -> None:
    tokens = ["a", "b", "c", "a", "b", "c"]
    assert shingles(tokens, 2) == {b"a b", b"b c", b"c a"}
    assert shingles(tokens, 3) == {b"a b c", b"b c a", b"c a b"}
    assert shingles(tokens, 1) == {b"a", b"b", b"c"}


@pytest.mark.parametrize("size", [1, 3, 5])
def test_shingle_count_of_distinct_words(size: int) -> None:
    tokens = [f"w{i}" for i in range(20)]
    result = shingles(tokens, size)
    assert len(result) == 20 - size + 1
    assert all(len(s.split(b" ")) == size for s in result)


@pytest.mark.parametrize(("tokens", "size"), [(["one", "two"], 5), (["one", "two", "three"], 3)])
def test_text_no_longer_than_the_shingle_is_one_shingle(tokens: list[str], size: int) -> None:
    assert shingles(tokens, size) == {" ".join(tokens).encode("utf-8")}


def test_no_tokens_no_shingles() -> None:
    assert shingles([], 5) == set()
    assert shingles(words(normalise(" -- ... !! ")), 5) == set()


def test_shingles_are_utf8() -> None:
    assert shingles(words(normalise("\u00dcber Caf\u00e9")), 5) == {"\u00fcber caf\u00e9".encode()}


# --- signatures and datasketch compatibility -----------------------------------------------------


def test_scheme_is_affine32() -> None:
    assert MINHASH_SCHEME == "affine32"
    mh = minhash({b"a b c"}, NUM_PERM)
    assert mh.scheme == "affine32"
    assert signature_from_bytes(signature_bytes(mh)).scheme == "affine32"


def test_signature_is_what_plain_datasketch_computes(texts: list[str]) -> None:
    items = _items(texts[0])
    reference = MinHash(
        num_perm=NUM_PERM,
        seed=MINHASH_SEED,
        hashfunc=lambda data: shingle_hash(data.decode("utf-8")),
        scheme="affine32",
    )
    reference.update_batch(list(items))
    sig = signature_bytes(minhash(items, NUM_PERM))
    assert len(sig) == 4 * NUM_PERM
    np.testing.assert_array_equal(np.frombuffer(sig, dtype="<u4"), reference.hashvalues)


def test_signature_bytes_round_trip(texts: list[str]) -> None:
    mh = minhash(_items(texts[1]), NUM_PERM)
    sig = signature_bytes(mh)
    back = signature_from_bytes(sig)
    assert len(back) == NUM_PERM
    assert back.seed == MINHASH_SEED
    np.testing.assert_array_equal(back.hashvalues, mh.hashvalues)
    np.testing.assert_array_equal(back.permutations, mh.permutations)
    assert signature_bytes(back) == sig
    assert back.jaccard(mh) == 1.0


def test_estimated_jaccard_matches_datasketch(texts: list[str]) -> None:
    base = texts[2]
    sigs = [_sig(t) for t in [base, _variant(base, 0.05, 1), _variant(base, 0.3, 2), texts[3]]]
    estimates = set()
    for a in sigs:
        for b in sigs:
            ours = estimated_jaccard(a, b)
            theirs = signature_from_bytes(a).jaccard(signature_from_bytes(b))
            assert ours == theirs
            estimates.add(ours)
    assert estimated_jaccard(sigs[0], sigs[0]) == 1.0
    assert len(estimates) > 3  # the pairs really differ


def test_estimated_jaccard_rejects_different_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        estimated_jaccard(_sig("a b c d e f", 64), _sig("a b c d e f", 128))


@pytest.mark.parametrize(("index", "fraction"), [(0, 0.01), (1, 0.02), (2, 0.05), (3, 0.12)])
def test_estimate_is_close_to_true_jaccard(texts: list[str], index: int, fraction: float) -> None:
    base = texts[index]
    other = _variant(base, fraction, seed=index)
    a, b = _items(base), _items(other)
    true = len(a & b) / len(a | b)
    assert 0.2 < true < 1.0  # a real near-copy, neither identical nor unrelated
    estimate = estimated_jaccard(signature_bytes(minhash(a, 256)), signature_bytes(minhash(b, 256)))
    assert estimate == pytest.approx(true, abs=0.1)


def test_unrelated_texts_estimate_near_zero(texts: list[str]) -> None:
    assert estimated_jaccard(_sig(texts[0], 256), _sig(texts[1], 256)) < 0.1


# --- LSH parameters and bands --------------------------------------------------------------------


@pytest.mark.parametrize("num_perm", [16, 128, 256])
@pytest.mark.parametrize("threshold", [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
def test_lsh_params_meet_recall(threshold: float, num_perm: int) -> None:
    bands, rows = lsh_params(threshold, num_perm)
    assert bands >= 2
    assert rows >= 1
    assert bands * rows <= num_perm
    # Recall is required where the signature estimate reliably clears the threshold.
    deviation = (threshold * (1 - threshold) / num_perm) ** 0.5
    target = min(1.0, threshold + RECALL_MARGIN_SD * deviation)
    assert match_probability(target, bands, rows) >= 0.97
    # The most rows that still meet the recall: more rows per band would miss pairs.
    for more in range(rows + 1, num_perm // 2 + 1):
        assert match_probability(target, num_perm // more, more) < 0.97


def test_lsh_recall_covers_what_the_verification_passes() -> None:
    """Pairs the signature would match are candidates: P(candidate) stays above P(verified)."""
    for threshold in (0.5, 0.8):
        bands, rows = lsh_params(threshold, 128)
        for step in range(0, 21):
            sim = step / 20
            verified = verified_probability(sim, 128, threshold)
            assert match_probability(sim, bands, rows) >= min(verified, 0.97) - 0.03


def test_match_probability_grows_with_similarity() -> None:
    bands, rows = lsh_params(THRESHOLD, NUM_PERM)
    probabilities = [match_probability(s / 10, bands, rows) for s in range(11)]
    assert probabilities == sorted(probabilities)
    assert probabilities[0] == 0.0
    assert probabilities[-1] == 1.0
    assert probabilities[5] < 0.5  # pairs well below the threshold are rarely candidates


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.01, 2.0])
def test_lsh_params_rejects_bad_threshold(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        lsh_params(threshold, NUM_PERM)


def test_lsh_params_rejects_too_few_permutations() -> None:
    with pytest.raises(ValueError, match="num_perm"):
        lsh_params(THRESHOLD, 1)


def test_band_digests(texts: list[str]) -> None:
    bands, rows = lsh_params(THRESHOLD, NUM_PERM)
    sig = _sig(texts[0])
    digests = band_digests(sig, bands, rows)
    assert len(digests) == bands
    assert all(len(d) == 16 and int(d, 16) >= 0 for d in digests)
    assert len(set(digests)) == bands
    assert band_digests(bytes(sig), bands, rows) == digests
    assert band_digests(_sig(texts[0]), bands, rows) == digests


def test_band_digest_changes_only_for_the_changed_band(texts: list[str]) -> None:
    bands, rows = lsh_params(THRESHOLD, NUM_PERM)
    sig = _sig(texts[0])
    values = np.frombuffer(sig, dtype="<u4").copy()
    band = bands // 2
    values[band * rows] ^= 1
    changed = band_digests(values.astype("<u4").tobytes(), bands, rows)
    original = band_digests(sig, bands, rows)
    assert [i for i in range(bands) if changed[i] != original[i]] == [band]


# --- fingerprint() and index_meta() --------------------------------------------------------------


def test_fingerprint_counts() -> None:
    fp = fingerprint(
        "One two, three! Four five six.",
        num_perm=NUM_PERM,
        shingle_size=2,
        threshold=THRESHOLD,
        shingle_unit="words",
    )
    assert fp.word_count == 6
    assert fp.shingle_count == 5
    assert fp.content_hash == content_hash("one two, three! four five six.")
    assert len(fp.signature) == 4 * NUM_PERM
    assert len(fp.bands) == lsh_params(THRESHOLD, NUM_PERM)[0]


def test_fingerprint_counts_repeated_shingles_once() -> None:
    fp = fingerprint(
        "a b a b a b", num_perm=NUM_PERM, shingle_size=2, threshold=THRESHOLD, shingle_unit="words"
    )
    assert fp.word_count == 6
    assert fp.shingle_count == 2


def test_fingerprint_of_empty_body() -> None:
    fp = fingerprint(
        "  ...  ",
        num_perm=NUM_PERM,
        shingle_size=SHINGLE,
        threshold=THRESHOLD,
        shingle_unit="words",
    )
    assert fp.word_count == 0
    assert fp.shingle_count == 0
    assert len(fp.signature) == 4 * NUM_PERM


def test_fingerprint_is_deterministic(texts: list[str]) -> None:
    first = fingerprint(
        texts[0], num_perm=NUM_PERM, shingle_size=SHINGLE, threshold=THRESHOLD, shingle_unit="words"
    )
    again = fingerprint(
        texts[0], num_perm=NUM_PERM, shingle_size=SHINGLE, threshold=THRESHOLD, shingle_unit="words"
    )
    assert first == again
    assert first.signature == _sig(texts[0])
    assert first.bands == band_digests(first.signature, *lsh_params(THRESHOLD, NUM_PERM))


def test_fingerprint_ignores_typography(texts: list[str]) -> None:
    plain = texts[0]
    fancy = "  " + plain.upper().replace(" ", f" {NBSP}\n") + "\n"
    a = fingerprint(
        plain, num_perm=NUM_PERM, shingle_size=SHINGLE, threshold=THRESHOLD, shingle_unit="words"
    )
    b = fingerprint(
        fancy, num_perm=NUM_PERM, shingle_size=SHINGLE, threshold=THRESHOLD, shingle_unit="words"
    )
    assert a == b


def test_character_shingles_are_datasketchs_minhash_of_the_same_set() -> None:
    text = "Typos hardly move character shingles: a copy keeps most of them."
    norm = normalise(text)
    fp = fingerprint(text, num_perm=NUM_PERM, shingle_size=7, threshold=0.5, shingle_unit="chars")
    grams = {norm[i : i + 7].encode("utf-8") for i in range(len(norm) - 6)}
    assert fp.shingle_count == len(grams)
    assert fp.signature == signature_bytes(minhash(grams, NUM_PERM))


def test_character_shingles_survive_typos() -> None:
    text = " ".join(f"word{i} of a longer sentence about the council budget" for i in range(30))
    typo = text.replace("council", "councl").replace("budget", "budgte")
    a, b = (
        fingerprint(t, num_perm=NUM_PERM, shingle_size=7, threshold=0.5, shingle_unit="chars")
        for t in (text, typo)
    )
    c, d = (
        fingerprint(t, num_perm=NUM_PERM, shingle_size=5, threshold=0.8, shingle_unit="words")
        for t in (text, typo)
    )
    assert estimated_jaccard(a.signature, b.signature) > 0.5
    assert estimated_jaccard(c.signature, d.signature) < 0.3


def test_index_meta() -> None:
    meta = index_meta(num_perm=256, shingle_size=4, threshold=0.85)
    bands, rows = lsh_params(0.85, 256)
    assert meta["scheme"] == "affine32"
    assert meta["num_perm"] == "256"
    assert meta["shingle_size"] == "4"
    assert meta["bands"] == str(bands)
    assert meta["rows"] == str(rows)
    assert meta["seed"] == str(MINHASH_SEED)
    assert all(isinstance(v, str) for v in meta.values())  # stored as a Redis hash


# --- properties ----------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.text())
@example("\u00df\u0301")  # always tried first, so the outcome does not depend on the search
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_normalise_output_is_canonical_up_to_composition(text: str) -> None:
    # What holds today: a second pass changes at most the composition of accents.
    once = normalise(text)
    assert unicodedata.normalize("NFC", normalise(once)) == unicodedata.normalize("NFC", once)
    assert once.casefold() == once
    assert once == once.strip()
    assert "  " not in once
    assert all(c == " " or not c.isspace() for c in once)
    assert not set(once) & {LDQUO, RDQUO, LSQUO, RSQUO, EN_DASH, EM_DASH, MINUS, NBSP}


@settings(max_examples=100, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=8))
def test_fingerprint_never_raises(text: str, shingle_size: int) -> None:
    fp = fingerprint(
        text, num_perm=64, shingle_size=shingle_size, threshold=THRESHOLD, shingle_unit="words"
    )
    assert fp.word_count == len(words(normalise(text)))
    assert (fp.shingle_count == 0) == (fp.word_count == 0)
    assert len(fp.signature) == 4 * 64


_REFERENCE_QUOTES = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u00ab": '"', "\u00bb": '"', "\u2039": "'", "\u203a": "'",
        "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u00a0": " ",
    }
)  # fmt: skip


def _reference_normalise(text: str) -> str:
    # The plain statement of the canonical form; normalise() takes faster routes to it.
    text = unicodedata.normalize("NFC", text).translate(_REFERENCE_QUOTES).casefold()
    return " ".join(unicodedata.normalize("NFC", text).split())


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
@example("Plain ASCII,\tline\x1ctwo  ")
@example("\u201cQuoted\u201d \u2014 STRASSE ß\u0301 \u00a0end")
def test_normalise_matches_its_reference(text: str) -> None:
    assert normalise(text) == _reference_normalise(text)
