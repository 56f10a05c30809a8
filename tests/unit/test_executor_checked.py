"""kafka_medic/executor/checked.py: a plan is only handed to the executor once it passed the safety rules."""

from __future__ import annotations

import pytest

from kafka_medic.errors import ConfigError
from kafka_medic.executor.checked import checked_plan
from kafka_medic.planner import DrainRequest
from tests.unit.test_planner import make_snapshot

RACKS = {1: "a", 2: "b", 3: "c", 4: "a", 5: "b", 6: "c"}


def test_a_drain_plan_moves_everything_off_the_broker_and_keeps_the_az_spread() -> None:
    snap = make_snapshot(RACKS, [("t", 0, (1, 2, 3)), ("t", 1, (4, 5, 6)), ("t", 2, (1, 5, 3))])
    plan = checked_plan(snap, DrainRequest(brokers=[1]), allow_partial=False)
    assert {(m.topic, m.partition) for m in plan.moves} == {("t", 0), ("t", 2)}
    for m in plan.moves:
        assert 1 not in m.new_replicas and 4 in m.new_replicas, m  # same AZ (a) takes the replica


def test_a_cluster_without_topics_is_a_clear_error() -> None:
    snap = make_snapshot(RACKS, [])
    with pytest.raises(ConfigError, match="has no topics: there is nothing to reassign"):
        checked_plan(snap, DrainRequest(brokers=[1]), allow_partial=False)
