"""Cleaning: turn a raw scraped document into a title, body paragraphs and an audit trail.

Everything in this package is pure and synchronous: it runs in the worker processes.
``html.extract_html`` handles HTML (trafilatura, then the text rules over its output);
``text.clean_text`` handles raw text. Both answer a :class:`Cleaned` or raise
:class:`service.errors.RejectedContent` when nothing publishable is left.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Removed:
    """One segment cleaning took out, and why."""

    text: str
    # "document" (repeats inside one article), "rules" (pattern library), "features" (line
    # features and their context, see clean/features.py), "html"
    layer: str
    reason: str  # stable rule name, e.g. "repeated_title", "read_more", "comment_form"


@dataclass(frozen=True, slots=True)
class Cleaned:
    """The publishable part of a document."""

    title: str | None
    paragraphs: tuple[str, ...]
    removed: tuple[Removed, ...] = ()
    author: str | None = None
    published_at: str | None = None  # as found in the document; the API validates its own field
    sitename: str | None = None
    language: str | None = None
    # When the title was inferred from raw text: the next line that reads like a headline.
    # If the inferred title turns out to be a site's tagline (the learned layer knows), this
    # is the headline.
    next_title: str | None = None
    # From the page's meta tags and JSON-LD (HTML only).
    description: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The body as one string, paragraphs separated by blank lines."""
        return "\n\n".join(self.paragraphs)
