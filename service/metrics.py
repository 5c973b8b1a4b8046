"""Prometheus metrics, in a registry of their own so several apps (tests) can coexist."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

M = TypeVar("M", Counter, Histogram)

# Sources become label values; past this many distinct ones, the rest count as "other" so a
# client sending random source names cannot grow the exposition without bound.
MAX_SOURCE_LABELS = 500


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _sources: set[str] = field(default_factory=set)
    _children: dict[tuple[int, tuple[str, ...]], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.registry
        self.articles = Counter(
            "news_ingest_articles_total",
            "Articles decided, by status and relation.",
            ["status", "relation"],
            registry=r,
        )
        self.by_source = Counter(
            "news_ingest_source_articles_total",
            "Articles decided, by source and status.",
            ["source", "status"],
            registry=r,
        )
        self.rejected = Counter(
            "news_ingest_rejected_total", "Articles refused, by error code.", ["code"], registry=r
        )
        self.removed = Counter(
            "news_ingest_cleaning_removed_total",
            "Segments removed by cleaning, by layer.",
            ["layer"],
            registry=r,
        )
        self.requests = Histogram(
            "news_ingest_request_seconds",
            "HTTP request latency, by route and status.",
            ["route", "method", "status"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.learned_again = Counter(
            "news_ingest_learned_again_total",
            "Articles prepared a second time because their worker had not been sent their "
            "source's current learned set (its first article of the source, or the set changed).",
            registry=r,
        )
        self.redis_errors = Counter(
            "news_ingest_redis_errors_total", "Redis calls that failed.", registry=r
        )
        self.pool_pending = Gauge(
            "news_ingest_pool_pending", "CPU tasks submitted and not yet finished.", registry=r
        )
        self.worker_replacements = Gauge(
            "news_ingest_worker_replacements",
            "Worker processes replaced since start (a document overran its deadline, a crash).",
            registry=r,
        )

    def child(self, metric: M, *values: str) -> M:
        """``metric.labels(*values)``, kept: prometheus_client validates and locks on every
        call, several times per request. Label values are bounded, and so is this map."""
        key = (id(metric), values)
        found: M | None = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def source_label(self, source: str) -> str:
        """The label value for a source, bounded in number."""
        if source in self._sources:
            return source
        if len(self._sources) < MAX_SOURCE_LABELS:
            self._sources.add(source)
            return source
        return "other"
