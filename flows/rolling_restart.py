"""``rolling-restart``: restart brokers one at a time, never the next while the ISR is short."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_progress_artifact, aupdate_progress_artifact
from pydantic import BaseModel, ConfigDict, Field, field_validator

from blocks.kafka_cluster import KafkaCluster
from flows.maintenance_common import (
    LOCK_WAIT,
    Audit,
    cluster_lock,
    elect_preferred,
    load_block,
    read_partitions,
    wait_back_in_sync,
)
from kafka_medic import coordination
from kafka_medic.audit import AuditStatus
from kafka_medic.cluster_reads import (
    describe_cluster,
    make_admin,
)
from kafka_medic.collector import collect_snapshot
from kafka_medic.errors import ConfigError, SafetyError
from kafka_medic.maintenance.election import election_candidates
from kafka_medic.maintenance.restart import host_of, restart_blockers, restart_targets
from kafka_medic.rules import evaluate


class RollingRestartParams(BaseModel):
    """Which brokers to restart, one at a time, and how patiently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brokers: list[int] | None = Field(
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

    @field_validator("brokers")
    @classmethod
    def _brokers(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("list at least one broker id, or leave brokers unset for all")
        if any(b < 0 for b in value):
            raise ValueError("broker ids must be >= 0")
        if len(set(value)) != len(value):
            raise ValueError("a broker id is listed twice")
        return value


DEFAULT_RESTART = RollingRestartParams()  # frozen: safe to share as a default


class Assessment(BaseModel):
    """One look at the cluster before a restart step (arbitrary types: frames inside)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    snapshot: Any
    evaluation: Any
    registered: set[int] | None = Field(None, description="DescribeCluster's brokers; None if unreadable")

    def blockers(self, broker_id: int) -> list[str]:
        reasons = restart_blockers(self.snapshot, self.evaluation, broker_id, self.registered)
        if self.registered is None:
            reasons.append("the controller's list of registered brokers could not be read")
        return reasons


def _registered(block: KafkaCluster) -> set[int] | None:
    try:
        return {b.broker_id for b in describe_cluster(make_admin(block.confluent_config()), 10.0).brokers}
    except Exception:
        return None


@task(name="assess-cluster", cache_policy=None)
async def assess(block: KafkaCluster) -> Assessment:
    """Collect a snapshot, evaluate the health rules, ask the controller who is registered (read-only)."""
    result = await asyncio.to_thread(collect_snapshot, block)
    registered = await asyncio.to_thread(_registered, block)
    down_since = await coordination.aload_down_since(block.name)
    ev = evaluate(result.snapshot, block.policy, down_since=down_since)
    return Assessment(snapshot=result.snapshot, evaluation=ev, registered=registered)


async def assess_steady(block: KafkaCluster, broker_id: int, *, gap_s: float = 2.0) -> tuple[Assessment, list[str]]:
    """Two assessments ``gap_s`` apart; the step may go only if both find nothing wrong.

    A single look can fall in the second after a failure before every view of the cluster shows
    it; restarting a broker then would take two down at once.
    """
    first = await assess(block)
    reasons = first.blockers(broker_id)
    if reasons:
        return first, reasons
    await asyncio.sleep(gap_s)
    second = await assess(block)
    return second, second.blockers(broker_id)


class RestartStep(BaseModel):
    broker_id: int
    restart_s: float
    isr_full_s: float
    summary: str


class RollingRestartReport(BaseModel):
    cluster: str
    dry_run: bool
    brokers: list[int]
    blockers: list[str] = Field(default_factory=list, description="why the first step would be refused now")
    steps: list[RestartStep] = Field(default_factory=list)
    election: dict[str, Any] | None = None
    audit: list[dict[str, Any]] = Field(default_factory=list)


@task(name="restart-broker", cache_policy=None)
async def restart_broker_task(replacer: Any, broker_id: int, host: str) -> dict[str, Any]:
    """Restart one broker keeping its disk, through the cluster's replacer (sandbox, EC2 reboot)."""
    outcome = await asyncio.to_thread(replacer.restart, broker_id, host)
    return outcome.to_record()


@task(name="wait-back-in-sync", cache_policy=None)
async def wait_back_in_sync_task(block: KafkaCluster, broker_id: int | None, timeout_s: float) -> float:
    """The restarted broker registered and every partition's ISR full again (bounded)."""
    return await wait_back_in_sync(block, broker_id=broker_id, timeout_s=timeout_s)


@flow(name="rolling-restart", timeout_seconds=7 * 86_400, retries=0)
async def rolling_restart(cluster: str, params: RollingRestartParams = DEFAULT_RESTART) -> RollingRestartReport:
    """Restart brokers one at a time with their disks, never the next while the ISR is short.

    Before every step the cluster is assessed (collector + health rules + removal impact); any
    broker down, under-replicated / under-min-ISR / offline partition or reassignment in flight
    refuses the step, and the run stops with everything it did so far in the report. After every
    restart it waits for the broker to register and for every partition's ISR to be full.

    Args:
        cluster: Name of the cluster (its KafkaCluster block), e.g. "sandbox".
        params: Which brokers (default: all, by id), dry run or not, how patiently.
    """
    from kafka_medic.replacers import aload_replacer

    logger = get_run_logger()
    block = await load_block(cluster)
    audit = Audit(block, "rolling_restart")
    replacer = await aload_replacer(block)
    if not replacer.supports_restart:
        raise ConfigError(f"cluster {cluster!r}: its {replacer.kind} replacer cannot restart brokers")
    first = await assess(block)
    targets = restart_targets(first.snapshot, params.brokers)
    report = RollingRestartReport(cluster=cluster, dry_run=params.dry_run, brokers=targets)
    report.blockers = first.blockers(targets[0])
    if params.dry_run:
        verdict = "would be refused now: " + "; ".join(report.blockers) if report.blockers else "could start now"
        await audit(AuditStatus.PLANNED, f"dry run: restart brokers {targets} one at a time; {verdict}", targets)
        report.audit = audit.records
        await acreate_markdown_artifact(key=f"rolling-restart-{cluster}", markdown=_restart_markdown(report))
        return report
    if report.blockers:
        await audit(AuditStatus.REFUSED, "rolling restart refused: " + "; ".join(report.blockers), targets)
        raise SafetyError(
            f"rolling restart of {cluster!r} refused, nothing was restarted: " + "; ".join(report.blockers)
        )

    progress = await acreate_progress_artifact(
        progress=0.0, key=f"rolling-restart-{cluster}-progress", description=f"Rolling restart of {cluster}"
    )
    done: list[int] = []
    try:
        async with cluster_lock(cluster, params.lock_wait_s) as lock:
            await audit(AuditStatus.STARTED, f"rolling restart of brokers {targets}", targets)
            for i, broker_id in enumerate(targets):
                lock.ensure_held()
                # Re-assess before every step, under the lock: the cluster may have changed meanwhile.
                now, blockers = await assess_steady(block, broker_id)
                if blockers:
                    report.blockers = blockers
                    raise SafetyError(
                        f"stopping before broker {broker_id} (restarted so far: {done}): " + "; ".join(blockers)
                    )
                logger.info("[%s] restarting broker %d (%d/%d)", cluster, broker_id, i + 1, len(targets))
                t0 = time.monotonic()
                outcome = await restart_broker_task(replacer, broker_id, host_of(now.snapshot, broker_id))
                restart_s = time.monotonic() - t0
                isr_s = await wait_back_in_sync_task(block, broker_id, params.isr_timeout_s)
                done.append(broker_id)
                step = RestartStep(broker_id=broker_id, restart_s=round(restart_s, 1), isr_full_s=round(isr_s, 1),
                                   summary=outcome.get("summary", ""))  # fmt: skip
                report.steps.append(step)
                await audit(AuditStatus.FINISHED, f"broker {broker_id} restarted; ISR full after {isr_s:.0f} s",
                            [broker_id], details=step.model_dump())  # fmt: skip
                await aupdate_progress_artifact(progress, 100.0 * (i + 1) / len(targets))
                if i + 1 < len(targets) and params.settle_s:
                    await asyncio.sleep(params.settle_s)
            if params.elect_leaders_after:
                eligible, _blocked = election_candidates(await read_partitions(block))
                report.election = await elect_preferred(block, eligible, 60.0)
    except coordination.ClusterBusy as exc:
        await audit(AuditStatus.SKIPPED, str(exc), targets)
        raise
    except Exception as exc:
        await audit(AuditStatus.FAILED, f"rolling restart stopped after {done}: {exc}", targets)
        report.audit = audit.records
        await acreate_markdown_artifact(key=f"rolling-restart-{cluster}", markdown=_restart_markdown(report))
        raise
    await audit(AuditStatus.FINISHED, f"rolling restart of {targets} complete", targets)
    report.audit = audit.records
    await acreate_markdown_artifact(key=f"rolling-restart-{cluster}", markdown=_restart_markdown(report))
    return report


def _restart_markdown(r: RollingRestartReport) -> str:
    title = "dry run" if r.dry_run else f"{len(r.steps)} of {len(r.brokers)} brokers restarted"
    lines = [f"# Rolling restart of `{r.cluster}`: {title}", "", f"Order: {r.brokers}", ""]
    if r.blockers:
        lines += ["**Refused / stopped because:**", "", *[f"- {b}" for b in r.blockers], ""]
    if r.steps:
        lines += ["| broker | restart (s) | ISR full after (s) | summary |", "|---|---|---|---|"]
        lines += [f"| {s.broker_id} | {s.restart_s} | {s.isr_full_s} | {s.summary} |" for s in r.steps]
    if r.election:
        lines += ["", f"Preferred leader election afterwards: {r.election['moved']} of {r.election['requested']} moved"]
    return "\n".join(lines)
