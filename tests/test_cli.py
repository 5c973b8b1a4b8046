"""The command line as a newcomer uses it: serve on the embedded server with the seeds,
watch the events with tail, ingest files, restart and find the state still there."""

from __future__ import annotations

import asyncio
import io
import json
import random
import sys
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from service.app import params_of
from service.cli import main
from service.fingerprint import index_meta
from service.index import Store, connect
from service.keys import Keys
from service.models import ArticleIn, Prepared
from service.prepare import prepare_article
from service.settings import Settings

from .conftest import SEEDS, wait_for
from .factories import seed_records, story, vocabulary
from .procs import ServiceProcess, run_cli


async def _all_seeds_stored(url: str) -> bool:
    async with aiohttp.ClientSession() as session:
        for record in seed_records():
            async with session.get(f"{url}/v1/articles/{record['id']}") as resp:
                if resp.status != 200:
                    return False
    return True


async def test_serve_embedded_with_seeds_then_tail_ingest_and_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    service = ServiceProcess(
        "--seed-dir",
        str(SEEDS),
        "--data-dir",
        str(data_dir),
        "--workers",
        "1",
        log_path=tmp_path / "serve1.log",
    )
    try:
        await service.wait_ready()
        await wait_for(lambda: _all_seeds_stored(service.url), timeout_s=60)
        await wait_for(lambda: "seeded" in service.log(), timeout_s=10)
        assert "unique 5, duplicate 0, updated 0, replayed 5, errors 0" in service.log()

        tail = run_cli("tail", "--data-dir", str(data_dir), "--from-start", "--count", "5")
        assert tail.returncode == 0, tail.stderr
        lines = tail.stdout.strip().splitlines()
        assert len(lines) == 5
        assert all(" article.created " in line for line in lines)

        raw = run_cli("tail", "--data-dir", str(data_dir), "--from-start", "--count", "1", "--json")
        entry = json.loads(raw.stdout)
        assert entry["type"] == "article.created"
        assert json.loads(entry["data"])["schema_version"] == 1

        ingest = run_cli("ingest", str(SEEDS), "--url", service.url, "--quiet")
        assert ingest.returncode == 0, ingest.stdout + ingest.stderr
        assert "unique 0, duplicate 0, updated 0, replayed 10, errors 0" in ingest.stdout
    finally:
        assert service.stop() == 0, service.log()

    # The embedded server keeps its data (AOF) in the data dir: a restart remembers.
    again = ServiceProcess(
        "--data-dir", str(data_dir), "--workers", "1", log_path=tmp_path / "serve2.log"
    )
    try:
        await again.wait_ready()
        assert await _all_seeds_stored(again.url)
    finally:
        assert again.stop() == 0, again.log()


def test_ingest_reports_unreachable_service(tmp_path: Path) -> None:
    sample = tmp_path / "a.txt"
    sample.write_text("Some article text that is long enough to matter.", encoding="utf-8")
    result = run_cli("ingest", str(sample), "--url", "http://127.0.0.1:9", "--quiet")
    assert result.returncode == 1
    assert "cannot reach the service" in result.stderr


def test_index_info_prints_the_curve() -> None:
    result = run_cli("index-info")
    assert result.returncode == 0
    assert "bands x" in result.stdout
    assert "0.80" in result.stdout


# --- inspect ----------------------------------------------------------------------------------
# In process (main() with capsys): each case costs milliseconds, not an interpreter start-up.

HEADER = "The Daily Valley Courier has reported on the towns of the upper valley since 1887."
FOOTER = "Stories like this one are written by the reporters of the Courier's county desk."
GLUED = "The Courier's newsroom can be reached at the desk around the clock."

PAGE = """<!doctype html>
<html><head><title>Council approves the new river bridge</title>
<script>var teaser = "<p>Not text a reader sees</p>";</script></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li></ul></nav>
<article>
<h1>Council approves the new river bridge</h1>
<p>The city council voted on Tuesday evening to approve the construction of a new bridge across
the river, ending a debate that had lasted for more than a decade.</p>
<p>Supporters of the project said the bridge would cut commuting times for thousands of residents
on the east bank and relieve traffic on the old crossing downtown.</p>
<p>Construction is expected to begin next spring and to take about three years, according to the
city engineering department.</p>
<p>Share this article</p>
<ul><li>The vote was nine to four.</li><li>Work starts next spring.</li></ul>
</article>
<footer><p>Copyright 2024 Example Times. All rights reserved.</p></footer>
</body></html>
"""


def _inspect(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["inspect", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _stdin(monkeypatch: pytest.MonkeyPatch, data: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.encode("utf-8"))))


def test_inspect_seed_marks_each_removal_with_its_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (path,) = SEEDS.glob("000_*.txt")
    code, out, err = _inspect(capsys, str(path))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"== {path}"
    assert "= [title] Mayors want answers on Trump admin 'sanctuary city' policies" in lines
    assert "- [rules:read_more] Read More" in lines
    assert any(line.startswith("  Washington (CNN) Mayors and local") for line in lines)
    assert not any(line.startswith("? ") for line in lines)
    assert "kept 5 paragraph(s), removed 5 segment(s); title: Mayors want" in out
    assert "     2  rules:story_highlights" in lines
    assert "\x1b[" not in out  # stdout is not a terminal here


def test_inspect_colour_follows_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    (path,) = SEEDS.glob("000_*.txt")
    _, coloured, _ = _inspect(capsys, str(path), "--color")
    assert "\x1b[2;9mRead More\x1b[0m" in coloured
    _, plain, _ = _inspect(capsys, str(path), "--no-color")
    assert "\x1b[" not in plain


def test_inspect_html_shows_what_trafilatura_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "bridge.html"
    page.write_text(PAGE, encoding="utf-8")
    code, out, _ = _inspect(capsys, str(page))
    assert code == 0
    lines = out.splitlines()
    assert lines[:3] == [f"== {page}", "? Home", "? News"]
    assert "- [rules:share_prompt] Share this article" in lines
    assert "  - The vote was nine to four." in lines
    assert "? Copyright 2024 Example Times. All rights reserved." in lines
    assert sum(line.startswith("  The city council voted") for line in lines) == 1
    assert "Not text a reader sees" not in out
    assert "title: Council approves the new river bridge" in out
    assert "html: trafilatura extracted" in out
    # The service does not open a page over its size limit; neither does inspect.
    page.write_text(PAGE + "<!-- padding -->" * 10, encoding="utf-8")  # over the lowest limit
    code, out, _ = _inspect(capsys, str(page), "--max-html-bytes", "1024")
    assert code == 1
    assert out.splitlines()[-1].startswith("would be rejected with 422 html_too_large: html is ")


def test_inspect_json_article_with_its_title(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = {
        "title": "A headline",
        "source": "example",
        "text": "A headline\n\nFirst paragraph of the story, long enough to stay.\n\nRead More",
    }
    path = tmp_path / "article.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    code, out, _ = _inspect(capsys, str(path))
    assert code == 0
    assert out.splitlines()[1:4] == [
        "- [document:repeated_title] A headline",
        "  First paragraph of the story, long enough to stay.",
        "- [rules:read_more] Read More",
    ]
    assert "title: A headline" in out


def test_inspect_jsonl_every_line_or_one(capsys: pytest.CaptureFixture[str]) -> None:
    path = SEEDS / "articles.jsonl"
    code, out, _ = _inspect(capsys, str(path))
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith("== ")] == [
        f"== {path}:{n}" for n in range(1, 6)
    ]
    code, out, _ = _inspect(capsys, str(path), "--line", "3")
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith("== ")] == [f"== {path}:3"]
    assert "- [rules:comment_count] New, 15 comments" in out
    code, _, err = _inspect(capsys, str(path), "--line", "9")
    assert code == 2
    assert err == f"news-ingest inspect: {path}:9: no article on that line\n"


def test_inspect_stdin_is_guessed_or_told(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, PAGE)
    code, out, _ = _inspect(capsys, "-")
    assert code == 0
    assert out.startswith("== -\n? Home\n")
    text = "A Headline For Tests\n\nRead more\n\nThe body of the story is this sentence.\n"
    _stdin(monkeypatch, text)
    code, out, _ = _inspect(capsys, "-")
    assert code == 0
    assert out.splitlines()[1:4] == [
        "= [title] A Headline For Tests",
        "- [rules:read_more] Read more",
        "  The body of the story is this sentence.",
    ]
    # Told it is text, markup is text: nothing is extracted.
    _stdin(monkeypatch, "<p>" + text.replace("\n", " ") + "</p>")
    _, out, _ = _inspect(capsys, "-", "--text")
    assert "html: trafilatura" not in out
    assert "<p>" in out


def test_inspect_unreadable_files_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.txt"
    code, out, err = _inspect(capsys, str(missing))
    assert (code, out) == (2, "")
    assert err == f"news-ingest inspect: {missing}: cannot read: No such file or directory\n"
    broken = tmp_path / "broken.json"
    broken.write_text("{oops", encoding="utf-8")
    invalid = tmp_path / "invalid.jsonl"
    invalid.write_text(json.dumps({"text": "a", "html": "<p>b</p>"}) + "\n", encoding="utf-8")
    (seed,) = SEEDS.glob("001_*.txt")
    code, out, err = _inspect(capsys, str(broken), str(seed), str(invalid))
    assert code == 2
    assert out.startswith(f"== {seed}\n")  # the readable file is still shown
    assert err.splitlines() == [
        f"news-ingest inspect: {broken}: invalid JSON: Expecting property name enclosed in "
        "double quotes at line 1",
        f"news-ingest inspect: {invalid}:1: invalid article: check text "
        "(text: exactly one of 'text' or 'html' is required)",
    ]


def test_inspect_nothing_left_says_why_it_would_be_a_422(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "chrome.txt"
    path.write_text(
        "Share this article\nRead more\nSubscribe to our newsletter\n", encoding="utf-8"
    )
    code, out, _ = _inspect(capsys, str(path))
    assert code == 1
    lines = out.splitlines()
    assert lines[1:4] == [
        "- [rules:share_prompt] Share this article",
        "- [rules:read_more] Read more",
        "- [rules:newsletter_prompt] Subscribe to our newsletter",
    ]
    assert lines[-1] == (
        "would be rejected with 422 empty_after_cleaning: "
        "no article text left after removing boilerplate"
    )
    # HTML: what trafilatura kept, the rules removed; a page without text is another 422.
    menu = tmp_path / "menu.html"
    menu.write_text("<html><body><nav><a href='/'>Home</a></nav></body></html>", encoding="utf-8")
    code, out, _ = _inspect(capsys, str(menu))
    assert code == 1
    assert "- [rules:site_chrome] Home" in out.splitlines()
    assert out.splitlines()[-1].startswith("would be rejected with 422 empty_after_cleaning: ")
    blank = tmp_path / "blank.html"
    blank.write_text("<html><body><script>var a = 1;</script></body></html>", encoding="utf-8")
    code, out, _ = _inspect(capsys, str(blank))
    assert code == 1
    assert out.splitlines()[-1] == (
        "would be rejected with 422 no_article_text: "
        "no article text could be extracted from the HTML"
    )


def test_inspect_reads_redis_only_for_a_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (seed,) = SEEDS.glob("000_*.txt")
    code, _, err = _inspect(capsys, str(seed), "--redis-url", "redis://127.0.0.1:9/0")
    assert code == 2
    assert "--redis-url: Redis is read only with --source NAME" in err
    monkeypatch.delenv("NEWS_INGEST_REDIS_URL", raising=False)
    code, out, err = _inspect(capsys, str(seed), "--source", "CNN", "--data-dir", str(tmp_path))
    assert (code, out) == (2, "")
    assert err.startswith("news-ingest inspect: no Redis URL")
    code, out, err = _inspect(
        capsys, str(seed), "--source", "CNN", "--redis-url", "redis://127.0.0.1:9/0"
    )
    assert (code, out) == (2, "")
    assert err.startswith("news-ingest inspect: Redis is unreachable")


async def _key_dump(redis_client: aioredis.Redis, prefix: str) -> dict[bytes, bytes | None]:
    keys = [key async for key in redis_client.scan_iter(match=Keys(prefix).all_pattern())]
    return {key: await redis_client.dump(key) for key in sorted(keys)}


async def _teach(settings: Settings, source: str, texts: list[str]) -> None:
    """Index articles of ``source`` as the service does, so that the source learns from them."""
    params = params_of(settings)
    keys = Keys(settings.key_prefix, settings.articles_stream, settings.duplicates_stream)
    meta = index_meta(
        num_perm=params.num_perm,
        shingle_size=params.shingle_size,
        threshold=params.threshold,
        shingle_unit=params.shingle_unit,
    )
    store = Store(
        connect(str(settings.redis_url), timeout_s=5.0),
        keys,
        threshold=settings.dedup_threshold,
        window_s=settings.dedup_window_s,
        stream_maxlen=settings.stream_maxlen,
        meta=meta,
    )
    prepared = [prepare_article(ArticleIn(source=source, text=text), params) for text in texts]
    try:
        decisions, _ = await store.decide_and_learn(
            [p for p in prepared if isinstance(p, Prepared)], dry_run=False
        )
    finally:
        await store.client.aclose()
    assert [d.status for d in decisions] == ["unique"] * len(texts)


async def test_inspect_marks_what_the_source_learned_and_writes_nothing(
    settings: Settings,
    redis_client: aioredis.Redis,
    prefix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = random.Random(11)
    words = vocabulary()
    # Three unique articles of a source teach it the template they share.
    bodies = [story(rng, words, paragraphs=3, length=30) for _ in range(3)]
    await _teach(settings, "courier", [f"{HEADER}\n\n{b} {GLUED}\n\n{FOOTER}" for b in bodies])
    body = story(rng, words, paragraphs=3, length=30)
    path = tmp_path / "next.txt"
    path.write_text(f"{HEADER}\n\n{body} {GLUED}\n\n{FOOTER}\n\nRead more", encoding="utf-8")
    before = await _key_dump(redis_client, prefix)
    assert before

    flags = ["--redis-url", str(settings.redis_url), "--key-prefix", prefix]
    code = await asyncio.to_thread(main, ["inspect", str(path), "--source", "courier", *flags])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("source 'courier' has learned ")
    *paragraphs, last = body.split("\n\n")
    assert lines[2:9] == [
        f"- [learned:source_repeated_line] {HEADER}",
        *(f"  {p}" for p in paragraphs),
        f"  {last}",
        f"- [learned:source_repeated_sentence] {GLUED}",
        f"- [learned:source_repeated_line] {FOOTER}",
        "- [rules:read_more] Read more",
    ]
    assert "     2  learned:source_repeated_line" in lines

    # Another source has learned nothing: the template stays.
    code = await asyncio.to_thread(main, ["inspect", str(path), "--source", "gazette", *flags])
    out = capsys.readouterr().out
    assert code == 0
    assert f"  {HEADER}" in out.splitlines()
    assert "learned:" not in out.split("\n", 1)[1]

    # A document of nothing but the template would be a 422 for this source.
    template = tmp_path / "template.txt"
    template.write_text(f"{HEADER}\n\n{FOOTER}", encoding="utf-8")
    code = await asyncio.to_thread(main, ["inspect", str(template), "--source", "courier", *flags])
    out = capsys.readouterr().out
    assert code == 1
    assert f"- [learned:source_repeated_line] {HEADER}" in out
    assert out.splitlines()[-1] == (
        "would be rejected with 422 empty_after_cleaning: "
        "no words left once the source's learned boilerplate is removed"
    )
    assert await _key_dump(redis_client, prefix) == before
