"""The rule engine: run every registered rule over one snapshot and apply the stand-down policy.

Why a registry of small pure functions: each rule is testable on a crafted three-row frame, rules
can be added without touching the others, and one rule crashing on unexpected data becomes a
finding (``rule_error``) instead of taking the whole health check — and the UI — down with it.

Stand-down: any finding whose action is ``PAGE`` (mass failure, mass degradation, no/split
controller, no brokers visible, a crashed rule) means a human must look first. Every other
automatic action in the same evaluation is then demoted to ``NONE`` (the demoted finding keeps its
severity and records what it would have done) and ``automation_allowed`` is False.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.policy import HealthPolicy
from kafka_medic.rules.brokers import broker_down, mass_failure, metrics_unavailable, no_brokers_visible
from kafka_medic.rules.collection import collection_error
from kafka_medic.rules.context import Rule, RuleContext, as_utc
from kafka_medic.rules.controller import (
    controller_metrics_unavailable,
    no_active_controller,
    offline_reported_by_controller,
)
from kafka_medic.rules.degraded import degraded_broker, mass_degradation
from kafka_medic.rules.disks import disk_usage, offline_log_dir
from kafka_medic.rules.leadership import leader_imbalance
from kafka_medic.rules.leftovers import leftover_throttles, unowned_reassignments
from kafka_medic.rules.names import RuleName
from kafka_medic.rules.partitions import (
    min_isr_no_headroom,
    offline,
    reassignment_in_progress,
    under_min_isr,
    under_replicated,
)
from kafka_medic.rules.placement import rack_missing, rack_violation, rf_below_default
from kafka_medic.rules.standdown import sole_copy_offline, stood_down
from kafka_medic.snapshot import ClusterSnapshot

log = logging.getLogger(__name__)

#: Every rule, in evaluation order (order does not change results: shared facts are memoised).
RULES: tuple[Rule, ...] = (
    collection_error,
    no_brokers_visible,
    mass_failure,
    broker_down,
    metrics_unavailable,
    degraded_broker,
    mass_degradation,
    offline_log_dir,
    disk_usage,
    offline,
    sole_copy_offline,
    under_min_isr,
    under_replicated,
    min_isr_no_headroom,
    reassignment_in_progress,
    leftover_throttles,
    unowned_reassignments,
    rack_violation,
    rack_missing,
    rf_below_default,
    leader_imbalance,
    no_active_controller,
    controller_metrics_unavailable,
    offline_reported_by_controller,
)

#: Actions that change the cluster on their own, and so are withdrawn when automation stands down.
AUTOMATIC_ACTIONS: frozenset[Action] = frozenset(
    {Action.HEAL_DEAD_BROKER, Action.DEMOTE_BROKER, Action.RESTART_BROKER, Action.REPLACE_DEGRADED_BROKER}
)

_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}

#: Broker-health metric columns shown in the UI table (beside status and counts).
HEALTH_METRIC_COLUMNS: tuple[str, ...] = (
    "request_handler_idle",
    "network_processor_idle",
    "produce_p99_ms",
    "produce_queue_p99_ms",
    "produce_remote_p99_ms",
    "fetch_consumer_p99_ms",
    "fetch_follower_p99_ms",
    "isr_shrinks_per_sec",
    "bytes_in_per_sec",
    "bytes_out_per_sec",
)

BROKER_HEALTH_COLUMNS: tuple[str, ...] = (
    "broker_id",
    "rack",
    "alive",
    "status",
    "reasons",
    "metrics_ok",
    "down_since",
    "seconds_down",
    "replicas",
    "leaders",
    "out_of_isr",
    "disk_usage_max",
    *HEALTH_METRIC_COLUMNS,
    "ec2_status",
    "ec2_events",
)


@dataclass(frozen=True)
class Evaluation:
    """The result of one health evaluation of one cluster snapshot."""

    findings: list[Finding]
    down_since: dict[int, datetime]  # first-seen-down time per down broker; persist and pass back next cycle
    broker_health: pd.DataFrame  # one row per broker, columns BROKER_HEALTH_COLUMNS
    automation_allowed: bool  # False when any stand-down (PAGE) finding exists


def evaluate(
    snapshot: ClusterSnapshot,
    policy: HealthPolicy,
    down_since: Mapping[int, datetime] | None = None,
    now: datetime | None = None,
) -> Evaluation:
    """Run every rule in ``RULES`` over ``snapshot``; never raises on odd data.

    ``now`` defaults to ``snapshot.taken_at`` (the moment the data describes, which also keeps
    evaluations reproducible). ``down_since`` is the mapping returned by the previous evaluation.
    """
    ctx = RuleContext(snapshot, policy, as_utc(now or snapshot.taken_at), down_since)
    findings: list[Finding] = []
    for rule in RULES:
        try:
            findings.extend(rule(ctx))
        except Exception as exc:  # one bad rule must not blind the others
            name = getattr(rule, "__name__", repr(rule))
            log.exception("health rule %s failed on cluster %s", name, snapshot.cluster)
            findings.append(_rule_error(ctx, name, exc))
    try:
        new_down_since = dict(ctx.down_since)
    except Exception as exc:
        log.exception("down_since update failed on cluster %s", snapshot.cluster)
        findings.append(_rule_error(ctx, "down_since", exc))
        new_down_since = dict(ctx.previous_down_since)

    findings = _stand_down(findings)
    findings.sort(key=lambda f: (_SEVERITY_RANK.get(f.severity, 9), str(f.rule), f.brokers, f.summary))
    try:
        health = broker_health(ctx, findings, new_down_since)
    except Exception as exc:
        log.exception("broker health table failed on cluster %s", snapshot.cluster)
        findings = _stand_down([*findings, _rule_error(ctx, "broker_health", exc)])
        health = pd.DataFrame({c: pd.Series(dtype="object") for c in BROKER_HEALTH_COLUMNS})
    automation_allowed = not any(f.action is Action.PAGE for f in findings)
    return Evaluation(
        findings=findings,
        down_since=new_down_since,
        broker_health=health,
        automation_allowed=automation_allowed,
    )


def _rule_error(ctx: RuleContext, name: str, exc: Exception) -> Finding:
    """A crashed rule means the picture is incomplete: page and stand down rather than act half-blind."""
    return Finding(
        rule=RuleName.RULE_ERROR,
        severity=Severity.CRITICAL,
        summary=f"Health rule {name} failed ({type(exc).__name__}): evaluation incomplete, automation stands down",
        evidence={"rule_function": name, "error_type": type(exc).__name__, "message": str(exc)[:500]},
        since=ctx.now,
        action=Action.PAGE,
    )


def with_findings(ev: Evaluation, findings: list[Finding]) -> Evaluation:
    """``ev`` with its findings replaced (e.g. judged across cycles by :mod:`kafka_medic.judgment`):
    stand-down re-applied, sorted, ``automation_allowed`` recomputed; down-since and the table kept."""
    judged = _stand_down(list(findings))
    judged.sort(key=lambda f: (_SEVERITY_RANK.get(f.severity, 9), str(f.rule), f.brokers, f.summary))
    return replace(ev, findings=judged, automation_allowed=not any(f.action is Action.PAGE for f in judged))


def _stand_down(findings: list[Finding]) -> list[Finding]:
    """Demote automatic actions to NONE when any finding pages a human (see module docstring), and
    add one ``stood_down`` finding naming what was withheld (rebuilt on every call: idempotent)."""
    findings = [f for f in findings if f.rule != RuleName.STOOD_DOWN]
    pagers = sorted({str(f.rule) for f in findings if f.action is Action.PAGE})
    if not pagers:
        return findings
    out: list[Finding] = []
    for f in findings:
        if f.action in AUTOMATIC_ACTIONS:
            f = replace(
                f,
                action=Action.NONE,
                summary=f"{f.summary} (automation stands down: {', '.join(pagers)})",
                evidence={**f.evidence, "stand_down": pagers, "suppressed_action": f.action.value},
            )
        out.append(f)
    return out + stood_down(out)


_PER_BROKER_RULES = frozenset(
    {RuleName.BROKER_DOWN, RuleName.DEGRADED_BROKER, RuleName.OFFLINE_LOG_DIR, RuleName.COLLECTION_ERROR}
)
_AGGREGATE_REASON = {
    RuleName.METRICS_UNAVAILABLE: "metrics endpoint unavailable",
    RuleName.DISK_USAGE_HIGH: "disk usage high",
    RuleName.DISK_USAGE_CRITICAL: "disk usage critical",
    RuleName.RACK_MISSING: "no broker.rack set",
}


def broker_health(ctx: RuleContext, findings: list[Finding], down_since: Mapping[int, datetime]) -> pd.DataFrame:
    """One row per broker for the UI: status, the reasons behind it, and key metrics.

    status: ``down-actionable`` (down past grace and healing allowed), ``down``, ``degraded``
    (flagged for replacement, even if automation stood down), ``unknown`` (liveness unknown, or
    alive with its metrics endpoint failing and nothing else wrong), ``healthy``.
    """
    b = ctx.brokers
    n = len(b)
    ids = ctx.broker_ids
    reasons: dict[int, list[str]] = {int(i): [] for i in ids}
    heal: set[int] = set()
    degraded: set[int] = set()
    for f in findings:
        for bid in f.brokers:
            if bid not in reasons:
                continue
            if f.rule in _PER_BROKER_RULES:
                reasons[bid].append(f.summary)
            elif f.rule in _AGGREGATE_REASON:
                reasons[bid].append(_AGGREGATE_REASON[RuleName(f.rule)])
            if f.rule == RuleName.BROKER_DOWN and f.action is Action.HEAL_DEAD_BROKER:
                heal.add(bid)
            if f.rule in (RuleName.DEGRADED_BROKER, RuleName.OFFLINE_LOG_DIR):
                degraded.add(bid)

    status: list[str] = []
    for bid, alive, mok in zip(ids.tolist(), b["alive"], b["metrics_ok"], strict=True):
        if alive is None:
            status.append("unknown")
        elif alive is False:
            status.append("down-actionable" if bid in heal else "down")
        elif bid in degraded:
            status.append("degraded")
        elif mok is False:
            status.append("unknown")
        else:
            status.append("healthy")

    idx = ctx.rep_broker_index
    has = idx >= 0
    replicas = np.bincount(idx[has], minlength=n)[:n]
    leaders = np.bincount(idx[has & ctx.rep_is_leader], minlength=n)[:n]
    out_of_isr = np.bincount(idx[has & ~ctx.rep_in_isr], minlength=n)[:n]

    data: dict[str, Any] = {
        "broker_id": ids,
        "rack": b["rack"].to_numpy(dtype=object),
        "alive": b["alive"].to_numpy(dtype=object),
        "status": status,
        "reasons": ["; ".join(reasons[int(i)]) for i in ids],
        "metrics_ok": b["metrics_ok"].to_numpy(dtype=object),
        "down_since": [down_since.get(int(i)) for i in ids],
        "seconds_down": [
            max(0.0, (ctx.now - down_since[int(i)]).total_seconds()) if int(i) in down_since else np.nan for i in ids
        ],
        "replicas": replicas.astype(np.int64),
        "leaders": leaders.astype(np.int64),
        "out_of_isr": out_of_isr.astype(np.int64),
        "disk_usage_max": _disk_usage_max(ctx),
    }
    for col in HEALTH_METRIC_COLUMNS:
        data[col] = b[col].to_numpy(dtype=np.float64)
    data["ec2_status"] = b["ec2_status"].to_numpy(dtype=object)
    data["ec2_events"] = b["ec2_events"].to_numpy(dtype=object)
    return pd.DataFrame(data, columns=list(BROKER_HEALTH_COLUMNS))


def _disk_usage_max(ctx: RuleContext) -> np.ndarray:
    """Highest log-dir usage share per broker (NaN when no dir reports sizes)."""
    out = np.full(ctx.n_brokers, np.nan)
    ld = ctx.snapshot.log_dirs
    if ld.empty or not ctx.n_brokers:
        return out
    total = pd.to_numeric(ld["total_bytes"], errors="coerce").to_numpy(dtype=np.float64)
    usable = pd.to_numeric(ld["usable_bytes"], errors="coerce").to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        usage = np.where(np.isfinite(total) & (total > 0), 1.0 - usable / total, np.nan)
    per = pd.Series(usage).groupby(pd.to_numeric(ld["broker_id"], errors="coerce").to_numpy()).max()
    pos = pd.Index(ctx.broker_ids).get_indexer(per.index)
    keep = pos >= 0
    out[pos[keep]] = per.to_numpy()[keep]
    return out
