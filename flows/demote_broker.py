"""``demote-broker`` and ``restore-broker``: the ladder's first rung, and its undo.

Demoting takes every leadership off a broker (:func:`kafka_medic.leadership.demotion`: the same
replicas in another order, the broker last, then a preferred-leader election). No data moves; it
takes seconds and takes a slow broker out of every producer's acks path. The exact previous orders
are stored (:meth:`kafka_medic.state.ClusterState.save_undo`) before anything changes, so a demotion
that stops halfway can still be undone. Restoring puts those orders back where nobody changed them
since -- only on partitions where the broker is in sync -- and gives the broker its preferred
leaderships back (after a restart or a replacement too): a heal ends where it started.

Both run under the cluster's mutate lock on a fresh look. Automation sets ``require_due`` /
``require_recovered``: the fresh judgment must still call for the step (never a replayed sample).
Busy, skipped and refused complete with that status; a step that ran but did not finish fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from blocks.load import load_cluster
from kafka_medic.audit import AuditStatus
from kafka_medic.errors import ActionFailed, ClusterBusy
from kafka_medic.judgment import Rung
from kafka_medic.leadership import PartitionKey, demotion, restoration
from kafka_medic.params import LOCK_WAIT
from kafka_medic.planner import Move
from kafka_medic.reports.leadership import LeadershipReport, leadership_markdown
from kafka_medic.state import Rollback, maintenance_hold
from tasks.audit import RunAudit
from tasks.collect import Look, look_now
from tasks.kafka import read_partitions
from tasks.ladder import record_attempt
from tasks.leadership import apply_orders, move_leaders
from tasks.locks import LockHandle, cluster_lock
from tasks.state import cluster_state


class LeadershipParams(BaseModel):
    """Which broker, and how carefully (the form of ``demote-broker`` and ``restore-broker``)."""

    model_config = ConfigDict(extra="forbid")

    broker_id: int = Field(..., ge=0, description="The broker whose leaderships move.")
    dry_run: bool = Field(True, description="Only show which partitions would change; change nothing.")
    automation: bool = Field(
        False, description="Act only if a fresh judgment still calls for it (automation sets this)."
    )
    verify_timeout_s: float = Field(60.0, gt=0, le=3600, description="How long to wait for the leaders to move.")
    lock_wait_s: float = LOCK_WAIT
    actor: str = Field("", max_length=200, description="Who asked (default: $KAFKA_MEDIC_ACTOR or user@host).")
    reason: str = Field("", max_length=1000, description="Why (goes to the audit trail).")


def _not_now(look: Look, params: LeadershipParams, action: str) -> tuple[AuditStatus, str] | None:
    """Why this step must not run on this look (skipped: not needed; refused: unsafe), or None."""
    b = params.broker_id
    alive = set(look.snapshot.alive_broker_ids)
    if b not in alive:
        return AuditStatus.REFUSED, f"broker {b} is not alive (the dead-broker rules apply, not {action})"
    if hold := maintenance_hold(look.maintenance, automated=params.automation):
        return AuditStatus.SKIPPED, f"not {'demoting' if action == 'demote' else 'restoring'} broker {b}: {hold}"
    if params.automation:
        if not look.evaluation.automation_allowed:
            return AuditStatus.SKIPPED, "automation stands down (a paging finding on a fresh look)"
        v = look.judgment.verdicts.get(b)
        wanted = v is not None and (v.due is Rung.DEMOTE if action == "demote" else v.recovered)
        if not wanted:
            why = (v.not_judged if v is not None else None) or "a fresh judgment no longer calls for it"
            return AuditStatus.SKIPPED, f"not {'demoting' if action == 'demote' else 'restoring'} broker {b}: {why}"
    return None


async def _leadership_run(
    cluster: str,
    params: LeadershipParams,
    action: str,
    plan: Callable[[Look, Any], Awaitable[Step]],
    done: Callable[[LeadershipReport, Any, Any], Awaitable[None]],
) -> LeadershipReport:
    """The run both flows share: block, audit and report, the guarded steps (:func:`_run`), and on
    success ``done`` (summary, ladder record) before the audit's end record."""
    block = await load_cluster(cluster)
    audit = RunAudit(block, f"{action}_broker", actor=params.actor, brokers=(params.broker_id,))
    report = LeadershipReport(action=action, cluster=cluster, broker_id=params.broker_id, dry_run=params.dry_run)
    state = cluster_state(cluster)
    report = await _run(params, report, audit, lambda look: plan(look, state))
    if report.status in ("completed", "nothing_to_do"):
        await done(report, block, state)
        await _finish(report, audit, AuditStatus.FINISHED)
    return report


async def _finish(report: LeadershipReport, audit: RunAudit, status: AuditStatus) -> LeadershipReport:
    await audit(status, report.summary, reordered=len(report.reordered), not_moved=report.not_moved[:200],
                skipped=report.skipped[:200])  # fmt: skip
    report.audit = audit.records
    await acreate_markdown_artifact(
        key=f"{report.action}-broker-{report.cluster}-{report.broker_id}", markdown=leadership_markdown(report),
        description=f"{report.action} of broker {report.broker_id}: {report.status}",
    )  # fmt: skip
    get_run_logger().info("[%s] %s", report.cluster, report.summary)
    return report


@dataclass
class Step:
    """What one demotion or restore will change, worked out on a fresh look."""

    moves: list[Move]  # reorders
    elect: list[PartitionKey]  # partitions whose (new) preferred replica is elected
    skipped: list[tuple[str, str]]
    undo: Rollback | None = None  # stored before anything changes (a demotion's previous orders)


async def _apply(report: LeadershipReport, params: LeadershipParams, audit: RunAudit, lock: LockHandle,
                 step: Step) -> None:  # fmt: skip
    """Reorder, elect, and say how far it got (raises ActionFailed when it did not all happen)."""
    block = await load_cluster(report.cluster)
    if step.moves:
        lock.ensure_held()
        result = await apply_orders(block, step.moves, lock, run_id=audit.run_id or "local", actor=audit.actor)
        if not result.ok:
            raise ActionFailed(f"reordering replicas: {result.summary()}")
    lock.ensure_held()
    outcome = await move_leaders(block, step.elect, params.verify_timeout_s)
    report.elected, report.not_moved = outcome["moved"], outcome["not_moved"]
    parts = await read_partitions(block)
    report.leads_after = 0 if parts.empty else int((parts["leader"] == report.broker_id).sum())
    if report.not_moved:
        raise ActionFailed(f"{len(report.not_moved)} leader(s) did not move: {', '.join(report.not_moved[:20])}")


async def _run(
    params: LeadershipParams, report: LeadershipReport, audit: RunAudit, plan: Callable[[Look], Awaitable[Step]]
) -> LeadershipReport:
    """The shared skeleton: lock (real runs), fresh look, the step's own plan, apply, record."""
    cluster, b, action = report.cluster, params.broker_id, report.action
    block = await load_cluster(cluster)
    state = cluster_state(cluster)
    async with AsyncExitStack() as stack:
        try:
            lock = None if params.dry_run else await stack.enter_async_context(
                cluster_lock(cluster, wait_s=params.lock_wait_s)
            )  # fmt: skip
        except ClusterBusy as exc:
            report.status, report.summary = "busy", await audit.busy(exc)
            return report
        look = await look_now(block)
        stop = _not_now(look, params, action)
        if stop is not None:
            status, report.summary = stop
            report.status = status.value
            if status is AuditStatus.REFUSED and lock is not None:
                await record_attempt(block, b, action, False)
            return await _finish(report, audit, status)
        step = await plan(look)
        report.reordered = [f"{m.topic}-{m.partition}" for m in step.moves]
        report.skipped = step.skipped
        if params.dry_run:
            report.summary = (f"dry run: {len(step.moves)} partition(s) would be reordered, {len(step.elect)} "
                              "leader(s) moved")  # fmt: skip
            return await _finish(report, audit, AuditStatus.PLANNED)
        assert lock is not None
        if step.moves or step.elect:
            await audit(AuditStatus.STARTED, f"{action} broker {b}: {len(step.moves)} reorder(s), "
                        f"{len(step.elect)} election(s)", reason=params.reason)  # fmt: skip
            if step.undo:  # first: a demotion that stops halfway can still be undone
                report.undo_stored_in = await state.save_undo("demotion", b, step.undo, audit.run_id)
            try:
                await _apply(report, params, audit, lock, step)
            except Exception as exc:
                report.status, report.summary = "failed", f"{action} of broker {b} failed: {exc}"
                await record_attempt(block, b, action, False)
                await _finish(report, audit, AuditStatus.FAILED)
                raise ActionFailed(report.summary) from exc
    report.status = "completed" if step.moves or step.elect else "nothing_to_do"
    return report


@flow(name="demote-broker", timeout_seconds=3600, retries=0)
async def demote_broker(cluster: str, params: LeadershipParams) -> LeadershipReport:
    """Take every leadership off ``params.broker_id`` (see the module docstring); ``restore-broker`` undoes it."""
    b = params.broker_id

    async def plan(look: Look, state: Any) -> Step:
        d = demotion(look.snapshot, b)
        # a second demotion (it leads new partitions since) keeps the first one's older orders
        kept = {(t, p): (t, p, old, new) for t, p, old, new in await state.undo("demotion", b) or []}
        for m in d.moves:
            kept.setdefault(
                (m.topic, m.partition), (m.topic, m.partition, tuple(m.old_replicas), tuple(m.new_replicas))
            )
        return Step(list(d.moves), d.keys, list(d.skipped), undo=list(kept.values()) if d.moves else None)

    async def done(report: LeadershipReport, block: Any, state: Any) -> None:
        report.summary = (f"broker {b} demoted: {len(report.reordered)} partition(s) reordered, {report.elected} "
                          f"leader(s) moved; it now leads {report.leads_after}")  # fmt: skip
        await record_attempt(block, b, "demote", True, rung=Rung.DEMOTE if params.automation else None)

    return await _leadership_run(cluster, params, "demote", plan, done)


@flow(name="restore-broker", timeout_seconds=3600, retries=0)
async def restore_broker(cluster: str, params: LeadershipParams) -> LeadershipReport:
    """Give ``params.broker_id`` its leaderships back: undo its demotion, elect its preferred partitions."""
    b = params.broker_id

    async def plan(look: Look, state: Any) -> Step:
        undo = {(t, p): old for t, p, old, _ in await state.undo("demotion", b) or []}
        r = restoration(look.snapshot, b, undo)
        return Step(list(r.moves), list(r.elect), list(r.skipped))

    async def done(report: LeadershipReport, block: Any, state: Any) -> None:
        waiting = [s for s in report.skipped if "not in sync" in s[1]]
        if not waiting:
            await state.clear_undo("demotion", b)
        report.summary = (f"broker {b} got {report.elected} leadership(s) back ({len(report.reordered)} partition(s) "
                          f"reordered); it now leads {report.leads_after}")  # fmt: skip
        await record_attempt(block, b, "restore", True, restored=not waiting)

    return await _leadership_run(cluster, params, "restore", plan, done)
