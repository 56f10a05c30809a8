"""``preferred-leader-election``: put leadership back on each partition's preferred replica."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from blocks.load import load_cluster
from kafka_medic.audit import AuditStatus
from kafka_medic.errors import ActionFailed, ClusterBusy
from kafka_medic.maintenance.election import election_candidates, election_scope, parse_partition, partition_names
from kafka_medic.params import LOCK_WAIT, PartitionNames, TopicNames
from kafka_medic.reports.election import ElectionReport, election_line, election_markdown
from tasks.audit import RunAudit
from tasks.kafka import elect_preferred, read_partitions
from tasks.locks import cluster_lock


class ElectLeadersParams(BaseModel):
    """What to elect. Nothing set = every partition whose leader is not its preferred replica."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topics: TopicNames = Field(
        None, description="Only partitions of these topics (default: every topic).", max_length=10_000
    )
    partitions: PartitionNames = Field(
        None,
        description='Only these partitions, written "topic-partition" (e.g. "orders-3"); combined with topics.',
        max_length=100_000,
    )
    dry_run: bool = Field(True, description="Only report which leaders would move; change nothing.")
    verify_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="How long to wait for the new leaders to show up in metadata."
    )
    lock_wait_s: float = LOCK_WAIT


DEFAULT_ELECT = ElectLeadersParams()  # frozen: safe to share as a default


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
    block = await load_cluster(cluster)
    audit = RunAudit(block, "preferred_leader_election")
    scope = election_scope(await read_partitions(block), params.topics, params.partitions)
    eligible, blocked = election_candidates(scope)
    report = ElectionReport(
        cluster=cluster, dry_run=params.dry_run, eligible=[f"{t}-{p}" for t, p in eligible], blocked=blocked
    )
    if params.dry_run:
        report.summary = f"dry run: {len(eligible)} leader(s) would move to their preferred replica"
        await audit(AuditStatus.PLANNED, report.summary, partitions=report.eligible[:500], blocked=len(blocked))
    elif not eligible:
        report.status = "nothing_to_do"
        report.summary = "every leader is already on its preferred replica (or cannot be elected)"
        await audit(AuditStatus.SKIPPED, report.summary, blocked=len(blocked))
    else:
        try:
            await _elect(block, params, report, audit)
        except ClusterBusy as exc:
            report.status, report.summary = "busy", await audit.busy(exc)
    report.audit = audit.records
    await acreate_markdown_artifact(
        key=f"leader-election-{cluster}", markdown=election_markdown(report),
        description=f"Leader election on {cluster}",
    )  # fmt: skip
    get_run_logger().info("[%s] %s", cluster, election_line(report))
    if report.status == "failed":
        raise ActionFailed(f"{len(report.not_moved)} leader(s) did not move: {', '.join(report.not_moved[:20])}")
    return report


async def _elect(block: Any, params: ElectLeadersParams, report: ElectionReport, audit: RunAudit) -> None:
    """Under the cluster lock: re-read (the state may have changed while we waited), elect, verify."""
    async with cluster_lock(block.name, wait_s=params.lock_wait_s) as lock:
        scope = election_scope(await read_partitions(block), params.topics, params.partitions)
        eligible, report.blocked = election_candidates(scope)
        report.eligible = [f"{t}-{p}" for t, p in eligible]
        await audit(AuditStatus.STARTED, f"electing preferred leaders for {len(eligible)} partition(s)",
                    partitions=report.eligible[:500])  # fmt: skip
        lock.ensure_held()
        try:
            outcome = await elect_preferred(block, eligible, params.verify_timeout_s)
        except Exception as exc:
            await audit(AuditStatus.FAILED, f"preferred leader election failed: {exc}")
            raise
    report.moved, report.not_moved, report.errors = outcome["moved"], outcome["not_moved"], outcome["errors"]
    report.summary = f"{report.moved} of {len(eligible)} leader(s) moved to their preferred replica"
    if report.not_moved:
        report.summary += f"; not moved: {partition_names(parse_partition(s) for s in report.not_moved)}"
    report.status = "failed" if report.not_moved else "completed"
    await audit(AuditStatus.FAILED if report.not_moved else AuditStatus.FINISHED, report.summary, errors=report.errors)
