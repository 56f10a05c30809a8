"""Builders for small, hand-crafted snapshots used by the health-rule tests.

Everything defaults to a healthy 3-broker, 3-rack cluster so each test states only what it breaks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from kafka_medic.findings import Finding, Severity
from kafka_medic.policy import HealthPolicy
from kafka_medic.rules import Evaluation, evaluate
from kafka_medic.snapshot import (
    BROKER_COLUMNS,
    CONTROLLER_COLUMNS,
    LOG_DIR_COLUMNS,
    PARTITION_COLUMNS,
    REASSIGNMENT_COLUMNS,
    ClusterSnapshot,
    CollectionIssue,
    QuorumView,
    empty_frame,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

HEALTHY_METRICS: dict[str, float] = {
    "under_replicated_partitions": 0.0,
    "under_min_isr_partitions": 0.0,
    "offline_replicas": 0.0,
    "bytes_in_per_sec": 5e6,
    "bytes_out_per_sec": 1e7,
    "replication_bytes_in_per_sec": 1e7,
    "messages_in_per_sec": 5e3,
    "request_handler_idle": 0.8,
    "network_processor_idle": 0.85,
    "isr_shrinks_per_sec": 0.0,
    "isr_expands_per_sec": 0.0,
    "produce_p99_ms": 5.0,
    "produce_queue_p99_ms": 0.5,
    # unknown, as from an exporter config without RemoteTimeMs: the tests of the broker's own produce
    # time (total minus remote) set it
    "produce_remote_p99_ms": float("nan"),
    "fetch_consumer_p99_ms": 500.0,
    "fetch_follower_p99_ms": 500.0,
}


def broker(broker_id: int, rack: str | None = "a", **overrides: Any) -> dict[str, Any]:
    """One healthy broker row; override any column (alive=False, produce_p99_ms=..., ...)."""
    row: dict[str, Any] = {
        "broker_id": broker_id,
        "host": f"b{broker_id}.test",
        "port": 9092,
        "rack": rack,
        "alive": True,
        "metrics_ok": True,
        **HEALTHY_METRICS,
        "instance_id": f"i-{broker_id:04d}",
        "ec2_status": "ok",
        "ec2_events": "",
    }
    row.update(overrides)
    return row


def brokers(n: int, racks: Sequence[str | None] = ("a", "b", "c"), **overrides: Any) -> list[dict[str, Any]]:
    """``n`` healthy brokers with ids 1..n, racks round-robin."""
    return [broker(i, racks[(i - 1) % len(racks)], **overrides) for i in range(1, n + 1)]


def part(
    topic: str,
    partition: int,
    replicas: Sequence[int],
    isr: Sequence[int] | None = None,
    leader: int | None = None,
    min_isr: int = 2,
) -> dict[str, Any]:
    """One partition row; ISR defaults to all replicas, leader to the first ISR member (or -1)."""
    isr_t = tuple(replicas) if isr is None else tuple(isr)
    if leader is None:
        leader = isr_t[0] if isr_t else -1
    return {
        "topic": topic,
        "partition": partition,
        "leader": leader,
        "replicas": tuple(replicas),
        "isr": isr_t,
        "min_isr": min_isr,
    }


def spread_partitions(n: int, broker_ids: Sequence[int], rf: int = 3, topic: str = "t") -> list[dict[str, Any]]:
    """``n`` healthy partitions whose replicas rotate over ``broker_ids`` (consecutive ids)."""
    k = len(broker_ids)
    return [part(topic, p, [broker_ids[(p + j) % k] for j in range(rf)]) for p in range(n)]


def frame(rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    rows = list(rows)
    if not rows:
        return empty_frame(columns)
    return pd.DataFrame(rows, columns=list(columns))


def log_dir(
    broker_id: int, used: float = 0.3, total: float = 1e12, error: str | None = None, path: str = "/d1"
) -> dict[str, Any]:
    """A log-dir row at ``used`` share of ``total`` (NaN total allowed)."""
    return {
        "broker_id": broker_id,
        "path": path,
        "error": error,
        "total_bytes": total,
        "usable_bytes": total * (1.0 - used),
    }


def controller_row(node_id: int = 100, active: float = 1.0, ok: bool = True, offline: float = 0.0) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "metrics_ok": ok,
        "active_controller_count": active,
        "offline_partitions": offline,
        "fenced_brokers": 0.0,
        "active_brokers": 3.0,
    }


def snapshot(
    broker_rows: list[dict[str, Any]] | None = None,
    partitions: list[dict[str, Any]] | None = None,
    log_dirs: list[dict[str, Any]] | None = None,
    controller: list[dict[str, Any]] | None = None,
    reassignments: list[dict[str, Any]] | None = None,
    issues: list[CollectionIssue] | None = None,
    default_replication_factor: int = 3,
    default_min_isr: int = 2,
    taken_at: datetime = T0,
    quorum: QuorumView | None = None,
) -> ClusterSnapshot:
    """A snapshot of a small cluster: 3 healthy brokers and 6 healthy RF3 partitions by default."""
    b_rows = brokers(3) if broker_rows is None else broker_rows
    p_rows = spread_partitions(6, [b["broker_id"] for b in b_rows]) if partitions is None else partitions
    return ClusterSnapshot(
        cluster="test",
        brokers=frame(b_rows, BROKER_COLUMNS),
        partitions=frame(p_rows, PARTITION_COLUMNS),
        log_dirs=frame(log_dirs or [], LOG_DIR_COLUMNS),
        reassignments=frame(reassignments or [], REASSIGNMENT_COLUMNS),
        controller=frame(controller or [], CONTROLLER_COLUMNS),
        issues=list(issues or []),
        default_replication_factor=default_replication_factor,
        default_min_isr=default_min_isr,
        taken_at=taken_at,
        quorum=quorum,
    )


def run(snap: ClusterSnapshot, policy: HealthPolicy | None = None, **kwargs: Any) -> Evaluation:
    return evaluate(snap, policy or HealthPolicy(), **kwargs)


def by_rule(ev: Evaluation, rule: str) -> list[Finding]:
    return [f for f in ev.findings if f.rule == rule]


def one(ev: Evaluation, rule: str) -> Finding:
    found = by_rule(ev, rule)
    assert len(found) == 1, f"expected one {rule} finding, got {[f.summary for f in found]}"
    return found[0]


def problems(ev: Evaluation) -> list[Finding]:
    """WARNING and CRITICAL findings (INFO is not a problem)."""
    return [f for f in ev.findings if f.severity in (Severity.WARNING, Severity.CRITICAL)]
