"""The decision engine: actionable findings -> remediation decisions (pure).

Policy, in the order an experienced on-call would apply it:
- A mass failure (or any PAGE finding) stands automation down: page a human, touch nothing.
- Maintenance mode: report what would be done, do nothing.
- A broker dead beyond its grace period: heal it if the cluster has a replacer -- the
  ``replace-broker`` flow restarts it first when its host and disk are still there, and wipes it
  only when that does not bring it back -- else reassign its partitions away (the seed's lesson:
  reassignment alone does not heal hardware, so only without a replacer).
- A degraded broker climbs the ladder its judgment (:mod:`kafka_medic.judgment`) says is due:
  demote (leadership away; needs nothing but Kafka), restart (needs a replacer that can restart),
  replace (needs a replacer). A rung kafka-medic cannot take is reported, not acted on. A failed
  disk is replaced at once (hard evidence, not a metric sample).
- A broker healthy again (score 0) gets its leaderships back (the undo of its demotion); its
  episode goes on, on probation (:class:`kafka_medic.judgment.BrokerLadder`).
- At most one broker action per cycle, dead before degraded: the cluster's locks and cooldowns
  make the rest wait anyway, and one decision per cycle keeps the audit trail readable.

A decision that copies data (a replacement, a drain) carries its cost (:func:`with_costs`): bytes,
cross-AZ bytes, dollars and an ETA at the throttle -- what an approver weighs, and what the audit
trail keeps of why a heal took hours.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from kafka_medic.errors import ConfigError
from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.planner import DrainRequest, PlanningError, estimate_plan, plan_moves, replacement_cost
from kafka_medic.planner.models import human_bytes, human_duration
from kafka_medic.policy import HealthPolicy, Mode
from kafka_medic.snapshot import ClusterSnapshot


class Remedy(StrEnum):
    REPLACE_BROKER = "replace_broker"
    RESTART_BROKER = "restart_broker"
    DEMOTE_BROKER = "demote_broker"
    RESTORE_BROKER = "restore_broker"  # undo a demotion: healthy again (the episode goes on, on probation)
    REASSIGN_AWAY = "reassign_away"
    PAGE = "page"
    REPORT = "report"


#: The remedies that act on one broker (the rest page or report).
BROKER_REMEDIES = frozenset(
    {Remedy.REPLACE_BROKER, Remedy.RESTART_BROKER, Remedy.DEMOTE_BROKER, Remedy.RESTORE_BROKER, Remedy.REASSIGN_AWAY}
)


@dataclass(frozen=True)
class Decision:
    remedy: Remedy
    broker_id: int | None
    rule: str
    reason: str
    execute: bool  # False: observe mode, maintenance, or a report-only remedy
    needs_approval: bool
    # What carrying it out copies (``CostEstimate.record()``): replacements and drains only; None
    # for remedies that move no data, or when the cost could not be estimated (``cost_error`` says why).
    cost: dict[str, Any] | None = None
    cost_error: str | None = None

    def to_record(self) -> dict[str, Any]:
        d = asdict(self)
        d["remedy"] = self.remedy.value
        return d


def decide(
    findings: list[Finding], mode: Mode, *, has_replacer: bool, can_restart: bool = True, maintenance: bool = False
) -> list[Decision]:
    pages = [f for f in findings if f.action is Action.PAGE]
    if pages:
        return [Decision(Remedy.PAGE, None, f.rule, f.summary, execute=True, needs_approval=False) for f in pages]
    acting = mode is not Mode.OBSERVE and not maintenance
    why_not = "maintenance mode" if maintenance else ("observe mode" if mode is Mode.OBSERVE else "")
    out: list[Decision] = []
    dead = [f for f in findings if f.action is Action.HEAL_DEAD_BROKER and f.brokers]
    for f in sorted(dead, key=lambda f: (f.since is None, f.since, f.brokers)):
        remedy = Remedy.REPLACE_BROKER if has_replacer else Remedy.REASSIGN_AWAY
        out.append(_decision(remedy, f, acting, why_not, mode))
    ladder = {
        Action.REPLACE_DEGRADED_BROKER: Remedy.REPLACE_BROKER if has_replacer else Remedy.REPORT,
        Action.RESTART_BROKER: Remedy.RESTART_BROKER if has_replacer and can_restart else Remedy.REPORT,
        Action.DEMOTE_BROKER: Remedy.DEMOTE_BROKER,
        Action.RESTORE_BROKER: Remedy.RESTORE_BROKER,
    }
    degraded = [f for f in findings if f.action in ladder and f.brokers]
    for f in sorted(degraded, key=lambda f: (f.severity is not Severity.CRITICAL, f.brokers)):
        if any(d.broker_id == f.brokers[0] for d in out):
            continue
        out.append(_decision(ladder[f.action], f, acting, why_not, mode))
    # One broker action per cycle: the first executable one; the rest are reported as deferred.
    first = next((i for i, d in enumerate(out) if d.execute), None)
    return [
        d if (i == first or not d.execute) else Decision(d.remedy, d.broker_id, d.rule, d.reason + " (deferred: one "
        "broker action per cycle)", execute=False, needs_approval=d.needs_approval)
        for i, d in enumerate(out)
    ]  # fmt: skip


def _decision(remedy: Remedy, f: Finding, acting: bool, why_not: str, mode: Mode) -> Decision:
    reason = f.summary
    if not acting and why_not:
        reason = f"{f.summary} (not acting: {why_not})"
    elif remedy is Remedy.REPORT:
        reason = f"{f.summary} (not acting: no replacer that can do it)"
    # Giving leadership back never needs a human's approval: it undoes an action already taken.
    approval = mode is Mode.APPROVE and remedy is not Remedy.RESTORE_BROKER
    execute = acting and remedy is not Remedy.REPORT
    return Decision(remedy, f.brokers[0], f.rule, reason, execute=execute, needs_approval=approval)


#: Remedies that copy replicas, hence have a cost in bytes, dollars and time.
COSTED_REMEDIES = frozenset({Remedy.REPLACE_BROKER, Remedy.REASSIGN_AWAY})
#: Decisions costed per cycle at most: each is a pass over the partitions (a drain is a plan), and a
#: storm of dead brokers must not slow the cycle that pages about it.
MAX_COSTED = 5


def with_costs(decisions: list[Decision], snapshot: ClusterSnapshot, policy: HealthPolicy) -> list[Decision]:
    """``decisions`` with the cost of each replacement and drain filled in (pure; the rest unchanged).

    A replacement is costed as a fresh machine in the broker's AZ re-fetching every replica it held
    (``replacement_cost``): the worst case, since the replace-broker flow restarts a broker whose
    host and disk survived first, and a restart only catches up what it missed. A drain
    ("reassign away") is costed as the planner's drain of the broker under the policy's disk
    ceiling (``estimate_plan``). Prices and throttle are the policy's. A cost that cannot be
    estimated (unknown broker, a drain the planner refuses) leaves ``cost`` None and says why in
    ``cost_error``: a missing estimate never stops a decision. Only the first ``MAX_COSTED``
    costed decisions are estimated.
    """
    out: list[Decision] = []
    costed = 0
    for d in decisions:
        if d.remedy not in COSTED_REMEDIES or d.broker_id is None or costed >= MAX_COSTED:
            out.append(d)
            continue
        costed += 1
        try:
            if d.remedy is Remedy.REPLACE_BROKER:
                est = replacement_cost(snapshot, d.broker_id, policy)
            else:
                request = DrainRequest(brokers=[d.broker_id], max_disk_usage=policy.move_max_disk_usage)
                plan = plan_moves(snapshot, request, allow_partial=True)
                est = estimate_plan(plan, policy, what=f"drain of broker {d.broker_id}")
        except (ConfigError, PlanningError) as exc:
            out.append(replace(d, cost=None, cost_error=str(exc)[:500]))
            continue
        out.append(replace(d, cost=est.record(), cost_error=None))
    return out


def cost_line(cost: dict[str, Any] | None) -> str:
    """One line for a decision's cost in tables and forms ("" without one)."""
    if not cost:
        return ""
    return (
        f"{human_bytes(cost['bytes'])} to copy, {human_bytes(cost['cross_az_bytes'])} cross-AZ, "
        f"${cost['dollars']:,.2f}, ~{human_duration(cost['eta_s'])}"
    )


def approval_cost_text(remedy: Remedy, cost: dict[str, Any] | None) -> str:
    """The cost paragraph of an approval form ("" for a remedy that copies nothing).

    Why on the form: approving a replacement or a drain commits the cluster to hours of copying and
    a cross-AZ bill; the approver should see both before ticking the box. A replacement's figure is
    its worst case (a fresh machine re-fetching everything), since a restart with the disk kept
    copies only what it missed.
    """
    if remedy not in COSTED_REMEDIES:
        return ""
    if not cost:
        return "Cost: unknown (could not be estimated from the last look at the cluster).\n\n"
    text = (
        f"Cost: **{human_bytes(cost['bytes'])}** to copy, {human_bytes(cost['cross_az_bytes'])} across AZs "
        f"(**${cost['dollars']:,.2f}** at ${cost['price_per_gb']:g}/GB), **~{human_duration(cost['eta_s'])}** at "
        f"{human_bytes(cost['throttle_bytes_per_sec'])}/s per broker ({cost['bottleneck']})."
    )
    if remedy is Remedy.REPLACE_BROKER:
        text += " That is if the broker is rebuilt; a restart that keeps its disk copies only what it missed."
    if cost.get("not_copied"):
        text += f" {cost['not_copied']} partition(s) cannot be copied."
    return text + "\n\n"


def approval_text(cluster: str, remedy: Remedy, broker_id: int | None, rule: str, reason: str,
                  cost: dict[str, Any] | None) -> str:  # fmt: skip
    """The approval form's text: what kafka-medic wants to do, why, what it costs, and that it looks again."""
    what = {
        Remedy.REPLACE_BROKER: f"**heal broker {broker_id}** (restart it with its disk if its host is still "
        "there, else a fresh machine/disk with the same broker id)",
        Remedy.REASSIGN_AWAY: f"**move every partition off broker {broker_id}**",
        Remedy.DEMOTE_BROKER: f"**take every leadership off broker {broker_id}** (no data moves; reversible)",
        Remedy.RESTART_BROKER: f"**restart broker {broker_id}** keeping its disk",
    }.get(remedy, remedy.value)
    return (
        f"kafka-medic wants to {what} on cluster `{cluster}`.\n\n"
        f"Reason ({rule}): {reason}\n\n"
        + approval_cost_text(remedy, cost)
        + "Before acting it re-checks the cluster (locks, cooldown, safety on a fresh snapshot). "
        "Tick **approve** to proceed; leave it unticked to reject."
    )
