"""Configuration: one settings class, read from ``NEWS_INGEST_*`` variables, overridden by flags."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Keys are built as "<prefix>:<name>"; a prefix is either plain or one Redis Cluster hash tag
# "{tag}" (optionally followed by more text), which pins every key to one slot.
_PREFIX_RE = re.compile(r"^(\{[A-Za-z0-9._-]+\})?[A-Za-z0-9._:-]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")

DEFAULT_DOC_TIMEOUT_S = 20.0


def read_api_keys(path: Path) -> list[str]:
    """The keys of an API key file: one per line; blank lines and ``#`` comment lines skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(
            f"api_keys_file {str(path)!r} cannot be read ({exc.strerror or exc}); "
            "check the path and that the service's user may read it"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"api_keys_file {str(path)!r} is not UTF-8 text") from exc
    keys = [line.strip() for line in text.splitlines()]
    keys = [key for key in keys if key and not key.startswith("#")]
    if not keys:
        # Failing closed: an empty file most likely means a deployment mistake, and running
        # without keys would open the API to anyone.
        raise ValueError(
            f"api_keys_file {str(path)!r} holds no keys (only blank or # comment lines), which "
            "would turn authentication off; add a key, or unset api_keys_file"
        )
    return keys


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``: fit for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class Settings(BaseSettings):
    """Every tunable of the service. Each field can be set as ``NEWS_INGEST_<FIELD>``."""

    # hide_input_in_errors: a settings error must not echo an API key or a Redis password.
    model_config = SettingsConfigDict(
        env_prefix="NEWS_INGEST_", extra="ignore", validate_default=True, hide_input_in_errors=True
    )

    host: str = Field("127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port (0 picks a free one).")
    redis_url: str | None = Field(
        None,
        repr=False,  # may hold a password
        description="redis://, rediss:// or unix:// URL. Unset: start the embedded Valkey server.",
    )
    data_dir: Path = Field(
        Path(".news-ingest"), description="Where the embedded server keeps its data (AOF)."
    )
    key_prefix: str = Field(
        "news",
        description="Prefix of every key and stream; '{news}' keeps them in one Cluster slot.",
    )
    articles_stream: str = Field(
        "articles", description="Stream of article.created/updated events, under the prefix."
    )
    duplicates_stream: str = Field(
        "duplicates", description="Stream of article.duplicate events, under the prefix."
    )
    dedup_threshold: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="Estimated Jaccard similarity of shingle sets at which two bodies are copies "
        "(0.5 suits character 7-grams; word shingles need about 0.8).",
    )
    containment_threshold: float = Field(
        0.8,
        gt=0.0,
        le=1.0,
        description="Estimated share of an article found in an earlier story (excerpt), or of "
        "an earlier story found in it (superset), at which the two are related.",
    )
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations per signature.")
    shingle_unit: Literal["chars", "words"] = Field(
        "chars",
        description="What a shingle is made of: characters of the normalised body (survives "
        "typos) or words.",
    )
    shingle_size: int = Field(7, ge=1, le=20, description="Characters or words per shingle.")
    dedup_window_s: int = Field(
        7 * 24 * 3600,
        ge=1,
        description="How long an article stays in the index (and GET-able), in seconds.",
    )
    stream_maxlen: int = Field(
        1_000_000, ge=1000, description="Approximate maximum entries kept per stream."
    )
    max_body_bytes: int = Field(
        5_000_000, ge=1024, description="Largest request body of POST /v1/articles."
    )
    max_batch_body_bytes: int = Field(
        64_000_000, ge=1024, description="Largest request body of POST /v1/articles/batch."
    )
    max_batch_items: int = Field(1000, ge=1, le=100_000, description="Most articles in one batch.")
    max_html_bytes: int = Field(
        3_000_000,
        ge=1024,
        description="Largest html field (UTF-8 bytes) an article may carry; a larger page is a "
        "422 html_too_large before any extraction starts.",
    )
    learn_min_articles: int = Field(
        3,
        ge=2,
        le=1000,
        description="Learned cleaning: distinct unique articles of one source a line must recur "
        "in before it is that source's boilerplate (removed from the next article on).",
    )
    learn_min_share: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="Learned cleaning: and the share of the source's articles since the line "
        "first appeared that must carry it, so a recurring stock sentence is not learned.",
    )
    learn_window_s: int = Field(
        2 * 24 * 3600,
        ge=2,
        description="Learned cleaning: counts older than this are forgotten, and a learned line "
        "not seen for half of it is dropped, so a source can change its template.",
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        repr=False,
        description="Accepted API keys, comma-separated; the keys of api_keys_file are added to "
        "them. None at all: no authentication.",
    )
    api_keys_file: Path | None = Field(
        None,
        description="File of accepted API keys, one per line (blank lines and # comment lines "
        "skipped), added to api_keys. Read at start-up; unreadable or empty is an error.",
    )
    workers: int = Field(
        0, ge=0, le=256, description="Processes for cleaning and hashing; 0 means one per core."
    )
    redis_timeout_s: float = Field(
        2.0, gt=0, description="Socket timeout for Redis commands; an outage answers 503 past it."
    )
    doc_timeout_s: float = Field(
        DEFAULT_DOC_TIMEOUT_S,
        gt=0,
        le=3600,
        description="Longest time cleaning and fingerprinting one document may take; past it the "
        "document fails with extraction_timeout and its worker process is replaced.",
    )
    log_level: str = Field("INFO", description="Python logging level.")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("key_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not value or not _PREFIX_RE.fullmatch(value) or value.count("{") > 1:
            raise ValueError(
                f"key_prefix {value!r} is not usable: use letters, digits and . _ : -, "
                "optionally starting with one hash tag such as '{news}'"
            )
        return value

    @field_validator("articles_stream", "duplicates_stream")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME_RE.fullmatch(value):
            raise ValueError(f"stream name {value!r} may only hold letters, digits and . _ -")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"log_level {value!r} is not one of DEBUG, INFO, WARNING, ERROR")
        return level

    @model_validator(mode="after")
    def _check_streams_differ(self) -> Settings:
        if self.articles_stream == self.duplicates_stream:
            raise ValueError("articles_stream and duplicates_stream must be different streams")
        return self

    @model_validator(mode="after")
    def _add_file_keys(self) -> Settings:
        # Merged into api_keys itself, so every reader of api_keys (the auth middleware, the
        # OpenAPI document) sees the keys of both sources and none can forget the file.
        if self.api_keys_file is not None:
            self.api_keys = list(
                dict.fromkeys([*self.api_keys, *read_api_keys(self.api_keys_file)])
            )
        return self

    @property
    def worker_count(self) -> int:
        """Processes in the CPU pool."""
        return self.workers or (os.cpu_count() or 1)
