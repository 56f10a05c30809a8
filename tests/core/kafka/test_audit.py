"""The audit trail lands in the cluster itself, in order, with secrets scrubbed."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from kafka_medic.audit import AuditLog, AuditRecord, AuditStatus, read_audit
from kafka_medic.sandbox.cluster import Sandbox

pytestmark = pytest.mark.kafka


def test_records_round_trip_and_topic_is_created(healthy_sandbox: Sandbox) -> None:
    conf = {"bootstrap.servers": healthy_sandbox.layout.bootstrap_servers}
    topic = f"__audit-{uuid.uuid4().hex[:6]}"
    log = AuditLog(conf, topic)
    first = AuditRecord("c1", "replace_broker", AuditStatus.STARTED, "replacing 3", brokers=(3,))
    second = AuditRecord(
        "c1", "replace_broker", AuditStatus.FINISHED, "replaced 3", brokers=(3,),
        details={"sasl_password": "hunter2", "nested": {"token": "abc", "ok": 1}, "key": SecretStr("s3cr3t")},
    )  # fmt: skip
    assert log.write(first) and log.write(second)
    records = read_audit(conf, topic)
    assert [r["status"] for r in records] == ["started", "finished"]
    assert records[1]["brokers"] == [3]
    raw = str(records)
    assert "hunter2" not in raw and "abc" not in raw and "s3cr3t" not in raw
    assert records[1]["details"]["nested"]["ok"] == 1


def test_unreachable_cluster_never_raises() -> None:
    log = AuditLog({"bootstrap.servers": "127.0.0.1:9"}, "__audit", timeout_s=2)
    assert log.write(AuditRecord("c", "x", AuditStatus.FAILED, "nope")) is False
