"""Incidents on real brokers: an offline partition and a partition under min ISR each reach a real
webhook receiver exactly once, nothing repeats while they last, and each sends one "resolved" when
the broker is back; every transition is also a Prefect event.

The state is built explicitly (no dependence on Kafka's placement): one topic whose only replica is
on broker 5 (offline when 5 stops) and one with replicas (5, 6, 1) and min.insync.replicas=3 (under
min ISR when 5 stops). Observe mode and a long grace period: nothing acts, so the only thing that
can change the cluster is this test restarting broker 5.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic
from prefect.client.orchestration import get_client
from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventNameFilter

from flows.health_check import health_check
from kafka_medic.monitor.cluster_reads import describe_partitions
from kafka_medic.reports.health import HealthReport
from kafka_medic.sandbox.cluster import Sandbox
from tests.flows.test_replace_broker import audit_of, remember_brokers, save_cluster
from tests.waiting import wait_until
from tests.webhook import Hook, save_webhook

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio, pytest.mark.usefixtures("prefect_server")]

BROKER = 5
KEYS = {"offline", "under_min_isr"}
#: The incident's pending window here (default 30 s): longer than a clean failover's fencing (9 s);
#: the window itself is what the failover storm proves (no page), this test proves once-and-resolved.
PENDING_S = 10


async def cycles_until(name: str, done: Any, timeout_s: float, what: str, reports: list[HealthReport]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reports.append(await health_check(name, act=True))
        if done(reports):
            return
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last: {reports[-1].incidents}")


def transitions(reports: list[HealthReport]) -> list[tuple[str, str, bool]]:
    return [(i["transition"], i["key"], i["page"]) for r in reports for i in r.incidents]


async def incident_events(cluster: str, want: int) -> list[Any]:
    """The incident events of ``cluster`` (persisted asynchronously: wait, bounded)."""
    flt = EventFilter(
        event=EventNameFilter(prefix=["kafka-medic.incident."]),
        any_resource=EventAnyResourceFilter(id=[f"kafka-medic.cluster.{cluster}"]),
    )
    deadline = time.monotonic() + 30
    events: list[Any] = []
    async with get_client() as client:
        while time.monotonic() < deadline:
            events = list((await client.read_events(filter=flt, limit=50)).events)
            if len(events) >= want:
                break
            await asyncio.sleep(0.5)
    return events


async def test_offline_and_under_min_isr_page_once_each_then_resolve_once(healthy_sandbox: Sandbox, hook: Hook) -> None:
    sb = healthy_sandbox
    admin = sb.admin()
    tag = uuid.uuid4().hex[:6]
    alone, strict = f"inc-alone-{tag}", f"inc-strict-{tag}"
    futures = admin.create_topics([
        NewTopic(alone, num_partitions=1, replica_assignment=[[BROKER]], config={"min.insync.replicas": "1"}),
        NewTopic(strict, num_partitions=1, replica_assignment=[[BROKER, 6, 1]], config={"min.insync.replicas": "3"}),
    ])  # fmt: skip
    for f in futures.values():
        f.result(timeout=20)
    wait_until(lambda: len(describe_partitions(admin, [alone, strict])) == 2, timeout_s=20, what="topics visible")
    block = await save_cluster(sb, prefix="inc", mode="observe", dead_broker_grace_s=3600,
                               incident_pending_s=PENDING_S)  # fmt: skip
    await save_webhook(hook, block.name)
    await remember_brokers(block.name)
    reports: list[HealthReport] = []
    back = False
    try:
        sb.kill(BROKER)

        def both_open(rs: list[HealthReport]) -> bool:
            return {k for t, k, _ in transitions(rs) if t == "opened"} >= KEYS

        await cycles_until(block.name, both_open, 120, "both incidents opened", reports)
        for _ in range(3):  # they last: no repeat within the interval
            reports.append(await health_check(block.name, act=True))
        while_open = len(hook.requests)

        sb.start_broker(BROKER, wait=False)
        back = True
        sb.wait_registered([BROKER], timeout_s=120)

        def both_resolved(rs: list[HealthReport]) -> bool:
            return {k for t, k, _ in transitions(rs) if t == "resolved"} >= KEYS

        await cycles_until(block.name, both_resolved, 120, "both incidents resolved", reports)
    finally:
        if not back:
            sb.start_broker(BROKER, wait=False)
            sb.wait_registered([BROKER], timeout_s=120)
        admin.delete_topics([alone, strict])

    ours = [t for t in transitions(reports) if t[1] in KEYS]
    opened = [t for t in ours if t[0] == "opened"]
    resolved = [t for t in ours if t[0] == "resolved"]
    assert sorted(opened) == [("opened", "offline", True), ("opened", "under_min_isr", True)], ours
    assert sorted(resolved) == [("resolved", "offline", False), ("resolved", "under_min_isr", False)], ours
    assert len(ours) == 4, f"nothing else (no repeat, no escalation): {ours}"
    assert not [t for t in transitions(reports) if t[1] not in KEYS], "no other incident: nothing else was wrong"

    texts = [json.loads(r["body"])["text"] for r in hook.requests]
    assert while_open == 2 and len(texts) == 4, texts
    assert sum("[OPEN] critical offline" in t for t in texts) == 1 and sum("[OPEN] critical under_min_isr" in t
                                                                           for t in texts) == 1, texts  # fmt: skip
    assert sum("[RESOLVED]" in t and "Resolved after" in t for t in texts) == 2, texts
    assert all(block.name in t for t in texts)
    records = audit_of(block)
    assert sorted(r["details"]["incident"] for r in records if r["status"] == "paged") == sorted(KEYS), records
    assert not [r for r in records if r["status"] != "paged"], "observe mode: nothing acted"

    events = await incident_events(block.name, 4)
    names = sorted(e.event for e in events)
    assert names == ["kafka-medic.incident.opened"] * 2 + ["kafka-medic.incident.resolved"] * 2, names
    assert {e.payload["key"] for e in events} == KEYS
