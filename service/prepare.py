"""The CPU-bound half of the pipeline: parse -> validate -> clean -> fingerprint.

Everything here is synchronous and runs in the worker processes, so the event loop never
parses a large body, extracts HTML or hashes shingles. Functions answer picklable values:
a :class:`Prepared` article or an :class:`ItemError`, never an exception for one bad item.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from .clean import Cleaned, Removed
from .clean.html import extract_html
from .clean.learned import LAYER as LEARNED_LAYER
from .clean.learned import LearnedCache, LearnedSet, apply_learned, is_learned, segment_digests
from .clean.text import clean_text, infer_title
from .errors import InputError, RejectedContent
from .fingerprint import Fingerprint, content_hash, fingerprint, normalise, words
from .models import ArticleIn, ArticlePayload, ItemError, Params, Prepared
from .urls import host_of, normalise_url

log = logging.getLogger(__name__)


# What this process was last sent of each source's learned set (see learned_for).
KNOWN_DIGESTS = 500_000
_KNOWN = LearnedCache(KNOWN_DIGESTS)

# How deep a batch item may nest. Every article field is a string, so an item nesting deeper
# than this cannot be valid; and parsed items cross process boundaries as pickles, which
# recurse once per level and fail past ~500 (json.loads itself stops at ~1000). Such an item
# fails alone here, in the worker, instead of failing the whole request with a 500.
MAX_ITEM_DEPTH = 32


def decode_body(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            400,
            "invalid_utf8",
            f"request body is not valid UTF-8 (byte offset {exc.start})",
            [{"field": "body", "position": exc.start}],
        ) from exc
    return text.removeprefix("\ufeff")


def loads(text: str, what: str = "request body") -> Any:
    """json.loads with the failures a client can cause turned into 400s."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            400,
            "malformed_json",
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            [{"field": "body", "line": exc.lineno, "column": exc.colno}],
        ) from exc
    except RecursionError as exc:
        raise InputError(
            400, "json_too_deep", f"{what} nests JSON too deeply", [{"field": "body"}]
        ) from exc
    except ValueError as exc:
        # Valid JSON Python will not read: an integer of more than 4300 digits (CPython's
        # guard against quadratic int parsing). A client's doing, so a 400, not a 500.
        raise InputError(
            400,
            "json_number_too_long",
            f"{what} holds a number too long to read: {exc}",
            [{"field": "body"}],
        ) from exc


def parse_single(raw: bytes) -> Any:
    """The decoded JSON of a one-article request; raises :class:`InputError` for the body."""
    return loads(decode_body(raw))


def parse_batch(raw: bytes, *, ndjson: bool, max_items: int) -> list[Any]:
    """The items of a batch request (a JSON array, or one JSON object per line).

    A malformed NDJSON line fails only its own item: it comes back as an :class:`ItemError`.
    """
    text = decode_body(raw)
    items: list[Any]
    if ndjson:
        # NDJSON lines end at "\n" only: str.splitlines() would also break at U+2028, U+2029
        # and U+0085, which JSON strings may hold raw, and split one article into fragments.
        lines = [line for line in text.split("\n") if line.strip()]
        _check_count(len(lines), max_items)
        items = []
        for number, line in enumerate(lines, start=1):
            try:
                items.append(_shallow(loads(line, f"line {number}")))
            except InputError as exc:
                items.append(ItemError(exc.status, exc.code, exc.message, exc.details))
        return items
    parsed = loads(text)
    if not isinstance(parsed, list):
        raise InputError(
            422,
            "validation_error",
            "a batch is a JSON array of articles (or NDJSON with Content-Type "
            "application/x-ndjson)",
            [{"field": "body", "message": f"expected an array, got {type(parsed).__name__}"}],
        )
    _check_count(len(parsed), max_items)
    return [_shallow(item) for item in parsed]


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether ``value`` holds containers more than ``limit`` levels deep (without recursing)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _shallow(item: Any) -> Any:
    """``item`` itself, or an :class:`ItemError` naming the field that nests too deeply."""
    field_name: str | None = None
    if isinstance(item, dict):
        field_name = next(
            (
                str(key)
                for key, value in item.items()
                if isinstance(value, dict | list) and _nests_deeper(value, MAX_ITEM_DEPTH - 1)
            ),
            None,
        )
    elif isinstance(item, list) and _nests_deeper(item, MAX_ITEM_DEPTH):
        field_name = "body"
    if field_name is None:
        return item
    message = f"nests JSON deeper than {MAX_ITEM_DEPTH} levels; article fields are strings"
    return ItemError(
        422,
        "validation_error",
        f"invalid article: check {field_name}",
        [{"field": field_name, "message": message, "type": "too_deep"}],
    )


def _check_count(count: int, max_items: int) -> None:
    if count == 0:
        raise InputError(422, "empty_batch", "the batch holds no articles", [{"field": "body"}])
    if count > max_items:
        raise InputError(
            413,
            "too_many_items",
            f"the batch holds {count} articles; at most {max_items} are accepted per request",
            [{"field": "body", "limit": max_items, "count": count}],
        )


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as ``{"field", "message", "type"}``, without echoing the input."""
    details = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in err["loc"])
        if not err["loc"]:  # not `not loc`: an unknown field named "" must be named as such
            # The only object-level rule names its fields in its message.
            loc = "text" if "'text' or 'html'" in err["msg"] else "body"
        message = err["msg"].removeprefix("Value error, ")
        details.append({"field": loc, "message": message, "type": err["type"]})
    return details


def validate(obj: Any) -> ArticleIn | ItemError:
    try:
        return ArticleIn.model_validate(obj)
    except ValidationError as exc:
        details = validation_details(exc)
        fields = ", ".join(sorted({d["field"] for d in details}))
        return ItemError(422, "validation_error", f"invalid article: check {fields}", details)


def request_hash(article: ArticleIn) -> str:
    canonical = json.dumps(
        article.model_dump(exclude_none=True), sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _clean(article: ArticleIn) -> Cleaned:
    if article.html is not None:
        # The client's published_at wins over the page's date: no need to look for that.
        date = article.published_at is None
        return extract_html(article.html, article.url, article.title, date=date)
    return clean_text(article.text or "", article.title)


def url_key(url: str | None) -> str | None:
    """Digest of the normalised url: the same for every tracking or AMP variant of it."""
    if url is None:
        return None
    return hashlib.sha256(normalise_url(url).encode("utf-8")).hexdigest()[:32]


def derive_id(article: ArticleIn, content_hash: str) -> str:
    """The client's id, else one derived from the normalised url, else from the body."""
    if article.id is not None:
        return article.id
    key = url_key(article.url)
    if key is not None:
        return f"u-{key}"
    return f"c-{content_hash[:32]}"


def _fingerprint(body: str, params: Params) -> Fingerprint:
    return fingerprint(
        body,
        num_perm=params.num_perm,
        shingle_size=params.shingle_size,
        threshold=params.threshold,
        shingle_unit=params.shingle_unit,
    )


def _html_too_large(article: ArticleIn, params: Params) -> ItemError | None:
    if article.html is None:
        return None
    size = len(article.html.encode("utf-8", "surrogatepass"))
    if size <= params.max_html_bytes:
        return None
    # Extraction time grows with the page; a page this large is a dump, not an article, and
    # would hold a worker for its whole deadline.
    message = f"html is {size} bytes; at most {params.max_html_bytes} are extracted"
    detail = {"field": "html", "message": message, "limit": params.max_html_bytes, "size": size}
    return ItemError(422, "html_too_large", message, [detail])


def _nothing_left(field_name: str, why: str = "after cleaning") -> ItemError:
    # Punctuation or symbols only, or only boilerplate: nothing to index or to read.
    message = f"no words left {why}"
    return ItemError(
        422, "empty_after_cleaning", message, [{"field": field_name, "message": message}]
    )


def learned_for(source: str, given: LearnedSet | None) -> LearnedSet | None:
    """The learned set to clean an article of ``source`` with: ``given``, which this process
    then keeps for the source's next articles, or else the one it kept (None: none known).

    The event loop checks the version an answer was made with against the set it holds for
    the source and sends the article again, with that set, when they differ: a stale set
    here costs a second trip, never a wrong answer. In steady state the set is unchanged, and
    an article of a source with a learned template is cleaned and fingerprinted once.
    """
    if given is None:
        return _KNOWN.get(source)
    _KNOWN.put(source, given)
    return given


@dataclasses.dataclass(slots=True)
class _Unlearned:
    """A cleaned article once the learned layer has run over it."""

    title: str | None
    paragraphs: list[str]
    earlier: list[Removed]  # what the other layers removed
    learned: list[Removed]


def _remove_learned(
    cleaned: Cleaned, learned: frozenset[str], *, title_inferred: bool
) -> _Unlearned:
    """The learned layer: drop what the article's source is known to repeat."""
    result = apply_learned(cleaned.paragraphs, learned)
    title, paragraphs, removed = cleaned.title, list(result.paragraphs), list(result.removed)
    earlier = list(cleaned.removed)
    if title_inferred and title and is_learned(title, learned):
        # The line taken for the headline is the site's tagline. The headline is the next
        # line that reads like one: still in the body, or dropped there as a short line.
        removed.insert(0, Removed(title, LEARNED_LAYER, "source_repeated_title"))
        title = cleaned.next_title
        if title is None:
            title, paragraphs = infer_title(paragraphs)
        else:
            paragraphs = [p for p in paragraphs if p != title]
            earlier = [r for r in earlier if r.text != title]
    return _Unlearned(title, paragraphs, earlier, removed)


_LEARNED_EMPTY = "once the source's learned boilerplate is removed"


def prepare_article(
    article: ArticleIn, params: Params, learned: LearnedSet | None = None
) -> Prepared | ItemError:
    """Clean and fingerprint one validated article, with the learned layer when ``learned``,
    or the set this process keeps for the article's source, holds any of its segments.

    The id, request hash and segment digests are those of the article before the learned
    layer, so a replay is recognised and the template keeps being counted whatever has been
    learned meanwhile.
    """
    field_name = "html" if article.html is not None else "text"
    too_large = _html_too_large(article, params)
    if too_large is not None:
        return too_large
    try:
        cleaned = _clean(article)
    except RejectedContent as exc:
        return ItemError(
            422, exc.reason, exc.message, [{"field": exc.field, "message": exc.message}]
        )
    source = article.source or (host_of(article.url) if article.url else None) or "unknown"
    inferred = (
        [cleaned.title] if cleaned.title and article.title is None and article.html is None else []
    )
    segments = tuple(segment_digests([*inferred, *cleaned.paragraphs]))
    known = learned_for(source, learned)
    applied = known if known is not None and known.applies_to(segments) else None
    after = (
        _remove_learned(cleaned, applied.digests, title_inferred=bool(inferred))
        if applied is not None
        else _Unlearned(cleaned.title, list(cleaned.paragraphs), list(cleaned.removed), [])
    )
    text = "\n\n".join(after.paragraphs)
    fp = _fingerprint(text, params) if after.paragraphs else None
    if fp is None or fp.word_count == 0:
        # No words before the learned layer, or none after it: say which.
        if not after.learned or not words(normalise(cleaned.text)):
            return _nothing_left(field_name)
        return _nothing_left(field_name, _LEARNED_EMPTY)
    counts: dict[str, int] = {}
    for seg in after.earlier:
        counts[seg.layer] = counts.get(seg.layer, 0) + 1
    if after.learned:
        counts[LEARNED_LAYER] = len(after.learned)
    payload = ArticlePayload(
        title=after.title,
        text=text,
        source=source,
        url=article.url,
        published_at=article.published_at or cleaned.published_at,
        language=article.language or cleaned.language,
        author=cleaned.author,
        sitename=cleaned.sitename,
        description=cleaned.description,
        categories=list(cleaned.categories),
        tags=list(cleaned.tags),
        word_count=fp.word_count,
        content_hash=fp.content_hash,
        removed_counts=counts,
    )
    # An id derived from the body is that of the body before the learned layer, which changes
    # as the source learns: the same article sent again must keep its id.
    body_hash = fp.content_hash
    if after.learned and article.id is None and article.url is None:
        body_hash = content_hash(normalise(cleaned.text))
    return Prepared(
        id=derive_id(article, body_hash),
        request_hash=request_hash(article),
        content_hash=fp.content_hash,
        signature=fp.signature,
        bands=fp.bands,
        source=source,
        url=article.url,
        payload_json=payload.model_dump_json(),
        removed=[(seg.text, seg.layer, seg.reason) for seg in (*after.earlier, *after.learned)],
        segments=segments,
        field=field_name,
        shingle_count=fp.shingle_count,
        anchors=tuple(fp.anchors),
        url_key=url_key(article.url),
        learned_version=applied.version if applied is not None else None,
    )


def prepared_from_body(
    article_id: str,
    text: str,
    params: Params,
    *,
    source: str = "unknown",
    url: str | None = None,
    request_hash: str | None = None,
) -> Prepared:
    """An already clean body made ready for the index, fingerprinted as the service does.

    For tools and tests that exercise the index without the cleaning layers.
    """
    fp = _fingerprint(text, params)
    payload = ArticlePayload(
        title=None,
        text=text,
        source=source,
        url=url,
        published_at=None,
        language=None,
        word_count=fp.word_count,
        content_hash=fp.content_hash,
    )
    return Prepared(
        id=article_id,
        request_hash=request_hash or hashlib.sha256(f"{article_id}\n{text}".encode()).hexdigest(),
        content_hash=fp.content_hash,
        signature=fp.signature,
        bands=fp.bands,
        source=source,
        url=url,
        payload_json=payload.model_dump_json(),
        removed=[],
        shingle_count=fp.shingle_count,
        anchors=tuple(fp.anchors),
        url_key=url_key(url),
    )


def prepare_items(
    items: list[Any],
    params: Params,
    learned: LearnedSet | None = None,
    hints: Sequence[tuple[str, LearnedSet]] = (),
) -> list[Prepared | ItemError]:
    """Validate, clean and fingerprint parsed items; each fails alone. ``learned``: the
    learned set of their source (see :func:`prepare_article`); ``hints``: sets of sources to
    keep for later articles (service.pipeline sends them along)."""
    for source, known in hints:
        learned_for(source, known)
    results: list[Prepared | ItemError] = []
    for obj in items:
        if isinstance(obj, ItemError):
            results.append(obj)
            continue
        article = validate(obj)
        if isinstance(article, ItemError):
            results.append(article)
            continue
        try:
            results.append(prepare_article(article, params, learned))
        except Exception:  # one pathological document must not fail its whole batch
            log.exception("unexpected failure preparing an article")
            field_name = "html" if article.html is not None else "text"
            message = "the article could not be processed"
            results.append(
                ItemError(
                    422, "unprocessable", message, [{"field": field_name, "message": message}]
                )
            )
    return results


def prepare_single(
    raw: bytes,
    params: Params,
    learned: LearnedSet | None = None,
    hints: Sequence[tuple[str, LearnedSet]] = (),
) -> Prepared | ItemError:
    """Parse and prepare a one-article request body; body errors raise InputError."""
    return prepare_items([parse_single(raw)], params, learned, hints)[0]


# A page whose only date is one htmldate hands to dateparser, which compiles its patterns for
# every locale on first use: seconds the first real HTML page of each worker would otherwise pay.
_WARM_HTML = (
    "<html><head><title>Warm-up story</title></head><body><article><h1>Warm-up story</h1>"
    + "".join(
        f"<p>Paragraph {i} of the warm-up story, long enough to be kept as text.</p>"
        for i in range(8)
    )
    + "</article><div class='footer'>Hire the top 1% of talentCopyright 2010</div></body></html>"
)


def warm(params: Params) -> int:
    """Import and exercise every path once (text, HTML, dates), so no request pays for it."""
    import os

    prepare_items([{"text": "Warm-up article body. " * 20}, {"html": _WARM_HTML}], params)
    return os.getpid()
