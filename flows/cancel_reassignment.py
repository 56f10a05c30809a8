"""``cancel-reassignment``: stop partition moves in flight, reverting them -- never by an unclean election.

Reverts use KIP-455 ``None`` targets, refusing any partition whose revert would need an unclean
leader election; kafka-medic's own moves also get their exact original replica order back (KRaft
restores the set, not always the order). If a reassign run holds the lock, only the cancellation
is submitted: that run sees its moves reverted, stops starting new ones and removes its own
throttles. Otherwise this flow also removes the journal's throttles.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from blocks.load import load_cluster
from kafka_medic.audit import AuditStatus
from kafka_medic.errors import ActionFailed, ClusterBusy, SafetyError
from kafka_medic.executor import ClusterOps, JournalStore, Ledger, cancel_reassignments
from kafka_medic.executor.isr import capped
from kafka_medic.executor.transient import call_with_retries
from kafka_medic.maintenance.election import PartitionKey, parse_partition
from kafka_medic.params import PartitionNames
from kafka_medic.reports.reassign import CancelReport
from tasks.audit import RunAudit
from tasks.locks import LockHandle, cluster_lock
from tasks.state import journal_store

ACTION = "cancel_reassignment"


class CancelParams(BaseModel):
    """Which moves to cancel (the Prefect UI form of the cancel-reassignment flow)."""

    model_config = ConfigDict(extra="forbid")

    partitions: PartitionNames = Field(
        None,
        description='Partitions as "topic-partition"; unset: every move kafka-medic started (its journal).',
    )
    include_foreign: bool = Field(
        False,
        description="Also cancel reassignments kafka-medic did not start (with empty `partitions`: all of them).",
    )
    allow_partial: bool = Field(
        False, description="Cancel the safe ones even if some partitions' revert would need an unclean election."
    )
    timeout_s: float = Field(300.0, gt=0, le=86_400, description="How long to wait for Kafka to revert them.")
    lock_wait_s: float = Field(0.0, ge=0, le=3600, description="Wait this long for the cluster lock.")
    actor: str = Field("manual", min_length=1, max_length=200, description="Who asked (audit trail).")
    reason: str = Field("", max_length=1000, description="Why (audit trail).")


@flow(name="cancel-reassignment", retries=0)
async def cancel_reassignment(cluster: str, params: CancelParams) -> CancelReport:
    """Cancel moves in flight: revert them to their original replicas (never by an unclean election).

    Default: every move kafka-medic started (from its journal). Holding the cluster lock (no
    reassign run active), it also removes the journal's throttles once the reverts are done;
    otherwise the active run notices the reverts, stops and cleans its own throttles.
    """
    block = await load_cluster(cluster)
    requested = [parse_partition(p) for p in params.partitions or []]
    audit = RunAudit(block, ACTION, actor=params.actor)
    store = journal_store()
    with ClusterOps(block) as ops:
        try:
            try:
                async with cluster_lock(cluster, wait_s=params.lock_wait_s) as lock:
                    return await _cancel(ops, store, cluster, params, requested, audit, lock)
            except ClusterBusy:
                get_run_logger().warning("[%s] a reassign run holds the lock: only submitting the reverts", cluster)
                return await _cancel(ops, store, cluster, params, requested, audit, None)
        except SafetyError as exc:  # foreign moves, or a revert that would need an unclean election
            await audit(AuditStatus.REFUSED, str(exc), params=params.model_dump())
            return CancelReport(cluster=cluster, status="refused", summary=str(exc), held_lock=False, result={},
                                audit=audit.records)  # fmt: skip


async def _cancel(
    ops: ClusterOps, store: JournalStore, cluster: str, params: CancelParams, requested: list[PartitionKey],
    audit: RunAudit, lock: LockHandle | None,
) -> CancelReport:  # fmt: skip
    journal = await store.load(cluster)
    ours = journal.keys if journal is not None else set()
    state = await call_with_retries(ops.state, what="reading the cluster state")
    running = state.reassigning_keys
    if requested:
        foreign = sorted(k for k in requested if k in running and k not in ours)
        if foreign and not params.include_foreign:
            raise SafetyError(
                f"refusing to cancel reassignments kafka-medic did not start: "
                f"{capped([f'{t}-{p}' for t, p in foreign])}; set include_foreign to cancel them anyway"
            )
        keys = requested
    else:
        keys = sorted(running if params.include_foreign else ours & running)
    details = {"params": params.model_dump(), "partitions": [f"{t}-{p}" for t, p in keys][:200]}
    held = lock is not None
    if not keys:
        summary = "nothing to cancel: no matching reassignment is in progress"
        removed = None
        if held and journal is not None and not journal.empty:
            removed = await _clean_journal(ops, store, journal)
            summary += f"; removed leftover throttles ({removed})"
        await audit(AuditStatus.FINISHED, summary, **details)
        return CancelReport(
            cluster=cluster, status="nothing_to_do", summary=summary, held_lock=held, result={"requested": 0},
            throttles_removed=None if removed is None else {"summary": removed}, audit=audit.records,
        )  # fmt: skip
    await audit(AuditStatus.STARTED, f"cancelling {len(keys)} reassignment(s)", **details)
    # Our own moves go back to their exact original order (preferred leader included).
    originals = {(m.topic, m.partition): m.old_replicas for m in (journal.moves if journal else ())}
    result = await cancel_reassignments(
        ops, keys, allow_partial=params.allow_partial, timeout_s=params.timeout_s, restore_order=originals
    )
    removed = None
    if lock is not None and journal is not None:
        lock.ensure_held()
        fresh = await store.load(cluster)
        if fresh is not None:
            removed = await _clean_journal(ops, store, fresh)
    summary = (
        f"{len(result.cancelled)} cancelled, {len(result.reverted)} reverted, {len(result.still_reverting)} "
        f"still reverting, {len(result.refused_unclean)} refused (unclean revert), "
        f"{len(result.not_in_progress)} not in progress"
    )
    if not held:
        summary += "; the active reassign run removes its own throttles"
    ok = not result.still_reverting and not result.errors
    await audit(AuditStatus.FINISHED if ok else AuditStatus.FAILED, summary, **details, result=result.to_dict())
    await acreate_markdown_artifact(
        key=f"cancel-reassignment-{cluster}",
        markdown=f"# Cancel reassignments on `{cluster}`\n\n{summary}\n\n```\n{result.to_dict()}\n```",
    )
    get_run_logger().info("[%s] %s", cluster, summary)
    if not ok:
        raise ActionFailed(f"cancellation incomplete: {summary}; errors: {result.errors}")
    return CancelReport(
        cluster=cluster, summary=summary, held_lock=held, result=result.to_dict(),
        throttles_removed=None if removed is None else {"summary": removed}, audit=audit.records,
    )  # fmt: skip


async def _clean_journal(ops: ClusterOps, store: JournalStore, journal: Any) -> str:
    """Remove the journal's throttles that no running move needs (all of them once reverted)."""
    ledger = Ledger(ops, store, journal)
    state = await call_with_retries(ops.state, what="reading the cluster state")
    released = await ledger.release(state)
    return released.summary()
