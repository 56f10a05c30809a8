"""``what-if``: what would automatic healing do if these brokers died right now? Touches nothing.

An operator asks this before planned work ("may I take brokers 3 and 5 down together?") or to
rehearse an incident. The flow collects one snapshot, pretends the brokers are dead, and runs the
very same code automation runs: the health rules and their stand-down policy, the decision
engine, the placement planner (a drain of the dead brokers: what "reassign away" would move) and
the safety guard (which partitions would go offline or below min ISR). It writes no Variable, takes
no lock and sends nothing to the cluster; the answer is the return value and two artifacts.

The simulation (:func:`simulate_dead`) is pure and does what Kafka's controller would do when the
brokers' sessions expire: they leave every ISR, and a partition they led gets the first surviving
in-sync replica (in assignment order) as leader, or none (offline; unclean election is off).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kafka_medic import coordination
from kafka_medic.collector import collect_snapshot
from kafka_medic.decide import Decision, decide
from kafka_medic.errors import ConfigError
from kafka_medic.findings import Severity
from kafka_medic.planner import DrainRequest, Plan, PlanningError, plan_moves
from kafka_medic.policy import HealthPolicy
from kafka_medic.rules import RuleName, evaluate
from kafka_medic.safety import known_broker_ids, removal_impact
from kafka_medic.snapshot import BROKER_METRIC_COLUMNS, ClusterSnapshot, explode_replicas

#: Moves listed in the table artifact (the return value has them all).
MAX_TABLE_ROWS = 1000


class WhatIfParams(BaseModel):
    """Which brokers to pretend are dead."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    broker_ids: list[int] = Field(..., min_length=1, max_length=10_000, description="Brokers to simulate as dead.")

    @field_validator("broker_ids")
    @classmethod
    def _ids(cls, value: list[int]) -> list[int]:
        if any(b < 0 for b in value):
            raise ValueError("broker ids must be >= 0")
        return sorted(set(value))


class WhatIfReport(BaseModel):
    """The verdicts, the plan and its cost (``plan`` is ``Plan.to_dict()``)."""

    cluster: str
    broker_ids: list[int]
    safe: bool = Field(description="True when nothing would go offline or below min ISR")
    offline: list[str] = Field(description="partitions whose every in-sync replica is on those brokers")
    under_min_isr: list[str] = Field(description="partitions left with fewer in-sync replicas than min ISR")
    leaderships: int = Field(description="partitions those brokers lead (leader elections)")
    mass_failure: bool = Field(description="True when automation would stand down and page instead of healing")
    automation_allowed: bool
    verdict: str = Field(description="one line an operator can act on")
    findings: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    plan: dict[str, Any] | None = Field(description="drain plan of the dead brokers (what reassign-away would move)")
    plan_error: str | None = None
    cost: dict[str, Any] | None = None
    cross_az_bytes: float | None = None
    mode: str
    maintenance: bool


# -- pure core --------------------------------------------------------------------------------------


def _without(ids: Any, dead: set[int]) -> tuple[int, ...]:
    return tuple(int(b) for b in ids if int(b) not in dead)


def simulate_dead(snapshot: ClusterSnapshot, broker_ids: list[int]) -> ClusterSnapshot:
    """A copy of ``snapshot`` as it would look once ``broker_ids`` are dead and fenced.

    Brokers: ``alive=False``, metrics unknown. Partitions: the dead leave every ISR; a partition
    led by a dead broker is led by the first alive in-sync replica in assignment order, or nobody
    (leader -1: offline, as Kafka does with unclean leader election disabled). Reassignments in
    flight, log dirs and configs are kept as they are.
    """
    dead = {int(b) for b in broker_ids}
    brokers = snapshot.brokers.copy()
    mask = brokers["broker_id"].astype(int).isin(dead)
    brokers.loc[mask, "alive"] = False
    brokers.loc[mask, "metrics_ok"] = False
    for col in BROKER_METRIC_COLUMNS:
        if col in brokers.columns:
            brokers.loc[mask, col] = np.nan
    parts = snapshot.partitions.copy()
    if not parts.empty:
        new_isr = [_without(isr, dead) for isr in parts["isr"]]
        leaders = []
        for leader, reps, isr in zip(parts["leader"], parts["replicas"], new_isr, strict=True):
            if int(leader) >= 0 and int(leader) not in dead:
                leaders.append(int(leader))
            else:
                in_sync = set(isr)
                leaders.append(next((int(b) for b in reps if int(b) in in_sync), -1))
        parts["isr"] = new_isr
        parts["leader"] = leaders
    sizes = _sizes(snapshot)
    return replace(
        snapshot,
        brokers=brokers,
        partitions=parts,
        replicas=explode_replicas(parts, sizes),
        issues=[i for i in snapshot.issues if i.broker_id is None or i.broker_id not in dead],
    )


def _sizes(snapshot: ClusterSnapshot) -> dict[tuple[str, int, int], float]:
    r = snapshot.replicas
    if r.empty or "size_bytes" not in r:
        return {}
    known = r[r["size_bytes"].notna()]
    return {
        (str(t), int(p), int(b)): float(s)
        for t, p, b, s in zip(known["topic"], known["partition"], known["broker_id"], known["size_bytes"], strict=True)
    }


def what_if_report(
    snapshot: ClusterSnapshot,
    broker_ids: list[int],
    policy: HealthPolicy,
    *,
    has_replacer: bool,
    maintenance: bool,
    down_since: dict[int, Any] | None = None,
) -> WhatIfReport:
    """Everything automation would conclude if ``broker_ids`` died now and stayed dead past grace."""
    unknown = sorted(set(broker_ids) - known_broker_ids(snapshot))
    if unknown:
        raise ConfigError(f"unknown broker id(s) {unknown}; the cluster knows {sorted(known_broker_ids(snapshot))}")
    impact = removal_impact(snapshot, broker_ids)
    sim = simulate_dead(snapshot, broker_ids)
    # "Stayed dead past the grace period": that is when healing acts.
    past_grace = snapshot.taken_at - timedelta(seconds=policy.dead_broker_grace_s + 1)
    since = {**(down_since or {}), **dict.fromkeys(broker_ids, past_grace)}
    ev = evaluate(sim, policy, down_since=since)
    decisions: list[Decision] = decide(ev.findings, policy.mode, has_replacer=has_replacer, maintenance=maintenance)
    plan: Plan | None = None
    plan_error: str | None = None
    try:
        plan = plan_moves(sim, DrainRequest(brokers=broker_ids), allow_partial=True)
    except (ConfigError, PlanningError) as exc:
        plan_error = str(exc)
    mass = any(f.rule == RuleName.MASS_FAILURE for f in ev.findings)
    report = WhatIfReport(
        cluster=snapshot.cluster,
        broker_ids=list(broker_ids),
        safe=impact.safe,
        offline=[f"{t}-{p}" for t, p in impact.offline],
        under_min_isr=[f"{t}-{p}" for t, p in impact.under_min_isr],
        leaderships=impact.leaderships,
        mass_failure=mass,
        automation_allowed=ev.automation_allowed,
        verdict="",
        findings=[f.to_record() for f in ev.findings if f.severity is not Severity.INFO],
        decisions=[d.to_record() for d in decisions],
        plan=plan.to_dict() if plan is not None else None,
        plan_error=plan_error,
        cost=plan.cost.to_dict() if plan is not None else None,
        cross_az_bytes=plan.cost.cross_az_bytes if plan is not None else None,
        mode=str(policy.mode),
        maintenance=maintenance,
    )
    report.verdict = verdict_line(report, plan)
    return report


def verdict_line(r: WhatIfReport, plan: Plan | None) -> str:
    parts = []
    if r.safe:
        parts.append(f"SAFE: losing brokers {r.broker_ids} keeps every partition online and at min ISR")
    else:
        parts.append(
            f"UNSAFE: losing brokers {r.broker_ids} takes {len(r.offline)} partition(s) offline and "
            f"{len(r.under_min_isr)} below min ISR"
        )
    if r.mass_failure:
        parts.append("a mass failure: automation would stand down and page a human")
    elif not r.automation_allowed:
        parts.append("automation would stand down (a paging finding)")
    else:
        acting = [d for d in r.decisions if d["execute"] and d["remedy"] != "report"]
        if acting:
            d = acting[0]
            parts.append(f"automation would {d['remedy'].replace('_', ' ')} broker {d['broker_id']} first")
        elif r.decisions:
            parts.append(f"automation would not act ({r.decisions[0]['reason']})")
    if plan is not None:
        parts.append(f"drain plan: {plan.summary()}")
    return "; ".join(parts)


def report_markdown(r: WhatIfReport) -> str:
    lines = [f"# What if brokers {r.broker_ids} of `{r.cluster}` died?", "", f"**{r.verdict}**", ""]
    lines += [f"- mode: `{r.mode}`" + (" (maintenance mode on)" if r.maintenance else "")]
    lines += [f"- partitions offline: {len(r.offline)}" + (f" ({', '.join(r.offline[:50])})" if r.offline else "")]
    lines += [
        f"- partitions below min ISR: {len(r.under_min_isr)}"
        + (f" ({', '.join(r.under_min_isr[:50])})" if r.under_min_isr else "")
    ]
    lines += [f"- leaders to re-elect: {r.leaderships}"]
    if r.cost:
        c = r.cost
        lines += [
            f"- to move: {c['partitions']} partitions, {c['replicas_moved']} replicas, "
            f"{c['bytes_moved'] / 1e9:.3f} GB ({c['cross_az_bytes'] / 1e9:.3f} GB cross-AZ)"
        ]
    if r.plan_error:
        lines += [f"- no drain plan: {r.plan_error}"]
    if r.plan and r.plan["unplaceable"]:
        lines += [f"- cannot be placed: {len(r.plan['unplaceable'])} partition(s)"]
    if r.decisions:
        lines += ["", "## Decisions", "", "| remedy | broker | execute | reason |", "|---|---|---|---|"]
        lines += [f"| {d['remedy']} | {d['broker_id'] or ''} | {d['execute']} | {d['reason']} |" for d in r.decisions]
    if r.findings:
        lines += ["", "## Findings", "", "| severity | rule | summary |", "|---|---|---|"]
        lines += [f"| {f['severity']} | {f['rule']} | {f['summary']} |" for f in r.findings]
    return "\n".join(lines)


def _move_rows(plan: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not plan:
        return []
    rows = [
        {"partition": f"{m['topic']}-{m['partition']}", "from": str(m["old_replicas"]), "to": str(m["new_replicas"])}
        for m in plan["moves"][:MAX_TABLE_ROWS]
    ]
    rows += [
        {"partition": f"{u['topic']}-{u['partition']}", "from": "", "to": f"UNPLACEABLE: {u['reason']}"}
        for u in plan["unplaceable"][: max(0, MAX_TABLE_ROWS - len(rows))]
    ]
    return rows


# -- the flow ---------------------------------------------------------------------------------------


@flow(name="what-if", timeout_seconds=600, retries=0)
async def what_if(cluster: str, params: WhatIfParams) -> WhatIfReport:
    """Report what healing would do if ``params.broker_ids`` died now; read-only.

    Args:
        cluster: Name of the cluster (its KafkaCluster block), e.g. "sandbox".
        params: The brokers to pretend are dead.
    """
    from flows.health_check import load_cluster

    block = await load_cluster(cluster)
    result = await asyncio.to_thread(collect_snapshot, block)
    down_since = await coordination.aload_down_since(cluster)
    maintenance = await coordination.aget_maintenance(cluster)
    report = what_if_report(
        result.snapshot,
        params.broker_ids,
        block.policy,
        has_replacer=block.replacer is not None,
        maintenance=bool(maintenance and maintenance.on),
        down_since=down_since,
    )
    await acreate_markdown_artifact(
        key=f"what-if-{cluster}", markdown=report_markdown(report), description=f"What if {params.broker_ids} died"
    )
    rows = _move_rows(report.plan)
    if rows:
        await acreate_table_artifact(
            key=f"what-if-moves-{cluster}", table=rows, description="Moves a drain of the dead brokers would make"
        )
    get_run_logger().info("[%s] %s", cluster, report.verdict)
    return report
