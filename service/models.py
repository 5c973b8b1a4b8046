"""The contract: what clients send, what they get back, and the events consumers read.

Events are versioned by ``schema_version``; a consumer should reject a version it does not know.
Unknown request fields are rejected (``extra="forbid"``): a misspelt ``titel`` would otherwise
be dropped silently and the article published without its title.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,200}$"
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")

Status = Literal["unique", "duplicate", "updated"]
Relation = Literal["exact", "near_duplicate", "excerpt", "superset", "revision"]
ArticleEventType = Literal["article.created", "article.updated"]


class ArticleIn(BaseModel):
    """One article as a scraper, feed or archive sends it: exactly one of ``text`` or ``html``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    id: Annotated[str, Field(pattern=ID_PATTERN)] | None = Field(
        None,
        description="Stable id. Kept when given; else derived from the normalised url, "
        "else from the content hash.",
    )
    url: Annotated[str, Field(max_length=2048)] | None = Field(
        None, description="Canonical http(s) URL of the article."
    )
    source: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description='Publisher name. Default: the url host, else "unknown".'
    )
    title: Annotated[str, Field(max_length=2000)] | None = None
    text: str | None = Field(None, description="Raw scraped text. Exclusive with html.")
    html: str | None = Field(None, description="Raw HTML of the page. Exclusive with text.")
    published_at: str | None = Field(None, description="RFC 3339 timestamp with offset.")
    language: str | None = Field(None, description="BCP 47 language tag, e.g. en or pt-BR.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018 - raises on a port that is not a number in 0-65535
        except ValueError as exc:
            raise ValueError(f"is not a valid URL: {exc}") from exc
        if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an absolute http or https URL")
        return value.strip()

    @field_validator("published_at")
    @classmethod
    def _check_published(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _RFC3339.fullmatch(value):
            raise ValueError("must be an RFC 3339 timestamp such as 2024-05-01T12:00:00Z")
        try:
            datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError as exc:
            raise ValueError(f"is not a valid date and time: {exc}") from exc
        return value

    @field_validator("language")
    @classmethod
    def _check_language(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _LANGUAGE.fullmatch(value):
            raise ValueError("must be a BCP 47 language tag such as en or pt-BR")
        return value

    @field_validator("text", "html", "title", "source")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # NUL has no place in an article and breaks some downstream stores; say so plainly.
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> ArticleIn:
        if (self.text is None) == (self.html is None):
            raise ValueError("exactly one of 'text' or 'html' is required")
        return self


class RemovedSegment(BaseModel):
    """A segment cleaning took out, with the layer and rule that removed it."""

    text: str
    layer: str
    reason: str


class ArticlePayload(BaseModel):
    """The cleaned, normalised article as stored and as carried by ``article.*`` events."""

    title: str | None
    text: str = Field(
        description="Cleaned body without the title, paragraphs split by blank lines."
    )
    source: str
    url: str | None
    published_at: str | None
    language: str | None
    author: str | None = None
    sitename: str | None = None
    word_count: int
    content_hash: str = Field(description="sha256 of the normalised body, hex.")
    removed_counts: dict[str, int] = Field(
        default_factory=dict, description="How many segments each cleaning layer removed."
    )


class DryRunArticle(ArticlePayload):
    """The article as a dry run shows it, with everything cleaning removed."""

    removed: list[RemovedSegment]


class Decision(BaseModel):
    """What the service decided for one article."""

    id: str
    status: Status
    duplicate_of: str | None = Field(
        None, description="The canonical id: the first accepted article of the cluster."
    )
    similarity: float | None = Field(None, description="Estimated Jaccard similarity, 0..1.")
    relation: Relation | None = None
    replayed: bool = Field(False, description="True when this article was already accepted.")
    event_id: str | None = Field(None, description="Stream entry id of the published event.")


class DryRunDecision(Decision):
    """A dry run's answer: the decision that would be taken, and the cleaned article."""

    article: DryRunArticle


class StoredArticle(BaseModel):
    """GET /v1/articles/{id}: the stored article and its decision."""

    decision: Decision
    article: ArticlePayload


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] = Field(default_factory=list)
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class BatchItemError(BaseModel):
    """A batch item that failed; it failed alone."""

    error: ErrorBody


class BatchResponse(BaseModel):
    results: list[Decision | BatchItemError]


class EventDecision(BaseModel):
    status: Status
    relation: Relation | None
    duplicate_of: str | None
    similarity: float | None


class ArticleEvent(BaseModel):
    """``article.created`` (a new story) or ``article.updated`` (a revision or superset)."""

    schema_version: Literal[1] = 1
    type: ArticleEventType
    id: str
    decision: EventDecision
    article: ArticlePayload


class DuplicateEvent(BaseModel):
    """``article.duplicate``: a copy of a story already published under ``duplicate_of``."""

    schema_version: Literal[1] = 1
    type: Literal["article.duplicate"] = "article.duplicate"
    id: str
    duplicate_of: str
    similarity: float
    relation: Relation
    source: str
    url: str | None


Event = ArticleEvent | DuplicateEvent


# --- Internal: what the worker processes hand to the index (picklable, not JSON) -----------


@dataclass(frozen=True, slots=True)
class Params:
    """What the workers need to know of the settings."""

    num_perm: int
    shingle_size: int
    threshold: float


@dataclass(frozen=True, slots=True)
class ItemError:
    """One article that cannot be accepted, with the HTTP status it deserves."""

    status: int
    code: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Prepared:
    """An article ready for the index: its id, hashes, signature and rendered payload."""

    id: str
    request_hash: str
    content_hash: str
    signature: bytes
    bands: list[str]
    source: str
    url: str | None
    payload_json: str
    removed: list[tuple[str, str, str]]  # (text, layer, reason), for dry runs


def parse_event(event_type: str, data: str | bytes) -> Event:
    """Decode a stream entry's ``data`` field into its event model."""
    if event_type == "article.duplicate":
        return DuplicateEvent.model_validate_json(data)
    if event_type in {"article.created", "article.updated"}:
        return ArticleEvent.model_validate_json(data)
    raise ValueError(f"unknown event type {event_type!r}")
