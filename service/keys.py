"""Every Redis key and stream name the service uses, all under one prefix.

With a prefix holding a hash tag (``{news}``) every key hashes to one Redis Cluster slot, which
the atomic decide step needs: its Lua script touches keys it only discovers while running.
"""

from __future__ import annotations

from dataclasses import dataclass

import xxhash


def source_digest(source: str) -> str:
    """A source name as it appears in key names: fixed length, whatever the name holds."""
    return xxhash.xxh3_64_hexdigest(source.encode("utf-8", "surrogatepass"))


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
        """Namespace handed to the Lua scripts, which name some keys themselves.

        ``decide.lua`` builds ``<ns>art:<id>`` of candidates, ``<ns>url:<digest>`` and the
        index's epoch hashes ``<ns>lsh:<epoch>`` and ``<ns>anc:<epoch>`` (the epoch comes from
        the server's clock); ``learn.lua`` builds ``<ns>seg:<source digest>:<epoch>``.
        :meth:`article` and friends spell the same names.
        """
        return f"{self.prefix}:"

    def article(self, article_id: str) -> str:
        """Hash with the stored article, its decision and the request hash."""
        return f"{self.prefix}:art:{article_id}"

    def content_hash(self, digest: str) -> str:
        """Exact-duplicate lookup: normalised body hash -> the id published with it."""
        return f"{self.prefix}:hash:{digest}"

    def url(self, url_digest: str) -> str:
        """Revision lookup: normalised url digest -> the latest id accepted with that url."""
        return f"{self.prefix}:url:{url_digest}"

    def source(self, source_digest: str) -> str:
        """Hash with the number of unique articles counted for one source (learned layer)."""
        return f"{self.prefix}:src:{source_digest}"

    def learned(self, source_digest: str) -> str:
        """Sorted set of a source's learned segment digests, scored by when they last qualified.

        The per-epoch segment counts, ``<prefix>:seg:<source digest>:<epoch>``, are named by
        ``scripts/learn.lua`` itself, since only the server's clock picks the epoch.
        """
        return f"{self.prefix}:learned:{source_digest}"

    def consumer_dead_letter(self, stream: str, group: str) -> str:
        """Where a consumer group parks entries that failed too often."""
        return f"{stream}:dead:{group}"

    def all_pattern(self) -> str:
        """SCAN pattern matching every key of this prefix (tests and ``reset`` use it)."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        return f"{escaped}:*"
