"""One regression test per defect of issue 14 (defect 6, malformed input, is in test_snapshot_validation).

Each failed on the code before the fix (checked by running it against the old modules) and passes now.
"""

from __future__ import annotations

import pytest

from kafka_medic.errors import SafetyError
from kafka_medic.planner import DrainRequest, plan_moves
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
