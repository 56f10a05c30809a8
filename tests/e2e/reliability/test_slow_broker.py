"""Reliability scenario 10: a slow broker (alive, registered, in sync -- and slow) climbs the ladder:
scored over several cycles, demoted, then restarted; no acknowledged message is lost.

How it is made slow: its JVM is capped at 4 % of a CPU by a cgroup (``kafka_medic.sandbox.faults.
CpuStarvedBroker``: a noisy neighbour, a throttled instance); it stays registered and in sync, so no
liveness rule fires, but produce requests queue up for its handler threads. (A duty-cycled SIGSTOP
was tried first and is the wrong model: it raises every leader's p99 alike and leaves no trace in
the stopped broker's own metrics -- see the faults module.) The fault lives in the process, like a
leaking JVM: the restart rung clears it. The policy is the default but for shorter timings (scores
3/6/9, a 15 s settle window, 4 clean samples to learn a baseline) so the climb fits in a test; the
traffic floor is the default 100 kB/s, met by real load.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic

from flows.health_check import health_check
from kafka_medic.loadgen import AckedProducer, verify_acked
from kafka_medic.monitor.cluster_reads import describe_partitions
from kafka_medic.reports.health import HealthReport
from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.sandbox.faults import CpuStarvedBroker
from tasks.state import cluster_state
from tests import scenarios
from tests.flows.test_replace_broker import audit_of, remember_brokers, save_cluster, statuses
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio, pytest.mark.usefixtures("prefect_server")]

SLOW = 3
CPU_SHARE = 0.04
POLICY: dict[str, Any] = {
    "dead_broker_grace_s": 60, "degraded_settle_s": 15, "degraded_baseline_min_samples": 4,
    "demote_score": 3, "restart_score": 6, "replace_score": 9, "remediation_backoff_s": 5,
}  # fmt: skip


def rotating_assignment(n: int) -> list[list[int]]:
    """Replicas (b, b+1, b+2) rotating over brokers 1..6: one per rack (1,4=a 2,5=b 3,6=c), and
    broker 3 leads n/6 of them and follows n/3."""
    return [[(p + j) % 6 + 1 for j in range(3)] for p in range(n)]


def first(reports: list[HealthReport], times: list[float], remedy: str, status: str) -> float | None:
    for r, t in zip(reports, times, strict=True):
        if any(d.get("remedy") == remedy and d.get("status") == status and d.get("broker_id") == SLOW
               for d in r.dispatched):  # fmt: skip
            return t
    return None


async def test_a_slow_broker_is_scored_demoted_then_restarted(healthy_sandbox: Sandbox) -> None:
    sb = healthy_sandbox
    topic = f"slow-{uuid.uuid4().hex[:6]}"
    admin = sb.admin()
    admin.create_topics([NewTopic(topic, num_partitions=24, replica_assignment=rotating_assignment(24))])[topic].result(
        timeout=20
    )
    wait_until(lambda: len(describe_partitions(admin, [topic])) == 24, timeout_s=20, what="topic visible")
    block = await save_cluster(sb, prefix="slow", **POLICY)
    producer = AckedProducer(sb.layout.bootstrap_servers, topic, rate=600, value_bytes=1024).start()
    reports: list[HealthReport] = []
    times: list[float] = []
    slow: CpuStarvedBroker | None = None
    try:
        await remember_brokers(block.name)

        async def learnt() -> bool:  # every broker knows its own baseline, under this load
            reports.append(await health_check(block.name))
            times.append(time.monotonic())
            s = (await cluster_state(block.name).scores()).brokers.get(SLOW)
            return s is not None and s.samples >= POLICY["degraded_baseline_min_samples"]

        deadline = time.monotonic() + 180
        while not await learnt():
            assert time.monotonic() < deadline, f"no baseline learnt: {reports[-1].judgment}, {reports[-1].findings}"
            await asyncio.sleep(1)
        t0 = time.monotonic()
        slow = CpuStarvedBroker(sb.pid_of(sb.layout.broker(SLOW)), cpu_share=CPU_SHARE).start()
        while time.monotonic() - t0 < 420:
            reports.append(await health_check(block.name))
            times.append(time.monotonic())
            if first(reports, times, "restart_broker", "restarted") is not None:
                break
            await asyncio.sleep(1)
    finally:
        if slow is not None:
            slow.stop()
        stats = producer.stop()
        admin.delete_topics([topic])

    demoted = first(reports, times, "demote_broker", "completed")
    restarted = first(reports, times, "restart_broker", "restarted")
    verdicts = [v for r in reports for v in r.judgment.get("verdicts", []) if v["broker_id"] == SLOW]
    assert demoted is not None, f"never demoted; last verdicts: {verdicts[-3:]}"
    assert restarted is not None and restarted > demoted, f"not restarted after the demotion: {verdicts[-3:]}"
    acted = {d["broker_id"] for r in reports for d in r.dispatched if d.get("broker_id") is not None}
    assert acted == {SLOW}, f"automation acted on other brokers: {acted}"
    records = audit_of(block)
    assert statuses(records, "demote_broker") == ["started", "finished"], records
    assert statuses(records, "restart_broker") == ["started", "finished"], records
    assert statuses(records, "replace_broker") == [], "a restart was enough: nothing wiped"
    result = verify_acked(sb.layout.bootstrap_servers, topic, producer.acked_keys, timeout_s=60)
    assert stats.acked > 0 and result.lost == 0, f"{result.lost} acknowledged messages lost ({stats})"
    scenarios.report(
        f"\nSCENARIO 10 (slow broker: CPU capped at {CPU_SHARE:.0%}): demoted after {demoted - t0:.1f} s, restarted "
        f"after {restarted - t0:.1f} s (scores 3/6, settle 15 s); {len(reports)} cycles; messages acked "
        f"{stats.acked}, lost {result.lost}"
    )
