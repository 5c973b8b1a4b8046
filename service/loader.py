"""Turn files on disk into article records: .txt, .html, .json, .jsonl (optionally .gz)."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEXT_SUFFIXES = {".txt", ".text"}
HTML_SUFFIXES = {".html", ".htm"}
JSON_SUFFIXES = {".json"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
KNOWN = TEXT_SUFFIXES | HTML_SUFFIXES | JSON_SUFFIXES | JSONL_SUFFIXES

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")


@dataclass(frozen=True, slots=True)
class Record:
    """One article read from a file, or why it could not be read."""

    origin: str  # path, or path:line
    article: dict[str, Any] | None
    error: str | None = None


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _stem(path: Path) -> str:
    name = path.name
    for _ in range(2):  # "page.html.gz" -> "page"
        name = name.rsplit(".", 1)[0] if "." in name else name
    return name


def id_from_name(path: Path) -> str:
    """A file's stem made into a valid article id, so re-ingesting a file is a replay."""
    cleaned = _ID_UNSAFE.sub("-", _stem(path)).strip("-") or "file"
    return cleaned[:200]


def _read(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix.lower() == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def _order(path: Path) -> tuple[int, str]:
    # Structured records first: when a directory holds an article both as a .jsonl record
    # (with title, source, date) and as a bare .txt under the same id, the record with the
    # metadata is the one accepted and the bare file is a replay of it.
    structured = _kind(path) in JSON_SUFFIXES | JSONL_SUFFIXES
    return (0 if structured else 1, str(path))


def expand(paths: Iterable[Path]) -> Iterator[Path]:
    """Files under the given paths with a known suffix, in a stable order."""
    for path in paths:
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.is_file() and _kind(p) in KNOWN]
            yield from sorted(found, key=_order)
        else:
            yield path


def records(path: Path) -> Iterator[Record]:
    """The article records of one file."""
    kind = _kind(path)
    try:
        content = _read(path)
    except OSError as exc:
        yield Record(str(path), None, f"cannot read: {exc.strerror or exc}")
        return
    if kind in TEXT_SUFFIXES:
        yield Record(str(path), {"id": id_from_name(path), "text": content})
    elif kind in HTML_SUFFIXES:
        yield Record(str(path), {"id": id_from_name(path), "html": content})
    elif kind in JSON_SUFFIXES:
        try:
            parsed = json.loads(content)
        except json.JSONDecodeError as exc:
            yield Record(str(path), None, f"invalid JSON: {exc.msg} at line {exc.lineno}")
            return
        for i, item in enumerate(parsed if isinstance(parsed, list) else [parsed]):
            yield _object(f"{path}[{i}]", item)
    elif kind in JSONL_SUFFIXES:
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Record(f"{path}:{number}", None, f"invalid JSON: {exc.msg}")
                continue
            yield _object(f"{path}:{number}", item)
    else:
        yield Record(str(path), None, f"unknown file type {path.suffix or '(none)'}")


def _object(origin: str, item: Any) -> Record:
    if not isinstance(item, dict):
        return Record(origin, None, f"expected a JSON object, got {type(item).__name__}")
    return Record(origin, item)


def load(paths: Iterable[Path]) -> list[Record]:
    return [record for path in expand(paths) for record in records(path)]
