"""A real ``prefect server start`` on loopback as a child process (the main job, tests).

Why a real server and not Prefect's ephemeral one: only ``prefect server start`` runs the
scheduler (schedules never fire without it), late-run detection and lease reclaim. Why a child
process: its lifetime is ours -- it gets its own process group (stopped as a whole, bounded) and
the Linux parent-death signal, so it cannot outlive the process that started it even on SIGKILL.
State (SQLite database, logs) lives in ``home`` (``PREFECT_HOME``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

from kafka_medic.errors import MedicError
from kafka_medic.waiting import NotYet, WaitTimeout, poll

_PR_SET_PDEATHSIG = 1


class ServerError(MedicError):
    """The local Prefect server could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _prefect_cli() -> list[str]:
    exe = Path(sys.executable).with_name("prefect")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "prefect"]


class LocalPrefectServer:
    """``prefect server start --host 127.0.0.1 --port PORT`` with ``PREFECT_HOME=home``."""

    def __init__(self, home: Path, *, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.home = Path(home)
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.log_path = self.home / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def child_env(self) -> dict[str, str]:
        """Environment for processes that should talk to this server (flows, workers, the CLI)."""
        return {**os.environ, "PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(self.home)}

    def _server_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_API_KEY")}
        env.update(
            # The UI asks the server where the API is; without these it says 127.0.0.1:4200 whatever
            # --port was, and a browser on any other port shows "Can't connect to Server API".
            PREFECT_SERVER_API_HOST=self.host,
            PREFECT_SERVER_API_PORT=str(self.port),
            PREFECT_UI_API_URL=self.api_url,
            PREFECT_UI_URL=self.url,
            PREFECT_HOME=str(self.home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_LOGGING_LEVEL=env.get("PREFECT_SERVER_LOGGING_LEVEL", "WARNING"),
            PREFECT_LOGGING_LEVEL=env.get("PREFECT_LOGGING_LEVEL", "WARNING"),
        )
        return env

    def start(self, *, timeout_s: float = 120.0) -> str:
        """Start the server and wait (bounded) until ``/api/health`` answers; return the API URL."""
        if self._proc is not None:
            raise ServerError("the Prefect server is already started")
        if not port_free(self.port, self.host):
            raise ServerError(f"port {self.port} on {self.host} is already in use; choose another port")
        self.home.mkdir(parents=True, exist_ok=True)
        argv = [*_prefect_cli(), "server", "start", "--host", self.host, "--port", str(self.port)]
        pdeath = threading.current_thread() is threading.main_thread()
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._server_env(),
                start_new_session=True,  # its own process group: stop() takes everything it started
                preexec_fn=_die_with_parent if pdeath else None,
            )
        try:
            self.wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self.api_url

    def healthy(self, timeout_s: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=timeout_s) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def wait_healthy(self, timeout_s: float) -> None:
        def answers() -> None:
            if self._proc is not None and self._proc.poll() is not None:
                raise ServerError(
                    f"the Prefect server exited with code {self._proc.returncode} during start-up; "
                    f"log tail:\n{self.log_tail()}"
                )
            if not self.healthy():
                raise NotYet("no answer on /health")

        try:
            poll(answers, timeout_s=timeout_s, interval_s=0.5, what="Prefect server healthy")
        except WaitTimeout:
            raise ServerError(
                f"the Prefect server at {self.url} did not answer within {timeout_s:.0f} s; see {self.log_path}"
            ) from None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, *, graceful_s: float = 10.0) -> None:
        """SIGTERM the server's process group, SIGKILL what is left after ``graceful_s`` (bounded)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for sig, wait_s in ((signal.SIGTERM, graceful_s), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; make sure nothing it started lingers in its group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            return

    def __enter__(self) -> LocalPrefectServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
