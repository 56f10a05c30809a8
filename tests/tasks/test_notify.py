"""Pages and notices through real Prefect notification blocks to a local webhook (no Kafka): what is
sent, to whom, when, and that no secret ever leaves in a message."""

from __future__ import annotations

import json
import uuid

import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock

from blocks.kafka_cluster import KafkaCluster
from blocks.sandbox import sandbox_cluster
from kafka_medic.audit import AUTOMATION_ACTOR, AuditStatus, read_audit
from kafka_medic.notify import FAILURE_STATUSES
from kafka_medic.redaction import cluster_secrets
from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.state import parse_refs
from tasks.audit import RunAudit
from tasks.notify import anotice, anotify
from tests.webhook import WEBHOOK_TOKEN, Hook, save_webhook

pytestmark = pytest.mark.anyio


async def test_page_reaches_the_webhook_without_secrets(hook: Hook) -> None:
    cluster = f"n-{uuid.uuid4().hex[:8]}"
    block = KafkaCluster(
        name=cluster, bootstrap_servers="127.0.0.1:9", security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN", sasl_username="medic", sasl_password="pa55-w0rd-XYZ",
    )  # fmt: skip
    ref = await save_webhook(hook, cluster)
    # a careless summary that leaks the password must still not carry it out
    deliveries = await anotify(
        cluster, "[kafka-medic] CRITICAL test", "broker 3 down; sasl.password=pa55-w0rd-XYZ",
        secrets=cluster_secrets(block),
    )  # fmt: skip
    assert [d.ok for d in deliveries] == [True], deliveries
    assert len(hook.requests) == 1
    req = hook.requests[0]
    assert "broker 3 down" in req["body"] and "[kafka-medic] CRITICAL test" in req["body"]
    assert "pa55-w0rd-XYZ" not in req["body"] and WEBHOOK_TOKEN not in req["body"]
    assert req["headers"]["Authorization"] == f"Bearer {WEBHOOK_TOKEN}"  # the secret is used only where meant

    # a dead channel and a missing block are reported per block, never raised, never with the URL
    await CustomWebhookNotificationBlock(name="dead", url="http://127.0.0.1:9/x?key=abc", timeout=3).save(
        "dead-hook", overwrite=True
    )
    out = await anotify(cluster, "s", "b", block_refs=[ref, "custom-webhook/dead-hook", "custom-webhook/nope"])
    assert [d.ok for d in out] == [True, False, False]
    assert "key=abc" not in (out[1].error or "") and "not found" in (out[2].error or "")

    assert parse_refs("slack-webhook/a, custom-webhook/b ,bad ref,") == ["slack-webhook/a", "custom-webhook/b"]
    assert await anotify(f"none-{uuid.uuid4().hex[:6]}", "s", "b") == []  # nothing configured: no error


async def test_notices_go_out_for_outcomes_only_and_never_carry_secrets(hook: Hook) -> None:
    cluster = f"no-{uuid.uuid4().hex[:8]}"
    await save_webhook(hook, cluster)
    for status in ("started", "skipped", "planned"):  # every cycle / dry runs: no notice
        assert await anotice(cluster, "replace_broker", status, "x", brokers=[3]) == []
    out = await anotice(cluster, "drain", "finished", "drained", statuses=FAILURE_STATUSES)
    assert out == [] and hook.requests == [], "a person's finished drain is not a notice"
    sent = await anotice(cluster, "replace_broker", "refused", "would lose ISR; pw=s3cr3t-pw", brokers=[3],
                         secrets=["s3cr3t-pw"])  # fmt: skip
    assert [d.ok for d in sent] == [True] and len(hook.requests) == 1
    body = json.loads(hook.requests[0]["body"])["text"]
    assert "replace_broker broker(s) 3 REFUSED" in body and "would lose ISR" in body and "s3cr3t-pw" not in body
    # no channel configured: quiet, nothing raised
    assert await anotice(f"none-{uuid.uuid4().hex[:6]}", "replace_broker", "failed", "x") == []


@pytest.mark.kafka
async def test_one_notice_rule_for_every_flow(hook: Hook, healthy_sandbox: Sandbox) -> None:
    """RunAudit: refused/failed/approval always; finished only when automation acted; never started/skipped/planned;
    every record in the cluster's audit topic with the run's actor, whatever was notified."""
    cluster = f"ra-{uuid.uuid4().hex[:8]}"
    await save_webhook(hook, cluster)
    block = sandbox_cluster(healthy_sandbox, name=cluster, audit_topic=f"__audit-{cluster}")
    person = RunAudit(block, "drain_broker", actor="alice@laptop", brokers=[4])
    robot = RunAudit(block, "replace_broker", actor=AUTOMATION_ACTOR, brokers=[3])
    for audit in (person, robot):
        for status in (AuditStatus.PLANNED, AuditStatus.STARTED, AuditStatus.SKIPPED):
            await audit(status, f"{status} quietly")
    assert hook.requests == []
    await person(AuditStatus.FINISHED, "drained by a person who watches the result")
    assert hook.requests == [], "a person's own finished action is not news to on-call"
    await robot(AuditStatus.FINISHED, "automation replaced broker 3")
    await person(AuditStatus.REFUSED, "drain refused: would break AZ spread")
    await robot(AuditStatus.APPROVAL_REQUESTED, "may I replace broker 3?")
    bodies = [json.loads(r["body"])["text"] for r in hook.requests]
    assert len(bodies) == 3
    assert "replace_broker broker(s) 3 FINISHED" in bodies[0]
    assert "drain_broker broker(s) 4 REFUSED" in bodies[1]
    assert "replace_broker broker(s) 3 APPROVAL_REQUESTED" in bodies[2]
    assert all(r["written"] for r in robot.records + person.records)
    trail = read_audit(block.confluent_config(), block.audit_topic)
    assert [(r["actor"], r["status"]) for r in trail if r["actor"] == "alice@laptop"] == [
        ("alice@laptop", s) for s in ("planned", "started", "skipped", "finished", "refused")
    ]
    assert len(trail) == 10 and {r["action"] for r in trail} == {"drain_broker", "replace_broker"}
