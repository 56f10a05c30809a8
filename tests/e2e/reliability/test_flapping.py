"""Reliability scenario 7: a broker flapping (down/up repeatedly inside the grace period) must not
cause a replacement storm -- nor any replacement -- and no acknowledged message may be lost."""

from __future__ import annotations

import time

import pytest

from flows.health_check import health_check
from kafka_medic.loadgen import AckedProducer, verify_acked
from kafka_medic.sandbox.cluster import Sandbox
from tests import scenarios
from tests.flows.test_replace_broker import audit_of, directory_id, remember_brokers, save_cluster, statuses

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio, pytest.mark.usefixtures("prefect_server")]

FLAPS = 3
GRACE_S = 60.0  # a JVM restart takes 5-30 s on a loaded 2-core machine; every flap must fit inside


async def test_flapping_broker_inside_grace_is_never_replaced(healthy_sandbox: Sandbox, topic_factory) -> None:
    sb = healthy_sandbox
    topic = topic_factory(partitions=6)
    block = await save_cluster(sb, prefix="flap", dead_broker_grace_s=GRACE_S, replacement_cooldown_s=0)
    await remember_brokers(block.name)
    disk_before = directory_id(sb, 3)
    load = AckedProducer(sb.layout.bootstrap_servers, topic, rate=100).start()
    cycles = 0
    seen_down = 0
    longest_down = 0.0
    try:
        for _ in range(FLAPS):
            sb.kill(3)
            t_down = time.monotonic()
            # health checks keep running (act=True: automation is live) until the down broker is seen
            # (session timeout 3 s + a cycle), bounded, then it comes back inside the grace period
            seen = False
            while not seen and time.monotonic() - t_down < 20:
                report = await health_check(block.name, act=True)
                cycles += 1
                seen = any(f["rule"] == "broker_down" and 3 in f["brokers"] for f in report.findings)
                assert not report.dispatched, f"acted on a broker inside its grace period: {report.dispatched}"
            seen_down += seen
            sb.start_broker(3, wait=True, timeout_s=GRACE_S)
            longest_down = max(longest_down, time.monotonic() - t_down)
            report = await health_check(block.name, act=True)
            cycles += 1
            assert not report.dispatched
    finally:
        stats = load.stop()
    assert longest_down < GRACE_S, f"a flap lasted {longest_down:.1f} s, longer than the grace period"
    assert seen_down >= FLAPS, "every flap was seen as broker_down (within grace)"
    records = audit_of(block)
    assert "started" not in statuses(records, "replace_broker"), records
    assert directory_id(sb, 3) == disk_before, "the broker's disk was never wiped"
    result = verify_acked(sb.layout.bootstrap_servers, topic, load.acked_keys, timeout_s=60)
    scenarios.report(
        f"\nSCENARIO 7 (flapping broker): {FLAPS} flaps, longest down {longest_down:.1f} s "
        f"(grace {GRACE_S:.0f} s), {cycles} health cycles, 0 actions; {stats.acked} acked, "
        f"{result.found} verified, {result.missing} lost"
    )
    assert result.missing == 0
