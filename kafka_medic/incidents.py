"""Incidents: every critical condition reaches a human once, again on a schedule while it lasts,
and with a "resolved" when it clears (pure; the health check persists and delivers).

A tool that acts silently, or pages every ten seconds, or never says "it is over", is switched off.
So each cycle the health check turns its findings into *conditions* (:func:`conditions`) -- the
things an on-call must know about -- and :func:`step` compares them with the incidents already
open:

* a new condition **opens** an incident once it has lasted ``incident_pending_s`` (a clean
  failover's few leaderless seconds page nobody): a page if it is critical, a notice otherwise;
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
* a remediation that was refused, failed or is backing off (a notice), gave up or stood down (a
  page): one incident per broker (:func:`remediation_conditions`), open while the health check's
  dispatch keeps reporting it, escalated when the failures turn into giving up.

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
from kafka_medic.judgment import Attempt, Ladder, attempts_in_window, may_attempt
from kafka_medic.policy import HealthPolicy
from kafka_medic.rules.names import RuleName

_VERSION = 1

#: Rules whose critical findings are incidents of their own (beyond the paging ones).
CRITICAL_RULES = frozenset({
    RuleName.OFFLINE, RuleName.OFFLINE_REPORTED_BY_CONTROLLER, RuleName.UNDER_MIN_ISR,
    RuleName.DISK_USAGE_CRITICAL, RuleName.OFFLINE_LOG_DIR, RuleName.NO_ACTIVE_CONTROLLER,
    RuleName.SOLE_COPY_OFFLINE,
})  # fmt: skip
#: Rules about leftovers nobody owns (warnings that still need a human).
LEFTOVER_RULES = frozenset({"leftover_throttles", "unowned_reassignment"})
#: Partition-scoped rules are one incident per cluster (their partition list changes every cycle).
CLUSTER_WIDE = frozenset({
    RuleName.OFFLINE, RuleName.OFFLINE_REPORTED_BY_CONTROLLER, RuleName.UNDER_MIN_ISR, RuleName.NO_ACTIVE_CONTROLLER,
    RuleName.MASS_FAILURE, RuleName.MASS_DEGRADATION, RuleName.NO_BROKERS_VISIBLE, RuleName.RULE_ERROR,
    *LEFTOVER_RULES,
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
    at_once: bool = False  # an outcome, not a state: no pending window (a failed remediation happened)


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
            "b": [int(b) for b in self.brokers], "a": int(self.absent), "c": int(self.notifications),
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
    pending: Mapping[str, datetime] = field(default_factory=dict)  # seen since, not yet long enough to open

    def to_json(self) -> dict[str, Any]:
        return {"v": _VERSION, "i": {k: i.to_json() for k, i in sorted(self.open.items())},
                "p": {k: t.isoformat(timespec="seconds") for k, t in sorted(self.pending.items())}}  # fmt: skip

    @classmethod
    def from_json(cls, raw: Any) -> Incidents:
        """Raises ValueError on anything it did not write."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping) or raw.get("v") != _VERSION:
            raise ValueError(f"expected a version-{_VERSION} incidents object")
        try:
            return cls(
                {str(k): Incident.from_json(str(k), v) for k, v in (raw.get("i") or {}).items()},
                {str(k): datetime.fromisoformat(v) for k, v in (raw.get("p") or {}).items()},
            )
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


#: Rules that report the same condition another way share its incident (one page, not two, whose
#: text carries both): the controller's OfflinePartitionsCount and our own count of partitions
#: without a leader; a down broker holding the only copy of offline partitions ("bring it back with
#: its disk"). The ``stood_down`` finding is no incident of its own: whatever made automation stand
#: down pages already (mass failure, no controller, ...).
SAME_INCIDENT_AS: Mapping[str, str] = {
    RuleName.OFFLINE_REPORTED_BY_CONTROLLER: RuleName.OFFLINE,
    RuleName.SOLE_COPY_OFFLINE: RuleName.OFFLINE,
}


def _key(rule: str, brokers: Iterable[int]) -> str:
    rule = str(SAME_INCIDENT_AS.get(rule, rule))  # a plain str: the key is a JSON object key when stored
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
        brokers = tuple(int(b) for b in f.brokers)  # numpy ints from the frames are not JSON
        if prev is None or prev.severity is not Severity.CRITICAL:
            out[key] = Condition(key, str(SAME_INCIDENT_AS.get(f.rule, f.rule)), severity, summary, brokers,
                                 len(f.partitions))  # fmt: skip
        elif severity is Severity.CRITICAL and summary not in prev.summary:  # one page says it all
            out[key] = replace(prev, summary=f"{prev.summary}; {summary}",
                               brokers=tuple(sorted({*prev.brokers, *brokers})))  # fmt: skip
    return list(out.values())


#: Dispatch outcomes that are conditions, and how serious: a failed or refused try is a notice (the
#: next try may work); giving up or standing down means nobody will act unless a human does.
REMEDIATION_STATUSES: Mapping[str, Severity] = {
    "failed": Severity.WARNING, "refused": Severity.WARNING, "backing off": Severity.WARNING,
    "gave up": Severity.CRITICAL, "stood_down": Severity.CRITICAL,
}  # fmt: skip
REMEDIATION_FAILING = "remediation_failing"
REMEDIATION_GAVE_UP = "remediation_gave_up"
REMEDIATION_STOOD_DOWN = "remediation_stood_down"


def remediation_conditions(dispatched: Iterable[Mapping[str, Any]]) -> list[Condition]:
    """Conditions from this cycle's dispatch results: one per broker, its worst outcome wins."""
    out: dict[str, Condition] = {}
    for d in dispatched:
        status, b = str(d.get("status", "")), d.get("broker_id")
        severity = REMEDIATION_STATUSES.get(status)
        if severity is None or b is None:
            continue
        remedy = str(d.get("remedy", "remediation")).replace("_", " ")
        why = str(d.get("why") or d.get("message") or d.get("error") or "no reason given")
        if status == "gave up":
            summary = (
                f"kafka-medic gave up on broker {b} ({remedy}): {why}. It will not try again until the window "
                "has passed or an attempt succeeded; please look at the broker and its audit trail."
            )
        else:
            summary = f"{remedy} of broker {b}: {status}: {why}"
        critical = severity is Severity.CRITICAL
        rule = {"gave up": REMEDIATION_GAVE_UP, "stood_down": REMEDIATION_STOOD_DOWN}.get(status, REMEDIATION_FAILING)
        c = Condition(f"remediation:{b}", rule, severity, summary, (int(b),), at_once=True)
        prev = out.get(c.key)
        if prev is None or (critical and prev.severity is not Severity.CRITICAL):
            out[c.key] = c
    return list(out.values())


def ladder_conditions(ladder: Ladder, policy: HealthPolicy, now: datetime) -> list[Condition]:
    """Conditions from the remediation attempts the ladder remembers: a broker whose attempts failed
    since its last success, inside ``remediation_window_s``, is a condition every cycle until an
    attempt succeeds or the window passes -- not only in the cycle that tried (seen: an incident
    "resolved" 7 s after a failed restart because the next cycles had nothing to dispatch)."""
    out: list[Condition] = []
    for b, record in sorted(ladder.brokers.items()):
        failed: list[Attempt] = []
        for a in attempts_in_window(record, policy, now):  # the failures since the last success
            failed = [] if a.ok else [*failed, a]
        if not failed:
            continue
        _, why, gave_up = may_attempt(record, policy, now)
        last = failed[-1]
        what = last.action.replace("_", " ")
        if gave_up:
            summary = (
                f"kafka-medic gave up on broker {b} ({what}): {why}. It will not try again until the window "
                "has passed or an attempt succeeded; please look at the broker and its audit trail."
            )
            out.append(Condition(f"remediation:{b}", REMEDIATION_GAVE_UP, Severity.CRITICAL, summary, (int(b),),
                                 at_once=True))  # fmt: skip
        else:
            summary = (f"{what} of broker {b} failed ({len(failed)} failed attempt(s), last at "
                       f"{last.at.isoformat(timespec='seconds')}){': ' + why if why else ''}")  # fmt: skip
            out.append(Condition(f"remediation:{b}", REMEDIATION_FAILING, Severity.WARNING, summary, (int(b),),
                                 at_once=True))  # fmt: skip
    return out


def worst(conditions: Iterable[Condition]) -> list[Condition]:
    """One condition per key, the most severe (the first of equals)."""
    out: dict[str, Condition] = {}
    for c in conditions:
        prev = out.get(c.key)
        if prev is None or (c.severity is Severity.CRITICAL and prev.severity is not Severity.CRITICAL):
            out[c.key] = c
    return list(out.values())


def step(
    incidents: Incidents,
    current: Iterable[Condition],
    now: datetime,
    *,
    repeat_s: float,
    resolve_cycles: int,
    pending_s: float = 0.0,
) -> tuple[Incidents, list[Notification]]:
    """One cycle: open, escalate, repeat or resolve (see the module docstring).

    A condition opens an incident only once it has lasted ``pending_s`` (seen on every cycle since
    it was first seen): a crashed broker's partitions are leaderless until the controller fences it
    (``broker.session.timeout.ms``, 9 s by default), and a page for every clean failover would teach
    the on-call to ignore pages. Outcomes (``Condition.at_once``: a remediation failed) open at once.
    """
    now_c = {c.key: c for c in current}
    out: dict[str, Incident] = {}
    pending: dict[str, datetime] = {}
    notes: list[Notification] = []
    for key, c in now_c.items():
        old = incidents.open.get(key)
        if old is None:
            since = incidents.pending.get(key, now)
            if not c.at_once and (now - since).total_seconds() < pending_s:
                pending[key] = since
                continue
            inc = Incident(key, c.rule, c.severity, c.summary, since, now, c.brokers)
            notes.append(Notification(Transition.OPENED, inc, page=c.severity is Severity.CRITICAL))
        elif c.severity is Severity.CRITICAL and old.severity is not Severity.CRITICAL:
            inc = replace(old, rule=c.rule, severity=c.severity, summary=c.summary, notified_at=now, absent=0,
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
    return Incidents(out, pending), notes


def message(n: Notification, cluster: str, now: datetime) -> str:
    """The body of a page or notice: what, since when, and what it means for the on-call."""
    inc = n.incident
    lasted = (now - inc.opened_at).total_seconds()
    lines = [f"Cluster: {cluster}", f"Incident: {inc.key} ({inc.rule}, {inc.severity.value}): {n.transition.value}"]
    if inc.brokers:
        lines.append(f"Brokers: {', '.join(map(str, inc.brokers))}")
    lines += ["", inc.summary, ""]
    if n.transition is Transition.RESOLVED:
        lines.append(f"Resolved after {lasted:.0f} s (opened {inc.opened_at.isoformat(timespec='seconds')}).")
    elif n.transition is Transition.REPEATED:
        lines.append(f"Still open after {lasted:.0f} s (notification #{inc.notifications}).")
    return "\n".join(lines)
