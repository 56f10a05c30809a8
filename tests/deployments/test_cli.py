"""The kafka-medic CLI as an operator runs it: one-line errors with exit code 2, and real output."""

from __future__ import annotations

import subprocess
import sys

import pytest

from deployments.local_server import LocalPrefectServer
from kafka_medic.sandbox.cluster import Sandbox
from tests.prefect_env import REPO, child_env

pytestmark = [pytest.mark.prefect]


def cli(server: LocalPrefectServer, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployments.cli", *args],
        cwd=REPO, env=child_env(server), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert err.count("\n") == 0, f"not one line:\n{err}"
    assert err.startswith("kafka-medic"), err
    return err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "rolling-restart", "--cluster", "c1", "--param", "brokers=abc"],
         "invalid parameters for rolling-restart: brokers: Input should be a valid list"),
        (["run", "rolling-restart", "--cluster", "c1", "--param", "isr_timeout_s=0", "--param", "typo=1"],
         "isr_timeout_s: Input should be greater than 0; typo: Extra inputs are not permitted"),
        (["maintenance", "on", "--cluster", "c1", "--by", "me"], "reason is required to turn maintenance mode on"),
        (["run", "no-such-flow", "--cluster", "c1"], "unknown flow 'no-such-flow'; choose one of:"),
        (["health", "no-such-cluster"], "unknown cluster 'no-such-cluster'"),
        (["drain", "--cluster", "c1"], "the following arguments are required: --broker"),
        (["what-if", "--cluster", "c1", "--broker", "x"], "expected a broker id"),
        (["bootstrap", "--clusters", "/nonexistent/c.yaml"], "cluster file '/nonexistent/c.yaml' does not exist"),
    ],
)  # fmt: skip
def test_errors_are_one_line_and_exit_2(medic_server: LocalPrefectServer, args: list[str], expected: str) -> None:
    assert expected in one_line_error(cli(medic_server, *args))


def test_unreachable_api_is_one_line(medic_server: LocalPrefectServer) -> None:
    env = {**child_env(medic_server), "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    proc = subprocess.run(
        [sys.executable, "-m", "deployments.cli", "clusters", "list"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "127.0.0.1:9" in one_line_error(proc)


@pytest.mark.kafka
def test_health_and_what_if_print_tables(
    medic_server: LocalPrefectServer, healthy_sandbox: Sandbox, sandbox_cluster_name: str
) -> None:
    name = sandbox_cluster_name
    health = cli(medic_server, "health", name)
    assert health.returncode == 0, health.stderr
    assert f"cluster {name}: healthy" in health.stdout and "critical: 0" in health.stdout

    listed = cli(medic_server, "clusters", "list")
    assert listed.returncode == 0 and name in listed.stdout

    what = cli(medic_server, "what-if", "--cluster", name, "--broker", "1", "--broker", "4")
    assert what.returncode == 0, what.stderr
    first = what.stdout.splitlines()[0]
    assert first.startswith("SAFE:") or first.startswith("UNSAFE:"), what.stdout
    assert "mass_failure: False" in what.stdout
