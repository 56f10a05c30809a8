"""reassign and cancel-reassignment: move partitions off brokers safely, or stop moves in flight.

``reassign`` (drain brokers, or replace one broker by another):

    load block -> dry run? (read-only: journal view, snapshot, plan, artifacts, return)
    -> take the cluster's mutate lock (busy: a "skipped" result and audit, not a failure)
    -> adopt what a dead earlier run left in the journal -> fresh snapshot -> plan -> safety check
    -> artifacts (plan table, cost) -> audit planned/started -> execute (throttled, journaled)
    -> verify ISR of the moved partitions -> audit finished / failed

Adoption and planning happen *under* the lock: the journal's writer is then known to be gone, and
the plan sees the cluster after the adopted moves finished. Bad input and safety refusals are
audited ``refused`` and raised once (no retry); only transient Kafka errors are retried, with
exponential backoff, by the Prefect tasks below.

``cancel_reassignment`` reverts moves in flight (KIP-455 ``None`` targets), refusing any partition
whose revert would need an unclean leader election; kafka-medic's own moves also get their exact
original replica order back (KRaft restores the set, not always the order). If a reassign run holds the lock, only the
cancellation is submitted: that run sees its moves reverted, stops starting new ones and removes
its own throttles. Otherwise this flow also removes the journal's throttles.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff
from pydantic import BaseModel, ConfigDict, Field, model_validator

from blocks.kafka_cluster import KafkaCluster
from flows.health_check import load_cluster
from flows.verify_isr import IsrNotFull, wait_isr_full
from kafka_medic import coordination
from kafka_medic.audit import AuditLog, AuditRecord, AuditStatus
from kafka_medic.collector import KnownBroker
from kafka_medic.errors import ConfigError, MedicError, SafetyError
from kafka_medic.executor import (
    AdoptionResult,
    ClusterOps,
    ExecutionOptions,
    ExecutionResult,
    JournalStore,
    Ledger,
    PrefectJournalStore,
    Progress,
    adopt,
    cancel_reassignments,
    execute_plan,
    inspect,
    retry_on_transient,
)
from kafka_medic.executor.batching import estimate_seconds, waves
from kafka_medic.executor.isr import capped
from kafka_medic.executor.throttles import needed_for
from kafka_medic.executor.transient import call_with_retries
from kafka_medic.notify import FAILURE_STATUSES, anotice, cluster_secrets
from kafka_medic.planner import DrainRequest, Plan, ReplaceRequest, partition_sizes, plan_moves
from kafka_medic.safety import validate_plan
from kafka_medic.snapshot import ClusterSnapshot

ACTION = "reassign"
CANCEL_ACTION = "cancel_reassignment"
PartitionKey = tuple[str, int]
#: Rows of the plan table artifact (the full plan is in the flow's result).
MAX_TABLE_ROWS = 1000

_RETRY = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=1),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_on_transient,
    "cache_policy": NO_CACHE,
}


# -- parameters and results ------------------------------------------------------------------------


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
    def involved(self) -> tuple[int, ...]:
        if self.kind == "drain":
            return tuple(sorted(set(self.brokers)))
        return tuple(b for b in (self.old_broker, self.new_broker) if b is not None)


class ReassignReport(BaseModel):
    cluster: str
    status: str = Field(
        description="dry_run, completed, nothing_to_do, skipped (lock busy); on failure the raised error's report "
        "carries timed_out, partial, cancelled, stopped or isr_not_full"
    )
    dry_run: bool
    summary: str
    request: dict[str, Any]
    moves: int = Field(0, description="partitions in the plan")
    plan: dict[str, Any] | None = Field(None, description="planner output (moves, cost, unplaceable)")
    throttle_bytes_per_sec: int
    estimated_copy_s: float | None = Field(None, description="busiest receiver's bytes / throttle (lower bound)")
    waves: int | None = Field(None, description="waves of moves under the caps if each wave finished together")
    preexisting_throttles: list[str] = Field(default_factory=list, description="throttles someone else set")
    journal: dict[str, Any] | None = Field(None, description="dry run: unfinished work of an earlier run")
    adoption: dict[str, Any] | None = None
    execution: dict[str, Any] | None = None
    verify: dict[str, Any] | None = None
    audit: list[dict[str, Any]] = Field(default_factory=list)
    run_id: str | None = None
    elapsed_s: float = 0.0


class ReassignmentIncomplete(MedicError):
    """Moves ran but did not all finish (timeout, failures, cancellation) or the ISR did not recover."""

    def __init__(self, message: str, report: ReassignReport) -> None:
        super().__init__(message)
        self.report = report


class CancelParams(BaseModel):
    """Which moves to cancel (the Prefect UI form of the cancel-reassignment flow)."""

    model_config = ConfigDict(extra="forbid")

    partitions: list[str] = Field(
        default_factory=list,
        description='Partitions as "topic-partition"; empty: every move kafka-medic started (its journal).',
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


class CancelReport(BaseModel):
    cluster: str
    summary: str
    held_lock: bool = Field(description="False: a reassign run was active; it removes its own throttles")
    result: dict[str, Any]
    throttles_removed: dict[str, Any] | None = None
    audit: list[dict[str, Any]] = Field(default_factory=list)


# -- helpers ---------------------------------------------------------------------------------------------


def _run_id() -> str:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is not None and ctx.flow_run is not None:
        return str(ctx.flow_run.id)
    return f"local-{uuid.uuid4().hex[:12]}"


class _Audit:
    """Audit records for one run, written off the event loop; never hides the run's own outcome."""

    def __init__(self, block: KafkaCluster, action: str, actor: str, brokers: Sequence[int], run_id: str) -> None:
        self.cluster = block.name
        self.action = action
        self.actor = actor
        self.brokers = tuple(brokers)
        self.run_id = run_id
        self._log: AuditLog | None = AuditLog(block.confluent_config(), block.audit_topic)
        self._secrets = cluster_secrets(block)
        self.records: list[dict[str, Any]] = []

    def close(self) -> None:
        """Drop the audit producer now (its background threads), not whenever the run's frames go."""
        self._log = None

    async def __call__(self, status: AuditStatus, summary: str, **details: Any) -> None:
        import asyncio

        record = AuditRecord(
            cluster=self.cluster, action=self.action, status=status, summary=summary[:2000], brokers=self.brokers,
            details=details, actor=self.actor, run_id=self.run_id,
        )  # fmt: skip
        if self._log is None:
            raise RuntimeError("audit trail used after the run ended")
        written = await asyncio.to_thread(self._log.write, record)
        self.records.append({"id": record.id, "status": status.value, "summary": record.summary, "written": written})
        await anotice(self.cluster, self.action, status.value, record.summary, brokers=self.brokers,
                      secrets=self._secrets, statuses=FAILURE_STATUSES)  # fmt: skip


async def _known_brokers(cluster: str) -> dict[int, KnownBroker]:
    """Brokers (with racks) remembered by the health check, so a dead broker keeps its rack.

    Read-only and tolerant: without it the plan is still safe, only the same-rack preference for
    a dead broker's replicas and the cross-AZ estimate lose precision.
    """
    from prefect.variables import Variable

    try:
        raw = await Variable.aget(coordination.variable_name(cluster, "known_brokers"), default=None)
    except Exception:
        return {}
    out: dict[int, KnownBroker] = {}
    for item in raw.get("brokers", []) if isinstance(raw, dict) else []:
        try:
            kb = KnownBroker.from_json(item)
        except (KeyError, TypeError, ValueError):
            continue
        out[kb.broker_id] = kb
    return out


def _plan(snapshot: ClusterSnapshot, params: ReassignParams) -> Plan:
    """Plan and check; ConfigError / PlanningError / SafetyError name what is wrong, nothing changed."""
    if snapshot.partitions.empty:
        raise ConfigError(f"cluster {snapshot.cluster!r} has no topics: there is nothing to reassign")
    plan = plan_moves(snapshot, params.planner_request(), allow_partial=params.allow_partial)
    violations = validate_plan(snapshot, plan.moves)
    if violations:
        raise SafetyError(
            f"Refusing the plan: {len(violations)} safety violation(s): {capped(violations, sep='; ')}. "
            "Nothing was changed."
        )
    return plan


def _plan_rows(plan: Plan, snapshot: ClusterSnapshot) -> list[dict[str, Any]]:
    sizes = partition_sizes(snapshot, [(m.topic, m.partition) for m in plan.moves])
    rows = []
    for m in plan.moves[:MAX_TABLE_ROWS]:
        size = sizes.get((m.topic, m.partition), math.nan)
        rows.append(
            {
                "partition": m.name,
                "old_replicas": str(list(m.old_replicas)),
                "new_replicas": str(list(m.new_replicas)),
                "added": str(list(m.added)),
                "removed": str(list(m.removed)),
                "size_mb": None if math.isnan(size) else round(size / 1e6, 3),
            }
        )
    return rows


def _cost_markdown(
    cluster: str, params: ReassignParams, plan: Plan, rate: int, est_s: float | None, n_waves: int,
    preexisting: list[str], journal: dict[str, Any] | None,
) -> str:  # fmt: skip
    c = plan.cost
    lines = [
        f"# Reassignment plan for `{cluster}` ({'dry run' if params.dry_run else 'to execute'})",
        "",
        f"Request: `{params.planner_request().model_dump()}`",
        "",
        f"**{plan.summary()}**",
        "",
        "| figure | value |",
        "|---|---|",
        f"| partitions | {c.partitions} |",
        f"| replicas moved | {c.replicas_moved} |",
        f"| bytes moved | {c.bytes_moved / 1e6:.1f} MB |",
        f"| cross-AZ bytes | {c.cross_az_bytes / 1e6:.1f} MB |",
        f"| replicas of unknown size | {c.unknown_size_replicas} |",
        f"| preferred-leader changes | {c.preferred_leader_changes} |",
        f"| throttle | {rate / 1e6:.2f} MB/s per broker |",
        f"| copy time at the throttle (lower bound) | {'unknown' if est_s is None else f'{est_s:.0f} s'} |",
        f"| waves (caps {params.max_moves_per_broker}/broker, {params.max_moves_per_cluster}/cluster) | {n_waves} |",
    ]
    if c.per_broker_bytes_in:
        lines += ["", "| receiving broker | replicas in | MB in |", "|---|---|---|"]
        for b, n in c.per_broker_in.items():
            lines.append(f"| {b} | {n} | {c.per_broker_bytes_in.get(b, 0.0) / 1e6:.1f} |")
    if plan.unplaceable:
        lines += ["", f"## {len(plan.unplaceable)} partition(s) left in place", ""]
        lines += [f"- {u.name}: {u.reason}" for u in plan.unplaceable[:50]]
    if preexisting:
        lines += ["", "## Throttles someone else set (kept as they are)", ""] + [f"- {p}" for p in preexisting]
    if journal:
        lines += ["", "## Unfinished work of an earlier run (adopted by the next real run)", "", f"- {journal}"]
    return "\n".join(lines)


def _result_markdown(report: ReassignReport) -> str:
    lines = [f"# Reassignment of `{report.cluster}`: {report.status}", "", report.summary, ""]
    ex = report.execution or {}
    for label, key in (
        ("moves time (first submit to last done)", "moves_s"),
        ("throttle cleanup after the last move", "cleanup_s"),
    ):
        if ex.get(key) is not None:
            lines.append(f"- {label}: {ex[key]} s")
    if ex.get("failed"):
        lines += ["", "## Failed", ""] + [f"- {k}: {v}" for k, v in list(ex["failed"].items())[:50]]
    if ex.get("still_running"):
        lines += ["", f"## Still running ({len(ex['still_running'])})", "", capped(ex["still_running"])]
    if ex.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in ex["notes"]]
    if report.adoption:
        lines += ["", "## Adopted", "", f"- {report.adoption}"]
    if report.verify:
        lines += ["", "## ISR", "", f"- {report.verify.get('message', '')}"]
    return "\n".join(lines)


# -- tasks (retried on transient Kafka errors only) ------------------------------------------------


@task(name="reassign-snapshot", **_RETRY)
async def snapshot_task(ops: ClusterOps) -> ClusterSnapshot:
    """A full snapshot; a cluster that cannot be read raises a transient error (retried)."""
    import asyncio

    return await asyncio.to_thread(ops.snapshot)


@task(name="reassign-adopt", **_RETRY)
async def adopt_task(ops: ClusterOps, store: JournalStore, cluster: str, timeout_s: float) -> AdoptionResult | None:
    return await adopt(ops, store, cluster, timeout_s=timeout_s)


@task(name="reassign-execute", **{**_RETRY, "retries": 1})
async def execute_task(
    ops: ClusterOps, store: JournalStore, plan: Plan, cluster: str, run_id: str, actor: str,
    options: ExecutionOptions, lock: Any,
) -> ExecutionResult:  # fmt: skip
    """Execute the plan. A retry (transient error) is safe: it adopts the first attempt's moves,
    counts the finished ones as in place and re-checks the rest on a fresh snapshot."""
    artifact_id = await acreate_progress_artifact(
        progress=0.0, key=f"reassign-progress-{cluster}", description=f"Reassignment progress on {cluster}"
    )
    logger = get_run_logger()
    last_log = [0.0]

    async def on_progress(p: Progress) -> None:
        await aupdate_progress_artifact(artifact_id, progress=round(100 * p.fraction, 1), description=p.line())
        if time.monotonic() - last_log[0] >= 10 or p.finished == p.total:
            last_log[0] = time.monotonic()
            logger.info("[%s] %s", cluster, p.line())

    return await execute_plan(
        ops, store, plan.moves, cluster=cluster, run_id=run_id, actor=actor, options=options,
        on_progress=on_progress, guard=lock.ensure_held,
    )  # fmt: skip


async def _preexisting(ops: ClusterOps, plan: Plan, snapshot: ClusterSnapshot) -> list[str]:
    """Throttles already on the brokers/topics the plan touches (read-only, for the dry-run report)."""
    needed = needed_for(plan.moves, snapshot.alive_broker_ids)
    try:
        current = await call_with_retries(
            ops.read_throttles, sorted(needed.brokers), sorted(needed.topics), what="reading throttle configs"
        )
    except Exception as exc:
        return [f"could not read throttle configs: {exc}"]
    out = [f"broker {b}: {c}={v}" for (b, c), v in sorted(current.broker_rates.items())]
    for (t, c), v in sorted(current.topic_replicas.items()):
        shown = v if isinstance(v, str) else ",".join(sorted(f"{p}:{b}" for _, p, b in v))
        out.append(f"topic {t}: {c}={shown[:200]}")
    return out


# -- the flows -------------------------------------------------------------------------------------------


@flow(name="reassign", retries=0)
async def reassign(cluster: str, request: ReassignParams) -> ReassignReport:
    """Drain brokers or replace one broker by another, by throttled partition reassignment.

    Dry run (the default) plans and shows the cost, changing nothing. A real run takes the
    cluster's mutate lock (busy: returns status "skipped"), adopts unfinished moves of a dead
    earlier run, re-plans on a fresh snapshot, executes with throttles and verifies the ISR.
    Refusals (bad input, unsafe plan, foreign reassignment) raise with the reason; incomplete
    moves raise :class:`ReassignmentIncomplete` carrying the report.
    """
    t0 = time.monotonic()
    logger = get_run_logger()
    params = request
    block = await load_cluster(cluster)
    rate = int(params.throttle_bytes_per_sec or block.policy.throttle_bytes_per_sec)
    verify_timeout = params.verify_timeout_s or block.policy.verify_timeout_s
    run_id = _run_id()
    audit = _Audit(block, ACTION, params.actor, params.involved, run_id)
    store = PrefectJournalStore()
    report = ReassignReport(
        cluster=cluster, status="dry_run" if params.dry_run else "started", dry_run=params.dry_run, summary="",
        request=params.model_dump(), throttle_bytes_per_sec=rate, run_id=run_id,
    )  # fmt: skip
    ops = ClusterOps(block)
    ops.known_brokers = await _known_brokers(cluster)
    try:
        if params.dry_run:
            report.journal = await inspect(ops, store, cluster)
            snapshot = await snapshot_task(ops)
            plan = _plan(snapshot, params)
            await _describe_plan(report, ops, snapshot, plan, params, rate, cluster)
            report.summary = f"dry run: {plan.summary()}; nothing was changed"
            report.elapsed_s = round(time.monotonic() - t0, 3)
            logger.info("[%s] %s", cluster, report.summary)
            return report
        try:
            async with coordination.acluster_lock(cluster, wait_s=params.lock_wait_s) as lock:
                await _run_locked(report, ops, store, block, params, rate, verify_timeout, audit, lock)
        except coordination.ClusterBusy as exc:
            report.status = "skipped"
            report.summary = str(exc)
            await audit(AuditStatus.SKIPPED, str(exc), request=params.model_dump())
            logger.warning("[%s] %s", cluster, exc)
        report.audit = audit.records
        report.elapsed_s = round(time.monotonic() - t0, 3)
        return report
    finally:
        ops.close()
        audit.close()


async def _describe_plan(
    report: ReassignReport, ops: ClusterOps, snapshot: ClusterSnapshot, plan: Plan, params: ReassignParams,
    rate: int, cluster: str,
) -> None:  # fmt: skip
    sizes = partition_sizes(snapshot, [(m.topic, m.partition) for m in plan.moves])
    leaders = {(m.topic, m.partition): -1 for m in plan.moves}
    p = snapshot.partitions
    if not p.empty:
        for t, n, ldr in zip(p["topic"], p["partition"], p["leader"], strict=True):
            if (t, int(n)) in leaders:
                leaders[(t, int(n))] = int(ldr)
    plan_waves = waves(
        plan.moves, leaders=leaders, alive=snapshot.alive_broker_ids,
        max_per_broker=params.max_moves_per_broker, max_per_cluster=params.max_moves_per_cluster,
    )  # fmt: skip
    report.moves = len(plan.moves)
    report.plan = plan.to_dict()
    report.estimated_copy_s = estimate_seconds(plan.moves, sizes, rate)
    report.waves = len(plan_waves)
    report.preexisting_throttles = await _preexisting(ops, plan, snapshot) if plan.moves else []
    await acreate_table_artifact(
        key=f"reassign-plan-{cluster}", table=_plan_rows(plan, snapshot) or [{"partition": "(nothing to move)"}],
        description=f"Reassignment plan for {cluster}: {plan.summary()}",
    )  # fmt: skip
    await acreate_markdown_artifact(
        key=f"reassign-cost-{cluster}",
        markdown=_cost_markdown(
            cluster, params, plan, rate, report.estimated_copy_s, report.waves, report.preexisting_throttles,
            report.journal,
        ),
        description=f"Cost of the reassignment on {cluster}",
    )  # fmt: skip


async def _run_locked(
    report: ReassignReport, ops: ClusterOps, store: JournalStore, block: KafkaCluster, params: ReassignParams,
    rate: int, verify_timeout: float, audit: _Audit, lock: Any,
) -> None:  # fmt: skip
    cluster = block.name
    logger = get_run_logger()
    try:
        adoption = await adopt_task(ops, store, cluster, params.timeout_s)
        if adoption is not None:
            report.adoption = adoption.to_dict()
            logger.warning("[%s] %s", cluster, adoption.summary())
        snapshot = await snapshot_task(ops)
        plan = _plan(snapshot, params)
    except MedicError as exc:
        await audit(AuditStatus.REFUSED, f"reassignment refused: {exc}", request=params.model_dump())
        report.audit = audit.records
        raise
    await _describe_plan(report, ops, snapshot, plan, params, rate, cluster)
    details = {"request": params.model_dump(), "cost": plan.cost.to_dict(), "throttle_bytes_per_sec": rate}
    if not plan.moves:
        report.status = "nothing_to_do"
        report.summary = f"nothing to move: {plan.summary()}"
        await audit(AuditStatus.FINISHED, report.summary, **details)
        return
    await audit(AuditStatus.PLANNED, plan.summary(), **details)
    options = ExecutionOptions(
        throttle_bytes_per_sec=rate, max_moves_per_broker=params.max_moves_per_broker,
        max_moves_per_cluster=params.max_moves_per_cluster, timeout_s=params.timeout_s,
        cancel_on_timeout=params.cancel_on_timeout,
    )  # fmt: skip
    await audit(AuditStatus.STARTED, f"moving {len(plan.moves)} partition(s): {plan.summary()}", **details)
    try:
        result = await execute_task(ops, store, plan, cluster, report.run_id or "", params.actor, options, lock)
    except SafetyError as exc:  # refused before anything moved (foreign reassignment, stale plan)
        await audit(AuditStatus.REFUSED, f"reassignment refused: {exc}", **details)
        report.audit = audit.records
        raise
    except Exception as exc:
        await audit(AuditStatus.FAILED, f"reassignment failed: {type(exc).__name__}: {exc}", **details)
        report.audit = audit.records
        raise
    report.execution = result.to_dict()
    outcome = {"execution": _brief(result.to_dict())}
    if not result.ok:
        report.status = result.status
        report.summary = f"reassignment {result.summary()}"
        await audit(AuditStatus.FAILED, report.summary, **details, **outcome)
        await _final_artifact(report, audit)
        raise ReassignmentIncomplete(report.summary + _first_notes(result), report)
    moved = [(m.topic, m.partition) for m in plan.moves]
    try:
        verify = await wait_isr_full(block, partitions=moved, timeout_s=verify_timeout)
    except IsrNotFull as exc:
        report.status = "isr_not_full"
        report.verify = exc.report.model_dump()
        report.summary = f"moves done ({result.summary()}) but {exc}"
        await audit(AuditStatus.FAILED, report.summary, **details, **outcome)
        await _final_artifact(report, audit)
        raise ReassignmentIncomplete(report.summary, report) from None
    report.verify = verify.model_dump()
    report.status = "completed"
    report.summary = f"reassignment {result.summary()}; {verify.message}"
    await audit(AuditStatus.FINISHED, report.summary, **details, **outcome)
    await _final_artifact(report, audit)
    logger.info("[%s] %s", cluster, report.summary)


def _brief(value: Any, limit: int = 50) -> Any:
    """The result with long lists/dicts cut (an audit record must stay far below Kafka's 1 MB)."""
    if isinstance(value, dict):
        items = list(value.items())
        out = {k: _brief(v, limit) for k, v in items[:limit]}
        if len(items) > limit:
            out["..."] = f"{len(items) - limit} more"
        return out
    if isinstance(value, list):
        more = [f"... {len(value) - limit} more"] if len(value) > limit else []
        return [_brief(v, limit) for v in value[:limit]] + more
    return value


def _first_notes(result: ExecutionResult) -> str:
    bits = []
    if result.failed:
        bits.append("failed: " + capped([f"{k} ({v})" for k, v in result.failed.items()], limit=5, sep="; "))
    if result.still_running:
        bits.append("still running: " + capped(result.still_running, limit=10))
    bits += result.notes[:3]
    return ("; " + "; ".join(bits)) if bits else ""


async def _final_artifact(report: ReassignReport, audit: _Audit) -> None:
    report.audit = audit.records
    await acreate_markdown_artifact(
        key=f"reassign-result-{report.cluster}", markdown=_result_markdown(report),
        description=f"Reassignment result on {report.cluster}",
    )  # fmt: skip


def _parse_partition(name: str) -> PartitionKey:
    topic, sep, part = name.rpartition("-")
    if not sep or not topic or not part.isdigit():
        raise ConfigError(f'{name!r} is not "topic-partition" (e.g. orders-3)')
    return topic, int(part)


@flow(name="cancel-reassignment", retries=0)
async def cancel_reassignment(cluster: str, params: CancelParams) -> CancelReport:
    """Cancel moves in flight: revert them to their original replicas (never by an unclean election).

    Default: every move kafka-medic started (from its journal). Holding the cluster lock (no
    reassign run active), it also removes the journal's throttles once the reverts are done;
    otherwise the active run notices the reverts, stops and cleans its own throttles.
    """
    logger = get_run_logger()
    block = await load_cluster(cluster)
    keys_requested = [_parse_partition(p) for p in params.partitions]
    run_id = _run_id()
    audit = _Audit(block, CANCEL_ACTION, params.actor, (), run_id)
    store = PrefectJournalStore()
    ops = ClusterOps(block)
    try:
        try:
            async with coordination.acluster_lock(cluster, wait_s=params.lock_wait_s) as lock:
                return await _cancel(ops, store, cluster, params, keys_requested, audit, lock, held=True)
        except coordination.ClusterBusy:
            logger.warning("[%s] a reassign run holds the lock: submitting the cancellation only", cluster)
            return await _cancel(ops, store, cluster, params, keys_requested, audit, None, held=False)
    finally:
        ops.close()
        audit.close()


async def _cancel(
    ops: ClusterOps, store: JournalStore, cluster: str, params: CancelParams, requested: list[PartitionKey],
    audit: _Audit, lock: Any, *, held: bool,
) -> CancelReport:  # fmt: skip
    logger = get_run_logger()
    journal = await store.load(cluster)
    ours = journal.keys if journal is not None else set()
    state = await call_with_retries(ops.state, what="reading the cluster state")
    running = state.reassigning_keys
    if requested:
        foreign = sorted(k for k in requested if k in running and k not in ours)
        if foreign and not params.include_foreign:
            msg = (
                f"refusing to cancel reassignments kafka-medic did not start: "
                f"{capped([f'{t}-{p}' for t, p in foreign])}; set include_foreign to cancel them anyway"
            )
            await audit(AuditStatus.REFUSED, msg, params=params.model_dump())
            raise SafetyError(msg)
        keys = requested
    else:
        keys = sorted(running if params.include_foreign else ours & running)
    details = {"params": params.model_dump(), "partitions": [f"{t}-{p}" for t, p in keys][:200]}
    if not keys:
        summary = "nothing to cancel: no matching reassignment is in progress"
        result_dict: dict[str, Any] = {"requested": 0}
        removed = None
        if held and journal is not None and not journal.empty:
            removed = await _clean_journal(ops, store, journal)
            summary += f"; removed leftover throttles ({removed})"
        await audit(AuditStatus.FINISHED, summary, **details)
        return CancelReport(
            cluster=cluster, summary=summary, held_lock=held, result=result_dict,
            throttles_removed=None if removed is None else {"summary": removed}, audit=audit.records,
        )  # fmt: skip
    await audit(AuditStatus.STARTED, f"cancelling {len(keys)} reassignment(s)", **details)
    try:
        # Our own moves go back to their exact original order (preferred leader included).
        originals = {(m.topic, m.partition): m.old_replicas for m in (journal.moves if journal else ())}
        result = await cancel_reassignments(
            ops, keys, allow_partial=params.allow_partial, timeout_s=params.timeout_s, restore_order=originals
        )
    except MedicError as exc:
        await audit(AuditStatus.REFUSED, str(exc), **details)
        raise
    removed = None
    if held and journal is not None:
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
    logger.info("[%s] %s", cluster, summary)
    report = CancelReport(
        cluster=cluster, summary=summary, held_lock=held, result=result.to_dict(),
        throttles_removed=None if removed is None else {"summary": removed}, audit=audit.records,
    )  # fmt: skip
    if not ok:
        raise MedicError(f"cancellation incomplete: {summary}; errors: {result.errors}")
    return report


async def _clean_journal(ops: ClusterOps, store: JournalStore, journal: Any) -> str:
    """Remove the journal's throttles that no running move needs (all of them once reverted)."""
    ledger = Ledger(ops, store, journal)
    state = await call_with_retries(ops.state, what="reading the cluster state")
    released = await ledger.release(state)
    return released.summary()
