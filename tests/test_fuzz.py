"""Fuzzing: schemathesis against the service's own /openapi.json, and hypothesis on the
worker-side path (validation and preparation) with arbitrary JSON-like values.

Both are derandomized: the same cases run every time, so a failure reproduces and the run
time stays bounded.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import requests
import schemathesis
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.models import ArticleIn, ItemError, Params, Prepared
from service.prepare import parse_batch, prepare_items, validate

Client = TestClient[Any, Any]
# As schemathesis hands them out: its loaders and strategies leave the type parameters open.
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
FuzzCase = schemathesis.Case[Any]

# Generated cases per operation and generation mode (positive: what the schema allows,
# negative: what it forbids). Operations without parameters (the probes) have one case each.
BUDGET = {
    "POST /v1/articles": 260,
    "POST /v1/articles/batch": 160,
    "GET /v1/articles/{id}": 100,
}
MIN_CASES = 1000

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# A batch item that is not an article fails alone (README), so a batch holding one is not
# refused as a whole: negative_data_rejection does not apply to batch bodies as written.
# check_batch_items checks the contract that does: every such item comes back as an error.
BATCH = "POST /v1/articles/batch"
# Refusals the API documents: 413 for a body or batch over a limit is one of them (schemathesis
# expects only 400/401/403/404/405/406/409/415/422/428/429 by default).
REJECTIONS = [400, 401, 404, 405, 413, 415, 422]

FUZZ_SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    # Shrinking only runs on a failure; it makes the report readable.
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    dry_runs: int = 0
    stored_checked: int = 0

    @property
    def total(self) -> int:
        return sum(self.cases.values())


def check_error_body(response: schemathesis.Response) -> None:
    """Every error answer has the one documented shape, with the request id of its header."""
    body = response.json()
    error = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}, body
    # schemathesis keeps headers with lowercase names and list values.
    assert [error["request_id"]] == response.headers["x-request-id"], body


def check_batch_items(case: FuzzCase, response: schemathesis.Response) -> None:
    """One result per item, in order; an item that is not a valid article is an error."""
    results = response.json()["results"]
    if isinstance(case.body, list):  # else NDJSON text, which the service splits itself
        assert len(results) == len(case.body)
        for item, result in zip(case.body, results, strict=True):
            if isinstance(validate(item), ItemError):
                assert set(result) == {"error"}, (item, result)


def fuzz_operation(
    operation: Operation,
    mode: GenerationMode,
    *,
    base_url: str,
    session: requests.Session,
    tally: Tally,
) -> None:
    """Generate and send ``BUDGET`` cases of one operation; raises on the first failure."""
    label = operation.label
    get_article = operation.schema["/v1/articles/{id}"]["GET"]
    checks = CHECKS if label == BATCH else [*CHECKS, negative_data_rejection]

    @settings(FUZZ_SETTINGS, max_examples=BUDGET.get(label, 5))
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: FuzzCase) -> None:
        response = case.call(base_url=base_url, session=session, timeout=60)
        tally.cases[f"{label} {mode.value}"] += 1
        tally.statuses[str(response.status_code)] += 1
        if case.query and str(case.query.get("dry_run")).lower() == "true":
            tally.dry_runs += 1
        case.validate_response(response, checks=checks)
        if label == BATCH and response.status_code == 200:
            check_batch_items(case, response)
        if response.status_code >= 400:
            check_error_body(response)
        elif response.status_code == 201:
            # What was just stored reads back as the GET operation documents it.
            (location,) = response.headers["location"]
            stored = session.get(f"{base_url}{location}", timeout=10)
            assert stored.status_code == 200, stored.text
            get_article.validate_response(stored)
            tally.stored_checked += 1

    fuzz()


def run_schemathesis(base_url: str) -> Tally:
    """Every operation of /openapi.json, positive and negative; raises on the first failure."""
    config = schemathesis.Config.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}}
    )
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)
    tally = Tally()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()  # the document itself is broken: no operation to fuzz
            operation = result.ok()
            # Negative cases need something to break: the probes take no input at all.
            negative = [GenerationMode.NEGATIVE] if operation.label in BUDGET else []
            for mode in [GenerationMode.POSITIVE, *negative]:
                fuzz_operation(operation, mode, base_url=base_url, session=session, tally=tally)
    return tally


async def test_schemathesis_against_the_openapi_document(
    client: Client, redis_client: aioredis.Redis
) -> None:
    """No 5xx, documented statuses, content types and response schemas, >= 1,000 cases."""
    base_url = str(client.make_url("")).rstrip("/")
    started = time.perf_counter()
    # schemathesis is synchronous (requests); the server runs on this test's event loop.
    tally = await asyncio.to_thread(run_schemathesis, base_url)
    elapsed = time.perf_counter() - started
    print(
        f"\nschemathesis: {tally.total} cases in {elapsed:.1f} s; {dict(tally.cases)}; "
        f"statuses {dict(sorted(tally.statuses.items()))}; {tally.dry_runs} dry runs; "
        f"{tally.stored_checked} stored articles read back"
    )
    assert tally.total >= MIN_CASES
    assert not any(status.startswith("5") for status in tally.statuses)
    # The fuzzing reached the success paths, not only the refusals.
    assert tally.statuses["201"] > 0
    assert tally.statuses["200"] > 0
    assert tally.dry_runs > 0
    assert tally.stored_checked > 0


# --- the worker-side path, in process -------------------------------------------------------

PARAMS = Params()
FIELDS = ["id", "url", "source", "title", "text", "html", "published_at", "language"]

# Strings including what JSON can carry and Python's str allows: NUL and other controls,
# lone surrogates (from "\ud800" escapes), invisible characters.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=60)
TRICKY = st.sampled_from(
    ["", " ", "\x00", "\x01\x02", "\ud800", "a\udfffb", "\u200b", "\ufeff", "\u2028", "<div>"]
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT | TRICKY
JSON_LIKE = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=20,
)
PROSE = st.lists(
    st.sampled_from(["Police", "said", "the", "city", "council", "voted", "on", "Monday", "."]),
    min_size=0,
    max_size=60,
).map(" ".join)
FIELD_VALUE = st.one_of(PROSE, ANY_TEXT, TRICKY, JSON_LIKE)
VALUES = {
    "id": st.one_of(st.from_regex(r"[A-Za-z0-9._:-]{1,20}", fullmatch=True), FIELD_VALUE),
    "url": st.one_of(st.just("https://example.com/a/story"), FIELD_VALUE),
    "published_at": st.one_of(st.just("2024-05-01T12:00:00Z"), FIELD_VALUE),
    "language": st.one_of(st.just("pt-BR"), FIELD_VALUE),
    "html": st.one_of(PROSE.map(lambda p: f"<html><body><p>{p}</p></body></html>"), FIELD_VALUE),
}
# Any field, with junk values as likely as good ones: mostly validation failures.
ARTICLE_LIKE = st.fixed_dictionaries(
    {},
    optional={name: VALUES.get(name, FIELD_VALUE) for name in FIELDS} | {"extra": JSON_LIKE},
)
# Valid articles with hostile strings where strings are free: they reach the cleaners.
HOSTILE_PROSE = st.lists(st.one_of(PROSE, ANY_TEXT, TRICKY), max_size=4).map("\n".join)
OPTIONAL_GOOD = {
    "id": st.from_regex(r"[A-Za-z0-9._:-]{1,20}", fullmatch=True),
    "url": st.sampled_from(["https://example.com/a/story?utm_source=x", "http://EXAMPLE.com"]),
    "source": st.text(st.characters(exclude_categories=["C"]), min_size=1, max_size=20),
    "title": st.one_of(PROSE, ANY_TEXT),
    "published_at": st.sampled_from(["2024-05-01T12:00:00Z", "2024-05-01 12:00:00.123+05:30"]),
    "language": st.sampled_from(["en", "pt-BR", "zh-Hant-TW"]),
}
PLAUSIBLE = st.one_of(
    st.fixed_dictionaries({"text": HOSTILE_PROSE}, optional=OPTIONAL_GOOD),
    st.fixed_dictionaries(
        {"html": HOSTILE_PROSE.map(lambda p: f"<html><body><article><p>{p}</p></article>")},
        optional=OPTIONAL_GOOD,
    ),
)


@settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(obj=st.one_of(JSON_LIKE, ARTICLE_LIKE, PLAUSIBLE))
def test_validate_and_prepare_never_raise(obj: Any) -> None:
    """Whatever JSON a client sends as an article: an ArticleIn or an ItemError, never a raise."""
    article = validate(obj)
    assert isinstance(article, ArticleIn | ItemError)
    (direct,) = prepare_items([obj], PARAMS)
    # As a batch: JSON text, parsed in a worker, pickled across to the next process.
    items = parse_batch(json.dumps([obj]).encode(), ndjson=False, max_items=10)
    crossed = pickle.loads(pickle.dumps(items))  # noqa: S301 - our own objects, as the pool does
    (batched,) = prepare_items(crossed, PARAMS)
    for result in (direct, batched):
        assert isinstance(result, Prepared | ItemError)
        if isinstance(result, ItemError):
            assert 400 <= result.status < 500
            # "unprocessable" is the net under prepare_article: an exception nobody expected.
            assert result.code != "unprocessable", result
            assert all("field" in detail for detail in result.details), result
        if isinstance(article, ItemError):
            assert isinstance(result, ItemError)
    assert type(direct) is type(batched)
