"""``preferred-leader-election``: put leadership back on each partition's preferred replica."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field, field_validator

from blocks.kafka_cluster import TOPIC_NAME_RE
from flows.maintenance_common import (
    LOCK_WAIT,
    Audit,
    cluster_lock,
    elect_preferred,
    load_block,
    partition_names,
    read_partitions,
)
from kafka_medic import coordination
from kafka_medic.audit import AuditStatus
from kafka_medic.errors import SafetyError
from kafka_medic.maintenance.election import election_candidates, election_scope, parse_partition


class ElectLeadersParams(BaseModel):
    """What to elect. Nothing set = every partition whose leader is not its preferred replica."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topics: list[str] | None = Field(
        None, description="Only partitions of these topics (default: every topic).", max_length=10_000
    )
    partitions: list[str] | None = Field(
        None,
        description='Only these partitions, written "topic-partition" (e.g. "orders-3"); combined with topics.',
        max_length=100_000,
    )
    dry_run: bool = Field(True, description="Only report which leaders would move; change nothing.")
    verify_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="How long to wait for the new leaders to show up in metadata."
    )
    lock_wait_s: float = LOCK_WAIT

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for t in value:
            if not TOPIC_NAME_RE.match(t):
                raise ValueError(f"not a valid Kafka topic name: {t!r}")
        return sorted(set(value))

    @field_validator("partitions")
    @classmethod
    def _partitions(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for spec in value:
            parse_partition(spec)
        return sorted(set(value))


DEFAULT_ELECT = ElectLeadersParams()  # frozen: safe to share as a default


class ElectionReport(BaseModel):
    cluster: str
    dry_run: bool
    eligible: list[str] = Field(description="partitions whose leader would move / was asked to move")
    blocked: list[dict[str, Any]] = Field(description="skewed partitions whose preferred replica is out of sync")
    moved: int = Field(0, description="leaders now on their preferred replica (0 in a dry run)")
    not_moved: list[str] = Field(default_factory=list)
    errors: dict[str, str] = Field(default_factory=dict)
    audit: list[dict[str, Any]] = Field(default_factory=list)


@flow(name="preferred-leader-election", timeout_seconds=3600, retries=0)
async def preferred_leader_election(cluster: str, params: ElectLeadersParams = DEFAULT_ELECT) -> ElectionReport:
    """Move leadership back to each partition's preferred replica (all partitions by default).

    Kafka leaves leadership where failover put it (the sandbox, like many clusters, runs with
    auto.leader.rebalance.enable=false), so after a restart or a replacement some brokers lead
    more than their share. Only partitions whose preferred replica is in sync are elected.

    Args:
        cluster: Name of the cluster (its KafkaCluster block), e.g. "sandbox".
        params: Which partitions (default: all), dry run or not, how long to wait.
    """
    logger = get_run_logger()
    block = await load_block(cluster)
    audit = Audit(block, "preferred_leader_election")
    scope = election_scope(await read_partitions(block), params.topics, params.partitions)
    eligible, blocked = election_candidates(scope)
    report = ElectionReport(
        cluster=cluster, dry_run=params.dry_run, eligible=[f"{t}-{p}" for t, p in eligible], blocked=blocked
    )
    if params.dry_run:
        await audit(AuditStatus.PLANNED, f"dry run: {len(eligible)} leader(s) would move to their preferred replica",
                    details={"partitions": report.eligible[:500], "blocked": len(blocked)})  # fmt: skip
    elif not eligible:
        await audit(AuditStatus.SKIPPED, "every leader is already on its preferred replica (or cannot be elected)",
                    details={"blocked": len(blocked)})  # fmt: skip
    else:
        try:
            async with cluster_lock(cluster, params.lock_wait_s) as lock:
                # Re-read under the lock: the state may have changed while we waited.
                scope = election_scope(await read_partitions(block), params.topics, params.partitions)
                eligible, blocked = election_candidates(scope)
                report.eligible, report.blocked = [f"{t}-{p}" for t, p in eligible], blocked
                await audit(AuditStatus.STARTED, f"electing preferred leaders for {len(eligible)} partition(s)",
                            details={"partitions": report.eligible[:500]})  # fmt: skip
                lock.ensure_held()
                outcome = await elect_preferred(block, eligible, params.verify_timeout_s)
        except coordination.ClusterBusy as exc:
            await audit(AuditStatus.SKIPPED, str(exc))
            raise
        except Exception as exc:
            await audit(AuditStatus.FAILED, f"preferred leader election failed: {exc}")
            raise
        report.moved, report.not_moved, report.errors = outcome["moved"], outcome["not_moved"], outcome["errors"]
        summary = f"{report.moved} of {len(eligible)} leader(s) moved to their preferred replica"
        if report.not_moved:
            summary += f"; not moved: {partition_names(parse_partition(s) for s in report.not_moved)}"
        status = AuditStatus.FINISHED if not report.not_moved else AuditStatus.FAILED
        await audit(status, summary, details={"errors": report.errors})
    report.audit = audit.records
    await acreate_markdown_artifact(
        key=f"leader-election-{cluster}",
        markdown=_election_markdown(report),
        description=f"Leader election on {cluster}",
    )
    logger.info("[%s] %s", cluster, _election_line(report))
    if not params.dry_run and report.not_moved:
        raise SafetyError(f"{len(report.not_moved)} leader(s) did not move: {', '.join(report.not_moved[:20])}")
    return report


def _election_line(r: ElectionReport) -> str:
    if r.dry_run:
        return f"dry run: {len(r.eligible)} leader(s) would move, {len(r.blocked)} cannot (preferred out of sync)"
    return f"{r.moved} leader(s) moved, {len(r.not_moved)} did not, {len(r.blocked)} cannot (preferred out of sync)"


def _election_markdown(r: ElectionReport) -> str:
    lines = [f"# Preferred leader election on `{r.cluster}`", "", f"**{_election_line(r)}**", ""]
    if r.eligible:
        lines += ["Partitions: " + ", ".join(r.eligible[:200]) + (" ..." if len(r.eligible) > 200 else ""), ""]
    if r.blocked:
        lines += ["| partition | leader | preferred | why not |", "|---|---|---|---|"]
        lines += [f"| {b['partition']} | {b['leader']} | {b['preferred']} | {b['reason']} |" for b in r.blocked[:200]]
    return "\n".join(lines)
