"""The ``news-ingest`` command: serve, ingest, tail, inspect, index-info, schema, config, reset.

Flags override ``NEWS_INGEST_*`` environment variables, which override the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import ValidationError

from . import logs
from .clean import Cleaned, Removed
from .clean.text import normalise_line
from .embedded import recorded_url
from .errors import IndexMismatch
from .fingerprint import lsh_params, match_probability
from .loader import JSONL_SUFFIXES, KNOWN, Record, expand, load, records
from .models import ArticleIn, ItemError, Params, Prepared, parse_event
from .settings import Settings, redact_url
from .state import PIPELINE, REDIS_URL, SETTINGS

log = logging.getLogger("service.cli")


def _add_settings_flags(parser: argparse.ArgumentParser, *names: str) -> None:
    """One ``--flag`` per setting (all of them when no names are given), typed by pydantic.

    Values stay strings here: Settings validates them exactly as it validates the environment,
    with the same messages.
    """
    for name, field in Settings.model_fields.items():
        if names and name not in names:
            continue
        env = f"NEWS_INGEST_{name.upper()}"
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            metavar=name.upper(),
            help=f"{field.description} [{env}]",
        )


def settings_from(args: argparse.Namespace) -> Settings:
    """Defaults, overridden by NEWS_INGEST_* variables, overridden by the flags given."""
    overrides = {
        name: getattr(args, name)
        for name in Settings.model_fields
        if getattr(args, name, None) is not None
    }
    return Settings(**overrides)


class Summary:
    """Counts of what an ingest run got back."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []

    def add(self, origin: str, result: dict[str, Any]) -> None:
        if "error" in result:
            self.counts["errors"] += 1
            err = result["error"]
            self.errors.append(f"{origin}: {err.get('code')}: {err.get('message')}")
        elif result.get("replayed"):
            self.counts["replayed"] += 1
        else:
            self.counts[str(result.get("status"))] += 1

    def add_local_error(self, record: Record) -> None:
        self.counts["errors"] += 1
        self.errors.append(f"{record.origin}: {record.error}")

    def render(self) -> str:
        order = ("unique", "duplicate", "updated", "replayed", "errors")
        line = ", ".join(f"{k} {self.counts.get(k, 0)}" for k in order)
        shown = "".join(f"\n  {e}" for e in self.errors[:20])
        more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        return line + shown + more


def _ndjson(records: Sequence[Record]) -> bytes:
    return b"".join(json.dumps(r.article, ensure_ascii=False).encode() + b"\n" for r in records)


async def post_records(
    records: Sequence[Record],
    *,
    url: str,
    batch_size: int,
    api_key: str | None,
    dry_run: bool,
    progress: bool,
) -> Summary:
    """Post records in NDJSON batches to a running service."""
    from tqdm import tqdm

    summary = Summary()
    good = [r for r in records if r.article is not None]
    for bad in (r for r in records if r.article is None):
        summary.add_local_error(bad)
    headers = {"Content-Type": "application/x-ndjson"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    endpoint = url.rstrip("/") + "/v1/articles/batch" + ("?dry_run=true" if dry_run else "")
    timeout = aiohttp.ClientTimeout(total=600)
    with tqdm(total=len(good), unit="article", disable=not progress, file=sys.stderr) as bar:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for start in range(0, len(good), batch_size):
                chunk = good[start : start + batch_size]
                async with session.post(endpoint, data=_ndjson(chunk), headers=headers) as resp:
                    body = await resp.json(content_type=None)
                if "results" in body:
                    for record, result in zip(chunk, body["results"], strict=True):
                        summary.add(record.origin, result)
                else:
                    for record in chunk:
                        summary.add(record.origin, body)
                bar.update(len(chunk))
    return summary


async def ingest_in_process(app: web.Application, records: Sequence[Record]) -> Summary:
    """Ingest records through the app's own pipeline (``serve --seed-dir``)."""
    summary = Summary()
    good = [r for r in records if r.article is not None]
    for bad in (r for r in records if r.article is None):
        summary.add_local_error(bad)
    pipeline = app[PIPELINE]
    size = app[SETTINGS].max_batch_items
    for start in range(0, len(good), size):
        chunk = good[start : start + size]
        outcomes = await pipeline.ingest_batch(_ndjson(chunk), ndjson=True, dry_run=False)
        for record, outcome in zip(chunk, outcomes, strict=True):
            if isinstance(outcome, ItemError):
                summary.add(
                    record.origin, {"error": {"code": outcome.code, "message": outcome.message}}
                )
            else:
                summary.add(record.origin, outcome.model_dump())
    return summary


def _seed_ctx(seed_dir: Path) -> Any:
    async def seed(app: web.Application) -> AsyncIterator[None]:
        async def run() -> None:
            records = load([seed_dir])
            try:
                summary = await ingest_in_process(app, records)
            except Exception:
                log.exception("seeding failed", extra={"seed_dir": str(seed_dir)})
                return
            print(
                f"seeded {len(records)} records from {seed_dir}: {summary.render()}",
                file=sys.stderr,
                flush=True,
            )

        task = asyncio.create_task(run())
        yield
        if not task.done():
            task.cancel()

    return seed


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed: the event loop runs HTTP, Redis and the hand-over to
    the workers, and uvloop's loop machinery costs less CPU than asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def cmd_serve(args: argparse.Namespace) -> int:
    from .app import create_app

    settings = settings_from(args)
    logs.setup(settings.log_level)
    app = create_app(settings)
    if args.seed_dir is not None:
        if not args.seed_dir.is_dir():
            print(f"--seed-dir {args.seed_dir}: not a directory", file=sys.stderr)
            return 2
        app.cleanup_ctx.append(_seed_ctx(args.seed_dir))

    async def announce(app: web.Application) -> None:
        print(
            f"news-ingest listening on http://{settings.host}:{settings.port} "
            f"(redis {redact_url(app[REDIS_URL])}, prefix {settings.key_prefix!r})",
            file=sys.stderr,
            flush=True,
        )

    async def settle(_app: web.Application) -> None:
        # Started: imports, the app and the Redis client live until shutdown.
        from .pool import freeze_heap

        freeze_heap()

    app.on_startup.append(announce)
    app.on_startup.append(settle)
    try:
        web.run_app(
            app,
            loop=_event_loop(),
            host=settings.host,
            port=settings.port,
            print=None,
            # aiohttp waits this long for in-flight handlers, then cancels them and waits up
            # to as long again: half the grace period each keeps the whole within --grace-s.
            shutdown_timeout=float(args.grace_s) / 2,
            access_log=None,
        )
    except IndexMismatch as exc:
        print(f"news-ingest: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    records = load(args.paths)
    if not records:
        print("no .txt, .html, .json or .jsonl files found", file=sys.stderr)
        return 2
    try:
        summary = asyncio.run(
            post_records(
                records,
                url=args.url,
                batch_size=args.batch_size,
                api_key=args.api_key,
                dry_run=args.dry_run,
                progress=not args.quiet,
            )
        )
    except aiohttp.ClientError as exc:
        print(f"cannot reach the service at {args.url}: {exc}", file=sys.stderr)
        return 1
    print(summary.render())
    return 1 if summary.counts.get("errors") else 0


def _redis_url_for_tools(settings: Settings) -> str:
    url = settings.redis_url or recorded_url(settings.data_dir)
    if url is None:
        raise SystemExit(
            "no Redis URL: set NEWS_INGEST_REDIS_URL / --redis-url, or start "
            f"`news-ingest serve` (its embedded server records its URL in {settings.data_dir})"
        )
    return url


def _describe(event_type: str, entry_id: str, data: str) -> str:
    try:
        event = parse_event(event_type, data)
    except (ValueError, ValidationError) as exc:
        return f"{entry_id} {event_type} (undecodable: {exc})"
    if event.type == "article.duplicate":
        return (
            f"{entry_id} {event.type} {event.id} -> {event.duplicate_of} "
            f"({event.relation}, similarity {event.similarity:.2f}, {event.source})"
        )
    art = event.article
    return (
        f"{entry_id} {event.type} {event.id} {art.title!r} ({art.source}, {art.word_count} words)"
    )


async def _tail(settings: Settings, args: argparse.Namespace) -> None:
    import redis.asyncio as aioredis

    from .keys import Keys

    keys = Keys(settings.key_prefix, settings.articles_stream, settings.duplicates_stream)
    streams = {
        "articles": [keys.articles_stream],
        "duplicates": [keys.duplicates_stream],
        "all": [keys.articles_stream, keys.duplicates_stream],
    }[args.stream]
    start = "0" if args.from_start else "$"
    cursors: dict[Any, Any] = dict.fromkeys(streams, start)
    seen = 0
    async with aioredis.Redis.from_url(
        _redis_url_for_tools(settings), decode_responses=True
    ) as client:
        if start == "$":
            # Resolve "$" once, so events between two reads are not skipped.
            for stream in streams:
                info = await client.xinfo_stream(stream) if await client.exists(stream) else None
                cursors[stream] = info["last-generated-id"] if info else "0"
        while args.count is None or seen < args.count:
            response: Any = await client.xread(cursors, block=1000, count=100)
            for name, entries in response or []:
                for entry_id, fields in entries:
                    cursors[name] = entry_id
                    if args.json:
                        line = json.dumps({"stream": name, "entry_id": entry_id, **fields})
                    else:
                        line = _describe(fields.get("type", ""), entry_id, fields.get("data", ""))
                    print(line, flush=True)
                    seen += 1
                    if args.count is not None and seen >= args.count:
                        return


def cmd_tail(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    try:
        asyncio.run(_tail(settings, args))
    except KeyboardInterrupt:
        return 0
    return 0


def cmd_index_info(args: argparse.Namespace) -> int:
    from .fingerprint import ANCHOR_RATE, ANCHOR_WORDS, MAX_ANCHORS, verified_probability

    settings = settings_from(args)
    threshold, num_perm = settings.dedup_threshold, settings.num_perm
    bands, rows = lsh_params(threshold, num_perm)
    print(
        f"threshold {threshold}, num_perm {num_perm}, shingles of {settings.shingle_size} "
        f"{settings.shingle_unit}"
    )
    print(f"LSH: {bands} bands x {rows} rows; candidates are verified by their signature")
    print(
        f"anchors: word {ANCHOR_WORDS}-grams whose hash is 0 mod {ANCHOR_RATE} (at most "
        f"{MAX_ANCHORS}), for excerpt and superset at containment "
        f"{settings.containment_threshold}"
    )
    print("P(candidate): some band matches; P(match): a candidate whose estimate passes too")
    print("similarity  P(candidate)  P(match)")
    for step in range(0, 21):
        sim = step / 20
        candidate = match_probability(sim, bands, rows)
        matched = candidate * verified_probability(sim, num_perm, threshold)
        print(
            f"  {sim:4.2f}      {candidate:6.4f}      {matched:6.4f}  {'#' * round(matched * 40)}"
        )
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .schema import render_events_schema

    text = render_events_schema()
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote the event schema to {args.output}", file=sys.stderr)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from .schema import settings_table

    sys.stdout.write(settings_table())
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if not args.yes:
        print(
            f"this deletes every key under prefix {settings.key_prefix!r}; add --yes",
            file=sys.stderr,
        )
        return 2

    async def run() -> int:
        from .app import make_store

        store = make_store(settings, _redis_url_for_tools(settings), deadline=False)
        try:
            return await store.reset()
        finally:
            await store.client.aclose()

    print(f"deleted {asyncio.run(run())} keys")
    return 0


# --- inspect ----------------------------------------------------------------------------------

# Elements whose text a reader never sees, and elements that start and end a line of the page.
_HIDDEN_TAGS = frozenset({"script", "style", "noscript", "template", "title", "svg"})
_BLOCK_TAGS = frozenset(
    {
        *("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "tr", "article"),
        *("section", "header", "footer", "nav", "aside", "blockquote", "pre", "dt", "dd", "ul"),
        *("ol", "dl", "table", "figure", "figcaption", "caption", "form", "label", "option"),
        *("main", "address", "details", "summary", "body", "button", "br", "hr"),
    }
)
# How trafilatura marks list items and table cells in its text, which the page does not print.
_EXTRACT_DECORATION = re.compile(r"^(?:[-|]\s+)+|(?:\s+\|)+$")
_LOOKS_LIKE_HTML = re.compile(
    r"\s*<(?:!doctype|!--|html|head|body|div|p|article|section|main|h[1-6]|meta|title)[\s>/]",
    re.IGNORECASE,
)
_REDIS_FLAGS = ("redis_url", "data_dir", "key_prefix")


class _PageText(HTMLParser):
    """The visible text of a page, one line per block element (as a scraper would keep it)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag in _BLOCK_TAGS:
            self.end_line()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:  # <br/>; a self-closed <script/> hides nothing
            self.end_line()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.end_line()

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self._parts.append(data)

    def end_line(self) -> None:
        line = normalise_line("".join(self._parts))
        if line:
            self.lines.append(line)
        self._parts.clear()


def _page_lines(page: str) -> list[str]:
    parser = _PageText()
    try:
        parser.feed(page)
        parser.close()
    except AssertionError:  # html.parser's verdict on some broken markup: show what it read
        pass
    parser.end_line()
    return parser.lines


def _page_view(page: list[str], extracted: list[str]) -> list[str]:
    """The page's visible lines with trafilatura's lines in their place.

    Every extracted line is kept, so every paragraph and removal of the answer has its line;
    a page line is dropped only where trafilatura printed the same text (as a list item, a
    table row, or joined with its neighbours), so the others are the text it left out.
    """
    import difflib

    def key(line: str) -> str:
        return _EXTRACT_DECORATION.sub("", line).replace(" | ", " ").casefold()

    page_keys = [key(line) for line in page]
    extracted_keys = [key(line) for line in extracted]
    matcher = difflib.SequenceMatcher(None, page_keys, extracted_keys, autojunk=False)
    view: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            printed = "\n".join(extracted_keys[j1:j2])
            view.extend(
                line
                for line, line_key in zip(page[i1:i2], page_keys[i1:i2], strict=True)
                if line_key not in printed
            )
        view.extend(extracted[j1:j2])
    return view


def _extracted(article: ArticleIn) -> tuple[list[str], str | None] | None:
    """trafilatura's lines of the page and the page's title, or None when it found nothing."""
    # The service's own call, options and all: extract_html answers the cleaned paragraphs
    # only, and the view needs the lines they were cleaned from, in order.
    from .clean.html import extract_page
    from .errors import RejectedContent

    try:
        page = extract_page(article.html or "", article.url, date=False)  # the view shows no date
    except RejectedContent:
        return None
    if page is None or not page.text.strip():
        return None
    found = page.metadata.title
    title = normalise_line(found) if isinstance(found, str) else ""
    return page.text.split("\n"), title or None


def _when_rejected(article: ArticleIn, extracted: tuple[list[str], str | None] | None) -> Cleaned:
    """What the layers removed from a document the service rejects, for the reader to see.

    RejectedContent carries the reason only, so the layers run again as clean_text and
    extract_html run them, this time keeping their answer.
    """
    from .clean.text import clean_lines, clean_paragraphs, split_lines

    title = (normalise_line(article.title) or None) if article.title else None
    if article.html is None:
        lines = split_lines(article.text or "")
        cleaned = clean_lines(lines, title, infer=True, features=True)
        return Cleaned(
            title=cleaned.title, paragraphs=tuple(cleaned.kept), removed=tuple(cleaned.removed)
        )
    if extracted is None:
        return Cleaned(title=title, paragraphs=())
    lines, page_title = extracted
    kept, removed = clean_paragraphs(lines, page_title or title)
    return Cleaned(title=title or page_title, paragraphs=tuple(kept), removed=tuple(removed))


def _cleaned_of(prepared: Prepared) -> Cleaned:
    """The service's answer for an article, as the renderer takes it."""
    from .models import ArticlePayload

    payload = ArticlePayload.model_validate_json(prepared.payload_json)
    return Cleaned(
        title=payload.title,
        # Cleaned paragraphs never hold a newline, so the blank-line join splits back exactly.
        paragraphs=tuple(payload.text.split("\n\n")),
        removed=tuple(Removed(*removed) for removed in prepared.removed),
    )


def _learned_pass(
    article: ArticleIn, prepared: Prepared, learned: frozenset[str], params: Params
) -> tuple[Cleaned, ItemError | None]:
    """The service's learned layer over the article, and its error when nothing is left."""
    from .clean.learned import LearnedSet, apply_learned
    from .prepare import prepare_article

    after = prepare_article(article, params, LearnedSet.of(learned))
    if not isinstance(after, ItemError):
        return _cleaned_of(after), None
    # Rejected: the error does not say what went, so the layer runs again to show it.
    before = _cleaned_of(prepared)
    result = apply_learned(before.paragraphs, learned)
    removed = (*before.removed, *result.removed)
    return Cleaned(title=before.title, paragraphs=result.paragraphs, removed=removed), after


def _cut_learned_sentences(cleaned: Cleaned, raw_lines: list[str]) -> list[str]:
    """The lines that lost sentences at their edges to the learned layer, cut at those
    sentences, so that what went and what stayed each have a line of their own."""
    from .clean.learned import sentences

    gone = {r.text for r in cleaned.removed if r.reason == "source_repeated_sentence"}
    if not gone:
        return raw_lines
    whole = {*cleaned.paragraphs, *(r.text for r in cleaned.removed)}
    lines: list[str] = []
    for raw in raw_lines:
        line = normalise_line(raw)
        parts = [] if line in whole else sentences(line)
        start, end = 0, len(parts)
        while start < end and parts[start] in gone:
            start += 1
        while end > start and parts[end - 1] in gone:
            end -= 1
        if len(parts) < 2 or (start == 0 and end == len(parts)):
            lines.append(raw)
            continue
        kept = [" ".join(parts[start:end])] if start < end else []
        lines.extend([*parts[:start], *kept, *parts[end:]])
    return lines


def _inspect_article(
    article: ArticleIn, params: Params, learned: frozenset[str], *, color: bool
) -> tuple[list[str], ItemError | None]:
    """The document with what cleaning removed marked, and the error the service would answer.

    The service's own steps run (prepare_article, then the learned layer when the source has
    learned something); only the rendering is this command's.
    """
    from .clean.learned import NOTHING_LEARNED
    from .inspect import render
    from .prepare import prepare_article

    outcome = prepare_article(article, params, NOTHING_LEARNED)
    if isinstance(outcome, ItemError) and outcome.code == "html_too_large":
        return [], outcome  # the service does not open such a page; neither does this
    extracted = _extracted(article) if article.html is not None else None
    notes: list[str] = []
    if article.html is None:
        raw_lines = (article.text or "").splitlines()
    else:
        page = _page_lines(article.html)
        lines = extracted[0] if extracted else []
        raw_lines = _page_view(page, lines) if page else lines
        if page:
            count = sum(1 for line in lines if line.strip())
            notes.append(
                f"html: trafilatura extracted {count} line(s) of the {len(page)} the page "
                "shows; ? marks the ones it left out"
            )
    if isinstance(outcome, ItemError):
        rejected = _when_rejected(article, extracted)
        given = article.title is not None
        return [render(rejected, raw_lines, color=color, title_given=given), *notes], outcome
    cleaned, verdict = _cleaned_of(outcome), None
    if learned:
        cleaned, verdict = _learned_pass(article, outcome, learned, params)
        raw_lines = _cut_learned_sentences(cleaned, raw_lines)
    given = article.title is not None
    return [render(cleaned, raw_lines, color=color, title_given=given), *notes], verdict


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _from_stdin(kind: str | None) -> Record:
    data = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    if kind == "html" or (kind is None and _LOOKS_LIKE_HTML.match(data)):
        return Record("-", {"html": data})
    if kind is None and data.lstrip().startswith("{"):
        try:
            parsed = json.loads(data)
        except json.JSONDecodeError as exc:
            return Record("-", None, f"invalid JSON: {exc.msg} at line {exc.lineno}")
        if isinstance(parsed, dict):
            return Record("-", parsed)
    return Record("-", {"text": data})


def _inspect_records(args: argparse.Namespace) -> list[Record]:
    """The documents the FILE arguments name, each with its article or why it cannot be read."""
    found: list[Record] = []
    for name in args.files:
        if name == "-" and args.line is not None:
            found.append(Record(name, None, "--line picks an article of a .jsonl file"))
            continue
        if name == "-":
            found.append(_from_stdin(args.kind))
            continue
        for path in expand([Path(name)]):
            kind = _suffix(path)
            if args.line is not None and kind not in JSONL_SUFFIXES:
                found.append(Record(str(path), None, "--line picks an article of a .jsonl file"))
            elif args.line is not None:
                origin = f"{path}:{args.line}"
                # A file that cannot be read answers one record, under the path alone.
                picked = [r for r in records(path) if r.origin in {origin, str(path)}]
                found.extend(picked or [Record(origin, None, "no article on that line")])
            elif kind not in KNOWN and args.kind is not None:
                # A file named otherwise, read as --html or --text says.
                try:
                    data = path.read_bytes().decode("utf-8", errors="replace")
                except OSError as exc:
                    found.append(Record(str(path), None, f"cannot read: {exc.strerror or exc}"))
                else:
                    found.append(Record(str(path), {args.kind: data}))
            else:
                found.extend(records(path))
    return found


async def _learned_of(settings: Settings, source: str) -> frozenset[str]:
    """What ``source`` has learned, read from Redis (one read; nothing is counted or written)."""
    from .app import make_store

    store = make_store(settings, _redis_url_for_tools(settings))
    try:
        return (await store.learned_for([source]))[source]
    finally:
        await store.client.aclose()


def _invalid(origin: str, error: ItemError) -> str:
    details = "; ".join(f"{d.get('field')}: {d.get('message')}" for d in error.details)
    return f"{origin}: {error.message}" + (f" ({details})" if details else "")


def cmd_inspect(args: argparse.Namespace) -> int:
    from .app import params_of
    from .errors import StoreUnavailable
    from .prepare import validate

    settings = settings_from(args)
    given = [name for name in _REDIS_FLAGS if getattr(args, name) is not None]
    if given and args.source is None:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        print(
            f"news-ingest inspect: {flags}: Redis is read only with --source NAME", file=sys.stderr
        )
        return 2
    if args.line is not None and args.line < 1:
        print("news-ingest inspect: --line counts from 1", file=sys.stderr)
        return 2
    documents = _inspect_records(args)
    learned: frozenset[str] = frozenset()
    if args.source is not None and any(d.article is not None for d in documents):
        try:
            learned = asyncio.run(_learned_of(settings, args.source))
        # SystemExit: no Redis URL anywhere, and _redis_url_for_tools says where to give one.
        except (SystemExit, StoreUnavailable) as exc:
            print(f"news-ingest inspect: {exc}", file=sys.stderr)
            return 2
        print(
            f"source {args.source!r} has learned {len(learned)} segment(s) "
            f"(prefix {settings.key_prefix!r}); they are marked learned:*"
        )
    color = sys.stdout.isatty() if args.color is None else args.color
    params = params_of(settings)
    status = 0
    printed = False
    for document in documents:
        if document.article is None:
            print(f"news-ingest inspect: {document.origin}: {document.error}", file=sys.stderr)
            status = 2
            continue
        given_title = {} if args.title is None else {"title": args.title}
        article = validate({**document.article, **given_title})
        if isinstance(article, ItemError):
            print(f"news-ingest inspect: {_invalid(document.origin, article)}", file=sys.stderr)
            status = 2
            continue
        shown, verdict = _inspect_article(article, params, learned, color=color)
        header = f"== {document.origin}"
        print(("\n" if printed else "") + (f"\x1b[1m{header}\x1b[0m" if color else header))
        printed = True
        for part in shown:
            print(part)
        if verdict is not None:
            print(f"would be rejected with {verdict.status} {verdict.code}: {verdict.message}")
            status = max(status, 1)
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="news-ingest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service")
    _add_settings_flags(serve)
    serve.add_argument("--seed-dir", type=Path, help="ingest the files of DIR after start-up")
    serve.add_argument(
        "--grace-s",
        type=float,
        default=10.0,
        help="seconds in-flight requests get to finish on SIGTERM",
    )
    serve.set_defaults(func=cmd_serve)

    ingest = sub.add_parser("ingest", help="post files to a running service")
    ingest.add_argument(
        "paths", nargs="+", type=Path, help=".txt, .html, .json, .jsonl files or directories"
    )
    ingest.add_argument("--url", default="http://127.0.0.1:8080", help="service base URL")
    ingest.add_argument("--batch-size", type=int, default=200)
    ingest.add_argument("--api-key", default=None)
    ingest.add_argument("--dry-run", action="store_true", help="decide, store nothing")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(func=cmd_ingest)

    tail = sub.add_parser("tail", help="print events as they arrive")
    _add_settings_flags(tail, "redis_url", "data_dir", "key_prefix")
    tail.add_argument("--stream", choices=["articles", "duplicates", "all"], default="all")
    tail.add_argument("--from-start", action="store_true", help="print the stream's history too")
    tail.add_argument("--count", type=int, default=None, help="stop after N events")
    tail.add_argument("--json", action="store_true", help="raw entries as JSON lines")
    tail.set_defaults(func=cmd_tail)

    inspect = sub.add_parser(
        "inspect",
        help="show a document with what cleaning removes marked, and why (stores nothing)",
    )
    inspect.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help=".txt, .html, .json (an article as the API takes it), .jsonl, a directory, "
        "or - for stdin",
    )
    inspect.add_argument(
        "--line", type=int, default=None, metavar="N", help="only line N of a .jsonl"
    )
    kind = inspect.add_mutually_exclusive_group()
    kind.add_argument(
        "--html",
        dest="kind",
        action="store_const",
        const="html",
        help="read stdin, and files of no known suffix, as HTML (stdin is guessed otherwise)",
    )
    kind.add_argument(
        "--text",
        dest="kind",
        action="store_const",
        const="text",
        help="read stdin, and files of no known suffix, as raw text",
    )
    inspect.add_argument("--title", default=None, help="the title, as a client would send it")
    color = inspect.add_mutually_exclusive_group()
    color.add_argument(
        "--color",
        dest="color",
        action="store_const",
        const=True,
        default=None,
        help="colour even when stdout is not a terminal",
    )
    color.add_argument(
        "--no-color",
        dest="color",
        action="store_const",
        const=False,
        help="no colour even on a terminal (default: colour when stdout is one)",
    )
    inspect.add_argument(
        "--source",
        default=None,
        metavar="NAME",
        help="also remove what source NAME has learned (reads it from Redis, writes nothing)",
    )
    _add_settings_flags(inspect, *_REDIS_FLAGS, "max_html_bytes")
    inspect.set_defaults(func=cmd_inspect)

    info = sub.add_parser("index-info", help="LSH parameters and their match curve")
    _add_settings_flags(
        info, "dedup_threshold", "num_perm", "shingle_unit", "shingle_size", "containment_threshold"
    )
    info.set_defaults(func=cmd_index_info)

    schema = sub.add_parser("schema", help="the JSON Schema of every event")
    schema.add_argument("--output", type=Path, default=None, help="write to a file, not stdout")
    schema.set_defaults(func=cmd_schema)

    config = sub.add_parser("config", help="every setting, its variable and default (Markdown)")
    config.set_defaults(func=cmd_config)

    reset = sub.add_parser("reset", help="delete every key of the prefix")
    _add_settings_flags(reset, "redis_url", "data_dir", "key_prefix")
    reset.add_argument("--yes", action="store_true")
    reset.set_defaults(func=cmd_reset)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except ValidationError as exc:
        print(f"invalid settings:\n{exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`news-ingest tail | head`): not an error worth a traceback.
        sys.stderr.close()
        return 0
    return result


if __name__ == "__main__":
    sys.exit(main())
