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
from kafka_medic.rules import Evaluation, RuleName
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


def heal_findings(ev: Evaluation, broker_id: int, *, withheld: bool = False) -> list[Finding]:
    """Findings that call for healing ``broker_id`` (dead beyond grace, or degraded); with
    ``withheld``, also those whose action automation withheld this cycle (it stood down): the
    broker still needs healing, it is just not the time."""
    wanted = {Action.HEAL_DEAD_BROKER, Action.REPLACE_DEGRADED_BROKER}
    return [
        f
        for f in ev.findings
        if broker_id in f.brokers
        and (f.action in wanted or (withheld and f.evidence.get("suppressed_action") in {a.value for a in wanted}))
    ]


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


def stand_down_reasons(ev: Evaluation, broker_id: int, *, wipe: bool = True) -> list[str]:
    """Why a destructive step on ``broker_id`` (wipe, replace, restart) cannot help now, whatever
    the partitions would survive; [] = acting may help.

    * no active controller (``no_active_controller``): a replaced or restarted broker cannot
      register, be unfenced or lead anything; the step would hold the cluster's locks for its
      whole timeout and heal nothing (seen: a 600 s wipe during a controller outage);
    * the broker holds the only in-sync copy of offline partitions (``sole_copy_offline``): wiping
      it loses them; it must come back with its disk, which a human (or a restart) does. Only for
      a ``wipe``: a restart with its disk is exactly what brings those partitions back.
    """
    reasons: list[str] = []
    for f in ev.findings:
        if f.rule == RuleName.NO_ACTIVE_CONTROLLER:
            reasons.append(f"{f.summary.split(': metadata changes')[0]}: a new or restarted broker could not register")
        elif wipe and f.rule == RuleName.SOLE_COPY_OFFLINE and broker_id in f.brokers:
            n = f.evidence.get("offline_partitions", len(f.partitions))
            reasons.append(
                f"broker {broker_id} holds the only in-sync copy of {n} offline partition(s) "
                f"({', '.join(f.partitions[:10])}): wiping it would lose them"
            )
    return reasons


def refusal_reasons(
    snapshot: Any, ev: Evaluation, broker_id: int, *, registered: set[int] | None = None, check_registered: bool = False
) -> tuple[list[str], list[str]]:
    """(reasons, partitions) why replacing ``broker_id`` now is unsafe; ([], []) = safe.

    ``registered``: the controller's own list of registered, unfenced brokers (DescribeCluster), a
    second view next to the snapshot's Metadata answer and listener probe. A broker the snapshot
    counts alive but the controller no longer lists (frozen, its session expiring) does not count
    as in sync -- a single look would have relied on its copy. ``check_registered``: that list is
    required (None then refuses).
    """
    reasons: list[str] = []
    partitions: list[str] = []
    unreachable = [i.message for i in snapshot.issues if str(i.message).startswith("cluster unreachable")]
    if unreachable:
        return [f"cannot verify safety, the cluster state is unreadable: {unreachable[0]}"], []
    if not ev.automation_allowed:
        pagers = [f for f in ev.findings if f.action is Action.PAGE]
        reasons.append("automation stands down: " + "; ".join(f"{f.rule}: {f.summary}" for f in pagers[:5]))
    if not getattr(snapshot, "configs_fresh", True):
        reasons.append(
            "min.insync.replicas could not be read in this look (DescribeConfigs failed): a wipe is never judged "
            "on stale or assumed values"
        )
    also_down: set[int] = set()
    if check_registered and registered is None:
        reasons.append("the controller's list of registered brokers could not be read")
    elif registered is not None:
        also_down = {b for b in snapshot.alive_broker_ids if b not in registered and b != broker_id}
    try:
        impact = removal_impact(snapshot, [broker_id], also_down=also_down)
    except ConfigError as exc:
        return [*reasons, str(exc)], []
    if impact.min_isr_unknown:
        names = [f"{t}-{p}" for t, p in impact.min_isr_unknown]
        partitions += names
        reasons.append(
            f"the min.insync.replicas of {len(names)} partition(s) losing a replica is unknown: {', '.join(names[:50])}"
        )
    if impact.offline:
        names = [f"{t}-{p}" for t, p in impact.offline]
        partitions += names
        reasons.append(f"{len(names)} partition(s) would lose their last in-sync replica: {', '.join(names[:50])}")
    if impact.under_min_isr:
        names = [f"{t}-{p}" for t, p in impact.under_min_isr]
        partitions += names
        reasons.append(f"{len(names)} partition(s) would drop below min.insync.replicas: {', '.join(names[:50])}")
    if reasons and also_down:
        reasons.append(
            f"broker(s) {sorted(also_down)} answer metadata but are not registered with the controller "
            "(frozen or being fenced): not counted in sync"
        )
    if reasons and impact.stale_isr_brokers:
        reasons.append(
            f"broker(s) {list(impact.stale_isr_brokers)} counted out of sync: down, though metadata still lists "
            "them in the ISR (not fenced yet)"
        )
    return reasons, partitions


def still_broken(ev: Evaluation, broker_id: int) -> list[Finding]:
    """Liveness/disk findings about ``broker_id`` after a restart (latency outliers of a cold JVM do not count)."""
    return [f for f in ev.findings if broker_id in f.brokers and f.rule in STILL_BROKEN_RULES]


def second_look_needed(row: dict[str, Any] | None, *, restart: bool) -> bool:
    """Whether the step needs the guard's second look (``two_looks``) before it acts.

    The second look catches a broker one look counts alive and in sync while it is frozen: it
    guards steps that take a live copy away -- every wipe, and the restart of a broker that is
    registered or still answers (it may only be hung). A restart *with its disk* of a broker the
    fresh look found dead takes no copy away, so it needs only that look (kill -> restart started
    1.0 s instead of 3.5 s, bench/RESULTS.md).
    """
    return not restart or maybe_dead(row)


def two_looks(first: tuple[list[str], list[str]], second: tuple[list[str], list[str]]) -> tuple[list[str], list[str]]:
    """The guard's verdict from two independent looks: the step may go only if BOTH found nothing.

    One look can fall in the second after a failure before every view shows it (a frozen broker
    is still listed and still in the ISR until its session expires); reasons from either look
    stand, each once, the later look's first.
    """
    reasons = list(dict.fromkeys([*second[0], *first[0]]))
    partitions = list(dict.fromkeys([*second[1], *first[1]]))
    return reasons, partitions


def controller_view_missing(*read: bool) -> list[str]:
    """The reason to wait when none of the guard's looks could read the controller's own list of
    registered brokers (DescribeCluster, sent to whichever broker the client picks, so one look can
    miss it): without that view a frozen broker that is still listed counts as in sync, which is
    the very case the second look exists for. One look that read it is enough."""
    if any(read):
        return []
    return ["the controller's list of registered brokers could not be read on either look (try again)"]


def isr_verdict(parts: pd.DataFrame, broker_id: int, down: set[int]) -> tuple[str, list[str]]:
    """The ISR verdict of the partitions ``broker_id`` hosts while other brokers are ``down``.

    Returns (verdict, partitions still short for another reason). A full ISR is impossible while
    another broker is down, so the check asks what can be true now: every live replica in sync. A
    partition missing only down brokers is waiting for them (said in the verdict, by name); one
    missing a live broker is short and keeps the check open.
    """
    waiting: list[str] = []
    short: list[str] = []
    if parts.empty:
        return "no partitions to check", []
    for t, p, reps, isr in zip(parts["topic"], parts["partition"], parts["replicas"], parts["isr"], strict=True):
        if broker_id not in reps:
            continue
        missing = set(reps) - set(isr)
        if not missing:
            continue
        (waiting if missing <= down else short).append(f"{t}-{p}")
    if short:
        return f"{len(short)} partition(s) of broker {broker_id} short of a live replica", short
    if waiting:
        return (
            f"every live replica in sync; {len(waiting)} partition(s) wait only for down broker(s) {sorted(down)} "
            f"(e.g. {', '.join(waiting[:5])}): a full ISR once they are healed"
        ), []
    return "full ISR", []
