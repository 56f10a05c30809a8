"""What every maintenance flow shares: the audit trail, the cluster lock, reads, and waits.

Shared rules (why): every flow that changes the cluster takes the cluster's mutate lock
(:func:`kafka_medic.coordination.acluster_lock`), so a manual action never overlaps automatic
healing or another operator; every one defaults to ``dry_run=True``, because a form submitted with
its defaults must never change a production cluster by surprise; and every step is written to the
audit trail (planned / refused / started / finished / failed / skipped) in the cluster itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import pandas as pd
from confluent_kafka import ElectionType, TopicPartition
from prefect import get_run_logger
from prefect.context import FlowRunContext
from pydantic import Field

from blocks.kafka_cluster import KafkaCluster
from kafka_medic import coordination
from kafka_medic.audit import AuditLog, AuditRecord, AuditStatus, default_actor
from kafka_medic.cluster_reads import (
    describe_partitions,
    make_admin,
    read_metadata,
)
from kafka_medic.errors import SafetyError
from kafka_medic.maintenance.election import PartitionKey, leaders_on_preferred
from kafka_medic.notify import FAILURE_STATUSES, anotice, cluster_secrets

LOCK_WAIT = Field(
    30.0, ge=0, le=3600, description="How long to wait for the cluster's mutate lock (another action running)."
)


quiet_clients = logging.getLogger("kafka_medic.maintenance.clients")
quiet_clients.setLevel(logging.CRITICAL)


def current_run_id() -> str | None:
    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx is not None and ctx.flow_run is not None else None


class Audit:
    """Writes one action's audit records to the cluster's audit topic and keeps them for the report.

    Writing never raises (see :mod:`kafka_medic.audit`): an unwritable trail is logged and noted in
    the record (``written: false``), and the action's own outcome is what the flow reports.
    """

    def __init__(self, block: KafkaCluster, action: str) -> None:
        self.cluster = block.name
        self.action = action
        self.actor = default_actor()
        self.run_id = current_run_id()
        # Quiet client logger: the audit producer outlives a broker restart or the whole cluster (tests)
        # and librdkafka would print every reconnect; a failed write is reported by AuditLog itself.
        self._log = AuditLog({**block.confluent_config(), "logger": quiet_clients}, block.audit_topic)
        self._secrets = cluster_secrets(block)
        self.records: list[dict[str, Any]] = []

    async def __call__(
        self, status: AuditStatus, summary: str, brokers: Iterable[int] = (), details: dict[str, Any] | None = None
    ) -> None:
        record = AuditRecord(
            cluster=self.cluster, action=self.action, status=status, summary=summary,
            brokers=tuple(int(b) for b in brokers), details=details or {}, actor=self.actor, run_id=self.run_id,
        )  # fmt: skip
        written = await asyncio.to_thread(self._log.write, record)
        self.records.append({"at": record.at, "status": status.value, "summary": summary, "written": written})
        await anotice(self.cluster, self.action, status.value, summary, brokers=record.brokers,
                      secrets=self._secrets, statuses=FAILURE_STATUSES)  # fmt: skip
        get_run_logger().info("[audit %s] %s: %s", status.value, self.action, summary)


@asynccontextmanager
async def cluster_lock(cluster: str, wait_s: float) -> AsyncIterator[coordination.LockHandle]:
    """The cluster's mutate lock, its limits created first if missing (a cluster made in the UI has none)."""
    await coordination.aensure_cluster_limits(cluster)
    async with coordination.acluster_lock(cluster, wait_s=wait_s) as lock:
        yield lock


async def read_partitions(block: KafkaCluster, timeout_s: float = 15.0) -> pd.DataFrame:
    """Every partition's leader, replicas and ISR (one Metadata request)."""
    admin = make_admin(block.confluent_config())
    return await asyncio.to_thread(describe_partitions, admin, None, timeout_s)


def _registered_in_metadata(block: KafkaCluster, broker_id: int) -> tuple[bool, str]:
    admin = make_admin(block.confluent_config())
    brokers, _parts = read_metadata(admin, 10.0)
    if broker_id not in {b.broker_id for b in brokers}:
        return False, f"broker {broker_id} is not registered yet"
    return True, f"broker {broker_id} registered"


async def wait_back_in_sync(block: KafkaCluster, *, broker_id: int | None, timeout_s: float) -> float:
    """Wait until ``broker_id`` is registered and every partition's ISR is its full replica set.

    The ISR part is :func:`flows.verify_isr.wait_isr_full` (leader, full ISR and min ISR per
    partition), the check every remediation ends with. Raises a MedicError on timeout (nothing
    more is restarted); returns the seconds waited.
    """
    from flows.verify_isr import wait_isr_full

    t0 = time.monotonic()
    deadline = t0 + timeout_s
    if broker_id is not None:
        why = "not checked yet"
        while True:
            try:
                ok, why = await asyncio.to_thread(_registered_in_metadata, block, broker_id)
            except Exception as exc:  # a broker just restarted: transient client errors are expected
                ok, why = False, f"metadata read failed: {exc}"
            if ok:
                break
            if time.monotonic() >= deadline:
                raise SafetyError(f"not back in sync after {timeout_s:.0f} s ({why}); stopping here")
            await asyncio.sleep(1.0)
    await wait_isr_full(block, timeout_s=max(1.0, deadline - time.monotonic()), poll_s=1.0)
    return time.monotonic() - t0


async def elect_preferred(block: KafkaCluster, keys: list[PartitionKey], timeout_s: float) -> dict[str, Any]:
    """Ask the controller for a preferred election on ``keys`` and wait until metadata shows it."""
    if not keys:
        return {"requested": 0, "moved": 0, "errors": {}, "not_moved": []}
    # Timeouts go in the client config: confluent-kafka 2.x's elect_leaders rejects its own
    # request_timeout keyword (SystemError "more argument specifiers than keyword list entries").
    admin = make_admin({**block.confluent_config(), "socket.timeout.ms": int(min(timeout_s, 60.0) * 1000)})
    tps = [TopicPartition(t, p) for t, p in keys]

    def call() -> dict[str, str]:
        result = admin.elect_leaders(ElectionType.PREFERRED, tps).result(timeout=timeout_s + 5)
        errors: dict[str, str] = {}
        for tp, err in result.items():
            if err is not None and "ELECTION_NOT_NEEDED" not in str(err):
                errors[f"{tp.topic}-{tp.partition}"] = str(err)
        return errors

    errors = await asyncio.to_thread(call)
    deadline = time.monotonic() + timeout_s
    done: set[PartitionKey] = set()
    while True:
        done = leaders_on_preferred(await read_partitions(block), keys)
        if len(done) == len(keys) or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.5)
    not_moved = sorted(f"{t}-{p}" for t, p in set(keys) - done)
    return {"requested": len(keys), "moved": len(done), "errors": errors, "not_moved": not_moved}


async def load_block(cluster: str) -> KafkaCluster:
    from flows.health_check import load_cluster

    return await load_cluster(cluster)


def partition_names(keys: Iterable[PartitionKey], limit: int = 20) -> str:
    names = [f"{t}-{p}" for t, p in keys]
    more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
