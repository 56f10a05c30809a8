"""Incidents: every critical condition reaches a human once, again on a schedule while it lasts,
and with a "resolved" when it clears (pure; the health check persists and delivers).

A tool that acts silently, or pages every ten seconds, or never says "it is over", is switched off.
So each cycle the health check turns its findings into *conditions* (:func:`conditions`) -- the
things an on-call must know about -- and :func:`step` compares them with the incidents already
open:

* a new condition **opens** an incident: a page if it is critical, a notice otherwise;
* an open one that got worse (warning -> critical) is **escalated**: paged again at once;
* one still open after ``incident_repeat_s`` is **repeated** (the page did not get through, or
  nobody acted), at most once per that interval;
* one whose condition was absent for ``incident_resolve_cycles`` consecutive cycles is **resolved**:
  a notice, so the on-call knows they can stand down (hysteresis: a flapping condition does not
  open and close every cycle).

Which findings are conditions, and why:

* paging findings (mass failure or degradation, no or split controller, a rule that crashed):
  automation stands down, a human must act -- critical;
* offline partitions and partitions under min ISR: producers with acks=all are failing -- critical;
* a disk critically full, a failed log dir -- critical;
* a broker dead past its grace period while automation will not heal it (observe or approve mode,
  maintenance, no replacer): nobody else is going to -- critical;
* leftover replication throttles or reassignments nobody owns: they slow or block the cluster
  until someone removes them -- warning;
* a remediation that was refused or failed, or gave up -- the audit's notices carry those one by
  one; the incident carries the condition (e.g. the dead broker) until it clears.

Every transition is also a Prefect event (``kafka-medic.incident.opened`` / ``.escalated`` /
``.repeated`` / ``.resolved``), so Prefect Automations can route them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.rules.names import RuleName

_VERSION = 1

#: Rules whose critical findings are incidents of their own (beyond the paging ones).
CRITICAL_RULES = frozenset({
    RuleName.OFFLINE, RuleName.OFFLINE_REPORTED_BY_CONTROLLER, RuleName.UNDER_MIN_ISR,
    RuleName.DISK_USAGE_CRITICAL, RuleName.OFFLINE_LOG_DIR, RuleName.NO_ACTIVE_CONTROLLER,
})  # fmt: skip
#: Rules about leftovers nobody owns (warnings that still need a human).
LEFTOVER_RULES = frozenset({"leftover_throttle", "orphan_reassignment"})
#: Partition-scoped rules are one incident per cluster (their partition list changes every cycle).
CLUSTER_WIDE = frozenset({
    RuleName.OFFLINE, RuleName.OFFLINE_REPORTED_BY_CONTROLLER, RuleName.UNDER_MIN_ISR, RuleName.NO_ACTIVE_CONTROLLER,
    RuleName.MASS_FAILURE, RuleName.MASS_DEGRADATION, RuleName.NO_BROKERS_VISIBLE, RuleName.RULE_ERROR,
    "leftover_throttle", "orphan_reassignment",
})  # fmt: skip


class Transition(StrEnum):
    OPENED = "opened"
    ESCALATED = "escalated"
    REPEATED = "repeated"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Condition:
    """Something a human must know about this cycle."""

    key: str  # stable identity: rule [+ broker]
    rule: str
    severity: Severity
    summary: str
    brokers: tuple[int, ...] = ()
    partitions: int = 0


@dataclass(frozen=True)
class Incident:
    key: str
    rule: str
    severity: Severity
    summary: str
    opened_at: datetime
    notified_at: datetime
    brokers: tuple[int, ...] = ()
    absent: int = 0  # consecutive cycles without its condition
    notifications: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "sev": self.severity.value, "sum": self.summary[:500],
            "o": self.opened_at.isoformat(timespec="seconds"), "n": self.notified_at.isoformat(timespec="seconds"),
            "b": list(self.brokers), "a": self.absent, "c": self.notifications,
        }  # fmt: skip

    @classmethod
    def from_json(cls, key: str, raw: Mapping[str, Any]) -> Incident:
        return cls(
            key=key, rule=str(raw["rule"]), severity=Severity(raw["sev"]), summary=str(raw["sum"]),
            opened_at=datetime.fromisoformat(raw["o"]), notified_at=datetime.fromisoformat(raw["n"]),
            brokers=tuple(int(b) for b in raw.get("b", [])), absent=int(raw.get("a", 0)),
            notifications=int(raw.get("c", 1)),
        )  # fmt: skip


@dataclass(frozen=True)
class Incidents:
    """The incidents open on one cluster (persisted between cycles)."""

    open: Mapping[str, Incident] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"v": _VERSION, "i": {k: i.to_json() for k, i in sorted(self.open.items())}}

    @classmethod
    def from_json(cls, raw: Any) -> Incidents:
        """Raises ValueError on anything it did not write."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping) or raw.get("v") != _VERSION:
            raise ValueError(f"expected a version-{_VERSION} incidents object")
        try:
            return cls({str(k): Incident.from_json(str(k), v) for k, v in (raw.get("i") or {}).items()})
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed incidents: {exc}") from None


@dataclass(frozen=True)
class Notification:
    """One message to send (and one Prefect event to emit)."""

    transition: Transition
    incident: Incident
    page: bool  # a page (critical, opened/escalated/repeated) vs a notice

    @property
    def subject(self) -> str:
        what = {Transition.OPENED: "OPEN", Transition.ESCALATED: "ESCALATED", Transition.REPEATED: "STILL OPEN",
                Transition.RESOLVED: "RESOLVED"}[self.transition]  # fmt: skip
        return f"[{what}] {self.incident.severity.value} {self.incident.rule}"

    @property
    def event(self) -> str:
        return f"kafka-medic.incident.{self.transition.value}"

    def to_record(self) -> dict[str, Any]:
        i = self.incident
        return {"transition": self.transition.value, "key": i.key, "rule": i.rule, "severity": i.severity.value,
                "page": self.page, "summary": i.summary}  # fmt: skip


def _key(rule: str, brokers: Iterable[int]) -> str:
    if rule in CLUSTER_WIDE:
        return rule
    bs = sorted(set(brokers))
    return f"{rule}:{','.join(map(str, bs))}" if bs else rule


def conditions(findings: Iterable[Finding], *, automation_heals: bool) -> list[Condition]:
    """The conditions a human must know about, from one cycle's findings (see the module docstring).

    ``automation_heals``: automation will act on a dead broker past its grace (auto mode, not in
    maintenance, a replacer or reassignment available); otherwise that broker is an incident too.
    """
    out: dict[str, Condition] = {}
    for f in findings:
        critical = f.severity is Severity.CRITICAL
        dead_unhealed = f.action is Action.HEAL_DEAD_BROKER and not automation_heals
        if not (f.action is Action.PAGE or (critical and f.rule in CRITICAL_RULES) or dead_unhealed
                or f.rule in LEFTOVER_RULES):  # fmt: skip
            continue
        severity = Severity.CRITICAL if (f.action is Action.PAGE or critical) else f.severity
        key = _key(f.rule, f.brokers)
        summary = f.summary + (" (automation will not heal it: a human must)" if dead_unhealed else "")
        prev = out.get(key)
        if prev is None or prev.severity is not Severity.CRITICAL:
            out[key] = Condition(key, str(f.rule), severity, summary, tuple(f.brokers), len(f.partitions))
    return list(out.values())


def step(
    incidents: Incidents, current: Iterable[Condition], now: datetime, *, repeat_s: float, resolve_cycles: int
) -> tuple[Incidents, list[Notification]]:
    """One cycle: open, escalate, repeat or resolve (see the module docstring)."""
    now_c = {c.key: c for c in current}
    out: dict[str, Incident] = {}
    notes: list[Notification] = []
    for key, c in now_c.items():
        old = incidents.open.get(key)
        if old is None:
            inc = Incident(key, c.rule, c.severity, c.summary, now, now, c.brokers)
            notes.append(Notification(Transition.OPENED, inc, page=c.severity is Severity.CRITICAL))
        elif c.severity is Severity.CRITICAL and old.severity is not Severity.CRITICAL:
            inc = replace(old, severity=c.severity, summary=c.summary, notified_at=now, absent=0,
                          notifications=old.notifications + 1)  # fmt: skip
            notes.append(Notification(Transition.ESCALATED, inc, page=True))
        elif (now - old.notified_at).total_seconds() >= repeat_s:
            inc = replace(old, summary=c.summary, notified_at=now, absent=0, notifications=old.notifications + 1)
            notes.append(Notification(Transition.REPEATED, inc, page=inc.severity is Severity.CRITICAL))
        else:
            inc = replace(old, summary=c.summary, absent=0)
        out[key] = inc
    for key, old in incidents.open.items():
        if key in now_c:
            continue
        gone = replace(old, absent=old.absent + 1)
        if gone.absent >= resolve_cycles:
            notes.append(Notification(Transition.RESOLVED, gone, page=False))
        else:
            out[key] = gone
    return Incidents(out), notes


def message(n: Notification, cluster: str, now: datetime) -> str:
    """The body of a page or notice: what, since when, and what it means for the on-call."""
    inc = n.incident
    lasted = (now - inc.opened_at).total_seconds()
    lines = [f"cluster {cluster}: {inc.summary}"]
    if n.transition is Transition.RESOLVED:
        lines.append(f"Resolved after {lasted:.0f} s (opened {inc.opened_at.isoformat(timespec='seconds')}).")
    elif n.transition is Transition.REPEATED:
        lines.append(f"Still open after {lasted:.0f} s (notification #{inc.notifications}).")
    return "\n".join(lines)
