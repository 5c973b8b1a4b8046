"""The learned layer: what one source repeats across its own articles is that source's template.

A header, a footer, a "Follow us" line or a newsletter pitch a site prints under every story
is found by counting, not by pattern: the segments (lines, and sentences at the edges of a
line) of each *unique* article are counted per source in Redis (see ``service/index.py`` and
``scripts/learn.lua``), and a segment that recurs in enough distinct recent articles of the
source is learned. This module holds the pure half: which segments an article has, under
which digest, and how a cleaned article loses the ones its source has learned.

Digests are computed on a case-, space- and punctuation-blind form of the segment, so the
same footer with other quotes or spacing is still the same footer. Only whole lines, or
sentences at the start or end of a line, are removed: a sentence in the middle of a body
paragraph that happens to recur ("X did not respond to a request for comment") is left alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import xxhash

from . import Removed

LAYER = "learned"

# Segments outside these bounds are not counted: a one-word line is too common across
# unrelated pages of any site to be judged by recurrence, and a line longer than this is a
# body paragraph, not a template (templates are short).
MIN_SEGMENT_CHARS = 12
MAX_SEGMENT_CHARS = 600
# An article contributes at most this many digests, bounding the Redis work per article.
MAX_SEGMENTS = 256

# Runs of anything but letters and digits (\W leaves "_" alone, so it is named too), except
# a run that is one plain space: that one already reads as its replacement, and most runs are
# one, so skipping them spares the regex engine most of its replacements.
_NOT_ALNUM = re.compile(r"[\W_](?:[\W_]++|(?<! ))")
_LETTER = re.compile(r"[^\W\d_]")
# A sentence ends at . ! ? or …, with the closing quotes or brackets after it (group 1), where
# a space and what can start the next sentence follow; the space belongs to neither.
_SENTENCE_BREAK = re.compile(r"([.!?…][\"'”’»)\]]*)\s+(?=[\"'“‘«(\[]?[\w¿¡])")


def segment_key(segment: str) -> str:
    """The case-, space- and punctuation-blind form two copies of a segment share."""
    return _NOT_ALNUM.sub(" ", segment.casefold()).strip()


def digest(segment: str) -> str:
    """The segment's digest as counted in Redis: xxh3-64 of its key, hex."""
    return _key_digest(segment_key(segment))


def _key_digest(key: str) -> str:
    return xxhash.xxh3_64_hexdigest(key.encode("utf-8"))


def sentence_spans(line: str) -> list[tuple[int, int]]:
    """Where each sentence of one line starts and ends, as slices of the line itself."""
    spans = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(line):
        spans.append((start, match.end(1)))
        start = match.end()
    spans.append((start, len(line)))
    return [(a, b) for a, b in spans if line[a:b].strip()]


def sentences(line: str) -> list[str]:
    """The sentences of one line (the line itself when it holds one)."""
    # The same cuts as sentence_spans, in C: split gives the text before each sentence end,
    # then the end itself.
    pieces = _SENTENCE_BREAK.split(line)
    found = [text + end for text, end in zip(pieces[::2], pieces[1::2], strict=False)]
    found.append(pieces[-1])
    return [sentence for sentence in found if sentence.strip()]


def _countable(segment: str) -> bool:
    return MIN_SEGMENT_CHARS <= len(segment) <= MAX_SEGMENT_CHARS and (
        _LETTER.search(segment) is not None
    )


def segment_digests(paragraphs: Iterable[str]) -> list[str]:
    """The distinct digests of an article's countable segments, in document order.

    Lines count as themselves; a line of several sentences also counts each sentence, so a
    footer sentence glued to the last paragraph is learned like a footer line.
    """
    seen: dict[str, None] = {}
    for line in paragraphs:
        # A line no longer than the floor holds no countable sentence.
        parts = sentences(line) if len(line) > MIN_SEGMENT_CHARS else []
        if len(parts) < 2:
            keys = [segment_key(line)] if _countable(line) else []
        elif _countable(line):
            # Keying is the costly step, and a line's key is its sentences' keys joined by a
            # space (what lies between sentences is white space, and casefold maps character
            # by character), so each character is keyed once.
            part_keys = [segment_key(part) for part in parts]
            keys = [" ".join(filter(None, part_keys))]
            keys += [key for key, part in zip(part_keys, parts, strict=True) if _countable(part)]
        else:
            keys = [segment_key(part) for part in parts if _countable(part)]
        for key in keys:
            seen.setdefault(_key_digest(key), None)
            if len(seen) >= MAX_SEGMENTS:
                return list(seen)
    return list(seen)


@dataclass(frozen=True, slots=True)
class LearnedSet:
    """The digests a source has learned, under a version naming exactly this set.

    The version is what lets a worker reuse a set it was sent before: the event loop holds the
    current set of each source, and an answer made with another version is made again.
    """

    digests: frozenset[str]
    version: str

    @classmethod
    def of(cls, digests: Iterable[str]) -> LearnedSet:
        frozen = frozenset(digests)
        return cls(frozen, xxhash.xxh3_64_hexdigest("\n".join(sorted(frozen)).encode()))

    def applies_to(self, segments: Iterable[str]) -> bool:
        """Whether an article with these segment digests holds anything of the set."""
        return not self.digests.isdisjoint(segments)


NOTHING_LEARNED = LearnedSet.of(())


class LearnedCache:
    """Learned sets by source, each until a time (the event loop's refresh) or for good (a
    worker's), bounded by digests rather than sources: a source may learn up to 2,000, and a
    process lives for days while sources come and go. Past the bound it starts afresh, which
    costs fetches or second trips, never a wrong answer. 500k digests take about 40 MB.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sets: dict[str, LearnedSet] = {}
        self.until: dict[str, float] = {}
        self.digests = 0

    def get(self, source: str, now: float = -math.inf) -> LearnedSet | None:
        """The set kept for ``source`` if it is still good at ``now``."""
        found = self.sets.get(source)
        return found if found is not None and self.until[source] > now else None

    def put(self, source: str, learned: LearnedSet, until: float = math.inf) -> None:
        self.forget(source)
        if self.digests + len(learned.digests) > self.limit:
            self.sets.clear()
            self.until.clear()
            self.digests = 0
        self.sets[source] = learned
        self.until[source] = until
        self.digests += len(learned.digests)

    def forget(self, source: str) -> None:
        old = self.sets.pop(source, None)
        if old is not None:
            del self.until[source]
            self.digests -= len(old.digests)


@dataclass(frozen=True, slots=True)
class LearnedResult:
    paragraphs: tuple[str, ...]
    removed: tuple[Removed, ...]


def is_learned(segment: str, learned: frozenset[str]) -> bool:
    """Whether the source has learned ``segment`` as part of its template."""
    return bool(learned) and digest(segment) in learned


def _strip_edges(keys: Sequence[str], learned: frozenset[str]) -> tuple[int, int]:
    """How many learned sentences lead and trail a line, given its sentences' ``keys``."""
    start = 0
    while start < len(keys) and _key_digest(keys[start]) in learned:
        start += 1
    end = len(keys)
    while end > start and _key_digest(keys[end - 1]) in learned:
        end -= 1
    return start, end


def apply_learned(paragraphs: Sequence[str], learned: frozenset[str]) -> LearnedResult:
    """Remove the lines, and the sentences at the edges of lines, the source has learned."""
    if not learned:
        return LearnedResult(tuple(paragraphs), ())
    kept: list[str] = []
    removed: list[Removed] = []
    for line in paragraphs:
        spans = sentence_spans(line)
        parts = [line[a:b] for a, b in spans]
        # Each character is keyed once, as in segment_digests.
        keys = [segment_key(part) for part in parts] if len(parts) > 1 else []
        line_key = " ".join(filter(None, keys)) if keys else segment_key(line)
        if _key_digest(line_key) in learned:
            removed.append(Removed(line, LAYER, "source_repeated_line"))
            continue
        if keys:
            start, end = _strip_edges(keys, learned)
            if start or end < len(parts):
                removed.extend(
                    Removed(part, LAYER, "source_repeated_sentence")
                    for part in (*parts[:start], *parts[end:])
                )
                if start == end:
                    continue
                # A slice of the line as it was: its quotes and spacing stay untouched.
                line = line[spans[start][0] : spans[end - 1][1]]
        kept.append(line)
    return LearnedResult(tuple(kept), tuple(removed))
