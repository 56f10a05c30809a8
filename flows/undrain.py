"""``undrain-broker``: put back the replicas a drain moved off a broker (after the hardware work is done).

Uses the undo stored by ``drain-broker`` (exact previous replica lists, preferred leader included)
and the same executor as ``reassign`` (safety check on a fresh snapshot, throttles, journal), under
the cluster lock; then verifies the moved partitions' ISR. Partitions changed since the drain are
skipped and listed, never overwritten: undoing must never undo someone else's work.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from blocks.kafka_cluster import KafkaCluster
from blocks.load import load_cluster
from kafka_medic.audit import AuditStatus
from kafka_medic.errors import ActionFailed, ClusterBusy, SafetyError
from kafka_medic.executor import ClusterOps, ExecutionOptions
from kafka_medic.maintenance.rollback import replica_map, undrain_moves
from kafka_medic.params import LOCK_WAIT
from kafka_medic.planner import Move
from kafka_medic.reports.drain import DrainReport, drain_markdown
from tasks.audit import RunAudit
from tasks.kafka import read_partitions
from tasks.locks import cluster_lock
from tasks.reassign import execute_task
from tasks.state import cluster_state, journal_store
from tasks.verify import wait_isr_full


class UndrainParams(BaseModel):
    """Put back the replicas a drain moved off a broker (after the hardware work is done)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    broker_id: int = Field(..., ge=0, description="The drained broker to fill again.")
    dry_run: bool = Field(True, description="Only show which partitions would move back; move nothing.")
    timeout_s: float = Field(
        6 * 3600.0, ge=5, le=7 * 86_400, description="How long the moves may take before the run stops waiting."
    )
    reason: str = Field("", max_length=1000, description="Why (goes to the audit trail).")
    lock_wait_s: float = LOCK_WAIT


@flow(name="undrain-broker", timeout_seconds=7 * 86_400, retries=0)
async def undrain_broker(cluster: str, params: UndrainParams) -> DrainReport:
    """Undo a drain: move each partition the drain took off the broker back to its old replica list.

    Args:
        cluster: Name of the cluster (its KafkaCluster block), e.g. "sandbox".
        params: The drained broker, dry run or not, time limits.
    """
    block = await load_cluster(cluster)
    b = params.broker_id
    audit = RunAudit(block, "undrain_broker", brokers=[b])
    state = cluster_state(cluster)
    entries = await state.undo("drain", b)
    report = DrainReport(action="undrain", cluster=cluster, broker_id=b, dry_run=params.dry_run, moves=0, summary="")
    if entries is None:
        report.status = "skipped"
        report.summary = f"no drain of broker {b} is recorded for cluster {cluster!r}; nothing to undo"
        await audit(AuditStatus.SKIPPED, report.summary, why="no drain recorded")
        return await _publish(report, audit)
    moves, skipped = undrain_moves(entries, replica_map(await read_partitions(block)), b)
    report.moves, report.skipped = len(moves), skipped
    report.summary = f"{len(moves)} partition(s) to move back onto broker {b}, {len(skipped)} skipped"
    report.plan = {"moves": [m.to_dict() for m in moves], "unplaceable": []}
    if params.dry_run:
        await audit(AuditStatus.PLANNED, f"dry run: {report.summary}", skipped=skipped[:200])
    elif not moves:
        await state.clear_undo("drain", b)
        report.status, report.summary = "nothing_to_do", f"nothing to move back onto broker {b}"
        await audit(AuditStatus.SKIPPED, report.summary, skipped=skipped)
    else:
        try:
            await _move_back(block, params, moves, report, audit)
        except ClusterBusy as exc:
            report.status, report.summary = "busy", await audit.busy(exc)
            return await _publish(report, audit)
        except SafetyError as exc:  # refused before anything moved
            report.status, report.summary = "refused", f"undrain of broker {b} refused: {exc}"
            await audit(AuditStatus.REFUSED, report.summary)
            return await _publish(report, audit)
        except Exception as exc:
            await audit(AuditStatus.FAILED, f"undrain of broker {b} failed: {exc}")
            raise
        await state.clear_undo("drain", b)
        report.status = "completed"
        report.summary = f"{len(moves)} partition(s) moved back onto broker {b}, {len(skipped)} skipped"
        await audit(AuditStatus.FINISHED, report.summary, skipped=skipped[:200])
    return await _publish(report, audit)


async def _move_back(
    block: KafkaCluster, params: UndrainParams, moves: list[Move], report: DrainReport, audit: RunAudit
) -> None:
    rate = int(block.policy.throttle_bytes_per_sec)
    options = ExecutionOptions(throttle_bytes_per_sec=rate, timeout_s=params.timeout_s)
    async with cluster_lock(block.name, wait_s=params.lock_wait_s) as lock:
        await audit(AuditStatus.STARTED, report.summary, reason=params.reason)
        with ClusterOps(block) as ops:
            result = await execute_task(
                ops, journal_store(), moves, block.name, audit.run_id or "local", audit.actor, options, lock
            )
        report.execution = result.to_dict()
        if not result.ok:
            raise ActionFailed(f"moving replicas back onto broker {params.broker_id}: {result.summary()}")
        keys = [(m.topic, m.partition) for m in moves]
        await wait_isr_full(block, partitions=keys, timeout_s=block.policy.verify_timeout_s)


async def _publish(report: DrainReport, audit: RunAudit) -> DrainReport:
    report.audit = audit.records
    await acreate_markdown_artifact(key=f"undrain-{report.cluster}-{report.broker_id}", markdown=drain_markdown(report))
    get_run_logger().info("[%s] %s", report.cluster, report.summary)
    return report
