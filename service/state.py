"""Typed keys for what the app holds during its lifetime."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .index import Store
from .metrics import Metrics
from .pipeline import Pipeline
from .pool import WorkerPool
from .settings import Settings

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
POOL = web.AppKey("pool", WorkerPool)
PIPELINE = web.AppKey("pipeline", Pipeline)
OPENAPI = web.AppKey("openapi", dict[str, Any])
REDIS_URL = web.AppKey("redis_url", str)
