"""The HTML cleaner: trafilatura finds the article, then the text layers clean what it kept.

trafilatura answers ``None`` when it finds nothing and raises from lxml on some inputs; both
are turned into :class:`service.errors.RejectedContent` here, at the boundary, with a reason.

Deeply nested HTML (``"<div>" * 100_000``) needs no guard of its own: trafilatura's parser is
built without ``huge_tree``, so libxml2 stops building the tree at depth 256 and drops what
nests deeper. No recursive walk over the tree can then go deep, and a page made only of such
nesting answers ``no_article_text`` (tests/test_hostile.py proves it on 100,000 levels).
"""

from __future__ import annotations

from dataclasses import dataclass

import trafilatura
from trafilatura.settings import Document
from trafilatura.utils import load_html

from service.clean import Cleaned
from service.clean.metadata import page_metadata
from service.clean.text import clean_paragraphs, normalise_line
from service.errors import RejectedContent

__all__ = ["Page", "extract_html", "extract_page"]

# Bounds on what a page's metadata adds to an event: a page may stuff its keywords tag with
# hundreds of terms, or its description with the whole article.
MAX_TERMS = 30
MAX_TERM_CHARS = 100
MAX_DESCRIPTION_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Page:
    """trafilatura's answer for a page, before the text rules: one paragraph per line."""

    text: str
    metadata: Document


def extract_page(raw: str, url: str | None, *, date: bool) -> Page | None:
    """The main text and the metadata of ``raw``, or None when it holds no main text: the
    service's trafilatura call, options and all. ``date``: look for the publication date."""
    try:
        tree = load_html(raw)
        if tree is None:
            return None
        # Metadata first, from the page as parsed: extraction prunes a copy of the tree.
        metadata = page_metadata(tree, url, date=date)
        document = trafilatura.bare_extraction(
            tree,
            url=url or metadata.url,
            with_metadata=False,
            # Chosen on the 300 trafilatura-eval pages (snippet F1 of trafilatura alone):
            # favor_recall 0.9352, balanced 0.9343, favor_precision 0.9285, without tables
            # 0.9278, with comments 0.9322 (comments are boilerplate there, as here). Recall mode
            # keeps 6 more body snippets for 5 more leftovers, which the text rules then remove.
            include_comments=False,
            include_tables=True,
            favor_precision=False,
            favor_recall=True,
            # No fallback extractors (readability, jusText) to compare against: F1 0.9345
            # instead of 0.9352 alone, for about 10% less time per page (bench/throughput.py
            # measures the service against bare trafilatura.extract).
            fast=True,
            # trafilatura's dedup cache is global to the process: a page seen before would be
            # dropped on its second visit. Repeats within a page are the document layer's job,
            # repeats across pages the MinHash index's.
            deduplicate=False,
        )
    except Exception as exc:  # lxml and trafilatura raise many types; all mean the same here
        raise RejectedContent(
            "unparseable_html",
            f"the HTML could not be parsed ({type(exc).__name__})",
            field="html",
        ) from exc
    # Without output_format="python" it would be a dict; the default is the Document.
    if not isinstance(document, Document):
        return None
    return Page(document.text or "", metadata)


def _text(value: object) -> str | None:
    """A metadata value as one clean line, or None when it is empty."""
    if isinstance(value, list | tuple):
        value = ", ".join(str(item) for item in value if item)
    if not isinstance(value, str):
        return None
    return normalise_line(value) or None


def _terms(value: object) -> tuple[str, ...]:
    """Categories or tags as a list of distinct terms, in the page's order.

    trafilatura answers a list with an entry per meta tag, and a keywords tag is one entry
    of comma-separated terms: both are split, and a term told apart from an earlier one only
    by case is the same term.
    """
    entries = value if isinstance(value, list | tuple) else [value]
    found: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, str):
            continue
        for part in entry.replace(";", ",").split(","):
            term = normalise_line(part)
            if term and len(term) <= MAX_TERM_CHARS:
                found.setdefault(term.casefold(), term)
            if len(found) == MAX_TERMS:
                return tuple(found.values())
    return tuple(found.values())


def _description(value: object) -> str | None:
    """The page's description, cut at a word before MAX_DESCRIPTION_CHARS when longer."""
    text = _text(value)
    if text is None or len(text) <= MAX_DESCRIPTION_CHARS:
        return text
    cut = text[: MAX_DESCRIPTION_CHARS + 1].rsplit(" ", 1)[0]
    return cut if 0 < len(cut) <= MAX_DESCRIPTION_CHARS else text[:MAX_DESCRIPTION_CHARS]


def extract_html(
    raw: str, url: str | None = None, title: str | None = None, *, date: bool = True
) -> Cleaned:
    """Extract and clean the article in ``raw``; the client's ``title`` wins over the page's.
    ``date``: look for the page's publication date (False when the client sent it)."""
    page = extract_page(raw, url, date=date)
    if page is None or not page.text.strip():
        raise RejectedContent(
            "no_article_text", "no article text could be extracted from the HTML", field="html"
        )
    text, document = page.text, page.metadata
    page_title = _text(document.title)
    # trafilatura writes one paragraph (or list item, or table row) per line. Its text repeats
    # the page's own headline, so that is the title to strip even when the client's wins.
    paragraphs, removed = clean_paragraphs(text.split("\n"), page_title or _text(title))
    if not paragraphs:
        raise RejectedContent(
            "empty_after_cleaning",
            "no article text left after removing boilerplate",
            field="html",
        )
    return Cleaned(
        title=_text(title) or page_title,
        paragraphs=tuple(paragraphs),
        removed=tuple(removed),
        author=_text(document.author),
        published_at=_text(document.date),
        sitename=_text(document.sitename),
        language=_text(document.language),
        description=_description(document.description),
        categories=_terms(document.categories),
        tags=_terms(document.tags),
    )
