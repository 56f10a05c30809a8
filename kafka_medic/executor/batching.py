"""Which moves to start next: caps on concurrent moves per broker and per cluster.

Why caps: every move makes a new replica copy the partition from its leader. Starting hundreds at
once makes every leader serve many cold reads and every receiver write many logs; producers and
consumers then see latency and replicas fall out of the ISR (Cruise Control caps at 5 moves per
broker and 1250 per cluster by default for that reason). Moves are started as slots free up, not
in lock-step batches, so one large partition does not hold back the rest.

Which brokers a move occupies: the brokers that receive a copy and the current leader that serves
it. A replica being removed costs nothing (it is just deleted at the end), and a dead broker does
no work, so neither takes a slot: otherwise draining a dead broker would run 5 moves at a time in
total, because every move involves it.

Pure functions: the executor passes the current in-flight moves and the cluster's leaders.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from kafka_medic.planner import Move

PartitionKey = tuple[str, int]


def occupied_brokers(move: Move, leader: int | None, alive: Iterable[int]) -> frozenset[int]:
    """Alive brokers whose replication bandwidth the move uses (receivers + serving leader)."""
    alive_set = set(alive)
    out = {b for b in move.added if b in alive_set}
    if leader is not None and leader >= 0 and leader in alive_set:
        out.add(leader)
    return frozenset(out)


def broker_load(moves: Iterable[Move], leaders: Mapping[PartitionKey, int], alive: Iterable[int]) -> Counter[int]:
    alive_set = set(alive)
    load: Counter[int] = Counter()
    for m in moves:
        for b in occupied_brokers(m, leaders.get((m.topic, m.partition)), alive_set):
            load[b] += 1
    return load


def select_next(
    pending: Sequence[Move],
    in_flight: Sequence[Move],
    *,
    leaders: Mapping[PartitionKey, int],
    alive: Iterable[int],
    max_per_broker: int,
    max_per_cluster: int,
    fits: Callable[[list[Move]], bool] | None = None,
) -> list[Move]:
    """The moves from ``pending`` (in order) that can start now without exceeding any cap.

    ``fits(selected)`` lets the caller bound the selection by something else (the journal size):
    a move that does not fit stops the selection, since later ones would not fit either.
    """
    if max_per_broker < 1 or max_per_cluster < 1:
        raise ValueError("move caps must be >= 1")
    alive_set = set(alive)
    load = broker_load(in_flight, leaders, alive_set)
    room = max_per_cluster - len(in_flight)
    chosen: list[Move] = []
    for m in pending:
        if room <= 0:
            break
        brokers = occupied_brokers(m, leaders.get((m.topic, m.partition)), alive_set)
        if any(load[b] >= max_per_broker for b in brokers):
            continue
        if fits is not None and not fits([*chosen, m]):
            break
        chosen.append(m)
        room -= 1
        for b in brokers:
            load[b] += 1
    return chosen


def waves(
    moves: Sequence[Move],
    *,
    leaders: Mapping[PartitionKey, int],
    alive: Iterable[int],
    max_per_broker: int,
    max_per_cluster: int,
) -> list[list[Move]]:
    """The moves split into waves as if every wave finished together (for dry-run estimates)."""
    alive_set = set(alive)
    pending = list(moves)
    out: list[list[Move]] = []
    while pending:
        wave = select_next(
            pending,
            [],
            leaders=leaders,
            alive=alive_set,
            max_per_broker=max_per_broker,
            max_per_cluster=max_per_cluster,
        )
        if not wave:  # pragma: no cover - a move always fits an empty cluster
            raise AssertionError("no move can start on an idle cluster")
        taken = {(m.topic, m.partition) for m in wave}
        pending = [m for m in pending if (m.topic, m.partition) not in taken]
        out.append(wave)
    return out


def order_for_execution(moves: Iterable[Move], sizes: Mapping[PartitionKey, float]) -> list[Move]:
    """Largest partitions first (longest-processing-time first shortens the total), then by name."""

    def key(m: Move) -> tuple[float, str, int]:
        s = sizes.get((m.topic, m.partition), math.nan)
        return (-(0.0 if s is None or math.isnan(s) else float(s)), m.topic, m.partition)

    return sorted(moves, key=key)


def estimate_seconds(
    moves: Sequence[Move], sizes: Mapping[PartitionKey, float], rate_bytes_per_s: float
) -> float | None:
    """Lower bound on the copy time: the busiest receiver's incoming bytes over the throttle rate.

    None when no size is known. A receiver copies at most ``rate`` bytes/s in total (the follower
    throttle is per broker), so its incoming bytes divided by the rate bound the whole move.
    """
    per_broker: Counter[int] = Counter()
    known = False
    for m in moves:
        s = sizes.get((m.topic, m.partition), math.nan)
        if s is None or math.isnan(s):
            continue
        known = True
        for b in m.added:
            per_broker[b] += int(s)
    if not known or rate_bytes_per_s <= 0:
        return None
    return max(per_broker.values(), default=0) / rate_bytes_per_s
