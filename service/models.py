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
from pydantic.config import JsonDict

SCHEMA_VERSION = 1

# At least one character that is not a dot: an id of "." or ".." would be a dot segment in
# /v1/articles/{id}, which clients and servers normalise away, so it could never be read back.
ID_PATTERN = r"^[A-Za-z0-9._:-]*[A-Za-z0-9_:-][A-Za-z0-9._:-]*$"
ID_MAX_LENGTH = 200
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
# Lone surrogates: JSON may spell them ("\\ud800"), but they are not Unicode text and cannot be
# encoded as UTF-8 for hashing, Redis or events.
_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls and DEL; tab, newline and carriage return included.
_CONTROL = re.compile("[\x00-\x1f\x7f]")

# JSON Schema only: the validators below are the authority. These make /openapi.json say what
# the validators accept, so generated clients (and the schemathesis fuzz tests) send articles
# the service can take rather than ones it must refuse.
_NO_NUL_SCHEMA: JsonDict = {"pattern": "^[^\\u0000]*$"}
_URL_SCHEMA: JsonDict = {
    "format": "uri",
    "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^\\u0000-\\u001f\\u007f]+$",
}
_SOURCE_SCHEMA: JsonDict = {"pattern": "^[^\\u0000-\\u001f\\u007f]+$"}
_LANGUAGE_SCHEMA: JsonDict = {"pattern": _LANGUAGE.pattern}
# Exactly one of text or html, as _one_body checks it: the other absent or null.
_ONE_BODY_SCHEMA: JsonDict = {
    "oneOf": [
        {
            "required": ["text"],
            "properties": {"text": {"type": "string"}, "html": {"type": "null"}},
        },
        {
            "required": ["html"],
            "properties": {"html": {"type": "string"}, "text": {"type": "null"}},
        },
    ]
}

Status = Literal["unique", "duplicate", "updated"]
Relation = Literal["exact", "near_duplicate", "excerpt", "superset", "revision"]
ArticleEventType = Literal["article.created", "article.updated"]


class ArticleIn(BaseModel):
    """One article as a scraper, feed or archive sends it: exactly one of ``text`` or ``html``."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=False, json_schema_extra=_ONE_BODY_SCHEMA
    )

    id: Annotated[str, Field(max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)] | None = Field(
        None,
        description="Stable id. Kept when given; else derived from the normalised url, "
        "else from the content hash.",
    )
    url: Annotated[str, Field(max_length=2048, json_schema_extra=_URL_SCHEMA)] | None = Field(
        None, description="Canonical http(s) URL of the article."
    )
    source: (
        Annotated[str, Field(min_length=1, max_length=200, json_schema_extra=_SOURCE_SCHEMA)] | None
    ) = Field(None, description='Publisher name. Default: the url host, else "unknown".')
    title: Annotated[str, Field(max_length=2000, json_schema_extra=_NO_NUL_SCHEMA)] | None = None
    text: Annotated[str, Field(json_schema_extra=_NO_NUL_SCHEMA)] | None = Field(
        None, description="Raw scraped text. Exclusive with html."
    )
    html: Annotated[str, Field(json_schema_extra=_NO_NUL_SCHEMA)] | None = Field(
        None, description="Raw HTML of the page. Exclusive with text."
    )
    published_at: Annotated[str, Field(json_schema_extra={"format": "date-time"})] | None = Field(
        None, description="RFC 3339 timestamp with offset."
    )
    language: Annotated[str, Field(json_schema_extra=_LANGUAGE_SCHEMA)] | None = Field(
        None, description="BCP 47 language tag, e.g. en or pt-BR."
    )

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
        # urlsplit drops tabs and newlines inside a URL and keeps other controls; either way
        # the URL as given would travel verbatim into events and the derived id.
        if _CONTROL.search(value.strip()):
            raise ValueError("must not contain control characters (U+0000-U+001F, U+007F)")
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
        # The other C0 and C1 controls (U+0001-U+001F, U+007F-U+009F) are scraping debris in
        # text, html and title: the cleaner drops them silently, since refusing the article
        # for a stray \x01 would lose a real story. ``source`` is refused for them below.
        if value is None:
            return None
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        if _SURROGATE.search(value):
            # pydantic refuses them in constrained strings already; text and html are not.
            raise ValueError("must not contain unpaired surrogates (U+D800-U+DFFF)")
        return value

    @field_validator("source")
    @classmethod
    def _no_controls(cls, value: str | None) -> str | None:
        # A label, not prose: no cleaner runs over it, so a control character would be
        # published verbatim in every event of this source.
        if value is not None and _CONTROL.search(value):
            raise ValueError("must not contain control characters (U+0000-U+001F, U+007F)")
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
    description: str | None = Field(
        None, description="The page's own summary, from its meta tags (HTML only)."
    )
    categories: list[str] = Field(
        default_factory=list,
        description="Sections the page files itself under, from its metadata (HTML only).",
    )
    tags: list[str] = Field(
        default_factory=list,
        description="The page's tags and keywords, from its metadata (HTML only).",
    )
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
    similarity: float | None = Field(
        None,
        description="Estimated Jaccard similarity to the article matched (the closest copy, "
        "the story contained or containing, the earlier revision), 0..1.",
    )
    containment: float | None = Field(
        None,
        description="For excerpt: the estimated share of this article found in the story; "
        "for superset: the share of the story found in this article. 0..1.",
    )
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
    containment: float | None = None


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
    containment: float | None = None
    relation: Relation
    source: str
    url: str | None


Event = ArticleEvent | DuplicateEvent


# --- Internal: what the worker processes hand to the index (picklable, not JSON) -----------


@dataclass(frozen=True, slots=True)
class Params:
    """What the workers need to know of the settings."""

    num_perm: int = 128
    shingle_size: int = 7
    threshold: float = 0.5
    max_html_bytes: int = 3_000_000
    shingle_unit: str = "chars"


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
    # Digests of the body's segments before the learned layer, counted for the source when
    # the article turns out unique (service/clean/learned.py).
    segments: tuple[str, ...] = ()
    field: str = "text"  # the body field, "text" or "html", for errors about the body
    shingle_count: int = 0
    anchors: tuple[str, ...] = ()  # sampled shingles, for excerpts and supersets
    url_key: str | None = None  # digest of the normalised url, for revisions under another id
    # The version of the source's learned set the learned layer ran with (None: no set the
    # worker knew held any of this article's segments, so the layer did not run).
    learned_version: str | None = None


def parse_event(event_type: str, data: str | bytes) -> Event:
    """Decode a stream entry's ``data`` field into its event model."""
    if event_type == "article.duplicate":
        return DuplicateEvent.model_validate_json(data)
    if event_type in {"article.created", "article.updated"}:
        return ArticleEvent.model_validate_json(data)
    raise ValueError(f"unknown event type {event_type!r}")
