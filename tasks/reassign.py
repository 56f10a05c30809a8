"""The reassignment's I/O steps as Prefect tasks: snapshot, adoption, execution (retried on transient
Kafka errors only, with exponential backoff), and the read-only throttle check of a dry run."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from kafka_medic.audit import AuditStatus
from kafka_medic.executor import (
    AdoptionResult,
    AdoptionTimeout,
    ClusterOps,
    ExecutionOptions,
    ExecutionResult,
    JournalStore,
    Progress,
    adopt,
    execute_plan,
    retry_on_transient,
)
from kafka_medic.executor.throttles import needed_for
from kafka_medic.executor.transient import call_with_retries
from kafka_medic.planner import DrainRequest, Move, Plan, estimate_plan, plan_moves
from kafka_medic.policy import HealthPolicy
from kafka_medic.reports.reassign import ReassignReport, cost_markdown, fill_plan_figures, plan_rows
from kafka_medic.snapshot import ClusterSnapshot
from tasks.audit import RunAudit, current_run_id
from tasks.state import journal_store

RETRY: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=1),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_on_transient,
    "cache_policy": NO_CACHE,
}


@task(name="reassign-snapshot", **RETRY)
async def snapshot_task(ops: ClusterOps) -> ClusterSnapshot:
    """A full snapshot; a cluster that cannot be read raises a transient error (retried)."""
    return await asyncio.to_thread(ops.snapshot)


@task(name="reassign-adopt", **RETRY)
async def adopt_task(ops: ClusterOps, store: JournalStore, cluster: str, timeout_s: float) -> AdoptionResult | None:
    """Finish (or report) what a dead earlier run left in the journal, under the caller's lock."""
    return await _adopt_and_close(ops, store, cluster, timeout_s)


async def _adopt_and_close(
    ops: ClusterOps, store: JournalStore, cluster: str, timeout_s: float
) -> AdoptionResult | None:
    """Adopt the journal and write the end of the dead run's audit trail (None: nothing to adopt)."""
    result = await adopt(ops, store, cluster, timeout_s=timeout_s)
    if result is not None:
        await close_adopted_trail(ops.cluster, result)
    return result


async def close_adopted_trail(block: Any, adoption: AdoptionResult) -> None:
    """The dead run's "started" gets its end: a run whose journal still lists moves died before it
    could clear them (killed, crashed), so its audit trail would read "still running" forever.
    Written under the dead run's id and actor, saying who adopted its work and how that went. A
    journal with no moves (only a throttle rate left on a broker that was down) is a run that ended
    and wrote its own end: nothing to close."""
    if not adoption.moves:
        return
    audit = RunAudit(block, "reassign", actor=adoption.actor, run_id=adoption.run_id)
    await audit(
        AuditStatus.FAILED,
        f"run {adoption.run_id} ended without closing its trail (killed or crashed); "
        f"run {current_run_id() or 'local'} adopted its work: {adoption.summary()}",
        adopted=adoption.to_dict(),
    )


#: After a heal, how long its tidy-up waits for moves a dead run left running (someone else's work:
#: what still runs then stays in the journal for the next reassign run).
TIDY_WAIT_S = 20.0


@task(name="tidy-after-heal", cache_policy=NO_CACHE)
async def tidy_after_heal(block: Any, timeout_s: float = TIDY_WAIT_S) -> str | None:
    """Adopt what an interrupted reassignment left in the journal, now that the healed broker is back.

    The typical case: a broker died mid-drain, and the drain handed the cluster back with the
    throttle rate on the dead broker still set (a broker's dynamic configs live in the KRaft
    metadata, so they survive its restart and its wipe); without this, the heal would end with a
    ``leftover_throttles`` warning until someone ran a reassignment. The caller holds the cluster's
    mutate lock, so the journal's writer is gone. Never fails the heal: returns a line for its
    notes, None when the journal is empty (the usual case).
    """
    try:
        with ClusterOps(block) as ops:
            result = await _adopt_and_close(ops, journal_store(), block.name, timeout_s)
    except AdoptionTimeout as exc:
        line = f"left for the next reassign run: {exc}"
    except Exception as exc:  # a tidy-up, never the heal's outcome
        line = (
            f"could not adopt the interrupted run's leftovers ({type(exc).__name__}: {exc}); the next reassign run will"
        )
    else:
        line = None if result is None else result.summary()
    if line is not None:
        get_run_logger().warning("[%s] %s", block.name, line)
    return line


@task(name="reassign-execute", **{**RETRY, "retries": 1})
async def execute_task(
    ops: ClusterOps, store: JournalStore, moves: list[Move], cluster: str, run_id: str, actor: str,
    options: ExecutionOptions, lock: Any,
) -> ExecutionResult:  # fmt: skip
    """Execute the moves with a progress artifact. A retry (transient error) is safe: it adopts the
    first attempt's moves, counts the finished ones as in place and re-checks the rest."""
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
        ops, store, moves, cluster=cluster, run_id=run_id, actor=actor, options=options,
        on_progress=on_progress, guard=lock.ensure_held,
    )  # fmt: skip


async def preexisting_throttles(ops: ClusterOps, plan: Plan, snapshot: ClusterSnapshot) -> list[str]:
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


async def publish_plan(
    report: ReassignReport, ops: ClusterOps, snapshot: ClusterSnapshot, plan: Plan, *, rate: int,
    caps: tuple[int, int], request: dict[str, Any], policy: HealthPolicy | None = None,
) -> None:  # fmt: skip
    """The plan on the report (figures, throttles someone else set) and in the UI (plan table, cost)."""
    cluster = snapshot.cluster
    fill_plan_figures(report, snapshot, plan, rate, caps, policy)
    report.preexisting_throttles = await preexisting_throttles(ops, plan, snapshot) if plan.moves else []
    await acreate_table_artifact(
        key=f"reassign-plan-{cluster}", table=plan_rows(plan, snapshot) or [{"partition": "(nothing to move)"}],
        description=f"Reassignment plan for {cluster}: {plan.summary()}",
    )  # fmt: skip
    markdown = cost_markdown(
        cluster, request, report.dry_run, caps, plan, rate, report.estimated_copy_s, report.waves,
        report.preexisting_throttles, report.journal, report.cost_estimate,
    )  # fmt: skip
    await acreate_markdown_artifact(
        key=f"reassign-cost-{cluster}", markdown=markdown, description=f"Cost of the reassignment on {cluster}"
    )


@task(name="estimate-drain", cache_policy=NO_CACHE)
async def estimate_drain(
    ops: ClusterOps, broker_id: int, exclude: list[int], policy: HealthPolicy
) -> dict[str, Any] | None:
    """The cost of draining ``broker_id`` (``CostEstimate.record()``), planned as the reassign flow
    plans it, for the drain's "started" audit record: that record is written before the reassign
    subflow plans, and an operator reading the trail should see what the drain set out to copy.
    Never raises: an estimate that cannot be made is None (the drain goes ahead, the log says why)."""

    def run() -> dict[str, Any]:
        snapshot = ops.snapshot()
        plan = plan_moves(snapshot, DrainRequest(brokers=[broker_id], exclude=exclude), allow_partial=True)
        return estimate_plan(plan, policy, what=f"drain of broker {broker_id}").record()

    try:
        return await asyncio.to_thread(run)
    except Exception as exc:
        get_run_logger().warning("could not estimate the cost of draining broker %s: %s", broker_id, exc)
        return None
