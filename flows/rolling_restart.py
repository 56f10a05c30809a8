"""``rolling-restart``: restart brokers one at a time, never the next while the ISR is short.

Before every step the cluster is looked at twice, a moment apart (:func:`steady_blockers`): any
broker down, under-replicated / under-min-ISR / offline partition, reassignment in flight, or a
broker the controller does not list refuses the step. A refusal before the first restart completes
the run as ``refused`` (nothing was restarted); a stop after some restarts fails it (something
changed), with everything done so far in the report.
"""

from __future__ import annotations

import asyncio
import time

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_progress_artifact, aupdate_progress_artifact
from pydantic import BaseModel, ConfigDict, Field

from blocks.kafka_cluster import KafkaCluster
from blocks.load import aload_replacer, load_cluster
from kafka_medic.audit import AuditStatus
from kafka_medic.errors import ActionFailed, ClusterBusy, ConfigError
from kafka_medic.maintenance.election import election_candidates
from kafka_medic.maintenance.restart import host_of, restart_blockers, restart_targets
from kafka_medic.params import LOCK_WAIT, BrokerOrder
from kafka_medic.replacers import Replacer
from kafka_medic.reports.restart import RestartStep, RollingRestartReport, restart_markdown
from tasks.audit import RunAudit
from tasks.collect import Look, look_now
from tasks.kafka import elect_preferred, read_partitions, registered_brokers
from tasks.locks import cluster_lock
from tasks.replacers import restart_broker_task
from tasks.verify import wait_back_in_sync


class RollingRestartParams(BaseModel):
    """Which brokers to restart, one at a time, and how patiently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brokers: BrokerOrder = Field(
        None, description="Broker ids, restarted in this order (default: every broker, by id).", max_length=10_000
    )
    dry_run: bool = Field(True, description="Only check the cluster and list the steps; restart nothing.")
    isr_timeout_s: float = Field(
        600.0, gt=0, le=86_400, description="After each restart: how long to wait for the broker and full ISR."
    )
    settle_s: float = Field(5.0, ge=0, le=3600, description="Pause between a broker's full ISR and the next step.")
    elect_leaders_after: bool = Field(
        True, description="Run a preferred leader election at the end (restarts leave leadership skewed)."
    )
    lock_wait_s: float = LOCK_WAIT


DEFAULT_RESTART = RollingRestartParams()  # frozen: safe to share as a default


async def blockers_now(block: KafkaCluster, broker_id: int, look: Look | None = None) -> tuple[Look, list[str]]:
    """A fresh look (or ``look``, just taken) and the controller's registered brokers: every reason
    restarting ``broker_id`` is unsafe."""
    if look is None:
        look, registered = await asyncio.gather(look_now(block), registered_brokers(block))
    else:
        registered = await registered_brokers(block)
    reasons = restart_blockers(look.snapshot, look.evaluation, broker_id, registered)
    if registered is None:
        reasons.append("the controller's list of registered brokers could not be read")
    return look, reasons


async def steady_blockers(block: KafkaCluster, broker_id: int, *, gap_s: float = 2.0) -> tuple[Look, list[str]]:
    """Two looks ``gap_s`` apart; the step may go only if both find nothing wrong.

    A single look can fall in the second after a failure before every view of the cluster shows
    it; restarting a broker then would take two down at once.
    """
    first, reasons = await blockers_now(block, broker_id)
    if reasons:
        return first, reasons
    await asyncio.sleep(gap_s)
    return await blockers_now(block, broker_id)


@flow(name="rolling-restart", timeout_seconds=7 * 86_400, retries=0)
async def rolling_restart(cluster: str, params: RollingRestartParams = DEFAULT_RESTART) -> RollingRestartReport:
    """Restart brokers one at a time with their disks, never the next while the ISR is short.

    Args:
        cluster: Name of the cluster (its KafkaCluster block), e.g. "sandbox".
        params: Which brokers (default: all, by id), dry run or not, how patiently.
    """
    block = await load_cluster(cluster)
    audit = RunAudit(block, "rolling_restart")
    replacer = await aload_replacer(block)
    if not replacer.supports_restart:
        raise ConfigError(f"cluster {cluster!r}: its {replacer.kind} replacer cannot restart brokers")
    first = await look_now(block)
    targets = restart_targets(first.snapshot, params.brokers)
    report = RollingRestartReport(cluster=cluster, dry_run=params.dry_run, brokers=targets)
    _, report.blockers = await blockers_now(block, targets[0], first)
    verdict = "would be refused now: " + "; ".join(report.blockers) if report.blockers else "could start now"
    if params.dry_run:
        report.summary = f"dry run: restart brokers {targets} one at a time; {verdict}"
        await audit(AuditStatus.PLANNED, report.summary, brokers=targets)
    elif report.blockers:
        report.status = "refused"
        report.summary = f"rolling restart of {cluster!r} refused, nothing was restarted: " + "; ".join(report.blockers)
        await audit(AuditStatus.REFUSED, report.summary, brokers=targets)
    else:
        try:
            await _restart_all(block, params, report, audit, replacer)
        except ClusterBusy as exc:
            report.status, report.summary = "busy", await audit.busy(exc, brokers=targets)
    report.audit = audit.records
    await acreate_markdown_artifact(key=f"rolling-restart-{cluster}", markdown=restart_markdown(report))
    get_run_logger().info("[%s] %s", cluster, report.summary)
    return report


async def _restart_all(
    block: KafkaCluster,
    params: RollingRestartParams,
    report: RollingRestartReport,
    audit: RunAudit,
    replacer: Replacer,
) -> None:
    """Under the cluster lock, one broker at a time; each step re-checked twice, then waited for full ISR."""
    targets, done = report.brokers, []
    progress = await acreate_progress_artifact(
        progress=0.0, key=f"rolling-restart-{block.name}-progress", description=f"Rolling restart of {block.name}"
    )
    async with cluster_lock(block.name, wait_s=params.lock_wait_s) as lock:
        await audit(AuditStatus.STARTED, f"rolling restart of brokers {targets}", brokers=targets)
        try:
            for i, broker_id in enumerate(targets):
                lock.ensure_held()
                # Re-checked before every step, under the lock: the cluster may have changed meanwhile.
                now, blockers = await steady_blockers(block, broker_id)
                if blockers:
                    report.blockers = blockers
                    raise ActionFailed(
                        f"stopping before broker {broker_id} (restarted so far: {done}): " + "; ".join(blockers)
                    )
                get_run_logger().info("[%s] restarting broker %d (%d/%d)", block.name, broker_id, i + 1, len(targets))
                t0 = time.monotonic()
                outcome = await restart_broker_task(replacer, broker_id, host_of(now.snapshot, broker_id))
                restart_s = time.monotonic() - t0
                isr_s = await wait_back_in_sync(block, broker_id=broker_id, timeout_s=params.isr_timeout_s)
                done.append(broker_id)
                step = RestartStep(broker_id=broker_id, restart_s=round(restart_s, 1), isr_full_s=round(isr_s, 1),
                                   summary=outcome.get("summary", ""))  # fmt: skip
                report.steps.append(step)
                await audit(AuditStatus.FINISHED, f"broker {broker_id} restarted; ISR full after {isr_s:.0f} s",
                            brokers=[broker_id], step=step.model_dump())  # fmt: skip
                await aupdate_progress_artifact(progress, 100.0 * (i + 1) / len(targets))
                if i + 1 < len(targets) and params.settle_s:
                    await asyncio.sleep(params.settle_s)
            if params.elect_leaders_after:
                eligible, _blocked = election_candidates(await read_partitions(block))
                report.election = await elect_preferred(block, eligible, 60.0)
        except Exception as exc:
            report.status, report.summary = "stopped", f"rolling restart stopped after {done}: {exc}"
            await audit(AuditStatus.FAILED, report.summary, brokers=targets)
            report.audit = audit.records
            await acreate_markdown_artifact(key=f"rolling-restart-{block.name}", markdown=restart_markdown(report))
            raise
    report.status, report.summary = "completed", f"rolling restart of {targets} complete"
    await audit(AuditStatus.FINISHED, report.summary, brokers=targets)
