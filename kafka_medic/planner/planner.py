"""The placement planner: where replicas go when brokers are drained or replaced.

Pure function of a ``ClusterSnapshot`` and a request; no Kafka, no Prefect.

Design (and why):

* Minimal movement. Only replicas on the drained brokers move; every other replica keeps its
  broker and its position. A replacement takes the exact position of the replica it replaces,
  so the preferred leader stays first unless the drained broker *was* the preferred leader, in
  which case the replacement becomes preferred leader (a later preferred-leader election moves
  leadership onto it; ``PlanCost.preferred_leader_changes`` counts these).
* Rack safety. Per partition, a rack may end up with at most ``max(1, replicas it had before)``
  replicas: no rack gains a second replica, an existing violation can persist but never grow,
  and so the number of distinct racks never drops. Within that, a replacement prefers the
  drained broker's own rack (DoctorKafka's rule: keeps per-rack load and AZ layout as it was) and
  only falls back to a rack that holds no other replica of the partition.
* Balance. Receivers in a rack are picked greedily by (replicas received in this plan, bytes on
  the broker, replicas on the broker, broker id), re-ranked after every assignment. Count
  first, so every eligible receiver in a rack gets the same number of replicas +-1 (an even
  spread of replication traffic is what keeps a drain short and no broker swamped); bytes second,
  and partitions are placed largest first, so big partitions land on the lightest brokers, which
  is how longest-processing-time scheduling gets a good byte balance without breaking the count
  balance. Broker id breaks ties, so the same input always gives the same plan.
* Safety over completeness. A partition is never moved if that would drop the last in-sync
  replica, if a reassignment is already in flight for it, or if no target keeps rack spread,
  replica cap and disk limit. Such partitions are reported (``PlanningError`` or
  ``Plan.unplaceable``), never forced.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from kafka_medic.errors import ConfigError
from kafka_medic.planner.cost import compute_cost, partition_sizes
from kafka_medic.planner.models import (
    DrainRequest,
    Move,
    Plan,
    PlanningError,
    PlanRequest,
    ReplaceRequest,
    Unplaceable,
)
from kafka_medic.safety import (
    PartitionKey,
    PartitionTable,
    brokers_without_online_log_dir,
    down_broker_ids,
    effective_isr,
    in_flight_reassignments,
    known_broker_ids,
    racks_of,
)
from kafka_medic.snapshot import ClusterSnapshot

_REQUEST_ADAPTER: TypeAdapter[DrainRequest | ReplaceRequest] = TypeAdapter(PlanRequest)


def parse_request(
    request: DrainRequest | ReplaceRequest | Mapping[str, Any],
) -> DrainRequest | ReplaceRequest:
    """Accept a request model or its dict form (as a Prefect parameter arrives)."""
    if isinstance(request, DrainRequest | ReplaceRequest):
        return request
    return _REQUEST_ADAPTER.validate_python(dict(request))


# ----------------------------------------------------------------------------------------------
# Request resolution: which brokers empty, which may receive
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    drained: frozenset[int]
    receivers: frozenset[int]
    max_replicas: int | None
    max_disk: float | None
    # Alive brokers that could not receive, by reason (for the diagnostics of unplaceable partitions).
    not_receiving: dict[int, str]
    replacement: int | None = None


def _resolve(snapshot: ClusterSnapshot, request: DrainRequest | ReplaceRequest) -> _Scope:
    """Turn a request into broker sets, raising ``ConfigError`` for input that cannot be meant."""
    if snapshot.brokers.empty:
        raise ConfigError(f"Cluster {snapshot.cluster!r} has no brokers in the snapshot; nothing to plan against.")
    if snapshot.partitions.empty:
        raise ConfigError(f"Cluster {snapshot.cluster!r} has no partitions in the snapshot; nothing to plan.")
    known = known_broker_ids(snapshot)
    alive = snapshot.alive_broker_ids
    broken = brokers_without_online_log_dir(snapshot)
    if isinstance(request, DrainRequest):
        drained = set(request.brokers)
        excluded = set(request.exclude)
        unknown = sorted((drained | excluded) - known)
        if unknown:
            raise ConfigError(
                f"Unknown broker id(s) {unknown}: not registered in cluster {snapshot.cluster!r} and not in "
                f"any replica list (known brokers: {sorted(known)})."
            )
        if drained >= known:
            raise ConfigError(f"Refusing to drain every broker of cluster {snapshot.cluster!r} ({sorted(known)}).")
        if drained | excluded >= known:
            raise ConfigError(
                f"Nothing left to receive replicas: brokers {sorted(drained)} are drained and every other "
                f"broker ({sorted(known - drained)}) is excluded."
            )
        not_receiving: dict[int, str] = {}
        for b in sorted(known - drained):
            if b not in alive:
                not_receiving[b] = "dead"
            elif b in excluded:
                not_receiving[b] = "excluded"
            elif b in broken:
                not_receiving[b] = "every log dir offline"
        receivers = alive - drained - excluded - broken
        return _Scope(
            frozenset(drained),
            frozenset(receivers),
            request.max_replicas_per_broker,
            request.max_disk_usage,
            not_receiving,
        )
    old, new = request.old_broker, request.new_broker
    if old == new:
        raise ConfigError(f"old_broker and new_broker are both {old}: a broker cannot replace itself.")
    if old not in known:
        raise ConfigError(f"Unknown old_broker {old}: not registered and not in any replica list.")
    if new not in alive:
        state = "not alive" if new in known else "unknown to the cluster"
        raise ConfigError(f"new_broker {new} is {state}; the replacement must be registered and alive first.")
    if new in broken:
        raise ConfigError(f"new_broker {new} reports every log dir offline; it cannot take replicas.")
    return _Scope(frozenset({old}), frozenset({new}), None, request.max_disk_usage, {}, replacement=new)


# ----------------------------------------------------------------------------------------------
# Broker loads and the per-rack receiver heaps
# ----------------------------------------------------------------------------------------------


class _Pool:
    """Receivers grouped by rack, each rack a heap on (received, bytes, replicas, broker id).

    Entries carry a version so an assignment can re-rank a broker by pushing a fresh entry; stale
    ones are dropped when they surface (lazy deletion keeps every operation O(log n)).
    """

    def __init__(
        self,
        receivers: frozenset[int],
        rack_of: Mapping[int, str | None],
        counts: Mapping[int, int],
        bytes_on: Mapping[int, float],
        disk: Mapping[int, tuple[float, float]],
        max_replicas: int | None,
        max_disk: float | None,
    ) -> None:
        self.rack_of = rack_of
        self.max_replicas = max_replicas
        self.max_disk = max_disk
        self.received: dict[int, int] = dict.fromkeys(receivers, 0)
        self.bytes: dict[int, float] = {b: float(bytes_on.get(b, 0.0)) for b in receivers}
        self.count: dict[int, int] = {b: int(counts.get(b, 0)) for b in receivers}
        self.disk_used: dict[int, float] = {}
        self.disk_total: dict[int, float] = {}
        for b in receivers:
            if b in disk:
                total, used = disk[b]
                self.disk_total[b] = total
                self.disk_used[b] = used
        self.version: dict[int, int] = dict.fromkeys(receivers, 0)
        self.heaps: dict[str | None, list[tuple[int, float, int, int, int]]] = {}
        for b in sorted(receivers):
            self.heaps.setdefault(rack_of.get(b), []).append(self._entry(b))
        for h in self.heaps.values():
            heapq.heapify(h)
        self.racks: list[str | None] = sorted(self.heaps, key=_rack_sort_key)

    def _entry(self, b: int) -> tuple[int, float, int, int, int]:
        return (self.received[b], self.bytes[b], self.count[b], b, self.version[b])

    def full(self, b: int) -> bool:
        return self.max_replicas is not None and self.count[b] >= self.max_replicas

    def fits_disk(self, b: int, size: float) -> bool:
        if self.max_disk is None or b not in self.disk_total:
            return True
        return (self.disk_used[b] + size) / self.disk_total[b] <= self.max_disk

    def best(self, rack: str | None, taken: set[int], size: float) -> tuple[int, float, int, int, int] | None:
        """Least-loaded receiver in ``rack`` not in ``taken`` that has room for ``size`` bytes."""
        heap = self.heaps.get(rack)
        if not heap:
            return None
        skipped: list[tuple[int, float, int, int, int]] = []
        found = None
        while heap:
            entry = heap[0]
            b = entry[3]
            if entry[4] != self.version[b]:
                heapq.heappop(heap)  # stale
                continue
            if self.full(b):
                heapq.heappop(heap)  # counts only grow: never eligible again
                continue
            if b in taken or not self.fits_disk(b, size):
                skipped.append(heapq.heappop(heap))
                continue
            found = entry
            break
        for e in skipped:
            heapq.heappush(heap, e)
        return found

    def assign(self, b: int, size: float) -> None:
        self.received[b] += 1
        self.bytes[b] += size
        self.count[b] += 1
        if b in self.disk_used:
            self.disk_used[b] += size
        self.version[b] += 1
        if not self.full(b):
            heapq.heappush(self.heaps[self.rack_of.get(b)], self._entry(b))


def _is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _rack_sort_key(rack: str | None) -> tuple[bool, str]:
    return (rack is None, rack or "")


def _broker_loads(
    snapshot: ClusterSnapshot, table: PartitionTable
) -> tuple[dict[int, int], dict[int, float], dict[int, tuple[float, float]]]:
    """Replica counts, bytes on disk (from replica sizes) and (total, used) disk per broker.

    Counts and bytes come from the exploded ``replicas`` frame (vectorised; it is built from
    the partitions frame); disk from the online log dirs. A broker whose volume sizes are not
    all known gets no disk entry, so the disk limit is not checked for it.
    """
    r = snapshot.replicas
    counts: dict[int, int] = {}
    bytes_on: dict[int, float] = {}
    if not r.empty:
        vc = r["broker_id"].astype("int64").value_counts()
        counts = dict(zip(vc.index.tolist(), vc.tolist(), strict=True))
        if "size_bytes" in r.columns:
            sums = r.groupby(r["broker_id"].astype("int64"))["size_bytes"].sum(min_count=1).dropna()
            bytes_on = dict(zip(sums.index.tolist(), sums.astype(float).tolist(), strict=True))
    elif len(table):
        flat = np.fromiter((b for reps in table.raw_replicas for b in reps), dtype=np.int64)
        ids, n = np.unique(flat, return_counts=True)
        counts = dict(zip(ids.tolist(), n.tolist(), strict=True))
    disk: dict[int, tuple[float, float]] = {}
    ld = snapshot.log_dirs
    if ld is not None and not ld.empty:
        # A handful of rows per broker: a plain loop beats a pandas groupby by far at this size.
        totals: dict[int, float] = {}
        used: dict[int, float] = {}
        unknown: set[int] = set()
        for b, err, total, usable in zip(
            ld["broker_id"].tolist(),
            ld["error"].tolist(),
            ld["total_bytes"].tolist(),
            ld["usable_bytes"].tolist(),
            strict=True,
        ):
            if not _is_missing(err):
                continue  # offline dir: holds nothing new
            b = int(b)
            if _is_missing(total) or _is_missing(usable):
                unknown.add(b)
                continue
            totals[b] = totals.get(b, 0.0) + float(total)
            used[b] = used.get(b, 0.0) + float(total) - float(usable)
        disk = {b: (t, used[b]) for b, t in sorted(totals.items()) if b not in unknown and t > 0}
    return counts, bytes_on, disk


# ----------------------------------------------------------------------------------------------
# Per-partition placement
# ----------------------------------------------------------------------------------------------


def _room(old_racks: Counter[str | None], now_racks: Counter[str | None], rack: str | None) -> int:
    """How many more replicas ``rack`` may take: up to one, or as many as it had before."""
    return max(1, old_racks.get(rack, 0)) - now_racks.get(rack, 0)


def _place(
    pool: _Pool,
    replicas: tuple[int, ...],
    drained: frozenset[int],
    size: float,
) -> tuple[dict[int, int], int | None]:
    """Pick a target for every drained position of one partition, without committing loads.

    Pass 1 gives each drained replica the least-loaded receiver in its own rack (if the rack may
    take one); pass 2 places the rest in any rack with room, least-loaded first. Because the rack
    rule only counts replicas per rack, any replica may use any rack's room, so this finds a
    placement whenever one exists (ignoring capacity interplay with other partitions).
    Returns (position -> broker, first position that found no target or None).
    """
    rack_of = pool.rack_of
    slots = [i for i, b in enumerate(replicas) if b in drained]
    old_racks = Counter(rack_of.get(b) for b in replicas)
    now = [b for b in replicas if b not in drained]
    now_racks = Counter(rack_of.get(b) for b in now)
    taken = set(replicas)  # drained brokers are not receivers anyway; kept ones may not repeat
    chosen: dict[int, int] = {}
    for pos in slots:
        rack = rack_of.get(replicas[pos])
        if _room(old_racks, now_racks, rack) <= 0:
            continue
        entry = pool.best(rack, taken, size)
        if entry is not None:
            chosen[pos] = entry[3]
            taken.add(entry[3])
            now_racks[rack] += 1
    for pos in slots:
        if pos in chosen:
            continue
        best = None
        for rack in pool.racks:
            if _room(old_racks, now_racks, rack) <= 0:
                continue
            entry = pool.best(rack, taken, size)
            if entry is not None and (best is None or entry[:4] < best[:4]):
                best = entry
        if best is None:
            return chosen, pos
        b = best[3]
        chosen[pos] = b
        taken.add(b)
        now_racks[rack_of.get(b)] += 1
    return chosen, None


def _no_target_reason(
    pool: _Pool,
    scope: _Scope,
    replicas: tuple[int, ...],
    chosen: dict[int, int],
    pos: int,
    size: float,
) -> str:
    """Explain, rack by rack, why the replica at ``pos`` found no target (only runs on failure)."""
    rack_of = pool.rack_of
    drained_b = replicas[pos]
    own = rack_of.get(drained_b)
    old_racks = Counter(rack_of.get(b) for b in replicas)
    now = [b for b in replicas if b not in scope.drained] + list(chosen.values())
    now_racks = Counter(rack_of.get(b) for b in now)
    taken = set(replicas) | set(chosen.values())
    all_racks = sorted(
        {rack_of.get(b) for b in scope.receivers} | {rack_of.get(b) for b in scope.not_receiving} | {own},
        key=_rack_sort_key,
    )
    allowed: list[str] = []
    blocked: list[str] = []
    for rack in all_racks:
        if _room(old_racks, now_racks, rack) <= 0:
            blocked.append(repr(rack))
            continue
        why: Counter[str] = Counter()
        for b, state in scope.not_receiving.items():
            if rack_of.get(b) == rack:
                why[state] += 1
        for b in scope.receivers:
            if rack_of.get(b) != rack:
                continue
            if b in taken:
                why["already holds a replica"] += 1
            elif pool.full(b):
                why[f"at max_replicas_per_broker={scope.max_replicas}"] += 1
            elif not pool.fits_disk(b, size):
                why[f"over max_disk_usage={scope.max_disk}"] += 1
            else:  # pragma: no cover - would have been chosen
                why["eligible"] += 1
        detail = ", ".join(f"{n} {w}" for w, n in sorted(why.items())) or "no brokers"
        allowed.append(f"{rack!r} ({detail})")
    text = f"no target for the replica on broker {drained_b} (rack {own!r})"
    if scope.replacement is not None:
        new_rack = rack_of.get(scope.replacement)
        text = f"new broker {scope.replacement} (rack {new_rack!r}) cannot take the replica "
        text += f"on broker {drained_b} (rack {own!r})"
    text += "; racks allowed: " + ("; ".join(allowed) if allowed else "none")
    if blocked:
        text += "; racks that already hold this partition and may not take another: " + ", ".join(blocked)
    return text


def _no_isr_reason(listed: tuple[int, ...], isr: tuple[int, ...], down: set[int]) -> str:
    """Why a partition may not move: no live in-sync replica would stay (``effective_isr``)."""
    if not listed:
        return "partition has no in-sync replica (offline); moving it would copy nothing"
    if not isr:
        gone = sorted(set(listed) & down)
        return (
            f"no live in-sync replica: the ISR {list(listed)} lists only brokers that are down ({gone}); "
            "moving it would copy nothing and could drop the last in-sync copy"
        )
    stale = sorted(set(listed) & down)
    also = f" (the ISR also lists {stale}, which are down and do not count)" if stale else ""
    return (
        f"every live in-sync replica ({list(isr)}) is on a drained broker{also}; moving them would remove "
        "the last in-sync copy"
    )


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


def plan_moves(
    snapshot: ClusterSnapshot,
    request: DrainRequest | ReplaceRequest | Mapping[str, Any],
    *,
    allow_partial: bool = False,
) -> Plan:
    """Plan the reassignment for ``request`` (drain brokers, or replace one broker by another).

    Raises ``ConfigError`` for requests that cannot be meant (unknown broker, draining every
    broker, replacing a broker by itself or by a dead/unknown one, empty snapshot) and
    ``PlanningError`` if some partition has no safe target, unless ``allow_partial`` is set, in
    which case those partitions are left in place and listed in ``Plan.unplaceable``. The plan
    always passes ``kafka_medic.safety.validate_plan`` against the same snapshot.
    """
    req = parse_request(request)
    scope = _resolve(snapshot, req)
    table = PartitionTable.from_snapshot(snapshot)
    rack_of: dict[int, str | None] = racks_of(snapshot)
    for b in known_broker_ids(snapshot):
        rack_of.setdefault(b, None)  # dead brokers missing from the frame: rack unknown

    drained = scope.drained
    rows = [i for i, reps in enumerate(table.raw_replicas) if not drained.isdisjoint(reps)]
    keys: list[PartitionKey] = [table.key(i) for i in rows]
    row_of: dict[PartitionKey, int | None] = dict(zip(keys, rows, strict=True))
    sizes = partition_sizes(snapshot, keys)
    counts, bytes_on, disk = _broker_loads(snapshot, table)
    pool = _Pool(scope.receivers, rack_of, counts, bytes_on, disk, scope.max_replicas, scope.max_disk)
    in_flight = in_flight_reassignments(snapshot)
    down = down_broker_ids(snapshot)

    def order(i: int) -> tuple[float, str, int]:
        t, p = key = table.key(i)
        s = sizes[key]
        return (-(0.0 if math.isnan(s) else s), t, p)

    moves: list[Move] = []
    unplaceable: list[Unplaceable] = []
    for i in sorted(rows, key=order):
        key = table.key(i)
        reps = table.replicas(i)
        if key in in_flight:
            unplaceable.append(Unplaceable(*key, "a reassignment is already in progress for this partition"))
            continue
        listed = table.isr(i)
        isr = effective_isr(listed, down)
        if not any(b in isr for b in reps if b not in drained):
            unplaceable.append(Unplaceable(*key, _no_isr_reason(listed, isr, down)))
            continue
        size = sizes[key]
        size_b = 0.0 if math.isnan(size) else size
        chosen, failed = _place(pool, reps, drained, size_b)
        if failed is not None:
            unplaceable.append(Unplaceable(*key, _no_target_reason(pool, scope, reps, chosen, failed, size_b)))
            continue
        for b in chosen.values():
            pool.assign(b, size_b)
        new = tuple(chosen.get(pos, b) for pos, b in enumerate(reps))
        moves.append(Move(key[0], key[1], reps, new))

    moves.sort(key=lambda m: (m.topic, m.partition))
    unplaceable.sort(key=lambda u: (u.topic, u.partition))
    if unplaceable and not allow_partial:
        raise PlanningError(unplaceable)
    alive = snapshot.alive_broker_ids
    cost = compute_cost(moves, sizes=sizes, rack_of=rack_of, table=table, rows=row_of, alive=alive)
    return Plan(moves=moves, cost=cost, unplaceable=unplaceable, request=req)


def kafka_generate_inputs(
    snapshot: ClusterSnapshot, request: DrainRequest | ReplaceRequest | Mapping[str, Any]
) -> tuple[dict[str, Any], str]:
    """Inputs for Kafka's own ``kafka-reassign-partitions --generate``, for comparing planners.

    Returns the ``--topics-to-move-json-file`` content (every topic with a replica on a drained
    broker) and the ``--broker-list`` value (the brokers our planner may use: alive, not drained,
    not excluded; for a replacement, every alive broker but the old one). Kafka's generator
    re-spreads *every* partition of those topics over that list, so expect far more movement
    than ``plan_moves``; the point is to compare cost and constraint violations via
    ``plan_cost`` / ``validate_plan`` on its output.
    """
    req = parse_request(request)
    scope = _resolve(snapshot, req)
    table = PartitionTable.from_snapshot(snapshot)
    topics = sorted(
        {t for t, reps in zip(table.raw_topics, table.raw_replicas, strict=True) if not scope.drained.isdisjoint(reps)}
    )
    if isinstance(req, ReplaceRequest):
        brokers = sorted(snapshot.alive_broker_ids - {req.old_broker})
    else:
        brokers = sorted(scope.receivers)
    return {"version": 1, "topics": [{"topic": t} for t in topics]}, ",".join(str(b) for b in brokers)


def moves_from_kafka_json(snapshot: ClusterSnapshot, reassignment: Mapping[str, Any]) -> list[Move]:
    """Turn a Kafka reassignment JSON (e.g. ``--generate``'s proposal) into moves against ``snapshot``.

    Old replicas come from the snapshot; partitions whose replica list does not change are
    dropped; partitions unknown to the snapshot keep ``old_replicas=()`` so ``validate_plan``
    reports them. Use with ``plan_cost`` and ``validate_plan`` to compare another tool's plan.
    """
    entries = list(reassignment.get("partitions", []))
    keys = [(str(e["topic"]), int(e["partition"])) for e in entries]
    table = PartitionTable.from_snapshot(snapshot)
    moves: list[Move] = []
    for (topic, partition), row, e in zip(keys, table.rows(keys), entries, strict=True):
        old = table.replicas(row) if row is not None else ()
        new = tuple(int(b) for b in e["replicas"])
        if new != old:
            moves.append(Move(topic, partition, old, new))
    return sorted(moves, key=lambda m: (m.topic, m.partition))


__all__ = ["kafka_generate_inputs", "moves_from_kafka_json", "parse_request", "plan_moves"]
