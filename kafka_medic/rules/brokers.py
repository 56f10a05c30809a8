"""Broker liveness rules: down brokers, mass failure, missing metrics.

A broker is *down* when the snapshot knows it (a row in ``brokers``) but it is not alive: not
registered and unfenced, or still listed while its listener actively refuses connections (its
process is gone; the controller fences it only when its session expires, see
``kafka_medic.monitor.listener_probe``). The finding says which (``down_evidence``).

Healing waits out a grace period (a rolling restart or a JVM pause must not trigger a
replacement), and when too many brokers are down at once the cause is almost never the brokers
themselves (network partition, AZ outage, bad deploy): automation then stands down and pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.policy import HealthPolicy
from kafka_medic.rules.context import MAX_LISTED_PARTITIONS, RuleContext, partition_labels, plain, rounded
from kafka_medic.rules.names import RuleName
from kafka_medic.snapshot import LISTENER_REFUSED

#: ``down_evidence`` of a broker the cluster still lists but whose listener refuses connections.
EVIDENCE_REFUSED = "connection refused"
#: ``down_evidence`` of a broker the cluster does not list (fenced, unregistered or never seen).
EVIDENCE_NOT_REGISTERED = "not registered"


def down_evidence(registered: bool | None, listener: str | None) -> str:
    """Why a down broker counts as down: the controller's word, or a refused connection.

    A refused connection while the broker is still listed means its process is gone and the
    controller has not fenced it yet (its session has not expired): the ISR in metadata is stale.
    """
    if registered is True and listener == LISTENER_REFUSED:
        return EVIDENCE_REFUSED
    return EVIDENCE_NOT_REGISTERED


def beyond_grace(seconds_down: float, grace_s: float) -> bool:
    """Strictly longer than the grace period; a grace of 0 means "no grace": act on first sight
    (a broker first seen down has been down 0 s, which is never strictly more than 0)."""
    return grace_s == 0 or seconds_down > grace_s


def exceeds_cutoffs(count: int, total: int, policy: HealthPolicy) -> tuple[bool, bool]:
    """(over the broker-count cutoff, over the fraction cutoff) for ``count`` of ``total`` brokers.

    Both are strict: exactly ``mass_failure_max_brokers`` down is still a normal (healable) failure.
    """
    by_count = count > policy.mass_failure_max_brokers
    by_fraction = total > 0 and count / total > policy.mass_failure_max_fraction
    return by_count, by_fraction


@dataclass(frozen=True)
class MassCheck:
    """Whether the down brokers add up to a mass failure, and why."""

    n_down: int
    n_brokers: int
    by_count: bool
    by_fraction: bool

    @property
    def exceeded(self) -> bool:
        return self.by_count or self.by_fraction

    @property
    def fraction(self) -> float:
        return self.n_down / self.n_brokers if self.n_brokers else 0.0


def mass_failure_check(ctx: RuleContext) -> MassCheck:
    """Count every down broker, in grace or not: simultaneity is what makes a failure "mass"."""
    n_down = len(ctx.down_ids)
    by_count, by_fraction = exceeds_cutoffs(n_down, ctx.n_brokers, ctx.policy)
    return MassCheck(n_down=n_down, n_brokers=ctx.n_brokers, by_count=by_count, by_fraction=by_fraction)


def no_brokers_visible(ctx: RuleContext) -> list[Finding]:
    """An empty broker list means we know nothing about liveness: nobody should act on it."""
    if ctx.n_brokers:
        return []
    return [
        Finding(
            rule=RuleName.NO_BROKERS_VISIBLE,
            severity=Severity.CRITICAL,
            summary="No brokers visible: the cluster is unreachable or entirely down",
            evidence={
                "partitions_known": len(ctx.snapshot.partitions),
                "collection_issues": len(ctx.snapshot.issues),
            },
            since=ctx.now,
            action=Action.PAGE,
        )
    ]


def mass_failure(ctx: RuleContext) -> list[Finding]:
    """Too many brokers down at once: page a human; the evaluation then stands automation down."""
    check = ctx.memo(mass_failure_check)
    if not check.exceeded:
        return []
    p = ctx.policy
    times = sorted(ctx.down_since[b] for b in ctx.down_ids)
    # When did the current set of down brokers first cross a cutoff? (the k-th earliest failure)
    since: datetime | None = None
    for k in range(1, len(times) + 1):
        if any(exceeds_cutoffs(k, ctx.n_brokers, p)):
            since = times[k - 1]
            break
    reasons = []
    if check.by_count:
        reasons.append(f"{check.n_down} > {p.mass_failure_max_brokers} brokers")
    if check.by_fraction:
        reasons.append(f"{check.fraction:.0%} > {p.mass_failure_max_fraction:.0%} of brokers")
    return [
        Finding(
            rule=RuleName.MASS_FAILURE,
            severity=Severity.CRITICAL,
            summary=f"Mass failure: {check.n_down} of {check.n_brokers} brokers down ({', '.join(reasons)}); "
            "automation stands down",
            brokers=ctx.down_ids,
            evidence={
                "down_brokers": check.n_down,
                "total_brokers": check.n_brokers,
                "down_fraction": rounded(check.fraction, 4),
                "max_brokers": p.mass_failure_max_brokers,
                "max_fraction": p.mass_failure_max_fraction,
                "exceeded_by_count": check.by_count,
                "exceeded_by_fraction": check.by_fraction,
                "down_racks": sorted({str(ctx.rack_by_broker.get(b)) for b in ctx.down_ids}),
            },
            since=since,
            action=Action.PAGE,
        )
    ]


def broker_down(ctx: RuleContext) -> list[Finding]:
    """One finding per down broker: WARNING inside the grace period, CRITICAL + heal beyond it.

    In a mass failure the per-broker findings are never actionable (replacing brokers during a
    network partition or AZ outage moves data onto the survivors and makes things worse).
    """
    if not ctx.down_ids:
        return []
    p = ctx.policy
    mass = ctx.memo(mass_failure_check).exceeded
    snap = ctx.snapshot
    rb = ctx.rep_broker
    down_arr = np.asarray(ctx.down_ids, dtype=np.int64)
    is_on_down = np.isin(rb, down_arr)
    on_down = np.flatnonzero(is_on_down)
    offline_rows = np.zeros(0, dtype=bool)
    if len(on_down):
        # offline = no leader on a live broker (a leader still pointing at a down broker is stale)
        codes, n_parts = ctx.rep_partition_code
        live_leader = ctx.rep_is_leader & ~is_on_down
        has_leader = np.bincount(codes, weights=live_leader, minlength=n_parts) > 0
        offline_rows = ~has_leader[codes[on_down]]
    sub_broker = rb[on_down]
    topics = snap.replicas["topic"].to_numpy()
    parts = snap.replicas["partition"].to_numpy()
    findings: list[Finding] = []
    for b in ctx.down_ids:
        secs = ctx.seconds_down(b)
        beyond = beyond_grace(secs, p.dead_broker_grace_s)
        sel = sub_broker == b
        rows = on_down[sel]
        n_rows = len(rows)
        labels = partition_labels(topics[rows[:MAX_LISTED_PARTITIONS]], parts[rows[:MAX_LISTED_PARTITIONS]])
        preferred = int((ctx.rep_position[rows] == 0).sum()) if n_rows else 0
        offline = int(offline_rows[sel].sum()) if n_rows else 0
        row = ctx.brokers.loc[ctx.broker_ids == b].iloc[0]
        why = down_evidence(row["registered"], row["listener"])
        if beyond and not mass:
            severity, action = Severity.CRITICAL, Action.HEAL_DEAD_BROKER
            state = "beyond grace, heal"
        elif beyond:
            severity, action = Severity.CRITICAL, Action.NONE
            state = "beyond grace, but mass failure: automation stands down"
        else:
            severity, action = Severity.WARNING, Action.NONE
            state = "within grace"
        findings.append(
            Finding(
                rule=RuleName.BROKER_DOWN,
                severity=severity,
                summary=f"Broker {b} down for {secs:.0f}s ({why}; grace {p.dead_broker_grace_s:.0f}s, {state}); "
                f"{n_rows} replicas on it",
                brokers=(b,),
                partitions=labels,
                evidence={
                    "broker_id": b,
                    "host": plain(row["host"]),
                    "rack": plain(row["rack"]),
                    "down_evidence": why,
                    "registered": plain(row["registered"]),
                    "listener": plain(row["listener"]),
                    "seconds_down": rounded(secs, 1),
                    "grace_s": p.dead_broker_grace_s,
                    "beyond_grace": beyond,
                    "mass_failure": mass,
                    "partitions_total": n_rows,
                    "preferred_leader_of": preferred,
                    "offline_partitions": offline,
                },
                since=ctx.down_since[b],
                action=action,
            )
        )
    return findings


def metrics_unavailable(ctx: RuleContext) -> list[Finding]:
    """Alive brokers whose metrics endpoint failed: degraded rules are blind for them, say so.

    One aggregated finding (a broken scrape config usually hits every broker at once).
    ``metrics_ok=None`` means "no endpoint configured" and is not a finding.
    """
    b = ctx.brokers
    mask = ctx.alive_mask & np.array([v is False for v in b["metrics_ok"]], dtype=bool)
    if not mask.any():
        return []
    ids = tuple(int(x) for x in ctx.broker_ids[mask])
    n_alive = int(ctx.alive_mask.sum())
    return [
        Finding(
            rule=RuleName.METRICS_UNAVAILABLE,
            severity=Severity.WARNING,
            summary=f"Metrics endpoint unavailable on {len(ids)} of {n_alive} alive brokers "
            f"({', '.join(map(str, ids[:10]))}{', ...' if len(ids) > 10 else ''}); degraded checks skip them",
            brokers=ids,
            evidence={"brokers_without_metrics": len(ids), "alive_brokers": n_alive},
            action=Action.NONE,
        )
    ]
