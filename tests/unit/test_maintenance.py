"""The pure decisions behind the maintenance flows and what-if: no Kafka, no Prefect server."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from kafka_medic.errors import ConfigError
from kafka_medic.maintenance.election import election_candidates, election_scope, leaders_on_preferred, parse_partition
from kafka_medic.maintenance.restart import restart_blockers, restart_targets
from kafka_medic.maintenance.rollback import rollback_entries, undrain_moves
from kafka_medic.policy import HealthPolicy, Mode
from kafka_medic.reports.what_if import report_markdown
from kafka_medic.rules import evaluate
from kafka_medic.what_if import simulate_dead, what_if_report
from tests.unit.planner_helpers import cluster
from tests.unit.rules_helpers import T0, broker, brokers, part, snapshot


def parts_frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


# -- leader election -----------------------------------------------------------------------------


def test_parse_partition_allows_dashes_in_topic_names() -> None:
    assert parse_partition("orders-eu-3") == ("orders-eu", 3)
    for bad in ("orders", "orders-", "-3", "orders-x"):
        with pytest.raises(ValueError, match="topic-partition"):
            parse_partition(bad)


def test_election_candidates_only_in_sync_preferred_replicas() -> None:
    parts = parts_frame(
        part("t", 0, [1, 2, 3]),  # balanced
        part("t", 1, [2, 3, 1], leader=3),  # skewed, preferred 2 in sync -> eligible
        part("t", 2, [3, 1, 2], isr=[1, 2], leader=1),  # preferred 3 out of sync -> blocked
    )
    eligible, blocked = election_candidates(parts)
    assert eligible == [("t", 1)]
    assert [b["partition"] for b in blocked] == ["t-2"] and "not in the ISR" in blocked[0]["reason"]
    assert leaders_on_preferred(parts, [("t", 0), ("t", 1)]) == {("t", 0)}


def test_election_scope_filters_and_refuses_unknown_names() -> None:
    parts = parts_frame(part("a", 0, [1, 2, 3]), part("b", 0, [1, 2, 3]), part("b", 1, [2, 3, 1]))
    assert len(election_scope(parts, None, None)) == 3
    assert set(election_scope(parts, ["a"], None)["topic"]) == {"a"}
    scoped = election_scope(parts, None, ["b-1"])
    assert list(zip(scoped["topic"], scoped["partition"], strict=True)) == [("b", 1)]
    with pytest.raises(ConfigError, match=r"unknown topic\(s\) \['zzz'\].*unknown partition\(s\) \['b-9'\]"):
        election_scope(parts, ["zzz"], ["b-9"])


# -- rolling restart gate --------------------------------------------------------------------------


def _eval(snap: object) -> object:
    return evaluate(snap, HealthPolicy(), now=T0)


def test_healthy_cluster_may_restart_any_broker() -> None:
    snap = snapshot(brokers(3), [part("t", p, [1, 2, 3]) for p in range(3)])
    assert restart_blockers(snap, _eval(snap), 2) == []
    assert restart_targets(snap, None) == [1, 2, 3]
    assert restart_targets(snap, [3, 1]) == [3, 1]
    with pytest.raises(ConfigError, match=r"unknown broker id\(s\) \[9\]"):
        restart_targets(snap, [9])


def test_restart_refused_with_a_broker_down_or_short_isr() -> None:
    dead = snapshot([*brokers(2), broker(3, "c", alive=False)], [part("t", 0, [1, 2, 3], isr=[1, 2])])
    reasons = restart_blockers(dead, _eval(dead), 1)
    assert any(r.startswith("broker_down") for r in reasons), reasons
    assert any(r.startswith("under_replicated") for r in reasons), reasons


def test_restart_refused_when_the_controller_misses_a_broker_metadata_still_lists() -> None:
    snap = snapshot(brokers(3), [part("t", 0, [1, 2, 3])])  # metadata: all alive, full ISR
    assert restart_blockers(snap, _eval(snap), 1, registered={1, 2, 3}) == []
    reasons = restart_blockers(snap, _eval(snap), 1, registered={1, 2})
    assert reasons == ["broker(s) [3] not registered with the controller (down or fenced)"]


def test_restart_refused_when_it_would_drop_below_min_isr() -> None:
    # RF 2 with min ISR 2: restarting either replica stops acks=all writes
    snap = snapshot(brokers(3), [part("t", 0, [1, 2], min_isr=2), part("u", 0, [1, 2, 3])])
    reasons = restart_blockers(snap, _eval(snap), 1)
    assert len(reasons) == 1 and "below min ISR" in reasons[0] and "t-0" in reasons[0]
    assert restart_blockers(snap, _eval(snap), 3) == []


# -- drain / undrain ------------------------------------------------------------------------------


def test_rollback_is_the_cluster_diff_and_undrain_skips_changed_partitions() -> None:
    before = {("t", 0): (1, 2, 3), ("t", 1): (2, 3, 4), ("t", 2): (3, 1, 2), ("t", 3): (1, 5, 6)}
    after = {("t", 0): (4, 2, 3), ("t", 1): (2, 3, 4), ("t", 2): (3, 4, 2), ("t", 3): (6, 5, 2)}
    entries = rollback_entries(before, after, broker_id=1)
    assert [(t, p) for t, p, *_ in entries] == [("t", 0), ("t", 2), ("t", 3)]
    now = {("t", 0): (4, 2, 3), ("t", 2): (3, 1, 2), ("t", 3): (6, 5, 4)}
    moves, skipped = undrain_moves(entries, now, broker_id=1)
    assert [(m.topic, m.partition, m.new_replicas) for m in moves] == [("t", 0, (1, 2, 3))]
    reasons = {s["partition"]: s["reason"] for s in skipped}
    assert reasons["t-2"] == "already back where it was"
    assert reasons["t-3"].startswith("replicas changed since the drain")


# -- what if --------------------------------------------------------------------------------------


def _six() -> list[dict]:
    return [broker(i, "abc"[(i - 1) % 3]) for i in range(1, 7)]


def test_simulate_dead_fences_and_moves_leadership_like_kafka() -> None:
    snap = snapshot(_six(), [part("t", 0, [1, 2, 3]), part("t", 1, [1, 4], min_isr=1)])
    sim = simulate_dead(snap, [1, 4])
    assert not sim.brokers.set_index("broker_id").loc[[1, 4], "alive"].any()
    rows = sim.partitions.set_index("partition")
    assert rows.loc[0, "leader"] == 2 and tuple(rows.loc[0, "isr"]) == (2, 3)
    assert rows.loc[1, "leader"] == -1 and tuple(rows.loc[1, "isr"]) == ()
    assert tuple(snap.partitions.loc[0, "isr"]) == (1, 2, 3), "the input snapshot is not modified"


def test_what_if_two_brokers_sharing_partitions_is_unsafe_and_plans_the_rest() -> None:
    snap = snapshot(_six(), [part("t", 0, [1, 2, 3], min_isr=2), part("t", 1, [4, 5, 6]), part("t", 2, [1, 5, 6])])
    policy = HealthPolicy(mode=Mode.AUTO, dead_broker_grace_s=60)
    r = what_if_report(snap, [1, 2], policy, has_replacer=False, maintenance=False)
    assert not r.safe and r.under_min_isr == ["t-0"] and r.offline == []
    assert "UNSAFE" in r.verdict
    assert not r.mass_failure, "2 of 6 is within the default mass-failure cutoffs"
    assert any(d["remedy"] == "reassign_away" and d["execute"] for d in r.decisions)
    assert r.plan is not None and {(m["topic"], m["partition"]) for m in r.plan["moves"]} == {("t", 0), ("t", 2)}
    safe = what_if_report(snap, [4], policy, has_replacer=True, maintenance=True)
    assert safe.safe and "SAFE" in safe.verdict
    assert all(not d["execute"] for d in safe.decisions), "maintenance mode: nothing would be executed"


def test_what_if_mass_failure_stands_down() -> None:
    snap = snapshot(_six(), [part("t", p, [1 + p % 6, 1 + (p + 1) % 6, 1 + (p + 2) % 6]) for p in range(6)])
    r = what_if_report(snap, [1, 3, 5], HealthPolicy(mode=Mode.AUTO), has_replacer=True, maintenance=False)
    assert r.mass_failure and not r.automation_allowed
    assert "stand down" in r.verdict
    assert [d["remedy"] for d in r.decisions] == ["page"]
    with pytest.raises(ConfigError, match=r"unknown broker id\(s\) \[42\]"):
        what_if_report(snap, [42], HealthPolicy(), has_replacer=False, maintenance=False)
    assert (snap.taken_at - timedelta(seconds=1)) < snap.taken_at  # the snapshot's clock, not ours


def test_what_if_prices_the_drain_and_compares_replace_with_drain() -> None:
    # Broker 1 (rack a) holds two partitions, 60 GB; broker 4 is the only other rack-a broker. Both
    # repairs copy the same 60 GB into rack a from leaders in b and c (all cross-AZ: $3.00 at
    # $0.05/GB); the replacement receives it all on one new broker, the drain on broker 4: the same
    # receiver load, so "same" on both counts. Followers spread over two senders make that the bound.
    racks = {1: "a", 2: "b", 3: "c", 4: "a", 5: "b", 6: "c"}
    parts = [("t", 0, (2, 1, 3)), ("t", 1, (3, 2, 1)), ("t", 2, (5, 6, 4))]
    snap = cluster(racks, parts, sizes={("t", 0): 40e9, ("t", 1): 20e9, ("t", 2): 5e9})
    policy = HealthPolicy(mode=Mode.APPROVE, throttle_bytes_per_sec=10_000_000, inter_az_price_per_gb=0.05)
    r = what_if_report(snap, [1], policy, has_replacer=True, maintenance=False)
    assert r.estimate is not None and r.estimate["bytes"] == 60e9 and r.estimate["dollars"] == 3.0
    assert r.estimate["eta_s"] == 6000.0  # broker 4 receives 60 GB at 10 MB/s
    (c,) = r.replace_vs_drain
    assert c["broker"] == 1 and c["replace"]["bytes"] == c["drain"]["bytes"] == 60e9
    assert (c["cheaper"], c["faster"]) == ("same", "same")
    assert c["verdict"] in r.verdict and "drain cost $3.00, ~1 h 40 min" in r.verdict
    (replace,) = [d for d in r.decisions if d["remedy"] == "replace_broker"]
    assert replace["cost"]["dollars"] == 3.0 and replace["needs_approval"], "the decision carries its cost"
    md = report_markdown(r)
    assert "## Replace in the same AZ, or drain?" in md and "| 1 | replace | 60.0 GB | 60.0 GB | $3.00 |" in md
    assert "drain cost: drain of broker(s) [1]: 60.0 GB to copy" in md


def test_what_if_says_which_repair_is_faster_when_they_differ() -> None:
    # Three rack-a survivors share the drain; a replacement funnels all of it into one new broker.
    racks = {1: "a", 2: "b", 3: "c", 4: "a", 5: "b", 6: "c", 7: "a", 8: "a"}
    parts = [("t", p, (2 + p % 2 * 3, 1, 3 + p % 2 * 3)) for p in range(6)]
    snap = cluster(racks, parts, sizes={("t", p): 10e9 for p in range(6)})
    policy = HealthPolicy(throttle_bytes_per_sec=10_000_000)
    r = what_if_report(snap, [1], policy, has_replacer=True, maintenance=False)
    (c,) = r.replace_vs_drain
    assert c["faster"] == "drain" and c["cheaper"] == "same" and c["replace"]["eta_s"] == 6000.0
    assert c["drain"]["eta_s"] < c["replace"]["eta_s"] and "drain is faster" in r.verdict
    assert c["replace"]["price_per_gb"] == 0.02, "the default price"
    many = what_if_report(snap, [1, 4, 7, 8, 2, 3], policy, has_replacer=True, maintenance=False)
    assert len(many.replace_vs_drain) + sum("not compared" in n for n in many.replace_vs_drain_notes) <= 6
    assert any("more broker(s) not compared" in n for n in many.replace_vs_drain_notes)


def test_planned_undo_takes_only_moves_off_the_broker() -> None:
    from kafka_medic.maintenance.rollback import planned_rollback
    from kafka_medic.planner import Move

    moves = [Move("a", 0, (1, 2, 3), (4, 2, 3)), Move("a", 1, (2, 3, 5), (2, 3, 6)), Move("b", 0, (3, 1, 2), (1, 3, 2))]
    assert planned_rollback(moves, 1) == [("a", 0, (1, 2, 3), (4, 2, 3))]


def test_merged_undo_keeps_the_first_drains_origin_unless_someone_moved_it_in_between() -> None:
    from kafka_medic.maintenance.rollback import merge_rollback

    earlier = [("a", 0, (1, 2, 3), (4, 2, 3)), ("a", 1, (1, 5, 6), (4, 5, 6)), ("a", 2, (1, 2, 6), (4, 2, 6))]
    later = [
        ("a", 0, (1, 2, 3), (5, 2, 3)),  # reverted, drained again: from where it began
        ("a", 1, (4, 5, 6), (2, 5, 6)),  # continued from where the first drain left it
        ("a", 2, (3, 2, 6), (5, 2, 6)),  # someone moved it in between: the later record wins
        ("b", 0, (1, 2, 3), (4, 2, 3)),
    ]
    assert merge_rollback(earlier, later) == [
        ("a", 0, (1, 2, 3), (5, 2, 3)),
        ("a", 1, (1, 5, 6), (2, 5, 6)),
        ("a", 2, (3, 2, 6), (5, 2, 6)),
        ("b", 0, (1, 2, 3), (4, 2, 3)),
    ]


def test_moved_only_drops_entries_already_where_the_undo_would_put_them() -> None:
    from kafka_medic.maintenance.rollback import moved_only

    entries = [("a", 0, (1, 2, 3), (4, 2, 3)), ("a", 1, (1, 5, 6), (4, 5, 6)), ("gone", 0, (1, 2, 3), (4, 2, 3))]
    current = {("a", 0): (4, 2, 3), ("a", 1): (1, 5, 6)}
    assert moved_only(entries, current) == [("a", 0, (1, 2, 3), (4, 2, 3))]
