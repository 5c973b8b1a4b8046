"""Security: API keys from the environment and a file, nothing secret in the logs, Redis with
a password and over TLS, and a request id on every answer and log line."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from service import logs
from service.cli import build_parser, settings_from
from service.settings import Settings, redact_url

from .conftest import free_port

Client = TestClient[Any, Any]

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PASSWORD = "s3cret-redis-pw-91d2"


def article(n: int, body: str = "") -> dict[str, Any]:
    words = " ".join(f"w{n}x{i}" for i in range(80))
    return {"id": f"sec-{n}", "text": f"Story {n} begins here. {body} {words}."}


# --- API keys ---------------------------------------------------------------------------------


def key_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "api-keys"
    path.write_text(text, encoding="utf-8")
    return path


async def test_keys_from_env_and_file_are_merged(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    path = key_file(tmp_path, "# deploy keys\n\nfile-key-1\n   file-key-2  \r\n# file-key-3\n")
    settings = make_settings(api_keys="env-key, file-key-1", api_keys_file=path)
    assert settings.api_keys == ["env-key", "file-key-1", "file-key-2"]
    client: Client = await make_client(settings)
    for n, key in enumerate(["env-key", "file-key-1", "file-key-2"]):
        resp = await client.post("/v1/articles", json=article(n), headers={"X-API-Key": key})
        assert resp.status == 201, await resp.json()
    resp = await client.post(
        "/v1/articles", json=article(9), headers={"Authorization": "Bearer file-key-2"}
    )
    assert resp.status == 201
    for headers in ({}, {"X-API-Key": "file-key-3"}, {"X-API-Key": "# deploy keys"}):
        resp = await client.post("/v1/articles", json=article(10), headers=headers)
        assert resp.status == 401, headers
        assert (await resp.json())["error"]["code"] == "unauthorized"


def test_key_file_comes_from_env_or_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = key_file(tmp_path, "k-file\n")
    monkeypatch.setenv("NEWS_INGEST_API_KEYS_FILE", str(path))
    assert Settings().api_keys == ["k-file"]
    monkeypatch.delenv("NEWS_INGEST_API_KEYS_FILE")
    args = build_parser().parse_args(["serve", "--api-keys-file", str(path), "--api-keys", "k"])
    assert settings_from(args).api_keys == ["k", "k-file"]


@pytest.mark.parametrize(
    ("make_path", "words"),
    [
        (lambda tmp: tmp / "missing", "cannot be read"),
        (lambda tmp: tmp, "cannot be read"),  # a directory
        (lambda tmp: key_file(tmp, "\n# only a comment\n\n"), "holds no keys"),
        (lambda tmp: key_file(tmp, "").parent / "api-keys", "holds no keys"),
    ],
)
def test_a_bad_key_file_is_a_clear_start_up_error(
    make_path: Callable[[Path], Path], words: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match=words) as caught:
        Settings(api_keys="env-secret-key", api_keys_file=make_path(tmp_path))
    assert "env-secret-key" not in str(caught.value)


def test_secrets_stay_out_of_settings_text() -> None:
    settings = Settings(api_keys="key-in-repr", redis_url=f"redis://:{PASSWORD}@h:1/0")
    assert "key-in-repr" not in repr(settings)
    assert PASSWORD not in repr(settings)
    assert redact_url(f"redis://:{PASSWORD}@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("rediss://u:p@h:6380/0?ssl_ca_certs=/ca.pem").startswith("rediss://u:***@h")
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
    with pytest.raises(ValidationError) as caught:
        Settings(api_keys="key-in-error", redis_url=f"redis://:{PASSWORD}@h:1/0", port="x")
    assert "key-in-error" not in str(caught.value)
    assert PASSWORD not in str(caught.value)


# --- logs -------------------------------------------------------------------------------------

BODY_SENTINEL = "zebra-quartz-body-sentinel-5521"
GOOD_KEY = "good-key-sentinel-8f0c"
WRONG_KEY = "wrong-key-sentinel-03aa"


class EmitCapture(logging.Handler):
    """Each record formatted as the service formats it, at emit time (when the request id is
    still set), as (level, JSON line)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logs.JsonFormatter())
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, self.format(record)))


@pytest.fixture
def emitted() -> Iterator[EmitCapture]:
    handler = EmitCapture()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


async def test_no_body_key_or_password_in_logs_at_info(
    caplog: pytest.LogCaptureFixture,
    emitted: EmitCapture,
    make_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    path = key_file(tmp_path, f"{GOOD_KEY}\n")
    client: Client = await make_client(make_settings(api_keys_file=path))
    good = {"X-API-Key": GOOD_KEY}
    body = article(1, BODY_SENTINEL)
    resp = await client.post("/v1/articles", json=body, headers=good)
    assert resp.status == 201
    resp = await client.post("/v1/articles", json=body, headers={"X-API-Key": WRONG_KEY})
    assert resp.status == 401
    resp = await client.post(
        "/v1/articles", json=body, headers={"Authorization": f"Bearer {WRONG_KEY}"}
    )
    assert resp.status == 401
    invalid = {**article(2, BODY_SENTINEL), "titel": BODY_SENTINEL}
    resp = await client.post("/v1/articles", json=invalid, headers=good)
    assert resp.status == 422
    assert BODY_SENTINEL not in await resp.text(), "a validation error does not echo the input"
    resp = await client.post(
        "/v1/articles",
        data=f'{{"text": "{BODY_SENTINEL}"',
        headers={**good, "Content-Type": "application/json"},
    )
    assert resp.status == 400
    resp = await client.post(
        "/v1/articles/batch", json=[article(3, BODY_SENTINEL), invalid], headers=good
    )
    assert resp.status == 200
    resp = await client.post(
        "/v1/articles", json=article(4, BODY_SENTINEL), params={"dry_run": "true"}, headers=good
    )
    assert BODY_SENTINEL in (await resp.json())["article"]["text"]

    # Redis down, behind a password: start-up and ingest both log warnings.
    down_url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    down: Client = await make_client(make_settings(redis_url=down_url, api_keys=GOOD_KEY))
    resp = await down.post("/v1/articles", json=body, headers=good)
    assert resp.status == 503

    loud = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert any(r.levelno >= logging.WARNING for r in loud), "the 503 path logged something"
    formatter = logs.JsonFormatter()
    texts = [formatter.format(r) for r in loud]
    texts += [line for level, line in emitted.lines if level >= logging.INFO]
    for text in texts:
        for secret in (BODY_SENTINEL, GOOD_KEY, WRONG_KEY, PASSWORD):
            assert secret not in text, f"{secret} leaked into a log line: {text}"


# --- request ids ------------------------------------------------------------------------------


async def test_request_ids_on_answers_and_log_lines(
    client: Client,
    emitted: EmitCapture,
    make_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
) -> None:
    # Generated when the client sends none: the error body names the id of the header.
    resp = await client.post(
        "/v1/articles", data="{nope", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    rid = resp.headers["X-Request-ID"]
    assert len(rid) == 32
    assert (await resp.json())["error"]["request_id"] == rid
    # A client's id is echoed, on errors and successes alike.
    for method, path, status in [("GET", "/v1/articles/unknown", 404), ("GET", "/healthz", 200)]:
        resp = await client.request(method, path, headers={"X-Request-ID": "trace-42.a:b_c"})
        assert resp.status == status
        assert resp.headers["X-Request-ID"] == "trace-42.a:b_c"
    assert (await (await client.get("/v1/articles/unknown")).json())["error"]["request_id"]
    resp = await client.post("/v1/articles/batch", json=[{"titel": "x"}])
    assert resp.status == 422
    assert (await resp.json())["error"]["request_id"] == resp.headers["X-Request-ID"]
    # An id that could forge log lines or headers is replaced, not echoed.
    for bad in ["has space", "x" * 129, "semi;colon"]:
        resp = await client.get("/healthz", headers={"X-Request-ID": bad})
        assert resp.headers["X-Request-ID"] != bad
        assert len(resp.headers["X-Request-ID"]) == 32
    # A log line written while serving a request carries its id.
    down_url = f"redis://127.0.0.1:{free_port()}/0"
    down: Client = await make_client(make_settings(redis_url=down_url))
    emitted.lines.clear()
    resp = await down.post("/v1/articles", json=article(5), headers={"X-Request-ID": "req-503"})
    assert resp.status == 503
    assert (await resp.json())["error"]["request_id"] == "req-503"
    warnings = [json.loads(line) for level, line in emitted.lines if level >= logging.WARNING]
    assert warnings
    assert all(entry.get("request_id") == "req-503" for entry in warnings), warnings


# --- Redis with a password, and over TLS ------------------------------------------------------


@dataclass
class PrivateRedis:
    port: int
    ca_file: Path | None = None


def _start_redis(workdir: Path, *args: str, port: int) -> subprocess.Popen[bytes]:
    if not Path(REDIS_SERVER).exists():
        pytest.skip(f"no redis-server binary at {REDIS_SERVER}; install redis-server to run this")
    log_path = workdir / "redis.log"
    command = [REDIS_SERVER, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(workdir), "--logfile", str(log_path), *args]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
            if "tls" in " ".join(args).lower() and "TLS" in log:
                pytest.skip(f"this redis-server cannot serve TLS: {log[-300:]}")
            raise RuntimeError(f"redis-server exited with {proc.returncode}: {log[-1000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("redis-server did not open its port within 10 s")


def _stop_redis(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis-pw")
    proc = _start_redis(workdir, "--port", str(port), "--requirepass", PASSWORD, port=port)
    yield PrivateRedis(port)
    _stop_redis(proc)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    trustme = pytest.importorskip("trustme")
    workdir = tmp_path_factory.mktemp("redis-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file, cert_file, key_file_ = (workdir / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file_))
    port = free_port()
    proc = _start_redis(
        workdir,
        "--port", "0",
        "--tls-port", str(port),
        "--tls-cert-file", str(cert_file),
        "--tls-key-file", str(key_file_),
        "--tls-ca-cert-file", str(ca_file),
        "--tls-auth-clients", "no",
        "--requirepass", PASSWORD,
        port=port,
    )  # fmt: skip
    yield PrivateRedis(port, ca_file)
    _stop_redis(proc)


async def _works(client: Client) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 200, await resp.text()
    resp = await client.post("/v1/articles", json=article(20))
    assert resp.status == 201, await resp.json()
    resp = await client.get("/v1/articles/sec-20")
    assert resp.status == 200


async def _fails_cleanly(client: Client) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert PASSWORD not in await resp.text()
    resp = await client.post("/v1/articles", json=article(21))
    assert resp.status == 503
    assert resp.headers["Retry-After"]
    body = await resp.json()
    assert body["error"]["code"] == "store_unavailable"


async def test_redis_with_a_password(
    password_redis: PrivateRedis,
    make_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
) -> None:
    base = f"127.0.0.1:{password_redis.port}/0"
    await _works(await make_client(make_settings(redis_url=f"redis://:{PASSWORD}@{base}")))
    await _fails_cleanly(await make_client(make_settings(redis_url=f"redis://:wrong@{base}")))
    await _fails_cleanly(await make_client(make_settings(redis_url=f"redis://{base}")))


async def test_redis_over_tls(
    tls_redis: PrivateRedis,
    make_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
) -> None:
    base = f"127.0.0.1:{tls_redis.port}/0"
    trusted = f"rediss://:{PASSWORD}@{base}?ssl_ca_certs={tls_redis.ca_file}"
    await _works(await make_client(make_settings(redis_url=trusted)))
    # The server's certificate is not signed by a CA the system trusts: refused, cleanly.
    untrusted = f"rediss://:{PASSWORD}@{base}"
    await _fails_cleanly(await make_client(make_settings(redis_url=untrusted)))
    # Plain text to a TLS port.
    await _fails_cleanly(await make_client(make_settings(redis_url=f"redis://:{PASSWORD}@{base}")))
