"""Placement rules: rack violation, missing racks, replication factor below default."""

from __future__ import annotations

from kafka_medic.findings import Action, Severity
from kafka_medic.rules import RuleName
from tests.unit.rules_helpers import broker, brokers, by_rule, one, part, run, snapshot

# brokers 1..6 on racks a,b,c,a,b,c
SIX = brokers(6)


def test_two_replicas_in_one_rack_is_a_violation() -> None:
    parts = [part("t", 0, [1, 4, 2]), part("t", 1, [1, 2, 3]), part("t", 2, [3, 6, 2])]
    f = one(run(snapshot(SIX, parts)), RuleName.RACK_VIOLATION)
    assert f.severity is Severity.WARNING
    assert f.action is Action.NONE
    assert f.partitions == ("t-0", "t-2")
    assert f.evidence["partitions_total"] == 2
    assert f.evidence["alive_racks"] == 3
    assert f.evidence["sample"][0] == {"partition": "t-0", "replicas": [1, 4, 2], "racks": ["a", "a", "b"]}


def test_rf2_on_two_racks_is_fine_when_three_racks_exist() -> None:
    parts = [part("t", 0, [1, 2], min_isr=1), part("t", 1, [1, 4], min_isr=1)]
    f = one(run(snapshot(SIX, parts, default_replication_factor=2)), RuleName.RACK_VIOLATION)
    assert f.partitions == ("t-1",)


def test_required_racks_follow_alive_racks() -> None:
    """Only racks a and b are alive: spreading over two racks is all that can be asked."""
    rows = [broker(1, "a"), broker(2, "b"), broker(3, "c", alive=False), broker(4, "a"), broker(5, "b")]
    parts = [
        part("t", 0, [1, 2, 4]),  # two racks: enough while c is down
        part("t", 1, [1, 2, 3], isr=[1, 2]),  # c is still a rack for placement
        part("t", 2, [1, 4], min_isr=1),  # rf2 in one rack: violation
    ]
    f = one(run(snapshot(rows, parts)), RuleName.RACK_VIOLATION)
    assert f.evidence["alive_racks"] == 2
    assert f.partitions == ("t-2",)


def test_single_rack_cluster_has_no_rack_rules() -> None:
    rows = brokers(3, racks=("a",))
    ev = run(snapshot(rows))
    assert not by_rule(ev, RuleName.RACK_VIOLATION)
    assert not by_rule(ev, RuleName.RACK_MISSING)


def test_no_racks_at_all_is_not_rack_missing() -> None:
    ev = run(snapshot(brokers(3, racks=(None,))))
    assert not by_rule(ev, RuleName.RACK_MISSING)
    assert not by_rule(ev, RuleName.RACK_VIOLATION)


def test_rack_missing_on_some_brokers() -> None:
    rows = [broker(1, "a"), broker(2, "b"), broker(3, None), broker(4, "")]
    parts = [part("t", 0, [1, 2, 3]), part("t", 1, [1, 4, 2])]
    ev = run(snapshot(rows, parts))
    f = one(ev, RuleName.RACK_MISSING)
    assert f.severity is Severity.WARNING
    assert f.brokers == (3, 4)
    assert f.evidence["racks"] == ["a", "b"]
    # partitions touching a rack-less broker are not judged for rack spread
    assert not by_rule(ev, RuleName.RACK_VIOLATION)


def test_replica_on_a_broker_unknown_to_the_snapshot_is_not_judged() -> None:
    parts = [part("t", 0, [1, 4, 99])]
    assert not by_rule(run(snapshot(SIX, parts)), RuleName.RACK_VIOLATION)


def test_rf_below_default_names_internal_topics() -> None:
    parts = [
        part("__consumer_offsets", 0, [1, 2], min_isr=1),
        part("__consumer_offsets", 1, [2, 3], min_isr=1),
        part("app", 0, [1], min_isr=1),
        part("app", 1, [1, 2, 3]),
    ]
    f = one(run(snapshot(SIX, parts)), RuleName.RF_BELOW_DEFAULT)
    assert f.severity is Severity.WARNING
    assert f.partitions == ("__consumer_offsets-0", "__consumer_offsets-1", "app-0")
    assert f.evidence["internal_topics"] == ["__consumer_offsets"]
    assert f.evidence["topic_min_rf"] == {"__consumer_offsets": 2, "app": 1}
    assert f.evidence["min_rf"] == 1
    assert "__consumer_offsets" in f.summary


def test_rf_equal_to_default_is_fine() -> None:
    parts = [part("t", 0, [1, 2], min_isr=1)]
    assert not by_rule(run(snapshot(SIX, parts, default_replication_factor=2)), RuleName.RF_BELOW_DEFAULT)
    assert by_rule(run(snapshot(SIX, parts, default_replication_factor=3)), RuleName.RF_BELOW_DEFAULT)
