"""One regression test per defect of issue 14 (defect 6, malformed input, is in test_snapshot_validation).

Each failed on the code before the fix (checked by running it against the old modules) and passes now.
"""

from __future__ import annotations

import pytest

from kafka_medic.errors import ConfigError, SafetyError
from kafka_medic.planner import DrainRequest, Move, PlanningError, ReplaceRequest, plan_moves
from kafka_medic.safety import assert_removal_safe, removal_impact, validate_plan
from tests.unit.planner_helpers import cluster

SIX = {1: "a", 2: "b", 3: "c", 4: "a", 5: "b", 6: "c"}


def test_defect1_planner_and_validator_agree_on_who_is_in_sync() -> None:
    # t-0: ISR lists 1 and 2, but 2 is down (stale entry); draining 1 would keep only the down 2.
    # t-1: a healthy partition on the drained broker.
    s = cluster(SIX, [("t", 0, (1, 2, 3), (1, 2)), ("t", 1, (1, 5, 6))], down=[2])
    plan = plan_moves(s, DrainRequest(brokers=[1]), allow_partial=True)
    assert validate_plan(s, plan.moves) == [], "every planned move passes the validator"
    assert [m.name for m in plan.moves] == ["t-1"]
    assert [u.name for u in plan.unplaceable] == ["t-0"]
    assert "down" in plan.unplaceable[0].reason


def test_defect2_a_down_broker_never_holds_the_surviving_copy() -> None:
    # ISR [1, 3], both down, min ISR 1: wiping 1 leaves no live in-sync copy anywhere.
    s = cluster(SIX, [("t", 0, (1, 2, 3), (1, 3))], down=[1, 3])
    impact = removal_impact(s, [1])
    assert impact.offline == [("t", 0)]
    assert not impact.safe
    with pytest.raises(SafetyError, match="last in-sync replica: t-0"):
        assert_removal_safe(s, [1])


def test_defect3_replacement_respects_free_space_by_default() -> None:
    # 735 GB to copy onto a new broker with 20 GB free: refused without being asked to check.
    racks = {**SIX, 7: "a"}
    s = cluster(racks, [("t", 0, (1, 2, 3))], down=[1], sizes={("t", 0): 735e9}, dirs={7: [(1000e9, 20e9)]})
    with pytest.raises(PlanningError, match=r"new broker 7 .*no log dir stays under max_disk_usage=0.85"):
        plan_moves(s, ReplaceRequest(old_broker=1, new_broker=7))


def test_defect3_room_is_per_log_dir_not_summed() -> None:
    # Broker 4 has 2 x 100 GB free (200 GB in total) but no single dir holds a 150 GB replica.
    dirs = {4: [(1000e9, 100e9), (1000e9, 100e9)], 7: [(1000e9, 900e9)]}
    s = cluster({**SIX, 7: "a"}, [("t", 0, (1, 2, 3))], sizes={("t", 0): 150e9}, dirs=dirs)
    plan = plan_moves(s, DrainRequest(brokers=[1], max_disk_usage=1.0))
    assert plan.moves[0].new_replicas == (7, 2, 3)
    assert validate_plan(s, [Move("t", 0, (1, 2, 3), (4, 2, 3))], max_disk_usage=1.0) != []


def test_defect3_validate_plan_checks_capacity() -> None:
    s = cluster(SIX, [("t", 0, (1, 2, 3))], sizes={("t", 0): 735e9}, dirs={4: [(1000e9, 20e9)]})
    violations = validate_plan(s, [Move("t", 0, (1, 2, 3), (4, 2, 3))])
    assert violations == [
        "t-0: target broker 4 cannot hold it: with the 0 larger replica(s) it also receives, no online log "
        "dir keeps 735.00 GB under max_disk_usage=0.85 (most room left in one dir: 0.00 GB)"
    ]


def test_validate_plan_refuses_a_ceiling_that_cannot_be_meant() -> None:
    s = cluster(SIX, [("t", 0, (1, 2, 3))])
    with pytest.raises(ConfigError, match=r"max_disk_usage must be in \(0, 1\], got 1.5"):
        validate_plan(s, [Move("t", 0, (1, 2, 3), (4, 2, 3))], max_disk_usage=1.5)


def test_defect4_bytes_are_balanced_not_counts() -> None:
    # One 500 GB partition among 999 x 1 GB ones, five receivers in the drained broker's rack.
    racks = {1: "a", 2: "a", 3: "a", 4: "a", 5: "a", 6: "a", 7: "b", 8: "c"}
    parts = [("t", p, (1, 7, 8)) for p in range(1000)]
    sizes = {("t", p): (500e9 if p == 0 else 1e9) for p in range(1000)}
    plan = plan_moves(cluster(racks, parts, sizes=sizes), DrainRequest(brokers=[1]))
    assert max(plan.cost.per_broker_bytes_in.values()) == 500e9  # was 699 GB; 500 GB is the best possible
    assert sorted(plan.cost.per_broker_bytes_in.values()) == [249e9, 250e9, 250e9, 250e9, 500e9]


def test_defect5_rackless_broker_in_a_racked_cluster_never_receives() -> None:
    racks: dict[int, str | None] = {1: "a", 2: "b", 3: "c", 5: "b", 9: None}
    s = cluster(racks, [("t", 0, (1, 2, 3))])
    with pytest.raises(PlanningError, match=r"no rack \(its AZ is unknown in a rack-aware cluster\)"):
        plan_moves(s, DrainRequest(brokers=[1]))
    violations = validate_plan(s, [Move("t", 0, (1, 2, 3), (9, 2, 3))])
    assert violations == [
        "t-0: target broker 9 has no rack in a rack-aware cluster; its AZ is unknown, so AZ spread cannot be kept"
    ]
    with pytest.raises(ConfigError, match="new_broker 9 has no rack"):
        plan_moves(s, ReplaceRequest(old_broker=1, new_broker=9))


def test_defect7_within_rack_spread_is_the_least_possible() -> None:
    # Found by a random search on the old planner: receivers 2..6 got 1,1,1,2,0 replicas where 1 each fits.
    racks: dict[int, str | None] = dict.fromkeys(range(1, 7))
    parts = [("t", 0, (1, 6, 2)), ("t", 1, (1, 3, 6)), ("t", 2, (1, 6, 3)), ("t", 3, (1, 2, 4)), ("t", 4, (1, 2, 6))]
    plan = plan_moves(cluster(racks, parts), DrainRequest(brokers=[1]))
    assert [plan.cost.per_broker_in.get(b, 0) for b in range(2, 7)] == [1, 1, 1, 1, 1]


def test_defect2_with_no_broker_list_no_broker_holds_a_surviving_copy() -> None:
    # Found by the 10,000-example run: every broker gone from the list (an empty broker frame).
    s = cluster({}, [("t0", 0, (0, 1, 2), (1, 2), 1)])
    assert removal_impact(s, [1]).offline == [("t0", 0)]
