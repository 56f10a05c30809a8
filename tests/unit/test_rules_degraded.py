"""Degraded-broker rules: peer outliers, ISR shrinks, EC2 signals, mass degradation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_medic.findings import Action, Severity
from kafka_medic.policy import HealthPolicy
from kafka_medic.rules import Evaluation, RuleName
from kafka_medic.rules.degraded import leave_one_out_median, produce_local_p99
from tests.unit.rules_helpers import T0, brokers, by_rule, one, run, snapshot

NAN = float("nan")


def _with(n: int, column: str, values: dict[int, Any], **kw: Any) -> list[dict[str, Any]]:
    """``n`` healthy brokers with ``column`` overridden for some broker ids."""
    rows = brokers(n, **kw)
    for r in rows:
        if r["broker_id"] in values:
            r[column] = values[r["broker_id"]]
    return rows


def _degraded_ids(ev: Evaluation) -> set[int]:
    return {f.brokers[0] for f in by_rule(ev, RuleName.DEGRADED_BROKER)}


def _signal(ev: Evaluation, broker_id: int, name: str) -> dict[str, Any]:
    f = next(f for f in by_rule(ev, RuleName.DEGRADED_BROKER) if f.brokers == (broker_id,))
    return next(s for s in f.evidence["signals"] if s["signal"] == name)


# --------------------------------------------------------------------------------- leave-one-out
@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=40))
def test_leave_one_out_median_matches_brute_force(values: list[float]) -> None:
    v = np.array(values)
    expected = [np.median(np.delete(v, i)) for i in range(len(v))]
    np.testing.assert_allclose(leave_one_out_median(v), expected, rtol=1e-12, atol=1e-9)


# ------------------------------------------------------------------------------------- idle ratio
def test_request_idle_outlier_is_degraded_with_evidence() -> None:
    ev = run(snapshot(_with(6, "request_handler_idle", {3: 0.05})))
    f = one(ev, RuleName.DEGRADED_BROKER)
    assert f.brokers == (3,)
    assert f.severity is Severity.WARNING
    assert f.action is Action.NONE  # one snapshot is evidence, never a verdict (kafka_medic.judgment decides)
    s = _signal(ev, 3, "request_handler_idle")
    assert s["value"] == 0.05
    assert s["peer_median"] == 0.8
    assert s["threshold"] == 0.2  # min(floor 0.2, 0.5 x 0.8)
    assert s["peers"] == 5
    assert ev.automation_allowed


@pytest.mark.parametrize(
    ("value", "flagged"),
    [(0.2, False), (0.1999, True), (0.21, False)],  # floor 0.2 binds (0.5 x 0.8 = 0.4)
)
def test_idle_floor_edge(value: float, flagged: bool) -> None:
    ev = run(snapshot(_with(5, "network_processor_idle", {1: value})))
    assert (1 in _degraded_ids(ev)) is flagged


@pytest.mark.parametrize(("value", "flagged"), [(0.15, False), (0.1499, True)])
def test_idle_peer_ratio_edge(value: float, flagged: bool) -> None:
    # peers at 0.3: ratio 0.5 x 0.3 = 0.15 binds (floor 0.2 is higher)
    rows = _with(5, "request_handler_idle", {1: value, 2: 0.3, 3: 0.3, 4: 0.3, 5: 0.3})
    assert (1 in _degraded_ids(run(snapshot(rows)))) is flagged


def test_busy_cluster_flags_nobody() -> None:
    """Every broker near-saturated: a load problem, not a broker problem."""
    rows = _with(6, "request_handler_idle", {i: 0.05 + 0.01 * i for i in range(1, 7)})
    assert not _degraded_ids(run(snapshot(rows)))


# ------------------------------------------------------------------------------------------ latency
@pytest.mark.parametrize(
    ("value", "flagged"),
    [(25.0, False), (25.01, False), (100.0, False), (100.01, True)],  # floor 100 ms binds (5 x 5 = 25)
)
def test_latency_floor_edge(value: float, flagged: bool) -> None:
    ev = run(snapshot(_with(5, "produce_p99_ms", {2: value})))
    assert (2 in _degraded_ids(ev)) is flagged


@pytest.mark.parametrize(("value", "flagged"), [(2500.0, False), (2500.5, True)])
def test_latency_peer_factor_edge(value: float, flagged: bool) -> None:
    # peers at 500 ms: factor 5 x 500 = 2500 binds
    ev = run(snapshot(_with(5, "produce_p99_ms", {1: 500.0, 2: value, 3: 500.0, 4: 500.0, 5: 500.0})))
    assert (2 in _degraded_ids(ev)) is flagged
    if flagged:
        s = _signal(ev, 2, "produce_p99_ms")
        assert s["peer_median"] == 500.0
        assert s["threshold"] == 2500.0


@pytest.mark.parametrize("column", ["fetch_follower_p99_ms", "fetch_consumer_p99_ms"])
def test_fetch_latency_is_not_a_degradation_signal(column: str) -> None:
    # long-poll fetches wait up to fetch.max.wait.ms by design: a 10x outlier is not a sick broker
    ev = run(snapshot(_with(5, column, {2: 5000.0})))
    assert 2 not in _degraded_ids(ev)


def test_peer_median_excludes_the_broker_itself() -> None:
    """Two slow brokers of four: with itself in the median (550 ms) neither would be 5x off."""
    rows = _with(4, "produce_p99_ms", {1: 1000.0, 2: 1000.0, 3: 100.0, 4: 100.0})
    ev = run(snapshot(rows), HealthPolicy(latency_floor_ms=50))
    assert _degraded_ids(ev) == {1, 2}
    assert _signal(ev, 1, "produce_p99_ms")["peer_median"] == 100.0


def test_peer_rules_need_min_peers() -> None:
    policy = HealthPolicy(degraded_min_peers=4)
    three = _with(3, "produce_p99_ms", {1: 5000.0})
    assert not _degraded_ids(run(snapshot(three), policy))
    four = _with(4, "produce_p99_ms", {1: 5000.0})
    assert _degraded_ids(run(snapshot(four), policy)) == {1}


def test_nan_metrics_are_ignored_and_do_not_count_as_peers() -> None:
    policy = HealthPolicy(degraded_min_peers=4)
    rows = _with(5, "produce_p99_ms", {1: 5000.0, 2: NAN, 3: None})
    ev = run(snapshot(rows), policy)
    assert not _degraded_ids(ev)  # only 3 brokers have a value
    rows = _with(6, "produce_p99_ms", {1: 5000.0, 2: NAN})
    ev = run(snapshot(rows), policy)
    assert _degraded_ids(ev) == {1}
    assert _signal(ev, 1, "produce_p99_ms")["peers"] == 4


def test_brokers_with_failed_metrics_are_neither_judged_nor_peers() -> None:
    rows = _with(5, "produce_p99_ms", {1: 5000.0, 2: 9000.0})
    rows[1]["metrics_ok"] = False  # broker 2: stale numbers
    ev = run(snapshot(rows))
    assert _degraded_ids(ev) == {1}
    assert _signal(ev, 1, "produce_p99_ms")["peers"] == 3


def test_down_brokers_are_not_degraded() -> None:
    rows = _with(5, "produce_p99_ms", {1: 5000.0})
    rows[0]["alive"] = False
    assert not _degraded_ids(run(snapshot(rows)))


def test_all_signals_of_a_broker_land_in_one_finding() -> None:
    rows = _with(5, "produce_p99_ms", {1: 5000.0})
    rows[0].update(request_handler_idle=0.01, ec2_status="impaired")
    f = one(run(snapshot(rows)), RuleName.DEGRADED_BROKER)
    assert [s["signal"] for s in f.evidence["signals"]] == [
        "request_handler_idle",
        "produce_p99_ms",
        "ec2_impaired",
    ]


# -------------------------------------------------------------------------------------- ISR shrinks
@pytest.mark.parametrize(("rate", "flagged"), [(1.0, False), (1.01, True), (NAN, False)])
def test_isr_shrink_rate_edge(rate: float, flagged: bool) -> None:
    ev = run(snapshot(_with(5, "isr_shrinks_per_sec", {4: rate})))
    assert (4 in _degraded_ids(ev)) is flagged


def test_isr_shrinks_ignored_while_a_broker_is_down_or_just_recovered() -> None:
    rows = _with(6, "isr_shrinks_per_sec", {4: 50.0})
    rows[0]["alive"] = False
    assert 4 not in _degraded_ids(run(snapshot(rows)))
    rows = _with(6, "isr_shrinks_per_sec", {4: 50.0})
    ev = run(snapshot(rows), down_since={1: T0 - timedelta(minutes=3)})  # broker 1 came back
    assert 4 not in _degraded_ids(ev)
    assert 4 in _degraded_ids(run(snapshot(rows)))


# ---------------------------------------------------------------------------------------------- EC2
def test_ec2_impaired_is_degraded_unless_disabled() -> None:
    rows = _with(4, "ec2_status", {2: "impaired"})
    assert _degraded_ids(run(snapshot(rows))) == {2}
    assert not _degraded_ids(run(snapshot(rows), HealthPolicy(ec2_impaired_is_degraded=False)))
    rows = _with(4, "ec2_status", {2: "insufficient-data", 3: None})
    assert not _degraded_ids(run(snapshot(rows)))


@pytest.mark.parametrize(
    ("events", "flagged"),
    [
        ("instance-retirement", True),
        ("system-reboot; instance-stop", True),
        ("instance-reboot", True),
        ("system-maintenance", True),
        ("some-future-event", False),
        ("", False),
        (None, False),
    ],
)
def test_ec2_scheduled_events(events: str | None, flagged: bool) -> None:
    rows = _with(4, "ec2_events", {3: events})
    assert (3 in _degraded_ids(run(snapshot(rows)))) is flagged


def test_ec2_retirement_can_be_disabled() -> None:
    rows = _with(4, "ec2_events", {3: "instance-retirement"})
    assert not _degraded_ids(run(snapshot(rows), HealthPolicy(ec2_retirement_is_degraded=False)))


def test_ec2_signals_apply_without_metrics_and_in_tiny_clusters() -> None:
    rows = _with(2, "ec2_events", {1: "instance-retirement"}, metrics_ok=None)
    assert _degraded_ids(run(snapshot(rows, []))) == {1}


# ------------------------------------------------------------------------------- mass degradation
def test_degraded_signals_on_many_brokers_are_not_a_page_on_one_snapshot() -> None:
    """Three of ten brokers impaired in one snapshot: evidence on each, no page, nothing to act on --
    mass degradation is judged on confirmed scores (tests/unit/test_judgment.py)."""
    rows = _with(10, "ec2_status", {1: "impaired", 2: "impaired", 3: "impaired"})
    ev = run(snapshot(rows))
    assert not by_rule(ev, RuleName.MASS_DEGRADATION)
    degraded = by_rule(ev, RuleName.DEGRADED_BROKER)
    assert len(degraded) == 3 and all(d.action is Action.NONE for d in degraded)
    status = dict(zip(ev.broker_health["broker_id"], ev.broker_health["status"], strict=True))
    assert status[1] == "degraded" and status[4] == "healthy"


def test_two_degraded_brokers_is_not_mass() -> None:
    rows = _with(10, "ec2_status", {1: "impaired", 2: "impaired"})
    ev = run(snapshot(rows))
    assert not by_rule(ev, RuleName.MASS_DEGRADATION)
    assert ev.automation_allowed
    assert {f.action for f in by_rule(ev, RuleName.DEGRADED_BROKER)} == {Action.NONE}


def test_a_slow_broker_is_singled_out_by_its_own_queue_time_when_every_total_p99_rises() -> None:
    # A slow broker makes every leader whose follower it is wait (acks=all): every broker's total
    # produce p99 rises, so no one is an outlier there; the requests waiting for ITS handler threads
    # are its own.
    rows = _with(6, "produce_p99_ms", dict.fromkeys(range(1, 7), 450.0))
    rows[2]["produce_queue_p99_ms"] = 420.0
    ev = run(snapshot(rows))
    assert _degraded_ids(ev) == {3}
    s = _signal(ev, 3, "produce_queue_p99_ms")
    assert s["value"] == 420.0 and s["peer_median"] == 0.5


# ------------------------------------------------------------- produce latency: the broker's own time
def _produce(
    n: int, total: dict[int, float], remote: dict[int, float], default_remote: float = 3.0
) -> list[dict[str, Any]]:
    """``n`` healthy brokers (total 5 ms, remote ``default_remote``) with some totals/remotes overridden."""
    rows = brokers(n, produce_remote_p99_ms=default_remote)
    for r in rows:
        r["produce_p99_ms"] = total.get(r["broker_id"], r["produce_p99_ms"])
        r["produce_remote_p99_ms"] = remote.get(r["broker_id"], r["produce_remote_p99_ms"])
    return rows


def test_a_leader_slowed_only_by_its_slow_follower_is_not_flagged() -> None:
    # The bench: broker 3 duty-cycled (SIGSTOP). Broker 1 leads partitions broker 3 follows; with
    # acks=all its produce TotalTimeMs p99 (900 ms) is RemoteTimeMs (895 ms) waiting for broker 3.
    ev = run(snapshot(_produce(6, total={1: 900.0}, remote={1: 895.0})))
    assert 1 not in _degraded_ids(ev)


def test_the_slow_follower_itself_is_flagged_on_its_own_produce_time() -> None:
    # Broker 3 as a leader is slow in its own right: 900 ms total of which 10 ms waiting for followers.
    ev = run(snapshot(_produce(6, total={1: 900.0, 3: 900.0}, remote={1: 895.0, 3: 10.0})))
    assert _degraded_ids(ev) == {3}
    s = _signal(ev, 3, "produce_local_p99_ms")
    assert s["value"] == 890.0 and s["peer_median"] == 2.0  # peers: 5 - 3 (broker 1: 5)
    assert s["total_p99_ms"] == 900.0 and s["remote_p99_ms"] == 10.0  # why, for the operator
    assert s["threshold"] == 100.0  # the floor binds (5 x 2 = 10)


@pytest.mark.parametrize(("local", "flagged"), [(100.0, False), (100.01, True)])
def test_own_produce_time_keeps_the_latency_floor(local: float, flagged: bool) -> None:
    ev = run(snapshot(_produce(5, total={2: local + 40.0}, remote={2: 40.0})))
    assert (2 in _degraded_ids(ev)) is flagged


def test_remote_above_total_is_no_negative_own_time() -> None:
    # two p99s from different requests: remote p99 can exceed total p99; own time is then 0, not < 0
    own = produce_local_p99([30.0, 30.0, NAN, 30.0], [45.0, 10.0, 5.0, NAN])
    np.testing.assert_array_equal(own, [0.0, 20.0, NAN, NAN])
    ev = run(snapshot(_produce(5, total={2: 30.0}, remote={2: 45.0})), HealthPolicy(latency_floor_ms=1.0))
    assert 2 not in _degraded_ids(ev)


@pytest.mark.parametrize("unknown", [{}, {4: NAN}])
def test_without_remote_time_the_total_is_compared_as_before(unknown: dict[int, float]) -> None:
    # an exporter config from before RemoteTimeMs (every broker, or one not yet rolled): total p99
    # for everyone, one measure across peers -- and a bystander leader is flagged, as it always was
    rows = _produce(6, total={1: 900.0}, remote={1: 895.0, **unknown}, default_remote=NAN if not unknown else 3.0)
    ev = run(snapshot(rows))
    assert _degraded_ids(ev) == {1}
    s = _signal(ev, 1, "produce_p99_ms")
    assert s["value"] == 900.0 and "remote_p99_ms" not in s


def test_a_broker_not_compared_does_not_turn_off_the_own_time_signal() -> None:
    # broker 6's metrics endpoint failed: its missing remote time is not "remote unknown"
    rows = _produce(6, total={1: 900.0}, remote={1: 895.0, 6: NAN})
    rows[5]["metrics_ok"] = False
    assert 1 not in _degraded_ids(run(snapshot(rows)))


@settings(max_examples=60, deadline=None)
@given(
    # whole milliseconds: the sums and differences are exact, no rounding decides an edge
    st.lists(st.integers(0, 5000).map(float), min_size=3, max_size=8).flatmap(
        lambda local: st.tuples(
            st.just(local),
            st.lists(st.integers(0, 5000).map(float), min_size=len(local), max_size=len(local)),
            st.integers(0, len(local) - 1),
            st.integers(0, 100_000).map(float),
        )
    )
)
def test_time_spent_waiting_for_followers_never_gets_a_broker_flagged(
    case: tuple[list[float], list[float], int, float],
) -> None:
    """Adding remote time to a broker's total (a slower follower) never makes it a produce outlier."""
    local, remote, who, extra = case
    n = len(local)
    rows = _produce(
        n,
        total={i + 1: local[i] + remote[i] for i in range(n)},
        remote={i + 1: remote[i] for i in range(n)},
    )

    def flagged(rs: list[dict[str, Any]]) -> set[int]:
        ev = run(snapshot(rs), HealthPolicy(latency_floor_ms=10.0))
        return {
            f.brokers[0]
            for f in by_rule(ev, RuleName.DEGRADED_BROKER)
            if any(s["signal"] == "produce_local_p99_ms" for s in f.evidence["signals"])
        }

    before = flagged(rows)
    rows[who]["produce_p99_ms"] += extra
    rows[who]["produce_remote_p99_ms"] += extra
    assert flagged(rows) == before
