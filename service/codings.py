"""Content codings a request body may arrive in, inflated in bounded steps.

aiohttp inflates request bodies itself, but it refuses a coding it has no library for (br,
zstd) while parsing the headers, with a plain-text 400 no handler sees, and it passes a body
in a coding it does not know ("compress", a typo) through as it is. The service reads bodies
raw instead (``auto_decompress=False``) and inflates them here, so every coding gets a JSON
answer: gzip and deflate are inflated, identity is the body itself, anything else is a 415
naming the header (RFC 9110, section 15.5.16).
"""

from __future__ import annotations

import zlib
from typing import Final

from .errors import InputError

SUPPORTED: Final = ("deflate", "gzip", "identity")
_ALIASES: Final = {"x-gzip": "gzip"}


def _unsupported(header: str, why: str) -> InputError:
    return InputError(
        415,
        "unsupported_content_encoding",
        f"Content-Encoding {header!r} {why}; send the body as {', '.join(SUPPORTED)}",
        [{"field": "Content-Encoding", "allowed": list(SUPPORTED)}],
    )


def undecodable(message: str) -> InputError:
    return InputError(
        400,
        "undecodable_body",
        f"the request body could not be read: {message}",
        [{"field": "Content-Encoding", "message": message}],
    )


def coding_of(header: str) -> str:
    """The one coding a Content-Encoding header names ("identity" when none).

    Raises a 415 :class:`InputError` for a coding the service does not inflate, or for
    several stacked codings, which no client sends for a request body in practice.
    """
    codings = [c.strip().lower() for c in header.split(",")]
    codings = [_ALIASES.get(c, c) for c in codings if c and c != "identity"]
    if not codings:
        return "identity"
    if len(codings) > 1:
        raise _unsupported(header, "stacks several codings")
    if codings[0] not in SUPPORTED:
        raise _unsupported(header, "is not supported")
    return codings[0]


class Inflater:
    """Inflates one gzip or deflate body chunk by chunk, never past a byte budget.

    ``feed`` answers at most ``budget`` more bytes however much a chunk inflates to, so a
    small compressed body that inflates to gigabytes costs the budget's worth of memory
    before the caller refuses it.
    """

    def __init__(self, coding: str) -> None:
        if coding not in {"gzip", "deflate"}:
            raise ValueError(f"cannot inflate {coding!r}")
        self.coding = coding
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS) if coding == "gzip" else None
        self._head = b""  # deflate: the first bytes, until they tell which kind it is

    def feed(self, chunk: bytes, budget: int) -> bytes:
        """The inflated bytes of ``chunk``, at most ``budget`` + 1 of them (so the caller
        can tell the budget was passed)."""
        if self._z is None:
            self._head += chunk
            if len(self._head) < 2:
                return b""
            self._z = zlib.decompressobj(_deflate_wbits(self._head))
            chunk, self._head = self._head, b""
        z = self._z
        out = bytearray()
        data = chunk
        try:
            while data and len(out) <= budget:
                if z.eof:
                    # A second gzip member or trailing bytes: inflating only the first part
                    # would store a silently truncated article.
                    raise undecodable(f"data follows the end of the {self.coding} stream")
                out += z.decompress(data, budget + 1 - len(out))
                data = z.unconsumed_tail or z.unused_data
        except zlib.error as exc:
            raise undecodable(f"the {self.coding} data is corrupt ({exc})") from exc
        return bytes(out)

    def finish(self) -> None:
        """Check that the body ended where its compressed stream did."""
        if self._z is None or not self._z.eof:
            raise undecodable(f"the {self.coding} data ends before its stream does")


def _deflate_wbits(first: bytes) -> int:
    """zlib-wrapped deflate (what RFC 9110 calls deflate) or, as some clients send, raw."""
    if len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0:
        return zlib.MAX_WBITS
    return -zlib.MAX_WBITS
