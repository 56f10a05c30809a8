"""kafka_medic.leadership: demoting a broker is a reorder (no data moves), only onto in-sync replicas,
and its undo puts back exactly what was there, never over someone else's change."""

from __future__ import annotations

from kafka_medic.leadership import demotion, preferred_of, restore_moves
from tests.unit.rules_helpers import brokers, part, snapshot


def test_demotion_moves_the_broker_last_where_it_leads_or_is_preferred() -> None:
    snap = snapshot(brokers(4), [
        part("t", 0, [3, 1, 2]),  # preferred and leader
        part("t", 1, [1, 3, 2], leader=3),  # leader, not preferred
        part("t", 2, [1, 2, 3]),  # a follower only: untouched
        part("t", 3, [3, 4, 1], isr=[3, 1]),  # next replica 4 out of sync: cannot demote
        part("t", 4, [2, 4, 1]),  # not hosted
    ])  # fmt: skip
    d = demotion(snap, 3)
    assert {(m.topic, m.partition): (m.old_replicas, m.new_replicas) for m in d.moves} == {
        ("t", 0): ((3, 1, 2), (1, 2, 3)),
        ("t", 1): ((1, 3, 2), (1, 2, 3)),
    }
    assert all(set(m.old_replicas) == set(m.new_replicas) for m in d.moves), "a reorder moves no data"
    assert d.skipped == (("t-3", "its next replica 4 is not in sync"),)
    assert d.undo() == {("t", 0): (3, 1, 2), ("t", 1): (1, 3, 2)}


def test_a_down_replica_is_never_the_new_leader() -> None:
    rows = brokers(3)
    rows[0]["alive"] = False  # broker 1 is down but still listed in the ISR (not fenced yet)
    d = demotion(snapshot(rows, [part("t", 0, [3, 1, 2], isr=[3, 1, 2])]), 3)
    assert d.moves == () and d.skipped == (("t-0", "its next replica 1 is not in sync"),)


def test_restore_puts_back_only_partitions_nobody_changed() -> None:
    undo = {("t", 0): (3, 1, 2), ("t", 1): (1, 3, 2), ("t", 2): (3, 2, 1), ("t", 3): (3, 4, 5)}
    current = {("t", 0): (1, 2, 3), ("t", 1): (1, 3, 2), ("t", 2): (2, 1, 4)}
    moves, skipped = restore_moves(undo, current)
    assert [(m.topic, m.partition, m.new_replicas) for m in moves] == [("t", 0, (3, 1, 2))]
    assert dict(skipped) == {
        "t-2": "replicas changed since the demotion: [3, 2, 1] -> [2, 1, 4]",
        "t-3": "partition no longer exists",
    }  # t-1 already in its old order: nothing to do


def test_a_healed_broker_gets_back_the_leaderships_it_prefers() -> None:
    snap = snapshot(brokers(3), [part("t", 0, [2, 1, 3], leader=1), part("t", 1, [2, 3, 1]), part("t", 2, [1, 2, 3])])
    assert preferred_of(snap.partitions, 2, in_sync_only=False) == [("t", 0)]
