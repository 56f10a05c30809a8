"""``python -m deployments.serve`` against a real ``prefect server start``: deployments, schedules,
parameter forms, and flows run through the API the way the UI starts them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterState
from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypeFilter
from prefect.client.schemas.objects import ConcurrencyLimitStrategy, StateType
from prefect.states import Cancelling

from blocks.load import load_cluster
from deployments.catalogue import CATALOGUE
from deployments.local_server import LocalPrefectServer
from kafka_medic.audit import read_audit
from kafka_medic.monitor.cluster_reads import describe_partitions, not_fully_replicated
from kafka_medic.naming import DEPLOYMENT_NAME, mutate_limit_name
from kafka_medic.sandbox.cluster import Sandbox
from tasks.state import cluster_state
from tests.e2e.reliability.test_interrupted_work import (
    CLI_ASSIGNMENT,
    CLI_DRAINED,
    CLI_MB,
    CLI_THROTTLE,
    assert_clean,
    drain_in_flight,
    fill_one,
    moved_off,
    started_have_ends,
)
from tests.e2e.reliability.test_orchestrator_killed import reassigning
from tests.flows.test_reassign import create_topic, journal_value, replica_map
from tests.flows.test_replace_broker import active_slots, poll
from tests.prefect_env import REPO, Served, child_env, save_sandbox_cluster, unique_cluster, wait_for_run
from tests.topics import drop_topics
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio]

INTERVAL_S = 10
FLOW_NAMES = {
    "preferred-leader-election", "maintenance-mode", "rolling-restart", "drain-broker", "undrain-broker", "what-if",
    "reassign", "cancel-reassignment", "verify-isr", "replace-broker", "remediate", "fleet-health", "restart-broker",
    "demote-broker", "restore-broker",
}  # fmt: skip


def _deployments() -> dict[str, Any]:
    with get_client(sync_client=True) as client:
        deps = client.read_deployments()
        flows = {f.id: f.name for f in client.read_flows()}
    return {f"{flows[d.flow_id]}/{d.name}": d for d in deps}


@pytest.fixture(scope="module")
def served(
    medic_server: LocalPrefectServer, sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Served]]:
    name = unique_cluster("dep")
    save_sandbox_cluster(sandbox, name)
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    proc = Served(medic_server, log, "--cluster", name, "--health-interval", str(INTERVAL_S))
    try:
        want = {f"health-check/{name}", *(f"{f}/{DEPLOYMENT_NAME}" for f in FLOW_NAMES)}

        def registered() -> bool:
            assert proc.alive(), proc.log_tail()
            deps = _deployments()
            # served = module-path entrypoints and no work pool (prefect.yaml's have a file path and a pool)
            return want <= set(deps) and all(
                ".py:" not in deps[k].entrypoint and deps[k].work_pool_name is None for k in want
            )

        wait_until(registered, timeout_s=300, what="every deployment registered by the serve process", interval_s=2)
        yield name, proc
    finally:
        proc.stop()


async def test_deployments_schedules_limits_and_parameter_forms(served: tuple[str, Served]) -> None:
    name, proc = served
    deps = _deployments()
    hc = deps[f"health-check/{name}"]
    assert len(hc.schedules) == 1
    schedule = hc.schedules[0]
    assert schedule.active and schedule.schedule.interval == timedelta(seconds=INTERVAL_S)
    assert schedule.parameters == {"cluster": name, "act": True}
    assert (
        hc.global_concurrency_limit is not None and hc.global_concurrency_limit.limit == 1
    )  # 3.9: not .concurrency_limit
    assert hc.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.CANCEL_NEW
    assert hc.entrypoint == "flows.health_check.health_check"
    hc_form = hc.parameter_openapi_schema["properties"]
    assert set(hc_form) == {"cluster", "act"} and all(p.get("description") for p in hc_form.values())

    assert {e.name for e in CATALOGUE if not e.per_cluster} == FLOW_NAMES
    for e in CATALOGUE:
        if e.per_cluster:
            continue
        dep = deps[f"{e.name}/{DEPLOYMENT_NAME}"]
        assert dep.entrypoint == e.module_entrypoint
        assert dep.schedules == [], f"{e.name} runs only when asked"
    schema = deps[f"rolling-restart/{DEPLOYMENT_NAME}"].parameter_openapi_schema
    assert schema["required"] == ["cluster"]
    form = schema["definitions"]["RollingRestartParams"]["properties"]
    assert form["dry_run"]["default"] is True and form["isr_timeout_s"]["exclusiveMinimum"] == 0
    assert {"brokers", "settle_s", "elect_leaders_after", "lock_wait_s"} <= set(form)
    assert all(p.get("description") for p in form.values()), "every field explains itself in the form"
    mm = deps[f"maintenance-mode/{DEPLOYMENT_NAME}"].parameter_openapi_schema["definitions"]["MaintenanceParams"]
    assert mm["required"] == ["by"] and mm["properties"]["reason"]["maxLength"] == 1000

    # the server's scheduler starts the health check, the served runner runs it
    async with get_client() as client:

        async def completed() -> list[Any]:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[hc.id])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=StateTypeFilter(any_=[StateType.COMPLETED]))
                ),
            )

        deadline = time.monotonic() + 300
        while not await completed():
            assert time.monotonic() < deadline, f"no scheduled health check completed\n{proc.log_tail()}"
            assert proc.alive(), proc.log_tail()
            await _sleep(2)


async def _sleep(s: float) -> None:
    import anyio

    await anyio.sleep(s)


async def test_leader_election_started_through_the_api_like_the_ui(
    served: tuple[str, Served], healthy_sandbox: Sandbox, topic_factory
) -> None:
    name, proc = served
    sb = healthy_sandbox
    topic = topic_factory(partitions=6)
    sb.restart(1, graceful_s=20)
    wait_until(lambda: not_fully_replicated(describe_partitions(sb.admin())).empty, timeout_s=180, what="full ISR")
    parts = describe_partitions(sb.admin(), [topic])
    assert any(int(r[0]) != int(ldr) for r, ldr in zip(parts["replicas"], parts["leader"], strict=True))

    dep = _deployments()[f"preferred-leader-election/{DEPLOYMENT_NAME}"]
    async with get_client() as client:
        with pytest.raises(Exception, match=r"(?i)validation|schema|422|409"):
            await client.create_flow_run_from_deployment(
                dep.id, parameters={"cluster": name, "params": {"dry_run": "sometimes"}}
            )
        run = await client.create_flow_run_from_deployment(
            dep.id, parameters={"cluster": name, "params": {"topics": [topic], "dry_run": False}}
        )
    final = await wait_for_run(run.id, 300, proc)
    assert final.state.is_completed(), final.state.message
    parts = describe_partitions(sb.admin(), [topic])
    assert all(int(r[0]) == int(ldr) for r, ldr in zip(parts["replicas"], parts["leader"], strict=True))


def _cli(server: LocalPrefectServer, *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployments.cli", *args],
        cwd=REPO, env=child_env(server), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_cli_triggers_the_deployment_and_waits(served: tuple[str, Served], medic_server: LocalPrefectServer) -> None:
    name, _proc = served
    proc = _cli(
        medic_server, "maintenance", "on", "--cluster", name, "--reason", "kernel upgrade", "--by", "pytest",
        "--deployed", "--wait", "--timeout", "300",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"maintenance-mode/{DEPLOYMENT_NAME} run" in proc.stdout and "Completed" in proc.stdout
    state = asyncio.run(cluster_state(name).maintenance())
    assert state is not None and state.on and state.reason == "kernel upgrade" and state.by == "pytest"


async def test_a_drain_cancelled_from_the_ui_leaves_the_cluster_clean(
    served: tuple[str, Served], healthy_sandbox: Sandbox
) -> None:
    """The UI's Cancel on a running drain (the served runner then signals the run's process): the
    running moves are cancelled and put back, no throttle and no reassignment is left (by our reads
    and by Kafka's tools), the undo saved before the first move survives, the audit's "started" gets
    its end, and the cluster lock is free."""
    name, proc = served
    sb = healthy_sandbox
    block = await load_cluster(name)
    drained = CLI_DRAINED  # the CLI test's shape: p0 and p1 carry data and are copying at the cancel
    topic = create_topic(sb, CLI_ASSIGNMENT, prefix="uicancel")
    for p in (0, 1):
        fill_one(sb, topic, p, CLI_MB)
    before = replica_map(sb)
    dep = _deployments()[f"drain-broker/{DEPLOYMENT_NAME}"]
    params = {"broker_id": drained, "dry_run": False, "throttle_bytes_per_sec": CLI_THROTTLE, "lock_wait_s": 0}
    async with get_client() as client:
        run = await client.create_flow_run_from_deployment(dep.id, parameters={"cluster": name, "params": params})

        async def moving() -> bool:
            state = (await client.read_flow_run(run.id)).state
            assert state is None or not state.is_final(), f"the drain ended before the cancel: {state}"
            return await drain_in_flight(sb, name, topic, before, drained)

        await poll(moving, 240, "the served drain's moves of our topic in flight, throttled", interval_s=0.5)
        in_flight = reassigning(sb, topic)
        t_cancel = time.monotonic()
        await client.set_flow_run_state(run.id, Cancelling(message="cancelled from the UI"))
    final = await wait_for_run(run.id, 120, proc)
    ended_s = time.monotonic() - t_cancel
    assert final.state.is_cancelled(), f"{final.state.type}: {final.state.message}\n{proc.log_tail()}"
    assert in_flight, "cancelled while our moves ran"

    layout = replica_map(sb)
    moved = moved_off(before, layout, drained)
    for p in in_flight:  # running at the cancel: put back on the original replicas, in their order
        assert layout[(topic, p)] == tuple(CLI_ASSIGNMENT[p]), (p, layout[(topic, p)])
    assert_clean(sb, list(range(1, 7)))
    assert await journal_value(name) is None, "nothing left for a next run to adopt"
    assert await active_slots(mutate_limit_name(name)) == 0, "lock released"
    undo = await cluster_state(name).undo("drain", drained)
    if moved:  # whatever finished before the cancel can be put back by undrain
        assert undo is not None and {(t, p) for t, p, _old, _new in undo} >= moved, (undo, moved)
    trail = read_audit({"bootstrap.servers": sb.layout.bootstrap_servers}, block.audit_topic)
    by = started_have_ends([r for r in trail if r.get("run_id") == str(run.id)])
    assert by.get(f"{run.id}/drain_broker", [None])[0] == "started", by
    assert by[f"{run.id}/drain_broker"][-1] == "failed", by
    print(f"\nUI cancel: run Cancelled {ended_s:.1f} s after the cancel; {len(in_flight)} move(s) put back")
    drop_topics(sb, [topic])
