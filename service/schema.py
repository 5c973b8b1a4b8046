"""JSON Schema of the events on the streams, and the settings table for the docs.

The event schema is generated from the pydantic models in ``service.models``; a copy lives in
``service/schemas/events.json`` for consumers in other languages, and a test keeps the two equal.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from pydantic.json_schema import models_json_schema
from pydantic_core import PydanticUndefined

from .models import SCHEMA_VERSION, ArticleEvent, DuplicateEvent
from .settings import Settings

EVENTS_SCHEMA_FILE = "schemas/events.json"


def events_json_schema() -> dict[str, Any]:
    """One document: the ``data`` field of every stream entry is one of its ``oneOf``."""
    _, top = models_json_schema(
        [(ArticleEvent, "serialization"), (DuplicateEvent, "serialization")],
        ref_template="#/$defs/{model}",
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://news-ingest.invalid/schemas/events/v{SCHEMA_VERSION}.json",
        "title": "news-ingest events",
        "description": (
            "The JSON in the `data` field of each stream entry. Entries also carry `type` "
            "(the event type) and `id` (the article id) as plain fields. article.created and "
            "article.updated go to <prefix>:articles, article.duplicate to <prefix>:duplicates. "
            "Reject a schema_version you do not know."
        ),
        "oneOf": [{"$ref": "#/$defs/ArticleEvent"}, {"$ref": "#/$defs/DuplicateEvent"}],
        "$defs": top["$defs"],
    }


def render_events_schema() -> str:
    return json.dumps(events_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def shipped_events_schema() -> str:
    """The copy of the schema shipped in the package."""
    return resources.files("service").joinpath(EVENTS_SCHEMA_FILE).read_text(encoding="utf-8")


def _default(value: Any) -> str:
    if value is PydanticUndefined or value is None:
        return "unset"
    if isinstance(value, list):
        return ", ".join(value) or "empty"
    return str(value)


def settings_table() -> str:
    """The configuration table of the README, from the settings class itself."""
    rows = [
        "| variable | default | meaning |",
        "| --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        env = f"NEWS_INGEST_{name.upper()}"
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{env}` | `{_default(default)}` | {description} |")
    return "\n".join(rows) + "\n"
