"""The OpenAPI 3.1 document, generated from the pydantic models of ``service.models``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import __version__
from .models import (
    ID_MAX_LENGTH,
    ID_PATTERN,
    ArticleIn,
    BatchResponse,
    Decision,
    DryRunDecision,
    ErrorResponse,
    StoredArticle,
)
from .settings import Settings

_REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "Malformed JSON or UTF-8.",
        401: "API keys are configured and none was given, or it is wrong.",
        404: "No such article, or it expired.",
        413: "The body is over the size limit, or the batch over the item limit.",
        415: "Wrong Content-Type, or a Content-Encoding other than gzip, deflate or identity.",
        422: "Validation failed; details name the field.",
        503: "Redis is unavailable; retry after Retry-After seconds.",
    }
    return {str(s): _json(_ref(ErrorResponse), meaning[s]) for s in statuses}


def build(settings: Settings) -> dict[str, Any]:
    """The document served at ``/openapi.json``."""
    _, top = models_json_schema(
        [
            (ArticleIn, "validation"),
            (Decision, "serialization"),
            (DryRunDecision, "serialization"),
            (BatchResponse, "serialization"),
            (StoredArticle, "serialization"),
            (ErrorResponse, "serialization"),
        ],
        ref_template=_REF,
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    dry_run = {
        "name": "dry_run",
        "in": "query",
        "required": False,
        "description": "Process and decide, but store and publish nothing.",
        "schema": {"type": "boolean", "default": False},
    }
    batch_items = {
        "type": "array",
        "items": _ref(ArticleIn),
        "minItems": 1,
        "maxItems": settings.max_batch_items,
    }
    security: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
    if not settings.api_keys:
        security.append({})  # authentication is off: a request without a key is fine
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "news-ingest",
            "version": __version__,
            "description": "Clean, deduplicate and publish news articles to Redis Streams.",
        },
        "paths": {
            "/v1/articles": {
                "post": {
                    "operationId": "postArticle",
                    "summary": "Ingest one article",
                    "parameters": [dry_run],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(ArticleIn)}},
                    },
                    "responses": {
                        "201": _json(_ref(Decision), "A new story: published as article.created."),
                        "200": _json(
                            {"anyOf": [_ref(Decision), _ref(DryRunDecision)]},
                            "A duplicate, an update, a replay, or a dry run's decision.",
                        ),
                        **_errors(400, 401, 413, 415, 422, 503),
                    },
                    "security": security,
                }
            },
            "/v1/articles/batch": {
                "post": {
                    "operationId": "postArticleBatch",
                    "summary": "Ingest up to max_batch_items articles, in order",
                    "parameters": [dry_run],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": batch_items},
                            "application/x-ndjson": {
                                "schema": {"type": "string", "description": "One article a line."}
                            },
                        },
                    },
                    "responses": {
                        "200": _json(_ref(BatchResponse), "One result per item, in input order."),
                        **_errors(400, 401, 413, 415, 422, 503),
                    },
                    "security": security,
                }
            },
            "/v1/articles/{id}": {
                "get": {
                    "operationId": "getArticle",
                    "summary": "The stored article and its decision",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "maxLength": ID_MAX_LENGTH,
                                "pattern": ID_PATTERN,
                            },
                        }
                    ],
                    "responses": {
                        "200": _json(_ref(StoredArticle), "The article."),
                        **_errors(401, 404, 422, 503),
                    },
                    "security": security,
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "The process is up",
                    "responses": {"200": _json({"type": "object"}, "Alive.")},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Redis answers; the service can accept articles",
                    "responses": {
                        "200": _json({"type": "object"}, "Ready."),
                        "503": _json({"type": "object"}, "Redis is unreachable."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Text exposition format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")},
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
