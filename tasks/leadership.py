"""Applying replica reorders and moving leaders: the I/O of a demotion and of its undo.

A reorder keeps a partition's replica *set* and changes its order (no data moves; KIP-455
completes it at once); a preferred-leader election then puts leadership on the new first replica.
The executor runs the reorders like any reassignment -- journaled, safety-checked on a fresh
snapshot, guarded by the caller's lock -- so an interrupted demotion is adopted like any move.
"""

from __future__ import annotations

from typing import Any

from kafka_medic.executor import ClusterOps, ExecutionOptions, ExecutionResult
from kafka_medic.leadership import preferred_of
from kafka_medic.maintenance.election import PartitionKey
from kafka_medic.planner import Move
from kafka_medic.settings.cluster import ClusterSettings
from tasks.kafka import elect_preferred, read_partitions
from tasks.locks import LockHandle
from tasks.reassign import execute_task
from tasks.state import journal_store

#: Reorders move no data: if they have not completed in this long, something else is wrong.
REORDER_TIMEOUT_S = 120.0


async def apply_orders(
    cluster: ClusterSettings, moves: list[Move], lock: LockHandle, *, run_id: str, actor: str
) -> ExecutionResult:
    """Give each partition its new replica order (the caller holds the mutate lock)."""
    # No copying: no concurrency caps worth having, no bytes to measure, a short poll.
    options = ExecutionOptions(
        throttle_bytes_per_sec=int(cluster.policy.throttle_bytes_per_sec), max_moves_per_broker=10_000,
        max_moves_per_cluster=10_000, timeout_s=REORDER_TIMEOUT_S, poll_s=0.5, measure_every_s=0,
    )  # fmt: skip
    with ClusterOps(cluster) as ops:
        return await execute_task(ops, journal_store(), moves, cluster.name, run_id, actor, options, lock)


async def move_leaders(cluster: ClusterSettings, keys: list[PartitionKey], timeout_s: float) -> dict[str, Any]:
    """Elect each partition's (new) preferred replica and wait until metadata shows it (bounded)."""
    return await elect_preferred(cluster, sorted(set(keys)), timeout_s)


async def give_back(cluster: ClusterSettings, broker_id: int, timeout_s: float) -> dict[str, Any]:
    """After a restart or replacement: elect ``broker_id`` where it is the preferred, in-sync replica.

    Without this every heal leaves a leader imbalance behind (measured: 15-60 % for minutes on the
    sandbox, whose brokers do not rebalance leaders by themselves). Never raises: the heal itself
    is done; what did not move is in the result (and the leader-imbalance rule still reports it).
    """
    try:
        keys = preferred_of(await read_partitions(cluster), broker_id)
        return await move_leaders(cluster, keys, timeout_s)
    except Exception as exc:
        return {"requested": None, "moved": 0, "errors": {"*": f"{type(exc).__name__}: {exc}"}, "not_moved": []}
