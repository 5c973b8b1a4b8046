"""The request-body codings (service/codings.py): which are accepted, and bounded inflation."""

from __future__ import annotations

import gzip
import zlib

import pytest

from service.codings import Inflater, coding_of
from service.errors import InputError

TEXT = b'{"text": "' + b"the council met again on tuesday " * 400 + b'"}'


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        ("", "identity"),
        ("identity", "identity"),
        ("gzip", "gzip"),
        ("X-GZip", "gzip"),
        (" deflate ", "deflate"),
        ("identity, deflate", "deflate"),
    ],
)
def test_coding_of_accepted_headers(header: str, coding: str) -> None:
    assert coding_of(header) == coding


@pytest.mark.parametrize("header", ["br", "zstd", "compress", "gzip, deflate", "gzip;q=1"])
def test_coding_of_refuses_with_a_415_naming_the_header(header: str) -> None:
    with pytest.raises(InputError) as caught:
        coding_of(header)
    assert caught.value.status == 415
    assert caught.value.details[0]["field"] == "Content-Encoding"


def inflate(inflater: Inflater, chunks: list[bytes], budget: int = 1 << 30) -> bytes:
    out = b"".join(inflater.feed(chunk, budget) for chunk in chunks)
    inflater.finish()
    return out


@pytest.mark.parametrize(
    ("coding", "packed"),
    [
        ("gzip", gzip.compress(TEXT)),
        ("deflate", zlib.compress(TEXT)),
        ("deflate", zlib.compress(TEXT)[2:-4]),  # raw deflate
    ],
)
def test_inflates_whatever_the_chunking(coding: str, packed: bytes) -> None:
    assert inflate(Inflater(coding), [packed]) == TEXT
    # One byte at a time: the deflate kind is told from the first two bytes, which may
    # arrive in different chunks.
    assert inflate(Inflater(coding), [packed[i : i + 1] for i in range(len(packed))]) == TEXT


def test_inflation_stops_just_past_the_budget() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)
    assert len(bomb) < 100_000
    out = Inflater("gzip").feed(bomb, 1000)
    # One byte past the budget tells the caller it was passed, and no more was inflated.
    assert len(out) == 1001


def test_corrupt_and_truncated_streams_are_400() -> None:
    with pytest.raises(InputError) as corrupt:
        Inflater("gzip").feed(b"not gzip at all", 1 << 20)
    assert corrupt.value.status == 400
    inflater = Inflater("deflate")
    inflater.feed(zlib.compress(TEXT)[:50], 1 << 20)
    with pytest.raises(InputError) as truncated:
        inflater.finish()
    assert truncated.value.code == "undecodable_body"
    with pytest.raises(InputError):
        Inflater("deflate").finish()  # nothing arrived at all
