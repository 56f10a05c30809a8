"""Batching: per-broker and per-cluster caps, and the order moves start in."""

from __future__ import annotations

from collections import Counter

import pytest

from kafka_medic.executor.batching import (
    broker_load,
    estimate_seconds,
    occupied_brokers,
    order_for_execution,
    select_next,
    waves,
)
from kafka_medic.planner import Move

ALIVE = set(range(1, 7))


def drain_moves(n: int, *, dead: int = 4, to: int = 1) -> tuple[list[Move], dict[tuple[str, int], int]]:
    moves = [Move("t", p, (dead, 2, 3), (to, 2, 3)) for p in range(n)]
    leaders = {("t", p): 2 if p % 2 else 3 for p in range(n)}
    return moves, leaders


def test_a_dead_removed_broker_takes_no_slot_but_receiver_and_leader_do() -> None:
    m = Move("t", 0, (4, 2, 3), (1, 2, 3))
    assert occupied_brokers(m, leader=2, alive=ALIVE - {4}) == {1, 2}
    assert occupied_brokers(m, leader=-1, alive=ALIVE) == {1}


def test_per_broker_cap_limits_moves_onto_one_receiver() -> None:
    moves, leaders = drain_moves(12)
    chosen = select_next(moves, [], leaders=leaders, alive=ALIVE - {4}, max_per_broker=5, max_per_cluster=100)
    assert len(chosen) == 5
    load = broker_load(chosen, leaders, ALIVE - {4})
    assert max(load.values()) <= 5


def test_in_flight_moves_count_against_the_caps() -> None:
    moves, leaders = drain_moves(12)
    running = moves[:3]
    chosen = select_next(moves[3:], running, leaders=leaders, alive=ALIVE, max_per_broker=5, max_per_cluster=100)
    assert len(chosen) == 2


def test_cluster_cap() -> None:
    moves = [Move("t", p, (1, 2, 3), (1 + 3 * (p % 2), 5, 6)) for p in range(50)]
    leaders = {("t", p): 1 for p in range(50)}
    chosen = select_next(moves, [], leaders=leaders, alive=ALIVE, max_per_broker=100, max_per_cluster=7)
    assert len(chosen) == 7


def test_moves_on_other_brokers_still_start_when_one_broker_is_full() -> None:
    busy = [Move("a", p, (1, 2, 3), (4, 2, 3)) for p in range(5)]
    other = Move("b", 0, (2, 3, 5), (2, 3, 6))
    leaders = {("a", p): 1 for p in range(5)} | {("b", 0): 2}
    chosen = select_next(
        [*busy, Move("a", 9, (1, 2, 3), (4, 2, 3)), other],
        busy,
        leaders=leaders | {("a", 9): 1},
        alive=ALIVE,
        max_per_broker=5,
        max_per_cluster=100,
    )
    assert chosen == [other]


def test_fits_bounds_the_selection() -> None:
    moves, leaders = drain_moves(12)
    chosen = select_next(
        moves, [], leaders=leaders, alive=ALIVE, max_per_broker=100, max_per_cluster=100, fits=lambda s: len(s) <= 3
    )
    assert len(chosen) == 3


def test_waves_respect_the_caps_and_cover_every_move() -> None:
    moves, leaders = drain_moves(12)
    w = waves(moves, leaders=leaders, alive=ALIVE - {4}, max_per_broker=5, max_per_cluster=100)
    assert [len(x) for x in w] == [5, 5, 2]
    assert Counter(m.partition for wave in w for m in wave) == Counter(range(12))


def test_largest_first_then_by_name() -> None:
    moves = [Move("t", p, (1, 2, 3), (4, 2, 3)) for p in range(4)]
    sizes = {("t", 0): 10.0, ("t", 1): 300.0, ("t", 2): float("nan"), ("t", 3): 300.0}
    assert [m.partition for m in order_for_execution(moves, sizes)] == [1, 3, 0, 2]


def test_estimate_is_the_busiest_receiver_over_the_rate() -> None:
    moves = [Move("t", 0, (1, 2, 3), (4, 2, 3)), Move("t", 1, (1, 2, 3), (4, 5, 3)), Move("t", 2, (1, 2, 3), (6, 2, 3))]
    sizes = {("t", 0): 100.0, ("t", 1): 100.0, ("t", 2): 50.0}
    assert estimate_seconds(moves, sizes, 10.0) == 20.0  # broker 4 receives 200 bytes
    assert estimate_seconds(moves, {}, 10.0) is None


def test_caps_must_be_positive() -> None:
    with pytest.raises(ValueError, match="caps"):
        select_next([], [], leaders={}, alive=ALIVE, max_per_broker=0, max_per_cluster=1)
