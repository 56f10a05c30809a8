"""``reassign``: move partitions off brokers safely (drain brokers, or replace one broker by another).

    load block -> dry run? (read-only: journal view, snapshot, plan, artifacts, return)
    -> take the cluster's mutate lock (busy: the run completes with status "busy")
    -> adopt what a dead earlier run left in the journal -> fresh snapshot -> plan -> safety check
    -> artifacts (plan table, cost) -> audit planned/started -> execute (throttled, journaled)
    -> verify ISR of the moved partitions -> audit finished / failed

Adoption and planning happen *under* the lock: the journal's writer is then known to be gone, and
the plan sees the cluster after the adopted moves finished. A safety refusal completes the run as
``refused`` (nothing changed); bad input raises at once; moves that ran but did not all finish
raise :class:`ReassignmentIncomplete` with the report. Only transient Kafka errors are retried
(:mod:`tasks.reassign`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field, model_validator

from blocks.kafka_cluster import KafkaCluster
from blocks.load import load_cluster
from kafka_medic.audit import AuditStatus, brief
from kafka_medic.errors import ClusterBusy, MedicError, SafetyError
from kafka_medic.executor import ClusterOps, ExecutionOptions, JournalStore, inspect
from kafka_medic.executor.checked import checked_plan
from kafka_medic.planner import DrainRequest, Plan, PlanningError, ReplaceRequest
from kafka_medic.policy import HealthPolicy
from kafka_medic.reports.reassign import ReassignmentIncomplete, ReassignReport, first_notes, result_markdown
from kafka_medic.reports.verify import IsrNotFull
from kafka_medic.snapshot import ClusterSnapshot
from tasks.audit import RunAudit
from tasks.locks import LockHandle, cluster_lock
from tasks.reassign import adopt_task, execute_task, publish_plan, snapshot_task
from tasks.state import cluster_state, journal_store
from tasks.verify import wait_isr_full

ACTION = "reassign"


class ReassignParams(BaseModel):
    """What to move and how carefully (the Prefect UI form of the reassign flow)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["drain", "replace"] = Field(
        ...,
        description="drain: move every replica off `brokers`; replace: move `old_broker`'s replicas to `new_broker`.",
    )
    brokers: list[int] = Field(default_factory=list, description="drain: broker ids to empty (dead ones allowed).")
    exclude: list[int] = Field(default_factory=list, description="drain: broker ids that must not receive replicas.")
    old_broker: int | None = Field(None, ge=0, description="replace: the broker whose replicas move (may be dead).")
    new_broker: int | None = Field(None, ge=0, description="replace: the alive broker that takes them all.")
    dry_run: bool = Field(True, description="Only plan and show the cost (artifacts); change nothing.")
    throttle_bytes_per_sec: int | None = Field(
        None, ge=1024, le=10_000_000_000, description="Replication throttle per broker (bytes/s); empty: the policy's."
    )
    max_moves_per_broker: int = Field(5, ge=1, le=100, description="Concurrent moves a broker takes part in.")
    max_moves_per_cluster: int = Field(1250, ge=1, le=10_000, description="Concurrent moves in the whole cluster.")
    timeout_s: float = Field(
        6 * 3600.0, ge=5, le=7 * 86_400, description="How long the moves may take before the run stops waiting."
    )
    verify_timeout_s: float | None = Field(
        None, gt=0, le=86_400, description="How long to wait for full ISR afterwards; empty: the policy's."
    )
    allow_partial: bool = Field(
        False, description="Move what can be moved safely and report the rest, instead of refusing the whole plan."
    )
    cancel_on_timeout: bool = Field(
        False, description="On timeout, cancel the moves still running (default: leave them running and report)."
    )
    record_drain_undo: bool = Field(
        False,
        description="drain: save each moving partition's replicas as the drain's undo before the first move "
        "(drain-broker sets it), so an interrupted drain can still be undone.",
    )
    lock_wait_s: float = Field(0.0, ge=0, le=3600, description="Wait this long for another action to finish.")
    actor: str = Field("manual", min_length=1, max_length=200, description="Who asked (audit trail).")
    reason: str = Field("", max_length=1000, description="Why (audit trail).")

    @model_validator(mode="after")
    def _shape(self) -> ReassignParams:
        if self.kind == "drain":
            if not self.brokers:
                raise ValueError("a drain needs at least one broker id in `brokers`")
            if self.old_broker is not None or self.new_broker is not None:
                raise ValueError("old_broker/new_broker are for kind='replace'; a drain uses `brokers`")
        else:
            if self.old_broker is None or self.new_broker is None:
                raise ValueError("a replace needs both old_broker and new_broker")
            if self.brokers or self.exclude:
                raise ValueError("brokers/exclude are for kind='drain'; a replace uses old_broker/new_broker")
        return self

    def planner_request(self) -> DrainRequest | ReplaceRequest:
        if self.kind == "drain":
            return DrainRequest(brokers=self.brokers, exclude=self.exclude)
        assert self.old_broker is not None and self.new_broker is not None
        return ReplaceRequest(old_broker=self.old_broker, new_broker=self.new_broker)

    @property
    def caps(self) -> tuple[int, int]:
        """Concurrent moves (per broker, per cluster)."""
        return self.max_moves_per_broker, self.max_moves_per_cluster

    @property
    def request_record(self) -> dict[str, Any]:
        return self.planner_request().model_dump()

    @property
    def involved(self) -> tuple[int, ...]:
        if self.kind == "drain":
            return tuple(sorted(set(self.brokers)))
        return tuple(b for b in (self.old_broker, self.new_broker) if b is not None)


@flow(name="reassign", retries=0)
async def reassign(cluster: str, request: ReassignParams) -> ReassignReport:
    """Drain brokers or replace one broker by another, by throttled partition reassignment.

    Dry run (the default) plans and shows the cost, changing nothing. A real run takes the
    cluster's mutate lock (busy: status "busy"), adopts unfinished moves of a dead earlier run,
    re-plans on a fresh snapshot, executes with throttles and verifies the ISR. A safety refusal
    completes with status "refused"; incomplete moves raise :class:`ReassignmentIncomplete`.
    """
    t0 = time.monotonic()
    params = request
    block = await load_cluster(cluster)
    rate = int(params.throttle_bytes_per_sec or block.policy.throttle_bytes_per_sec)
    audit = RunAudit(block, ACTION, actor=params.actor, brokers=params.involved)
    run_id = audit.run_id or f"local-{uuid.uuid4().hex[:12]}"
    report = ReassignReport(
        cluster=cluster, status="dry_run" if params.dry_run else "started", dry_run=params.dry_run, summary="",
        request=params.model_dump(), throttle_bytes_per_sec=rate, run_id=run_id,
    )  # fmt: skip
    store = journal_store()
    with ClusterOps(block) as ops:
        ops.known_brokers = await cluster_state(cluster).known_brokers()
        try:
            if params.dry_run:
                report.journal = await inspect(ops, store, cluster)
                snapshot = await snapshot_task(ops)
                plan = checked_plan(snapshot, params.planner_request(), allow_partial=params.allow_partial)
                await _publish(report, ops, snapshot, plan, params, rate, block.policy)
                report.summary = f"dry run: {plan.summary()}; nothing was changed"
            else:
                async with cluster_lock(cluster, wait_s=params.lock_wait_s) as lock:
                    await _run_locked(report, ops, store, block, params, rate, audit, lock)
        except ClusterBusy as exc:
            report.status, report.summary = "busy", await audit.busy(exc, request=params.model_dump())
        except SafetyError as exc:  # refused before anything moved (unsafe plan, foreign reassignment)
            report.status, report.summary = "refused", f"reassignment refused: {exc}"
            if isinstance(exc, PlanningError):  # which partitions could not be placed, and why
                report.plan = {"moves": [], "unplaceable": [u.to_dict() for u in exc.unplaceable]}
            await audit(AuditStatus.REFUSED, report.summary, request=params.model_dump())
    report.audit = audit.records
    report.elapsed_s = round(time.monotonic() - t0, 3)
    get_run_logger().info("[%s] %s", cluster, report.summary)
    return report


async def _publish(
    report: ReassignReport, ops: ClusterOps, snapshot: ClusterSnapshot, plan: Plan, params: ReassignParams, rate: int,
    policy: HealthPolicy,
) -> None:  # fmt: skip
    await publish_plan(report, ops, snapshot, plan, rate=rate, caps=params.caps, request=params.request_record,
                       policy=policy)  # fmt: skip


async def _run_locked(
    report: ReassignReport, ops: ClusterOps, store: JournalStore, block: KafkaCluster, params: ReassignParams,
    rate: int, audit: RunAudit, lock: LockHandle,
) -> None:  # fmt: skip
    cluster = block.name
    try:
        adoption = await adopt_task(ops, store, cluster, params.timeout_s)
        if adoption is not None:
            report.adoption = adoption.to_dict()
            get_run_logger().warning("[%s] %s", cluster, adoption.summary())
        snapshot = await snapshot_task(ops)
        plan = checked_plan(snapshot, params.planner_request(), allow_partial=params.allow_partial)
    except SafetyError:
        raise  # the flow completes as "refused"
    except MedicError as exc:
        await audit(AuditStatus.REFUSED, f"reassignment refused: {exc}", request=params.model_dump())
        report.audit = audit.records
        raise
    await _publish(report, ops, snapshot, plan, params, rate, block.policy)
    # The plan's tallies and its estimate (bytes, cross_az_bytes, dollars, eta_s) on every record.
    cost = {**plan.cost.to_dict(), **(report.cost_estimate or {})}
    details = {"request": params.model_dump(), "cost": cost, "throttle_bytes_per_sec": rate}
    if not plan.moves:
        report.status, report.summary = "nothing_to_do", f"nothing to move: {plan.summary()}"
        await audit(AuditStatus.FINISHED, report.summary, **details)
        return
    await audit(AuditStatus.PLANNED, plan.summary(), **details)
    options = ExecutionOptions(
        throttle_bytes_per_sec=rate, max_moves_per_broker=params.max_moves_per_broker,
        max_moves_per_cluster=params.max_moves_per_cluster, timeout_s=params.timeout_s,
        cancel_on_timeout=params.cancel_on_timeout,
    )  # fmt: skip
    if params.record_drain_undo and params.kind == "drain":
        await cluster_state(cluster).save_planned_drain_undo(params.brokers, plan.moves, report.run_id)
    await audit(AuditStatus.STARTED, f"moving {len(plan.moves)} partition(s): {plan.summary()}", **details)
    try:
        result = await execute_task(ops, store, list(plan.moves), cluster, report.run_id or "", params.actor,
                                    options, lock)  # fmt: skip
    except SafetyError:
        raise  # refused before anything moved: the flow completes as "refused"
    except Exception as exc:
        await audit(AuditStatus.FAILED, f"reassignment failed: {type(exc).__name__}: {exc}", **details)
        report.audit = audit.records
        raise
    except BaseException as exc:  # Ctrl-C, SIGTERM through the CLI, a cancelled run: "started" gets its end
        report.status, report.summary = "interrupted", f"reassignment interrupted ({type(exc).__name__})"
        await audit.end_interrupted(exc, "reassignment", **details)
        report.audit = audit.records
        raise
    report.execution = result.to_dict()
    outcome = {"execution": brief(result.to_dict())}
    if not result.ok:
        report.status, report.summary = result.status, f"reassignment {result.summary()}"
        await _finish(report, audit, AuditStatus.FAILED, details, outcome)
        raise ReassignmentIncomplete(report.summary + first_notes(result), report)
    verify_timeout = params.verify_timeout_s or block.policy.verify_timeout_s
    try:
        verify = await wait_isr_full(block, partitions=[(m.topic, m.partition) for m in plan.moves],
                                     timeout_s=verify_timeout)  # fmt: skip
    except IsrNotFull as exc:
        report.status, report.verify = "isr_not_full", exc.report.model_dump()
        report.summary = f"moves done ({result.summary()}) but {exc}"
        await _finish(report, audit, AuditStatus.FAILED, details, outcome)
        raise ReassignmentIncomplete(report.summary, report) from None
    report.verify = verify.model_dump()
    report.status, report.summary = "completed", f"reassignment {result.summary()}; {verify.message}"
    await _finish(report, audit, AuditStatus.FINISHED, details, outcome)


async def _finish(
    report: ReassignReport, audit: RunAudit, status: AuditStatus, details: dict[str, Any], outcome: dict[str, Any]
) -> None:
    await audit(status, report.summary, **details, **outcome)
    report.audit = audit.records
    await acreate_markdown_artifact(
        key=f"reassign-result-{report.cluster}", markdown=result_markdown(report),
        description=f"Reassignment result on {report.cluster}",
    )  # fmt: skip
