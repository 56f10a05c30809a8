"""``drain-broker``: move every replica off a broker, keeping the exact undo for ``undrain-broker``.

Planning and execution are the ``reassign`` flow's (rack-aware minimal plan, safety check, cluster
lock, throttles, journal, ISR verification); this flow adds what an operator expects of a drain:
the undo -- each moved partition's previous replica list -- kept in the cluster's state (a Prefect
Variable). It is saved twice: as planned, under the lock *before the first move* (so Ctrl-C, a
killed process or a broker dying mid-drain never loses the way back), and when the drain ends,
narrowed to what really moved (taken from the cluster before and after, so exact even for a drain
that stopped halfway). Running an interrupted drain again merges its undo with the earlier one.
Busy and refused complete the run with that status; moves that did not all finish fail it; an
interruption (Ctrl-C, SIGTERM, a cancelled run) still records the undo and ends the audit trail.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from blocks.kafka_cluster import KafkaCluster
from blocks.load import load_cluster
from flows.reassign import ReassignParams, reassign
from kafka_medic.audit import AuditStatus
from kafka_medic.errors import ActionFailed
from kafka_medic.executor import ClusterOps
from kafka_medic.maintenance.election import PartitionKey
from kafka_medic.maintenance.rollback import merge_rollback, moved_only, replica_map, rollback_entries
from kafka_medic.params import LOCK_WAIT
from kafka_medic.reports.drain import DrainReport, drain_markdown
from kafka_medic.reports.reassign import ReassignmentIncomplete, ReassignReport
from kafka_medic.waiting import finish_shielded
from tasks.audit import RunAudit
from tasks.kafka import read_partitions
from tasks.reassign import estimate_drain
from tasks.state import cluster_state


class DrainParams(BaseModel):
    """Move every replica off one broker (decommission, hardware work)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    broker_id: int = Field(..., ge=0, description="The broker to empty.")
    dry_run: bool = Field(True, description="Only plan and show the moves and their cost; move nothing.")
    exclude: list[int] = Field(
        default_factory=list, description="Brokers that must not receive replicas (e.g. next to be drained)."
    )
    timeout_s: float = Field(
        6 * 3600.0, ge=5, le=7 * 86_400, description="How long the moves may take before the run stops waiting."
    )
    throttle_bytes_per_sec: int | None = Field(
        None, ge=1024, le=10_000_000_000, description="Replication throttle per broker (bytes/s); empty: the policy's."
    )
    reason: str = Field("", max_length=1000, description="Why (goes to the audit trail).")
    lock_wait_s: float = LOCK_WAIT


async def _record_undo(
    block: KafkaCluster, before: dict[PartitionKey, tuple[int, ...]], b: int, run_id: str | None, report: DrainReport
) -> None:
    """Store the undo of whatever the drain moved (all, part or nothing), merged with what was saved
    before the first move and by earlier drains of ``b``; never masks the drain's error."""
    try:
        state = cluster_state(block.name)
        after = replica_map(await read_partitions(block))
        exact = rollback_entries(before, after, b)
        entries = moved_only(merge_rollback(await state.undo("drain", b) or [], exact), after)
        if entries:
            report.rollback_stored_in = await state.save_undo("drain", b, entries, run_id)
        else:
            await state.clear_undo("drain", b)  # nothing moved (or all put back): nothing to undo
        report.moves = len(exact)
        report.remaining_on_broker = sum(b in reps for reps in after.values())
    except Exception as exc:
        get_run_logger().error("could not record the undo of the drain of broker %s: %s", b, exc)


@flow(name="drain-broker", timeout_seconds=7 * 86_400, retries=0)
async def drain_broker(cluster: str, params: DrainParams) -> DrainReport:
    """Move every replica off ``params.broker_id``; the exact undo is stored for ``undrain-broker``.

    Args:
        cluster: Name of the cluster (its KafkaCluster block), e.g. "sandbox".
        params: The broker to empty, dry run or not, brokers to avoid, time limits.
    """
    block = await load_cluster(cluster)
    b = params.broker_id
    audit = RunAudit(block, "drain_broker", brokers=[b])
    request = ReassignParams(
        kind="drain", brokers=[b], exclude=params.exclude, dry_run=params.dry_run, timeout_s=params.timeout_s,
        throttle_bytes_per_sec=params.throttle_bytes_per_sec,
        lock_wait_s=params.lock_wait_s, actor=audit.actor, reason=params.reason, record_drain_undo=True,
    )  # fmt: skip
    report = DrainReport(action="drain", cluster=cluster, broker_id=b, dry_run=params.dry_run, moves=0, summary="")
    before = {} if params.dry_run else replica_map(await read_partitions(block))
    if not params.dry_run:
        with ClusterOps(block) as ops:
            ops.known_brokers = await cluster_state(cluster).known_brokers()
            cost = await estimate_drain(ops, b, list(params.exclude), block.policy)
        await audit(AuditStatus.STARTED, f"draining broker {b}" + (f": {params.reason}" if params.reason else ""),
                    cost=cost)  # fmt: skip
    failure: ReassignmentIncomplete | None = None
    try:
        result: ReassignReport = await reassign(cluster, request)
    except ReassignmentIncomplete as exc:
        result, failure = exc.report, exc
    except Exception as exc:
        await _record_undo(block, before, b, audit.run_id, report)
        await audit(AuditStatus.FAILED, f"drain of broker {b} failed: {exc}")
        raise
    except BaseException as exc:  # Ctrl-C, SIGTERM through the CLI, a cancelled run
        try:
            await finish_shielded(_record_undo(block, before, b, audit.run_id, report), timeout_s=30)
        except TimeoutError:
            get_run_logger().error("recording the undo of the interrupted drain of broker %s timed out", b)
        await audit.end_interrupted(exc, f"drain of broker {b}")
        raise
    report.reassign, report.plan = result.model_dump(mode="json"), result.plan
    report.cost = result.cost_estimate
    if params.dry_run or result.status in ("busy", "refused"):
        report.status, report.summary, report.moves = result.status, result.summary, result.moves
        if params.dry_run:
            report.status = "planned"
            await audit(AuditStatus.PLANNED, f"drain of broker {b}: {result.summary}", cost=result.cost_estimate)
        else:
            await audit(AuditStatus.SKIPPED if result.status == "busy" else AuditStatus.REFUSED, result.summary)
        return await _publish(report, audit)
    await _record_undo(block, before, b, audit.run_id, report)
    left = report.remaining_on_broker
    report.summary = f"broker {b} drained: {report.moves} partition(s) moved, {left} replica(s) left on it"
    if report.rollback_stored_in:
        report.summary += f"; undo stored in {report.rollback_stored_in}"
    ok = failure is None and left == 0
    report.status = "completed" if ok else "failed"
    if result.status in ("handed_back", "interrupted"):
        report.status = result.status
        report.summary += f" ({result.summary})"
    await audit(AuditStatus.FINISHED if ok else AuditStatus.FAILED, report.summary, cost=report.cost)
    await _publish(report, audit)
    if failure is not None:
        raise ActionFailed(f"{failure}; {report.summary}") from failure
    if left is None:
        raise ActionFailed(f"broker {b}: the drain ran ({result.summary}) but its undo could not be recorded")
    if left:
        raise ActionFailed(f"{report.summary}: {result.summary}")
    return report


async def _publish(report: DrainReport, audit: RunAudit) -> DrainReport:
    report.audit = audit.records
    await acreate_markdown_artifact(key=f"drain-{report.cluster}-{report.broker_id}", markdown=drain_markdown(report))
    get_run_logger().info("[%s] %s", report.cluster, report.summary)
    return report
