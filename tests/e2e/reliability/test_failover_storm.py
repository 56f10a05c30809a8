"""Reliability scenario 9: a failover storm with the degraded rules ON -- automation acts on the
killed broker only, never on a healthy bystander, and never inside a grace period.

Every failover spikes the survivors' produce p99 and shrinks their ISRs for a while (the collateral
the first round's automation acted on: a healthy broker restarted, another "replaced", from one
sample). Here the broker leading the most partitions is killed twice (healed in between), and
then hung for less than its grace period, with the default degraded-broker policy and health
checks back to back. ``bench/bench_storm.py`` runs the same storm with ten or more kills at low
and high load; this test is its short, asserting form.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest

from flows.health_check import health_check
from kafka_medic.loadgen import AckedProducer, verify_acked
from kafka_medic.monitor.cluster_reads import describe_partitions
from kafka_medic.reports.health import HealthReport
from kafka_medic.sandbox.cluster import Sandbox
from tests import scenarios
from tests.flows.test_remediate import full_isr, heal_until, restarted
from tests.flows.test_replace_broker import audit_of, remember_brokers, save_cluster
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio, pytest.mark.usefixtures("prefect_server")]

GRACE_S = 10.0
HANG_S = 6.0  # well inside the grace period


def most_leaders(sb: Sandbox) -> int:
    parts = describe_partitions(sb.admin())
    return Counter(int(x) for x in parts["leader"] if int(x) >= 0).most_common(1)[0][0]


def acted_on(reports: list[HealthReport]) -> list[dict[str, Any]]:
    return [d for r in reports for d in r.dispatched if d.get("broker_id") is not None]


async def test_a_failover_storm_never_acts_on_a_healthy_broker(healthy_sandbox: Sandbox, topic_factory) -> None:
    sb = healthy_sandbox
    topic = topic_factory(partitions=12)
    block = await save_cluster(sb, prefix="storm", dead_broker_grace_s=GRACE_S, replacement_cooldown_s=0)
    await remember_brokers(block.name, cycles=3)
    producer = AckedProducer(sb.layout.bootstrap_servers, topic, rate=20).start()  # low load: the worst case
    reports: list[HealthReport] = []
    victims: list[int] = []
    flagged = 0
    try:
        for _ in range(2):
            victim = most_leaders(sb)
            victims.append(victim)
            sb.kill(victim)
            rs = await heal_until(block.name, lambda rs, v=victim: v in restarted(rs), 180, f"broker {victim} healed")
            reports += rs
            wait_until(lambda: full_isr(sb), timeout_s=90, what="full ISR after the heal")
            for _ in range(3):  # the aftermath, when survivors' metrics are noisiest
                reports.append(await health_check(block.name, act=True))
        hung = most_leaders(sb)
        # The resume runs on its own clock: a health check that takes a few seconds must not stretch
        # the hang past the grace period (then acting would be right, and the test would fail by chance).
        resume = threading.Timer(HANG_S, sb.resume, args=(hung,))
        sb.hang(hung)
        resume.start()
        during: list[HealthReport] = []
        try:
            while resume.is_alive():
                during.append(await health_check(block.name, act=True))
                await asyncio.sleep(0.5)
        finally:
            resume.cancel()
            resume.join(timeout=30)
            sb.resume(hung)  # no-op when the timer did it
        for _ in range(3):
            during.append(await health_check(block.name, act=True))
        reports += during
    finally:
        stats = producer.stop()

    flagged = sum(f["rule"] == "degraded_broker" for r in reports for f in r.findings)
    actions = acted_on(reports)
    on_bystanders = [d for d in actions if d["broker_id"] not in victims]
    assert not on_bystanders, f"automation acted on healthy brokers: {on_bystanders}"
    assert not acted_on(during), f"automation acted inside the grace period: {acted_on(during)}"
    seen = [f["rule"] for r in during for f in r.findings if hung in f["brokers"]]
    assert seen, "no health check saw the hung broker (its metrics or its liveness)"
    assert sorted(d["broker_id"] for d in actions if d.get("status") == "restarted") == sorted(victims)
    assert not [r for r in audit_of(block) if r["brokers"] and r["brokers"][0] not in victims]
    # clean failovers and a short hang page nobody: their few leaderless seconds are shorter than
    # the incident's pending window, and the heal worked (no failed remediation to tell about)
    pages = [i for r in reports for i in r.incidents if i["page"]]
    assert not pages, f"paged during a storm automation handled: {pages}"
    result = verify_acked(sb.layout.bootstrap_servers, topic, producer.acked_keys, timeout_s=60)
    assert stats.acked > 0 and result.lost == 0, f"{result.lost} acknowledged messages lost ({stats})"
    scenarios.report(
        f"\nSCENARIO 9 (failover storm, degraded rules on): {len(victims)} kills + 1 hang of {HANG_S:g} s "
        f"(grace {GRACE_S:g} s), {len(reports)} health checks; single-sample degraded flags {flagged}, "
        f"actions on healthy brokers {len(on_bystanders)}, inside grace {len(acted_on(during))}; "
        f"messages acked {stats.acked}, lost {result.lost}"
    )
