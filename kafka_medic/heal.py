"""Healing judgments (pure): does this broker still need healing, may it be wiped now, did a restart help.

The replacement flow asks these questions on a fresh look at the cluster right before it acts;
keeping them here, as plain functions of a snapshot and an evaluation, makes every answer testable
without Kafka and the same for every caller (the flow, what-if, a re-check before the wipe).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from kafka_medic.errors import ConfigError
from kafka_medic.findings import Action, Finding
from kafka_medic.replacers.base import HostState
from kafka_medic.rules import Evaluation
from kafka_medic.safety import removal_impact

#: Cooldown/audit action of a replacement.
REPLACE_ACTION = "replace_broker"
#: Cooldown/audit action of a restart (the rung before a replacement).
RESTART_ACTION = "restart_broker"
#: Findings that mean a restart did not help (liveness and disks; not latency outliers).
STILL_BROKEN_RULES = frozenset({"broker_down", "offline_log_dir"})


def restart_action(broker_id: int) -> str:
    """Cooldown key of one broker's restarts: a broker restarted recently is replaced, not restarted again."""
    return f"restart-broker-{broker_id}"


def replicas_behind(parts: pd.DataFrame, broker_id: int) -> tuple[list[str], list[str]]:
    """(partitions hosted on ``broker_id`` where it is not in the ISR, partitions without a leader)."""
    behind: list[str] = []
    offline: list[str] = []
    if parts.empty:
        return behind, offline
    for t, p, leader, reps, isr in zip(
        parts["topic"], parts["partition"], parts["leader"], parts["replicas"], parts["isr"], strict=True
    ):
        if int(leader) < 0:
            offline.append(f"{t}-{p}")
        if broker_id in reps and broker_id not in isr:
            behind.append(f"{t}-{p}")
    return behind, offline


def heal_findings(ev: Evaluation, broker_id: int) -> list[Finding]:
    """Findings that call for healing ``broker_id`` (dead beyond grace, or degraded)."""
    wanted = {Action.HEAL_DEAD_BROKER, Action.REPLACE_DEGRADED_BROKER}
    return [f for f in ev.findings if f.action in wanted and broker_id in f.brokers]


def broker_row(snapshot: Any, broker_id: int) -> dict[str, Any] | None:
    b = snapshot.brokers
    if b.empty:
        return None
    rows = b.loc[b["broker_id"] == broker_id]
    return None if rows.empty else rows.iloc[0].to_dict()


def maybe_dead(row: dict[str, Any] | None) -> bool:
    """Orion's "maybe dead": registered (but judged unhealthy), or fenced while its JVM still answers."""
    if row is None:
        return False
    return bool(row.get("alive")) or row.get("metrics_ok") is True


def restart_first(
    row: dict[str, Any] | None, host: HostState, *, supports_restart: bool, restarted_recently: bool
) -> tuple[bool, str]:
    """Whether to restart the broker with its disk before wiping it, and why (for the audit).

    A crashed JVM on a healthy machine comes back in seconds with its data; a wipe re-replicates
    everything it held (minutes to hours). So a broker is restarted first when its host and disk
    are (or may be) still there, and wiped only when they are gone, a restart was just tried, or the
    replacer cannot restart. The restart is bounded (``restart_check_s``); if it does not bring the
    broker back, that failure is the second signal next to Kafka's own view that a wipe is needed.
    """
    if not supports_restart:
        return False, "the replacer cannot restart a broker"
    if restarted_recently:
        return False, "it was restarted recently and still needs healing"
    if host.disk_intact is False:
        return False, f"its disk is gone ({host.detail})"
    if host.present is False:
        return False, f"its host is gone ({host.detail})"
    if host.impaired:
        return False, f"its host reports a fault, a restart on it would not help ({host.detail})"
    if maybe_dead(row):
        return True, "it is registered or still answers: it may only be hung"
    if host.present:
        return True, f"its host and disk are still there ({host.detail})"
    return True, "its host cannot be seen: a bounded restart may bring it back with its data"


def row_host(row: dict[str, Any] | None) -> str:
    """The broker's host from its snapshot row ("" when unknown)."""
    host = (row or {}).get("host")
    return host if isinstance(host, str) else ""


def refusal_reasons(snapshot: Any, ev: Evaluation, broker_id: int) -> tuple[list[str], list[str]]:
    """(reasons, partitions) why replacing ``broker_id`` now is unsafe; ([], []) = safe."""
    reasons: list[str] = []
    partitions: list[str] = []
    unreachable = [i.message for i in snapshot.issues if str(i.message).startswith("cluster unreachable")]
    if unreachable:
        return [f"cannot verify safety, the cluster state is unreadable: {unreachable[0]}"], []
    if not ev.automation_allowed:
        pagers = [f for f in ev.findings if f.action is Action.PAGE]
        reasons.append("automation stands down: " + "; ".join(f"{f.rule}: {f.summary}" for f in pagers[:5]))
    try:
        impact = removal_impact(snapshot, [broker_id])
    except ConfigError as exc:
        return [*reasons, str(exc)], []
    if impact.offline:
        names = [f"{t}-{p}" for t, p in impact.offline]
        partitions += names
        reasons.append(f"{len(names)} partition(s) would lose their last in-sync replica: {', '.join(names[:50])}")
    if impact.under_min_isr:
        names = [f"{t}-{p}" for t, p in impact.under_min_isr]
        partitions += names
        reasons.append(f"{len(names)} partition(s) would drop below min.insync.replicas: {', '.join(names[:50])}")
    if reasons and impact.stale_isr_brokers:
        reasons.append(
            f"broker(s) {list(impact.stale_isr_brokers)} counted out of sync: down, though metadata still lists "
            "them in the ISR (not fenced yet)"
        )
    return reasons, partitions


def still_broken(ev: Evaluation, broker_id: int) -> list[Finding]:
    """Liveness/disk findings about ``broker_id`` after a restart (latency outliers of a cold JVM do not count)."""
    return [f for f in ev.findings if broker_id in f.brokers and f.rule in STILL_BROKEN_RULES]
