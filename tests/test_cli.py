"""The command line as a newcomer uses it: serve on the embedded server with the seeds,
watch the events with tail, ingest files, restart and find the state still there."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from .conftest import SEEDS, wait_for
from .factories import seed_records
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
