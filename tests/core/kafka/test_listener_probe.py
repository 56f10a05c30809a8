"""Refused-listener evidence on real brokers: a killed broker reads as down (``connection refused``)
while the controller still lists it, a hung one never does, and the safety guard stops trusting
the stale ISR of a refused broker.

These tests need the window between a crash and its fencing, so they run on a cluster of their
own with Kafka's default ``broker.session.timeout.ms`` (9 s, the window a production cluster has),
not the shared sandbox's 3 s: on a loaded 2-core machine one collection took longer than 3 s in
2 full runs of 9, and the test could only skip. A collection takes well under a second, so 9 s
catches every kill; "before it is fenced" is still read from the snapshot itself (``registered``),
never assumed from a clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic

from blocks.sandbox import sandbox_cluster
from kafka_medic.monitor.cluster_reads import describe_partitions
from kafka_medic.monitor.collector import CollectResult, collect_snapshot
from kafka_medic.monitor.listener_probe import ListenerState, probe_listener
from kafka_medic.monitor.liveness import new_incarnation_serving
from kafka_medic.policy import HealthPolicy
from kafka_medic.rules import RuleName, evaluate
from kafka_medic.rules.brokers import EVIDENCE_REFUSED
from kafka_medic.safety import removal_impact
from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.sandbox.layout import SandboxLayout
from tests.conftest import TEST_PORT_BASE, repair, running_sandbox
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka

PROBE_S = 3.0  # a refused connect on loopback answers at once; this only bounds a loaded machine
#: Kafka's default: the controller lists a silent broker (unfenced) for 9 s after its last heartbeat.
KAFKA_DEFAULT_SESSION_MS = 9000
#: Inside this worker's port range, clear of the shared sandbox (base+1..6, +100) and the service
#: test's (base+20..): this cluster's ports are base+41..43, +140, +1041..43, +1140.
PORT_BASE = TEST_PORT_BASE + 40


@pytest.fixture(scope="module")
def slow_fencing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Three brokers in three racks whose controller fences a silent broker after Kafka's default 9 s."""
    layout = SandboxLayout(
        state_dir=Path(tmp_path_factory.mktemp("slow-fencing")),
        brokers=3,
        racks=3,
        port_base=PORT_BASE,
        broker_session_timeout_ms=KAFKA_DEFAULT_SESSION_MS,
    )
    with running_sandbox(layout, "slow-fencing sandbox") as sb:
        yield sb


@pytest.fixture
def cluster(slow_fencing: Sandbox) -> Iterator[Sandbox]:
    repair(slow_fencing)
    yield slow_fencing


def _block(sb: Sandbox) -> Any:
    return sandbox_cluster(sb, name=f"probe-{uuid.uuid4().hex[:8]}", policy=HealthPolicy())


def _row(result: CollectResult, broker_id: int) -> dict[str, Any]:
    b = result.snapshot.brokers
    return b.loc[b["broker_id"] == broker_id].iloc[0].to_dict()


def _kill_and_collect_while_listed(sb: Sandbox, block: Any, victim: int, attempts: int = 3) -> CollectResult:
    """Kill ``victim`` and collect at once. With a 9 s session the first try catches it; should the
    controller still have fenced it before the Metadata answer (a machine stalled for seconds),
    bring it back and try again (bounded), and fail, not skip, if it never holds."""
    for _ in range(attempts):
        sb.kill(victim)
        result = collect_snapshot(block, probe_timeout_s=PROBE_S, timeout_s=5.0)
        row = _row(result, victim)
        if row["registered"] and row["listener"] == ListenerState.REFUSED:
            return result
        sb.start_broker(victim, wait=True, timeout_s=120)
        wait_until(lambda: probe_listener("127.0.0.1", sb.layout.broker(victim).port, PROBE_S) is ListenerState.OPEN,
                   timeout_s=60, what=f"broker {victim} serving again")  # fmt: skip
    raise AssertionError(
        f"broker {victim} was never caught listed with a refused listener in {attempts} kills, "
        f"although the controller lists a silent broker for {KAFKA_DEFAULT_SESSION_MS} ms"
    )


def test_killed_broker_is_down_with_refused_evidence_before_it_is_fenced(cluster: Sandbox) -> None:
    sb = cluster
    block = _block(sb)
    result = _kill_and_collect_while_listed(sb, block, victim=3)

    row = _row(result, 3)
    assert bool(row["registered"]), "the controller still lists it: not fenced yet"
    assert row["listener"] == ListenerState.REFUSED
    assert not row["alive"], "a listed broker whose listener refuses is not alive"
    others = result.snapshot.brokers.query("broker_id != 3")
    assert set(others["listener"]) == {ListenerState.OPEN} and others["alive"].all()

    ev = evaluate(result.snapshot, block.policy)
    down = [f for f in ev.findings if f.rule == RuleName.BROKER_DOWN]
    assert [f.brokers for f in down] == [(3,)]
    assert down[0].evidence["down_evidence"] == EVIDENCE_REFUSED == "connection refused"
    assert down[0].evidence["registered"] is True
    assert "connection refused" in down[0].summary

    # the replacement must not mistake the old, still-listed registration for its new broker
    admin = sb.admin()
    assert new_incarnation_serving(block, admin, 3) is not None
    sb.start_broker(3, wait=True, timeout_s=120)
    wait_until(lambda: new_incarnation_serving(block, admin, 3) is None, timeout_s=60, what="broker 3 serving again")


def test_hung_broker_is_never_reported_refused(cluster: Sandbox) -> None:
    sb = cluster
    block = _block(sb)
    node = sb.layout.broker(2)
    sb.hang(2)
    try:
        # the kernel still completes the handshake for a stopped JVM: its listener reads as open
        assert probe_listener("127.0.0.1", node.port, PROBE_S) is ListenerState.OPEN
        result = collect_snapshot(block, probe_timeout_s=PROBE_S, timeout_s=5.0)
        row = _row(result, 2)
        assert row["listener"] != ListenerState.REFUSED
        ev = evaluate(result.snapshot, block.policy)
        for f in ev.findings:
            if f.rule == RuleName.BROKER_DOWN and 2 in f.brokers:  # once fenced, it is down -- but not "refused"
                assert f.evidence["down_evidence"] != EVIDENCE_REFUSED
    finally:
        sb.resume(2)


def test_guard_counts_a_refused_broker_out_of_its_stale_isr(cluster: Sandbox) -> None:
    """Partition on {3, 1, 2}, min ISR 2. With 3 crashed but not fenced, metadata still says ISR
    {3, 1, 2}: trusting it, wiping broker 1 would look safe (3 and 2 left). It is not: 3 is gone.

    3 leads the partition, so only the controller's fencing can take it out of the ISR (a leader
    shrinks its followers, never itself): inside the 9 s session the ISR is stale for sure."""
    sb = cluster
    block = _block(sb)
    admin = sb.admin()
    topic = f"stale-isr-{uuid.uuid4().hex[:8]}"
    fut = admin.create_topics(
        [NewTopic(topic, num_partitions=1, replica_assignment=[[3, 1, 2]], config={"min.insync.replicas": "2"})],
        request_timeout=15,
    )
    fut[topic].result(timeout=20)
    try:
        wait_until(
            lambda: [len(i) for i in describe_partitions(admin, [topic])["isr"]] == [3],
            timeout_s=30,
            what=f"{topic} fully in sync",
        )
        wait_until(
            lambda: int(describe_partitions(admin, [topic])["leader"].iloc[0]) == 3,
            timeout_s=30,
            what=f"{topic} led by its preferred leader 3",
        )
        result = _kill_and_collect_while_listed(sb, block, victim=3)
        snap = result.snapshot
        isr = snap.partitions.loc[snap.partitions["topic"] == topic, "isr"].iloc[0]
        assert 3 in isr, "a registered leader's ISR can only change through fencing: it must still be stale"
        impact = removal_impact(snap, [1])
        assert (topic, 0) in impact.under_min_isr, impact
        assert 3 in impact.stale_isr_brokers
        # wiping the crashed broker itself loses no in-sync copy the cluster still has
        assert (topic, 0) not in removal_impact(snap, [3]).under_min_isr
    finally:
        _delete_topic(sb, topic)


def _delete_topic(sb: Sandbox, topic: str) -> None:
    """Delete ``topic`` for sure: it breaks AZ spread on purpose and would fail later health checks.

    Right after a kill, librdkafka may send DeleteTopics to the dead broker (KRaft names a random
    live broker "controller" in Metadata) and time out; retry on a fresh client until it is gone.
    """

    def gone() -> bool:
        client = sb.admin()
        if topic not in client.list_topics(timeout=5).topics:
            return True
        for fut in client.delete_topics([topic], request_timeout=5).values():
            fut.result(timeout=8)
        return topic not in client.list_topics(timeout=5).topics

    wait_until(gone, timeout_s=90, what=f"topic {topic} deleted")


def test_racks_are_read_once_so_a_just_crashed_broker_cannot_stall_a_pass(
    cluster: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DescribeCluster (the only source of racks) may be sent to any listed broker, including one
    that crashed a moment ago, and then waits out its timeout: the pass that should report the
    crash would stall. Racks are read on the first pass and then cached (refreshed periodically)."""
    import kafka_medic.monitor.collector as collector

    sb = cluster
    block = _block(sb)
    calls: list[int] = []
    real = collector.describe_cluster

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(collector, "describe_cluster", counted)
    expected = {n.node_id: n.rack for n in sb.layout.broker_specs}

    def racks(result: CollectResult) -> dict[int, Any]:
        b = result.snapshot.brokers
        return dict(zip(b["broker_id"].astype(int), b["rack"], strict=True))

    first = collect_snapshot(block, probe_timeout_s=PROBE_S, timeout_s=5.0)
    assert len(calls) == 1 and racks(first) == expected
    result = _kill_and_collect_while_listed(sb, block, victim=3)
    try:
        assert len(calls) == 1, "racks were asked for again although every listed broker's rack is cached"
        assert racks(result) == expected and not _row(result, 3)["alive"]
    finally:
        sb.start_broker(3, wait=True, timeout_s=120)
        wait_until(lambda: probe_listener("127.0.0.1", sb.layout.broker(3).port, PROBE_S) is ListenerState.OPEN,
                   timeout_s=60, what="broker 3 serving again")  # fmt: skip
    monkeypatch.setattr(collector, "RACK_REFRESH_S", 0.0)
    again = collect_snapshot(block, probe_timeout_s=PROBE_S, timeout_s=5.0)
    assert len(calls) == 2 and racks(again) == expected
