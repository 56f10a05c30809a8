"""``kafka-medic bootstrap`` is idempotent: types, cluster blocks, limits (and a work pool) exist after
one run and a second run changes nothing; and ``deployments/prefect.yaml`` deploys for real."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

from blocks import BLOCK_CLASSES
from blocks.kafka_cluster import KafkaCluster
from deployments.bootstrap import bootstrap
from deployments.catalogue import CATALOGUE
from deployments.local_server import LocalPrefectServer
from kafka_medic.naming import DEPLOYMENT_NAME, mutate_limit_name, replace_limit_name
from kafka_medic.sandbox.cluster import Sandbox
from tests.prefect_env import REPO, child_env, local_prefect, save_sandbox_cluster, unique_cluster

pytestmark = [pytest.mark.prefect]  # the worker test also uses the sandbox (kafka)


def _clusters_file(tmp_path: Path) -> tuple[Path, list[str]]:
    names = [f"boot-{uuid.uuid4().hex[:6]}", f"boot-{uuid.uuid4().hex[:6]}"]
    path = tmp_path / "clusters.yaml"
    path.write_text(
        "clusters:\n"
        + "".join(
            f"  - name: {n}\n    bootstrap_servers: 127.0.0.1:{9092 + i}\n    policy: {{mode: approve}}\n"
            for i, n in enumerate(names)
        )
    )
    return path, names


def _limits(names: list[str]) -> dict[str, tuple[int, bool]]:
    out = {}
    with get_client(sync_client=True) as client:
        for n in names:
            for lim in (mutate_limit_name(n), replace_limit_name(n)):
                got = client.read_global_concurrency_limit_by_name(lim)
                out[lim] = (got.limit, got.active)
    return out


def test_bootstrap_twice_is_idempotent_and_repairs_limits(medic_server: LocalPrefectServer, tmp_path: Path) -> None:
    path, names = _clusters_file(tmp_path)
    pool = f"pool-{uuid.uuid4().hex[:6]}"
    first = bootstrap(path, work_pool=pool)
    assert first.clusters_saved == names and first.work_pool_created
    assert set(names) <= set(first.clusters)
    assert set(first.block_types) == {c.get_block_type_slug() for c in BLOCK_CLASSES}
    limits = _limits(names)
    assert set(limits.values()) == {(1, True)}

    with get_client(sync_client=True) as client:  # someone resizes a limit in the UI
        client.update_global_concurrency_limit(mutate_limit_name(names[0]), GlobalConcurrencyLimitUpdate(limit=5))
        for slug in first.block_types:
            assert client.read_block_type_by_slug(slug).slug == slug

    second = bootstrap(path, work_pool=pool)
    assert second.clusters_saved == names and not second.work_pool_created
    assert _limits(names) == limits, "the second run repaired the resized limit and created nothing new"
    assert KafkaCluster.load(names[1]).policy.mode == "approve"
    with get_client(sync_client=True) as client:
        assert client.read_work_pool(pool).type == "process"


def test_bootstrap_from_the_cli(medic_server: LocalPrefectServer, tmp_path: Path) -> None:
    path, names = _clusters_file(tmp_path)
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "deployments.cli", "bootstrap", "--clusters", str(path)],
            cwd=REPO, env=child_env(medic_server), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert f"cluster blocks saved: {', '.join(names)}" in proc.stdout
    assert set(_limits(names).values()) == {(1, True)}


def test_prefect_yaml_deploys_and_a_process_worker_runs_a_flow(healthy_sandbox: Sandbox, tmp_path: Path) -> None:
    """Its own server: ``prefect deploy`` creates deployments with the same names the serve tests use,
    and a ``prefect worker`` of the process pool picks up a run and carries it out on the sandbox."""
    spec = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    entries = spec["deployments"]
    entry_points = {d["entrypoint"] for d in entries}
    for e in CATALOGUE:
        assert e.file_entrypoint in entry_points, f"{e.name} missing in prefect.yaml"
    health = next(d for d in entries if d["entrypoint"] == "flows/health_check.py:health_check")
    assert health["schedules"][0]["parameters"] == {"cluster": health["name"], "act": True}

    pool = "kafka-medic"
    with local_prefect(tmp_path / "prefect-home") as server:
        bootstrap(work_pool=pool)
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("prefect")), "--no-prompt", "deploy", "--all",
             "--prefect-file", "deployments/prefect.yaml"],
            cwd=REPO, env=child_env(server, PWD=str(REPO)), capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        with get_client(sync_client=True) as client:
            flows = {f.id: f.name for f in client.read_flows()}
            deps = {f"{flows[d.flow_id]}/{d.name}": d for d in client.read_deployments()}
        assert len(deps) == len(entries)
        hc = deps[f"health-check/{health['name']}"]
        assert hc.work_pool_name == pool and hc.global_concurrency_limit is not None
        assert hc.global_concurrency_limit.limit == 1 and hc.concurrency_options.collision_strategy == "CANCEL_NEW"
        assert hc.schedules[0].parameters == {"cluster": health["name"], "act": True}
        assert hc.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
        rr = deps[f"rolling-restart/{DEPLOYMENT_NAME}"]
        assert rr.work_pool_name == pool
        assert "RollingRestartParams" in rr.parameter_openapi_schema["definitions"]

        # How users outgrow one machine: runs go to a work pool, a worker (anywhere) executes them.
        cluster = unique_cluster("wk")
        save_sandbox_cluster(healthy_sandbox, cluster)
        _worker_runs_verify_isr(server, pool, deps[f"verify-isr/{DEPLOYMENT_NAME}"].id, cluster)


def test_bootstrap_deploy_to_a_pool_twice_and_a_worker_runs_it(healthy_sandbox: Sandbox, tmp_path: Path) -> None:
    """``bootstrap --deploy``: every deployment on the pool (a health check per cluster block, the
    operator flows); a second run updates them in place (same ids); a process worker runs one."""
    path, names = _clusters_file(tmp_path)
    pool = "kafka-medic"
    with local_prefect(tmp_path / "prefect-home") as server:
        cluster = unique_cluster("bd")
        save_sandbox_cluster(healthy_sandbox, cluster)  # a cluster created outside the file: deployed too

        def deployments() -> dict[str, object]:
            with get_client(sync_client=True) as client:
                flows = {f.id: f.name for f in client.read_flows()}
                return {f"{flows[d.flow_id]}/{d.name}": d for d in client.read_deployments()}

        first = bootstrap(path, work_pool=pool, deploy=True, interval_s=600)
        wanted = {f"health-check/{n}" for n in [*names, cluster]} | {
            f"{e.name}/{DEPLOYMENT_NAME}" for e in CATALOGUE if not e.per_cluster
        }
        assert set(first.deployed) == wanted
        deps = deployments()
        assert set(deps) == wanted
        for n in [*names, cluster]:
            hc = deps[f"health-check/{n}"]
            assert hc.work_pool_name == pool and len(hc.schedules) == 1
            assert hc.schedules[0].parameters == {"cluster": n, "act": True}
            assert hc.global_concurrency_limit is not None and hc.global_concurrency_limit.limit == 1
        schema = deps[f"rolling-restart/{DEPLOYMENT_NAME}"].parameter_openapi_schema
        assert "RollingRestartParams" in schema["definitions"]

        second = bootstrap(path, work_pool=pool, deploy=True, interval_s=600)
        assert set(second.deployed) == wanted and not second.work_pool_created
        again = deployments()
        assert {k: d.id for k, d in again.items()} == {k: d.id for k, d in deps.items()}, "updated, not duplicated"
        assert all(len(again[f"health-check/{n}"].schedules) == 1 for n in [*names, cluster])

        _worker_runs_verify_isr(server, pool, again[f"verify-isr/{DEPLOYMENT_NAME}"].id, cluster)


def test_bootstrap_deploy_without_a_pool_is_refused(medic_server: LocalPrefectServer) -> None:
    from kafka_medic.errors import ConfigError

    with pytest.raises(ConfigError, match="--deploy needs --work-pool"):
        bootstrap(deploy=True)
    with pytest.raises(ConfigError, match="interval must be between"):
        bootstrap(work_pool="p", deploy=True, interval_s=0)


def _worker_runs_verify_isr(server: LocalPrefectServer, pool: str, deployment_id: uuid.UUID, cluster: str) -> None:
    """Start a verify-isr run of ``deployment_id``; ``prefect worker --run-once`` of ``pool`` completes it."""
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployment_id, parameters={"cluster": cluster})
    worker = subprocess.run(
        [str(Path(sys.executable).with_name("prefect")), "worker", "start", "--pool", pool, "--run-once"],
        cwd=REPO, env=child_env(server), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]
    with get_client(sync_client=True) as client:
        done = client.read_flow_run(run.id)
    assert done.state is not None and done.state.is_completed(), (done.state, worker.stderr[-3000:])
    assert done.work_pool_name == pool
