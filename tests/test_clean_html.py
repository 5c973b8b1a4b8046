"""The HTML cleaner: trafilatura's extraction, the text rules over it, and hostile input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from htmldate import find_date
from lxml.html import HtmlElement
from trafilatura.settings import set_date_params

from service.clean.html import extract_html
from service.errors import RejectedContent

# The shared corpora sit beside the checkout (../shared/corpora); they are never copied in.
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "trafilatura-eval"

BODY = [
    "The city council approved a new budget on Tuesday after a long debate about road repairs "
    "and school funding in the northern districts.",
    "Council members voted seven to two in favour, with the two dissenting members arguing "
    "that the plan spends too little on public transport.",
    "Read more about it in the report below, officials said.",
    "The mayor said the budget would be published in full next week and that residents could "
    "comment on the plan at three public meetings.",
]

ARTICLE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Council approves new budget | Example Gazette</title>
  <meta property="og:title" content="Council approves new budget">
  <meta property="og:site_name" content="Example Gazette">
  <meta name="author" content="Jane Doe">
  <meta property="article:published_time" content="2024-03-05T09:30:00Z">
</head>
<body>
  <header><nav><ul>
    <li><a href="/">Home</a></li><li><a href="/politics">Politics</a></li>
    <li><a href="/sport">Sport</a></li>
  </ul></nav></header>
  <main><article>
    <h1>Council approves new budget</h1>
    <p class="byline">By Jane Doe</p>
    <p>{BODY[0]}</p>
    <div class="share">
      <a href="#">Share on Facebook</a> <a href="#">Share on Twitter</a>
    </div>
    <p>{BODY[1]}</p>
    <p>{BODY[2]}</p>
    <p>Share this article</p>
    <p>{BODY[3]}</p>
    <p>Read more</p>
  </article></main>
  <footer>
    <p>Copyright 2024 Example Gazette. All rights reserved.</p>
    <a href="/privacy">Privacy policy</a>
  </footer>
</body>
</html>
"""


def test_handwritten_article_keeps_body_and_drops_chrome() -> None:
    cleaned = extract_html(ARTICLE, url="https://gazette.example/budget")
    assert cleaned.paragraphs == tuple(BODY)
    assert cleaned.title == "Council approves new budget"
    assert cleaned.author == "Jane Doe"
    assert cleaned.published_at == "2024-03-05"
    assert cleaned.sitename == "Example Gazette"
    for chrome in ["Politics", "Share on", "Share this article", "Copyright", "Privacy"]:
        assert chrome not in cleaned.text
    # trafilatura drops most chrome itself; the text rules take what it left.
    reasons = {(r.reason, r.text) for r in cleaned.removed}
    assert ("read_more", "Read more") in reasons
    assert ("repeated_title", "Council approves new budget") in reasons


def test_client_title_wins() -> None:
    cleaned = extract_html(ARTICLE, title="Budget passes")
    assert cleaned.title == "Budget passes"
    # The page's own headline still goes: the body is the same whoever names the article.
    assert cleaned.paragraphs == tuple(BODY)


def _corpus_page(name: str) -> tuple[str, dict[str, object]]:
    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} is not present")
    expected = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))[name]
    html = gzip.decompress((CORPUS / "html" / name).read_bytes()).decode("utf-8")
    return html, expected


def test_corpus_page_snippets() -> None:
    html, expected = _corpus_page("16c00077e9e0d07c.html.gz")
    cleaned = extract_html(html, url=str(expected["url"]))
    text = cleaned.text
    assert isinstance(expected["with"], list)
    assert isinstance(expected["without"], list)
    for snippet in expected["with"]:
        assert snippet in text
    for snippet in expected["without"]:
        assert snippet not in text
    assert cleaned.title == expected["title"]
    assert cleaned.published_at == expected["date"]
    assert cleaned.author is not None
    assert cleaned.author.replace(".", "") == str(expected["author"]).replace(".", "")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "<<<",
        ">>><<<&&&",
        "<html></html>",
        "<html><body>" + "<div>" * 100 + "</div>" * 100 + "</body></html>",
        "<html><body>" + "<div>" * 5000 + "text" + "</div>" * 5000 + "</body></html>",
        "\x00\x01\x02<p>\udcff</p>",
        "<?xml version='1.0' encoding='utf-8'?><html><body><p>x</p></body></html>",
        "<html><body><script>var a = 1;</script><style>p {}</style></body></html>",
    ],
)
def test_garbage_html_is_rejected_with_a_reason(raw: str) -> None:
    with pytest.raises(RejectedContent) as excinfo:
        extract_html(raw)
    assert excinfo.value.reason in {"no_article_text", "unparseable_html", "empty_after_cleaning"}
    assert excinfo.value.field == "html"


def test_all_boilerplate_page_is_rejected() -> None:
    page = (
        "<html><body><article><p>Share this article</p><p>Read more</p>"
        "<p>Leave a comment</p></article></body></html>"
    )
    with pytest.raises(RejectedContent) as excinfo:
        extract_html(page)
    assert excinfo.value.reason in {"no_article_text", "empty_after_cleaning"}
    assert excinfo.value.field == "html"


def test_parser_exceptions_are_translated(monkeypatch: pytest.MonkeyPatch) -> None:
    failure = ValueError("lxml gave up")

    def explode(*args: object, **kwargs: object) -> None:
        raise failure

    monkeypatch.setattr("service.clean.html.trafilatura.bare_extraction", explode)
    with pytest.raises(RejectedContent) as excinfo:
        extract_html(ARTICLE)
    assert excinfo.value.reason == "unparseable_html"
    assert excinfo.value.field == "html"
    assert excinfo.value.__cause__ is failure


def _corpus_pages(count: int) -> list[tuple[str, str | None]]:
    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} is not present")
    expected = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
    pages = []
    for name in sorted(expected)[:count]:
        raw = gzip.decompress((CORPUS / "html" / name).read_bytes())
        pages.append((raw.decode("utf-8", errors="replace"), expected[name].get("url") or None))
    return pages


def test_page_metadata_matches_trafilatura_on_corpus_pages() -> None:
    # page_metadata calls trafilatura's own extractors, leaving out what events do not carry
    # and deferring htmldate's extensive search: a trafilatura release that changes those
    # helpers must fail here rather than change events silently.
    from trafilatura.metadata import extract_metadata
    from trafilatura.utils import load_html

    from service.clean.metadata import page_metadata

    same_date = 0
    pages = _corpus_pages(40)
    for raw, url in pages:
        tree = load_html(raw)
        assert tree is not None
        ours = page_metadata(tree, url)
        theirs = extract_metadata(load_html(raw), url)
        for field in ("title", "author", "url", "hostname", "sitename", "description"):
            assert getattr(ours, field) == getattr(theirs, field), (url, field)
        # trafilatura scrapes the page's links for the terms its metadata lacks; events carry
        # the metadata's only, which must be trafilatura's where there are any.
        for field in ("categories", "tags"):
            if getattr(ours, field):
                assert getattr(ours, field) == getattr(theirs, field), (url, field)
        same_date += ours.date == theirs.date
    # The fast date search disagrees with the extensive one on about 1% of pages.
    assert same_date >= len(pages) - 2


def _page_with_metadata(description: str, keywords: str) -> str:
    section = json.dumps(
        {"@context": "https://schema.org", "@type": "NewsArticle", "articleSection": ["Politics"]}
    )
    return ARTICLE.replace(
        "<title>",
        f'<meta name="description" content="{description}">'
        '<meta property="article:tag" content="Budget">'
        '<meta property="article:tag" content="budget">'
        f'<meta name="keywords" content="{keywords}">'
        f'<script type="application/ld+json">{section}</script><title>',
    )


def test_page_description_categories_and_tags_are_kept() -> None:
    cleaned = extract_html(
        _page_with_metadata("  The council   passed the budget. ", "roads; schools, Budget, ")
    )
    assert cleaned.description == "The council passed the budget."
    assert cleaned.categories == ("Politics",)
    # One term per meta tag or keyword, split on commas and semicolons, the first spelling of
    # a term kept whatever its case.
    assert cleaned.tags == ("Budget", "roads", "schools")
    assert cleaned.paragraphs[0] == BODY[0]


def test_page_metadata_an_event_carries_is_bounded() -> None:
    from service.clean.html import MAX_DESCRIPTION_CHARS, MAX_TERM_CHARS, MAX_TERMS

    keywords = ",".join([f"term{i}" for i in range(200)] + ["x" * (MAX_TERM_CHARS + 1)])
    cleaned = extract_html(_page_with_metadata("word " * 500, keywords))
    assert cleaned.description is not None
    assert len(cleaned.description) <= MAX_DESCRIPTION_CHARS
    assert cleaned.description.endswith("word")  # cut between words
    assert len(cleaned.tags) == MAX_TERMS
    assert cleaned.tags[:3] == ("Budget", "term0", "term1")


def test_a_page_without_metadata_has_none() -> None:
    cleaned = extract_html(ARTICLE)
    assert (cleaned.description, cleaned.categories, cleaned.tags) == (None, (), ())


def test_date_found_only_in_the_text_is_still_found() -> None:
    # No meta tag, JSON-LD, url or <time> holds the date: only the extensive search finds it.
    page = ARTICLE.replace(
        '<meta property="article:published_time" content="2024-03-05T09:30:00Z">', ""
    ).replace("<p>Read more</p>", "<span>7 May 2021</span>")
    assert find_date(page, **set_date_params(False)) is None
    cleaned = extract_html(page)
    assert cleaned.published_at == "2021-05-07"
    assert cleaned.author == "Jane Doe"


def test_the_page_date_is_not_searched_when_the_client_sent_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The client's published_at wins over the page's: searching the page for a date (35 ms on
    # a page that needs htmldate's extensive search) would be thrown away.
    from service.clean import metadata
    from service.models import ArticleIn, ArticlePayload, Params, Prepared
    from service.prepare import prepare_article

    searched: list[str | None] = []
    real = metadata._date

    def counting(tree: HtmlElement, url: str | None) -> str | None:
        searched.append(url)
        return real(tree, url)

    monkeypatch.setattr(metadata, "_date", counting)
    given = prepare_article(ArticleIn(html=ARTICLE, published_at="2024-03-06T10:00:00Z"), Params())
    assert searched == []
    found = prepare_article(ArticleIn(html=ARTICLE), Params())
    assert len(searched) == 1
    for prepared, date in ((given, "2024-03-06T10:00:00Z"), (found, "2024-03-05")):
        assert isinstance(prepared, Prepared)
        assert ArticlePayload.model_validate_json(prepared.payload_json).published_at == date
