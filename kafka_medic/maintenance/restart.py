"""Rolling restart: may this broker be restarted right now, and in which order."""

from __future__ import annotations

from collections.abc import Sequence

from kafka_medic.errors import ConfigError
from kafka_medic.findings import Severity
from kafka_medic.rules import Evaluation, RuleName
from kafka_medic.safety import removal_impact
from kafka_medic.snapshot import ClusterSnapshot

#: Findings that make any broker restart unsafe: availability is already reduced, or we are blind.
RESTART_BLOCKING_RULES: frozenset[str] = frozenset(
    {
        RuleName.NO_BROKERS_VISIBLE,
        RuleName.BROKER_DOWN,
        RuleName.MASS_FAILURE,
        RuleName.UNDER_REPLICATED,
        RuleName.UNDER_MIN_ISR,
        RuleName.OFFLINE,
        RuleName.OFFLINE_REPORTED_BY_CONTROLLER,
        RuleName.OFFLINE_LOG_DIR,
        RuleName.NO_ACTIVE_CONTROLLER,
        RuleName.RULE_ERROR,
    }
)


def restart_blockers(
    snapshot: ClusterSnapshot, ev: Evaluation, broker_id: int, registered: set[int] | None = None
) -> list[str]:
    """Every reason restarting ``broker_id`` right now is unsafe; [] means go.

    The checks Yelp's kafka-rolling-restart and Orion make before each step: no broker down, no
    under-replicated / under-min-ISR / offline partition, no reassignment in flight, the cluster
    readable, plus the exact question for this broker: would taking it away drop any partition
    below min.insync.replicas (an RF-2/min-ISR-2 topic would)?

    ``registered`` is the controller's own list of registered, unfenced brokers (DescribeCluster).
    Liveness in the snapshot comes from a Metadata answer, which a broker can give from an image a
    few seconds old right after another broker died; a broker missing from either view blocks.
    """
    reasons: list[str] = []
    if registered is not None:
        missing = sorted({int(b) for b in snapshot.brokers["broker_id"]} - registered)
        if missing:
            reasons.append(f"broker(s) {missing} not registered with the controller (down or fenced)")
    for f in ev.findings:
        if f.rule in RESTART_BLOCKING_RULES and f.severity is not Severity.INFO:
            reasons.append(f"{f.rule}: {f.summary}")
    for issue in snapshot.issues:
        if issue.source == "admin":
            reasons.append(f"cluster state incomplete: {issue.message}")
    if not snapshot.reassignments.empty:
        reasons.append(f"{len(snapshot.reassignments)} partition reassignment(s) in progress")
    brokers = snapshot.brokers
    if broker_id not in {int(b) for b in brokers["broker_id"]}:
        reasons.append(f"broker {broker_id} is unknown to the cluster")
        return reasons
    if broker_id not in snapshot.alive_broker_ids:
        reasons.append(f"broker {broker_id} is not alive (restarting it is a replacement's job)")
    if not reasons:
        impact = removal_impact(snapshot, [broker_id])
        if not impact.safe:
            keys = impact.offline + impact.under_min_isr + impact.min_isr_unknown
            examples = ", ".join(f"{t}-{p}" for t, p in keys[:5])
            unknown = f", {len(impact.min_isr_unknown)} with min ISR unknown" if impact.min_isr_unknown else ""
            reasons.append(
                f"restarting broker {broker_id} would leave {len(impact.offline)} partition(s) offline and "
                f"{len(impact.under_min_isr)} below min ISR{unknown} (e.g. {examples})"
            )
    return reasons


def restart_targets(snapshot: ClusterSnapshot, requested: Sequence[int] | None) -> list[int]:
    """The brokers to restart, in order: as requested (validated), else every known broker by id."""
    known = sorted(int(b) for b in snapshot.brokers["broker_id"]) if not snapshot.brokers.empty else []
    if requested is None:
        if not known:
            raise ConfigError("no brokers visible in the cluster; nothing to restart")
        return known
    unknown = sorted(set(requested) - set(known))
    if unknown:
        raise ConfigError(f"unknown broker id(s) {unknown}; the cluster has {known}")
    return list(requested)


def host_of(snapshot: ClusterSnapshot, broker_id: int) -> str:
    rows = snapshot.brokers[snapshot.brokers["broker_id"] == broker_id]
    host = rows.iloc[0]["host"] if not rows.empty else None
    return "" if host is None or (isinstance(host, float) and host != host) else str(host)
