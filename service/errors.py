"""The exception tree of news-ingest.

    NewsIngestError
    ├── RejectedContent        the input is well formed but has nothing publishable in it
    │   └── ExtractionTimeout  extraction ran past its per-document deadline
    ├── InputError             the request itself is malformed (the API maps it to a 4xx)
    ├── IndexMismatch          the Redis index was built with other fingerprint parameters
    └── StoreUnavailable       Redis cannot be reached or answered with a transport error

Foreign exceptions (redis-py, pydantic, trafilatura) are translated where they enter the
service, with ``raise ... from exc``; the HTTP mapping lives in ``service.api``.
"""

from __future__ import annotations

from typing import Any


class NewsIngestError(Exception):
    """Base class of every error the service raises on purpose."""


class RejectedContent(NewsIngestError):
    """The document parsed, but nothing publishable is left (empty after cleaning, say).

    ``reason`` is a stable machine-readable code, ``field`` the input field it concerns.
    """

    def __init__(self, reason: str, message: str, field: str = "text") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field

    # Raised in worker processes: pickling must rebuild it from its own arguments.
    def __reduce__(self) -> tuple[Any, ...]:
        return (RejectedContent, (self.reason, self.message, self.field))


class ExtractionTimeout(RejectedContent):
    """Extraction ran past its per-document deadline."""

    def __init__(self, limit_s: float, field: str = "html") -> None:
        super().__init__(
            "extraction_timeout",
            f"extraction took longer than the {limit_s:g} s limit per document",
            field,
        )
        self.limit_s = limit_s

    def __reduce__(self) -> tuple[Any, ...]:
        return (ExtractionTimeout, (self.limit_s, self.field))


class InputError(NewsIngestError):
    """A malformed request: the API answers it with ``status`` and this code and message."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []

    def __reduce__(self) -> tuple[Any, ...]:
        return (InputError, (self.status, self.code, self.message, self.details))


class IndexMismatch(NewsIngestError):
    """The index in Redis was built with fingerprint parameters other than the configured ones."""


class StoreUnavailable(NewsIngestError):
    """Redis is unreachable or failed mid-command; the caller may retry later."""
