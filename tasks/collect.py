"""Looking at a cluster: the collection task, and ``look_now`` -- the one "look at the cluster now".

Every caller that judges the cluster (the health check, the guards of every remediation and their
re-checks, what-if, the rolling restart before each step) looks the same way: a *fresh* collection
pass with everything automation uses (brokers remembered from earlier passes, EC2 status, the
listener probe the policy asks for), evaluated with the persisted down-since times so grace periods
stay honest, and judged with the persisted scores and ladder (:mod:`kafka_medic.judgment`) so a
degraded broker is acted on only on evidence over time. A look never replays an earlier sample:
the judgment counts an observation once, and a look writes nothing (the health check persists).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from prefect import task

from blocks.kafka_cluster import KafkaCluster
from kafka_medic.judgment import Judgment, Ladder, Scores, judge
from kafka_medic.monitor.collector import CollectResult, KnownBroker, collect_snapshot
from kafka_medic.rules import Evaluation, evaluate
from kafka_medic.rules.engine import with_findings
from kafka_medic.snapshot import ClusterSnapshot, WorkOwnership
from kafka_medic.state import MaintenanceState, grace_after_maintenance
from tasks.ec2 import ec2_lookup_for
from tasks.locks import lock_held
from tasks.state import cluster_state, journal_store

log = logging.getLogger("kafka_medic.collect")


def probe_timeout(cluster: KafkaCluster) -> float | None:
    """The listener-probe bound the cluster's policy asks for, or None when refusals do not count."""
    p = cluster.policy
    return p.listener_probe_timeout_s if p.refused_listener_is_down else None


@task(name="collect-cluster", retries=1, retry_delay_seconds=2, cache_policy=None)
async def collect_cluster(cluster: KafkaCluster, known: dict[int, KnownBroker]) -> CollectResult:
    """One collection pass in a worker thread. Never raises for an unhealthy cluster: what could
    not be read is in ``snapshot.issues``."""
    return await asyncio.to_thread(
        collect_snapshot, cluster, known_brokers=known, ec2_lookup=ec2_lookup_for(cluster),
        probe_timeout_s=probe_timeout(cluster),
    )  # fmt: skip


@dataclass(frozen=True)
class Look:
    """One fresh look: what was collected, how the rules judge it, and the state it was judged with."""

    result: CollectResult
    evaluation: Evaluation
    down_since: dict[int, datetime]  # as stored before this look (the evaluation has the new map)
    known: dict[int, KnownBroker]  # as stored before this look (the result has the new map)
    maintenance: MaintenanceState | None
    judgment: Judgment
    scores: Scores  # as stored before this look (the judgment has the new ones)
    ladder: Ladder
    evaluate_s: float = 0.0

    @property
    def snapshot(self) -> ClusterSnapshot:
        return self.result.snapshot

    @property
    def in_maintenance(self) -> bool:
        return self.maintenance is not None and self.maintenance.on


async def work_ownership(cluster_name: str) -> WorkOwnership | None:
    """Who may own throttles and reassignments now: a holder of the mutate lock, or the journal an
    ended run left. None when Prefect cannot say (the leftover rules then stay silent)."""
    try:
        held, journal = await asyncio.gather(lock_held(cluster_name), journal_store().load(cluster_name))
    except Exception as exc:  # a look must not fail over a bookkeeping read
        log.warning("[%s] cannot read lock/journal state for the leftover-work rules: %s", cluster_name, exc)
        return None
    if journal is None:
        return WorkOwnership(lock_held=held)
    return WorkOwnership(held, journal.run_id, frozenset(journal.keys), frozenset(journal.owned.brokers))


async def _owned_throughout(
    cluster_name: str, before: WorkOwnership | None, snapshot: ClusterSnapshot
) -> WorkOwnership | None:
    """Ownership over the whole collection: a run that held the lock before *or* after it may have
    set what the snapshot shows. The second read is paid only when there is something to judge."""
    if before is None or before.lock_held:
        return before
    if not snapshot.throttles and snapshot.reassignments.empty:
        return before
    after = await work_ownership(cluster_name)
    if after is None or after.lock_held:
        return after
    return before if before.journal_run is not None else after


async def look_now(cluster: KafkaCluster, *, can_restart: bool = True) -> Look:
    """Collect ``cluster`` afresh, evaluate and judge it (see the module docstring). Reads state, writes none.

    ``can_restart``: whether the cluster's replacer can restart a broker (else the ladder passes
    the restart rung over)."""
    state = cluster_state(cluster.name)
    # Independent Prefect API reads, concurrently: every look pays them before it collects.
    known, down_since, maintenance, scores, ladder, owner = await asyncio.gather(
        state.known_brokers(), state.down_since(), state.maintenance(), state.scores(), state.ladder(),
        work_ownership(cluster.name),
    )  # fmt: skip
    result = await collect_cluster(cluster, known)
    result.snapshot.ownership = await _owned_throughout(cluster.name, owner, result.snapshot)
    t0 = time.perf_counter()
    down_since = grace_after_maintenance(down_since, maintenance)  # time in maintenance is not grace spent
    ev = evaluate(result.snapshot, cluster.policy, down_since=down_since)
    judgment = judge(
        scores, ladder, result.snapshot, ev.findings, cluster.policy, previous_down_since=down_since,
        down_since=ev.down_since, can_restart=can_restart,
    )  # fmt: skip
    ev = with_findings(ev, judgment.findings)
    return Look(
        result, ev, down_since, known, maintenance, judgment, scores, ladder, evaluate_s=time.perf_counter() - t0
    )
