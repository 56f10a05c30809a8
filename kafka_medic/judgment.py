"""Judging a degraded broker on evidence over time, and the ladder it climbs: demote -> restart -> replace.

One bad sample must never cost a broker its leadership, let alone its disk. The health rules
(:mod:`kafka_medic.rules.degraded`) say what one snapshot shows: a broker's produce p99, idle ratios
or ISR-shrink rate are outliers against its peers and past an absolute floor. This module decides
whether that is *evidence*, keeps a score per broker across cycles, and says when a rung is due:

* **agreeing signals**: a peer outlier counts only if the broker is also worse than its *own*
  history -- ``degraded_history_factor`` x the baseline it showed on clean cycles (an EWMA,
  trusted after ``degraded_baseline_min_samples`` observations, flagged or not; clean ones only after
  that) -- and carries real traffic
  (``degraded_min_bytes_in_per_sec``, produced to it plus replicated to it): an idle broker's p99
  is a handful of requests and means nothing (Cruise Control's SlowBrokerFinder skips brokers
  under ~1 MB/s for the same reason);
* **a score**: +1 per cycle the broker is a suspect, -1 per clean cycle, counted only on a *new*
  observation (a snapshot taken after the last one counted: a replayed sample never counts);
* **nobody is judged** while any broker is down or has just come back, while a reassignment runs,
  or for ``degraded_settle_s`` after any of those or after a rung or a restore of leaderships: in every
  failover the survivors' p99 spikes and ISRs shrink as collateral (measured on the sandbox: the
  bystanders of a killed broker showed 5-50x their peers' p99 for 10-40 s); a broker that is not
  fully in sync is catching up and is not judged either;
* **the ladder**: at ``demote_score`` the broker loses its leaderships (cheap, reversible, and it
  takes the broker out of every producer's path); at ``restart_score`` it is restarted with its
  disk; at ``replace_score`` it gets a fresh machine/disk. Each rung only after the one before it
  was taken, and never while the broker's dead-broker grace period runs: that would bypass it.
  A restart that did not bring the broker back healthy is a rung *taken* (and failed): the next
  one is a replacement, not another restart. Back at score 0 it gets its leaderships back, on
  probation (:class:`BrokerLadder`): degrading again within ``ladder_reset_s`` continues the climb
  (from a demotion to a restart, from a restart to a replacement) instead of starting it again;
* **mass degradation**: more suspects at once than the mass-failure cutoffs is the environment
  (network, clients, a config push), not hardware: automation stands down and a human is paged;
* **failure handling**: a failed or refused remediation of a broker backs off (``remediation_backoff_s``,
  doubling) and after ``remediation_max_attempts`` in ``remediation_window_s`` automation stops
  trying that broker and pages.

Everything here is pure: the state is plain data, persisted by the caller
(:meth:`kafka_medic.state.ClusterState.judgment`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.policy import HealthPolicy
from kafka_medic.rules.brokers import exceeds_cutoffs
from kafka_medic.rules.degraded import PRODUCE_LOCAL, produce_local_p99
from kafka_medic.rules.names import RuleName
from kafka_medic.snapshot import ClusterSnapshot

#: Metric signals judged against the broker's own history: column -> which direction is bad.
#: ``produce_local_p99_ms`` is derived (total minus remote produce p99, see
#: :mod:`kafka_medic.rules.degraded`): the rule names it when remote time is scraped, and the total
#: ``produce_p99_ms`` when it is not; each has its own baseline, learnt from what was there.
HISTORY_SIGNALS: dict[str, str] = {
    PRODUCE_LOCAL: "high",
    "produce_p99_ms": "high",
    "produce_queue_p99_ms": "high",
    "request_handler_idle": "low",
    "network_processor_idle": "low",
    "isr_shrinks_per_sec": "high",
}
#: Host signals (AWS tells us the hardware is impaired or going away): no history needed.
HOST_SIGNALS = frozenset({"ec2_impaired", "ec2_scheduled_event"})
_STATE_VERSION = 1


class Rung(StrEnum):
    """A step of the ladder; each is audited, verified and reported."""

    DEMOTE = "demote"  # move leadership off the broker (no data moves)
    RESTART = "restart"  # restart it with its disk
    REPLACE = "replace"  # fresh machine/disk, same broker id


RUNG_ORDER = (Rung.DEMOTE, Rung.RESTART, Rung.REPLACE)
RUNG_ACTION: dict[Rung, Action] = {
    Rung.DEMOTE: Action.DEMOTE_BROKER,
    Rung.RESTART: Action.RESTART_BROKER,
    Rung.REPLACE: Action.REPLACE_DEGRADED_BROKER,
}


@dataclass(frozen=True)
class Attempt:
    """One remediation attempt of a broker and how it went."""

    at: datetime
    action: str
    ok: bool

    def to_json(self) -> list[Any]:
        return [self.at.isoformat(timespec="seconds"), self.action, self.ok]

    @classmethod
    def from_json(cls, raw: Any) -> Attempt:
        at, action, ok = raw
        return cls(datetime.fromisoformat(str(at)), str(action), bool(ok))


@dataclass(frozen=True)
class BrokerScore:
    """What the health check remembers about one broker's health between cycles."""

    score: int = 0
    baseline: Mapping[str, float] = field(default_factory=dict)  # signal -> EWMA of clean observations
    samples: int = 0  # clean observations folded into the baseline

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"s": self.score, "n": self.samples}
        if self.baseline:
            out["b"] = {k: round(v, 4) for k, v in sorted(self.baseline.items())}
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> BrokerScore:
        return cls(
            score=int(raw.get("s", 0)),
            baseline={str(k): float(v) for k, v in (raw.get("b") or {}).items()},
            samples=int(raw.get("n", 0)),
        )


@dataclass(frozen=True)
class Scores:
    """The health check's judgment of a cluster between cycles (it alone writes it)."""

    observed_at: datetime | None = None  # taken_at of the last observation counted
    disrupted_at: datetime | None = None  # the last broker down/back or reassignment seen
    brokers: Mapping[int, BrokerScore] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": _STATE_VERSION,
            "o": self.observed_at.isoformat() if self.observed_at else None,
            "d": self.disrupted_at.isoformat() if self.disrupted_at else None,
            "b": {str(k): r.to_json() for k, r in sorted(self.brokers.items())},
        }

    @classmethod
    def from_json(cls, raw: Any) -> Scores:
        """Raises ValueError on anything it did not write (the caller refuses, never guesses)."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping) or raw.get("v") != _STATE_VERSION:
            raise ValueError(f"expected a version-{_STATE_VERSION} scores object")
        try:
            return cls(
                observed_at=datetime.fromisoformat(raw["o"]) if raw.get("o") else None,
                disrupted_at=datetime.fromisoformat(raw["d"]) if raw.get("d") else None,
                brokers={int(k): BrokerScore.from_json(v) for k, v in (raw.get("b") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed scores: {exc}") from None


@dataclass(frozen=True)
class BrokerLadder:
    """Where one broker stands on the ladder, and the remediation attempts on it.

    An episode: rungs taken one after the other. It starts with the first rung and lasts while the
    broker is degraded or on a rung, then for ``ladder_reset_s`` (default 1 h) of probation after
    its leaderships were given back (``restored_at``); giving them back does *not* end it. Only a
    probation that runs its full ``ladder_reset_s`` ends it (:meth:`current`), and the next episode
    starts at the bottom again.

    Why probation: a demoted broker stops showing leader-only symptoms (its own produce p99, request
    queue time) simply because it leads nothing, and a restarted one is judged on a cold JVM, so "healthy
    after a rung" is not proof of recovery. If it degrades again on probation it climbs on from
    where it was -- restart after a demotion, replace after a restart, never the same rung again
    -- and the next rung is due as soon as the relapse reaches the score that took the rung it is
    on (``demote_score`` after a demotion, ``restart_score`` after a restart), not after the score
    climbed anew to the next rung's own threshold: the score it lost while demoted was lost to
    missing signals, not earned by recovery. Giving the leaderships back moves leaders like a rung
    does, so nobody is judged for ``degraded_settle_s`` after it either (:meth:`Ladder.last_rung_at`):
    a freshly restarted JVM taking its leaders back is not a relapse.

    ``failed``: the highest rung was tried and did not heal the broker (a restart that did not bring
    it back healthy within its bound). The rung counts as taken -- a host that cannot run the broker
    is not restarted again -- and the next rung is due on the same terms as a relapse.
    """

    rung: Rung | None = None  # the highest rung taken in the current episode
    rung_at: datetime | None = None
    attempts: tuple[Attempt, ...] = ()
    restored_at: datetime | None = None  # leaderships given back (on probation since)
    failed: bool = False  # the rung was tried but did not bring the broker back healthy

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.rung is not None:
            out["r"] = [self.rung.value, self.rung_at.isoformat(timespec="seconds") if self.rung_at else None]
        if self.restored_at is not None:
            out["x"] = self.restored_at.isoformat(timespec="seconds")
        if self.failed:
            out["f"] = True
        if self.attempts:
            out["a"] = [a.to_json() for a in self.attempts]
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> BrokerLadder:
        rung, rung_at = None, None
        if raw.get("r"):
            rung = Rung(raw["r"][0])
            rung_at = datetime.fromisoformat(raw["r"][1]) if raw["r"][1] else None
        return cls(
            rung=rung, rung_at=rung_at, attempts=tuple(Attempt.from_json(a) for a in raw.get("a", [])),
            restored_at=datetime.fromisoformat(raw["x"]) if raw.get("x") else None, failed=bool(raw.get("f")),
        )  # fmt: skip

    def current(self, policy: HealthPolicy, now: datetime) -> BrokerLadder:
        """This record as the ladder sees it at ``now``: an episode quiet for ``ladder_reset_s`` after
        its restore is over (the attempts stay: failures are counted on their own window)."""
        if self.restored_at is not None and (now - self.restored_at).total_seconds() >= policy.ladder_reset_s:
            return BrokerLadder(attempts=self.attempts)
        return self

    @property
    def relapsing(self) -> bool:
        """The next rung needs only the evidence that took the current one: the broker is on
        probation, or the rung it is on was tried and failed (see the class docstring)."""
        return self.rung is not None and (self.failed or self.restored_at is not None)

    def restarted(self) -> bool:
        """This episode already restarted the broker (successfully or not): a replacement due now
        must not restart it first once more (call on :meth:`current`)."""
        return self.rung in (Rung.RESTART, Rung.REPLACE)


@dataclass(frozen=True)
class Ladder:
    """Every broker's rung and attempts (remediation alone writes it, under the cluster's lock)."""

    brokers: Mapping[int, BrokerLadder] = field(default_factory=dict)

    def of(self, broker_id: int) -> BrokerLadder:
        return self.brokers.get(broker_id, BrokerLadder())

    def with_broker(self, broker_id: int, entry: BrokerLadder) -> Ladder:
        brokers = {**self.brokers, broker_id: entry}
        return Ladder({k: v for k, v in brokers.items() if v.rung is not None or v.attempts})

    def last_rung_at(self) -> datetime | None:
        """When a broker last took a rung or got its leaderships back (both disturb everyone's metrics)."""
        times = [t for e in self.brokers.values() for t in (e.rung_at, e.restored_at) if t is not None]
        return max(times) if times else None

    def to_json(self) -> dict[str, Any]:
        return {"v": _STATE_VERSION, "b": {str(k): e.to_json() for k, e in sorted(self.brokers.items())}}

    @classmethod
    def from_json(cls, raw: Any) -> Ladder:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping) or raw.get("v") != _STATE_VERSION:
            raise ValueError(f"expected a version-{_STATE_VERSION} ladder object")
        try:
            return cls({int(k): BrokerLadder.from_json(v) for k, v in (raw.get("b") or {}).items()})
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed ladder: {exc}") from None


@dataclass(frozen=True)
class Verdict:
    """One broker's judgment this cycle."""

    broker_id: int
    score: int
    suspect: bool  # the signals agree this cycle (whether or not it was counted)
    counted: bool  # the score moved on this observation
    evidence: tuple[dict[str, Any], ...] = ()
    not_judged: str | None = None  # why this broker was not judged this cycle
    due: Rung | None = None  # the rung to take now
    recovered: bool = False  # healthy again: give its leaderships back (the rung is kept on probation)
    next_at: str | None = None  # the next rung up and the score it is due at ("restart at 5 (relapse)")

    def to_record(self) -> dict[str, Any]:
        return {
            "broker_id": self.broker_id, "score": self.score, "suspect": self.suspect, "counted": self.counted,
            "not_judged": self.not_judged, "due": self.due.value if self.due else None, "recovered": self.recovered,
            "next_at": self.next_at, "evidence": list(self.evidence),
        }  # fmt: skip


@dataclass(frozen=True)
class Judgment:
    scores: Scores  # the new scores (the caller persists them)
    verdicts: dict[int, Verdict]
    gate: str | None  # why nobody was judged this cycle (None: everyone eligible was)
    findings: list[Finding]  # the degraded findings, with the verdict applied (and any mass page)


#: Baselines alone are written at most this often (seconds): every cycle of every cluster would be a
#: Prefect API write of a value that grows with the broker count; scores are written when they move.
BASELINE_SAVE_EVERY_S = 300.0


def worth_saving(old: Scores, new: Scores, policy: HealthPolicy, *, every_s: float = BASELINE_SAVE_EVERY_S) -> bool:
    """Whether the health check should persist ``new`` (it skips writes that change nothing that matters).

    Always when a score, the set of brokers or the disruption time moved, and while any broker is
    still learning its baseline; else (baselines drifting) at most every ``every_s``. Skipping a
    write never lets a replay count: the next cycle's snapshot is newer than the stored one either way.
    """
    if new.disrupted_at != old.disrupted_at or set(new.brokers) != set(old.brokers):
        return True
    if any(new.brokers[b].score != old.brokers[b].score for b in new.brokers):
        return True
    if any(r.samples < policy.degraded_baseline_min_samples for r in new.brokers.values()):
        return new.brokers != old.brokers
    if new.observed_at is None or old.observed_at is None:
        return new.observed_at != old.observed_at
    return (new.observed_at - old.observed_at).total_seconds() >= every_s


# -- the ladder and failure handling -----------------------------------------------------------------


def pending_rung(record: BrokerLadder, policy: HealthPolicy, *, can_restart: bool = True) -> tuple[Rung, int] | None:
    """The next rung up from ``record`` (call on :meth:`BrokerLadder.current`) and the score it is
    due at; None at the top. Its own threshold, or -- when the broker relapses on probation or the
    rung it is on failed (:attr:`BrokerLadder.relapsing`) -- the threshold of the rung it is on.

    Without a way to restart the broker (no replacer, or a script replacer without a restart
    command) the restart rung is passed over: demote, then replace."""
    thresholds = {
        Rung.DEMOTE: policy.demote_score,
        Rung.RESTART: policy.restart_score,
        Rung.REPLACE: policy.replace_score,
    }
    taken = -1 if record.rung is None else RUNG_ORDER.index(record.rung)
    for i, rung in enumerate(RUNG_ORDER):
        if i > taken and (rung is not Rung.RESTART or can_restart):
            at = thresholds[rung]
            if record.relapsing and record.rung is not None:
                at = min(at, thresholds[record.rung])
            return rung, at
    return None


def next_rung(record: BrokerLadder, score: int, policy: HealthPolicy, *, can_restart: bool = True) -> Rung | None:
    """The rung due at ``score`` given the rungs already taken (each only after the one before;
    :func:`pending_rung` says at which score)."""
    pending = pending_rung(record, policy, can_restart=can_restart)
    return pending[0] if pending is not None and score >= pending[1] else None


def attempts_in_window(record: BrokerLadder, policy: HealthPolicy, now: datetime) -> list[Attempt]:
    horizon = now - timedelta(seconds=policy.remediation_window_s)
    return [a for a in record.attempts if a.at >= horizon]


def may_attempt(record: BrokerLadder, policy: HealthPolicy, now: datetime) -> tuple[bool, str, bool]:
    """(may act now, why not, give up) for another remediation of this broker.

    Failed attempts in the window back off: ``remediation_backoff_s`` after the first, doubling
    after each; once ``remediation_max_attempts`` have failed in the window, automation gives up on
    the broker (the caller pages once) until the window has passed or an attempt succeeded.
    """
    recent = attempts_in_window(record, policy, now)
    failed: list[Attempt] = []
    for a in recent:  # only the failures since the last success count
        failed = [] if a.ok else [*failed, a]
    if len(failed) >= policy.remediation_max_attempts:
        return False, f"{len(failed)} failed attempt(s) in {policy.remediation_window_s:.0f} s: giving up", True
    if failed:
        wait = policy.remediation_backoff_s * 2 ** (len(failed) - 1)
        left = wait - (now - failed[-1].at).total_seconds()
        if left > 0:
            return False, f"backing off after {len(failed)} failed attempt(s): {left:.0f} s left of {wait:.0f} s", False
    return True, "", False


def with_attempt(record: BrokerLadder, attempt: Attempt, policy: HealthPolicy) -> BrokerLadder:
    """``record`` with ``attempt`` added (older ones outside the window dropped, at most 20 kept)."""
    kept = [a for a in attempts_in_window(record, policy, attempt.at) if a.at <= attempt.at][-19:]
    return replace(record, attempts=(*kept, attempt))


def with_rung(record: BrokerLadder, rung: Rung | None, at: datetime | None, *, ok: bool = True) -> BrokerLadder:
    """``record`` after ``rung`` was taken and verified (None: the episode is over); ``ok=False``:
    it was tried and did not heal the broker (a restart that did not bring it back healthy): it
    still counts as taken, and the next rung is due on a relapse's terms."""
    return replace(record, rung=rung, rung_at=at, restored_at=None, failed=rung is not None and not ok)


def with_restored(record: BrokerLadder, at: datetime) -> BrokerLadder:
    """``record`` after its leaderships were given back: on probation from ``at`` (the rung is kept)."""
    return replace(record, restored_at=at) if record.rung is not None else record


# -- judging one cycle -----------------------------------------------------------------------------------


def _value(snapshot_row: Mapping[str, Any], column: str) -> float:
    if column == PRODUCE_LOCAL:
        total, remote = _value(snapshot_row, "produce_p99_ms"), _value(snapshot_row, "produce_remote_p99_ms")
        return float(produce_local_p99(total, remote))
    try:
        v = float(snapshot_row.get(column, math.nan))
    except (TypeError, ValueError):
        return math.nan
    return v


def _own_history(signal: Mapping[str, Any], record: BrokerScore, policy: HealthPolicy) -> dict[str, Any] | None:
    """The signal with its own-history check, or None when it does not agree (or history is too short)."""
    column = str(signal.get("signal"))
    if column in HOST_SIGNALS:
        return {**signal, "own_history": "not needed: a host signal"}
    bad = HISTORY_SIGNALS.get(column)
    base = record.baseline.get(column)
    if bad is None or base is None or record.samples < policy.degraded_baseline_min_samples:
        return None
    value = float(signal.get("value") or math.nan)
    f = policy.degraded_history_factor
    if bad == "high":
        # shrink rates are ~0 when healthy: the absolute floor of the rule does the work there
        agrees = value > f * base if base > 0 else value > 0
        limit = f * base
    else:
        agrees = value < base / f
        limit = base / f
    if not agrees:
        return None
    return {**signal, "own_baseline": round(base, 4), "own_limit": round(limit, 4)}


def _ewma(old: float | None, new: float, alpha: float) -> float:
    return new if old is None else (1 - alpha) * old + alpha * new


def judge(
    scores: Scores,
    ladder: Ladder,
    snapshot: ClusterSnapshot,
    findings: Iterable[Finding],
    policy: HealthPolicy,
    *,
    previous_down_since: Mapping[int, datetime],
    down_since: Mapping[int, datetime],
    now: datetime | None = None,
    can_restart: bool = True,
) -> Judgment:
    """One cycle: score the brokers the rules flag, decide which rung is due, return the new scores."""
    now = now or snapshot.taken_at
    findings = list(findings)
    degraded = {f.brokers[0]: f for f in findings if f.rule == RuleName.DEGRADED_BROKER and f.brokers}
    others = [f for f in findings if f.rule != RuleName.DEGRADED_BROKER]
    b = snapshot.brokers
    rows = {int(r["broker_id"]): r for r in b.to_dict("records")} if not b.empty else {}
    alive = {bid for bid, r in rows.items() if r.get("alive") is True}

    fresh = scores.observed_at is None or snapshot.taken_at > scores.observed_at
    recovered = set(previous_down_since) & alive
    disruption = None
    if down_since:
        disruption = f"broker(s) {sorted(down_since)} down"
    elif recovered:
        disruption = f"broker(s) {sorted(recovered)} just came back"
    elif not snapshot.reassignments.empty:
        disruption = f"{len(snapshot.reassignments)} reassignment(s) in progress"
    disrupted_at = now if disruption and fresh else scores.disrupted_at
    last_action = ladder.last_rung_at()  # a restart or replacement disturbs every broker's metrics too
    settle_from = max((t for t in (disrupted_at, last_action) if t is not None), default=None)
    gate = None
    if not fresh:
        gate = "no new observation since the last one counted"
    elif disruption:
        gate = disruption
    elif settle_from is not None and (now - settle_from).total_seconds() < policy.degraded_settle_s:
        left = policy.degraded_settle_s - (now - settle_from).total_seconds()
        gate = f"settling after a disruption ({left:.0f} s of {policy.degraded_settle_s:.0f} s left)"
    behind = _not_in_sync(snapshot)

    verdicts: dict[int, Verdict] = {}
    records = dict(scores.brokers)
    for bid in sorted(alive | set(degraded)):
        record = records.get(bid, BrokerScore())
        finding = degraded.get(bid)
        signals = list(finding.evidence.get("signals", [])) if finding is not None else []
        row = rows.get(bid, {})
        why_not = gate
        if why_not is None and bid not in alive:
            why_not = "not alive (the dead-broker rules and their grace period apply)"
        if why_not is None and bid in behind:
            why_not = "catching up (replicas not in sync)"
        if why_not is None and not signals and not any(math.isfinite(_value(row, c)) for c in HISTORY_SIGNALS):
            # no metrics is no evidence either way: a broker too starved to answer its exporter must
            # not earn clean cycles (and lose its score) for it (the metrics rule reports the gap)
            why_not = "its metrics could not be read"
        load = _load(row)
        host_only = bool(signals) and all(s.get("signal") in HOST_SIGNALS for s in signals)
        if why_not is None and not host_only and not load >= policy.degraded_min_bytes_in_per_sec:
            floor = _fmt_rate(policy.degraded_min_bytes_in_per_sec)
            why_not = f"too little traffic to judge ({_fmt_rate(load)} in, under {floor})"
        evidence = tuple(e for e in (_own_history(s, record, policy) for s in signals) if e is not None)
        suspect = bool(evidence)
        if why_not is not None:
            verdicts[bid] = Verdict(bid, record.score, suspect, False, evidence, why_not)
            continue
        score = record.score + 1 if suspect else max(0, record.score - policy.score_decay)
        baseline, samples = dict(record.baseline), record.samples
        # A clean observation teaches the broker its own baseline; so does every observation while it
        # is still learning one: a broker the peer rule flags on every sample from the start (a busy
        # machine, a broker slow before we came) would otherwise never learn one and never be judged.
        # Its baseline then includes its bad days, which only makes it harder to accuse.
        if not signals or record.samples < policy.degraded_baseline_min_samples:
            for column in HISTORY_SIGNALS:
                v = _value(row, column)
                if math.isfinite(v):
                    baseline[column] = _ewma(baseline.get(column), v, policy.degraded_baseline_alpha)
            samples += 1
        records[bid] = BrokerScore(score=score, baseline=baseline, samples=samples)
        step = ladder.of(bid).current(policy, now)
        due = next_rung(step, score, policy, can_restart=can_restart) if suspect else None
        if any(s.get("signal") == "ec2_scheduled_event" for s in evidence) and step.rung is not Rung.REPLACE:
            due = Rung.REPLACE  # the hardware is going away: replace on our schedule, not theirs
        healthy_again = score == 0 and step.rung is not None and step.restored_at is None
        verdicts[bid] = Verdict(bid, score, suspect, True, evidence, None, due, healthy_again,
                                _next_at(step, policy, can_restart))  # fmt: skip

    new_scores = Scores(
        observed_at=snapshot.taken_at if fresh else scores.observed_at,
        disrupted_at=disrupted_at,
        brokers={k: v for k, v in records.items() if k in rows},
    )
    out = others + _degraded_findings(degraded, verdicts, policy)
    out += _mass_degradation(verdicts, len(rows), policy)
    out += [_recovered(v, ladder.of(v.broker_id)) for v in verdicts.values() if v.recovered]
    return Judgment(new_scores, verdicts, gate, out)


def _next_at(step: BrokerLadder, policy: HealthPolicy, can_restart: bool) -> str | None:
    pending = pending_rung(step, policy, can_restart=can_restart)
    if pending is None:
        return None
    why = ""
    if step.failed and step.rung is not None:
        why = f" (its {step.rung.value} failed)"
    elif step.relapsing:
        why = " (relapse on probation)"
    return f"{pending[0].value} at {pending[1]}{why}"


def _recovered(v: Verdict, step: BrokerLadder) -> Finding:
    return Finding(
        rule=RuleName.BROKER_RECOVERED,
        severity=Severity.INFO,
        summary=f"Broker {v.broker_id} is healthy again after its {step.rung.value if step.rung else ''} "
        "(score 0): its leaderships go back (on probation: if it degrades again it climbs on from here)",
        brokers=(v.broker_id,),
        evidence={"judgment": v.to_record(), "rung": step.rung.value if step.rung else None},
        action=Action.RESTORE_BROKER,
    )


def _load(row: Mapping[str, Any]) -> float:
    """Bytes/s the broker takes in: produced to it as a leader plus fetched as a follower (a demoted
    broker leads nothing but still carries its share); NaN when neither is known."""
    values = [v for v in (_value(row, "bytes_in_per_sec"), _value(row, "replication_bytes_in_per_sec"))
              if math.isfinite(v)]  # fmt: skip
    return sum(values) if values else math.nan


def _fmt_rate(v: float) -> str:
    return "unknown" if not math.isfinite(v) else f"{v / 1000:.1f} kB/s"


def _not_in_sync(snapshot: ClusterSnapshot) -> set[int]:
    r = snapshot.replicas
    if r.empty:
        return set()
    behind = r.loc[~r["in_isr"].astype(bool), "broker_id"]
    return {int(x) for x in np.unique(behind.to_numpy())}


def _degraded_findings(
    degraded: Mapping[int, Finding], verdicts: Mapping[int, Verdict], policy: HealthPolicy
) -> list[Finding]:
    """The rules' degraded findings with the verdict applied: acting only when a rung is due."""
    out: list[Finding] = []
    for bid, f in sorted(degraded.items()):
        v = verdicts.get(bid)
        if v is None:
            out.append(replace(f, action=Action.NONE))
            continue
        if v.not_judged:
            note = f"not judged: {v.not_judged}"
        elif not v.suspect:
            note = "not confirmed by its own history"
        elif v.due is not None:
            note = f"score {v.score}: {v.due.value} it"
        else:
            note = f"score {v.score} ({v.next_at or 'no rung left to climb'})"
        action = RUNG_ACTION[v.due] if v.due is not None else Action.NONE
        severity = Severity.WARNING if v.suspect and not v.not_judged else Severity.INFO
        out.append(
            replace(
                f,
                summary=f"{f.summary} ({note})",
                severity=severity,
                action=action,
                evidence={**f.evidence, "judgment": v.to_record()},
            )
        )
    return out


def _mass_degradation(verdicts: Mapping[int, Verdict], n_brokers: int, policy: HealthPolicy) -> list[Finding]:
    """More brokers with a rung due at once than the mass-failure cutoffs: page and stand down."""
    due = sorted(v.broker_id for v in verdicts.values() if v.due is not None)
    by_count, by_fraction = exceeds_cutoffs(len(due), n_brokers, policy)
    if not (by_count or by_fraction):
        return []
    return [
        Finding(
            rule=RuleName.MASS_DEGRADATION,
            severity=Severity.CRITICAL,
            summary=f"{len(due)} of {n_brokers} brokers are judged degraded at once: likely an environment "
            "problem, not hardware; automation stands down",
            brokers=tuple(due),
            evidence={
                "degraded_brokers": len(due),
                "total_brokers": n_brokers,
                "scores": {str(b): verdicts[b].score for b in due},
            },
            action=Action.PAGE,
        )
    ]
