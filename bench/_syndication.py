"""A labelled syndication set for scoring duplicate detection (used by ``dedup_quality.py``).

Stories are real text: the bodies trafilatura extracts from the trafilatura-eval pages (read by
path from ``/work/shared/corpora``) and the five scraped seed articles. A story's original is
posted as extracted or scraped; its *body* is what the service's own text cleaner keeps of it
(``service.clean.text.clean_text``), so that every label means the same text the index sees:
copies are made from the body, and a page the cleaner keeps too little of (a testimonial
page, a link list) is no story. Each original is followed, later in the stream and from other
sources, by copies of known kinds:

========== ========================================================================= ===========
kind        what the copy is                                                         relation
========== ========================================================================= ===========
exact       the same text under another id                                           exact
boilerplate the same body inside another site's header, footer and inline chrome     near_dup
edited      about 10% of the sentences edited (words replaced, dropped, inserted)    near_dup
new_lede    a new headline, and new text for the lede: the first paragraph, or its   near_dup
            opening sentences (about LEDE_MAX_WORDS) when it is longer
shuffled    the paragraphs in another order                                          near_dup
typos       2% character error rate (substitutions, deletions, insertions, swaps)    near_dup
combined    boilerplate + edited + 1% typos                                          near_dup
excerpt     a teaser: the first 25-60% of the body, or a middle passage of that size excerpt
superset    the body plus 30-100% new text, appended as an update or inserted        superset
========== ========================================================================= ===========

Hard negatives, which must never be linked: the five seeds (one topic, five different stories),
the corpus pages with the highest content-word overlap (always among the originals), and
``template_negative`` articles: short different bodies inside one shared, heavy site template.

Everything is deterministic for a given seed, corpus and trafilatura version. New text (ledes,
updates, template-negative bodies) comes from "donor" pages that are not stories of the set:
the paragraphs the cleaner keeps of them, each used once and always in the story's language
(the service's stop-word detector names it). A story is picked only while its language has
donor text enough for its new lede and the largest superset; pages in no language the
detector knows (Chinese, or lists of names) are neither stories nor donors.
"""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import json
import random
import re
import unicodedata
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trafilatura

from service.clean.features import detect_language
from service.clean.text import clean_text
from service.errors import RejectedContent

CORPUS = Path("/work/shared/corpora/trafilatura-eval")
SEEDS = Path("/work/shared/seeds")
SEED = 20240917

MIN_BODY_WORDS = 250
MAX_BODY_WORDS = 1500  # longer pages are left to the donors: they would dominate the set
MIN_PARAGRAPHS = 4
MIN_DONOR_PARAGRAPH_WORDS = 8
# A news lede is a sentence or two: a first paragraph longer than this gives up only its
# opening sentences to the new lede (a 200-word first paragraph is a third of some stories).
LEDE_MAX_WORDS = 60
# A utf-8 page with a few broken bytes (a cut multi-byte character) is still utf-8.
MAX_REPLACED_SHARE = 0.001
UNKNOWN_LANGUAGE = "other"

NEAR_DUPLICATE_KINDS = (
    "exact",
    "boilerplate",
    "edited",
    "new_lede",
    "shuffled",
    "typos",
    "combined",
)
CONTAINMENT_KINDS = ("excerpt", "superset")
VARIANT_KINDS = NEAR_DUPLICATE_KINDS + CONTAINMENT_KINDS
ORIGINAL = "original"
TEMPLATE_NEGATIVE = "template_negative"

# The relations a correct decision may carry, per kind (None: a new story, status unique).
EXPECTED_RELATIONS: dict[str, frozenset[str | None]] = {
    ORIGINAL: frozenset({None}),
    TEMPLATE_NEGATIVE: frozenset({None}),
    "exact": frozenset({"exact"}),
    **{kind: frozenset({"exact", "near_duplicate"}) for kind in NEAR_DUPLICATE_KINDS[1:]},
    "excerpt": frozenset({"excerpt"}),
    "superset": frozenset({"superset"}),
}

EDITED_SENTENCE_SHARE = 0.10
TYPO_RATE = 0.02
COMBINED_TYPO_RATE = 0.01
EXCERPT_SHARE = (0.25, 0.60)
SUPERSET_NEW_SHARE = (0.30, 1.00)
TEMPLATE_NEGATIVE_WORDS = (60, 120)


# --- data -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """One corpus page after extraction: trafilatura's text, and the body the service's
    cleaner keeps of it (given ``title``, the title an original of the page is posted with)."""

    name: str
    title: str
    text: str
    body: tuple[str, ...]
    url: str | None
    site: str
    language: str  # of the body, by the service's stop-word lists; UNKNOWN_LANGUAGE if none

    @property
    def word_count(self) -> int:
        """Words of the body."""
        return sum(len(p.split()) for p in self.body)


@dataclass(frozen=True, slots=True)
class Story:
    """An original: the first article of its cluster in the stream."""

    key: str  # "corpus:<page>" or "seed:<file stem>"
    title: str
    raw: str  # what the original posts: the extracted or scraped text
    paragraphs: tuple[str, ...]  # the body: what the cleaner keeps of raw; copies are made of it
    source: str
    url: str | None
    language: str

    @property
    def word_count(self) -> int:
        return sum(len(p.split()) for p in self.paragraphs)


@dataclass(frozen=True, slots=True)
class Labelled:
    """One article of the set with its truth: the cluster (the original's id) and the kind."""

    article: dict[str, Any]  # exactly what is posted
    cluster: str
    kind: str
    detail: str = ""  # e.g. "lead" or "middle" for an excerpt

    @property
    def id(self) -> str:
        return str(self.article["id"])

    @property
    def text(self) -> str:
        return str(self.article["text"])


@dataclass(slots=True)
class SyndicationSet:
    """The articles in stream order, and the groups the hard-negative checks look at."""

    items: list[Labelled]
    stories: list[Story]
    seed_clusters: list[str]  # the five seeds' cluster ids
    # Top content-word overlap pairs of corpus stories: (cluster a, cluster b, Jaccard).
    overlap_pairs: list[tuple[str, str, float]]
    notes: list[str] = field(default_factory=list)

    def kinds(self) -> dict[str, int]:
        """Articles per kind, in the order of the table: originals, variants, negatives."""
        counts = Counter(item.kind for item in self.items)
        order = (ORIGINAL, *VARIANT_KINDS, TEMPLATE_NEGATIVE)
        return {kind: counts[kind] for kind in order if counts[kind]}


# --- text helpers -----------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?…।])\s+")


def language_of(paragraphs: Sequence[str]) -> str:
    """The language the service's cleaner reads the text in (its stop-word lists: en, de, fr,
    es, it, pl, pt, nl), or UNKNOWN_LANGUAGE: what donor text must match."""
    return detect_language(paragraphs) or UNKNOWN_LANGUAGE


def cleaned_body(text: str, title: str | None) -> tuple[str, ...]:
    """The paragraphs the service's text cleaner keeps of ``text`` (none if it rejects it)."""
    try:
        return clean_text(text, title).paragraphs
    except RejectedContent:
        return ()


def paragraph_key(text: str) -> str:
    """Case- and punctuation-blind form of a paragraph, for spotting text used twice."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFC", text).casefold()))


def sentences(paragraph: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(paragraph.strip()) if s]


def paragraphs_of(text: str) -> list[str]:
    """Non-empty lines as paragraphs; a body of fewer than ``MIN_PARAGRAPHS`` is regrouped
    (by sentences, else by words) so that shuffles, ledes and excerpts have units to move."""
    paragraphs = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    if len(paragraphs) >= MIN_PARAGRAPHS:
        return paragraphs
    units = [s for p in paragraphs for s in sentences(p)]
    words = " ".join(paragraphs).split()
    groups = max(MIN_PARAGRAPHS, len(words) // 80)
    if len(units) < groups:
        units = words
    size = -(-len(units) // groups)
    return [" ".join(units[i : i + size]) for i in range(0, len(units), size)]


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = re.search(rb"charset=[\"']?([A-Za-z0-9_-]+)", raw[:4096])
    if declared:
        try:
            return raw.decode(declared.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass
    # Two corpus pages declare utf-8 and hold one cut character: read as cp1252 they would
    # become mojibake ("atakÃ³w"), which no stop-word list reads and the cleaner strips.
    text = raw.decode("utf-8", errors="replace")
    if text.count("\ufffd") <= MAX_REPLACED_SHARE * len(text):
        return text
    return raw.decode("cp1252", errors="replace")


def _usable_url(url: object) -> str | None:
    if not isinstance(url, str):
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in {"http", "https"} and parts.hostname else None


# --- the corpus -------------------------------------------------------------------------------


def _extract_page(task: tuple[Path, str | None]) -> Page | None:
    path, url = task
    document = trafilatura.extract(
        _decode(gzip.decompress(path.read_bytes())), output_format="json", with_metadata=True
    )
    if not document:
        return None
    meta = json.loads(document)
    text = str(meta.get("text") or "")
    if not text.strip():
        return None
    host = urlsplit(url).hostname if url else None
    site = str(meta.get("hostname") or host or "unknown")
    title = " ".join(str(meta.get("title") or "").split()) or " ".join(text.split()[:10])
    body = cleaned_body(text, title)
    name = path.name.removesuffix(".html.gz")
    return Page(name, title, text, body, url, site, language_of(body))


def extract_pages(corpus: Path = CORPUS, workers: int = 1, limit: int | None = None) -> list[Page]:
    """trafilatura's text and the cleaned body of every corpus page that has one (of the first
    ``limit`` pages by file name, when given), sorted by file name."""
    paths = sorted((corpus / "html").glob("*.html.gz"))[:limit]
    if not paths:
        raise SystemExit(f"no pages in {corpus / 'html'}: see /work/shared/corpora/README.md")
    try:
        expected = json.loads((corpus / "expected.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        expected = {}
    tasks = [(p, _usable_url(expected.get(p.name, {}).get("url"))) for p in paths]
    if workers > 1:
        with Pool(workers) as pool:
            pages = pool.map(_extract_page, tasks, chunksize=4)
    else:
        pages = [_extract_page(t) for t in tasks]
    return [p for p in pages if p is not None and p.body]


def load_seeds(seeds_dir: Path = SEEDS) -> list[Story]:
    """The five seed articles: the original as scraped (their own boilerplate included; line 1
    is the title), the body what the cleaner keeps of it."""
    stories = []
    for i, path in enumerate(sorted(seeds_dir.glob("*.txt"))):
        raw = path.read_text("utf-8")
        lines = [" ".join(line.split()) for line in raw.splitlines()]
        title = next(line for line in lines if line)
        body = cleaned_body(raw, title)
        if len(body) < MIN_PARAGRAPHS:
            raise SystemExit(f"{path}: the cleaner keeps {len(body)} paragraphs of this seed")
        stories.append(
            Story(
                key=f"seed:{path.stem}",
                title=title,
                raw=raw,
                paragraphs=body,
                source=f"seed-desk-{i + 1}",
                url=f"https://seed-desk-{i + 1}.example/{path.stem}",
                language=language_of(body),
            )
        )
    if len(stories) != 5:
        raise SystemExit(f"expected the five seed articles in {seeds_dir}, found {len(stories)}")
    return stories


def _content_words(pages: Sequence[Page]) -> dict[str, set[str]]:
    """Per page, its words of three letters or more that occur in at most 5% of the pages."""
    words = {
        p.name: {w for w in _WORD.findall(" ".join(p.body).casefold()) if len(w) >= 3}
        for p in pages
    }
    frequency = Counter(w for ws in words.values() for w in ws)
    common = {w for w, n in frequency.items() if n > 0.05 * len(pages)}
    return {name: ws - common for name, ws in words.items()}


def overlap_pairs(pages: Sequence[Page], count: int) -> list[tuple[str, str, float]]:
    """The ``count`` page pairs with the highest content-word Jaccard: same-topic strangers."""
    words = _content_words(pages)
    scored = []
    for a, b in itertools.combinations(sorted(words), 2):
        union = len(words[a] | words[b])
        if union:
            scored.append((len(words[a] & words[b]) / union, a, b))
    scored.sort(key=lambda s: (-s[0], s[1], s[2]))
    return [(a, b, j) for j, a, b in scored[:count]]


def story_of(page: Page) -> Story:
    return Story(
        key=f"corpus:{page.name}",
        title=page.title,
        raw=page.text,
        paragraphs=tuple(paragraphs_of("\n".join(page.body))),
        source=page.site,
        url=page.url,
        language=page.language,
    )


# --- donors of new text -----------------------------------------------------------------------


def donor_paragraphs(page: Page) -> list[str]:
    """The paragraphs of a page's body long enough to hand out as new text."""
    return [p for p in page.body if len(paragraph_key(p).split()) >= MIN_DONOR_PARAGRAPH_WORDS]


def donor_words(page: Page) -> int:
    return sum(len(p.split()) for p in donor_paragraphs(page))


def new_text_words(story_words: int) -> int:
    """The new text one story's variants take on average: its new lede and a superset of the
    mean share, with room for the sentence a take overshoots by and the short rests it leaves
    behind. A story whose draws exceed what is left of its language is dropped (build_set)."""
    mean_share = sum(SUPERSET_NEW_SHARE) / 2
    return round(1.1 * (mean_share * story_words + LEDE_MAX_WORDS)) + 50


class DonorsExhausted(Exception):
    """No donor text is left in the language asked for."""


class Donors:
    """Body paragraphs of pages that are no story of the set, each handed out once, and only
    in the language asked for: new text in another language is no update a site would print,
    and the cleaner rightly reads a foreign block as boilerplate."""

    def __init__(self, pages: Iterable[Page], taken: set[str]) -> None:
        self._queues: dict[str, deque[str]] = {}
        seen = set(taken)
        for page in pages:
            if page.language == UNKNOWN_LANGUAGE:
                continue
            for paragraph in donor_paragraphs(page):
                key = paragraph_key(paragraph)
                if key in seen:
                    continue
                seen.add(key)
                self._queues.setdefault(page.language, deque()).append(paragraph)

    def words_left(self) -> int:
        return sum(len(p.split()) for q in self._queues.values() for p in q)

    def checkpoint(self) -> dict[str, deque[str]]:
        """The queues as they are, for :meth:`restore` when a story cannot be completed."""
        return {language: deque(queue) for language, queue in self._queues.items()}

    def restore(self, state: dict[str, deque[str]]) -> None:
        self._queues = {language: deque(queue) for language, queue in state.items()}

    def take(self, language: str, words: int) -> list[str]:
        """Whole paragraphs adding up to about ``words``; a long last one is cut at a sentence
        end and its rest put back."""
        taken: list[str] = []
        count = 0
        while count < words:
            queue = self._queues.get(language)
            if not queue:
                raise DonorsExhausted(language)
            paragraph = queue.popleft()
            parts = sentences(paragraph)
            head: list[str] = []
            while parts and count < words:
                head.append(parts.pop(0))
                count += len(head[-1].split())
            taken.append(" ".join(head))
            rest = " ".join(parts)
            if len(rest.split()) >= MIN_DONOR_PARAGRAPH_WORDS:
                queue.appendleft(rest)
        return taken


# --- sites and their boilerplate --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    domain: str
    language: str


SITES = (
    Site("Metro Wire", "metrowire.example", "en"),
    Site("Coast Herald", "coastherald.example", "en"),
    Site("Capital Post", "capitalpost.example", "en"),
    Site("Valley Times", "valleytimes.example", "en"),
    Site("Northern Ledger", "northernledger.example", "en"),
    Site("Daily Dispatch", "dailydispatch.example", "en"),
    Site("Rheintal Bote", "rheintal-bote.example", "de"),
    Site("Elbe Anzeiger", "elbe-anzeiger.example", "de"),
    Site("Alpenpost Online", "alpenpost.example", "de"),
    Site("Le Courrier du Matin", "courrier-matin.example", "fr"),
)
# Two sites with a heavy template carry the template negatives.
TEMPLATE_SITES = (
    Site("Harbour City Chronicle", "harbourchronicle.example", "en"),
    Site("Stadtblatt Nord", "stadtblatt-nord.example", "de"),
)

# fmt: off
_CHROME: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "nav": ("Home", "World", "Politics", "Business", "Tech", "Science", "Sport", "Culture",
                "Opinion", "Video", "Local", "Weather"),
        "top": ("Subscribe", "Sign in", "Advertisement", "Menu", "Search", "Breaking news",
                "Live updates"),
        "inline": ("Advertisement", "Share this article", "Read more", "Story continues below",
                   "Sign up for our daily newsletter", "Continue reading below"),
        "share": ("Share this article", "Facebook Twitter Email", "Share on Facebook",
                  "Copy link", "Print"),
        "headlines": (
            "Markets close higher as investors weigh the rate outlook",
            "City council approves new budget after lengthy debate",
            "Heatwave expected to last into next week, forecasters say",
            "Local team clinches playoff spot with late goal",
            "Hospital staff shortages worsen across the region",
            "New rail line opens to commuters after years of delays",
            "Five things to know before the election",
            "Scientists discover new species in coastal waters",
            "Police appeal for witnesses after overnight crash",
            "Restaurant openings to watch this autumn",
            "School board votes to extend the academic year",
            "Housing prices fall for the third month in a row",
        ),
        "footer": ("About us | Contact | Privacy policy | Terms of use | Cookie settings",
                   "Advertise with us | Careers | Help", "All rights reserved."),
        "labels": ("Related stories", "Most read", "More from {site}", "Trending now"),
        "paragraphs": (
            "We use cookies to improve your experience on our site and to show you relevant "
            "advertising. By continuing to browse you agree to our use of cookies. Learn more "
            "in our cookie policy.",
            "Get the day's top stories delivered to your inbox every morning. Sign up for our "
            "free newsletter and never miss the news that matters to you.",
            "Support independent local journalism. Subscribe today for unlimited access to "
            "{site} on all of your devices.",
        ),
        "byline": ("By {author}", "{author}, {site}", "Reporting by {author}"),
        "update": ("Update:", "UPDATE", "Developing story", "Latest:"),
        "teaser": ("Read the full story at {site}", "Continue reading on {site}",
                   "Read the full article"),
    },
    "de": {
        "nav": ("Startseite", "Politik", "Wirtschaft", "Sport", "Kultur", "Wissen", "Meinung",
                "Video", "Lokales", "Panorama", "Reise"),
        "top": ("Abonnieren", "Anmelden", "Anzeige", "Menü", "Suche", "Eilmeldung"),
        "inline": ("Anzeige", "Artikel teilen", "Weiterlesen", "Mehr zum Thema",
                   "Lesen Sie auch", "Werbung"),
        "share": ("Artikel teilen", "Facebook Twitter E-Mail", "Auf Facebook teilen",
                  "Link kopieren", "Drucken"),
        "headlines": (
            "Stadtrat beschließt neuen Haushalt nach langer Debatte",
            "Hitzewelle hält bis in die nächste Woche an",
            "Neue Bahnstrecke nach Jahren der Verzögerung eröffnet",
            "Polizei sucht Zeugen nach nächtlichem Unfall",
            "Fünf Dinge, die Sie vor der Wahl wissen müssen",
            "Mieten steigen im dritten Monat in Folge",
            "Forscher entdecken neue Art an der Küste",
            "Krankenhäuser klagen über Personalmangel",
            "Heimteam sichert sich den Einzug in die Playoffs",
            "Die besten neuen Restaurants im Herbst",
        ),
        "footer": ("Impressum | Kontakt | Datenschutz | AGB | Cookie-Einstellungen",
                   "Mediadaten | Karriere | Hilfe", "Alle Rechte vorbehalten."),
        "labels": ("Mehr zum Thema", "Meistgelesen", "Mehr von {site}", "Auch interessant"),
        "paragraphs": (
            "Wir verwenden Cookies, um Ihnen ein optimales Nutzungserlebnis zu bieten. Wenn Sie "
            "weiter auf dieser Seite surfen, stimmen Sie der Verwendung von Cookies zu. Mehr "
            "dazu in unserer Datenschutzerklärung.",
            "Die wichtigsten Nachrichten des Tages jeden Morgen in Ihrem Postfach. Melden Sie "
            "sich jetzt für unseren kostenlosen Newsletter an.",
            "Unterstützen Sie unabhängigen Lokaljournalismus. Jetzt {site} abonnieren und alle "
            "Artikel auf allen Geräten lesen.",
        ),
        "byline": ("Von {author}", "{author}, {site}", "Text: {author}"),
        "update": ("Update:", "Aktualisierung:", "Nachtrag:"),
        "teaser": ("Den ganzen Artikel lesen Sie auf {site}", "Weiterlesen auf {site}"),
    },
}
_AUTHORS = ("Maria Lopez", "James Okafor", "Aiko Tanaka", "Tomas Novak", "Leila Haddad",
            "Priya Singh", "Jonas Berg", "Claire Moreau", "Min-jun Kim", "Omar Reyes")
# fmt: on


def chrome(language: str) -> dict[str, tuple[str, ...]]:
    return _CHROME.get(language, _CHROME["en"])


@dataclass(frozen=True, slots=True)
class Template:
    """A site's fixed header and footer; ``inline`` lines go between paragraphs."""

    header: tuple[str, ...]
    footer: tuple[str, ...]
    inline: tuple[str, ...]


def template_of(site: Site, *, heavy: bool = False) -> Template:
    """The site's template, the same for every article of the site (seeded by its name)."""
    rng = random.Random(f"{SEED}:template:{site.domain}:{heavy}")
    words = chrome(site.language)
    fill = {"site": site.name}
    nav = " | ".join(rng.sample(words["nav"], rng.randint(6, len(words["nav"]))))
    header = [site.name, nav, *rng.sample(words["top"], 2)]
    footer = list(rng.sample(words["share"], 2))
    lists = 2 if heavy else 1
    for label in rng.sample(words["labels"], lists):
        footer.append(label.format(**fill))
        footer.extend(rng.sample(words["headlines"], 8 if heavy else 3))
    paragraphs = words["paragraphs"] if heavy else rng.sample(words["paragraphs"], 1)
    footer.extend(p.format(**fill) for p in paragraphs)
    footer.extend(words["footer"][:2])
    footer.append(f"© 2024 {site.name}. {words['footer'][2]}")
    if heavy:
        header.append(words["paragraphs"][0])
        header.extend(rng.sample(words["headlines"], 4))
    return Template(tuple(header), tuple(footer), words["inline"])


def wrap(
    site: Site, title: str, paragraphs: Sequence[str], rng: random.Random, *, heavy: bool = False
) -> str:
    """The body as ``site`` prints it: header, headline, byline, inline chrome, footer."""
    template = template_of(site, heavy=heavy)
    words = chrome(site.language)
    byline = rng.choice(words["byline"]).format(author=rng.choice(_AUTHORS), site=site.name)
    month = rng.choice(("March", "May", "June"))
    stamp = f"{rng.randint(1, 28)} {month} 2024, {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
    lines = [*template.header, title, byline, stamp]
    inline_at = set(rng.sample(range(1, len(paragraphs)), min(3, len(paragraphs) - 1)))
    for i, paragraph in enumerate(paragraphs):
        if i in inline_at:
            line = rng.choice(template.inline)
            if rng.random() < 0.5:
                line = f"{line}: {rng.choice(words['headlines'])}"
            lines.append(line)
        lines.append(paragraph)
    lines.extend(template.footer)
    return "\n\n".join(lines)


# --- variants ---------------------------------------------------------------------------------


def with_typos(text: str, rate: float, rng: random.Random) -> str:
    """Each character other than a line break becomes a typo with probability ``rate``:
    substituted, deleted, doubled with a stray letter, or swapped with the next one."""
    letters = sorted({ch for ch in text if ch.isalpha()}) or list("etaoinshr")
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\n" and rng.random() < rate:
            op = rng.randrange(4)
            if op == 0:
                out.append(rng.choice(letters))
            elif op == 2:
                out += [ch, rng.choice(letters)]
            elif op == 3 and i + 1 < len(text) and text[i + 1] != "\n":
                out += [text[i + 1], ch]
                i += 1
            # op 1 (or a swap at a line end): the character is dropped
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _edit_sentence(sentence: str, vocabulary: Sequence[str], rng: random.Random) -> str:
    """A rewritten sentence: about every sixth word replaced, dropped, or preceded by another."""
    words = sentence.split()
    for _ in range(max(2, len(words) // 6)):
        if len(words) < 3:
            break
        at = rng.randrange(len(words))
        op = rng.randrange(3)
        if op == 0:
            words[at] = rng.choice(vocabulary)
        elif op == 1:
            del words[at]
        else:
            words.insert(at, rng.choice(vocabulary))
    return " ".join(words)


def with_edits(paragraphs: Sequence[str], share: float, rng: random.Random) -> list[str]:
    """``share`` of the sentences (at least one) edited, the rest untouched."""
    split = [sentences(p) for p in paragraphs]
    where = [(i, j) for i, parts in enumerate(split) for j in range(len(parts))]
    vocabulary = sorted({w for p in paragraphs for w in p.split() if len(w) > 3}) or ["news"]
    for i, j in rng.sample(where, max(1, round(share * len(where)))):
        split[i][j] = _edit_sentence(split[i][j], vocabulary, rng)
    return [" ".join(parts) for parts in split]


def shuffled(paragraphs: Sequence[str], rng: random.Random) -> list[str]:
    """The paragraphs in another order (never the original one, given two or more)."""
    order = list(range(len(paragraphs)))
    while len(order) > 1 and order == sorted(order):
        rng.shuffle(order)
    return [paragraphs[i] for i in order]


def _span(paragraphs: Sequence[str], start_share: float, share: float) -> list[str]:
    """The sentences from about ``start_share`` of the body, about ``share`` of its words,
    paragraph breaks kept. Starts and ends at sentence boundaries; a single very long sentence
    is cut at a word, as a truncating feed would."""
    units = [(i, s) for i, p in enumerate(paragraphs) for s in sentences(p)]
    total = sum(len(s.split()) for _, s in units)
    start_word, target = start_share * total, max(1, round(share * total))
    count, first = 0, 0
    while first < len(units) - 1 and count < start_word:
        count += len(units[first][1].split())
        first += 1
    picked: dict[int, list[str]] = {}
    count = 0
    for i, s in units[first:]:
        if count >= target:
            break
        words = s.split()
        if count + len(words) > round(target * 1.15):
            words = [*words[: max(1, target - count)]]
            words[-1] += "…"
        picked.setdefault(i, []).append(" ".join(words))
        count += len(words)
    return [" ".join(parts) for _, parts in sorted(picked.items())]


def split_lede(paragraph: str) -> tuple[int, str]:
    """The words of a first paragraph's lede, and the rest of the paragraph: the whole
    paragraph up to LEDE_MAX_WORDS, else its opening sentences within that (at least one; a
    longer first sentence gives up its first LEDE_MAX_WORDS words)."""
    parts = sentences(paragraph)
    count, taken = 0, 0
    while taken < len(parts) and (not taken or count + len(parts[taken].split()) <= LEDE_MAX_WORDS):
        count += len(parts[taken].split())
        taken += 1
    if count > LEDE_MAX_WORDS:
        words = paragraph.split()
        return LEDE_MAX_WORDS, " ".join(words[LEDE_MAX_WORDS:])
    return count, " ".join(parts[taken:])


@dataclass(slots=True)
class _Maker:
    """Builds the variants of one story, with a random source seeded by the set's seed and the
    story; new text comes from the donors shared by all stories, in story order."""

    story: Story
    cluster: str
    donors: Donors
    rng: random.Random

    def _site(self) -> Site:
        same = [
            s for s in SITES if s.language == self.story.language and s.name != self.story.source
        ]
        return self.rng.choice(same or [s for s in SITES if s.language == "en"])

    def _article(self, kind: str, n: int, site: Site, title: str, text: str) -> dict[str, Any]:
        ident = f"{self.cluster}-{kind}-{n}"
        slug = self.cluster.removeprefix("dq-")
        return {
            "id": ident,
            "source": site.name,
            "url": f"https://www.{site.domain}/2024/{slug}-{kind}-{n}",
            "title": title,
            "text": text,
        }

    def item(
        self,
        kind: str,
        title: str,
        body: Sequence[str] | str,
        *,
        n: int = 1,
        site: Site | None = None,
        detail: str = "",
    ) -> Labelled:
        text = body if isinstance(body, str) else "\n\n".join(body)
        article = self._article(kind, n, site or self._site(), title, text)
        return Labelled(article, self.cluster, kind, detail)

    def variants(self) -> list[Labelled]:
        """One copy of each kind, two excerpts (a lead and a middle passage)."""
        story, rng = self.story, self.rng
        title, body = story.title, list(story.paragraphs)
        words = chrome(story.language)
        out = [self.item("exact", title, body)]

        site = self._site()
        out.append(self.item("boilerplate", title, wrap(site, title, body, rng), site=site))
        out.append(self.item("edited", title, with_edits(body, EDITED_SENTENCE_SHARE, rng)))

        replaced, rest = split_lede(body[0])
        lede = self.donors.take(story.language, max(25, replaced))
        headline = " ".join(" ".join(lede).split()[:9]).rstrip(".,;:")
        out.append(self.item("new_lede", headline, [*lede, *([rest] if rest else []), *body[1:]]))
        out.append(self.item("shuffled", title, shuffled(body, rng)))
        out.append(self.item("typos", title, with_typos("\n\n".join(body), TYPO_RATE, rng)))

        site = self._site()
        edited = "\n\n".join(with_edits(body, EDITED_SENTENCE_SHARE, rng))
        # Typos never touch a line break, so the paragraphs come apart where they were.
        noisy = with_typos(edited, COMBINED_TYPO_RATE, rng).split("\n\n")
        out.append(self.item("combined", title, wrap(site, title, noisy, rng), site=site))

        lead = _span(body, 0.0, rng.uniform(*EXCERPT_SHARE))
        if rng.random() < 0.5:
            lead.append(rng.choice(words["teaser"]).format(site=story.source))
        out.append(self.item("excerpt", title, lead, detail="lead"))
        share = rng.uniform(*EXCERPT_SHARE)
        middle = _span(body, rng.uniform(0.15, 0.95 - share), share)
        out.append(self.item("excerpt", title, middle, n=2, detail="middle"))

        new_words = round(rng.uniform(*SUPERSET_NEW_SHARE) * story.word_count)
        new = self.donors.take(story.language, new_words)
        if rng.random() < 0.5:
            superset, detail = [*body, rng.choice(words["update"]), *new], "appended"
        else:
            at = rng.randint(1, len(body) - 1)
            superset, detail = [*body[:at], *new, *body[at:]], "inserted"
        out.append(self.item("superset", title, superset, detail=detail))
        return out


# --- the set ----------------------------------------------------------------------------------


def interleave(groups: Sequence[Sequence[Labelled]], rng: random.Random) -> list[Labelled]:
    """One stream of all groups, each group's order kept (its original first), groups mixed:
    the next item comes from a group drawn with weight its remaining length."""
    queues = [deque(g) for g in groups if g]
    stream: list[Labelled] = []
    while queues:
        pick = rng.choices(range(len(queues)), weights=[len(q) for q in queues])[0]
        stream.append(queues[pick].popleft())
        if not queues[pick]:
            queues.pop(pick)
    return stream


def original_item(story: Story, cluster: str) -> Labelled:
    article: dict[str, Any] = {
        "id": cluster,
        "source": story.source,
        "title": story.title,
        "text": story.raw,
    }
    if story.url:
        article["url"] = story.url
    return Labelled(article, cluster, ORIGINAL)


def build_set(
    pages: Sequence[Page],
    seeds: Sequence[Story],
    *,
    stories: int,
    overlap_pair_count: int,
    template_negatives: int,
    seed: int = SEED,
) -> SyndicationSet:
    """The labelled stream: the seeds and ``stories`` corpus stories (the pages of the top
    content-word-overlap pairs among them), each original followed by its variants, stories
    interleaved, and ``template_negatives`` single articles among them."""
    rng = random.Random(seed)
    eligible = [
        p
        for p in pages
        if MIN_BODY_WORDS <= p.word_count <= MAX_BODY_WORDS and p.language != UNKNOWN_LANGUAGE
    ]
    if len(eligible) < stories:
        raise SystemExit(
            f"only {len(eligible)} corpus pages have a body of {MIN_BODY_WORDS}-{MAX_BODY_WORDS} "
            f"words in a known language; asked for {stories} stories"
        )
    by_name = {p.name: p for p in eligible}

    # Donor text per language, and what the seeds and the template negatives will take of it.
    supply = Counter[str]()
    for page in pages:
        supply[page.language] += donor_words(page)
    demand = Counter[str]()
    for story in seeds:
        demand[story.language] += new_text_words(story.word_count)
    for n in range(template_negatives):
        demand[TEMPLATE_SITES[n % len(TEMPLATE_SITES)].language] += TEMPLATE_NEGATIVE_WORDS[1] + 50
    chosen: list[str] = []
    skipped: Counter[str] = Counter()

    def pick(name: str) -> bool:
        page = by_name[name]
        need = new_text_words(page.word_count)
        if supply[page.language] - donor_words(page) < demand[page.language] + need:
            skipped[page.language] += 1
            return False
        supply[page.language] -= donor_words(page)
        demand[page.language] += need
        chosen.append(name)
        return True

    pairs = overlap_pairs(eligible, overlap_pair_count)
    for name in dict.fromkeys(name for a, b, _ in pairs for name in (a, b)):
        if len(chosen) < stories:
            pick(name)
    pairs = [(a, b, j) for a, b, j in pairs if a in chosen and b in chosen]
    rest = sorted(set(by_name) - set(chosen))
    rng.shuffle(rest)
    for name in rest:
        if len(chosen) == stories:
            break
        pick(name)
    if len(chosen) < stories:
        raise SystemExit(
            f"only {len(chosen)} stories fit the donor text of their languages; asked for "
            f"{stories} (skipped for want of donor text: {dict(skipped)})"
        )

    picked = [story_of(by_name[name]) for name in sorted(chosen)]
    all_stories = [*seeds, *picked]
    # Distinct urls: two articles under one normalised url would be a revision, not a copy.
    seen_urls: set[str] = set()
    for i, story in enumerate(all_stories):
        if story.url in seen_urls:
            all_stories[i] = dataclasses.replace(story, url=None)
        elif story.url:
            seen_urls.add(story.url)

    taken = {paragraph_key(p) for s in all_stories for p in s.paragraphs}
    donor_pages = [p for p in pages if p.name not in set(chosen)]
    unknown = sum(1 for p in pages if p.language == UNKNOWN_LANGUAGE)
    rng.shuffle(donor_pages)
    donors = Donors(donor_pages, taken)
    words_offered = donors.words_left()

    # The template negatives' bodies first: their share was reserved when stories were picked.
    negative_bodies: list[list[str]] = []
    for n in range(template_negatives):
        site = TEMPLATE_SITES[n % len(TEMPLATE_SITES)]
        neg_rng = random.Random(f"{seed}:negative:{n}:body")
        negative_bodies.append(
            donors.take(site.language, neg_rng.randint(*TEMPLATE_NEGATIVE_WORDS))
        )

    clusters = {s.key: f"dq-{i:03d}" for i, s in enumerate(all_stories)}
    groups: list[list[Labelled]] = []
    kept: list[Story] = []
    dropped: Counter[str] = Counter()
    for story in all_stories:
        cluster = clusters[story.key]
        story_rng = random.Random(f"{seed}:{story.key}")
        state = donors.checkpoint()
        try:
            variants = _Maker(story, cluster, donors, story_rng).variants()
        except DonorsExhausted:
            if story.key.startswith("seed:"):
                raise SystemExit(f"no {story.language} donor text left for {story.key}") from None
            donors.restore(state)
            dropped[story.language] += 1
            continue
        story_rng.shuffle(variants)
        groups.append([original_item(story, cluster), *variants])
        kept.append(story)
    kept_keys = {s.key for s in kept}
    pairs = [(a, b, j) for a, b, j in pairs if {f"corpus:{a}", f"corpus:{b}"} <= kept_keys]

    for n, body in enumerate(negative_bodies):
        site = TEMPLATE_SITES[n % len(TEMPLATE_SITES)]
        neg_rng = random.Random(f"{seed}:negative:{n}")
        title = " ".join(" ".join(body).split()[:8]).rstrip(".,;:")
        cluster = f"dq-neg-{n:02d}"
        article = {
            "id": cluster,
            "source": site.name,
            "url": f"https://www.{site.domain}/news/{cluster}",
            "title": title,
            "text": wrap(site, title, body, neg_rng, heavy=True),
        }
        groups.append([Labelled(article, cluster, TEMPLATE_NEGATIVE)])

    notes = [
        f"donor text: {words_offered} words from {len(donor_pages)} pages, always in the "
        f"story's language; {words_offered - donors.words_left()} used",
        f"bodies: what the service's cleaner keeps; {unknown} pages in no language it knows "
        f"left out; stories skipped for want of donor text in their language: "
        + (", ".join(f"{lang} {n}" for lang, n in (skipped + dropped).most_common()) or "none"),
    ]
    return SyndicationSet(
        items=interleave(groups, rng),
        stories=kept,
        seed_clusters=[clusters[s.key] for s in seeds],
        overlap_pairs=[(clusters[f"corpus:{a}"], clusters[f"corpus:{b}"], j) for a, b, j in pairs],
        notes=notes,
    )
