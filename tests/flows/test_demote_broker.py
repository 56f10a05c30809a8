"""demote-broker and restore-broker on the real sandbox: leadership off a broker and back, exactly.

The topic is built with an explicit assignment (never Kafka's random placement): broker 2 is the
preferred leader of two partitions, a follower of a third, and absent from the fourth; every
partition has one replica per rack, as the sandbox's racks are 1,4=a 2,5=b 3,6=c.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import NewTopic

from flows.demote_broker import LeadershipParams, demote_broker, restore_broker
from kafka_medic.judgment import Rung
from kafka_medic.monitor.cluster_reads import describe_partitions
from kafka_medic.sandbox.cluster import Sandbox
from tasks.state import cluster_state
from tests.flows.test_replace_broker import audit_of, remember_brokers, save_cluster, statuses
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio, pytest.mark.usefixtures("prefect_server")]

B = 2
ASSIGNMENT = [[2, 1, 3], [2, 3, 4], [1, 2, 6], [3, 4, 5]]


@pytest.fixture
def led_topic(healthy_sandbox: Sandbox) -> Iterator[str]:
    admin = healthy_sandbox.admin()
    name = f"lead-{uuid.uuid4().hex[:6]}"
    admin.create_topics([NewTopic(name, num_partitions=4, replica_assignment=ASSIGNMENT)])[name].result(timeout=20)
    wait_until(lambda: _leaders(healthy_sandbox, name) == [2, 2, 1, 3], timeout_s=30, what=f"{name} led as assigned")
    yield name
    admin.delete_topics([name])[name].result(timeout=20)


def _orders(sb: Sandbox) -> dict[tuple[str, int], tuple[int, ...]]:
    parts = describe_partitions(sb.admin())
    return {(str(t), int(p)): tuple(int(b) for b in r)
            for t, p, r in zip(parts["topic"], parts["partition"], parts["replicas"], strict=True)}  # fmt: skip


def _leaders(sb: Sandbox, topic: str) -> list[int]:
    parts = describe_partitions(sb.admin(), [topic]).sort_values("partition")
    return [int(x) for x in parts["leader"]]


def _leads(sb: Sandbox, broker_id: int) -> int:
    return int((describe_partitions(sb.admin())["leader"] == broker_id).sum())


async def test_demote_takes_every_leadership_off_and_restore_puts_back_the_exact_orders(
    healthy_sandbox: Sandbox, led_topic: str
) -> None:
    sb = healthy_sandbox
    block = await save_cluster(sb, prefix="dem")
    await remember_brokers(block.name)
    before = _orders(sb)
    assert _leads(sb, B) >= 2

    plan = await demote_broker(block.name, LeadershipParams(broker_id=B))  # dry run by default
    assert plan.status == "planned" and f"{led_topic}-0" in plan.reordered and _orders(sb) == before, plan

    report = await demote_broker(block.name, LeadershipParams(broker_id=B, dry_run=False, reason="test"))
    try:
        assert report.status == "completed", report
        assert report.leads_after == 0 and _leads(sb, B) == 0, "broker 2 leads nothing"
        after = _orders(sb)
        assert after[(led_topic, 0)] == (1, 3, 2) and after[(led_topic, 1)] == (3, 4, 2), "same replicas, 2 last"
        assert after[(led_topic, 2)] == (1, 2, 6) and after[(led_topic, 3)] == (3, 4, 5), "others untouched"
        assert all(set(after[k]) == set(before[k]) for k in before), "no replica moved: only orders changed"
        assert _leaders(sb, led_topic) == [1, 3, 1, 3]
        assert await cluster_state(block.name).undo("demotion", B), "the exact undo is stored"
    finally:
        restored = await restore_broker(block.name, LeadershipParams(broker_id=B, dry_run=False))

    assert restored.status == "completed", restored
    assert _orders(sb) == before, "every order is exactly as it was"
    assert _leaders(sb, led_topic) == [2, 2, 1, 3], "broker 2 leads its preferred partitions again"
    assert await cluster_state(block.name).undo("demotion", B) is None, "the undo is used up"
    records = audit_of(block)
    assert statuses(records, "demote_broker") == ["planned", "started", "finished"], records
    assert statuses(records, "restore_broker") == ["started", "finished"], records
    ladder = (await cluster_state(block.name).ladder()).of(B)
    assert [(a.action, a.ok) for a in ladder.attempts] == [("demote", True), ("restore", True)]
    assert ladder.rung is None, "a manual demotion is not a rung of automation's ladder"


async def test_automation_demotes_only_when_a_fresh_judgment_calls_for_it(
    healthy_sandbox: Sandbox, led_topic: str
) -> None:
    sb = healthy_sandbox
    block = await save_cluster(sb, prefix="dema")
    await remember_brokers(block.name)
    before = _orders(sb)

    report = await demote_broker(block.name, LeadershipParams(broker_id=B, dry_run=False, automation=True))

    assert report.status == "skipped" and f"not demoting broker {B}" in report.summary, report
    assert _orders(sb) == before and _leaders(sb, led_topic) == [2, 2, 1, 3], "nothing changed"
    assert statuses(audit_of(block), "demote_broker") == ["skipped"]
    ladder = (await cluster_state(block.name).ladder()).of(B)
    assert ladder.rung is not Rung.DEMOTE and not ladder.attempts, "a skip is not an attempt"
