"""The decision engine: actionable findings -> remediation decisions (pure).

Policy, in the order an experienced on-call would apply it:
- A mass failure (or any PAGE finding) stands automation down: page a human, touch nothing.
- Maintenance mode: report what would be done, do nothing.
- A broker dead beyond its grace period: replace it if the cluster has a replacer (the seed's
  lesson: reassignment alone does not heal hardware), else reassign its partitions away.
- A degraded broker (outlier metrics, impaired EC2 checks, scheduled retirement, failed disk):
  replace it if there is a replacer, else only report (draining a half-alive broker without
  replacing it shrinks capacity; a human should decide).
- At most one broker action per cycle, dead before degraded: the replacement lock and cooldown
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
    REASSIGN_AWAY = "reassign_away"
    PAGE = "page"
    REPORT = "report"


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


def decide(findings: list[Finding], mode: Mode, *, has_replacer: bool, maintenance: bool = False) -> list[Decision]:
    pages = [f for f in findings if f.action is Action.PAGE]
    if pages:
        return [Decision(Remedy.PAGE, None, f.rule, f.summary, execute=True, needs_approval=False) for f in pages]
    acting = mode is not Mode.OBSERVE and not maintenance
    why_not = "maintenance mode" if maintenance else ("observe mode" if mode is Mode.OBSERVE else "")
    out: list[Decision] = []
    dead = [f for f in findings if f.action is Action.HEAL_DEAD_BROKER and f.brokers]
    degraded = [f for f in findings if f.action is Action.REPLACE_DEGRADED_BROKER and f.brokers]
    for f in sorted(dead, key=lambda f: (f.since is None, f.since, f.brokers)):
        remedy = Remedy.REPLACE_BROKER if has_replacer else Remedy.REASSIGN_AWAY
        out.append(_decision(remedy, f, acting, why_not, mode))
    for f in sorted(degraded, key=lambda f: (f.severity is not Severity.CRITICAL, f.brokers)):
        if any(d.broker_id == f.brokers[0] for d in out):
            continue
        remedy = Remedy.REPLACE_BROKER if has_replacer else Remedy.REPORT
        out.append(_decision(remedy, f, acting and remedy is not Remedy.REPORT, why_not, mode))
    # One broker action per cycle: the first executable one; the rest are reported as deferred.
    first = next((i for i, d in enumerate(out) if d.execute), None)
    return [
        d if (i == first or not d.execute) else Decision(d.remedy, d.broker_id, d.rule, d.reason + " (deferred: one "
        "broker action per cycle)", execute=False, needs_approval=d.needs_approval)
        for i, d in enumerate(out)
    ]  # fmt: skip


def _decision(remedy: Remedy, f: Finding, acting: bool, why_not: str, mode: Mode) -> Decision:
    reason = f.summary if acting or not why_not else f"{f.summary} (not acting: {why_not})"
    return Decision(remedy, f.brokers[0], f.rule, reason, execute=acting, needs_approval=mode is Mode.APPROVE)
