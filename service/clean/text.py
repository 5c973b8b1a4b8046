"""The raw-text cleaner: lines in, title and body paragraphs out, with an audit trail.

The work is split in layers that each take lines and answer ``(kept, removed)``, so a layer can
be run, tested or replaced on its own (a learned per-source layer will slot in after the rules):

1. ``split_lines``: Unicode and whitespace normalisation; every non-empty line is a paragraph.
2. ``rules_layer``: a table of patterns anchored to whole short lines (and the bullets that
   follow a story-highlights label).
3. ``infer_title``: the first line the rules kept, when it reads like a headline.
4. ``document_layer``: repeats inside this one article (title printed again, duplicated lines,
   a header blob glued in front of the lede whose content is printed again below). It needs the
   title, which is why it runs after the rules have cleared the chrome above the headline.
5. ``top_label_layer``: short lowercase category labels above everything else.

Every pattern matches a *whole* line and only short lines are considered, so a body sentence
that merely contains a trigger word ("read more about it in the report") is never touched.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.clean import Cleaned, Removed
from service.errors import RejectedContent

__all__ = [
    "clean_paragraphs",
    "clean_text",
    "document_layer",
    "infer_title",
    "rules_layer",
    "split_lines",
    "top_label_layer",
]

# C0/C1 controls (newlines are split on before this runs, tabs become spaces first), lone
# surrogates, and invisible characters that only break matching: soft hyphen, zero-width space,
# word joiner, byte-order mark. ZWJ/ZWNJ stay: some scripts need them.
_INVISIBLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u00ad\u200b\u2060\ufeff\ud800-\udfff]")

# A line longer than this is prose whatever it contains; no rule looks at it. It also bounds the
# work any one regex can do.
_MAX_RULE_CHARS = 400

# How sentences and unfinished clauses end; headlines, labels and bullets end otherwise.
_SENTENCE_END = (".", "!", "?", "…", ":", ";", ",", "。", "！", "？", "؟", "।")
_CLOSING_QUOTES = "\"'”’»)]"

_MAX_LABEL_WORDS = 4
_MAX_LABEL_CHARS = 40

# A headline is short and is not a sentence: it does not end in a full stop.
_MAX_TITLE_WORDS = 25
_MAX_TITLE_CHARS = 250

# The header blob is judged by how much of it is printed again elsewhere in the article,
# measured with word n-grams: long enough to be specific, short enough to survive a changed
# dateline ("Washington (CNN) ...").
_SHINGLE_WORDS = 4
_HEADER_BLOB_MIN_COVERAGE = 0.5


# --- 1. lines -------------------------------------------------------------------------------


def normalise_line(line: str) -> str:
    """One line in NFC with invisible characters dropped and whitespace runs made one space."""
    visible = _INVISIBLE.sub("", line.replace("\t", " "))
    # NFC before collapsing: it can turn one whitespace character into another, never into
    # a non-space, and collapsing only inserts U+0020, which composes with nothing.
    return " ".join(unicodedata.normalize("NFC", visible).split())


def split_lines(raw: str) -> list[str]:
    """Every non-empty normalised line; scraped text marks paragraphs by one or two newlines."""
    # splitlines also breaks on \v, \f, \x1c-\x1e, \x85, U+2028 and U+2029, so no line
    # separator survives into a paragraph and joining the output with newlines round-trips.
    lines = (normalise_line(line) for line in raw.splitlines())
    return [line for line in lines if line]


def _words(line: str) -> list[str]:
    return line.split()


def _key(line: str) -> str:
    """Case- and punctuation-blind form of a line, for comparing copies of the same text."""
    kept = "".join(ch if ch.isalnum() else " " for ch in line.casefold())
    return " ".join(kept.split())


def _ends_sentence(line: str) -> bool:
    return line.rstrip(_CLOSING_QUOTES).endswith(_SENTENCE_END)


def _looks_like_headline(line: str) -> bool:
    return (
        len(line) <= _MAX_TITLE_CHARS
        and 1 <= len(_words(line)) <= _MAX_TITLE_WORDS
        and any(ch.isalpha() for ch in line)
        and not _ends_sentence(line)
    )


def _is_top_label(line: str) -> bool:
    """A short all-lowercase line such as a category tag ("sanctuary cities")."""
    # islower() is False for scripts without case, so Chinese or Arabic text never qualifies.
    return (
        len(_words(line)) <= _MAX_LABEL_WORDS
        and len(line) <= _MAX_LABEL_CHARS
        and line.islower()
        and not _ends_sentence(line)
    )


# --- 2. the rule table ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineRule:
    """A boilerplate line: ``pattern`` must match the whole line, which has few words."""

    reason: str
    pattern: re.Pattern[str]
    max_words: int = 20
    # The rule opens a block: the short unpunctuated lines right after it belong to it.
    takes_bullets: bool = False

    def matches(self, line: str) -> bool:
        """Whether the whole of ``line`` is this kind of boilerplate."""
        return (
            len(line) <= _MAX_RULE_CHARS
            and len(_words(line)) <= self.max_words
            and self.pattern.fullmatch(line) is not None
        )


def _rule(
    reason: str,
    pattern: str,
    max_words: int = 20,
    *,
    takes_bullets: bool = False,
    flags: re.RegexFlag = re.IGNORECASE,
) -> LineRule:
    return LineRule(reason, re.compile(pattern, flags), max_words, takes_bullets)


_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_DAYS = (
    r"mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:rs(?:day)?)?|fri(?:day)?"
    r"|sat(?:urday)?|sun(?:day)?"
)
_ZONES = r"gmt|utc|[ecmp][sd]?t|hkt|bst|cets?t?|ist|jst|aest|z"
_DATE_TOKEN = rf"(?:\d{{1,4}}(?:st|nd|rd|th)?|{_MONTHS}|{_DAYS}|[ap]\.?m\.?|{_ZONES}|at|on|of)\b"
_STAMP_LABEL = r"(?:last )?(?:updated|published|posted|modified|created)(?: (?:on|at))?:?"
# A line of date and time tokens only, with a month, a clock time or a numeric date among them.
# Separators are required between tokens so that a run of digits can be read only one way.
_TIMESTAMP = (
    rf"{_STAMP_LABEL}|(?:{_STAMP_LABEL}\s*)?"
    rf"(?=.*\d)(?=.*(?:\b(?:{_MONTHS})\b|\d:\d\d|\d{{4}}-\d\d-\d\d|\d/\d|\b(?:gmt|utc)\b))"
    rf"\(?{_DATE_TOKEN}(?:[\s,./:()-]+{_DATE_TOKEN})*[\s.)]*"
)

_SHARE_WORD = (
    r"(?:share(?: (?:this|on|via|to))?(?: (?:article|story|page|post|link))?|tweet|e-?mail|print"
    r"|copy link|facebook|twitter|x|linkedin|whatsapp|reddit|pinterest|flipboard|telegram"
    r"|messenger|pocket)"
)
_VIDEO_WORD = (
    r"(?:just watched|must watch|now playing|up next|replay|more videos|play video|watch now"
    r"|video ad feedback|videos?|\(\d+ videos?\))"
)
_CHROME_WORD = (
    r"(?:clock|menu|more-arrow|no|yes|mobile|close|search|home|open|toggle|navigation|nav"
    r"|main|sections?|account|profile|login|logout|chevron(?:-\w+)?|arrow(?:-\w+)?"
    r"|(?:icon-)?(?:facebook|twitter|email|share|comments?))"
)
_CREDIT_AGENCY = (
    r"(?:getty images|ap photo|associated press|reuters|afp|epa|shutterstock|istock(?:photo)?"
    r"|alamy)"
)
_NOT_A_NAME = r"(?:The|A|An|This|That|These|Those|It|Its|He|She|They|We|Our|His|Her|Their|My)\b"
_NAME = rf"(?:(?!{_NOT_A_NAME})[A-Z][\w.'’-]*(?: [A-Z][\w.'’-]*){{0,3}})"

# Order matters only for the reason reported when two rules match the same line.
RULES: tuple[LineRule, ...] = (
    _rule("read_more", r"(?:read|see|view|show|load) more\W*"),
    _rule(
        "read_more",
        r"(?:continue reading|read (?:the )?(?:full|whole) (?:story|article)"
        r"|click here to read more).{0,80}",
        14,
    ),
    _rule(
        "related_links",
        r"(?:more news|read also|also read|read more|see also|related|related (?:content|articles?"
        r"|stories|coverage|news|posts?|links?|topics?|reading)|recommended(?: (?:for you|stories"
        r"|reading))?|you (?:may|might) also like|most (?:popular|read)|trending(?: now)?"
        r"|more (?:stories|headlines)|top stories|further reading|more (?:from|on) [\w .'’-]{1,40})"
        r"(?:\s*[:|›»>–—-]\s*.{1,160})?",
        25,
    ),
    _rule("share_prompt", rf"{_SHARE_WORD}(?:[\s:,|/·•]+{_SHARE_WORD})*[\s:,|/·•]*"),
    _rule("share_prompt", r"(?:follow|like) us on .{1,60}", 10),
    _rule("messenger_prompt", r"chat with us (?:in|on) (?:facebook )?messenger\b.{0,160}", 30),
    _rule("video_widget", rf"{_VIDEO_WORD}(?:[\s:.|•-]+{_VIDEO_WORD})*[\s:.|•-]*"),
    # CNN glues the first bullet to the label; bullets carry no full stop, sentences do.
    _rule("story_highlights", r"story highlights:?(?: [^.!?]{1,400})?", 60, takes_bullets=True),
    # A bare "Highlights" is as often a menu entry as a label, and the line after a menu entry
    # may be the headline: these labels go alone.
    _rule("story_highlights", r"(?:key points|highlights|what you need to know)\s*:?"),
    _rule(
        "comment_form",
        r"(?:leave|post|add|write|submit) (?:a|your) (?:comment|reply|response)\W*"
        r"|(?:comments?|responses?|discussion|cancel reply|reply)\W*"
        r"|join the (?:conversation|discussion)\W*"
        r"|(?:show|view|hide|load) (?:all )?comments\W*"
        r"|comments? (?:are|is) closed\W*"
        r"|your email address will not be published\..{0,80}"
        r"|required fields are marked \*?"
        r"|you must be logged in to post a comment\W*"
        r"|save my name, email,? and website in this browser.{0,80}"
        r"|(?:name|e-?mail|website|comment) ?\*",
        30,
    ),
    _rule(
        "comment_count",
        r"(?:new,\s*)?\d[\d,.]*k?\s+(?:comments?|responses?|replies)"
        r"|(?:view|show|read|see|load) (?:all )?\d[\d,.]*k?\s+comments?\W*"
        r"|comments?\s*[(\[]\d[\d,.]*k?[)\]]",
        8,
    ),
    _rule(
        "photo_credit",
        r"(?:photo|image|picture|photograph|illustration|credit|image source|foto|bild)s?"
        r"(?: (?:by|credit|source))?\s*[:©]\s*.{1,80}"
        rf"|(?:©\s*)?{_CREDIT_AGENCY}(?:\s*(?:/|via\b).{{1,60}})?"
        rf"|.{{1,60}}\s*/\s*(?:{_CREDIT_AGENCY}|ap|afp|epa)(?: .{{0,30}})?"
        r"|\((?:photo|image|credit)s?\b.{1,80}\)",
        12,
    ),
    # Names are told from other words by their capitals, so the byline rules are case-sensitive
    # and a name never starts with a pronoun or an article ("The White House is covering ...").
    _rule(
        "byline",
        rf"(?i:by)\s+{_NAME}(?:(?:,| and| &) {_NAME})*(?:\s*[|,]\s*[^.!?]{{1,40}})?",
        10,
        flags=re.NOFLAG,
    ),
    _rule(
        "byline",
        rf"(?i:posted|written|reported|reporting|words|text|edited|editing|photos?) by {_NAME}"
        rf"(?:(?:,| and| &) {_NAME})*(?:\s*[;,|]\s*.{{1,150}})?",
        25,
        flags=re.NOFLAG,
    ),
    _rule(
        "byline",
        rf"{_NAME} (?i:is|covers) (?i:covering|a (?:[\w-]+ )?(?:reporter|writer|correspondent"
        r"|editor|journalist|contributor)\b)[^.!?]{0,80}\.?",
        15,
        flags=re.NOFLAG,
    ),
    _rule("timestamp", _TIMESTAMP, 14),
    _rule(
        "filed_under",
        r"(?:filed under|posted in|tagged(?: with)?|tags|topics|categories|category)"
        r"(?:\s*:\s*.{0,150}|:?)",
    ),
    _rule(
        "site_chrome",
        # Icon names rendered as text ("clock menu more-arrow no yes mobile"); "yes"/"no" alone
        # are words, so at least one unmistakable icon name must be there.
        r"(?=.*(?:menu|more-arrow|search|navigation|chevron|arrow))"
        rf"{_CHROME_WORD}(?:\s+{_CHROME_WORD})*",
        12,
    ),
    _rule(
        "site_chrome",
        r"advertisement|advertising|ad|sponsored(?: content)?|skip to (?:main )?content"
        r"|skip navigation|toggle navigation|(?:sign|log) (?:in|up|out)|subscribe(?: now)?"
        r"|back to top|scroll to top|print this page|accept(?: all)?(?: cookies)?"
        r"|(?:we use cookies|this (?:web)?site uses cookies).{0,300}"
        r"|sign up for (?:our|the) .{0,40}newsletter.{0,80}",
        60,
    ),
)


# Extractors write list items as "- item"; the marker is not part of what a rule looks at.
_LIST_MARKER = re.compile(r"[-*•·▪►] ")


def match_rule(line: str) -> LineRule | None:
    """The first rule that matches the whole of ``line``, if any."""
    marker = _LIST_MARKER.match(line)
    target = line[marker.end() :] if marker else line
    return next((rule for rule in RULES if rule.matches(target)), None)


def _is_bullet(line: str) -> bool:
    """A highlight bullet: a short summary line without a closing full stop."""
    return len(_words(line)) <= _MAX_TITLE_WORDS and not _ends_sentence(line)


_MAX_BULLETS = 5


# --- 3. rules layer -------------------------------------------------------------------------


def rules_layer(lines: Sequence[str]) -> tuple[list[str], list[Removed]]:
    """Drop lines the pattern table recognises, with the bullets of a highlights block."""
    kept: list[str] = []
    removed: list[Removed] = []
    block: LineRule | None = None
    bullets = 0
    for line in lines:
        rule = match_rule(line)
        if rule is None and block is not None and bullets < _MAX_BULLETS and _is_bullet(line):
            bullets += 1
            removed.append(Removed(line, "rules", block.reason))
            continue
        block, bullets = (rule, 0) if rule is not None and rule.takes_bullets else (None, 0)
        if rule is None:
            kept.append(line)
        else:
            removed.append(Removed(line, "rules", rule.reason))
    return kept, removed


def top_label_layer(lines: Sequence[str]) -> tuple[list[str], list[Removed]]:
    """Drop short lowercase lines at the very top: category tags ("sanctuary cities")."""
    # It runs last and takes only the leading run, so no later removal can expose a new
    # "top" and cleaning the output again changes nothing.
    count = next((i for i, line in enumerate(lines) if not _is_top_label(line)), len(lines))
    if count == len(lines):
        # A label labels something below it; a document of nothing but short lowercase
        # lines ("x y z") is its own body.
        return list(lines), []
    removed = [Removed(line, "rules", "site_chrome") for line in lines[:count]]
    return list(lines[count:]), removed


# --- 4. title ---------------------------------------------------------------------------------


def infer_title(lines: Sequence[str]) -> tuple[str | None, list[str]]:
    """The headline and the lines left without it, or ``None`` and the lines unchanged.

    ``lines`` are what the rules layer kept, so chrome above the headline is already gone;
    category labels are skipped here and removed at the end. The title is the first other line
    when it reads like a headline and something follows it: a lone line is body, not a title.
    """
    index = next((i for i, line in enumerate(lines) if not _is_top_label(line)), len(lines))
    if index + 1 < len(lines) and _looks_like_headline(lines[index]):
        return lines[index], [*lines[:index], *lines[index + 1 :]]
    return None, list(lines)


# --- 5. in-document layer -------------------------------------------------------------------


def _shingles(words: Sequence[str]) -> Counter[tuple[str, ...]]:
    n = _SHINGLE_WORDS
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def _coverage(words: Sequence[str], elsewhere: Callable[[tuple[str, ...]], bool]) -> float:
    """Share of ``words`` inside some n-gram for which ``elsewhere`` holds."""
    n = _SHINGLE_WORDS
    if len(words) < n:
        return 0.0
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        if elsewhere(tuple(words[i : i + n])):
            covered[i : i + n] = [True] * n
    return sum(covered) / len(words)


_SITE_SUFFIX_SEPARATORS = ("|", "-", "–", "—", ":", "·")
_MAX_SITE_SUFFIX_WORDS = 4


def _is_title_copy(line: str, title: str) -> bool:
    """The title again, possibly with a site name after a separator ("Title | Site")."""
    folded_line, folded_title = line.casefold(), title.casefold()
    if folded_line == folded_title or (_key(title) and _key(line) == _key(title)):
        return True
    if len(_words(title)) < 3 or not folded_line.startswith(folded_title):
        return False
    rest = folded_line[len(folded_title) :].strip()
    return rest.startswith(_SITE_SUFFIX_SEPARATORS) and len(_words(rest)) <= (
        _MAX_SITE_SUFFIX_WORDS + 1
    )


def _is_header_blob(line: str, title: str, printed: Counter[tuple[str, ...]]) -> bool:
    """The title glued to page chrome and to text that is printed again elsewhere.

    ``printed`` counts the n-grams of the whole document, this line included.
    """
    title_words = _key(title).split()
    words = _key(line).split()
    if (
        not title_words
        or len(words) <= len(title_words)
        or words[: len(title_words)] != title_words
    ):
        return False
    own = _shingles(words)

    def elsewhere(shingle: tuple[str, ...]) -> bool:
        return printed[shingle] > own[shingle]

    return _coverage(words[len(title_words) :], elsewhere) >= _HEADER_BLOB_MIN_COVERAGE


def document_layer(
    lines: Sequence[str], title: str | None, reference: Sequence[str] | None = None
) -> tuple[list[str], list[Removed]]:
    """Drop what this article repeats of itself: the title, duplicated lines, a header blob.

    ``reference`` is the whole document before any layer ran (default: ``lines``): a header
    blob also repeats lines that the rules layer has already taken out, such as highlights.

    A duplicated photo caption keeps its first copy: nothing in plain text tells a caption from
    a one-sentence paragraph ("Mayor X speaks to the press ..."), so dropping both copies would
    risk real body lines; the second copy is certainly a repeat.
    """
    printed: Counter[tuple[str, ...]] = Counter()
    if title:
        for line in lines if reference is None else reference:
            printed.update(_shingles(_key(line).split()))
    kept: list[str] = []
    removed: list[Removed] = []
    seen: set[str] = set()
    for line in lines:
        reason = None
        if title and _is_title_copy(line, title):
            reason = "repeated_title"
        elif title and _is_header_blob(line, title, printed):
            reason = "header_blob"
        elif line.casefold() in seen:
            reason = "duplicate_line"
        if reason is None:
            kept.append(line)
            seen.add(line.casefold())
        else:
            removed.append(Removed(line, "document", reason))
    return kept, removed


# --- 6. assembly ----------------------------------------------------------------------------


def _clean_lines(
    lines: Sequence[str], title: str | None, *, infer: bool
) -> tuple[str | None, list[str], list[Removed]]:
    kept, removed = rules_layer(lines)
    if infer and title is None:
        # The headline moves to the title field; it is not boilerplate, so it is not reported.
        title, kept = infer_title(kept)
    kept, repeats = document_layer(kept, title, reference=lines)
    kept, labels = top_label_layer(kept)
    return title, kept, removed + repeats + labels


def clean_paragraphs(
    paragraphs: Sequence[str], title: str | None
) -> tuple[list[str], list[Removed]]:
    """Run the rules and in-document layers over body paragraphs (for extractor output)."""
    lines = [line for paragraph in paragraphs for line in split_lines(paragraph)]
    _, kept, removed = _clean_lines(lines, _normalise_title(title), infer=False)
    return kept, removed


def _normalise_title(title: str | None) -> str | None:
    return (normalise_line(title) or None) if title else None


def clean_text(raw: str, title: str | None = None) -> Cleaned:
    """Clean raw scraped text; raise RejectedContent when nothing publishable is left.

    ``removed`` holds each layer's removals in turn (rules, document, top labels), each layer's
    in document order.
    """
    lines = split_lines(raw)
    if not lines:
        raise RejectedContent("empty_text", "the text is empty or only whitespace", field="text")
    clean_title, paragraphs, removed = _clean_lines(lines, _normalise_title(title), infer=True)
    if not paragraphs:
        raise RejectedContent(
            "empty_after_cleaning",
            "no article text left after removing boilerplate",
            field="text",
        )
    return Cleaned(title=clean_title, paragraphs=tuple(paragraphs), removed=tuple(removed))
