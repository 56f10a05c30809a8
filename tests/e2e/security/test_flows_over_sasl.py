"""Every healing and maintenance flow works on a SASL_SSL + SCRAM cluster with credentials taken
from the blocks, and no password appears in what they print, log, store as artifacts, return, or
write to the audit topic.

tests/e2e/security/test_tls_sasl.py proves this for the health check (the read side, scanned
exhaustively); this file drives the flows that change the cluster: verify-isr, what-if, a
preferred leader election, a throttled partition reassignment (KIP-455 through kafka-python with
SCRAM over TLS) and a broker replacement (wipe, restart, re-register, ISR verification).
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import NewTopic
from prefect.client.orchestration import get_client

from blocks.replacers import SandboxReplacer
from blocks.sandbox import secure_cluster_block
from flows.leader_election import ElectLeadersParams, preferred_leader_election
from flows.reassign import ReassignParams, reassign
from flows.replace_broker import ReplaceBrokerParams, replace_broker
from flows.verify_isr import verify_isr
from flows.what_if import WhatIfParams, what_if
from kafka_medic.audit import read_audit
from kafka_medic.monitor.cluster_reads import describe_partitions, not_fully_replicated
from kafka_medic.sandbox.cluster import Sandbox
from tasks.locks import ensure_cluster_limits
from tests.e2e.security.test_tls_sasl import assert_no_secret, log_text
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio]


async def test_mutating_flows_over_sasl_ssl_work_and_leak_no_secret(
    healthy_secure: Sandbox,
    prefect_server: None,
    debug_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    secrets_in_use: list[str],
) -> None:
    sb = healthy_secure
    admin = sb.admin()
    suffix = uuid.uuid4().hex[:8]
    name, audit_topic, topic = f"secf-{suffix}", f"audit-secf-{suffix}", f"secf-rf2-{suffix}"
    created = {
        audit_topic: NewTopic(audit_topic, num_partitions=1, replication_factor=3, config={"min.insync.replicas": "2"}),
        # RF 2 so that broker 1 can be drained on a 3-broker cluster (RF-3 partitions have nowhere to go)
        topic: NewTopic(topic, num_partitions=3, replica_assignment=[[1, 2], [2, 1], [1, 3]]),
    }
    for t, fut in admin.create_topics(list(created.values()), request_timeout=15).items():
        fut.result(timeout=20)
        wait_until(lambda t=t: not describe_partitions(admin, [t]).empty, timeout_s=20, what=f"{t} visible")
    try:
        await SandboxReplacer(state_dir=str(sb.layout.state_dir)).save(name, overwrite=True)
        block = secure_cluster_block(sb, name, audit_topic=audit_topic, replacer=f"sandbox-replacer/{name}")
        await block.save(name, overwrite=True)
        await ensure_cluster_limits(name)

        isr = await verify_isr(name)
        plan = await what_if(name, WhatIfParams(broker_ids=[2]))
        election = await preferred_leader_election(name, ElectLeadersParams(dry_run=False))
        moved = await reassign(
            name,
            ReassignParams(kind="drain", brokers=[1], dry_run=False, allow_partial=True, timeout_s=300,
                           verify_timeout_s=180, throttle_bytes_per_sec=10_000_000, reason="sasl test"),
        )  # fmt: skip
        # broker 1, now free of the RF-2 topic: replacing 3 is refused (the RF-2 partitions live on 2 and 3
        # and would drop below min ISR), which the guards' own tests cover
        replaced = await replace_broker(
            name, ReplaceBrokerParams(broker_id=1, dry_run=False, verify_timeout_s=300, cooldown_s=0)
        )

        assert isr.ok and isr.partitions_checked >= 4
        assert plan.cluster == name
        assert not election.errors and not election.not_moved
        assert moved.status == "completed", moved.summary
        rf2 = describe_partitions(admin, [topic])
        assert all(1 not in reps for reps in rf2["replicas"]), "broker 1 no longer holds the RF-2 topic"
        assert replaced.status.value in ("replaced", "restarted"), replaced
        wait_until(
            lambda: not_fully_replicated(describe_partitions(admin)).empty, timeout_s=180, what="full ISR at the end"
        )

        records = read_audit(block.confluent_config(), audit_topic)
        actions = {r["action"] for r in records}
        assert {"preferred_leader_election", "reassign", "replace_broker"} <= actions, actions
        async with get_client() as client:
            artifacts = await client.read_artifacts()
        out, err = capfd.readouterr()
        scanned = {
            "flow results": "\n".join(r.model_dump_json() for r in (isr, plan, election, moved, replaced)),
            "audit records": repr(records),
            "artifacts": "\n".join(a.model_dump_json() for a in artifacts),
            "log records": log_text(debug_logs),
            "stdout": out,
            "stderr": err,
        }
        for where, text in scanned.items():
            assert_no_secret(where, text, secrets_in_use)
    finally:
        for t, fut in admin.delete_topics(list(created), request_timeout=15).items():
            try:
                fut.result(timeout=20)
            except Exception as exc:  # cleanup must not hide the test's own failure
                print(f"could not delete {t}: {exc}")
