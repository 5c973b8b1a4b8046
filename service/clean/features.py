"""Line features in the spirit of jusText, for the boilerplate lines no pattern names.

jusText (Pomikálek, 2011) classifies HTML blocks by length, stop-word density and link
density, then lets context decide the short ones: a short block between boilerplate is
boilerplate, between body it is body. Raw text has no markup, so link density is read off the
line itself (URLs, "Home | News | Sport" separators) and headings are not known.

1. Each line gets a context-free class from its own features (``line_class``):
   ``bad``, ``short``, ``neargood`` or ``good``.
2. Short lines take the class of their nearest non-short neighbours (``good`` only when both
   are), and a ``neargood`` line is boilerplate only when both of its neighbours are.
3. Where the article ends: a line a rule named as what pages print after their article (a
   comment section, links to other stories, share buttons, tags; ``ends``) ends it once most
   of the body lies above it and the body does not go on right below it. What follows is not
   body, however much it reads like prose: comments, teasers, the author's box.

The stop-word language is the one whose list covers most words of the document, so a German
page is measured with German function words. Scripts without spaces (Chinese, Japanese) count
each character as worth several letters, and are judged by length and punctuation alone.

When no line of the document reads as body (``good``), the layer removes nothing: it has no
evidence of where the article is, and a document of short lines is still a document.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, repeat

from service.clean import Removed
from service.clean.stopwords import STOPWORDS

__all__ = [
    "ENDS",
    "MAY_END",
    "LineFeatures",
    "detect_language",
    "features_layer",
    "line_features",
]

# In characters. jusText's are 70 and 200; a line needs LENGTH_HIGH to anchor the body alone,
# and news paragraphs are shorter than the web pages jusText was tuned on.
LENGTH_LOW = 70
LENGTH_HIGH = 150
# Stop-word density thresholds, lower than jusText's 0.30/0.32 because the lists here hold
# only a language's commonest function words (measured on the trafilatura-eval pages).
STOPWORDS_LOW = 0.20
STOPWORDS_HIGH = 0.24
# A finished sentence heavy with names (a photo caption) is read as prose down to this density.
STOPWORDS_SENTENCE = 0.16
# A document whose best list covers fewer of its words than this is in none of the languages
# listed (or is a list of names): density says nothing there, and is not used.
MIN_LANGUAGE_COVERAGE = 0.08
# One CJK character carries about as much as a short word; counted as this many characters.
CJK_WEIGHT = 3

_WORD = re.compile(r"[^\W\d_]+")
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w.+-]+@[\w-]+\.[\w.-]+\b", re.IGNORECASE)
# Separators of inline link lists ("About | Contact | Privacy", "News · Sport · Weather").
_LIST_SEPARATOR = re.compile(r"\s[|·•»›/]\s|\s\|\s*|\s*\|\s")
# Every separator above holds one of these marks next to a space. Finding them is cheap (the
# regex engine skips to the marks), where the split tries three branches at every position.
_SEPARATOR_MARK = re.compile(r"[|·•»›/](?:(?=\s)|(?<=\s.))")
_SENTENCE_END = (".", "!", "?", "…", ":", ";", "。", "！", "？", "؟", "।", ")")
_CLOSING_QUOTES = "\"'”’»"
_MAX_LIST_ITEM_WORDS = 4


@lru_cache(maxsize=4096)
def words(line: str) -> tuple[str, ...]:
    """The casefolded letter runs of ``line``; digits and punctuation split them."""
    # Cached: the fixed-point passes of text.clean_lines ask again for the same lines.
    return tuple(_WORD.findall(line.casefold()))


@dataclass(frozen=True, slots=True)
class LineFeatures:
    """What the classifier knows about one line."""

    length: int  # characters, CJK ones weighted by CJK_WEIGHT
    words: int
    stopwords: int  # words on the document language's list
    ends_sentence: bool
    link_like: bool  # a URL or e-mail address with little around it, or a separated link list
    menu_like: bool  # a few capitalised words without a verb's punctuation: a menu entry

    @property
    def density(self) -> float:
        """Share of the line's words that are stop words."""
        return self.stopwords / self.words if self.words else 0.0


def _is_link_list(line: str) -> bool:
    # Three items take two separators, and a list of short items is a line of few words: at
    # most _MAX_LIST_ITEM_WORDS per item and one more per separator (its mark alone). Lines
    # outside either bound are not lists, and most lines are: they are spared the split.
    marks = len(_SEPARATOR_MARK.findall(line))
    if marks < 2 or len(line.split()) > (marks + 1) * _MAX_LIST_ITEM_WORDS + marks:
        return False
    items = [item for item in _LIST_SEPARATOR.split(line) if item.strip()]
    return len(items) >= 3 and all(len(item.split()) <= _MAX_LIST_ITEM_WORDS for item in items)


def _is_link_like(line: str, word_count: int) -> bool:
    urls = _URL.findall(line) if "www." in line or "://" in line or "@" in line else []
    if urls and (word_count <= 6 or sum(map(len, urls)) * 3 >= len(line)):
        return True
    return _is_link_list(line)


def _is_menu_like(line: str, tokens: Sequence[str]) -> bool:
    # A sixth item means too many words; splitting a long line further is wasted.
    raw_words = line.split(None, 5)
    return (
        0 < len(raw_words) <= 5
        and not line.rstrip(_CLOSING_QUOTES).endswith(_SENTENCE_END)
        and all(not w[0].isalpha() or w[0].isupper() for w in raw_words)
        and bool(tokens)
    )


def _cjk_count(line: str) -> int:
    return 0 if line.isascii() else len(_CJK.findall(line))


def _weighted_length(line: str) -> int:
    return len(line) + (CJK_WEIGHT - 1) * _cjk_count(line)


# The fixed-point passes of text.clean_lines classify the same lines again, so features are
# kept for the last lines seen. Only for lines up to this length: a worker lives for days, and
# the cache must stay small whatever lines clients send (1024 x 4096 characters at most).
_CACHED_LINE_CHARS = 4096


def line_features(line: str, stopwords: frozenset[str]) -> LineFeatures:
    """The features of ``line``, stop words counted against ``stopwords``."""
    if len(line) > _CACHED_LINE_CHARS:
        return _line_features(line, stopwords)
    return _cached_line_features(line, stopwords)


def _line_features(line: str, stopwords: frozenset[str]) -> LineFeatures:
    tokens = words(line)
    cjk = _cjk_count(line)
    return LineFeatures(
        length=len(line) + (CJK_WEIGHT - 1) * cjk,
        words=len(tokens) + cjk,
        stopwords=sum(map(stopwords.__contains__, tokens)),
        ends_sentence=line.rstrip(_CLOSING_QUOTES).endswith(_SENTENCE_END),
        link_like=_is_link_like(line, len(tokens)),
        menu_like=_is_menu_like(line, tokens),
    )


_cached_line_features = lru_cache(maxsize=1024)(_line_features)


def detect_language(lines: Sequence[str]) -> str | None:
    """The language whose stop words cover most words of ``lines``, or None below the floor."""
    tokens = list(map(words, lines))
    total = sum(map(len, tokens))
    if not total:
        return None
    # Only stop words are counted, and the filter, the count and the look-ups all stay in C;
    # a word on several lists counts for each of them.
    counts = Counter(filter(_ANY_STOPWORD.__contains__, chain.from_iterable(tokens)))
    hits = {name: sum(map(counts.get, listed, repeat(0))) for name, listed in STOPWORDS.items()}
    best = max(hits, key=hits.__getitem__)
    return best if hits[best] >= MIN_LANGUAGE_COVERAGE * total else None


_ANY_STOPWORD = frozenset(chain.from_iterable(STOPWORDS.values()))


BAD, SHORT, NEARGOOD, GOOD = "bad", "short", "neargood", "good"


def line_class(features: LineFeatures, *, measure_density: bool) -> tuple[str, str]:
    """The context-free class of a line and, when it is ``bad``, the reason."""
    if features.link_like:
        return BAD, "link_list"
    if features.length < LENGTH_LOW:
        return SHORT, "menu_line" if features.menu_like else "short_line"
    if not measure_density:
        # Without a stop-word list, a full sentence is what tells prose from a teaser.
        if not features.ends_sentence:
            return NEARGOOD, "isolated_text"
        return (GOOD if features.length > LENGTH_HIGH else NEARGOOD), "isolated_text"
    density = features.density
    if density >= STOPWORDS_HIGH and features.length > LENGTH_HIGH:
        return GOOD, ""
    if density >= STOPWORDS_LOW or (features.ends_sentence and density >= STOPWORDS_SENTENCE):
        return NEARGOOD, "isolated_text"
    return BAD, "low_stopwords"


def _neighbour(classes: Sequence[str], start: int, step: int, *, skip_neargood: bool) -> str:
    i = start + step
    while 0 <= i < len(classes):
        found = classes[i]
        if found in (GOOD, BAD) or (found == NEARGOOD and not skip_neargood):
            return found
        i += step
    return BAD


def _revise(classes: Sequence[str]) -> list[str]:
    """jusText's context pass: short lines, then neargood lines, decided by their neighbours."""
    revised = list(classes)
    for i, found in enumerate(classes):
        if found != SHORT:
            continue
        before = _neighbour(classes, i, -1, skip_neargood=True)
        after = _neighbour(classes, i, 1, skip_neargood=True)
        if before == after:
            revised[i] = before
        elif (before == BAD and _neighbour(classes, i, -1, skip_neargood=False) == NEARGOOD) or (
            after == BAD and _neighbour(classes, i, 1, skip_neargood=False) == NEARGOOD
        ):
            revised[i] = GOOD
        else:
            revised[i] = BAD
    final = list(revised)
    for i, found in enumerate(revised):
        if found == NEARGOOD:
            before = _neighbour(revised, i, -1, skip_neargood=True)
            after = _neighbour(revised, i, 1, skip_neargood=True)
            final[i] = BAD if before == after == BAD else GOOD
    return final


# Body lines separated by more than this many other kept lines belong to different blocks; a block
# with less than this share of the largest block's body characters is a sidebar, a teaser
# list or a comment thread, not the article.
MAX_GAP_LINES = 6
MIN_BLOCK_SHARE = 0.2
OUTSIDE = "outside"


def _main_block(classes: list[str], lines: Sequence[str], keep: Sequence[bool]) -> list[str]:
    """Keep the body lines of the article's block(s); good lines far from them are not body.

    Only lines still ``keep`` count towards a gap: what a rule already removed (a gallery's
    captions between the lede and the rest) does not split the article.
    """
    blocks: list[tuple[int, int, int]] = []  # first, last, chars
    start = last = -1
    chars = 0
    gap = 0
    for i, cls in enumerate(classes):
        if cls != GOOD:
            gap += keep[i]
            continue
        if start >= 0 and gap > MAX_GAP_LINES:
            blocks.append((start, last, chars))
            start, chars = -1, 0
        if start < 0:
            start = i
        last = i
        gap = 0
        chars += len(lines[i])
    if start >= 0:
        blocks.append((start, last, chars))
    if len(blocks) <= 1:
        return classes
    best = max(chars for _, _, chars in blocks)
    out = list(classes)
    for first, end, chars in blocks:
        if chars < MIN_BLOCK_SHARE * best:
            for i in range(first, end + 1):
                if out[i] == GOOD:
                    out[i] = OUTSIDE
    return out


# A line this long that does not end a sentence, followed by one starting in lower case, is
# prose wrapped at a fixed width (e-mail, plain-text archives, some feeds).
WRAP_MIN_CHARS = 40


def _continues(previous: str, line: str) -> bool:
    return (
        len(previous) >= WRAP_MIN_CHARS
        and not previous.rstrip(_CLOSING_QUOTES).endswith(_SENTENCE_END)
        and line[:1].islower()
    )


def _wrapped_groups(lines: Sequence[str], keep: Sequence[bool]) -> list[list[int]]:
    """Consecutive kept lines that continue one another, as groups of indices (in order).

    A line that is not kept is always a group of its own.
    """
    groups: list[list[int]] = []
    for i, line in enumerate(lines):
        if groups and keep[i] and keep[groups[-1][-1]] and _continues(lines[i - 1], line):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


_DETECT = object()


# The article ends at a line that marks its end (``ends``) once at least this share of the
# document's body characters lies above it: a share bar over the story, or a comment counter
# beside its byline, ends nothing.
END_MIN_SHARE = 0.5
# ... and, for a line that only MAY_END it, when the text does not go on below it: none of the
# next RESUME_LOOKAHEAD kept lines is body prose and no two kept lines in a row among the next
# RUN_LOOKAHEAD are. A "Read also" link or a share bar in the middle of a story is followed by
# more of the story; a list of teasers alternates headlines and summaries.
RESUME_LOOKAHEAD = 3
RUN_LOOKAHEAD = 10
AFTER_END = "after_end"
# What a line tells of the article's end (``ends``): nothing, that the article may end there
# (unless the text goes on right below), or that it ends there.
MAY_END = 1
ENDS = 2


def _is_prose(cls: str, line: str) -> bool:
    """A body line that is a sentence, not a headline or a label."""
    return (
        cls == GOOD
        and len(line) >= LENGTH_LOW
        and line.rstrip(_CLOSING_QUOTES).endswith(_SENTENCE_END)
    )


def _resumes(classes: Sequence[str], lines: Sequence[str], keep: Sequence[bool], i: int) -> bool:
    """Whether the text goes on below ``i``: one of the next kept lines is body prose, or two
    kept lines in a row a little further down are (a teaser list alternates headlines and
    summaries, a story runs paragraph after paragraph)."""
    seen = 0
    previous = False
    for j in range(i + 1, len(lines)):
        if not keep[j]:
            continue
        prose = _is_prose(classes[j], lines[j])
        if seen < RESUME_LOOKAHEAD and (
            prose or (classes[j] == GOOD and len(lines[j]) > LENGTH_HIGH)
        ):
            return True
        if prose and previous:
            return True
        previous = prose
        seen += 1
        if seen >= RUN_LOOKAHEAD:
            return False
    return False


def _cut_after_end(
    classes: list[str], lines: Sequence[str], keep: Sequence[bool], ends: Sequence[int]
) -> list[str]:
    """``classes`` with every body line below the article's end marked ``AFTER_END``.

    The end is the first line marked in ``ends`` with at least END_MIN_SHARE of the body's
    characters above it that ENDS the article, or MAY_END it and the text does not go on
    below it (``_resumes``).
    """
    total = sum(len(line) for line, cls in zip(lines, classes, strict=True) if cls == GOOD)
    above = 0
    for i, (line, cls, end) in enumerate(zip(lines, classes, ends, strict=True)):
        if (
            end
            and above
            and above >= END_MIN_SHARE * total
            and (end >= ENDS or not _resumes(classes, lines, keep, i))
        ):
            return classes[: i + 1] + [AFTER_END if c == GOOD else c for c in classes[i + 1 :]]
        if cls == GOOD:
            above += len(line)
    return classes


def features_layer(
    lines: Sequence[str],
    kept: Sequence[bool] | None = None,
    language: object = _DETECT,
    *,
    ends: Sequence[int] | None = None,
) -> tuple[list[str], list[Removed]]:
    """Classify ``lines`` and drop the boilerplate among those marked ``kept``.

    ``kept`` (default: all) marks lines earlier layers left in; the others are context only:
    a long removed line counts as boilerplate around its neighbours, a short one as nothing.
    ``ends`` tells, per line, whether a removed line marks the end of an article (MAY_END,
    ENDS; see ``_cut_after_end``).
    ``language`` (a stop-word list name, or None) is detected from the kept lines unless given.
    """
    keep = [True] * len(lines) if kept is None else list(kept)
    if language is _DETECT:
        language = detect_language([line for line, k in zip(lines, keep, strict=True) if k])
    language = language if isinstance(language, str) else None
    stopwords = STOPWORDS[language] if language else frozenset()
    found: list[str] = []
    reasons: list[str] = []
    for group in _wrapped_groups(lines, keep):
        first = lines[group[0]]
        if not keep[group[0]]:
            # A removed line is a group of its own and only its length counts (CJK weighting
            # only adds to it); it is never reported, so it needs no reason.
            short = len(first) < LENGTH_LOW and _weighted_length(first) < LENGTH_LOW
            found.append(SHORT if short else BAD)
            reasons.append("")
            continue
        # A paragraph hard-wrapped into lines is judged as the paragraph, not line by line:
        # each of its lines alone is short, and among a long line or two they would all go.
        text = first if len(group) == 1 else " ".join(lines[i] for i in group)
        features = line_features(text, stopwords)
        cls, reason = line_class(features, measure_density=language is not None)
        found += [cls] * len(group)
        reasons += [reason] * len(group)
    if GOOD not in (cls for cls, k in zip(found, keep, strict=True) if k):
        return [line for line, k in zip(lines, keep, strict=True) if k], []
    final = _main_block(_revise(found), lines, keep)
    if ends is not None and any(ends):
        final = _cut_after_end(final, lines, keep, ends)
    out: list[str] = []
    removed: list[Removed] = []
    for line, k, cls, reason in zip(lines, keep, final, reasons, strict=True):
        if not k:
            continue
        if cls == GOOD:
            out.append(line)
        else:
            why = (
                "outside_body"
                if cls == OUTSIDE
                else "after_article"
                if cls == AFTER_END
                else reason or "isolated_text"
            )
            removed.append(Removed(line, "features", why))
    return out, removed
