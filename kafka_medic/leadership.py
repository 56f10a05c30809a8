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


def preferred_of(snapshot: ClusterSnapshot, broker_id: int) -> list[PartitionKey]:
    """Partitions whose preferred leader is ``broker_id`` and that it does not lead now (a heal
    gives them back, so it ends where it started)."""
    parts = snapshot.partitions
    if parts.empty:
        return []
    rows = zip(parts["topic"], parts["partition"], parts["leader"], parts["replicas"], strict=True)
    return [(str(t), int(p)) for t, p, leader, reps in rows if len(reps) and int(reps[0]) == broker_id != int(leader)]
