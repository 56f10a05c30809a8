"""Broker liveness rules: broker_down (grace, down_since), mass_failure, metrics_unavailable."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_medic.findings import Action, Severity
from kafka_medic.policy import HealthPolicy
from kafka_medic.rules import RuleName
from kafka_medic.snapshot import ClusterSnapshot, CollectionIssue
from tests.unit.rules_helpers import T0, broker, brokers, by_rule, one, part, run, snapshot, spread_partitions


def _down(n: int, dead: set[int], **kw: Any) -> ClusterSnapshot:
    rows = [broker(i, "abc"[(i - 1) % 3], alive=i not in dead) for i in range(1, n + 1)]
    return snapshot(rows, **kw)


# ------------------------------------------------------------------------------------ broker_down
def test_down_broker_first_seen_is_warning_within_grace() -> None:
    ev = run(_down(6, {2}))
    f = one(ev, RuleName.BROKER_DOWN)
    assert f.severity is Severity.WARNING
    assert f.action is Action.NONE
    assert f.brokers == (2,)
    assert f.since == T0
    assert f.evidence["seconds_down"] == 0.0
    assert f.evidence["grace_s"] == 300.0
    assert ev.down_since == {2: T0}
    assert ev.automation_allowed


def test_grace_boundary_exactly_at_grace_is_still_within() -> None:
    ev = run(_down(6, {2}), down_since={2: T0 - timedelta(seconds=300)})
    f = one(ev, RuleName.BROKER_DOWN)
    assert f.severity is Severity.WARNING
    assert f.action is Action.NONE
    assert f.evidence["seconds_down"] == 300.0


def test_grace_boundary_just_beyond_grace_heals() -> None:
    ev = run(_down(6, {2}), down_since={2: T0 - timedelta(seconds=300.5)})
    f = one(ev, RuleName.BROKER_DOWN)
    assert f.severity is Severity.CRITICAL
    assert f.action is Action.HEAL_DEAD_BROKER
    assert f.evidence["beyond_grace"] is True
    assert f.since == T0 - timedelta(seconds=300.5)
    assert ev.automation_allowed


def test_grace_comes_from_policy() -> None:
    policy = HealthPolicy(dead_broker_grace_s=10)
    ev = run(_down(6, {2}), policy, down_since={2: T0 - timedelta(seconds=11)})
    assert one(ev, RuleName.BROKER_DOWN).action is Action.HEAL_DEAD_BROKER


def test_down_since_keeps_earliest_and_uses_now_for_new_brokers() -> None:
    earlier = T0 - timedelta(hours=2)
    ev = run(_down(6, {2, 3}), HealthPolicy(mass_failure_max_brokers=5), down_since={2: earlier})
    assert ev.down_since == {2: earlier, 3: T0}
    # a remembered time in the future (clock skew) never pushes first-seen past now
    ev = run(_down(6, {2}), down_since={2: T0 + timedelta(minutes=5)})
    assert ev.down_since == {2: T0}


def test_down_since_cleared_when_alive_again_and_when_removed() -> None:
    ev = run(_down(6, set()), down_since={2: T0 - timedelta(hours=1), 99: T0 - timedelta(hours=1)})
    assert ev.down_since == {}
    assert not by_rule(ev, RuleName.BROKER_DOWN)


def test_down_since_carried_over_when_broker_list_is_unreliable() -> None:
    earlier = T0 - timedelta(hours=1)
    snap = _down(6, set(), issues=[CollectionIssue("admin", "describe_cluster timed out")])
    ev = run(snap, down_since={99: earlier})
    assert ev.down_since == {99: earlier}
    ev = run(snapshot([], []), down_since={99: earlier})
    assert ev.down_since == {99: earlier}


def test_down_since_round_trip_across_cycles() -> None:
    policy = HealthPolicy(dead_broker_grace_s=60)
    snap1 = _down(6, {4})
    ev1 = run(snap1, policy)
    snap2 = _down(6, {4}, taken_at=T0 + timedelta(seconds=61))
    ev2 = run(snap2, policy, down_since=ev1.down_since)
    assert one(ev2, RuleName.BROKER_DOWN).action is Action.HEAL_DEAD_BROKER
    assert ev2.down_since == {4: T0}


def test_naive_datetimes_are_taken_as_utc() -> None:
    naive = datetime(2026, 1, 1, 11, 0, 0)
    ev = run(_down(6, {2}), down_since={2: naive}, now=datetime(2026, 1, 1, 12, 0, 0))
    f = one(ev, RuleName.BROKER_DOWN)
    assert f.evidence["seconds_down"] == 3600.0
    assert f.action is Action.HEAL_DEAD_BROKER


def test_now_defaults_to_snapshot_time_and_can_be_overridden() -> None:
    ev = run(_down(6, {2}), now=T0 + timedelta(seconds=5))
    assert ev.down_since == {2: T0 + timedelta(seconds=5)}


def test_affected_partitions_are_those_with_a_replica_on_the_dead_broker() -> None:
    parts = [part("x", 0, [1, 2, 3]), part("x", 1, [4, 5, 6]), part("y", 0, [3, 1, 2], isr=[1, 2], leader=1)]
    snap = snapshot([broker(i, "abc"[(i - 1) % 3], alive=i != 3) for i in range(1, 7)], parts)
    f = one(run(snap), RuleName.BROKER_DOWN)
    assert set(f.partitions) == {"x-0", "y-0"}
    assert f.evidence["partitions_total"] == 2
    assert f.evidence["preferred_leader_of"] == 1  # y-0 prefers broker 3
    assert f.evidence["offline_partitions"] == 0  # x-0's leader (1) is alive and so is y-0's


def test_affected_partition_list_is_capped_with_total_in_evidence() -> None:
    rows = [broker(i, "abc"[(i - 1) % 3], alive=i != 1) for i in range(1, 4)]
    snap = snapshot(rows, spread_partitions(120, [1, 2, 3]))
    f = one(run(snap), RuleName.BROKER_DOWN)
    assert len(f.partitions) == 50
    assert f.evidence["partitions_total"] == 120


def test_offline_partitions_counted_for_the_dead_broker() -> None:
    rows = [broker(i, "abc"[(i - 1) % 3], alive=i != 1) for i in range(1, 4)]
    parts = [part("solo", 0, [1], isr=[1], leader=1, min_isr=1), part("ok", 0, [1, 2, 3], isr=[2, 3])]
    f = one(run(snapshot(rows, parts)), RuleName.BROKER_DOWN)
    assert f.evidence["offline_partitions"] == 1


# ----------------------------------------------------------------------------------- mass_failure
def test_mass_failure_by_count_exactly_at_cutoff_is_not_mass() -> None:
    ev = run(_down(20, {1, 2}), down_since={1: T0 - timedelta(hours=1), 2: T0 - timedelta(hours=1)})
    assert not by_rule(ev, RuleName.MASS_FAILURE)
    assert ev.automation_allowed
    assert all(f.action is Action.HEAL_DEAD_BROKER for f in by_rule(ev, RuleName.BROKER_DOWN))


def test_mass_failure_by_count_just_above_cutoff_stands_down() -> None:
    old = T0 - timedelta(hours=1)
    ev = run(_down(20, {1, 2, 3}), down_since={1: old, 2: old, 3: old})
    f = one(ev, RuleName.MASS_FAILURE)
    assert f.severity is Severity.CRITICAL
    assert f.action is Action.PAGE
    assert f.brokers == (1, 2, 3)
    assert f.evidence["exceeded_by_count"] is True
    assert f.evidence["exceeded_by_fraction"] is False
    assert not ev.automation_allowed
    dead = by_rule(ev, RuleName.BROKER_DOWN)
    assert len(dead) == 3
    assert all(d.action is Action.NONE and not d.actionable for d in dead)
    assert all(d.severity is Severity.CRITICAL for d in dead)


def test_mass_failure_by_fraction() -> None:
    policy = HealthPolicy(mass_failure_max_brokers=100, mass_failure_max_fraction=0.5)
    old = T0 - timedelta(hours=1)
    at = run(_down(4, {1, 2}), policy, down_since={1: old, 2: old})  # exactly 50%: not mass
    assert not by_rule(at, RuleName.MASS_FAILURE)
    assert at.automation_allowed
    assert {f.action for f in by_rule(at, RuleName.BROKER_DOWN)} == {Action.HEAL_DEAD_BROKER}
    over = run(_down(4, {1, 2, 3}), policy, down_since={1: old, 2: old, 3: old})  # 75%
    f = one(over, RuleName.MASS_FAILURE)
    assert f.evidence["exceeded_by_fraction"] is True
    assert f.evidence["exceeded_by_count"] is False
    assert not over.automation_allowed
    assert {d.action for d in by_rule(over, RuleName.BROKER_DOWN)} == {Action.NONE}


def test_mass_failure_counts_brokers_still_in_grace_and_dates_the_crossing() -> None:
    t1, t2, t3 = T0 - timedelta(hours=3), T0 - timedelta(hours=2), T0 - timedelta(seconds=10)
    ev = run(_down(20, {1, 2, 3}), down_since={1: t1, 2: t2, 3: t3})
    f = one(ev, RuleName.MASS_FAILURE)
    assert f.since == t3  # the third failure crossed the cutoff of 2
    assert not ev.automation_allowed


def test_mass_failure_makes_broker_health_not_actionable() -> None:
    old = T0 - timedelta(hours=1)
    ev = run(_down(6, {1, 2, 3}), down_since={1: old, 2: old, 3: old})
    status = dict(zip(ev.broker_health["broker_id"], ev.broker_health["status"], strict=True))
    assert status[1] == status[2] == status[3] == "down"
    ev = run(_down(6, {1}), down_since={1: old})
    status = dict(zip(ev.broker_health["broker_id"], ev.broker_health["status"], strict=True))
    assert status[1] == "down-actionable"
    assert status[2] == "healthy"


@settings(max_examples=40, deadline=None)
@given(
    alive=st.lists(st.booleans(), min_size=1, max_size=24),
    max_brokers=st.integers(min_value=0, max_value=6),
    max_fraction=st.floats(min_value=0.01, max_value=1.0),
    grace=st.floats(min_value=0, max_value=1000),
    age=st.floats(min_value=0, max_value=2000),
)
def test_automation_allowed_iff_mass_cutoff_not_exceeded(
    alive: list[bool], max_brokers: int, max_fraction: float, grace: float, age: float
) -> None:
    n = len(alive)
    rows = [broker(i + 1, "abc"[i % 3], alive=a) for i, a in enumerate(alive)]
    policy = HealthPolicy(
        mass_failure_max_brokers=max_brokers,
        mass_failure_max_fraction=max_fraction,
        dead_broker_grace_s=grace,
    )
    dead = [i + 1 for i, a in enumerate(alive) if not a]
    ev = run(snapshot(rows, []), policy, down_since={b: T0 - timedelta(seconds=age) for b in dead})
    n_down = len(dead)
    mass = n_down > max_brokers or n_down / n > max_fraction
    assert ev.automation_allowed is (not mass)
    assert bool(by_rule(ev, RuleName.MASS_FAILURE)) is mass
    down_findings = by_rule(ev, RuleName.BROKER_DOWN)
    assert sorted(f.brokers[0] for f in down_findings) == dead
    secs_down = timedelta(seconds=age).total_seconds()  # datetimes are exact to the microsecond
    for f in down_findings:
        assert f.actionable is (not mass and (secs_down > grace or grace == 0))  # grace 0: act on first sight
    assert set(ev.down_since) == set(dead)


# ----------------------------------------------------------------------------- no brokers / metrics
def test_no_brokers_visible_pages() -> None:
    ev = run(snapshot([], []))
    f = one(ev, RuleName.NO_BROKERS_VISIBLE)
    assert f.action is Action.PAGE
    assert not ev.automation_allowed
    assert ev.broker_health.empty


def test_metrics_unavailable_is_a_warning_not_a_crash() -> None:
    rows = brokers(4)
    nan = float("nan")
    rows[1].update(metrics_ok=False, request_handler_idle=nan, produce_p99_ms=nan)
    rows[2].update(metrics_ok=False, request_handler_idle=None, network_processor_idle="garbage")
    ev = run(snapshot(rows))
    f = one(ev, RuleName.METRICS_UNAVAILABLE)
    assert f.severity is Severity.WARNING
    assert f.action is Action.NONE
    assert f.brokers == (2, 3)
    assert not by_rule(ev, RuleName.RULE_ERROR)
    assert not by_rule(ev, RuleName.DEGRADED_BROKER)
    status = dict(zip(ev.broker_health["broker_id"], ev.broker_health["status"], strict=True))
    assert status == {1: "healthy", 2: "unknown", 3: "unknown", 4: "healthy"}


def test_metrics_not_configured_is_not_a_finding() -> None:
    rows = brokers(3, metrics_ok=None)
    for r in rows:
        for k in ("request_handler_idle", "produce_p99_ms"):
            r[k] = float("nan")
    ev = run(snapshot(rows))
    assert not by_rule(ev, RuleName.METRICS_UNAVAILABLE)
    assert set(ev.broker_health["status"]) == {"healthy"}


def test_down_broker_without_metrics_is_not_reported_as_metrics_unavailable() -> None:
    rows = brokers(4)
    rows[0].update(alive=False, metrics_ok=False)
    ev = run(snapshot(rows))
    assert not by_rule(ev, RuleName.METRICS_UNAVAILABLE)


def test_unknown_liveness_is_neither_down_nor_alive() -> None:
    rows = brokers(4)
    rows[0]["alive"] = None
    ev = run(snapshot(rows))
    assert not by_rule(ev, RuleName.BROKER_DOWN)
    assert ev.down_since == {}
    status = dict(zip(ev.broker_health["broker_id"], ev.broker_health["status"], strict=True))
    assert status[1] == "unknown"
