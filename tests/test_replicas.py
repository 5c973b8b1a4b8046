"""Two service processes on one Redis, racing with near-identical articles."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from service.keys import Keys

from .factories import near_copy, story, vocabulary
from .procs import ServiceProcess

PAIRS = 200


async def test_two_replicas_make_exactly_one_unique_per_pair(
    redis_url: str, prefix: str, tmp_path: Path, redis_client: aioredis.Redis
) -> None:
    rng = random.Random(2024)
    words = vocabulary()
    pairs = []
    for _ in range(PAIRS):
        original = story(rng, words, paragraphs=3)
        pairs.append((original, near_copy(original, rng, edits=1)))

    args = ("--redis-url", redis_url, "--key-prefix", prefix, "--workers", "1")
    replicas = [ServiceProcess(*args, log_path=tmp_path / f"replica{i}.log") for i in (1, 2)]
    try:
        await asyncio.gather(*(r.wait_ready() for r in replicas))
        async with aiohttp.ClientSession() as session:
            start = asyncio.Event()

            async def send(replica: ServiceProcess, article_id: str, text: str) -> Any:
                await start.wait()
                async with session.post(
                    replica.url + "/v1/articles", json={"id": article_id, "text": text}
                ) as resp:
                    assert resp.status in {200, 201}, await resp.text()
                    return await resp.json()

            tasks = [
                asyncio.create_task(send(replica, f"{side}-{i}", text))
                for i, pair in enumerate(pairs)
                for replica, side, text in zip(replicas, "ab", pair, strict=True)
            ]
            await asyncio.sleep(0.1)
            start.set()  # every request leaves at once
            decisions = await asyncio.gather(*tasks)
    finally:
        codes = [r.stop() for r in replicas]
    assert codes == [0, 0], [r.log() for r in replicas]

    by_pair: dict[str, list[dict[str, Any]]] = {}
    for decision in decisions:
        by_pair.setdefault(decision["id"].split("-")[1], []).append(decision)
    assert len(by_pair) == PAIRS
    for pair in by_pair.values():
        statuses = sorted(d["status"] for d in pair)
        assert statuses == ["duplicate", "unique"], pair
        unique = next(d for d in pair if d["status"] == "unique")
        duplicate = next(d for d in pair if d["status"] == "duplicate")
        assert duplicate["duplicate_of"] == unique["id"]
    keys = Keys(prefix)
    assert await redis_client.xlen(keys.articles_stream) == PAIRS
    assert await redis_client.xlen(keys.duplicates_stream) == PAIRS
