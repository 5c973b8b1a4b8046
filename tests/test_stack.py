"""The files around the code agree with the code: docker-compose.yml and the Dockerfile name
real settings, commands, routes and ports; the lock file pins every dependency; the shipped
event schema and the README's configuration table match what the code generates.

No Docker engine runs where the tests run, so these read the files instead of building them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from service.cli import build_parser
from service.schema import render_events_schema, settings_table, shipped_events_schema
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "NEWS_INGEST_"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def dockerfile_env() -> dict[str, str]:
    """ENV lines of the final stage (after the last FROM)."""
    final = dockerfile().rsplit("\nFROM ", 1)[-1].replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return env


def cli_commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices is not None
    return set(sub.choices)


def setting_names() -> set[str]:
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def test_compose_env_vars_are_real_settings() -> None:
    for name, service in compose()["services"].items():
        for var in service.get("environment", {}):
            if var.startswith(ENV_PREFIX):
                assert var in setting_names(), f"{name}: {var} is not a setting"


def test_dockerfile_env_vars_are_real_settings() -> None:
    for var in dockerfile_env():
        if var.startswith(ENV_PREFIX):
            assert var in setting_names(), var


def test_commands_exist_in_the_cli() -> None:
    commands = cli_commands()
    entrypoint = re.search(r'^ENTRYPOINT \["([^"]+)"\]', dockerfile(), re.M)
    assert entrypoint is not None
    assert entrypoint.group(1) == "news-ingest"
    cmd = re.search(r'^CMD \["([^"]+)"', dockerfile(), re.M)
    assert cmd is not None
    assert cmd.group(1) in commands
    for name, service in compose()["services"].items():
        if service.get("build") and "command" in service:  # our image, so our CLI
            assert service["command"][0] in commands, name
            build_parser().parse_args(service["command"])  # flags parse too


def test_healthcheck_path_is_a_route() -> None:
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", dockerfile())
    assert match is not None
    port, path = match.groups()
    from service.app import create_app

    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    routes = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
    assert ("GET", path) in routes
    assert port == dockerfile_env()["NEWS_INGEST_PORT"]


def test_ports_agree() -> None:
    exposed = re.search(r"^EXPOSE (\d+)", dockerfile(), re.M)
    assert exposed is not None
    port = exposed.group(1)
    assert dockerfile_env()["NEWS_INGEST_PORT"] == port
    service = compose()["services"]["service"]
    assert service["environment"]["NEWS_INGEST_PORT"] == port
    assert all(mapping.endswith(f":{port}") for mapping in service["ports"])
    seed_url = compose()["services"]["seed"]["command"]
    assert f"http://service:{port}" in seed_url


def test_compose_redis_urls_point_at_the_redis_service() -> None:
    services = compose()["services"]
    for name, service in services.items():
        url = service.get("environment", {}).get("NEWS_INGEST_REDIS_URL")
        if url:
            host = re.match(r"redis://([^:/]+)", url)
            assert host is not None, name
            assert host.group(1) in services, name
            assert services[host.group(1)].get("healthcheck"), "redis needs a healthcheck"
            assert service["depends_on"][host.group(1)]["condition"] == "service_healthy"
    assert "--appendonly" in services["redis"]["command"]


def test_dockerfile_runs_as_non_root_without_dev_dependencies() -> None:
    text = dockerfile()
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert "HEALTHCHECK" in text
    assert "[dev]" not in text
    assert "--require-hashes" in text
    assert "requirements.lock" in text
    assert text.count("\nFROM ") >= 1
    assert "python:3.11-slim" in text


def test_lock_pins_every_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {
        canonicalize_name(name): Version(version)
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, re.M)
    }
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not in requirements.lock"
        assert pinned[name] in req.specifier, f"{req.name}=={pinned[name]} violates {spec}"
    assert all("--hash=sha256:" in block for block in lock.split("==")[1:])


def test_shipped_event_schema_matches_the_models() -> None:
    assert shipped_events_schema() == render_events_schema(), (
        "service/schemas/events.json is stale: run `news-ingest schema "
        "--output service/schemas/events.json`"
    )


def test_readme_configuration_table_matches_the_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- config-table -->\n(.*?)<!-- /config-table -->", readme, re.S)
    assert match is not None, "README.md lacks the config-table markers"
    assert match.group(1) == settings_table(), (
        "the README configuration table is stale: replace it with `news-ingest config`"
    )


@pytest.mark.parametrize("command", ["schema", "config"])
def test_doc_commands_print(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli import main

    assert main([command]) == 0
    assert capsys.readouterr().out.strip()
