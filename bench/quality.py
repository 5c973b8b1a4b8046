"""Cleaning quality of news-ingest, side by side with its baselines, in one run (issue 3, item 4).

a. HTML: the 300 trafilatura-eval pages through ``extract_html`` (trafilatura + the text rules)
   against trafilatura alone, twice: with its defaults, and with the options the service passes
   but without the rules;
b. raw text: the visible text of the same pages (one line per block element, see
   ``visible_lines``) through ``clean_text`` against no cleaning at all;
c. the five seeds, line by line, against the hand labels in ``bench/quality_labels/seeds.json``;
d. synthetic sources through the real service, all three layers and Redis included: a
   ``news-ingest serve`` started (see ``bench/_service.py``) under a throw-away key prefix on
   ``--redis-url`` when it answers, else on its embedded server, takes each article on
   POST /v1/articles in publication order (a dry run first, for the ``removed`` audit) and the
   stored article is read back from GET /v1/articles/{id}. d1 is the issue's set: one header and
   footer repeated across 10 articles of a source, other boilerplate mixed in; d2 a source whose
   template changes after its 5th article; d3 syndicated copies, which must not teach anything.

Scoring. a and b use the corpus's snippet checks: a ``with`` snippet found in the body is a true
positive, missing a false negative; a ``without`` snippet found is a false positive, missing a true
negative; precision, recall and F1 over all pages. c and d score lines the same way: a body line
kept is a TP, dropped a FN; a boilerplate line kept is a FP, removed a TN. Text is compared after
NFC, dropping invisible characters (soft hyphen, zero-width space, word joiner, BOM) and collapsing
whitespace, the same for every system. An answer of ``RejectedContent`` (or ``None`` from
trafilatura) is an empty body. The bars are judged on the body alone; the rows "title + body"
count the service's title field as output too (a headline moved there is no lost paragraph, a menu
entry taken for a headline is still boilerplate), and the title is also checked on its own.

Halves. The raw-text rules and line features were tuned by looking only at the pages with an
even index in name order (0, 2, 4, ...); the pages with an odd index are held out. Set b is
also reported on each half, and ``--half even`` or ``--half odd`` scores sets a and b on that
half alone (set a's F1, and so b's bar, is then that half's too).

Usage::

    python bench/quality.py [--quick] [--half even|odd] [--workers N] [--show N] [--corpus DIR]
                            [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import logging
import os
import random
import re
import signal
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from multiprocessing import Pool
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import aiohttp
import trafilatura
from _service import DEFAULT_REDIS_URL, Service, redis_answers, serving, wait_ready
from lxml import etree
from lxml import html as lxml_html

from service.clean import Cleaned
from service.clean.html import extract_html
from service.clean.text import clean_text
from service.errors import RejectedContent

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpora" / "trafilatura-eval"
LABELS = Path(__file__).resolve().parent / "quality_labels" / "seeds.json"

QUICK_PAGES = 40
# trafilatura can run for minutes on a pathological page; one slow page must not stall the run.
CALL_LIMIT_S = 60
# The bar for b: F1 within this of what a gets from the HTML of the same pages.
RAW_TEXT_F1_GAP = 0.05
# The bar for d: the repeated header and footer gone from this article on (1-based).
LEARNED_FROM_ARTICLE = 4

T = TypeVar("T")

# --- scoring --------------------------------------------------------------------------------

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u2060\ufeff"))


def flat(text: str) -> str:
    """NFC, invisible characters dropped, every whitespace run one space: what is compared."""
    return " ".join(unicodedata.normalize("NFC", text).translate(_INVISIBLE).split())


@dataclass(slots=True)
class Counts:
    """Confusion counts: positives are what should be kept (body), negatives boilerplate."""

    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0

    def add(self, other: Counts) -> None:
        self.tp += other.tp
        self.fn += other.fn
        self.fp += other.fp
        self.tn += other.tn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def body_of(cleaned: Cleaned | None) -> str:
    """The scored text: the body only, or nothing when the cleaner rejected the document."""
    return "" if cleaned is None else cleaned.text


def titled_body_of(cleaned: Cleaned | None) -> str:
    """The title field, then the body: all a reader of the event sees."""
    return "" if cleaned is None else f"{cleaned.title or ''}\n{cleaned.text}"


def rejected_as_none(clean: Callable[[], Cleaned]) -> Cleaned | None:
    """``clean()``, with RejectedContent (nothing publishable left) read as an empty body."""
    try:
        return clean()
    except RejectedContent:
        return None


# --- a and b: the trafilatura-eval pages ----------------------------------------------------

A_DEFAULTS = "trafilatura defaults"
A_OPTIONS = "trafilatura, service options"
A_SERVICE = "extract_html (service)"
B_RAW = "no cleaning"
B_SERVICE = "clean_text (service)"
# The same answers with the title field counted as output too: the service moves a headline the
# page prints again into the title field, where trafilatura's text keeps it in the body.
A_TITLED = "extract_html, title + body"
B_TITLED = "clean_text, title + body"
A_SYSTEMS = (A_DEFAULTS, A_OPTIONS, A_SERVICE, A_TITLED)
B_SYSTEMS = (B_RAW, B_SERVICE, B_TITLED)

# What service/clean/html.py `_extract` passes to trafilatura.bare_extraction; kept in step by
# hand, and checked on every page (see `PageOutcome.drift`).
SERVICE_OPTIONS: dict[str, Any] = {
    "with_metadata": True,
    "include_comments": False,
    "include_tables": True,
    "favor_precision": False,
    "favor_recall": True,
    "fast": True,
    "deduplicate": False,
}


def decode_html(raw: bytes) -> str:
    """UTF-8, else the declared charset, else cp1252; the same str goes to every system.

    A page that declares UTF-8 but holds a few stray Latin-1 bytes (7 corpus pages) is read as
    UTF-8 with those bytes replaced: reading the whole page as cp1252, as bench/throughput.py
    does, garbles every non-ASCII letter.
    """
    with contextlib.suppress(UnicodeDecodeError):
        return raw.decode("utf-8")
    declared = re.search(rb"charset=[\"']?([A-Za-z0-9_-]+)", raw[:4096])
    if declared:
        with contextlib.suppress(LookupError):
            return raw.decode(declared.group(1).decode("ascii"), errors="replace")
    return raw.decode("cp1252", errors="replace")


_DROPPED_TAGS = frozenset({"script", "style", "noscript", "template", "head"})
# Each of these starts and ends a line; everything else (a, span, b, em, ...) runs inline.
# Containers (ul, table, tr, form, ...) are here too so that their loose text is a line of its own.
# <option> is a block: a browser shows one per line, and glued together they make one long line
# no rule would look at. <br> and <hr> end the line they are in.
_BLOCK_TAGS = frozenset(
    {
        *("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "article", "section"),
        *("header", "footer", "nav", "aside", "blockquote", "pre", "dt", "dd", "figcaption"),
        *("caption", "label", "option", "ul", "ol", "dl", "table", "thead", "tbody", "tfoot"),
        *("tr", "form", "fieldset", "legend", "main", "figure", "address", "details"),
        *("summary", "body", "html", "center", "menu", "select", "textarea", "button"),
    }
)
_LINE_BREAK_TAGS = frozenset({"br", "hr"})


def _local_name(element: Any) -> str:
    return str(element.tag).rsplit("}", 1)[-1].lower()


def visible_lines(page: str) -> list[str]:
    """All visible text of ``page``, one line per block element, as a scraper would keep it.

    Nested blocks do not repeat their text: a block's line holds only the text that is not
    inside a nested block, and the text after a nested block starts a new line.
    """
    try:
        root = lxml_html.document_fromstring(page)
    except ValueError:  # a str with an XML encoding declaration; lxml wants bytes then
        parser = lxml_html.HTMLParser(encoding="utf-8")
        root = lxml_html.document_fromstring(page.encode("utf-8"), parser=parser)
    except etree.ParserError:  # an empty document
        return []
    lines: list[str] = []
    parts: list[str] = []

    def end_line() -> None:
        line = " ".join("".join(parts).split())
        if line:
            lines.append(line)
        parts.clear()

    walker = etree.iterwalk(root, events=("start", "end", "comment", "pi"))
    for event, element in walker:
        if event in {"comment", "pi"}:
            parts.append(element.tail or "")
            continue
        name = _local_name(element)
        if event == "start":
            if name in _DROPPED_TAGS:
                walker.skip_subtree()
            elif name in _BLOCK_TAGS or name in _LINE_BREAK_TAGS:
                end_line()
            if name not in _DROPPED_TAGS:
                parts.append(element.text or "")
        else:
            if name in _BLOCK_TAGS:
                end_line()
            parts.append(element.tail or "")
    end_line()
    return lines


class CallTimeout(BaseException):
    """A system ran past CALL_LIMIT_S on one page (a BaseException: no `except Exception`
    inside trafilatura or the service may swallow it)."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise CallTimeout


def within_limit(call: Callable[[], T], limit_s: int = CALL_LIMIT_S) -> T | CallTimeout:
    """``call()``, or the CallTimeout it was stopped by after ``limit_s`` (SIGALRM, Unix)."""
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(limit_s)
    try:
        return call()
    except CallTimeout as exc:
        return exc
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True, slots=True)
class PageTask:
    index: int  # in the corpus's name order: even pages were looked at in tuning, odd held out
    name: str
    path: Path
    url: str | None
    title: str | None
    with_snippets: tuple[str, ...]
    without_snippets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Survivor:
    """A ``without`` snippet a system let through, and the output line it sits in."""

    page: str
    snippet: str
    line: str


@dataclass(frozen=True, slots=True)
class Effect:
    """A snippet the service's text layers changed against the same extraction without them."""

    system: str  # A_SERVICE or B_SERVICE
    kind: str  # "lost_body" (a `with` snippet removed) or "removed_boilerplate" (a `without`)
    reason: str  # the rule, "title" when it went to the title field, or "across lines"
    page: str
    snippet: str


@dataclass(slots=True)
class PageOutcome:
    name: str
    index: int
    counts: dict[str, Counts] = field(default_factory=dict)
    survivors: dict[str, list[Survivor]] = field(default_factory=dict)
    effects: list[Effect] = field(default_factory=list)
    timeouts: list[str] = field(default_factory=list)
    # Per service system: whether its title field equals expected.json's (None: no expected one).
    title_ok: dict[str, bool | None] = field(default_factory=dict)
    # The service kept a line that trafilatura with the same options did not output: the
    # options above have drifted from html.py.
    drift: bool = False


def snippet_counts(body: str, task: PageTask) -> tuple[Counts, list[Survivor]]:
    """The snippet checks of one page against ``body``, and the `without` snippets found."""
    text = flat(body)
    counts = Counts()
    for snippet in task.with_snippets:
        if flat(snippet) in text:
            counts.tp += 1
        else:
            counts.fn += 1
    survivors = []
    lines = [flat(line) for line in body.splitlines()]
    for snippet in task.without_snippets:
        wanted = flat(snippet)
        if wanted in text:
            counts.fp += 1
            line = next((line for line in lines if wanted in line), "(across lines)")
            survivors.append(Survivor(task.name, snippet, line))
        else:
            counts.tn += 1
    return counts, survivors


def effects_of_cleaning(
    system: str, task: PageTask, before: str, cleaned: Cleaned | None
) -> list[Effect]:
    """Snippets in ``before`` (the uncleaned text) that the cleaning removed, with the reason."""
    before_text, after_text = flat(before), flat(body_of(cleaned))
    removed = [] if cleaned is None else [(r.reason, flat(r.text)) for r in cleaned.removed]
    title = flat(cleaned.title or "") if cleaned is not None else ""
    effects = []
    for kind, snippets in (
        ("lost_body", task.with_snippets),
        ("removed_boilerplate", task.without_snippets),
    ):
        for snippet in snippets:
            wanted = flat(snippet)
            if wanted not in before_text or wanted in after_text:
                continue
            reason = next((why for why, text in removed if wanted in text), None)
            if reason is None:
                if cleaned is None:
                    reason = "rejected"
                else:
                    reason = "title" if wanted in title else "across lines"
            effects.append(Effect(system, kind, reason, task.name, snippet))
    return effects


def _extract_defaults(page: str, url: str | None) -> str:
    return trafilatura.extract(page, url=url) or ""


def _extract_service_options(page: str, url: str | None) -> str:
    document = trafilatura.bare_extraction(page, url=url, **SERVICE_OPTIONS)
    return (getattr(document, "text", None) or "") if document is not None else ""


def same_title(expected: str | None, cleaned: Cleaned | None) -> bool | None:
    """Whether the title field is the expected title (case-blind), None when none is known."""
    if not expected:
        return None
    got = cleaned.title if cleaned is not None else None
    return got is not None and flat(got).casefold() == flat(expected).casefold()


def score_page(task: PageTask) -> PageOutcome:
    """Every system of sets a and b on one page."""
    outcome = PageOutcome(task.name, task.index)
    page = decode_html(gzip.decompress(task.path.read_bytes()))

    def run(system: str, call: Callable[[], T], empty: T) -> T:
        result = within_limit(call)
        if isinstance(result, CallTimeout):
            outcome.timeouts.append(system)
            return empty
        return result

    def record(system: str, body: str) -> None:
        counts, survivors = snippet_counts(body, task)
        outcome.counts[system] = counts
        outcome.survivors[system] = survivors

    record(A_DEFAULTS, run(A_DEFAULTS, lambda: _extract_defaults(page, task.url), ""))
    extracted = run(A_OPTIONS, lambda: _extract_service_options(page, task.url), "")
    record(A_OPTIONS, extracted)
    service = run(A_SERVICE, lambda: rejected_as_none(lambda: extract_html(page, task.url)), None)
    record(A_SERVICE, body_of(service))
    record(A_TITLED, titled_body_of(service))
    outcome.title_ok[A_SERVICE] = same_title(task.title, service)
    outcome.effects += effects_of_cleaning(A_SERVICE, task, extracted, service)
    extracted_lines = {flat(line) for line in extracted.splitlines()}
    outcome.drift = service is not None and any(
        flat(p) not in extracted_lines for p in service.paragraphs
    )

    raw = "\n".join(run(B_RAW, lambda: visible_lines(page), []))
    record(B_RAW, raw)
    cleaned = run(B_SERVICE, lambda: rejected_as_none(lambda: clean_text(raw)), None)
    record(B_SERVICE, body_of(cleaned))
    record(B_TITLED, titled_body_of(cleaned))
    outcome.title_ok[B_SERVICE] = same_title(task.title, cleaned)
    outcome.effects += effects_of_cleaning(B_SERVICE, task, raw, cleaned)
    return outcome


def _usable_url(url: object) -> str | None:
    """The page's url when the API would accept it (http or https), else None for every system."""
    if isinstance(url, str) and url.strip().startswith(("http://", "https://")):
        return url.strip()
    return None


HALVES = ("even", "odd")


def half_of(index: int) -> str:
    """The half a page belongs to by its index in name order."""
    return HALVES[index % 2]


def page_tasks(corpus: Path, quick: bool, half: str | None = None) -> list[PageTask]:
    """The corpus pages in name order: those of ``half`` only when given, and of those the
    first QUICK_PAGES with ``quick``."""
    expected: dict[str, dict[str, Any]] = json.loads(
        (corpus / "expected.json").read_text(encoding="utf-8")
    )
    indexed = list(enumerate(sorted(expected)))
    if half is not None:
        indexed = [(i, name) for i, name in indexed if half_of(i) == half]
    if quick:
        indexed = indexed[:QUICK_PAGES]
    tasks = []
    for index, name in indexed:
        item = expected[name]
        path = corpus / "html" / name
        if not path.is_file():
            raise SystemExit(f"{path} is listed in expected.json but missing; is {corpus} whole?")
        tasks.append(
            PageTask(
                index,
                name,
                path,
                _usable_url(item.get("url")),
                item.get("title") or None,
                tuple(s for s in item.get("with") or () if s),
                tuple(s for s in item.get("without") or () if s),
            )
        )
    return tasks


def _quiet_worker() -> None:
    # trafilatura logs a warning for every page it discards; the counts say it better.
    logging.disable(logging.CRITICAL)


def score_pages(tasks: Sequence[PageTask], workers: int) -> list[PageOutcome]:
    """``score_page`` over ``tasks``, in a pool of ``workers`` processes, in task order."""
    if workers <= 1:
        _quiet_worker()
        return [score_page(task) for task in tasks]
    with Pool(workers, initializer=_quiet_worker) as pool:
        return list(pool.imap(score_page, tasks, chunksize=4))


# --- c: the hand-labelled seeds -------------------------------------------------------------

BODY, BOILERPLATE, TITLE = "body", "boilerplate", "title"


@dataclass(frozen=True, slots=True)
class Miss:
    text: str
    label: str  # what the line should have been
    problem: str  # "dropped", "kept", "title left in body"


@dataclass(slots=True)
class LineScore:
    counts: Counts
    misses: list[Miss]
    title_ok: bool


def score_lines(labelled: Sequence[tuple[str, str]], cleaned: Cleaned | None) -> LineScore:
    """Line-level checks of ``cleaned`` against labelled raw lines.

    Lines are matched as a multiset of flattened texts, so of two identical lines labelled body
    and boilerplate (a caption printed twice) exactly one may stay. Copies beyond the body lines
    are charged to boilerplate lines first, then to the title line.
    """
    kept = Counter(flat(p) for p in (cleaned.paragraphs if cleaned is not None else ()))
    by_text: dict[str, Counter[str]] = {}
    for text, label in labelled:
        by_text.setdefault(flat(text), Counter())[label] += 1
    counts, misses = Counts(), []
    for text, labels in by_text.items():
        left = kept[text]
        body = min(left, labels[BODY])
        counts.tp += body
        counts.fn += labels[BODY] - body
        misses += [Miss(text, BODY, "dropped")] * (labels[BODY] - body)
        left -= body
        leaked = min(left, labels[BOILERPLATE])
        counts.fp += leaked
        counts.tn += labels[BOILERPLATE] - leaked
        misses += [Miss(text, BOILERPLATE, "kept")] * leaked
        left -= leaked
        misses += [Miss(text, TITLE, "title left in body")] * min(left, labels[TITLE])
    expected_title = next((flat(t) for t, label in labelled if label == TITLE), None)
    got_title = flat(cleaned.title) if cleaned is not None and cleaned.title else None
    return LineScore(counts, misses, got_title == expected_title)


def load_seed_labels(path: Path = LABELS) -> dict[str, list[tuple[str, str]]]:
    """The labelled lines of each seed, checked against the seed files as they are now."""
    data = json.loads(path.read_text(encoding="utf-8"))
    seeds: dict[str, list[tuple[str, str]]] = {}
    for name, lines in data["seeds"].items():
        raw = (REPO / "seeds" / name).read_text(encoding="utf-8").split("\n")
        for line in lines:
            if line["label"] not in {BODY, BOILERPLATE, TITLE}:
                raise SystemExit(f"{path}: {name} line {line['line']}: unknown label")
            if raw[line["line"] - 1] != line["text"]:
                raise SystemExit(
                    f"{path}: {name} line {line['line']} no longer matches the seed file; "
                    "relabel it"
                )
        unlabelled = len([t for t in raw if t.strip()]) - len(lines)
        if unlabelled:
            raise SystemExit(f"{path}: {name} has {unlabelled} non-empty lines without a label")
        seeds[name] = [(line["text"], line["label"]) for line in lines]
    return seeds


# --- d: synthetic sources, article by article through the running service -------------------

SERVICE_WORKERS = 1  # the articles go one at a time; one worker is all set d needs
HTTP_TIMEOUT_S = 60.0
SOURCE = "example-herald.test"
SOURCE_SEED = 20240305
SOURCE_ARTICLES = 10
CHANGING_SOURCE = "valley-gazette.test"
TEMPLATE_CHANGE_AFTER = 5  # the gazette's new template starts with its 6th article
COPIED_SOURCE = "state-wire.test"


@dataclass(frozen=True, slots=True)
class Template:
    """A site's chrome: lines above and below the story, and a footer sentence that scraped
    text often runs into the last paragraph (the learned layer strips it as an edge sentence)."""

    header: tuple[str, ...]
    glued: str
    footer: tuple[str, ...]

    @property
    def segments(self) -> tuple[tuple[str, str], ...]:
        """(part, text) of each segment, in page order."""
        return (
            *(("header", line) for line in self.header),
            ("glued", self.glued),
            *(("footer", line) for line in self.footer),
        )


# Some lines a rule names ("Sign in", the copyright line), some the line features catch (the
# menu), and some read like body sentences: only recurrence across the source can tell those.
HERALD = Template(
    header=(
        "Example Herald — Your Daily Local News",
        "Home | News | Local | Sport | Business | Opinion | Weather",
        "Sign in",
        "Subscribe to our newsletter",
        "The Example Herald is an independent, nonprofit newsroom covering Clark County and the "
        "surrounding region since 1921.",
        "You are reading a free story. Subscribers get unlimited access to every article, the "
        "daily e-paper and our archive.",
    ),
    glued="This story was produced with support from the Clark County Community Foundation.",
    footer=(
        "Share this article",
        "Our journalism depends on readers like you. If you value local reporting, please "
        "consider becoming a member today.",
        "Sign up for our newsletter to get the day's top stories every morning",
        "Tips? Write to newsdesk at example dot com",
        "Corrections: if you spot an error in this story, tell us and we will fix it as quickly "
        "as we can.",
        "About us | Contact | Privacy Policy | Terms of Use",
        "© 2024 Example Media. All rights reserved.",
    ),
)
# The gazette is bought and redesigned after its 5th article: a new header and glued line,
# the same footer.
_GAZETTE_FOOTER = (
    "Thank you for reading the Gazette. Local journalism like this is only possible because of "
    "our subscribers.",
    "Have a news tip? Call the newsroom or send us a message through the form on our contact page.",
    "Copyright 2024 Valley Gazette. All rights reserved.",
)
GAZETTE_OLD = Template(
    header=(
        "The Valley Gazette",
        "News · Sports · Obituaries · Classifieds · Events · Contact",
        "Serving the upper valley since 1887, the Gazette is published every morning except "
        "Sunday.",
    ),
    glued="Gazette reporters can be reached at the city desk on weekdays.",
    footer=_GAZETTE_FOOTER,
)
GAZETTE_NEW = Template(
    header=(
        "Valley Gazette | A Mountain Media newsroom",
        "Latest · Local · Politics · Weather · Podcasts · e-Edition · Log in",
        "The Valley Gazette is now part of Mountain Media, a group of forty local newsrooms "
        "across the West.",
    ),
    glued="Mountain Media newsrooms follow the group's standards for sourcing and corrections.",
    footer=_GAZETTE_FOOTER,
)
WIRE = Template(
    header=(
        "State Wire — News from every county, every hour",
        "Top stories · Politics · Courts · Business · Weather",
        "State Wire is a nonprofit news service whose stories any newspaper in the state may "
        "republish for free.",
    ),
    glued="This article first appeared on State Wire and is republished under a Creative "
    "Commons license.",
    footer=(
        "Support independent reporting from the state capitol with a tax-deductible gift to "
        "State Wire today.",
        "© State Wire 2024",
    ),
)
HEADLINES = (
    "City Council Delays Vote on Sanctuary Policy",
    "Mayor Meets Police Chiefs After Federal Letter",
    "Funding Fight Reaches the State Capitol",
    "What the New Immigration Orders Mean for Local Jails",
    "County Sheriff Limits Cooperation With Federal Agents",
    "Residents Pack Town Hall Over Detention Requests",
    "Judge Weighs Challenge to Grant Conditions",
    "Police Union Splits With City Hall on Detainers",
    "Lawmakers Push Bill to Punish Sanctuary Cities",
    "Mayors Boycott White House Meeting",
)
GAZETTE_HEADLINES = (
    "Valley Towns Weigh the Cost of Federal Detainer Requests",
    "Sheriff Says the County Jail Will Keep Honoring Warrants",
    "School Board Hears Parents on Immigration Fears",
    "County Budget Hinges on Justice Department Grants",
    "Farmworkers Rally Outside the Courthouse",
    "Commissioners Split Over Sanctuary Resolution",
    "Police Chief Explains New Cooperation Policy",
    "Immigrant Aid Group Opens an Office Downtown",
    "Lawyers Offer Free Clinics After Arrests",
    "Valley Mayors Join Letter to the Attorney General",
)
WIRE_HEADLINES = (
    "Governor Signs Order on Local Police and Immigration",
    "Attorney General Warns Cities Over Federal Funds",
    "Statehouse Hearing Draws Sheriffs From Every County",
    "Judge Blocks Rule Tying Grants to Detainers",
)
AUTHORS = ("Jane Roe", "Sam Okafor", "Lena Marsh")
# A sentence ends in . ! or ?, perhaps inside closing quotes, and the next starts with a capital.
_SENTENCE_BREAK = re.compile(
    '(?:(?<=[.!?])|(?<=[.!?]["\u201d\u2019]))\\s+(?=["\u201c\u2018]?[A-Z])'
)
_MIN_SENTENCE_WORDS = 6


@dataclass(frozen=True, slots=True)
class Article:
    source: str
    index: int  # 1-based, in the source's publication order
    id: str
    raw: str
    # (text, label) as in set c, with the glued sentence apart from the line it ends
    lines: tuple[tuple[str, str], ...]
    other_boilerplate: tuple[str, ...]
    template: Template
    title: str | None = None  # sent in the title field; None: the cleaner infers one
    kind: str = "unique"  # for set d3: "unique", or how the copy differs from its original

    def record(self) -> dict[str, Any]:
        """The request body of POST /v1/articles."""
        record = {"id": self.id, "source": self.source, "language": "en", "text": self.raw}
        if self.title is not None:
            record["title"] = self.title
        return record


def body_sentences(seeds: dict[str, list[tuple[str, str]]]) -> list[str]:
    """Distinct sentences of the seeds' body lines, in seed order."""
    seen: set[str] = set()
    sentences = []
    for lines in seeds.values():
        for text, label in lines:
            if label != BODY:
                continue
            for part in _SENTENCE_BREAK.split(flat(text)):
                if len(part.split()) >= _MIN_SENTENCE_WORDS and part not in seen:
                    seen.add(part)
                    sentences.append(part)
    return sentences


def _other_boilerplate(
    rng: random.Random, index: int, site: str = "Example Herald"
) -> tuple[list[str], list[str]]:
    """Per-article chrome that varies: lines under the headline, and lines between paragraphs."""
    author = rng.choice(AUTHORS)
    top = [f"By {author}"] if rng.random() < 0.7 else []
    if rng.random() < 0.7:
        top.append(
            f"Updated {rng.randint(6, 11)}:{rng.randint(0, 59):02d} AM ET, March {index + 4}, 2024"
        )
    related = HEADLINES[(index + rng.randint(1, 8)) % len(HEADLINES)]
    pool = [
        "Advertisement",
        f"{rng.randint(2, 80)} comments",
        "Read more",
        f"Related: {related}",
        f"Photo: {author} / {site}",
        "Follow us on Facebook",
    ]
    return top, rng.sample(pool, rng.randint(1, 3))


def _paragraphs(rng: random.Random, sentences: Sequence[str]) -> list[str]:
    """``sentences`` in paragraphs of one to three."""
    paragraphs, rest = [], list(sentences)
    while rest:
        take = rng.randint(1, 3)
        paragraphs.append(" ".join(rest[:take]))
        rest = rest[take:]
    return paragraphs


def compose(
    rng: random.Random,
    *,
    source: str,
    index: int,
    template: Template,
    headline: str,
    paragraphs: Sequence[str],
    site: str,
    send_title: bool,
) -> Article:
    """One scraped page: header, headline, byline and date, the story with chrome between its
    paragraphs and the glued sentence at its end, footer; labelled line by line."""
    top, between = _other_boilerplate(rng, index, site)
    body: list[tuple[str, str]] = [(p, BODY) for p in paragraphs]
    for line in between:
        body.insert(rng.randint(1, len(body)), (line, BOILERPLATE))
    last = max(i for i, (_, label) in enumerate(body) if label == BODY)
    body.insert(last + 1, (template.glued, BOILERPLATE))
    lines = [
        *((line, BOILERPLATE) for line in template.header),
        (headline, TITLE),
        *((line, BOILERPLATE) for line in top),
        *body,
        *((line, BOILERPLATE) for line in template.footer),
    ]
    raw_lines = [text for text, _ in lines]
    glued_at = raw_lines.index(template.glued)
    raw_lines[glued_at - 1 : glued_at + 1] = [f"{raw_lines[glued_at - 1]} {template.glued}"]
    return Article(
        source=source,
        index=index,
        id=f"quality-{source.split('.')[0]}-{index:02d}",
        raw="\n\n".join(raw_lines),
        lines=tuple(lines),
        other_boilerplate=(*top, *between),
        template=template,
        title=headline if send_title else None,
    )


def deal(sentences: Sequence[str], rng: random.Random) -> list[list[str]]:
    """The sentences shuffled and dealt into SOURCE_ARTICLES shares of paragraphs.

    Dealt out, so that no body sentence appears in two articles of a source: a recurrence
    learner must not be rewarded for dropping body text shared by accident. Each source deals
    the same seed sentences anew; two articles of different sources share a sentence or two
    at most, far from anything the index would call a copy.
    """
    pool = list(sentences)
    rng.shuffle(pool)
    return [_paragraphs(rng, pool[i::SOURCE_ARTICLES]) for i in range(SOURCE_ARTICLES)]


def source_articles(sentences: Sequence[str]) -> list[Article]:
    """d1: SOURCE_ARTICLES articles with the same header and footer and distinct bodies.

    No title field is sent: the cleaner finds the headline among the lines, as it must for a
    scraper that only has the page's text.
    """
    rng = random.Random(SOURCE_SEED)
    return [
        compose(
            rng,
            source=SOURCE,
            index=index,
            template=HERALD,
            headline=HEADLINES[index - 1],
            paragraphs=paragraphs,
            site="Example Herald",
            send_title=False,
        )
        for index, paragraphs in enumerate(deal(sentences, rng), 1)
    ]


def changing_source_articles(sentences: Sequence[str]) -> list[Article]:
    """d2: the gazette, whose template changes after its TEMPLATE_CHANGE_AFTER-th article.

    The title field is sent, as a scraper with the page's metadata would.
    """
    rng = random.Random(SOURCE_SEED + 2)
    return [
        compose(
            rng,
            source=CHANGING_SOURCE,
            index=index,
            template=GAZETTE_OLD if index <= TEMPLATE_CHANGE_AFTER else GAZETTE_NEW,
            headline=GAZETTE_HEADLINES[index - 1],
            paragraphs=paragraphs,
            site="Valley Gazette",
            send_title=True,
        )
        for index, paragraphs in enumerate(deal(sentences, rng), 1)
    ]


def copied_source_articles(sentences: Sequence[str]) -> list[Article]:
    """d3: the wire's 1st article, three copies of it under other ids, then articles 2 to 4.

    Had the copies counted, the template would be learned after the third copy and gone from
    article 2; counted right, it is learned from articles 1 to 3 and gone from article 4.
    """
    rng = random.Random(SOURCE_SEED + 3)
    stories = deal(sentences, rng)

    def article(index: int, paragraphs: Sequence[str]) -> Article:
        return compose(
            rng,
            source=COPIED_SOURCE,
            index=index,
            template=WIRE,
            headline=WIRE_HEADLINES[index - 1],
            paragraphs=paragraphs,
            site="State Wire",
            send_title=True,
        )

    first = article(1, stories[0])
    # Copy 1 is the same page; copy 2 the same story with its byline, date and chrome drawn
    # anew (the same body once cleaned); copy 3 the story without its last paragraph.
    copies = [
        replace(first, id=f"{first.id}-copy1", kind="exact copy"),
        replace(article(1, stories[0]), id=f"{first.id}-copy2", kind="other chrome"),
        replace(article(1, stories[0][:-1]), id=f"{first.id}-copy3", kind="last para cut"),
    ]
    return [first, *copies, *(article(index, stories[index - 1]) for index in range(2, 5))]


# -- through the service --

LAYER_MARKS = {"rules": "r", "features": "f", "document": "d", "learned": "L"}
IN_BODY, IN_TITLE, ABSENT = "x", "t", "-"


@dataclass(slots=True)
class Posted:
    """What the service said about one article: the dry run, the decision, the stored copy."""

    article: Article
    outcome: str  # the decision's status (and relation), or the error code
    removed: list[dict[str, str]]  # the dry run's audit: text, layer, reason
    preview: dict[str, Any] | None  # the dry run's article
    stored: dict[str, Any] | None  # GET /v1/articles/{id}'s article; None unless unique


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    body: dict[str, Any] = await response.json()
    return body


async def post_in_order(service: Service, articles: Sequence[Article]) -> list[Posted]:
    """Each article as a dry run (for its audit), then for real, then read back; in order."""
    posted = []
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    async with aiohttp.ClientSession(service.base_url, timeout=timeout) as session:
        for article in articles:
            record = article.record()
            async with session.post("/v1/articles?dry_run=true", json=record) as resp:
                dry = await _json(resp)
            preview = dry.get("article")
            removed = [] if preview is None else list(preview["removed"])
            async with session.post("/v1/articles", json=record) as resp:
                answer = await _json(resp)
            if "error" in answer:
                outcome, stored = f"{resp.status} {answer['error']['code']}", None
            else:
                outcome = answer["status"] + (
                    f" ({answer['relation']})" if answer.get("relation") else ""
                )
                stored = None
                if answer["status"] == "unique":
                    async with session.get(f"/v1/articles/{article.id}") as resp:
                        resp.raise_for_status()
                        stored = (await _json(resp))["article"]
            posted.append(Posted(article, outcome, removed, preview, stored))
    return posted


def _split_glued(paragraphs: Sequence[str], glued: str) -> list[str]:
    """Paragraphs as flat text, a kept glued sentence apart from the line it ends."""
    tail = " " + flat(glued)
    split = []
    for paragraph in map(flat, paragraphs):
        if paragraph.endswith(tail):
            split += [paragraph.removesuffix(tail), flat(glued)]
        else:
            split.append(paragraph)
    return split


@dataclass(frozen=True, slots=True)
class ArticleResult:
    posted: Posted
    score: LineScore
    where: dict[str, str]  # each template segment: x, t, -, or the mark of the layer removing it
    reasons: dict[str, str]  # each removed template segment: "layer:reason"
    title: str | None  # the title field of the stored article
    due: tuple[str, ...]  # template segments the bar wants gone: seen in 4+ articles by now
    mismatch: bool  # the stored body or removed_counts are not the dry run's

    @property
    def article(self) -> Article:
        return self.posted.article

    @property
    def gone(self) -> dict[str, bool]:
        return {text: mark not in {IN_BODY, IN_TITLE} for text, mark in self.where.items()}

    @property
    def passed(self) -> bool:
        return all(self.gone[text] for text in self.due)


def score_posted(posted: Sequence[Posted], templates: Sequence[Template]) -> list[ArticleResult]:
    """Line scores of each stored article, and where each template segment went."""
    everything = list(dict.fromkeys(text for t in templates for _, text in t.segments))
    seen: Counter[str] = Counter()
    results = []
    for item in posted:
        article, stored = item.article, item.stored
        present = [text for _, text in article.template.segments]
        if article.kind == "unique":
            seen.update(present)
        paragraphs = stored["text"].split("\n\n") if stored is not None else []
        title = stored["title"] if stored is not None else None
        kept = _split_glued(paragraphs, article.template.glued)
        cleaned = Cleaned(title=title, paragraphs=tuple(kept)) if stored is not None else None
        where, reasons = {}, {}
        for text in everything:
            wanted = flat(text)
            if text not in present:
                where[text] = ABSENT
            elif title is not None and flat(title) == wanted:
                where[text] = IN_TITLE
            elif any(wanted in line for line in kept):
                where[text] = IN_BODY
            else:
                by = next((r for r in item.removed if flat(r["text"]) == wanted), None) or next(
                    (r for r in item.removed if wanted in flat(r["text"])), None
                )
                where[text] = "?" if by is None else LAYER_MARKS.get(by["layer"], "?")
                if by is not None:
                    reasons[text] = f"{by['layer']}:{by['reason']}"
        due = tuple(text for text in present if seen[text] >= LEARNED_FROM_ARTICLE)
        mismatch = (
            stored is not None
            and item.preview is not None
            and (
                stored["text"] != item.preview["text"]
                or stored["removed_counts"] != dict(Counter(r["layer"] for r in item.removed))
            )
        )
        score = score_lines(article.lines, cleaned)
        results.append(ArticleResult(item, score, where, reasons, title, due, mismatch))
    return results


@dataclass(slots=True)
class SourceRuns:
    """Set d's three sources as the service answered them."""

    note: str  # where the service ran
    herald: list[ArticleResult] = field(default_factory=list)
    gazette: list[ArticleResult] = field(default_factory=list)
    wire: list[ArticleResult] = field(default_factory=list)
    error: str | None = None


async def _run_sources(
    service: Service, seeds: dict[str, list[tuple[str, str]]], where: str
) -> SourceRuns:
    ready_s = await wait_ready(service)
    runs = SourceRuns(f"{where}; waited {ready_s:.1f} s for it to be ready")
    sentences = body_sentences(seeds)
    herald = await post_in_order(service, source_articles(sentences))
    runs.herald = score_posted(herald, [HERALD])
    gazette = await post_in_order(service, changing_source_articles(sentences))
    runs.gazette = score_posted(gazette, [GAZETTE_OLD, GAZETTE_NEW])
    wire = await post_in_order(service, copied_source_articles(sentences))
    runs.wire = score_posted(wire, [WIRE])
    return runs


def run_sources(
    service: Service, seeds: dict[str, list[tuple[str, str]]], where: str
) -> SourceRuns:
    """Set d through ``service`` (started before the pages were scored, so it is warm)."""
    try:
        return asyncio.run(_run_sources(service, seeds, where))
    except (RuntimeError, TimeoutError, aiohttp.ClientError) as exc:
        # The service did not start, died or stopped answering: a to c stand, d is unmeasured.
        return SourceRuns(where, error=f"{type(exc).__name__}: {exc}")


# --- report ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SummaryRow:
    set_name: str
    system: str
    counts: Counts
    bar: str = ""


def _metrics(counts: Counts) -> str:
    return f"{counts.precision:9.4f} {counts.recall:7.4f} {counts.f1:7.4f}"


def print_counts_table(rows: Sequence[tuple[str, Counts]]) -> None:
    print(f"  {'system':34} {'TP':>5} {'FN':>5} {'FP':>5} {'TN':>5} precision  recall      F1")
    for system, c in rows:
        print(f"  {system:34} {c.tp:5} {c.fn:5} {c.fp:5} {c.tn:5} {_metrics(c)}")


def _short(text: str, width: int = 110) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def total(outcomes: Sequence[PageOutcome], system: str) -> Counts:
    counts = Counts()
    for outcome in outcomes:
        counts.add(outcome.counts[system])
    return counts


def _line_shape(line: str) -> str:
    """Why a rule could not look at a surviving line: the rules see only whole short lines."""
    words = len(line.split())
    if line == "(across lines)":
        return "spans several lines"
    if len(line) > 400:
        return "line over 400 chars (no rule looks)"
    if words > 25:
        return "line over 25 words (past most rules' word limits)"
    return "short line no rule matched"


def print_effects(outcomes: Sequence[PageOutcome], system: str, show: int) -> None:
    effects = [e for o in outcomes for e in o.effects if e.system == system]
    for kind, label in (
        ("removed_boilerplate", "`without` snippets the text layers removed"),
        ("lost_body", "`with` snippets the text layers lost"),
    ):
        chosen = [e for e in effects if e.kind == kind]
        by_reason = Counter(e.reason for e in chosen).most_common()
        reasons = ", ".join(f"{reason} {n}" for reason, n in by_reason) or "none"
        print(f"  {label}: {len(chosen)} ({reasons})")
        for effect in chosen[:show]:
            print(f"    - [{effect.reason}] {effect.page}: {_short(effect.snippet, 90)!r}")


def print_survivors(outcomes: Sequence[PageOutcome], system: str, show: int) -> None:
    survivors = [s for o in outcomes for s in o.survivors[system]]
    shapes = Counter(_line_shape(s.line) for s in survivors).most_common()
    print(
        f"  `without` snippets {system} lets through: {len(survivors)}, by the line they sit in: "
        + ", ".join(f"{shape} {n}" for shape, n in shapes)
    )
    # Shortest lines first: those are the ones a line rule could catch.
    for survivor in sorted(survivors, key=lambda s: (len(s.line), s.page))[:show]:
        print(
            f"    - {survivor.page}: {_short(survivor.snippet, 50)!r} in {_short(survivor.line)!r}"
        )


def print_titles(outcomes: Sequence[PageOutcome], system: str) -> None:
    known = [o.title_ok[system] for o in outcomes if o.title_ok[system] is not None]
    print(
        f"  {system} title field equals expected.json's title on {sum(map(bool, known))} of "
        f"the {len(known)} pages that have one"
    )


def _versus(system: Counts, baseline: Counts) -> str:
    """How ``system`` compares with one baseline on the a bar: F1 at least, precision above."""
    ok = system.f1 >= baseline.f1 and system.precision > baseline.precision
    return (
        f"{'ok' if ok else 'short'} (F1 {system.f1 - baseline.f1:+.4f}, "
        f"precision {system.precision - baseline.precision:+.4f})"
    )


def report_html(outcomes: Sequence[PageOutcome], show: int) -> list[SummaryRow]:
    """Set a: the table, what the text layers changed, and what still gets through."""
    first = [o.counts[A_DEFAULTS] for o in outcomes]
    print(
        f"\n== a. HTML: {len(outcomes)} trafilatura-eval pages, "
        f"{sum(c.tp + c.fn for c in first)} `with` and {sum(c.fp + c.tn for c in first)} "
        "`without` snippets"
    )
    a = {system: total(outcomes, system) for system in A_SYSTEMS}
    print_counts_table(list(a.items()))
    options = ", ".join(f"{k}={v}" for k, v in SERVICE_OPTIONS.items())
    print(f"  {A_DEFAULTS}: trafilatura.extract(html, url=url); its defaults include comments")
    print(f"  {A_OPTIONS}: bare_extraction(html, url=url, {options}).text, no text rules")
    print_titles(outcomes, A_SERVICE)
    drift = [o.name for o in outcomes if o.drift]
    if drift:
        print(
            f"  WARNING: the service kept lines trafilatura did not output on {drift[:5]}: "
            "SERVICE_OPTIONS no longer match service/clean/html.py"
        )
    print_effects(outcomes, A_SERVICE, show)
    print_survivors(outcomes, A_SERVICE, show)
    service = a[A_SERVICE]
    versus = {name: _versus(service, a[name]) for name in (A_DEFAULTS, A_OPTIONS)}
    met = all(text.startswith("ok") for text in versus.values())
    bar = f"{'met' if met else 'NOT met'}: " + "; ".join(
        f"vs {name.removeprefix('trafilatura').strip(', ') or 'defaults'} {text}"
        for name, text in versus.items()
    )
    return [
        SummaryRow("a", A_DEFAULTS, a[A_DEFAULTS]),
        SummaryRow("a", A_OPTIONS, a[A_OPTIONS]),
        SummaryRow("a", A_SERVICE, service, bar),
        SummaryRow("a", A_TITLED, a[A_TITLED]),
    ]


def report_raw(outcomes: Sequence[PageOutcome], html_f1: float, show: int) -> list[SummaryRow]:
    """Set b: the table, its gap to set a, and what the rules miss in raw text."""
    b = {system: total(outcomes, system) for system in B_SYSTEMS}
    print(
        f"\n== b. raw text: the visible text of the same {len(outcomes)} pages, one line per block"
    )
    print_counts_table(list(b.items()))
    print_titles(outcomes, B_SERVICE)
    gap = b[B_SERVICE].f1 - html_f1
    print(f"  F1 gap to a ({A_SERVICE}): {gap:+.4f} (bar: no worse than -{RAW_TEXT_F1_GAP})")
    for half, role in zip(HALVES, ("tuned on", "held out"), strict=True):
        pages = [o for o in outcomes if half_of(o.index) == half]
        if pages:
            c = total(pages, B_SERVICE)
            print(
                f"  {B_SERVICE} on the {half} half ({role}, {len(pages)} pages): "
                f"precision {c.precision:.4f} recall {c.recall:.4f} F1 {c.f1:.4f}"
            )
    print_effects(outcomes, B_SERVICE, show)
    print_survivors(outcomes, B_SERVICE, show)
    met = gap >= -RAW_TEXT_F1_GAP
    return [
        SummaryRow("b", B_RAW, b[B_RAW]),
        SummaryRow(
            "b", B_SERVICE, b[B_SERVICE], f"{'met' if met else 'NOT met'}: F1 {gap:+.4f} vs a"
        ),
        SummaryRow("b", B_TITLED, b[B_TITLED]),
    ]


def print_timeouts(outcomes: Sequence[PageOutcome]) -> None:
    timeouts = Counter(system for o in outcomes for system in o.timeouts)
    if timeouts:
        print(f"\n  stopped after {CALL_LIMIT_S} s (scored as empty): {dict(timeouts)}")


def report_seeds(seeds: dict[str, list[tuple[str, str]]]) -> list[SummaryRow]:
    print("\n== c. the five seeds, hand-labelled lines (bench/quality_labels/seeds.json)")
    print(
        f"  {'seed':26} {'body kept':>9} {'boiler gone':>11} {'title':>5} precision  recall      F1"
    )
    service, baseline, misses, titles_ok = Counts(), Counts(), [], True
    for name, labelled in seeds.items():
        raw = (REPO / "seeds" / name).read_text(encoding="utf-8")
        score = score_lines(labelled, rejected_as_none(partial(clean_text, raw)))
        c = score.counts
        service.add(c)
        baseline.add(Counts(tp=c.tp + c.fn, fp=c.fp + c.tn))
        misses += [(name, miss) for miss in score.misses]
        titles_ok &= score.title_ok
        title = "ok" if score.title_ok else "WRONG"
        print(
            f"  {name:26} {c.tp:4}/{c.tp + c.fn:<4} {c.tn:5}/{c.tn + c.fp:<5} {title:>5} "
            f"{_metrics(c)}"
        )
    print(
        f"  {'total':26} {service.tp:4}/{service.tp + service.fn:<4} "
        f"{service.tn:5}/{service.tn + service.fp:<5} {'':>5} {_metrics(service)}"
    )
    for name, miss in misses:
        print(f"  MISS {name}: {miss.label} line {miss.problem}: {_short(miss.text)!r}")
    if not misses:
        print("  no misses")
    met = not misses and titles_ok
    titles = "ok" if titles_ok else "wrong"
    bar = f"{'met' if met else 'NOT met'}: {len(misses)} misses, titles {titles}"
    return [
        SummaryRow("c", "no cleaning", baseline),
        SummaryRow("c", "clean_text (service)", service, bar),
    ]


def _counts_of(results: Sequence[ArticleResult]) -> tuple[Counts, Counts]:
    """The service's line counts over the unique articles, and those of no cleaning at all."""
    service, baseline = Counts(), Counts()
    for r in results:
        if r.article.kind != "unique":
            continue
        c = r.score.counts
        service.add(c)
        baseline.add(Counts(tp=c.tp + c.fn, fp=c.fp + c.tn))
    return service, baseline


def _removed_counts(r: ArticleResult) -> str:
    """The stored article's removed_counts, by layer mark: r9 f1 L6."""
    counts = r.posted.stored["removed_counts"] if r.posted.stored is not None else {}
    return " ".join(f"{LAYER_MARKS.get(layer, layer)}{n}" for layer, n in counts.items()) or "-"


def print_template_grid(results: Sequence[ArticleResult], templates: Sequence[Template]) -> None:
    """Each template segment, article by article: the layer that removed it, or where it is."""
    print(
        f"  columns: article 1 to {len(results)}; the layer that removed the segment (r rules, "
        "f features, d in-document,\n  L learned), x still in the body, t the title field, "
        "- not on that page"
    )
    shown: set[str] = set()
    for template in templates:
        for part, text in template.segments:
            if text in shown:
                continue
            shown.add(text)
            marks = "".join(r.where[text] for r in results)
            reasons = ", ".join(sorted({r.reasons[text] for r in results if text in r.reasons}))
            print(f"  {part:6} {marks}  {_short(text, 58)!r:62} {reasons}")


def print_source_table(results: Sequence[ArticleResult], *, with_template: bool = False) -> None:
    """One row per article: its outcome, what went, what stayed, and the bar from article 4."""
    print(
        f"  {'article':>7} {'template' if with_template else '':8} {'decision':16} "
        f"{'chrome gone':>11} {'other gone':>10} {'body kept':>9}  {'removed_counts':16} "
        f"bar (gone once seen in {LEARNED_FROM_ARTICLE}+ articles)"
    )
    for r in results:
        c = r.score.counts
        present = [text for text, mark in r.where.items() if mark != ABSENT]
        gone = sum(r.gone[text] for text in present)
        other_missed = {m.text for m in r.score.misses if m.label == BOILERPLATE}
        others = [flat(line) for line in r.article.other_boilerplate]
        other_gone = sum(line not in other_missed for line in others)
        name = "new" if r.article.template is GAZETTE_NEW else "old"
        bar = "-" if not r.due else ("PASS" if r.passed else "FAIL")
        print(
            f"  {r.article.index:7} {name if with_template else '':8} {r.posted.outcome:16} "
            f"{gone:5}/{len(present):<5} {other_gone:4}/{len(others):<5} "
            f"{c.tp:4}/{c.tp + c.fn:<4}  {_removed_counts(r):16} {bar}"
        )
    failures: dict[tuple[str, str], list[int]] = {}
    for r in results:
        for text in r.due:
            if not r.gone[text]:
                where = "the title field" if r.where[text] == IN_TITLE else "the body"
                failures.setdefault((where, text), []).append(r.article.index)
    for (where, text), indices in failures.items():
        print(f"  FAIL {_articles(indices)}: still in {where}: {_short(text, 80)!r}")
    for r in results:
        for miss in r.score.misses:
            if miss.label == BODY:
                print(
                    f"  MISS article {r.article.index}: body line {_why_lost(miss.text, r)}: "
                    f"{_short(miss.text, 90)!r}"
                )
        if r.mismatch:
            print(
                f"  WARNING article {r.article.index}: the stored article is not the dry run's "
                "(body or removed_counts)"
            )
    sent = sum(r.article.title is not None for r in results)
    wrong = Counter(r.title for r in results if not r.score.title_ok)
    left = sum(any(m.label == TITLE for m in r.score.misses) for r in results)
    print(
        f"  title field is the headline on {len(results) - wrong.total()} of {len(results)} "
        f"articles ({sent} sent one)"
        + "".join(f"; {title!r} on {n}" for title, n in wrong.most_common())
        + (f"; the headline left in the body on {left}" if left else "")
    )


def _articles(indices: Sequence[int]) -> str:
    """ "article 4", "articles 4-10" or "articles 4, 6"."""
    if len(indices) == 1:
        return f"article {indices[0]}"
    if list(indices) == list(range(indices[0], indices[-1] + 1)):
        return f"articles {indices[0]}-{indices[-1]}"
    return "articles " + ", ".join(map(str, indices))


def _letters(text: str) -> str:
    return " ".join("".join(ch if ch.isalnum() else " " for ch in text.casefold()).split())


def _why_lost(text: str, r: ArticleResult) -> str:
    """Where a body line went: the audit entry that removed it, or the kept line it became."""
    wanted = flat(text)
    for entry in r.posted.removed:
        if wanted in flat(entry["text"]):
            return f"dropped by {entry['layer']}:{entry['reason']}"
    paragraphs = r.posted.stored["text"].split("\n\n") if r.posted.stored is not None else []
    for paragraph in paragraphs:
        if _letters(paragraph).startswith(_letters(text)):
            marks = Counter(ch for ch in text if not ch.isalnum() and not ch.isspace())
            lost = marks - Counter(ch for ch in paragraph if not ch.isalnum() and not ch.isspace())
            return f"altered, its punctuation changed (lost: {''.join(sorted(lost.elements()))})"
    return "dropped, not in the audit"


def report_herald(results: Sequence[ArticleResult]) -> list[SummaryRow]:
    """d1: the issue's set; the bar is every header and footer segment gone from article 4 on."""
    print(
        f"\n  d1. {SOURCE}: one header and footer on all {len(results)} articles, other "
        "boilerplate mixed in, no title field sent"
    )
    print_template_grid(results, [HERALD])
    print_source_table(results)
    service, baseline = _counts_of(results)
    late = [r for r in results if r.article.index >= LEARNED_FROM_ARTICLE]
    clean = sum(all(r.gone.values()) for r in late)
    body_clean = sum(IN_BODY not in r.where.values() for r in late)
    met = clean == len(late)
    bar = (
        f"{'met' if met else 'NOT met'}: header+footer gone in {clean}/{len(late)} "
        f"articles from #{LEARNED_FROM_ARTICLE}"
        + ("" if met else f" (from the body alone in {body_clean}/{len(late)})")
    )
    print(f"  bar: {bar}")
    return [
        SummaryRow("d", "no cleaning", baseline),
        SummaryRow("d", "news-ingest serve (learned layer)", service, bar),
    ]


def report_gazette(results: Sequence[ArticleResult]) -> SummaryRow:
    """d2: a template change; each segment must go once seen in 4 articles, old or new."""
    print(
        f"\n  d2. {CHANGING_SOURCE}: a new header and glued line from article "
        f"{TEMPLATE_CHANGE_AFTER + 1} on (footer unchanged), title field sent"
    )
    print_template_grid(results, [GAZETTE_OLD, GAZETTE_NEW])
    print_source_table(results, with_template=True)
    judged = [r for r in results if r.due]
    passed = sum(r.passed for r in judged)
    first_new = TEMPLATE_CHANGE_AFTER + LEARNED_FROM_ARTICLE
    new_header = all(
        r.gone[line] for r in results if r.article.index >= first_new for line in GAZETTE_NEW.header
    )
    ok = passed == len(judged) and new_header
    check = (
        f"{'PASS' if ok else 'FAIL'}: template gone where due in {passed}/{len(judged)} "
        f"articles; new header gone from #{first_new} (its 4th) on: {'yes' if new_header else 'no'}"
    )
    print(f"  check: {check}")
    return SummaryRow(
        "d", f"template change at #{TEMPLATE_CHANGE_AFTER + 1}", _counts_of(results)[0], check
    )


def report_wire(results: Sequence[ArticleResult]) -> SummaryRow:
    """d3: syndicated copies of the first article must not count toward learning."""
    print(
        f"\n  d3. {COPIED_SOURCE}: article 1, three copies of it under other ids, articles 2-4 "
        "(a copy counted would teach the template by article 2)"
    )
    first = results[0]
    learnable = [text for text, mark in first.where.items() if mark == IN_BODY]
    print(
        f"  {len(learnable)} template segments outlive the first two layers in article 1; "
        "each row: how many of them are still in the stored body"
    )
    print(f"  {'id':30} {'kind':14} {'decision':26} {'left':>5}  removed_counts")
    for r in results:
        left = sum(r.where[text] == IN_BODY for text in learnable)
        stored = f"{left:2}/{len(learnable)}" if r.posted.stored is not None else "-"
        print(
            f"  {r.article.id:30} {r.article.kind:14} {r.posted.outcome:26} {stored:>5}  "
            f"{_removed_counts(r)}"
        )
    copies = [r for r in results if r.article.kind != "unique"]
    uniques = [r for r in results if r.article.kind == "unique"]
    copies_ok = all(r.posted.outcome.startswith("duplicate") for r in copies)
    kept_early = all(r.where[text] == IN_BODY for r in uniques[1:3] for text in learnable)
    gone_late = all(r.gone[text] for text in learnable for r in uniques[3:])
    ok = copies_ok and kept_early and gone_late and bool(learnable)
    check = (
        f"{'PASS' if ok else 'FAIL'}: copies decided duplicate {'yes' if copies_ok else 'NO'}, "
        f"template kept in articles 2-3 {'yes' if kept_early else 'NO'}, gone from article 4 "
        f"{'yes' if gone_late else 'NO'}"
    )
    print(f"  check: {check}")
    return SummaryRow("d", "syndicated copies not counted", _counts_of(results)[0], check)


def report_sources(runs: SourceRuns) -> list[SummaryRow]:
    """Set d: the three sources as the real service cleaned them."""
    print(
        "\n== d. per source, through the running service (news-ingest serve): each article POSTed "
        "in publication order\n   to /v1/articles as a dry run (its `removed` audit), then for "
        "real, and read back from GET /v1/articles/{id}"
    )
    print(f"  {runs.note}")
    if runs.error is not None:
        print(f"  NOT measured: {runs.error}")
        bar = f"NOT met: not measured ({runs.error.splitlines()[0]})"
        return [SummaryRow("d", "news-ingest serve (learned layer)", Counts(), bar)]
    return [
        *report_herald(runs.herald),
        report_gazette(runs.gazette),
        report_wire(runs.wire),
    ]


def print_summary(rows: Sequence[SummaryRow]) -> None:
    print("\n== summary")
    print(f"  {'set':3} {'system':34} precision  recall      F1  issue 3 bar")
    for row in rows:
        print(f"  {row.set_name:3} {row.system:34} {_metrics(row.counts)}  {row.bar}")


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"the first {QUICK_PAGES} pages")
    parser.add_argument(
        "--half",
        choices=HALVES,
        help="only the pages with an even or an odd index in name order (the rules were tuned "
        "on the even ones; the odd ones are held out)",
    )
    parser.add_argument(
        "--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes for a and b"
    )
    parser.add_argument("--show", type=int, default=15, help="examples listed per kind")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="trafilatura-eval directory")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis for the service of set d (default: $REDIS_URL or %(default)s); when it does "
        "not answer, the service starts its embedded server in a temporary directory",
    )
    args = parser.parse_args(argv)
    if args.workers < 1 or args.show < 0:
        parser.error("--workers must be 1 or more and --show 0 or more")
    if not (args.corpus / "expected.json").is_file():
        parser.error(f"{args.corpus} has no expected.json; pass --corpus DIR")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    tasks = page_tasks(args.corpus, args.quick, args.half)
    print(
        f"bench/quality.py: {len(tasks)} pages{f' ({args.half} half)' if args.half else ''}, "
        f"{args.workers} worker(s), "
        f"trafilatura {trafilatura.__version__}, python {sys.version.split()[0]}"
    )
    if redis_answers(args.redis_url):
        redis_url: str | None = args.redis_url
        where = f"against {args.redis_url} (shared)"
    else:
        redis_url = None
        where = f"{args.redis_url} does not answer: against the service's embedded server"
    # Started first, so that its start-up overlaps the page scoring; only set d uses it. Its
    # keys, under a throw-away prefix, are deleted when the block ends, whatever happened.
    with serving(redis_url, SERVICE_WORKERS, "quality") as service:
        outcomes = score_pages(tasks, args.workers)
        print(f"  (pages scored in {time.perf_counter() - started:.1f} s)")
        a_rows = report_html(outcomes, args.show)
        b_rows = report_raw(outcomes, total(outcomes, A_SERVICE).f1, args.show)
        print_timeouts(outcomes)
        seeds = load_seed_labels()
        c_rows = report_seeds(seeds)
        where += f", key prefix {service.prefix}:* (deleted at the end)"
        d_rows = report_sources(run_sources(service, seeds, where))
    print_summary([*a_rows, *b_rows, *c_rows, *d_rows])
    print(f"\n  total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
