"""Property tests: random small clusters and drain requests, every plan checked against every rule.

Unplaceable verdicts are checked by brute force: for each partition the planner gave up on, no
assignment of its drained replicas to receivers (respecting the capacity left at the end of the
plan, which can only be less than when the planner decided) may satisfy the constraints.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kafka_medic.errors import ConfigError
from kafka_medic.planner import DrainRequest, Plan, PlanCost, PlanningError, ReplaceRequest, plan_moves
from kafka_medic.safety import racks_of, validate_plan
from kafka_medic.snapshot import REPLICA_COLUMNS, ClusterSnapshot

RACKS = ["az-a", "az-b", "az-c", "az-d"]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Case:
    """A generated cluster plus the plain-Python facts the reference model checks against."""

    snapshot: ClusterSnapshot
    rack_of: dict[int, str | None]  # every known broker (missing ones -> None)
    alive: set[int]
    known: set[int]
    broken: set[int]  # brokers whose every log dir is offline
    parts: dict[tuple[str, int], tuple[tuple[int, ...], tuple[int, ...]]]  # key -> (replicas, isr)
    size: dict[tuple[str, int], float]  # unknown -> 0
    disk_total: dict[int, float]  # only brokers with fully known online volumes
    disk_used: dict[int, float]


@st.composite
def clusters(draw: st.DrawFn) -> Case:
    n = draw(st.integers(3, 12))
    n_racks = draw(st.integers(1, 4))
    ids = sorted(draw(st.sets(st.integers(0, 40), min_size=n, max_size=n)))
    rack_choices: list[str | None] = [*RACKS[:n_racks]]
    if draw(st.booleans()) and n_racks == 1:
        rack_choices = [None]  # a cluster without rack configuration
    racks = {b: draw(st.sampled_from(rack_choices)) for b in ids}
    dead = {b for b in ids if draw(st.integers(0, 4)) == 0}
    # Some dead brokers are no longer registered at all: known only from replica lists.
    missing = {b for b in dead if draw(st.booleans())}
    rf = min(n, draw(st.sampled_from([3, 2, 1, 3])))
    n_parts = draw(st.integers(1, 20))
    rows = []
    replica_rows = []
    size_of: dict[tuple[str, int], float] = {}
    for p in range(n_parts):
        topic = f"t{p % 3}"
        partition = p
        replicas = tuple(draw(st.permutations(ids))[:rf])
        isr = tuple(b for b in replicas if b not in dead and draw(st.integers(0, 5)) > 0)
        leader = isr[0] if isr else -1
        rows.append((topic, partition, leader, replicas, isr, draw(st.integers(1, 3))))
        size = draw(st.one_of(st.none(), st.integers(0, 2000)))
        size_of[(topic, partition)] = float(size or 0)
        for pos, b in enumerate(replicas):
            known_size = math.nan if size is None else float(size)
            replica_rows.append((topic, partition, b, pos, b in isr, b == leader, known_size))
    partitions = pd.DataFrame(rows, columns=["topic", "partition", "leader", "replicas", "isr", "min_isr"])
    replicas_df = pd.DataFrame(replica_rows, columns=list(REPLICA_COLUMNS))
    listed = [b for b in ids if b not in missing]
    brokers = pd.DataFrame(
        {
            "broker_id": listed,
            "host": [f"b{b}" for b in listed],
            "port": 9092,
            "rack": [racks[b] for b in listed],
            "alive": [b not in dead for b in listed],
        }
    )
    log_rows: list[tuple[Any, ...]] = []
    broken: set[int] = set()
    disk_total: dict[int, float] = {}
    disk_used: dict[int, float] = {}
    for b in listed:
        kind = draw(st.sampled_from(["none", "sized", "unsized", "offline"]))
        if kind == "sized":
            total = float(draw(st.integers(1000, 5000)))
            used = float(draw(st.integers(0, int(total))))
            log_rows.append((b, "/d", None, total, total - used))
            disk_total[b], disk_used[b] = total, used
        elif kind == "unsized":
            log_rows.append((b, "/d", None, math.nan, math.nan))
        elif kind == "offline":
            log_rows.append((b, "/d", "KafkaStorageException", 1000.0, 1000.0))
            broken.add(b)
    log_dirs = pd.DataFrame(log_rows, columns=["broker_id", "path", "error", "total_bytes", "usable_bytes"])
    snapshot = ClusterSnapshot(
        cluster="prop",
        brokers=brokers,
        partitions=partitions,
        replicas=replicas_df,
        log_dirs=log_dirs if log_rows else pd.DataFrame(columns=list(log_dirs.columns)),
    )
    known = set(listed) | {b for r in partitions["replicas"] for b in r}
    rack_of: dict[int, str | None] = {b: (racks[b] if b in listed else None) for b in known}
    parts = {(t, p): (r, i) for t, p, _l, r, i, _m in rows}
    return Case(snapshot, rack_of, set(listed) - dead, known, broken, parts, size_of, disk_total, disk_used)


@st.composite
def drain_cases(draw: st.DrawFn) -> tuple[Case, DrainRequest]:
    case = draw(clusters())
    known = sorted(case.known)
    holders = sorted({b for reps, _isr in case.parts.values() for b in reps})
    first = draw(st.sampled_from(holders))  # drain at least one broker that has something to move
    more = draw(st.lists(st.sampled_from(known), max_size=min(2, len(known) - 2), unique=True))
    drained = sorted({first, *more})
    exclude = draw(st.lists(st.sampled_from(known), max_size=3, unique=True))
    cap = draw(st.one_of(st.none(), st.integers(1, 12)))
    disk = draw(st.sampled_from([1.0, 0.85, 0.6]))
    req = DrainRequest(brokers=drained, exclude=exclude, max_replicas_per_broker=cap, max_disk_usage=disk)
    return case, req


# ------------------------------------------------------------------------------------------------
# Reference model of the rules (deliberately naive)
# ------------------------------------------------------------------------------------------------


def rack_ok(old: tuple[int, ...], new: tuple[int, ...], rack_of: dict[int, str | None]) -> bool:
    before = Counter(rack_of[b] for b in old)
    after = Counter(rack_of[b] for b in new)
    return all(n <= max(1, before.get(r, 0)) for r, n in after.items())


def final_counts(case: Case, plan: Plan) -> Counter[int]:
    counts = Counter(b for reps, _isr in case.parts.values() for b in reps)
    for m in plan.moves:
        counts.update(m.added)
    return counts


def check_plan(case: Case, req: DrainRequest, plan: Plan) -> None:
    drained, excluded = set(req.brokers), set(req.exclude)
    moved = {(m.topic, m.partition) for m in plan.moves}
    stuck = {(u.topic, u.partition) for u in plan.unplaceable}
    must_move = {k for k, (reps, _isr) in case.parts.items() if drained & set(reps)}
    assert moved | stuck == must_move and not moved & stuck
    for m in plan.moves:
        old, new = m.old_replicas, m.new_replicas
        reps, isr = case.parts[(m.topic, m.partition)]
        assert old == reps
        assert len(new) == len(old)  # RF preserved
        assert len(set(new)) == len(new)  # no duplicates
        for o, n in zip(old, new, strict=True):
            if o in drained:
                assert n not in drained and n not in excluded and n in case.alive and n not in case.broken
            else:
                assert n == o  # minimal movement: everything else stays, in place
        assert rack_ok(old, new, case.rack_of)
        assert set(isr) & set(new)
    counts = final_counts(case, plan)
    bytes_in: Counter[int] = Counter()
    for m in plan.moves:
        for b in m.added:
            bytes_in[b] += case.size[(m.topic, m.partition)]
    assert dict(bytes_in) == {b: v for b, v in plan.cost.per_broker_bytes_in.items()}
    for b in plan.cost.per_broker_in:
        if req.max_replicas_per_broker is not None:
            assert counts[b] <= req.max_replicas_per_broker
        if b in case.disk_total:
            assert case.disk_used[b] + bytes_in[b] <= req.max_disk_usage * case.disk_total[b] + 1e-6
    assert validate_plan(case.snapshot, plan.moves, max_disk_usage=req.max_disk_usage) == []


def brute_force_has_target(case: Case, req: DrainRequest, plan: Plan, topic: str, partition: int) -> bool:
    """Does any assignment of this partition's drained replicas satisfy every rule (end-of-plan capacity)?"""
    old, isr = case.parts[(topic, partition)]
    drained = set(req.brokers)
    kept = [b for b in old if b not in drained]
    if not set(kept) & set(isr):
        return False
    counts = final_counts(case, plan)
    size = case.size[(topic, partition)]

    def eligible(b: int) -> bool:
        if b not in case.alive or b in drained or b in req.exclude or b in case.broken or b in old:
            return False
        if req.max_replicas_per_broker is not None and counts.get(b, 0) + 1 > req.max_replicas_per_broker:
            return False
        if b not in case.disk_total:
            return True
        used = case.disk_used[b] + plan.cost.per_broker_bytes_in.get(b, 0.0)
        return (used + size) / case.disk_total[b] <= req.max_disk_usage

    pool = [b for b in sorted(case.known) if eligible(b)]
    slots = [i for i, b in enumerate(old) if b in drained]
    for targets in itertools.permutations(pool, len(slots)):
        new = list(old)
        for pos, b in zip(slots, targets, strict=True):
            new[pos] = b
        if rack_ok(old, tuple(new), case.rack_of):
            return True
    return False


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------


@SETTINGS
@given(drain_cases())
def test_every_plan_keeps_every_rule(data: tuple[Case, DrainRequest]) -> None:
    case, req = data
    try:
        plan = plan_moves(case.snapshot, req, allow_partial=True)
    except ConfigError:
        assert set(req.brokers) | set(req.exclude) >= case.known
        event("config error")
        return
    event("some unplaceable" if plan.unplaceable else "all placed")
    for u in plan.unplaceable:
        event("why: " + ("isr" if "in-sync" in u.reason else "disk" if "disk" in u.reason else "other"))
    event("moves" if plan.moves else "no moves")
    check_plan(case, req, plan)
    # Unplaceable means unplaceable: no valid target even by exhaustive search (capacity as left at
    # the end of the plan, which is at most what the planner had when it gave up).
    for u in plan.unplaceable:
        assert not brute_force_has_target(case, req, plan, u.topic, u.partition), u
    # And the search agrees every placed partition was placeable (capacity as at the start).
    for m in plan.moves:
        assert brute_force_has_target(case, req, Plan([], PlanCost()), m.topic, m.partition)
    # Deterministic: the same input gives the same plan.
    assert plan_moves(case.snapshot, req, allow_partial=True) == plan
    # Without allow_partial: the same plan, or PlanningError naming exactly the same partitions.
    try:
        strict = plan_moves(case.snapshot, req)
    except PlanningError as e:
        assert e.unplaceable == plan.unplaceable
        for u in e.unplaceable:
            assert u.name in str(e)
    else:
        assert plan.ok and strict == plan


@SETTINGS
@given(clusters(), st.data())
def test_replace_rules(case: Case, data: st.DataObject) -> None:
    known = sorted(case.known)
    old = data.draw(st.sampled_from(known))
    new = data.draw(st.sampled_from(known))
    req = ReplaceRequest(old_broker=old, new_broker=new)
    try:
        plan = plan_moves(case.snapshot, req, allow_partial=True)
    except ConfigError:
        assert old == new or new not in case.alive or new in case.broken
        return
    rack = racks_of(case.snapshot)
    for m in plan.moves:
        assert m.new_replicas == tuple(new if b == old else b for b in m.old_replicas)
        assert rack_ok(m.old_replicas, m.new_replicas, case.rack_of)
    assert validate_plan(case.snapshot, plan.moves) == []
    for u in plan.unplaceable:
        reps, isr = case.parts[(u.topic, u.partition)]
        candidate = tuple(new if b == old else b for b in reps)
        isr_kept = set(isr) & (set(reps) - {old})
        assert new in reps or not rack_ok(reps, candidate, case.rack_of) or not isr_kept, (u, rack.get(new))
