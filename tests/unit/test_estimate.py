"""Cost of plans and replacements in bytes, dollars and time, and replace-vs-drain (issue 14)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kafka_medic.errors import ConfigError
from kafka_medic.planner import (
    CostEstimate,
    DrainRequest,
    compare_replace_vs_drain,
    estimate_plan,
    plan_moves,
    replacement_cost,
)
from kafka_medic.planner.estimate import as_failed
from kafka_medic.planner.models import human_bytes, human_duration
from kafka_medic.policy import HealthPolicy
from tests.unit.planner_helpers import cluster
from tests.unit.test_planner_properties import SETTINGS, clusters

SIX = {1: "a", 2: "b", 3: "c", 4: "a", 5: "b", 6: "c"}
POLICY = HealthPolicy(throttle_bytes_per_sec=10_000_000, inter_az_price_per_gb=0.05)


def test_policy_fields_have_safe_defaults_and_bounds() -> None:
    p = HealthPolicy()
    assert p.inter_az_price_per_gb == 0.02 and p.move_max_disk_usage == 0.85
    with pytest.raises(ValueError):
        HealthPolicy(inter_az_price_per_gb=-1)
    with pytest.raises(ValueError):
        HealthPolicy(move_max_disk_usage=1.5)


def test_plan_estimate_prices_cross_az_bytes_and_times_the_busiest_broker() -> None:
    # New replicas land in rack a. t-0 is led by 2 (b) and t-2 by 5 (b): they copy across AZs;
    # t-1 is led by 1 itself (the drained broker is alive, rack a): it copies in-zone.
    parts = [("t", 0, (2, 1, 3)), ("t", 1, (1, 2, 3)), ("t", 2, (5, 6, 1))]
    sizes = {("t", 0): 40e9, ("t", 1): 60e9, ("t", 2): 10e9}
    s = cluster({**SIX, 7: "a"}, parts, sizes=sizes)
    plan = plan_moves(s, DrainRequest(brokers=[1]))
    e = estimate_plan(plan, POLICY)
    assert e.what == "drain of broker(s) [1]"
    assert (e.replicas, e.bytes_moved, e.receivers) == (3, 110e9, 2)
    assert e.cross_az_bytes == 50e9
    assert e.dollars == pytest.approx(50 * 0.05)
    received = plan.cost.per_broker_bytes_in
    sent = plan.cost.per_source_bytes_out
    assert sent == {1: 60e9, 2: 40e9, 5: 10e9}
    busiest = max(max(received.values()), max(sent.values()))
    assert e.eta_s == pytest.approx(busiest / 10e6)
    assert "receives" in e.bottleneck or "sends" in e.bottleneck
    assert CostEstimate.from_dict(e.to_dict()) == e
    assert "$2.50 at $0.05/GB" in e.summary() and "10.0 MB/s per broker" in e.summary()
    assert estimate_plan(plan.cost).price_per_gb == 0.02  # the default policy


def test_replacement_refetches_every_replica_from_its_next_leader() -> None:
    parts = [
        ("t", 0, (1, 2, 3), (1, 2, 3), 1),  # broker 1 leads: after it goes, 2 (rack b) leads -> cross
        ("t", 1, (4, 1, 2), (4, 1, 2), 4),  # led by 4, same rack a -> in-zone
        ("t", 2, (2, 1, 3), (2, 1, 3), 2),  # led by 2 (rack b) -> cross
        ("t", 3, (1, 5), (1,), 1),  # only broker 1 in sync: nothing live to copy from
        ("t", 4, (3, 1, 6), (3, 1, 6), 3),  # size unknown
        ("t", 5, (2, 3, 4), (2, 3, 4), 2),  # not on broker 1
    ]
    sizes = {("t", 0): 30e9, ("t", 1): 20e9, ("t", 2): 10e9, ("t", 3): 99e9}
    e = replacement_cost(cluster(SIX, parts, sizes=sizes, down=[1]), 1, POLICY)
    assert e.what == "replacement of broker 1 in its AZ (a)"
    assert (e.replicas, e.not_copied, e.unknown_size_replicas) == (4, 1, 1)
    assert e.bytes_moved == 60e9 and e.cross_az_bytes == 40e9
    assert e.dollars == pytest.approx(40 * 0.05)
    assert e.eta_s == pytest.approx(60e9 / 10e6)
    assert e.bottleneck == "broker 1 receives 60.0 GB"
    with pytest.raises(ConfigError, match="Unknown broker id 77"):
        replacement_cost(cluster(SIX, parts), 77)


def test_replace_in_the_same_az_is_cheaper_when_a_drain_must_leave_it() -> None:
    # Rack a holds 1 and 4, both replicas of t-0 (an old rack violation): a drain of 1 cannot stay in
    # a (4 already holds t-0) and goes to d, copying from the leader 4 across AZs; a new broker 1 in
    # a copies from 4 in-zone.
    racks = {1: "a", 4: "a", 2: "b", 3: "c", 5: "d"}
    s = cluster(racks, [("t", 0, (4, 1, 2), (4, 1, 2), 4)], sizes={("t", 0): 100e9}, down=[1])
    r = compare_replace_vs_drain(s, 1, POLICY)
    assert r.replace.cross_az_bytes == 0 and r.drain.cross_az_bytes == 100e9
    assert r.cheaper == "replace" and r.faster == "same"
    assert r.verdict == (
        "Broker 1: both take ~2 h 46 min; replace is cheaper ($0.00 vs $5.00 cross-AZ); replace copies "
        "100.0 GB onto 1 new broker, drain 100.0 GB onto 1 broker(s)"
    )


def test_drain_is_faster_when_it_spreads_over_many_receivers() -> None:
    racks = {1: "a", 2: "b", 3: "c", **{b: "a" for b in range(10, 14)}, 20: "b", 30: "c"}
    parts = [("t", p, (1, 2 if p % 2 else 20, 3 if p % 3 else 30)) for p in range(8)]
    s = cluster(racks, parts, sizes={("t", p): 10e9 for p in range(8)})
    r = compare_replace_vs_drain(s, 1, POLICY)
    assert r.faster == "drain" and r.cheaper == "same"
    assert r.replace.eta_s == pytest.approx(80e9 / 10e6)
    assert r.drain.receivers == 4 and r.drain.eta_s < r.replace.eta_s
    assert r.verdict.startswith("Broker 1: drain is faster (~")
    assert r.to_dict()["drain"]["receivers"] == 4
    assert as_failed(s, 1).alive_broker_ids == s.alive_broker_ids - {1}
    assert s.alive_broker_ids >= {1}, "the snapshot itself is not changed"


def test_caveats_are_named_in_the_verdict() -> None:
    s = cluster(SIX, [("t", 0, (1, 2, 3), (1,), 1), ("t", 1, (1, 5, 6))], sizes={("t", 0): 1e9, ("t", 1): 1e9})
    r = compare_replace_vs_drain(s, 1)
    assert "1 partition(s) cannot be drained" in r.verdict
    assert "1 partition(s) have no live in-sync copy to re-fetch" in r.verdict


def test_human_units() -> None:
    assert [human_bytes(x) for x in (1.284e12, 735e9, 12.34e6, 512)] == ["1.28 TB", "735.0 GB", "12.3 MB", "512 B"]
    assert [human_duration(x) for x in (25_680, 250, 35, 0.2, 200_000)] == [
        "7 h 8 min",
        "4 min 10 s",
        "35 s",
        "1 s",
        "2 d 7 h",
    ]


@SETTINGS
@given(st.data())
def test_replacement_cost_adds_up(data: st.DataObject) -> None:
    case = data.draw(clusters())
    broker = data.draw(st.sampled_from(sorted(case.known)))
    e = replacement_cost(case.snapshot, broker)
    holding = [k for k, (reps, _isr, _m) in case.parts.items() if broker in reps]
    assert e.replicas + e.not_copied == len(holding)
    copied = [k for k in holding if {b for b in case.parts[k][1] if b not in case.down and b in case.alive} - {broker}]
    assert e.not_copied == len(holding) - len(copied)
    assert e.bytes_moved == sum(case.size[k] for k in copied)
    assert 0 <= e.cross_az_bytes <= e.bytes_moved
    assert math.isclose(e.dollars, e.cross_az_bytes / 1e9 * 0.02)
    assert e.eta_s >= e.bytes_moved / 50e6 * (1 - 1e-12), "the new broker receives every byte at the throttle"
