"""kafka_medic.judgment: a degraded broker is judged on evidence over time, and climbs a ladder.

Every test drives ``judge`` cycle by cycle over hand-built snapshots, the way the health check does
(new snapshot, same persisted scores and ladder), so each claim is about behaviour over time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from kafka_medic.findings import Action, Severity
from kafka_medic.judgment import (
    Attempt,
    BrokerLadder,
    Judgment,
    Ladder,
    Rung,
    Scores,
    judge,
    may_attempt,
    next_rung,
    with_attempt,
    with_restored,
    with_rung,
)
from kafka_medic.policy import HealthPolicy
from kafka_medic.rules import RuleName, evaluate
from tests.unit.rules_helpers import T0, brokers, part, snapshot, spread_partitions

POLICY = HealthPolicy(degraded_settle_s=60, degraded_min_bytes_in_per_sec=100_000)
STEP = timedelta(seconds=10)
SLOW_P99 = 900.0  # healthy peers: 5 ms


class Cluster:
    """A 6-broker cluster observed every 10 s; each ``cycle`` judges one fresh snapshot."""

    def __init__(self, policy: HealthPolicy = POLICY, n: int = 6) -> None:
        self.policy = policy
        self.n = n
        self.now = T0
        self.scores = Scores()
        self.ladder = Ladder()
        self.down_since: dict[int, datetime] = {}
        self.last: Judgment | None = None

    def cycle(self, overrides: dict[int, dict[str, Any]] | None = None, *, same_sample: bool = False,
              reassigning: bool = False, partitions: list[dict[str, Any]] | None = None) -> Judgment:  # fmt: skip
        if not same_sample:
            self.now += STEP
        rows = brokers(self.n)
        for r in rows:
            r.update((overrides or {}).get(r["broker_id"], {}))
        moving = [{"topic": "t", "partition": 0, "replicas": (1, 2, 3, 4), "adding": (4,), "removing": (1,)}]
        snap = snapshot(
            rows, partitions or spread_partitions(12, [b["broker_id"] for b in rows]),
            reassignments=moving if reassigning else None, taken_at=self.now,
        )  # fmt: skip
        ev = evaluate(snap, self.policy, down_since=self.down_since)
        j = judge(self.scores, self.ladder, snap, ev.findings, self.policy,
                  previous_down_since=self.down_since, down_since=ev.down_since)  # fmt: skip
        self.down_since = ev.down_since
        self.scores = j.scores
        self.last = j
        return j

    def healthy(self, cycles: int) -> None:
        for _ in range(cycles):
            self.cycle()

    def slow(self, broker_id: int = 3, cycles: int = 1, p99: float = SLOW_P99) -> Judgment:
        j = self.cycle({broker_id: {"produce_p99_ms": p99}})
        for _ in range(cycles - 1):
            j = self.cycle({broker_id: {"produce_p99_ms": p99}})
        return j


def degraded(j: Judgment, broker_id: int) -> Any:
    return next(f for f in j.findings if f.rule == RuleName.DEGRADED_BROKER and f.brokers == (broker_id,))


def test_one_noisy_sample_never_acts() -> None:
    c = Cluster()
    c.healthy(6)  # every broker learns its own baseline
    j = c.slow(3)
    v = j.verdicts[3]
    assert v.suspect and v.counted and v.score == 1 and v.due is None
    f = degraded(j, 3)
    assert f.action is Action.NONE and "score 1 (demote at 5" in f.summary
    j = c.cycle()  # the next sample is clean: the score decays
    assert j.verdicts[3].score == 0 and not j.verdicts[3].suspect


def test_consistent_evidence_climbs_to_demote_and_a_replayed_sample_never_counts() -> None:
    c = Cluster()
    c.healthy(6)
    j = c.slow(3, cycles=4)
    assert j.verdicts[3].score == 4 and j.verdicts[3].due is None
    # the same sample again (a guard re-reading, a cached look): not a new observation
    j = c.cycle({3: {"produce_p99_ms": SLOW_P99}}, same_sample=True)
    assert j.gate == "no new observation since the last one counted" and j.verdicts[3].score == 4
    assert not j.verdicts[3].counted
    j = c.slow(3)
    v = j.verdicts[3]
    assert v.score == 5 and v.due is Rung.DEMOTE
    f = degraded(j, 3)
    assert f.action is Action.DEMOTE_BROKER and f.severity is Severity.WARNING and "demote it" in f.summary
    assert f.evidence["judgment"]["evidence"][0]["own_baseline"] == pytest.approx(5.0)
    assert all(v.due is None for b, v in j.verdicts.items() if b != 3)


def test_a_peer_outlier_must_also_be_worse_than_its_own_history() -> None:
    c = Cluster()
    # broker 3 has always run at 400 ms p99 (its own normal; e.g. bigger batches): it learns that
    for _ in range(6):
        c.cycle({3: {"produce_p99_ms": 400.0}})
    # it is a peer outlier every cycle (80x the peers) but not 3x its own baseline: never a suspect
    for _ in range(8):
        j = c.cycle({3: {"produce_p99_ms": 450.0}})
        assert not j.verdicts[3].suspect and j.verdicts[3].score == 0
    assert "not confirmed by its own history" in degraded(j, 3).summary


def test_without_a_trusted_baseline_nothing_is_confirmed() -> None:
    c = Cluster()
    j = c.slow(3, cycles=8)  # slow from the first observation: no clean history to compare with
    assert j.verdicts[3].score == 0 and not j.verdicts[3].suspect


def test_a_broker_with_little_traffic_is_not_judged() -> None:
    c = Cluster()
    c.healthy(6)
    for _ in range(8):
        j = c.cycle(
            {3: {"produce_p99_ms": SLOW_P99, "bytes_in_per_sec": 2_000.0, "replication_bytes_in_per_sec": 1_000.0}}
        )
    v = j.verdicts[3]
    assert not v.counted and v.score == 0 and "too little traffic" in (v.not_judged or "")


def test_nobody_is_judged_while_a_broker_is_down_and_until_the_cluster_settles() -> None:
    c = Cluster()
    c.healthy(6)
    c.slow(3, cycles=3)
    assert c.scores.brokers[3].score == 3
    # broker 6 dies: every survivor's p99 spikes as collateral; nobody is judged, scores freeze
    for _ in range(4):
        j = c.cycle({6: {"alive": False}, 3: {"produce_p99_ms": SLOW_P99}, 2: {"produce_p99_ms": SLOW_P99}})
        assert j.gate == "broker(s) [6] down"
        assert not any(v.counted for v in j.verdicts.values())
    assert c.scores.brokers[3].score == 3 and c.scores.brokers[2].score == 0
    # broker 6 is back: still not judged, and not for the settle window after it
    j = c.cycle({3: {"produce_p99_ms": SLOW_P99}})
    assert j.gate == "broker(s) [6] just came back"
    j = c.cycle({3: {"produce_p99_ms": SLOW_P99}})
    assert j.gate is not None and j.gate.startswith("settling after a disruption (50 s of 60 s left)")
    for _ in range(5):
        j = c.cycle({3: {"produce_p99_ms": SLOW_P99}})
    assert j.gate is None and j.verdicts[3].counted and c.scores.brokers[3].score > 3


def test_a_reassignment_or_a_restart_elsewhere_also_settles_everyone() -> None:
    c = Cluster()
    c.healthy(6)
    j = c.cycle({3: {"produce_p99_ms": SLOW_P99}}, reassigning=True)
    assert j.gate == "1 reassignment(s) in progress" and not j.verdicts[3].counted
    c2 = Cluster()
    c2.healthy(6)
    c2.ladder = Ladder({5: BrokerLadder(Rung.RESTART, c2.now)})  # broker 5 was just restarted
    j = c2.cycle({3: {"produce_p99_ms": SLOW_P99}})
    assert j.gate is not None and j.gate.startswith("settling after a disruption") and not j.verdicts[3].counted


def test_a_broker_catching_up_is_not_judged() -> None:
    c = Cluster()
    c.healthy(6)
    parts = spread_partitions(12, [1, 2, 3, 4, 5, 6])
    parts[0] = part("t", 0, [3, 4, 5], isr=[4, 5])  # broker 3 is behind on one replica
    for _ in range(6):
        j = c.cycle({3: {"produce_p99_ms": SLOW_P99}}, partitions=parts)
    assert j.verdicts[3].not_judged == "catching up (replicas not in sync)" and j.verdicts[3].score == 0


def test_a_dead_broker_inside_its_grace_is_never_judged_degraded() -> None:
    """The degraded rule must not be a way around the dead-broker grace period."""
    c = Cluster(HealthPolicy(degraded_settle_s=0, dead_broker_grace_s=300))
    c.healthy(6)
    for _ in range(10):
        j = c.cycle({4: {"alive": False, "produce_p99_ms": SLOW_P99, "ec2_status": "impaired"}})
    assert 4 not in j.verdicts or not j.verdicts[4].counted
    assert not [f for f in j.findings if f.action in (Action.DEMOTE_BROKER, Action.RESTART_BROKER,
                                                      Action.REPLACE_DEGRADED_BROKER)]  # fmt: skip


def test_the_ladder_climbs_one_rung_at_a_time() -> None:
    p = POLICY
    none = BrokerLadder()
    assert next_rung(none, 4, p) is None and next_rung(none, 5, p) is Rung.DEMOTE
    assert next_rung(none, 40, p) is Rung.DEMOTE, "never skip a rung, however high the score"
    demoted = with_rung(none, Rung.DEMOTE, T0)
    assert next_rung(demoted, 14, p) is None and next_rung(demoted, 15, p) is Rung.RESTART
    restarted = with_rung(demoted, Rung.RESTART, T0)
    assert next_rung(restarted, 29, p) is None and next_rung(restarted, 30, p) is Rung.REPLACE
    assert next_rung(with_rung(restarted, Rung.REPLACE, T0), 100, p) is None
    with pytest.raises(ValueError, match="the ladder must climb"):
        HealthPolicy(demote_score=10, restart_score=5)


def test_a_broker_that_stays_slow_is_demoted_then_restarted_and_recovers() -> None:
    c = Cluster(HealthPolicy(degraded_settle_s=30, demote_score=3, restart_score=6, replace_score=9))
    c.healthy(6)
    j = c.slow(3, cycles=3)
    assert j.verdicts[3].due is Rung.DEMOTE
    c.ladder = c.ladder.with_broker(3, with_rung(c.ladder.of(3), Rung.DEMOTE, c.now))  # remediation took it
    j = c.slow(3)  # the rung disturbs every broker: the cluster settles first
    assert j.gate is not None and j.gate.startswith("settling")
    j = c.slow(3, cycles=5)
    assert j.verdicts[3].score >= 6 and j.verdicts[3].due is Rung.RESTART
    c.ladder = c.ladder.with_broker(3, with_rung(c.ladder.of(3), Rung.RESTART, c.now))
    c.healthy(4)  # settle window
    for _ in range(10):
        j = c.cycle()
        if j.verdicts[3].recovered:
            break
    assert j.verdicts[3].recovered and j.verdicts[3].score == 0, "the episode is over: undo the demotion"


def test_a_demoted_broker_is_judged_on_the_bytes_it_replicates() -> None:
    # Leading nothing, it takes no produce traffic; as a follower it still fetches its share.
    c = Cluster(HealthPolicy(degraded_settle_s=0))
    c.healthy(6)
    j = c.cycle({3: {"bytes_in_per_sec": 0.0, "replication_bytes_in_per_sec": 4e6}})
    assert j.verdicts[3].not_judged is None and j.verdicts[3].counted
    j = c.cycle({3: {"bytes_in_per_sec": 0.0, "replication_bytes_in_per_sec": 1e3}})
    assert "too little traffic" in (j.verdicts[3].not_judged or "")


def test_a_broker_slow_again_on_probation_climbs_on_instead_of_being_demoted_again() -> None:
    # A demoted broker leads nothing, so its leader-only symptoms vanish: "healthy" after a demotion
    # is no proof. It gets its leaderships back on probation; slow again -> the next rung, not a loop.
    policy = HealthPolicy(degraded_settle_s=0, demote_score=3, restart_score=6, replace_score=9, ladder_reset_s=600)
    c = Cluster(policy)
    c.healthy(6)
    assert c.slow(3, cycles=3).verdicts[3].due is Rung.DEMOTE
    c.ladder = c.ladder.with_broker(3, with_rung(c.ladder.of(3), Rung.DEMOTE, c.now))
    for _ in range(5):
        j = c.cycle()
    assert j.verdicts[3].recovered, "score back to 0: give its leaderships back"
    assert any(f.action is Action.RESTORE_BROKER and f.brokers == (3,) for f in j.findings)
    c.ladder = c.ladder.with_broker(3, with_restored(c.ladder.of(3), c.now))
    assert not c.cycle().verdicts[3].recovered, "restored once, not every cycle"
    j = c.slow(3, cycles=6)
    assert j.verdicts[3].due is Rung.RESTART, "on probation it climbs on from its last rung"
    # a quiet probation ends the episode: the next one starts at the bottom
    c.now += timedelta(seconds=600)
    c.healthy(3)
    assert c.slow(3, cycles=3).verdicts[3].due is Rung.DEMOTE


def test_many_brokers_judged_degraded_at_once_pages_and_stands_down() -> None:
    c = Cluster(HealthPolicy(degraded_settle_s=0, demote_score=2), n=10)
    c.healthy(6)
    impaired = {b: {"ec2_status": "impaired"} for b in (1, 2, 3)}
    c.cycle(impaired)
    j = c.cycle(impaired)
    page = [f for f in j.findings if f.rule == RuleName.MASS_DEGRADATION]
    assert len(page) == 1 and page[0].action is Action.PAGE and page[0].brokers == (1, 2, 3)
    two = Cluster(HealthPolicy(degraded_settle_s=0, demote_score=2), n=10)
    two.healthy(6)
    two.cycle({1: {"ec2_status": "impaired"}, 2: {"ec2_status": "impaired"}})
    j = two.cycle({1: {"ec2_status": "impaired"}, 2: {"ec2_status": "impaired"}})
    assert not [f for f in j.findings if f.rule == RuleName.MASS_DEGRADATION]
    assert {f.action for f in j.findings if f.rule == RuleName.DEGRADED_BROKER} == {Action.DEMOTE_BROKER}


def test_a_scheduled_retirement_is_replaced_on_our_schedule() -> None:
    c = Cluster()
    c.healthy(6)
    j = c.cycle({2: {"ec2_events": "instance-retirement"}})
    assert j.verdicts[2].due is Rung.REPLACE and degraded(j, 2).action is Action.REPLACE_DEGRADED_BROKER


def test_failed_remediations_back_off_then_give_up() -> None:
    p = HealthPolicy(remediation_backoff_s=60, remediation_max_attempts=3, remediation_window_s=3600)
    r = BrokerLadder()
    assert may_attempt(r, p, T0) == (True, "", False)
    r = with_attempt(r, Attempt(T0, "restart", False), p)
    ok, why, give_up = may_attempt(r, p, T0 + timedelta(seconds=30))
    assert not ok and not give_up and why == "backing off after 1 failed attempt(s): 30 s left of 60 s"
    assert may_attempt(r, p, T0 + timedelta(seconds=61))[0]
    r = with_attempt(r, Attempt(T0 + timedelta(seconds=61), "restart", False), p)
    ok, why, _ = may_attempt(r, p, T0 + timedelta(seconds=121))
    assert not ok and "of 120 s" in why  # the delay doubles
    r = with_attempt(r, Attempt(T0 + timedelta(seconds=200), "replace", False), p)
    ok, why, give_up = may_attempt(r, p, T0 + timedelta(seconds=10_000 - 7000))
    assert not ok and give_up and why.startswith("3 failed attempt(s) in 3600 s: giving up")
    # outside the window the failures no longer count; a success resets the count
    assert may_attempt(r, p, T0 + timedelta(hours=2))[0]
    ok_now = with_attempt(r, Attempt(T0 + timedelta(seconds=300), "replace", True), p)
    assert may_attempt(ok_now, p, T0 + timedelta(seconds=301)) == (True, "", False)


def test_scores_and_ladder_round_trip_and_refuse_what_they_did_not_write() -> None:
    c = Cluster()
    c.healthy(6)
    c.slow(3, cycles=2)
    assert Scores.from_json(c.scores.to_json()) == c.scores
    ladder = Ladder().with_broker(3, with_attempt(with_rung(BrokerLadder(), Rung.DEMOTE, T0),
                                                  Attempt(T0, "demote", True), POLICY))  # fmt: skip
    assert Ladder.from_json(ladder.to_json()) == ladder
    assert Ladder().with_broker(3, BrokerLadder()).brokers == {}, "an empty entry is not kept"
    for bad in ({"v": 9}, "text", {"v": 1, "b": {"x": {}}}):
        with pytest.raises(ValueError):
            Scores.from_json(bad)
        with pytest.raises(ValueError):
            Ladder.from_json(bad)


def test_a_broker_flagged_from_its_first_sample_still_learns_a_baseline_and_is_judged_after() -> None:
    # a busy box: the peer rule flags broker 3 (150 ms vs 5 ms) on every sample from the start; before,
    # it never learnt a baseline (only clean samples taught one), so it could never be judged at all
    c = Cluster()
    for _ in range(POLICY.degraded_baseline_min_samples):
        j = c.cycle({3: {"produce_p99_ms": 150.0}})
        assert not j.verdicts[3].suspect and degraded(j, 3) is not None  # flagged, but no history yet
    assert c.scores.brokers[3].samples == POLICY.degraded_baseline_min_samples
    assert c.scores.brokers[3].baseline["produce_p99_ms"] == pytest.approx(150.0)
    # learnt: flagged samples no longer move its baseline; 6x its own normal is evidence
    j = c.slow(3, p99=SLOW_P99)
    assert j.verdicts[3].suspect and j.verdicts[3].score == 1
    assert c.scores.brokers[3].baseline["produce_p99_ms"] == pytest.approx(150.0)


def test_a_broker_whose_metrics_cannot_be_read_keeps_its_score() -> None:
    c = Cluster()
    c.healthy(6)
    j = c.slow(3, cycles=3)
    assert j.verdicts[3].score == 3
    blind = {k: float("nan") for k in ("produce_p99_ms", "produce_queue_p99_ms", "request_handler_idle",
                                       "network_processor_idle", "isr_shrinks_per_sec")}  # fmt: skip
    for _ in range(4):  # too starved to answer its exporter: no evidence either way
        j = c.cycle({3: blind})
        assert j.verdicts[3].score == 3 and j.verdicts[3].not_judged == "its metrics could not be read"
    j = c.slow(3)
    assert j.verdicts[3].score == 4


# -------------------------------------------------- produce latency with remote time scraped
def _remote_known(overrides: dict[int, dict[str, Any]], n: int = 6) -> dict[int, dict[str, Any]]:
    """Every broker reports RemoteTimeMs (healthy: 3 of its 5 ms total), then ``overrides``."""
    return {b: {"produce_remote_p99_ms": 3.0, **overrides.get(b, {})} for b in range(1, n + 1)}


def test_a_bystander_leader_of_a_slow_follower_is_never_demoted() -> None:
    """The bench: broker 3 slow, broker 1 leads what it follows; only broker 1's *remote* time rises."""
    c = Cluster()
    for _ in range(6):
        c.cycle(_remote_known({}))
    for _ in range(10):
        j = c.cycle(_remote_known({1: {"produce_p99_ms": SLOW_P99, "produce_remote_p99_ms": SLOW_P99 - 4.0}}))
        assert not j.verdicts[1].suspect and j.verdicts[1].score == 0
    assert all(v.due is None for v in j.verdicts.values())


def test_a_broker_slow_on_its_own_produce_time_climbs_on_its_own_baseline() -> None:
    c = Cluster()
    for _ in range(6):
        c.cycle(_remote_known({}))
    assert c.scores.brokers[3].baseline["produce_local_p99_ms"] == pytest.approx(2.0)
    for _ in range(5):
        j = c.cycle(_remote_known({3: {"produce_p99_ms": SLOW_P99, "produce_remote_p99_ms": 10.0}}))
    v = j.verdicts[3]
    assert v.score == 5 and v.due is Rung.DEMOTE
    e = next(e for e in v.evidence if e["signal"] == "produce_local_p99_ms")
    assert e["value"] == SLOW_P99 - 10.0 and e["own_baseline"] == pytest.approx(2.0)
    assert e["total_p99_ms"] == SLOW_P99 and e["remote_p99_ms"] == 10.0
