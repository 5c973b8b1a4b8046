"""Every Redis key and stream name the service uses, all under one prefix.

With a prefix holding a hash tag (``{news}``) every key hashes to one Redis Cluster slot, which
the atomic decide step needs: its Lua script touches keys it only discovers while running.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under ``prefix``."""

    prefix: str
    articles_stream_name: str = "articles"
    duplicates_stream_name: str = "duplicates"

    @property
    def articles_stream(self) -> str:
        return f"{self.prefix}:{self.articles_stream_name}"

    @property
    def duplicates_stream(self) -> str:
        return f"{self.prefix}:{self.duplicates_stream_name}"

    @property
    def index_meta(self) -> str:
        """Hash recording the fingerprint scheme and parameters the index was built with."""
        return f"{self.prefix}:index:meta"

    @property
    def ns(self) -> str:
        """Namespace handed to the Lua script, which appends per-article suffixes itself.

        The script builds ``<ns>art:<id>``, ``<ns>sig:<id>``, ``<ns>hash:<h>``, ``<ns>url:<h>``
        and reads band keys as given; :meth:`article` and friends spell the same names.
        """
        return f"{self.prefix}:"

    def article(self, article_id: str) -> str:
        """Hash with the stored article, its decision and the request hash."""
        return f"{self.prefix}:art:{article_id}"

    def signature(self, article_id: str) -> str:
        """The MinHash signature of an accepted article, packed uint32 little-endian."""
        return f"{self.prefix}:sig:{article_id}"

    def content_hash(self, digest: str) -> str:
        """Exact-duplicate lookup: normalised body hash -> canonical id."""
        return f"{self.prefix}:hash:{digest}"

    def band(self, band: int, digest: str) -> str:
        """One LSH bucket: sorted set of accepted ids scored by their expiry (ms)."""
        return f"{self.prefix}:lsh:{band}:{digest}"

    def consumer_dead_letter(self, stream: str, group: str) -> str:
        """Where a consumer group parks entries that failed too often."""
        return f"{stream}:dead:{group}"

    def all_pattern(self) -> str:
        """SCAN pattern matching every key of this prefix (tests and ``reset`` use it)."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        return f"{escaped}:*"
