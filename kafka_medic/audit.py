"""The audit trail: every action kafka-medic plans, refuses, starts, finishes, fails or skips.

Records are JSON, written with acks=all to an audit topic *in the cluster itself* (configurable,
created if missing) so the trail lives next to the data it describes and survives the
orchestrator; each record is also returned for a Prefect artifact. Writing the audit must never
hide the action's own outcome: if the cluster cannot take the record (it may be the very thing that
is broken), the failure is logged and reported in the result, and the action goes on.

Secrets never reach a record: ``details`` are scrubbed of anything that looks like a credential.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from kafka_medic.monitor.cluster_reads import make_admin

log = logging.getLogger(__name__)

_SECRET_KEYS = ("password", "secret", "token", "sasl.password", "ssl.key.password", "credentials")


class AuditStatus(StrEnum):
    PLANNED = "planned"
    REFUSED = "refused"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    SKIPPED = "skipped"  # lock busy, cooldown, maintenance, observe mode
    APPROVAL_REQUESTED = "approval_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAGED = "paged"


@dataclass(frozen=True)
class AuditRecord:
    cluster: str
    action: str  # e.g. "replace_broker", "reassign", "preferred_leader_election"
    status: AuditStatus
    summary: str
    brokers: tuple[int, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    actor: str = "kafka-medic"  # "automation" or the human/run that asked
    run_id: str | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    host: str = field(default_factory=socket.gethostname)

    def to_json(self) -> str:
        d = asdict(self)
        d["status"] = self.status.value
        d["brokers"] = list(self.brokers)
        d["details"] = scrub(self.details)
        return json.dumps(d, default=str, sort_keys=True)


def scrub(value: Any) -> Any:
    """Replace the value of any key that names a secret; recurse through dicts and lists."""
    if isinstance(value, dict):
        return {
            k: ("**********" if any(s in str(k).lower() for s in _SECRET_KEYS) else scrub(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if hasattr(value, "get_secret_value"):
        return "**********"
    return value


#: The actor of everything automation starts (health check -> remediation); a human's approval is
#: recorded as "<approver> (approved kafka-medic automation)".
AUTOMATION_ACTOR = "kafka-medic automation"


def is_automation(actor: str) -> bool:
    """True for actions automation started (approved ones included): their completion is news to on-call."""
    return AUTOMATION_ACTOR in actor


def default_actor() -> str:
    return os.environ.get("KAFKA_MEDIC_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"


def audit_topic_shape(brokers: int) -> tuple[int, int]:
    """(replication factor, min ISR) of a new audit topic on a cluster of ``brokers``: RF 3 where it
    can, and always one replica of headroom, so losing any one broker never makes the trail (and
    with it every destructive step, which it gates) unwritable."""
    rf = min(3, max(1, brokers))
    return rf, max(1, min(2, rf - 1))


class AuditLog:
    """Writes records to one cluster's audit topic. Cheap to create; use one per flow run."""

    def __init__(self, client_conf: dict[str, Any], topic: str, *, timeout_s: float = 15.0) -> None:
        self.conf = client_conf
        self.topic = topic
        self.timeout_s = timeout_s
        self._producer: Producer | None = None
        self._ensured = False
        # prepare() may run in one worker thread while write() runs in another
        self._setup_lock = threading.Lock()

    def _ensure_topic(self) -> None:
        if self._ensured:
            return
        admin = make_admin(self.conf)
        md = admin.list_topics(timeout=self.timeout_s)
        if self.topic not in md.topics:
            # RF 3 where it can, and always one replica of headroom (min ISR < RF): since the
            # "started" record gates every destructive step, a trail that one broker's death makes
            # unwritable would stop automation from healing that very broker. (Seen: the topic made
            # lazily during an outage, RF 2 / min ISR 2 with a replica on the dead broker.) Better
            # still, ``kafka-medic bootstrap`` creates it while the cluster is healthy.
            rf, min_isr = audit_topic_shape(len(md.brokers))
            fut = admin.create_topics(
                [NewTopic(self.topic, 1, rf, config={"min.insync.replicas": str(min_isr), "retention.ms": "-1"})],
                request_timeout=self.timeout_s,
            )[self.topic]
            try:
                fut.result(timeout=self.timeout_s + 2)
            except Exception as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
        self._ensured = True

    def _setup(self) -> Producer:
        with self._setup_lock:
            self._ensure_topic()
            if self._producer is None:
                # Not idempotent: an idempotent producer first needs a producer id, which a KRaft
                # broker takes from the CONTROLLER -- with the controller gone the trail could not
                # be written exactly when it matters most (the stand-down and the page of a
                # controller outage; seen: "flush timed out"). acks=all and one request in flight
                # keep every record durable and in order; a retry may duplicate a record, which
                # its unique ``id`` identifies.
                self._producer = Producer(
                    {
                        **self.conf,
                        "acks": "all",
                        "enable.idempotence": False,
                        "max.in.flight.requests.per.connection": 1,
                        "message.timeout.ms": int(self.timeout_s * 1000),
                    }
                )
            return self._producer

    def ensure_topic(self) -> None:
        """Create the audit topic now if it is missing (raises on failure): at bootstrap, while the
        cluster is healthy, rather than at the first write, which comes during an outage."""
        with self._setup_lock:
            self._ensure_topic()

    def prepare(self) -> bool:
        """Check the topic and start the producer now (it connects in the background), so a later
        ``write`` on an action's critical path costs one acks=all round trip instead of ~1 s of
        set-up. Never raises; a failure here is retried by ``write``."""
        try:
            self._setup()
            return True
        except Exception as exc:
            log.warning("audit log for %s not prepared (will retry on write): %s", self.topic, exc)
            return False

    def write(self, record: AuditRecord) -> bool:
        """Append ``record`` (acks=all); True if the cluster acknowledged it. Never raises."""
        try:
            producer = self._setup()
            errors: list[str] = []
            producer.produce(
                self.topic,
                key=record.cluster.encode(),
                value=record.to_json().encode(),
                on_delivery=lambda err, _msg: errors.append(str(err)) if err else None,
            )
            remaining = producer.flush(self.timeout_s)
            if remaining or errors:
                log.error("audit record %s not acknowledged: %s", record.id, errors or "flush timed out")
                return False
            return True
        except Exception as exc:
            log.error("audit record %s could not be written to %s: %s", record.id, self.topic, exc)
            return False


def read_audit(client_conf: dict[str, Any], topic: str, *, timeout_s: float = 15.0) -> list[dict[str, Any]]:
    """Every record in the audit topic (for tests and `kafka-medic audit`), oldest first."""
    consumer = Consumer(
        {**client_conf, "group.id": f"kafka-medic-audit-reader-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False}
    )
    try:
        md = consumer.list_topics(topic, timeout=timeout_s)
        if topic not in md.topics or md.topics[topic].error is not None:
            return []
        out: list[dict[str, Any]] = []
        for p in md.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, p, low)])
            pos = low
            deadline = time.monotonic() + timeout_s
            while pos < high and time.monotonic() < deadline:
                for m in consumer.consume(500, timeout=1.0):
                    if m.error() is None:
                        out.append(json.loads(m.value()))
                        pos = m.offset() + 1
        return sorted(out, key=lambda r: r.get("at", ""))
    finally:
        consumer.close()


def brief(value: Any, limit: int = 50) -> Any:
    """The result with long lists/dicts cut (an audit record must stay far below Kafka's 1 MB)."""
    if isinstance(value, dict):
        items = list(value.items())
        out = {k: brief(v, limit) for k, v in items[:limit]}
        if len(items) > limit:
            out["..."] = f"{len(items) - limit} more"
        return out
    if isinstance(value, list):
        more = [f"... {len(value) - limit} more"] if len(value) > limit else []
        return [brief(v, limit) for v in value[:limit]] + more
    return value
