"""Partition-state rules: under_replicated, under_min_isr, offline, min-ISR headroom, reassignments."""

from __future__ import annotations

import pandas as pd

from kafka_medic.findings import Action, Severity
from kafka_medic.rules import RuleName
from tests.unit.rules_helpers import broker, brokers, by_rule, one, part, run, snapshot, spread_partitions


def test_healthy_small_cluster_has_no_partition_findings() -> None:
    ev = run(snapshot())
    assert ev.findings == []
    assert ev.automation_allowed


# ------------------------------------------------------------------------------ under_replicated
def test_under_replicated_aggregates_with_per_broker_counts() -> None:
    parts = [
        part("a", 0, [1, 2, 3], isr=[1, 2]),
        part("a", 1, [2, 3, 1], isr=[2]),
        part("b", 0, [3, 1, 2]),
    ]
    f = one(run(snapshot(partitions=parts)), RuleName.UNDER_REPLICATED)
    assert f.severity is Severity.WARNING
    assert f.action is Action.NONE
    assert f.partitions == ("a-0", "a-1")
    assert f.brokers == (1, 3)
    ev = f.evidence
    assert ev["partitions_total"] == 2
    assert ev["replicas_out_of_isr"] == 3
    assert ev["missing_from_isr_per_broker"] == {"3": 2, "1": 1}
    assert ev["partitions_by_replicas_missing"] == {"1": 1, "2": 1}
    assert ev["out_of_isr_on_alive_brokers"] == 3


def test_isr_equal_to_replicas_is_not_under_replicated() -> None:
    parts = [part("a", 0, [1, 2, 3], isr=[3, 2, 1])]  # order does not matter
    assert not by_rule(run(snapshot(partitions=parts)), RuleName.UNDER_REPLICATED)


def test_replicas_being_added_by_a_reassignment_are_not_missing() -> None:
    parts = [part("a", 0, [1, 2, 3, 4], isr=[1, 2, 3]), part("a", 1, [1, 2, 3, 4], isr=[1, 2])]
    ra = [{"topic": "a", "partition": 0, "replicas": (1, 2, 3, 4), "adding": (4,), "removing": (3,)}]
    ev = run(snapshot(brokers(4), parts, reassignments=ra))
    f = one(ev, RuleName.UNDER_REPLICATED)
    assert f.partitions == ("a-1",)
    assert f.evidence["missing_from_isr_per_broker"] == {"3": 1, "4": 1}


def test_under_replicated_partition_list_is_capped() -> None:
    parts = [part("t", p, [1, 2, 3], isr=[1, 2, 3] if p % 2 else [1, 2]) for p in range(200)]
    f = one(run(snapshot(partitions=parts)), RuleName.UNDER_REPLICATED)
    assert len(f.partitions) == 50
    assert f.partitions[0] == "t-0"
    assert f.evidence["partitions_total"] == 100


# --------------------------------------------------------------------------------- under_min_isr
def test_isr_equal_to_min_isr_is_not_under_min_isr() -> None:
    parts = [part("a", 0, [1, 2, 3], isr=[1, 2], min_isr=2)]
    ev = run(snapshot(partitions=parts))
    assert not by_rule(ev, RuleName.UNDER_MIN_ISR)
    assert by_rule(ev, RuleName.UNDER_REPLICATED)


def test_isr_one_below_min_isr_is_critical() -> None:
    parts = [part("a", 0, [1, 2, 3], isr=[1], min_isr=2), part("a", 1, [1, 2, 3], isr=[1, 2], min_isr=3)]
    f = one(run(snapshot(partitions=parts)), RuleName.UNDER_MIN_ISR)
    assert f.severity is Severity.CRITICAL
    assert f.action is Action.NONE
    assert f.partitions == ("a-0", "a-1")
    assert f.evidence["partitions_total"] == 2
    assert f.evidence["missing_from_isr_per_broker"] == {"3": 2, "2": 1}


def test_missing_min_isr_falls_back_to_cluster_default() -> None:
    p = part("a", 0, [1, 2, 3], isr=[1, 2])
    p["min_isr"] = None
    ev = run(snapshot(partitions=[p], default_min_isr=3))
    assert one(ev, RuleName.UNDER_MIN_ISR).partitions == ("a-0",)


# ---------------------------------------------------------------------------------------- offline
def test_no_leader_is_offline_critical() -> None:
    parts = [part("a", 0, [1, 2, 3], isr=[], leader=-1), part("a", 1, [1, 2, 3])]
    ev = run(snapshot(partitions=parts))
    f = one(ev, RuleName.OFFLINE)
    assert f.severity is Severity.CRITICAL
    assert f.action is Action.NONE
    assert f.partitions == ("a-0",)
    assert f.evidence["no_leader"] == 1
    assert f.evidence["replicas_per_broker"] == {"1": 1, "2": 1, "3": 1}
    assert one(ev, RuleName.UNDER_MIN_ISR).evidence["of_which_offline"] == 1


def test_leader_none_is_offline() -> None:
    snap = snapshot(partitions=[part("a", 0, [1, 2, 3], leader=-1), part("a", 1, [1, 2, 3])])
    snap.partitions["leader"] = pd.Series([None, 1], dtype="object")  # a sloppy collector
    f = one(run(snap), RuleName.OFFLINE)
    assert f.evidence["no_leader"] == 1
    assert f.partitions == ("a-0",)


def test_leader_on_a_down_broker_is_offline() -> None:
    rows = [broker(1, "a", alive=False), broker(2, "b"), broker(3, "c")]
    parts = [part("a", 0, [1], isr=[1], leader=1, min_isr=1), part("a", 1, [2, 3, 1], isr=[2, 3])]
    f = one(run(snapshot(rows, parts)), RuleName.OFFLINE)
    assert f.partitions == ("a-0",)
    assert f.evidence["leader_on_down_broker"] == 1
    assert f.evidence["replica_holders_down"] == [1]


# ---------------------------------------------------------------------------------- min ISR headroom
def test_min_isr_headroom() -> None:
    parts = [
        part("ok", 0, [1, 2, 3], min_isr=2),
        part("zero", 0, [1, 2], min_isr=2),
        part("never", 0, [1, 2], min_isr=3),
        part("rf1", 0, [1], min_isr=1),  # left to rf_below_default
    ]
    ev = run(snapshot(partitions=parts))
    f = one(ev, RuleName.MIN_ISR_NO_HEADROOM)
    assert f.severity is Severity.WARNING
    assert set(f.partitions) == {"zero-0", "never-0"}
    assert f.evidence["unsatisfiable"] == 1
    assert f.evidence["zero_headroom"] == 1


# ------------------------------------------------------------------------------------ reassignments
def test_reassignment_in_progress_is_info() -> None:
    ra = [
        {"topic": "a", "partition": 0, "replicas": (1, 2, 3, 4), "adding": (4,), "removing": (1,)},
        {"topic": "a", "partition": 1, "replicas": (2, 3, 4), "adding": (4,), "removing": ()},
    ]
    ev = run(snapshot(brokers(4), spread_partitions(4, [1, 2, 3, 4]), reassignments=ra))
    f = one(ev, RuleName.REASSIGNMENT_IN_PROGRESS)
    assert f.severity is Severity.INFO
    assert f.action is Action.NONE
    assert f.partitions == ("a-0", "a-1")
    assert f.brokers == (1, 4)
    assert f.evidence["adding_per_broker"] == {"4": 2}
    assert f.evidence["removing_per_broker"] == {"1": 1}
    assert ev.automation_allowed


def test_reassignment_rows_with_missing_tuples_do_not_crash() -> None:
    ra = [{"topic": "a", "partition": 0, "replicas": None, "adding": float("nan"), "removing": None}]
    ev = run(snapshot(reassignments=ra))
    assert one(ev, RuleName.REASSIGNMENT_IN_PROGRESS).evidence["partitions_total"] == 1
    assert not by_rule(ev, RuleName.RULE_ERROR)
