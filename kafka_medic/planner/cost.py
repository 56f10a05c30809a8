"""What a reassignment costs: replicas and bytes copied, and how much of it crosses AZs.

Works on any list of moves (ours or one produced by Kafka's own ``--generate``), so plans from
different tools can be compared on the same snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from kafka_medic.planner.models import Move, PlanCost
from kafka_medic.safety import PartitionKey, PartitionTable, partition_size_map, racks_of
from kafka_medic.snapshot import ClusterSnapshot


def partition_sizes(snapshot: ClusterSnapshot, keys: Sequence[PartitionKey]) -> dict[PartitionKey, float]:
    """(topic, partition) -> size in bytes, NaN when no replica reports a size.

    The size of a partition is its largest known replica (see ``safety.partition_size_map``, the
    one implementation the planner, the cost and the validator's capacity check share).
    """
    return partition_size_map(snapshot, keys)


def compute_cost(
    moves: Iterable[Move],
    *,
    sizes: Mapping[PartitionKey, float],
    rack_of: Mapping[int, str | None],
    table: PartitionTable,
    rows: Mapping[PartitionKey, int | None],
    alive: set[int],
) -> PlanCost:
    """Tally a plan's cost (see ``PlanCost`` for the meaning of each figure).

    Cross-AZ: a new replica fetches from the partition leader, so its bytes cross an AZ when its
    rack differs from the current leader's. Without an alive leader we compare with the alive
    in-sync replicas' racks instead (whoever is elected will be one of them). An unknown rack on
    either side counts as cross-AZ.
    """
    replicas_moved = 0
    bytes_moved = 0.0
    cross = 0.0
    partitions = 0
    unknown = 0
    leader_changes = 0
    per_in: dict[int, int] = {}
    per_bytes: dict[int, float] = {}
    per_out: dict[int, int] = {}
    per_source: dict[int, float] = {}
    for m in moves:
        added = m.added
        removed = m.removed
        if not added and not removed and m.old_replicas == m.new_replicas:
            continue
        partitions += 1
        if m.new_replicas[:1] != m.old_replicas[:1]:
            leader_changes += 1
        key = (m.topic, m.partition)
        size = sizes.get(key, math.nan)
        known = not math.isnan(size)
        size_b = size if known else 0.0
        row = rows.get(key)
        source_racks: set[str] = set()
        source: int | None = None
        if row is not None:
            leader = table.leader(row)
            if leader >= 0 and leader in alive:
                source = leader
                lr = rack_of.get(leader)
                source_racks = {lr} if lr is not None else set()
            else:
                live = [b for b in table.isr(row) if b in alive]
                source = next((b for b in table.replicas(row) if b in live), None)  # the next leader
                source_racks = {r for b in live if (r := rack_of.get(b)) is not None}
        if source is not None:
            per_source[source] = per_source.get(source, 0.0) + size_b * len(added)
        for b in added:
            replicas_moved += 1
            if not known:
                unknown += 1
            bytes_moved += size_b
            per_in[b] = per_in.get(b, 0) + 1
            per_bytes[b] = per_bytes.get(b, 0.0) + size_b
            target_rack = rack_of.get(b)
            if target_rack is None or target_rack not in source_racks:
                cross += size_b
        for b in removed:
            per_out[b] = per_out.get(b, 0) + 1
    return PlanCost(
        replicas_moved=replicas_moved,
        bytes_moved=bytes_moved,
        cross_az_bytes=cross,
        partitions=partitions,
        per_broker_in=dict(sorted(per_in.items())),
        per_broker_bytes_in=dict(sorted(per_bytes.items())),
        per_broker_out=dict(sorted(per_out.items())),
        unknown_size_replicas=unknown,
        preferred_leader_changes=leader_changes,
        per_source_bytes_out=dict(sorted(per_source.items())),
    )


def plan_cost(snapshot: ClusterSnapshot, moves: Sequence[Move]) -> PlanCost:
    """Cost of any list of moves against ``snapshot`` (e.g. to compare with Kafka's ``--generate``)."""
    table = PartitionTable.from_snapshot(snapshot)
    keys = [(m.topic, m.partition) for m in moves]
    sizes = partition_sizes(snapshot, keys)
    rows = dict(zip(keys, table.rows(keys), strict=True))
    alive = snapshot.alive_broker_ids if not snapshot.brokers.empty else set()
    return compute_cost(moves, sizes=sizes, rack_of=racks_of(snapshot), table=table, rows=rows, alive=alive)
