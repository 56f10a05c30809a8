"""Unit tests for the safety guards: plan validation and removal impact."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import pytest

from kafka_medic.errors import ConfigError, SafetyError
from kafka_medic.planner import DrainRequest, Move, plan_moves
from kafka_medic.safety import (
    assert_plan_safe,
    assert_removal_safe,
    rack_concentration_increase,
    rack_spread,
    removal_impact,
    validate_plan,
    would_reduce_rf,
)
from kafka_medic.snapshot import ClusterSnapshot
from kafka_medic.synthetic import synthetic_snapshot

RACKS: dict[int, str | None] = {1: "a", 2: "b", 3: "c", 4: "a", 5: "b", 6: "c"}


def make_snapshot(
    parts: Iterable[tuple[Any, ...]],
    *,
    racks: Mapping[int, str | None] = RACKS,
    dead: Iterable[int] = (),
    reassigning: Iterable[tuple[str, int]] = (),
) -> ClusterSnapshot:
    """Parts are (topic, partition, replicas[, isr[, min_isr]]); ISR defaults to the alive replicas."""
    dead_set = set(dead)
    rows = []
    for spec in parts:
        replicas = tuple(spec[2])
        isr = tuple(spec[3]) if len(spec) > 3 else tuple(b for b in replicas if b not in dead_set)
        min_isr = spec[4] if len(spec) > 4 else 2
        rows.append((spec[0], spec[1], isr[0] if isr else -1, replicas, isr, min_isr))
    partitions = pd.DataFrame(rows, columns=["topic", "partition", "leader", "replicas", "isr", "min_isr"])
    ids = sorted(racks)
    brokers = pd.DataFrame(
        {
            "broker_id": ids,
            "host": "h",
            "port": 9092,
            "rack": [racks[b] for b in ids],
            "alive": [b not in dead_set for b in ids],
        }
    )
    snap = ClusterSnapshot(cluster="t", brokers=brokers, partitions=partitions)
    if reassigning:
        snap.reassignments = pd.DataFrame(
            [(t, p, (), (), ()) for t, p in reassigning],
            columns=["topic", "partition", "replicas", "adding", "removing"],
        )
    return snap


class TestHelpers:
    def test_rack_spread_and_rf(self) -> None:
        assert rack_spread((1, 2, 3), RACKS) == 3
        assert rack_spread((1, 4, 3), RACKS) == 2
        assert rack_spread((1, 99), RACKS) == 2  # an unknown broker counts as its own (None) rack
        assert would_reduce_rf((1, 2, 3), (1, 2))
        assert would_reduce_rf((1, 2, 3), (1, 2, 2))
        assert not would_reduce_rf((1, 2, 3), (4, 2, 3))

    def test_concentration(self) -> None:
        assert rack_concentration_increase((1, 2, 3), (1, 2, 5), RACKS) == [("b", 1, 2)]
        assert rack_concentration_increase((1, 4, 3), (4, 1, 3), RACKS) == []


class TestValidatePlan:
    snap = staticmethod(
        lambda **kw: make_snapshot(
            [("t", 0, (1, 2, 3)), ("t", 1, (1, 2, 3), (1,)), ("t", 2, (1, 4, 2))],
            racks={**RACKS, 7: "a", 8: "d"},
            dead=[8],
            **kw,
        )
    )

    def test_a_good_move_passes(self) -> None:
        assert validate_plan(self.snap(), [Move("t", 0, (1, 2, 3), (4, 2, 3))]) == []
        assert_plan_safe(self.snap(), [Move("t", 0, (1, 2, 3), (4, 2, 3))])
        assert validate_plan(self.snap(), []) == []

    @pytest.mark.parametrize(
        ("move", "expected"),
        [
            (Move("t", 0, (1, 2, 3), (4, 2)), "replication factor reduced from 3 to 2"),
            (Move("t", 0, (1, 2, 3), (2, 2, 3)), "listed more than once"),
            (Move("t", 0, (1, 2, 3), (99, 2, 3)), "target broker 99 is unknown"),
            (Move("t", 0, (1, 2, 3), (8, 2, 3)), "target broker 8 is not alive"),
            (Move("t", 0, (1, 2, 3), (5, 2, 3)), "rack spread reduced from 3 to 2"),
            (Move("t", 2, (1, 4, 2), (5, 4, 2)), "rack 'b' would hold 2 replicas (had 1)"),  # a lateral move
            (Move("t", 1, (1, 2, 3), (4, 2, 3)), "no current in-sync replica remains"),
            (Move("t", 9, (1, 2, 3), (4, 2, 3)), "t-9: partition is not in the cluster"),
            (Move("u", 0, (1, 2, 3), (4, 2, 3)), "u-0: partition is not in the cluster"),
            (Move("t", 0, (1, 3, 2), (4, 3, 2)), "plan is stale"),
        ],
    )
    def test_each_violation(self, move: Move, expected: str) -> None:
        violations = validate_plan(self.snap(), [move])
        assert any(expected in v for v in violations), violations
        with pytest.raises(SafetyError, match="Refusing the reassignment"):
            assert_plan_safe(self.snap(), [move])

    def test_existing_rack_violation_may_persist(self) -> None:
        # t-2 already has two replicas in rack a; replacing one a-broker by another keeps it as is.
        assert validate_plan(self.snap(), [Move("t", 2, (1, 4, 2), (7, 4, 2))]) == []

    def test_target_without_an_online_log_dir(self) -> None:
        snap = self.snap()
        snap.log_dirs = pd.DataFrame(
            [(4, "/d", "KafkaStorageException", 1e9, 1e9), (5, "/d", None, 1e9, 1e9)],
            columns=["broker_id", "path", "error", "total_bytes", "usable_bytes"],
        )
        violations = validate_plan(snap, [Move("t", 0, (1, 2, 3), (4, 2, 3))])
        assert violations == ["t-0: target broker 4 has every log dir offline"]

    def test_duplicate_partition_and_in_flight(self) -> None:
        m = Move("t", 0, (1, 2, 3), (4, 2, 3))
        assert any("more than once" in v for v in validate_plan(self.snap(), [m, m]))
        snap = self.snap(reassigning=[("t", 0)])
        assert any("already in progress" in v for v in validate_plan(snap, [m]))

    def test_message_lists_every_violation(self) -> None:
        moves = [Move("t", 0, (1, 2, 3), (2, 2, 3)), Move("t", 1, (1, 2, 3), (4, 2, 3))]
        with pytest.raises(SafetyError) as err:
            assert_plan_safe(self.snap(), moves)
        assert "t-0" in str(err.value) and "t-1" in str(err.value)

    def test_planner_output_passes_on_a_large_cluster(self) -> None:
        s = synthetic_snapshot(n_brokers=30, n_partitions=3000)
        plan = plan_moves(s, DrainRequest(brokers=[3, 4]))
        assert validate_plan(s, plan.moves) == []


class TestRemovalImpact:
    def snap(self) -> ClusterSnapshot:
        return make_snapshot(
            [
                ("t", 0, (1, 2, 3)),  # full ISR, min 2
                ("t", 1, (1, 2, 3), (1, 2)),  # one follower out of sync
                ("t", 2, (1,), (1,), 1),  # RF 1
                ("t", 3, (4, 5, 6)),  # not on the removed brokers
                ("t", 4, (2, 3, 1), (2, 3)),  # 1 is a replica but not in sync: no impact
            ]
        )

    def test_impact_of_one_broker(self) -> None:
        impact = removal_impact(self.snap(), [1])
        assert impact.offline == [("t", 2)]
        assert impact.under_min_isr == [("t", 1)]
        assert impact.leaderships == 3
        assert impact.isr_members_lost == 3
        assert not impact.safe
        assert "1 partitions offline" in impact.summary()

    def test_impact_of_two_brokers(self) -> None:
        impact = removal_impact(self.snap(), [1, 2])
        assert impact.offline == [("t", 1), ("t", 2)]
        assert impact.under_min_isr == [("t", 0), ("t", 4)]

    def test_safe_removal(self) -> None:
        impact = assert_removal_safe(self.snap(), [4])
        assert impact.safe and impact.offline == [] and impact.under_min_isr == []

    def test_assert_removal_safe_names_partitions(self) -> None:
        with pytest.raises(SafetyError) as err:
            assert_removal_safe(self.snap(), [1])
        msg = str(err.value)
        assert "last in-sync replica: t-2" in msg and "min.insync.replicas: t-1" in msg
        with pytest.raises(SafetyError, match="t-2") as err:
            assert_removal_safe(self.snap(), [1], allow_under_min_isr=True)  # offline is never allowed
        assert "t-1" not in str(err.value)
        snap = make_snapshot([("t", 0, (1, 2, 3), (1, 2))])
        assert assert_removal_safe(snap, [1], allow_under_min_isr=True).under_min_isr == [("t", 0)]

    def test_unknown_broker(self) -> None:
        with pytest.raises(ConfigError, match=r"\[42\]"):
            removal_impact(self.snap(), [1, 42])

    def test_dead_broker_known_only_from_replicas(self) -> None:
        snap = make_snapshot([("t", 0, (9, 2, 3), (2, 3))])  # broker 9 is gone from the broker list
        assert removal_impact(snap, [9]).safe

    def test_message_is_bounded_on_large_clusters(self) -> None:
        s = synthetic_snapshot(n_brokers=6, n_partitions=600)
        with pytest.raises(SafetyError, match=r"and \d+ more"):
            assert_removal_safe(s, [1, 2])
