"""The ``news-ingest`` command: serve, ingest, tail, index-info, schema, config, reset.

Flags override ``NEWS_INGEST_*`` environment variables, which override the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import ValidationError

from . import logs
from .embedded import recorded_url
from .errors import IndexMismatch
from .fingerprint import lsh_params, match_probability
from .loader import Record, load
from .models import ItemError, parse_event
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

    app.on_startup.append(announce)
    try:
        web.run_app(
            app,
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
    import redis.asyncio as aioredis

    from .index import Store, connect
    from .keys import Keys

    settings = settings_from(args)
    if not args.yes:
        print(
            f"this deletes every key under prefix {settings.key_prefix!r}; add --yes",
            file=sys.stderr,
        )
        return 2

    async def run() -> int:
        client: aioredis.Redis = connect(_redis_url_for_tools(settings), timeout_s=5.0)
        keys = Keys(settings.key_prefix, settings.articles_stream, settings.duplicates_stream)
        store = Store(
            client,
            keys,
            threshold=settings.dedup_threshold,
            window_s=settings.dedup_window_s,
            stream_maxlen=settings.stream_maxlen,
            meta={},
        )
        try:
            return await store.reset()
        finally:
            await client.aclose()

    print(f"deleted {asyncio.run(run())} keys")
    return 0


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
