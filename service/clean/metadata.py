"""Page metadata (title, author, date, sitename, url) for the HTML path.

trafilatura's ``extract_metadata`` costs about as much as the text extraction itself. Three of
its steps are most of that cost, and this module leaves them out or defers them:

- htmldate's extensive search, a scan of the whole page text with date patterns, runs on every
  page there. On the 300 trafilatura-eval pages it took 15 of the ~31 ms the metadata cost per
  page, though the fast search (meta tags, JSON-LD, the url, time elements) gave the same date on
  264 pages. Here it runs only for a page on which the fast search finds no date (32 of 300), so
  the date differs from trafilatura's on 3 pages of 300.
- Categories and tags scraped from the page's links when its meta tags have none (5 ms per page).
  Events carry those of the meta tags and JSON-LD only: a link list is mostly site navigation.
- The license (1.3 ms per page), which events do not carry either.

Everything else is trafilatura's own extractors, called in trafilatura's order, so that the
fields an event carries match what ``bare_extraction(with_metadata=True)`` gives.
``tests/test_html.py`` compares the two on corpus pages, so a trafilatura release that changes
these helpers fails a test instead of drifting silently.
"""

from __future__ import annotations

import contextlib

from courlan import extract_domain
from htmldate import find_date
from lxml.html import HtmlElement
from trafilatura.metadata import (
    META_URL,
    examine_meta,
    extract_author,
    extract_meta_json,
    extract_sitename,
    extract_title,
    extract_url,
)
from trafilatura.settings import Document, set_date_params

__all__ = ["page_metadata"]


def page_metadata(tree: HtmlElement, url: str | None, *, date: bool = True) -> Document:
    """The page's metadata, read from ``tree`` (not modified); without its date unless
    ``date`` (the client sent the article's own: 1.5 ms a page, 35 ms on a page that needs
    the extensive search)."""
    found = examine_meta(tree)
    # A one-word author from a meta tag is usually a site or a handle, not a person.
    if found.author and " " not in found.author:
        found.author = None
    # Malformed JSON-LD is common, and trafilatura's parser of it has raised on some: the
    # meta tags found so far still count.
    with contextlib.suppress(Exception):
        found = extract_meta_json(tree, found)
    if not found.title:
        found.title = extract_title(tree)
    if not found.author:
        found.author = extract_author(tree)
    if not found.url:
        found.url = extract_url(tree, url)
    if found.url:
        found.hostname = extract_domain(found.url, fast=True)
    found.date = _date(tree, found.url) if date else None
    if not found.sitename:
        found.sitename = extract_sitename(tree)
    if found.sitename:
        found.sitename = found.sitename.lstrip("@")
        if found.sitename and "." not in found.sitename and not found.sitename[0].isupper():
            found.sitename = found.sitename.title()
    elif found.url and (match := META_URL.match(found.url)):
        found.sitename = match[1]
    found.clean_and_trim()
    return found


def _date(tree: HtmlElement, url: str | None) -> str | None:
    for extensive in (False, True):
        date = find_date(tree, **{**set_date_params(extensive), "url": url})
        if date:
            return str(date)
    return None
