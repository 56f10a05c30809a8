"""A real ``prefect server start`` per test, for the scenarios about the orchestrator itself.

Why not the session's ``prefect_test_harness``: it runs Prefect's server in *ephemeral* mode,
where the repossessor service (which frees the slots of expired concurrency leases) does not run,
so a lock held by a killed process would stay held there forever -- unlike any real deployment.
Scenario 5 (orchestrator killed) needs that service; scenario 6 restarts the server itself.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.local_server import LocalPrefectServer
from tests.prefect_env import drain_prefect_workers

SERVER_START_S = 300.0  # a loaded 2-core machine took 80 s to start (and migrate) a fresh server


def reusable_port(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a listening server can bind ``port`` now. Unlike ``local_server.port_free`` this
    binds with SO_REUSEADDR, as uvicorn does, so connections of the previous server lingering in
    TIME_WAIT (up to 60 s after it stopped) do not count as "in use"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class RealPrefect:
    """One real Prefect server (SQLite under ``home``) that a test may restart on the same port."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.server = LocalPrefectServer(home)

    @property
    def api_url(self) -> str:
        return self.server.api_url

    def start(self) -> None:
        self.server.start(timeout_s=SERVER_START_S)

    def stop(self) -> None:
        self.server.stop()

    def restart(self, monkeypatch: pytest.MonkeyPatch) -> tuple[float, float]:
        """SIGTERM the server, start it again on the same port and database (clients keep their URL).

        Returns (seconds to stop, seconds from stopped to healthy again).
        """
        port = self.server.port
        t0 = time.monotonic()
        self.server.stop()
        stopped = time.monotonic()
        monkeypatch.setattr("deployments.local_server.port_free", reusable_port)
        self.server = LocalPrefectServer(self.home, port=port)
        self.start()
        return stopped - t0, time.monotonic() - stopped


@pytest.fixture
def real_prefect(tmp_path: Path) -> Iterator[RealPrefect]:
    """A fresh real server for this test, with this process's Prefect client pointed at it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    rp = RealPrefect(tmp_path / "prefect-home")
    rp.start()
    try:
        with temporary_settings({PREFECT_API_URL: rp.api_url}):
            try:
                yield rp
            finally:
                drain_prefect_workers()
    finally:
        rp.stop()
