"""reassign / cancel-reassignment on the real sandbox, through a real Prefect server (test harness).

Sandbox: 6 brokers, racks az-a (1, 4), az-b (2, 5), az-c (3, 6); RF 3, min ISR 2.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from prefect.client.orchestration import get_client

from blocks.sandbox import sandbox_cluster
from flows import reassign as reassign_module
from flows.cancel_reassignment import CancelParams, cancel_reassignment
from flows.reassign import ReassignParams, reassign
from kafka_medic.audit import read_audit
from kafka_medic.errors import ConfigError, SafetyError
from kafka_medic.executor import (
    ClusterOps,
    ExecutionOptions,
    ForeignReassignment,
    Ledger,
    execute_plan,
    journal_variable,
    memory_journal_store,
)
from kafka_medic.executor.throttles import (
    FOLLOWER_RATE,
    FOLLOWER_REPLICAS,
    LEADER_RATE,
    LEADER_REPLICAS,
    read_throttles,
)
from kafka_medic.loadgen import AckedProducer, verify_acked
from kafka_medic.monitor import kip455
from kafka_medic.monitor.cluster_reads import describe_partitions
from kafka_medic.planner import DrainRequest, Move, plan_moves
from kafka_medic.reports.reassign import ReassignmentIncomplete
from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.sandbox.layout import rack_name
from kafka_medic.snapshot import ClusterSnapshot
from tasks.locks import cluster_lock, ensure_cluster_limits
from tasks.state import journal_store
from tests.topics import drop_topics
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio, pytest.mark.usefixtures("prefect_server")]


# -- helpers ---------------------------------------------------------------------------------------------


async def save_cluster(sb: Sandbox, **overrides: Any) -> str:
    name = f"rs-{uuid.uuid4().hex[:8]}"
    block = sandbox_cluster(sb, name=name, audit_topic=f"__audit-{name}", **overrides)
    await block.save(name, overwrite=True)
    # Created up front (as a deployment would have it), so plans see it like any other topic.
    admin = sb.admin()
    audit = NewTopic(block.audit_topic, 1, 3, config={"min.insync.replicas": "2"})
    admin.create_topics([audit])[block.audit_topic].result(timeout=20)
    await ensure_cluster_limits(name)
    return name


def replica_map(sb: Sandbox) -> dict[tuple[str, int], tuple[int, ...]]:
    p = describe_partitions(sb.admin())
    return {
        (t, int(n)): tuple(int(b) for b in r) for t, n, r in zip(p["topic"], p["partition"], p["replicas"], strict=True)
    }


def throttles_now(sb: Sandbox) -> tuple[dict, dict]:
    """Every per-broker throttle rate and every topic throttle list in the cluster right now."""
    admin = sb.admin()
    alive = sorted(sb.registered_brokers())
    topics = sorted(admin.list_topics(timeout=10).topics)
    current = read_throttles(admin, alive, topics)
    return dict(current.broker_rates), dict(current.topic_replicas)


def fill(sb: Sandbox, topic: str, partitions: int, mb_per_partition: float) -> None:
    """Write ``mb_per_partition`` MB of incompressible-enough data into each partition, fast.

    acks=all: the high watermark is at the end when this returns. With acks=1 it could still be near
    0 (followers not caught up on a loaded machine), and a replica added by a move then joined the
    ISR at once (its log end >= the high watermark): the "throttled" move finished in 54 ms (CI).
    """
    p = Producer(
        {"bootstrap.servers": sb.layout.bootstrap_servers, "linger.ms": 20, "batch.size": 1_000_000, "acks": "all"}
    )
    value = uuid.uuid4().bytes * 640  # 10 KB
    for part in range(partitions):
        for _ in range(int(mb_per_partition * 100)):
            while True:
                try:
                    p.produce(topic, value=value, partition=part)
                    break
                except BufferError:
                    p.poll(0.1)
        p.poll(0)
    assert p.flush(60) == 0


def create_topic(sb: Sandbox, assignment: list[list[int]], prefix: str = "rt") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = sb.admin()  # keep a reference: a destroyed client never completes its futures
    new = NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment)
    admin.create_topics([new])[name].result(timeout=20)
    wait_until(lambda: len(describe_partitions(admin, [name])) == len(assignment), timeout_s=20, what=name)
    return name


def set_configs(sb: Sandbox, kind: str, name: str, entries: dict[str, str | None]) -> None:
    restype = ConfigResource.Type.BROKER if kind == "broker" else ConfigResource.Type.TOPIC
    ops = [
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.DELETE if v is None else AlterConfigOpType.SET)
        for k, v in entries.items()
    ]
    res = ConfigResource(restype, name, incremental_configs=ops)
    admin = sb.admin()
    admin.incremental_alter_configs([res])[res].result(timeout=15)


def config_of(sb: Sandbox, kind: str, name: str, key: str, *, ask: int) -> str | None:
    """The value of ``key`` for a broker or topic as broker ``ask`` itself reports it."""
    from confluent_kafka.admin import AdminClient

    restype = ConfigResource.Type.BROKER if kind == "broker" else ConfigResource.Type.TOPIC
    res = ConfigResource(restype, name)
    # a client bootstrapped on broker ``ask`` alone, so the answer is that broker's view
    admin = AdminClient({"bootstrap.servers": sb.layout.broker(ask).bootstrap})
    entry = admin.describe_configs([res], request_timeout=10)[res].result(timeout=12).get(key)
    return None if entry is None else entry.value


async def journal_value(name: str) -> Any:
    async with get_client() as client:
        var = await client.read_variable_by_name(journal_variable(name))
    return None if var is None else var.value


def audit_of(sb: Sandbox, name: str, run_id: str | None = None) -> list[dict]:
    records = read_audit({"bootstrap.servers": sb.layout.bootstrap_servers}, f"__audit-{name}")
    return [r for r in records if run_id is None or r.get("run_id") == run_id]


def racks(reps: tuple[int, ...]) -> set[str]:
    return {rack_name(b, 3) for b in reps}


@pytest.fixture
def cleanup_topics(sandbox: Sandbox) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    drop_topics(sandbox, made)


# -- tests -----------------------------------------------------------------------------------------------


async def test_drain_of_a_dead_broker_under_load_loses_nothing_and_cleans_up(
    healthy_sandbox: Sandbox, cleanup_topics: list[str]
) -> None:
    """Kill broker 4, drain it with an acks=all producer running: replicas move to survivors in the
    same racks, ISR full, zero acknowledged messages lost, only our throttles removed, audit written."""
    sb = healthy_sandbox
    topic = create_topic(sb, [[4, 2, 3], [2, 4, 6], [3, 5, 4], [1, 2, 3], [5, 6, 4], [6, 4, 2]])
    cleanup_topics.append(topic)
    fill(sb, topic, 6, 1.5)
    # Someone else's throttles, which must survive untouched.
    set_configs(sb, "broker", "2", {LEADER_RATE: "90000000"})
    set_configs(sb, "topic", topic, {LEADER_REPLICAS: "99:2"})
    name = await save_cluster(sb)
    load = AckedProducer(sb.layout.bootstrap_servers, topic, rate=150, value_bytes=200).start()
    try:
        await asyncio.sleep(1.0)
        sb.kill(4)
        sb.wait_unregistered(4, timeout_s=20)
        t0 = time.monotonic()
        report = await reassign(
            name,
            ReassignParams(kind="drain", brokers=[4], dry_run=False, throttle_bytes_per_sec=4_000_000, actor="test"),
        )
        took = time.monotonic() - t0
        await asyncio.sleep(1.0)
    finally:
        stats = load.stop()
    try:
        assert report.status == "completed", report.summary
        ex = report.execution
        assert ex is not None and ex["status"] == "completed" and not ex["failed"]
        assert len(ex["done"]) + len(ex["already_in_place"]) == report.moves > 0
        print(f"\ndrain of dead broker 4: {report.moves} moves in {took:.1f} s (moves {ex['moves_s']} s), "
              f"throttles removed {ex['cleanup_s']} s after the last move; {stats.acked} acked")  # fmt: skip

        after = replica_map(sb)
        assert not [k for k, r in after.items() if 4 in r], "nothing left on the dead broker"
        for p in range(6):
            reps = after[(topic, p)]
            assert len(reps) == 3 and len(racks(reps)) == 3, (p, reps)
        assert report.verify is not None and report.verify["ok"]

        rates, lists = throttles_now(sb)
        assert rates == {(2, LEADER_RATE): 90_000_000}, "only the foreign rate is left"
        assert lists == {(topic, LEADER_REPLICAS): frozenset({(topic, 99, 2)})}, "only the foreign entry is left"
        assert ex["throttles_set"]["follower_rate_brokers"] == [1]
        assert 2 not in ex["throttles_set"]["leader_rate_brokers"], "a foreign rate is never taken over"
        assert any("broker 2 already had" in n for n in ex["notes"])
        assert await journal_value(name) is None

        result = verify_acked(sb.layout.bootstrap_servers, topic, load.acked_keys, timeout_s=60)
        assert stats.acked > 100 and result.lost == 0, (stats, result)

        statuses = [r["status"] for r in audit_of(sb, name, report.run_id)]
        assert statuses == ["planned", "started", "finished"], statuses
    finally:
        set_configs(sb, "broker", "2", {LEADER_RATE: None})


async def test_dry_run_changes_nothing(healthy_sandbox: Sandbox, cleanup_topics: list[str]) -> None:
    sb = healthy_sandbox
    topic = create_topic(sb, [[3, 1, 2], [1, 3, 5], [2, 6, 3]])
    cleanup_topics.append(topic)
    name = await save_cluster(sb)
    before = replica_map(sb)
    report = await reassign(name, ReassignParams(kind="drain", brokers=[3]))
    assert report.status == "dry_run" and report.dry_run
    assert report.moves >= 3 and report.waves and report.plan
    assert {m["partition"] for m in report.plan["moves"] if m["topic"] == topic} == {0, 1, 2}
    assert replica_map(sb) == before
    assert throttles_now(sb) == ({}, {})
    assert await journal_value(name) is None
    assert audit_of(sb, name) == [], "a dry run is not an action"
    async with get_client() as client:
        keys = {a.key for a in await client.read_artifacts()}
    assert {f"reassign-plan-{name}", f"reassign-cost-{name}"} <= keys


async def test_bad_input_is_refused_and_changes_nothing(
    healthy_sandbox: Sandbox, cleanup_topics: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = healthy_sandbox
    topic = create_topic(sb, [[1, 2, 3], [4, 5, 6]])
    cleanup_topics.append(topic)
    name = await save_cluster(sb)
    before = replica_map(sb)

    with pytest.raises(ConfigError, match=r"Unknown broker id\(s\) \[99\]"):
        await reassign(name, ReassignParams(kind="drain", brokers=[99], dry_run=False))
    # Draining a whole AZ: no same-rack target and every other rack already holds a replica. A safety
    # refusal completes the run with status "refused" (nothing changed) and names the partitions.
    refused = await reassign(name, ReassignParams(kind="drain", brokers=[1, 4], dry_run=False))
    assert refused.status == "refused" and re.search(rf"{topic}-0.*{topic}-1|{topic}-1.*{topic}-0", refused.summary)
    assert "cannot be placed" in refused.summary and refused.plan is not None
    assert {(u["topic"], u["partition"]) for u in refused.plan["unplaceable"]} >= {(topic, 0), (topic, 1)}
    with pytest.raises(ConfigError, match="unknown cluster"):
        await reassign("no-such-cluster", ReassignParams(kind="drain", brokers=[1]))

    async def empty_snapshot(ops: ClusterOps) -> ClusterSnapshot:
        snap = await asyncio.to_thread(ops.snapshot)
        return ClusterSnapshot(snap.cluster, snap.brokers, snap.partitions.iloc[0:0])

    with monkeypatch.context() as m:
        m.setattr(reassign_module, "snapshot_task", empty_snapshot)
        with pytest.raises(ConfigError, match="has no topics"):
            await reassign(name, ReassignParams(kind="drain", brokers=[1], dry_run=False))

    # A plan that would reduce the replication factor never reaches Kafka (executor pre-check).
    with (
        ClusterOps(sandbox_cluster(sb, name=name)) as ops,
        pytest.raises(SafetyError, match="replication factor reduced"),
    ):
        await execute_plan(
                ops, memory_journal_store(), [Move(topic, 0, (1, 2, 3), (1, 2))], cluster=name, run_id="t",
                actor="test", options=ExecutionOptions(throttle_bytes_per_sec=1_000_000),
            )  # fmt: skip

    assert replica_map(sb) == before
    assert throttles_now(sb) == ({}, {})
    assert await journal_value(name) is None
    refused = [r for r in audit_of(sb, name) if r["status"] == "refused"]
    assert len(refused) == 3 and all("refused" in r["summary"] for r in refused)


async def test_a_foreign_reassignment_on_the_same_partitions_is_refused(
    healthy_sandbox: Sandbox, cleanup_topics: list[str]
) -> None:
    sb = healthy_sandbox
    topic = create_topic(sb, [[1, 2, 3]])
    cleanup_topics.append(topic)
    fill(sb, topic, 1, 3)
    name = await save_cluster(sb)
    conf = {"bootstrap_servers": sb.layout.bootstrap_servers.split(",")}
    # Someone else's slow move 1 -> 4 (throttled to 10 kB/s, so it stays in progress).
    set_configs(sb, "broker", "4", {FOLLOWER_RATE: "10000"})
    set_configs(sb, "topic", topic, {FOLLOWER_REPLICAS: "0:4"})
    # Broker 4 applies a dynamic config when it replays the controller's record: start the move only
    # once broker 4 itself reports the throttle, or an unthrottled copy may finish before the flow runs.
    wait_until(lambda: config_of(sb, "broker", "4", FOLLOWER_RATE, ask=4) == "10000", timeout_s=30,
               what="broker 4 applying its follower throttle")  # fmt: skip
    wait_until(lambda: config_of(sb, "topic", topic, FOLLOWER_REPLICAS, ask=4) == "0:4", timeout_s=30,
               what="broker 4 seeing the topic's throttled replicas")  # fmt: skip
    with kip455.kafka_python_admin(conf) as admin:
        assert kip455.alter_reassignments(admin, {(topic, 0): [4, 2, 3]}) == {}
        listed = kip455.list_reassignments(admin)
    assert (topic, 0) in set(zip(listed["topic"], listed["partition"], strict=True)), "the foreign move is running"
    try:
        refused = await reassign(name, ReassignParams(kind="drain", brokers=[2], dry_run=False))
        assert refused.status == "refused", refused.summary
        assert re.search(rf"{topic}-0: a reassignment is already in progress", refused.summary), refused.summary
        # A plan made before the foreign move started is refused by the executor's fresh check.
        with (
            ClusterOps(sandbox_cluster(sb, name=name)) as ops,
            pytest.raises(ForeignReassignment, match=rf"{topic}-0") as err,
        ):
            await execute_plan(
                    ops, memory_journal_store(), [Move(topic, 0, (1, 2, 3), (1, 5, 3))], cluster=name, run_id="t",
                    actor="test", options=ExecutionOptions(throttle_bytes_per_sec=1_000_000),
                )  # fmt: skip
        assert err.value.partitions == [f"{topic}-0"]
        with kip455.kafka_python_admin(conf) as admin:
            still = kip455.list_reassignments(admin)
        assert (topic, 0) in set(zip(still["topic"], still["partition"], strict=True)), "left alone"
        assert [r["status"] for r in audit_of(sb, name)] == ["refused"]
    finally:
        with kip455.kafka_python_admin(conf) as admin:
            kip455.alter_reassignments(admin, {(topic, 0): None})
        set_configs(sb, "broker", "4", {FOLLOWER_RATE: None})
        set_configs(sb, "topic", topic, {FOLLOWER_REPLICAS: None})


async def test_timeout_leaves_moves_running_then_cancel_restores_and_cleans(
    healthy_sandbox: Sandbox, cleanup_topics: list[str]
) -> None:
    sb = healthy_sandbox
    topic = create_topic(sb, [[3, 1, 2], [1, 2, 3]])
    cleanup_topics.append(topic)
    fill(sb, topic, 2, 2)
    name = await save_cluster(sb)
    before = replica_map(sb)
    params = ReassignParams(
        kind="drain", brokers=[3], dry_run=False, throttle_bytes_per_sec=20_000, timeout_s=8, allow_partial=True
    )
    with pytest.raises(ReassignmentIncomplete, match="timed_out") as err:
        await reassign(name, params)
    ex = err.value.report.execution
    assert ex is not None and ex["status"] == "timed_out"
    ours = {f"{topic}-0", f"{topic}-1"}
    assert ours <= set(ex["still_running"])
    assert any("left running after the timeout" in n for n in ex["notes"])
    rates, lists = throttles_now(sb)
    assert (6, FOLLOWER_RATE) in rates and (topic, FOLLOWER_REPLICAS) in lists, "throttles stay with running moves"
    assert await journal_value(name) is not None
    assert [r["status"] for r in audit_of(sb, name)][-1] == "failed"

    report = await cancel_reassignment(name, CancelParams(actor="test", dry_run=False))
    assert report.held_lock
    assert ours <= set(report.result["reverted"]), report.result
    after = replica_map(sb)
    assert after[(topic, 0)] == before[(topic, 0)] and after[(topic, 1)] == before[(topic, 1)]
    assert throttles_now(sb) == ({}, {}), "every throttle of the run removed"
    assert await journal_value(name) is None


async def test_cancel_while_a_run_is_active_stops_it_and_it_cleans_its_own_throttles(
    healthy_sandbox: Sandbox, cleanup_topics: list[str]
) -> None:
    sb = healthy_sandbox
    topic = create_topic(sb, [[2, 3, 1], [3, 1, 2]])
    cleanup_topics.append(topic)
    fill(sb, topic, 2, 2)
    name = await save_cluster(sb)
    before = replica_map(sb)
    params = ReassignParams(
        kind="drain", brokers=[2], dry_run=False, throttle_bytes_per_sec=20_000, timeout_s=120, allow_partial=True
    )
    run = asyncio.ensure_future(reassign(name, params))
    try:

        async def ours_in_flight() -> bool:
            raw = await journal_value(name)
            return bool(raw) and topic in raw.get("m", {})

        deadline = time.monotonic() + 60
        while not await ours_in_flight():
            assert time.monotonic() < deadline and not run.done(), "the run never started its moves"
            await asyncio.sleep(0.5)
        report = await cancel_reassignment(name, CancelParams(partitions=[f"{topic}-0", f"{topic}-1"], dry_run=False))
        assert not report.held_lock, "the active run holds the lock"
        assert sorted(report.result["reverted"]) == [f"{topic}-0", f"{topic}-1"]
        with pytest.raises(ReassignmentIncomplete, match="stopped"):
            await asyncio.wait_for(run, timeout=90)
    finally:
        if not run.done():
            run.cancel()
    after = replica_map(sb)
    assert after[(topic, 0)] == before[(topic, 0)] and after[(topic, 1)] == before[(topic, 1)]
    assert throttles_now(sb) == ({}, {}), "the stopped run removed its own throttles"
    assert await journal_value(name) is None


async def test_a_new_run_adopts_moves_left_by_a_dead_orchestrator(
    healthy_sandbox: Sandbox, cleanup_topics: list[str]
) -> None:
    sb = healthy_sandbox
    topic = create_topic(sb, [[5, 1, 3], [1, 5, 3]])
    # The rest of the drain, outside the dead run's batch: the new run has this to move whatever
    # else (other tests' topics, the audit topic's random placement) happens to sit on broker 5.
    rest = create_topic(sb, [[5, 2, 4]])
    cleanup_topics.extend([topic, rest])
    fill(sb, topic, 2, 2)
    name = await save_cluster(sb)
    block = sandbox_cluster(sb, name=name)
    store = journal_store()
    # The dead orchestrator: planned "drain broker 5", journaled and throttled its first batch,
    # submitted it, and vanished without cleaning up.
    with ClusterOps(block) as ops:
        snap = ops.snapshot()
        plan = plan_moves(snap, DrainRequest(brokers=[5]))
        first = [m for m in plan.moves if m.topic == topic]
        assert len(first) == 2
        ledger = await Ledger.open(ops, store, cluster=name, run_id="dead-run", actor="crashed", rate=1_000_000)
        assert await ledger.start(first, ops.state()) == {}
    rates, lists = throttles_now(sb)
    assert (2, FOLLOWER_RATE) in rates and (topic, FOLLOWER_REPLICAS) in lists
    assert await journal_value(name) is not None

    report = await reassign(name, ReassignParams(kind="drain", brokers=[5], dry_run=False, actor="restarted"))
    assert report.status == "completed", report.summary
    adoption = report.adoption
    assert adoption is not None and adoption["run_id"] == "dead-run"
    assert sorted(adoption["finished"]) == [f"{topic}-0", f"{topic}-1"]
    assert adoption["throttles_removed"]["follower_rate_brokers"] == [2]
    after = replica_map(sb)
    assert after[(topic, 0)] == (2, 1, 3) and after[(topic, 1)] == (1, 2, 3)
    assert not [k for k, r in after.items() if 5 in r]
    assert throttles_now(sb) == ({}, {})
    assert await journal_value(name) is None
    # the dead run never wrote its end: the adopting run writes it, under the dead run's id and actor
    dead = [r for r in audit_of(sb, name) if r["run_id"] == "dead-run"]
    assert [(r["status"], r["actor"], r["action"]) for r in dead] == [("failed", "crashed", "reassign")], dead
    assert "adopted its work: adopted run dead-run" in dead[0]["summary"]


async def test_busy_lock_gives_a_busy_result_not_a_failure(healthy_sandbox: Sandbox) -> None:
    name = await save_cluster(healthy_sandbox)
    held, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:  # another process's action, as far as the lock can tell
        async with cluster_lock(name):
            held.set()
            await asyncio.wait_for(release.wait(), 30)

    task = asyncio.create_task(holder())
    try:
        await asyncio.wait_for(held.wait(), 20)
        report = await reassign(name, ReassignParams(kind="drain", brokers=[1], dry_run=False))
    finally:
        release.set()
        await task
    assert report.status == "busy" and "busy" in report.summary and report.execution is None
    assert [r["status"] for r in audit_of(healthy_sandbox, name)] == ["skipped"]
