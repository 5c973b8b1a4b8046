"""The exception tree of news-ingest.

    NewsIngestError
    ├── RejectedContent        the input is well formed but has nothing publishable in it
    │   └── ExtractionTimeout  extraction ran past its per-document deadline
    ├── InputError             the request itself is malformed (the API maps it to a 4xx)
    ├── IndexMismatch          the Redis index was built with other fingerprint parameters
    ├── StoreUnavailable       Redis cannot be reached or answered with a transport error
    └── WorkerError            a worker process could not run a task (service.pool)
        ├── TaskTimeout        the task ran past its deadline; its worker was killed and replaced
        └── WorkerCrashed      the worker died while running the task; it was replaced

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


class WorkerError(NewsIngestError):
    """A worker process of the pool could not run a task, or the pool is closed."""


class TaskTimeout(WorkerError):
    """The task ran past its deadline: its worker was killed and a fresh one started."""

    def __init__(self, limit_s: float, pid: int | None = None) -> None:
        super().__init__(
            f"the task ran longer than its {limit_s:g} s deadline; "
            f"its worker process (pid {pid}) was killed and replaced"
        )
        self.limit_s = limit_s
        self.pid = pid

    def __reduce__(self) -> tuple[Any, ...]:
        return (TaskTimeout, (self.limit_s, self.pid))


class WorkerCrashed(WorkerError):
    """The worker process died while running the task (killed, out of memory, a C crash)."""

    def __init__(self, pid: int | None, exitcode: int | None) -> None:
        super().__init__(
            f"the worker process (pid {pid}) died while running the task "
            f"(exit code {exitcode}); it was replaced"
        )
        self.pid = pid
        self.exitcode = exitcode

    def __reduce__(self) -> tuple[Any, ...]:
        return (WorkerCrashed, (self.pid, self.exitcode))
