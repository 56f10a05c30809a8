"""A real ``prefect server start`` for a test package, and helpers shared by the tests that need one
(tests/deployments, tests/flows/maintenance, tests/e2e/ui).

Why not the session's ``prefect_test_harness``: schedules only fire on a real server, and served
deployments run in subprocesses that must reach the same API (the harness is in-process state).
Every process a test starts here is stopped by the test (bounded), never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from deployments.local_server import LocalPrefectServer

REPO = Path(__file__).resolve().parents[1]
SERVER_START_S = 300.0  # a loaded 2-core machine took 80 s to start (and migrate) a fresh server


@contextmanager
def local_prefect(home: Path) -> Iterator[LocalPrefectServer]:
    """A fresh server (SQLite in ``home``) and this process's Prefect client pointed at it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = LocalPrefectServer(home)
    server.start(timeout_s=SERVER_START_S)
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            try:
                yield server
            finally:
                drain_prefect_workers()
    finally:
        server.stop()


def drain_prefect_workers(timeout_s: float = 15.0) -> None:
    """Deliver the events and logs this process still holds for the current server, bounded, before it
    stops. Otherwise Prefect's events worker keeps them for a server that is gone, and the session's
    test harness waits for them forever when it drains every worker at its own exit."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    EventsWorker.drain_all(timeout=timeout_s)
    with contextlib.suppress(RuntimeError):  # not started in this process
        APILogWorker.drain_all(timeout=timeout_s)


def child_env(server: LocalPrefectServer, **extra: str) -> dict[str, str]:
    """Environment for a subprocess that talks to ``server`` (quiet, no analytics)."""
    env = server.child_env()
    env.update(
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_TO_API_ENABLED="true",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


class Served:
    """``python -m deployments.serve`` as a subprocess (its own process group, stopped by the test)."""

    def __init__(self, server: LocalPrefectServer, log_path: Path, *args: str) -> None:
        self.log_path = log_path
        argv = [sys.executable, "-m", "deployments.serve", *args]
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=REPO, env=child_env(server), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the serve process group (the runner cancels its flow runs), then SIGKILL (bounded)."""
        for sig, wait_s in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # flow-run children left in the group


def unique_cluster(prefix: str = "op") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def save_sandbox_cluster(sb: Any, name: str, **overrides: Any) -> None:
    """A KafkaCluster block for the test sandbox (with a SandboxReplacer) and its concurrency limits."""
    from blocks.replacers import SandboxReplacer
    from blocks.sandbox import sandbox_cluster
    from deployments.bootstrap import bootstrap

    replacer = SandboxReplacer(state_dir=str(sb.layout.state_dir))
    fields = {"replacer": f"sandbox-replacer/{name}", **overrides}
    bootstrap(blocks=[(name, replacer), (name, sandbox_cluster(sb, name=name, **fields))])


async def wait_for_run(flow_run_id: Any, timeout_s: float, served: Served | None = None) -> Any:
    """The flow run once it is in a final state (bounded); fails with the serve log on timeout."""
    import anyio
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout_s
    async with get_client() as client:
        while True:
            run = await client.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_final():
                return run
            if served is not None and not served.alive():
                raise AssertionError(f"the serve process died:\n{served.log_tail()}")
            if time.monotonic() > deadline:
                state = run.state.name if run.state else None
                tail = served.log_tail() if served else ""
                raise AssertionError(f"flow run {flow_run_id} still {state} after {timeout_s:.0f} s\n{tail}")
            await anyio.sleep(1.0)


def poll(pred: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 1.0) -> Any:
    from tests.waiting import wait_until

    return wait_until(pred, timeout_s=timeout_s, what=what, interval_s=interval_s)


@pytest.fixture(scope="package")
def medic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrefectServer]:
    """One real Prefect server per test package that imports this fixture into its conftest.

    Package scope, not session: the session's ``prefect_test_harness`` (other packages) must see its
    own settings again once these tests are done.
    """
    with local_prefect(tmp_path_factory.mktemp("prefect-home")) as server:
        yield server


@pytest.fixture
def sandbox_cluster_name(medic_server: LocalPrefectServer, healthy_sandbox: Any) -> str:
    """A fresh KafkaCluster block (observe mode, sandbox replacer, limits) on the healthy test sandbox,
    with the default policy: the degraded rules are on, as in production (evidence over time keeps a
    broker restarted by the previous test from being acted on)."""
    from kafka_medic.policy import HealthPolicy

    name = unique_cluster()
    save_sandbox_cluster(healthy_sandbox, name, policy=HealthPolicy())
    return name
