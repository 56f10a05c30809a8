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
- A broker whose episode is over gets its leaderships back (the undo of its demotion).
- At most one broker action per cycle, dead before degraded: the cluster's locks and cooldowns
  make the rest wait anyway, and one decision per cycle keeps the audit trail readable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.policy import Mode


class Remedy(StrEnum):
    REPLACE_BROKER = "replace_broker"
    RESTART_BROKER = "restart_broker"
    DEMOTE_BROKER = "demote_broker"
    RESTORE_BROKER = "restore_broker"  # undo a demotion: the episode is over
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
