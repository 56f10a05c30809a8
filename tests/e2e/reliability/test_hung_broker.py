"""Reliability scenario 2: a broker frozen by SIGSTOP ("degraded hardware": its sockets stay open,
nothing answers) is found unhealthy by the scheduled health check and healed by automation, with
no acknowledged message lost -- by a restart that keeps its disk (its machine and data are still
there), not by a wipe that would re-replicate everything it held.

Why SIGSTOP and not SIGKILL: a hung broker is the nastier failure. Clients and peers keep
connections to it that never answer, its JMX exporter hangs with it, and nothing tells the
controller it died; only the missed heartbeats fence it. The automation path is the one an
on-call engineer relies on: ``health_check(cluster, act=True)`` cycles back to back (a schedule
would run them), mode ``auto``, a short grace period, the sandbox replacer.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from kafka_medic.loadgen import AckedProducer, verify_acked
from kafka_medic.reports.health import HealthReport
from kafka_medic.sandbox.cluster import Sandbox
from tests import scenarios
from tests.flows.test_remediate import full_isr, heal_until, replaced, restarted, scenario_line
from tests.flows.test_replace_broker import audit_of, directory_id, remember_brokers, save_cluster, statuses
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio, pytest.mark.usefixtures("prefect_server")]

HUNG = 3
HEAL_TIMEOUT_S = 240.0  # fencing (3 s session) + grace + restart + JVM start + catch-up, on a loaded 2-core box
UNHEALTHY_RULES = {"broker_down", "degraded_broker", "offline_log_dir"}  # the ones that lead to healing


def first_unhealthy(reports: list[HealthReport], times: list[float], t0: float) -> tuple[float, str] | None:
    """Seconds from ``t0`` to the first report calling the hung broker unhealthy, and by which rule."""
    for r, t in zip(reports, times, strict=True):
        for f in r.findings:
            if f["rule"] in UNHEALTHY_RULES and HUNG in f["brokers"]:
                return t - t0, f["rule"]
    return None


async def test_hung_broker_is_detected_and_healed_by_a_restart_keeping_its_disk(
    healthy_sandbox: Sandbox, topic_factory
) -> None:
    sb = healthy_sandbox
    topic = topic_factory(partitions=6)
    block = await save_cluster(sb, prefix="hang")  # auto mode, grace 2 s, sandbox replacer
    await remember_brokers(block.name)
    disk_before = directory_id(sb, HUNG)
    producer = AckedProducer(sb.layout.bootstrap_servers, topic, rate=100).start()
    try:
        await asyncio.sleep(2)
        sb.hang(HUNG)
        t_hang = time.monotonic()
        assert next(s for s in sb.status() if s.node_id == HUNG).process == "hung"
        times: list[float] = []
        reports = await heal_until(
            block.name, lambda rs: HUNG in restarted(rs), HEAL_TIMEOUT_S, f"hung broker {HUNG} restarted", times
        )
        healed_s = time.monotonic() - t_hang
        wait_until(lambda: full_isr(sb), timeout_s=90, what="full ISR after the restart")
        isr_full_s = time.monotonic() - t_hang
        await asyncio.sleep(2)  # keep producing on the healed cluster for a moment
    finally:
        stats = producer.stop()
    result = verify_acked(sb.layout.bootstrap_servers, topic, producer.acked_keys, timeout_s=60)
    detected = first_unhealthy(reports, times, t_hang)
    scenarios.report(
        scenario_line("2 (SIGSTOP one broker)", detected[0] if detected else None, healed_s, stats, result)
        + f"; detected by {detected[1] if detected else '-'}, full ISR at {isr_full_s:.1f}s, {len(reports)} cycles"
    )

    assert detected is not None, "the hung broker was reported unhealthy before it was healed"
    assert stats.acked > 0
    assert result.lost == 0, f"{result.lost} acknowledged messages lost ({stats})"
    # healed by a restart: the frozen process is gone, a new one runs on the same disk
    assert directory_id(sb, HUNG) == disk_before, "broker 3 kept its disk"
    assert next(s for s in sb.status() if s.node_id == HUNG).process == "running"
    records = audit_of(block)
    assert statuses(records, "restart_broker") == ["started", "finished"], records
    assert statuses(records, "replace_broker") == [], "nothing was wiped"
    finished = [r for r in records if r["action"] == "restart_broker"][-1]
    assert finished["brokers"] == [HUNG] and finished["actor"] == "kafka-medic automation"
    # one broker action, on the hung broker only (the degraded rules are on: bystanders are not acted on)
    acted = {d["broker_id"] for r in reports for d in r.dispatched if d.get("broker_id") is not None}
    assert acted == {HUNG}, acted
    assert not replaced(reports)
