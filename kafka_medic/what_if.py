"""What would automatic healing do if these brokers died right now? (pure; the ``what-if`` flow shows it)

An operator asks this before planned work ("may I take brokers 3 and 5 down together?") or to
rehearse an incident. The flow collects one snapshot, pretends the brokers are dead, and runs the
very same code automation runs: the health rules and their stand-down policy, the decision
engine, the placement planner (a drain of the dead brokers: what "reassign away" would move) and
the safety guard (which partitions would go offline or below min ISR). It writes no Variable, takes
no lock and sends nothing to the cluster; the answer is the return value and two artifacts.

Cost: the drain plan is priced (bytes, cross-AZ bytes, dollars at the policy's price per GB, ETA at
its throttle), and for each dead broker (the first ``MAX_COMPARED``) replacing it in its own AZ is
compared with draining it, on the same simulated failure, saying which is cheaper and which is
faster (:func:`kafka_medic.planner.compare_replace_vs_drain`): the choice an operator makes
between waiting for a machine and spreading its data over the others.

The simulation (:func:`simulate_dead`) is pure and does what Kafka's controller would do when the
brokers' sessions expire: they leave every ISR, and a partition they led gets the first surviving
in-sync replica (in assignment order) as leader, or none (offline; unclean election is off).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np

from kafka_medic.decide import Decision, decide, with_costs
from kafka_medic.errors import ConfigError
from kafka_medic.findings import Severity
from kafka_medic.planner import (
    DrainRequest,
    Plan,
    PlanningError,
    ReplaceOrDrain,
    compare_replace_vs_drain,
    estimate_plan,
    plan_moves,
)
from kafka_medic.planner.models import human_duration
from kafka_medic.policy import HealthPolicy
from kafka_medic.reports.what_if import WhatIfReport
from kafka_medic.rules import RuleName, evaluate
from kafka_medic.safety import known_broker_ids, removal_impact
from kafka_medic.snapshot import BROKER_METRIC_COLUMNS, ClusterSnapshot, explode_replicas

#: Dead brokers compared one by one (replace vs drain): each comparison plans a drain of its own.
MAX_COMPARED = 5


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
    decisions = with_costs(decisions, sim, policy)  # each replacement or drain with its cost
    plan: Plan | None = None
    plan_error: str | None = None
    try:
        plan = plan_moves(sim, DrainRequest(brokers=broker_ids), allow_partial=True)
    except (ConfigError, PlanningError) as exc:
        plan_error = str(exc)
    estimate = (
        estimate_plan(plan, policy, what=f"drain of broker(s) {sorted(broker_ids)}") if plan is not None else None
    )
    comparisons, compare_errors = replace_vs_drain(sim, broker_ids, policy)
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
        estimate=estimate.record() if estimate is not None else None,
        replace_vs_drain=[c.to_record() for c in comparisons],
        replace_vs_drain_notes=compare_errors,
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
    if r.estimate:
        e = r.estimate
        parts.append(f"drain cost ${e['dollars']:,.2f}, ~{human_duration(e['eta_s'])}")
    if len(r.replace_vs_drain) == 1:
        parts.append(r.replace_vs_drain[0]["verdict"])
    elif r.replace_vs_drain:
        parts.append(f"replace vs drain compared for {len(r.replace_vs_drain)} brokers (see the table)")
    return "; ".join(parts)


def replace_vs_drain(
    sim: ClusterSnapshot, broker_ids: list[int], policy: HealthPolicy
) -> tuple[list[ReplaceOrDrain], list[str]]:
    """Replace-in-its-AZ vs drain for each dead broker of the simulated failure (at most
    ``MAX_COMPARED``), with one note per broker that could not be compared (or was left out).

    Each is judged on ``sim``, where all of ``broker_ids`` are dead: a replacement re-fetches from the
    survivors only, and a drain places onto the survivors only -- the same failure for both.
    """
    out: list[ReplaceOrDrain] = []
    notes: list[str] = []
    ids = sorted({int(b) for b in broker_ids})
    for b in ids[:MAX_COMPARED]:
        try:
            out.append(compare_replace_vs_drain(sim, b, policy))
        except (ConfigError, PlanningError) as exc:
            notes.append(f"broker {b}: not compared ({exc})")
    if len(ids) > MAX_COMPARED:
        notes.append(f"{len(ids) - MAX_COMPARED} more broker(s) not compared (at most {MAX_COMPARED})")
    return out, notes
