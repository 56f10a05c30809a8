"""The main job end to end: ``python -m deployments.service --inject-failure`` on its own small sandbox.

A broker is killed; the scheduled health check must find it, remediation must replace it and the
replacement must verify the ISR -- all through the served deployments of the service's own Prefect
server. Then Ctrl-C must stop every process the service started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kafka_medic.audit import read_audit
from kafka_medic.sandbox import processes
from tests.conftest import TEST_PORT_BASE
from tests.prefect_env import REPO

pytestmark = [pytest.mark.kafka, pytest.mark.prefect]

#: Inside this engineer's port range, clear of the session sandbox (base, base+1..6, +100, +1000..).
SERVICE_PORT_BASE = TEST_PORT_BASE + 20


def _runs(api_url: str, flow_name: str) -> list[tuple[str, str]]:
    """(state name, message) of every run of ``flow_name`` on the service's server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))
    return [(r.state.name if r.state else "?", (r.state.message or "") if r.state else "") for r in runs]


def _ours_alive(home: Path) -> dict[int, str]:
    """pid -> command line of live processes of this service instance: its home is in their argv or env
    (the service, its Prefect server, flow-run subprocesses, the sandbox JVMs)."""
    out: dict[int, str] = {}
    marker = str(home).encode()
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        pid = int(pid_dir.name)
        try:
            env = (pid_dir / "environ").read_bytes()
        except OSError:
            env = b""
        cmd = processes.cmdline(pid)
        if (str(home) in cmd or marker in env) and processes.proc_state(pid) not in (None, "Z", "X"):
            out[pid] = cmd[:200]
    return out


def test_main_job_heals_an_injected_failure_and_stops_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "medic-home"
    log = tmp_path / "service.log"
    env = {**os.environ, "KAFKA_MEDIC_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("PREFECT_API_URL", None)
    argv = [
        sys.executable, "-m", "deployments.service", "--brokers", "3", "--port-base", str(SERVICE_PORT_BASE),
        "--prefect-port", "0", "--health-interval", "5", "--grace", "5", "--cooldown", "0", "--load-rate", "5",
        "--inject-failure", "--inject-after", "20", "--inject-broker", "2", "--exit-after", "900",
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 900
        api_url = None
        servers = ",".join(f"127.0.0.1:{SERVICE_PORT_BASE + b}" for b in (1, 2, 3))
        healed: list[dict] = []
        records: list[dict] = []
        while time.monotonic() < deadline and not healed:
            assert proc.poll() is None, f"the service exited early:\n{log.read_text()[-4000:]}"
            if api_url is None and (home / "service.json").exists():
                api_url = json.loads((home / "service.json").read_text())["api_url"]
            if api_url is not None and any(state == "Completed" for state, _ in _runs(api_url, "replace-broker")):
                # "Completed" also covers a skipped or refused replacement: the audit trail in the
                # cluster itself must say broker 2 really was replaced and verified
                # (a killed JVM on an intact disk is healed by a restart with its disk: "restart_broker")
                heals = ("replace_broker", "restart_broker")
                records = [r for r in read_audit({"bootstrap.servers": servers}, "__kafka_medic_audit", timeout_s=5)
                           if r["action"] in heals and r["cluster"] == "sandbox"]  # fmt: skip
                healed = [r for r in records if r["status"] == "finished" and r["brokers"] == [2]]
            time.sleep(5)
        text = log.read_text(errors="replace")
        assert healed, f"broker 2 not healed (audit: {records})\n{text[-6000:]}"
        assert "Prefect UI: http://127.0.0.1:" in text and "INJECTED FAILURE: broker 2 killed" in text
        hc = _runs(api_url, "health-check")
        assert sum(state == "Completed" for state, _ in hc) >= 2, hc
        assert any(state == "Completed" for state, _ in _runs(api_url, "remediate"))

        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=240) == 0, log.read_text()[-4000:]
        assert "kafka-medic: stopped." in log.read_text()
        assert not (home / "service.json").exists()
        left = _ours_alive(home)
        assert not left, f"processes still running after the service stopped: {left}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        for pid in _ours_alive(home):  # on failure: nothing this test started may outlive it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
