"""The Kafka APIs librdkafka lacks, through kafka-python 3.x: KIP-455 partition reassignment
(AlterPartitionReassignments / ListPartitionReassignments) and DescribeLogDirs.

Only these calls go through kafka-python; everything else uses confluent-kafka. Results come back
as plain frames and dicts so the pure core never sees a client object.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from typing import Any

import pandas as pd
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient

from kafka_medic.snapshot import LOG_DIR_COLUMNS, REASSIGNMENT_COLUMNS, empty_frame

PartitionKey = tuple[str, int]


class _WithholdClientConfig(logging.Filter):
    """kafka-python logs its whole client config -- SASL password included -- at DEBUG when an admin
    client starts. Rewrite that one record so credentials never reach a log handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Starting KafkaAdminClient with configuration"):
            record.msg, record.args = "Starting KafkaAdminClient (configuration withheld: it holds credentials)", ()
        return True


logging.getLogger("kafka.admin.client").addFilter(_WithholdClientConfig())


@contextmanager
def kafka_python_admin(conf: Mapping[str, Any], request_timeout_ms: int = 15_000):
    """A KafkaAdminClient that is always closed (it owns sockets and a background thread)."""
    admin = KafkaAdminClient(**{"request_timeout_ms": request_timeout_ms, "client_id": "kafka-medic", **conf})
    try:
        yield admin
    finally:
        admin.close()


def list_reassignments(admin: KafkaAdminClient, timeout_ms: int = 15_000) -> pd.DataFrame:
    """In-progress reassignments: topic, partition, replicas, adding, removing."""
    raw = admin.list_partition_reassignments(timeout_ms=timeout_ms)
    if not raw:
        return empty_frame(REASSIGNMENT_COLUMNS)
    rows = [
        (tp.topic, int(tp.partition), tuple(v["replicas"]), tuple(v["adding_replicas"]), tuple(v["removing_replicas"]))
        for tp, v in raw.items()
    ]
    return pd.DataFrame(rows, columns=list(REASSIGNMENT_COLUMNS)).sort_values(["topic", "partition"], ignore_index=True)


def alter_reassignments(
    admin: KafkaAdminClient, targets: Mapping[PartitionKey, Iterable[int] | None], timeout_ms: int = 30_000
) -> dict[PartitionKey, str]:
    """Submit target replica lists (None cancels). Returns {partition: error name} for refusals."""
    req = {TopicPartition(t, p): (list(r) if r is not None else None) for (t, p), r in targets.items()}
    result = admin.alter_partition_reassignments(req, timeout_ms=timeout_ms)
    errors: dict[PartitionKey, str] = {}
    for tp, err in result.items():
        if err is not None:
            errors[(tp.topic, tp.partition)] = getattr(err, "__name__", str(err))
    missing = set(req) - set(result)
    for tp in missing:
        errors[(tp.topic, tp.partition)] = "NoResponseForPartition"
    return errors


def describe_log_dirs(
    admin: KafkaAdminClient, brokers: Iterable[int]
) -> tuple[pd.DataFrame, dict[tuple[str, int, int], float]]:
    """Log dirs per broker (usage, offline dirs) and replica sizes keyed by (topic, partition, broker).

    Only ask live brokers: a dead broker would make the whole call wait for its timeout.
    """
    ids = sorted(set(brokers))
    if not ids:
        return empty_frame(LOG_DIR_COLUMNS), {}
    raw = admin.describe_log_dirs(brokers=ids)
    rows = []
    sizes: dict[tuple[str, int, int], float] = {}
    for entry in raw:
        broker = int(entry["broker"])
        for d in entry.get("log_dirs", []):
            code = int(d.get("error_code", 0))
            total = d.get("total_bytes", -1)
            usable = d.get("usable_bytes", -1)
            rows.append(
                (
                    broker,
                    d.get("log_dir"),
                    None if code == 0 else f"error_code {code}",
                    float(total) if total is not None and total >= 0 else math.nan,
                    float(usable) if usable is not None and usable >= 0 else math.nan,
                )
            )
            for t in d.get("topics", []):
                for p in t.get("partitions", []):
                    if p.get("is_future_key"):
                        continue  # a replica being moved between dirs; the current one counts
                    sizes[(t["name"], int(p["partition_index"]), broker)] = float(p.get("partition_size", 0))
    frame = pd.DataFrame(rows, columns=list(LOG_DIR_COLUMNS)) if rows else empty_frame(LOG_DIR_COLUMNS)
    return frame, sizes
