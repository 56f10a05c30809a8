"""Demoting a broker (taking its leaderships away) and undoing it, as plain moves over a snapshot.

The ladder's first rung for a slow broker, after Cruise Control's ``demote_broker``: every
partition it leads or would lead (its preferred replica) gets the same replicas in another order,
the broker last, and a preferred-leader election then hands leadership to the new first replica.
No data moves (the replica set is unchanged), so it takes seconds and is fully reversible; and a
slow broker that leads nothing is out of every producer's acks path except as a follower.

Only partitions whose new first replica is in sync are demoted (an election cannot pick a replica
out of the ISR, and an unclean one is never asked for); the rest are listed with the reason.
The undo restores each partition's previous order, but only where nobody changed it since.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from kafka_medic.planner import Move
from kafka_medic.safety import down_broker_ids, effective_isr
from kafka_medic.snapshot import ClusterSnapshot

PartitionKey = tuple[str, int]
Orders = dict[PartitionKey, tuple[int, ...]]


@dataclass(frozen=True)
class Demotion:
    """The reorders that take leadership off ``broker_id``, and the partitions that cannot be demoted."""

    broker_id: int
    moves: tuple[Move, ...]
    skipped: tuple[tuple[str, str], ...]  # ("topic-partition", why)

    @property
    def keys(self) -> list[PartitionKey]:
        return [(m.topic, m.partition) for m in self.moves]

    def undo(self) -> Orders:
        """Each demoted partition's order before the demotion (what :func:`restore_moves` puts back)."""
        return {(m.topic, m.partition): tuple(m.old_replicas) for m in self.moves}


def demotion(snapshot: ClusterSnapshot, broker_id: int) -> Demotion:
    """Move ``broker_id`` last in every partition it leads or is preferred for, if the new first replica is in sync."""
    parts = snapshot.partitions
    down = down_broker_ids(snapshot)
    moves: list[Move] = []
    skipped: list[tuple[str, str]] = []
    if parts.empty:
        return Demotion(broker_id, (), ())
    for t, p, leader, reps, isr in zip(
        parts["topic"], parts["partition"], parts["leader"], parts["replicas"], parts["isr"], strict=True
    ):
        replicas = tuple(int(b) for b in reps)
        if broker_id not in replicas or (replicas[0] != broker_id and int(leader) != broker_id):
            continue
        name = f"{t}-{int(p)}"
        new = (*(b for b in replicas if b != broker_id), broker_id)
        in_sync = set(effective_isr(isr, down)) - {broker_id}
        if not new or new[0] == broker_id:
            skipped.append((name, "no other replica to lead"))
        elif new[0] not in in_sync:
            skipped.append((name, f"its next replica {new[0]} is not in sync"))
        else:
            moves.append(Move(str(t), int(p), replicas, new))
    return Demotion(broker_id, tuple(moves), tuple(skipped))


def restore_moves(undo: Mapping[PartitionKey, Iterable[int]], current: Mapping[PartitionKey, tuple[int, ...]]) -> tuple[
    list[Move], list[tuple[str, str]]
]:  # fmt: skip
    """Moves that put each demoted partition's old order back, where the replica *set* is still the
    same (a reorder only); a partition changed since (moved, replaced) is skipped with the reason."""
    moves: list[Move] = []
    skipped: list[tuple[str, str]] = []
    for (t, p), old in sorted(undo.items()):
        old_t = tuple(int(b) for b in old)
        now = current.get((t, p))
        name = f"{t}-{p}"
        if now is None:
            skipped.append((name, "partition no longer exists"))
        elif now == old_t:
            continue  # already in its old order
        elif set(now) != set(old_t):
            skipped.append((name, f"replicas changed since the demotion: {list(old_t)} -> {list(now)}"))
        else:
            moves.append(Move(t, p, now, old_t))
    return moves, skipped


def preferred_of(partitions: pd.DataFrame, broker_id: int, *, in_sync_only: bool = True) -> list[PartitionKey]:
    """Partitions whose preferred leader is ``broker_id``, that it does not lead now and (by default)
    where it is in sync: what a heal gives back, so it ends where it started."""
    if partitions.empty:
        return []
    rows = zip(partitions["topic"], partitions["partition"], partitions["leader"], partitions["replicas"],
               partitions["isr"], strict=True)  # fmt: skip
    return [
        (str(t), int(p)) for t, p, leader, reps, isr in rows
        if len(reps) and int(reps[0]) == broker_id != int(leader)
        and (not in_sync_only or broker_id in {int(b) for b in isr})
    ]  # fmt: skip


@dataclass(frozen=True)
class Restoration:
    """What gives ``broker_id`` its leaderships back: reorders (its demotion's undo) and elections."""

    broker_id: int
    moves: tuple[Move, ...]
    elect: tuple[PartitionKey, ...]
    skipped: tuple[tuple[str, str], ...]

    @property
    def waiting(self) -> bool:
        """Some partitions wait for the broker to be in sync (keep the undo for the next restore)."""
        return any("not in sync" in why for _, why in self.skipped)


def restoration(snapshot: ClusterSnapshot, broker_id: int, undo: Mapping[PartitionKey, Iterable[int]]) -> Restoration:
    """The demotion's undo (:func:`restore_moves`) and the broker's preferred partitions
    (:func:`preferred_of`), only where the broker is in sync: an election cannot pick it elsewhere,
    and putting it first where it is not in sync would only create a leader imbalance."""
    parts = snapshot.partitions
    current = {} if parts.empty else {
        (str(t), int(p)): tuple(int(b) for b in reps)
        for t, p, reps in zip(parts["topic"], parts["partition"], parts["replicas"], strict=True)
    }  # fmt: skip
    down = down_broker_ids(snapshot)
    in_sync = set() if parts.empty else {
        (str(t), int(p))
        for t, p, isr in zip(parts["topic"], parts["partition"], parts["isr"], strict=True)
        if broker_id in effective_isr(isr, down)
    }  # fmt: skip
    moves, skipped = restore_moves(undo, current)
    ready = [m for m in moves if (m.topic, m.partition) in in_sync]
    skipped += [(f"{m.topic}-{m.partition}", f"broker {broker_id} is not in sync there yet") for m in moves
                if (m.topic, m.partition) not in in_sync]  # fmt: skip
    elect = {(m.topic, m.partition) for m in ready} | set(preferred_of(parts, broker_id, in_sync_only=False))
    return Restoration(broker_id, tuple(ready), tuple(sorted(elect & in_sync)), tuple(skipped))
