"""Property tests: random clusters and requests, every plan and guard checked against a naive model.

The clusters have what real ones have and the issue-14 defects hid in: down brokers still listed in
stale ISRs, brokers gone from the broker list, unknown liveness, mixed replication factors, uneven
racks, rackless brokers among racked ones (and clusters with no racks at all), several log dirs per
broker (sized, unsized, offline), and skewed partition sizes (most small, a few huge).

Invariants (each checked on every generated example):

* every plan keeps every rule: only drained replicas move, in place; RF kept; no duplicate; targets
  alive, not drained/excluded, with an online dir, with a rack in a rack-aware cluster; no rack gains
  a replica it may not; a live in-sync replica (``effective_isr``) stays; caps and every log dir's
  ceiling hold (the packing is re-done here naively); ``validate_plan`` agrees (defects 1, 3, 5);
* unplaceable means unplaceable: an exhaustive search finds no target against the plan's final
  loads, and every placed partition had one at the start; plans are deterministic;
* bytes bound (defect 4): heaviest receiver of each rack <= max_j (B_R - s_j) / (n_R - k_j) + s_j,
  and <= B_R / n_R + s_max where no receiver of R already held the partition; and the sharper
  <= (B_R + (n_R - 1 - k_j) s_j) / (n_R - k_j) for every sized replica j on the heaviest receiver
  (i.e. <= B_R / n_R + s_j with no exclusions: within its smallest replica of the average);
* count spread (defect 7): with unknown sizes, max - min replicas received per receiver of a rack is
  the least any assignment of the same replicas to that rack achieves (computed by max-flow);
* ``validate_plan`` accepts a random move exactly when the naive model does;
* a replica needs one log dir with room: it is planned, and a move onto the broker is valid, exactly
  when some single dir has the room under the ceiling -- never the sum over dirs (defect 3);
* ``removal_impact`` matches the model: a down broker never holds the surviving copy (defect 2).

Each invariant was also checked to fail when its defect is put back (listed ISR in the planner,
a down broker as surviving copy, capacity summed over dirs, counts-first balance, no repair pass,
rackless receivers). Examples are derandomized (the same every run: no test passes or fails by
chance); a longer, random run is recorded in bench/RESULTS.md (``PROPERTY_EXAMPLES=10000``).
"""

from __future__ import annotations

import itertools
import math
import os
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kafka_medic.errors import ConfigError
from kafka_medic.planner import DrainRequest, Move, Plan, PlanningError, ReplaceRequest, plan_moves
from kafka_medic.safety import removal_impact, validate_plan
from kafka_medic.snapshot import REPLICA_COLUMNS, ClusterSnapshot

RACKS = ["az-a", "az-b", "az-c", "az-d"]
# The default suite: 150 derandomized examples per property (the same every run, so nothing here
# passes or fails by chance). PROPERTY_EXAMPLES=N: N freshly random examples (the longer run
# recorded in bench/RESULTS.md). Plain settings objects, not registered profiles, so other test
# files' hypothesis settings are left alone.
_LONG = os.environ.get("PROPERTY_EXAMPLES")
SETTINGS = settings(
    max_examples=int(_LONG) if _LONG else 150,
    derandomize=not _LONG,
    deadline=None,
    suppress_health_check=list(HealthCheck) if _LONG else [HealthCheck.too_slow],
)

Key = tuple[str, int]


@dataclass
class Case:
    """A generated cluster plus the plain-Python facts the model checks against."""

    snapshot: ClusterSnapshot
    rack_of: dict[int, str | None]  # every known broker (missing ones -> None)
    alive: set[int]
    down: set[int]  # alive=False, or named in a replica list but not in the broker frame
    known: set[int]
    broken: set[int]  # brokers whose every log dir is offline
    rackless: set[int]  # listed brokers without a rack in a rack-aware cluster
    parts: dict[Key, tuple[tuple[int, ...], tuple[int, ...], int]]  # key -> (replicas, isr, min_isr)
    size: dict[Key, float]  # unknown -> 0
    dirs: dict[int, list[tuple[float, float]]]  # (total, used) per online dir, brokers with all sizes known


SIZES = st.one_of(st.none(), st.integers(0, 50), st.integers(0, 2000), st.integers(20_000, 200_000))


@st.composite
def clusters(draw: st.DrawFn, *, sized: bool = True, disks: bool = True, stale: int = 2, down_in_10: int = 2) -> Case:
    """``stale``: out of 6, how often a down broker stays listed in an ISR (metadata not caught up);
    ``down_in_10``: out of 10, how often a broker is down."""
    n = draw(st.integers(3, 12))
    ids = sorted(draw(st.sets(st.integers(0, 40), min_size=n, max_size=n)))
    layout = draw(st.sampled_from(["racked", "racked", "some rackless", "no racks"]))
    n_racks = draw(st.integers(1, 4))
    racks: dict[int, str | None] = {}
    for b in ids:
        if layout == "no racks" or (layout == "some rackless" and draw(st.integers(0, 3)) == 0):
            racks[b] = None
        else:
            racks[b] = draw(st.sampled_from(RACKS[:n_racks]))  # uneven: racks drawn per broker
    dead = {b for b in ids if draw(st.integers(0, 9)) < down_in_10}
    missing = {b for b in dead if draw(st.booleans())}  # gone from the broker list, known from replicas
    unknown_liveness = {b for b in ids if b not in dead and draw(st.integers(0, 9)) == 0}
    rows, replica_rows = [], []
    size_of: dict[Key, float] = {}
    for p in range(draw(st.integers(1, 20))):
        topic = f"t{p % 3}"
        rf = min(n, draw(st.sampled_from([3, 2, 1, 3, 4])))  # mixed RF
        replicas = tuple(draw(st.permutations(ids))[:rf])
        # ISR: mostly the live replicas; down brokers stay listed (stale) now and then.
        isr = tuple(b for b in replicas if draw(st.integers(0, 5)) > (5 - stale if b in dead else 0))
        leader = isr[0] if isr else -1
        min_isr = draw(st.integers(1, 3))
        rows.append((topic, p, leader, replicas, isr, min_isr))
        size = draw(SIZES) if sized else None
        size_of[(topic, p)] = float(size or 0)
        for pos, b in enumerate(replicas):
            known_size = math.nan if size is None else float(size)
            replica_rows.append((topic, p, b, pos, b in isr, b == leader, known_size))
    partitions = pd.DataFrame(rows, columns=["topic", "partition", "leader", "replicas", "isr", "min_isr"])
    listed = [b for b in ids if b not in missing]
    brokers = pd.DataFrame(
        {
            "broker_id": listed,
            "rack": [racks[b] for b in listed],
            "alive": [None if b in unknown_liveness else b not in dead for b in listed],
        }
    )
    log_rows: list[tuple[Any, ...]] = []
    broken: set[int] = set()
    dirs: dict[int, list[tuple[float, float]]] = {}
    for b in listed:
        kinds = draw(st.lists(st.sampled_from(["sized", "sized", "unsized", "offline"]), max_size=3)) if disks else []
        online = [k for k in kinds if k != "offline"]
        if kinds and not online:
            broken.add(b)
        sized_dirs = []
        for i, kind in enumerate(kinds):
            if kind == "sized":
                # Rooms on the scale of the partition sizes, so one dir can be too small where two
                # together would not be (the summed-capacity defect).
                total = float(draw(st.sampled_from([4_000, 40_000, 400_000])))
                used = (
                    float(draw(st.integers(0, int(total))))
                    if draw(st.booleans())
                    else total - draw(st.sampled_from([0, 500, 3_000, 30_000, 150_000]))
                )
                used = max(used, 0.0)
                log_rows.append((b, f"/d{i}", None, total, total - used))
                sized_dirs.append((total, used))
            elif kind == "unsized":
                log_rows.append((b, f"/d{i}", None, math.nan, math.nan))
            else:
                log_rows.append((b, f"/d{i}", "KafkaStorageException", 1000.0, 1000.0))
        if online and all(k == "sized" for k in online):
            dirs[b] = sized_dirs
    log_dirs = pd.DataFrame(log_rows, columns=["broker_id", "path", "error", "total_bytes", "usable_bytes"])
    snapshot = ClusterSnapshot(
        cluster="prop",
        brokers=brokers,
        partitions=partitions,
        replicas=pd.DataFrame(replica_rows, columns=list(REPLICA_COLUMNS)),
        log_dirs=log_dirs,
    )
    known = set(listed) | {b for r in partitions["replicas"] for b in r}
    rack_of = {b: (racks[b] if b in listed else None) for b in known}
    alive = set(listed) - dead - unknown_liveness
    down = (dead & set(listed)) | (known - set(listed))
    racked = any(racks[b] is not None for b in listed)
    rackless = {b for b in listed if racked and racks[b] is None}
    parts = {(t, p): (r, i, m) for t, p, _l, r, i, m in rows}
    return Case(snapshot, rack_of, alive, down, known, broken, rackless, parts, size_of, dirs)


@st.composite
def drain_requests(draw: st.DrawFn, case: Case, *, caps: bool = True, ceiling: bool = True) -> DrainRequest:
    known = sorted(case.known)
    holders = sorted({b for reps, _isr, _m in case.parts.values() for b in reps})
    first = draw(st.sampled_from(holders))  # drain at least one broker that has something to move
    more = draw(st.lists(st.sampled_from(known), max_size=max(0, min(2, len(known) - 2)), unique=True))
    exclude = draw(st.lists(st.sampled_from(known), max_size=3, unique=True))
    cap = draw(st.one_of(st.none(), st.integers(1, 12))) if caps else None
    disk = draw(st.sampled_from([1.0, 0.85, 0.6])) if ceiling else 1.0
    return DrainRequest(
        brokers=sorted({first, *more}), exclude=exclude, max_replicas_per_broker=cap, max_disk_usage=disk
    )


# ------------------------------------------------------------------------------------------------
# The naive model of the rules
# ------------------------------------------------------------------------------------------------


def rack_ok(old: Sequence[int], new: Sequence[int], rack_of: dict[int, str | None]) -> bool:
    before = Counter(rack_of.get(b) for b in old)
    after = Counter(rack_of.get(b) for b in new)
    return all(n <= max(1, before.get(r, 0)) for r, n in after.items())


def live_isr(case: Case, key: Key) -> set[int]:
    return {b for b in case.parts[key][1] if b not in case.down}


def packs(dirs: list[tuple[float, float]], sizes: Iterable[float], ceiling: float) -> bool:
    """Largest first, each on the dir with the most room under the ceiling (first such dir on a tie)."""
    state = [list(d) for d in dirs]
    for s in sorted(sizes, reverse=True):
        rooms = [ceiling * t - u for t, u in state]
        i = rooms.index(max(rooms))
        if state[i][1] + s > ceiling * state[i][0]:
            return False
        state[i][1] += s
    return True


def can_receive(case: Case, b: int) -> bool:
    return b in case.alive and b not in case.broken and b not in case.rackless


def incoming(case: Case, moves: Iterable[Move]) -> dict[int, list[float]]:
    got: dict[int, list[float]] = defaultdict(list)
    for m in moves:
        for b in m.added:
            got[b].append(case.size[(m.topic, m.partition)])
    return got


def counts_after(case: Case, moves: Iterable[Move]) -> Counter[int]:
    counts = Counter(b for reps, _isr, _m in case.parts.values() for b in reps)
    for m in moves:
        counts.update(m.added)
    return counts


def check_drain(case: Case, req: DrainRequest, plan: Plan) -> None:
    drained, excluded = set(req.brokers), set(req.exclude)
    moved = {(m.topic, m.partition) for m in plan.moves}
    stuck = {(u.topic, u.partition) for u in plan.unplaceable}
    must_move = {k for k, (reps, _isr, _m) in case.parts.items() if drained & set(reps)}
    assert moved | stuck == must_move and not moved & stuck
    for m in plan.moves:
        old, new = m.old_replicas, m.new_replicas
        assert old == case.parts[(m.topic, m.partition)][0]
        assert len(new) == len(old)  # RF preserved
        assert len(set(new)) == len(new)  # no duplicates
        for o, n in zip(old, new, strict=True):
            if o in drained:
                assert n not in drained and n not in excluded and can_receive(case, n)
            else:
                assert n == o  # minimal movement: everything else stays, in place
        assert rack_ok(old, new, case.rack_of)
        assert live_isr(case, (m.topic, m.partition)) & set(new), "a live in-sync replica stays"
    got = incoming(case, plan.moves)
    assert {b: sum(v) for b, v in got.items()} == plan.cost.per_broker_bytes_in
    counts = counts_after(case, plan.moves)
    for b in got:
        if req.max_replicas_per_broker is not None:
            assert counts[b] <= req.max_replicas_per_broker
        if b in case.dirs:
            assert packs(case.dirs[b], got[b], req.max_disk_usage)
    assert validate_plan(case.snapshot, plan.moves, max_disk_usage=req.max_disk_usage) == []


def has_target(case: Case, req: DrainRequest, moves: list[Move], key: Key) -> bool:
    """Exhaustive: can this partition's drained replicas go anywhere, against the loads ``moves`` leave?"""
    old, _isr, _m = case.parts[key]
    drained = set(req.brokers)
    if not live_isr(case, key) & {b for b in old if b not in drained}:
        return False
    counts, got = counts_after(case, moves), incoming(case, moves)

    def eligible(b: int) -> bool:
        if not can_receive(case, b) or b in drained or b in req.exclude or b in old:
            return False
        if req.max_replicas_per_broker is not None and counts[b] + 1 > req.max_replicas_per_broker:
            return False
        return b not in case.dirs or packs(case.dirs[b], [*got[b], case.size[key]], req.max_disk_usage)

    pool = [b for b in sorted(case.known) if eligible(b)]
    slots = [i for i, b in enumerate(old) if b in drained]
    for targets in itertools.permutations(pool, len(slots)):
        new = list(old)
        for pos, b in zip(slots, targets, strict=True):
            new[pos] = b
        if rack_ok(old, new, case.rack_of):
            return True
    return False


def receivers_by_rack(case: Case, req: DrainRequest) -> dict[str | None, list[int]]:
    out: dict[str | None, list[int]] = defaultdict(list)
    for b in sorted(case.known):
        if can_receive(case, b) and b not in req.brokers and b not in req.exclude:
            out[case.rack_of[b]].append(b)
    return out


def max_flow(edges: dict[str, dict[str, int]], source: str, sink: str) -> int:
    """Edmonds-Karp on a tiny graph (edges: u -> v -> capacity)."""
    cap: dict[str, dict[str, int]] = defaultdict(dict)
    for u, vs in edges.items():
        for v, c in vs.items():
            cap[u][v] = cap[u].get(v, 0) + c
            cap[v].setdefault(u, 0)
    flow = 0
    while True:
        parent = {source: source}
        queue = deque([source])
        while queue and sink not in parent:
            u = queue.popleft()
            for v, c in cap[u].items():
                if c > 0 and v not in parent:
                    parent[v] = u
                    queue.append(v)
        if sink not in parent:
            return flow
        push, v = math.inf, sink
        while v != source:
            push = min(push, cap[parent[v]][v])
            v = parent[v]
        v = sink
        while v != source:
            cap[parent[v]][v] -= push
            cap[v][parent[v]] += push
            v = parent[v]
        flow += int(push)


def least_spread(groups: list[tuple[int, set[int]]], receivers: list[int]) -> int:
    """Least max - min of replicas per receiver over every assignment sending each group's ``m``
    replicas to distinct receivers of its set: (least possible max) - (largest possible min),
    which one assignment reaches at once (decreasing minimisation on an M-convex set)."""

    def flow(per_receiver: int) -> int:
        edges: dict[str, dict[str, int]] = defaultdict(dict)
        for g, (m, allowed) in enumerate(groups):
            edges["s"][f"g{g}"] = m
            for b in allowed:
                edges[f"g{g}"][f"b{b}"] = 1
        for b in receivers:
            edges[f"b{b}"]["t"] = per_receiver
        return max_flow(edges, "s", "t")

    total = sum(m for m, _a in groups)
    hi = next(h for h in range(total + 1) if flow(h) == total)
    lo = max(low for low in range(total + 1) if flow(low) == low * len(receivers))
    return hi - lo


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_every_plan_keeps_every_rule(data: st.DataObject) -> None:
    case = data.draw(clusters())
    req = data.draw(drain_requests(case))
    try:
        plan = plan_moves(case.snapshot, req, allow_partial=True)
    except ConfigError:
        # Refused requests: nothing left to receive, or no broker listed at all (every one gone).
        assert set(req.brokers) | set(req.exclude) >= case.known or case.snapshot.brokers.empty
        event("config error")
        return
    event("some unplaceable" if plan.unplaceable else "all placed")
    for u in plan.unplaceable:
        event("why: " + ("isr" if "in-sync" in u.reason else "disk" if "disk" in u.reason else "other"))
    event(f"down brokers: {min(len(case.down), 3)}")
    drained = set(req.brokers)
    for key, (reps, isr, _m) in case.parts.items():
        kept = set(reps) - drained
        if kept != set(reps) and kept & set(isr) and not kept & live_isr(case, key):
            event("a partition whose only kept in-sync replica is down (defect 1)")
    if case.rackless:
        event("rackless brokers in a rack-aware cluster (defect 5)")
    if any(len(d) > 1 for d in case.dirs.values()):
        event("several sized log dirs on a broker (defect 3)")
    check_drain(case, req, plan)
    for u in plan.unplaceable:
        assert not has_target(case, req, plan.moves, (u.topic, u.partition)), u
    for m in plan.moves:
        assert has_target(case, req, [], (m.topic, m.partition))
    assert plan_moves(case.snapshot, req, allow_partial=True) == plan  # deterministic
    try:
        strict = plan_moves(case.snapshot, req)
    except PlanningError as e:
        assert e.unplaceable == plan.unplaceable
        for u in e.unplaceable:
            assert u.name in str(e)
    else:
        assert plan.ok and strict == plan


@SETTINGS
@given(st.data())
def test_bytes_received_within_the_stated_bound(data: st.DataObject) -> None:
    case = data.draw(clusters(disks=False))
    req = data.draw(drain_requests(case, caps=False, ceiling=False))
    try:
        plan = plan_moves(case.snapshot, req, allow_partial=True)
    except ConfigError:
        return
    placed: dict[str | None, list[tuple[float, int]]] = defaultdict(list)  # rack -> (s_j, k_j)
    on_receiver: dict[str | None, list[tuple[float, int, int]]] = defaultdict(list)  # (s_j, k_j, broker)
    for m in plan.moves:
        for b in m.added:
            rack = case.rack_of[b]
            others = sum(1 for x in m.new_replicas if x != b and case.rack_of[x] == rack and can_receive(case, x)
                         and x not in req.brokers and x not in req.exclude)  # fmt: skip
            placed[rack].append((case.size[(m.topic, m.partition)], others))
            on_receiver[rack].append((case.size[(m.topic, m.partition)], others, b))
    for rack, receivers in receivers_by_rack(case, req).items():
        if not placed[rack]:
            continue
        loads = [plan.cost.per_broker_bytes_in.get(b, 0.0) for b in receivers]
        total, n, s_max = sum(loads), len(receivers), max(s for s, _k in placed[rack])
        bound = max((total - s) / (n - k) + s for s, k in placed[rack])
        assert max(loads) <= bound * (1 + 1e-12), (rack, loads, bound)
        # The repair's certificate: no replica on the heaviest receiver could move to a lighter one.
        heaviest = receivers[loads.index(max(loads))]
        on_it = [(s, k) for s, k, b in on_receiver[rack] if b == heaviest and s > 0]
        if on_it:
            sharp = min((total + (n - 1 - k) * s) / (n - k) for s, k in on_it)
            assert max(loads) <= sharp * (1 + 1e-12), (rack, loads, sharp)
        if all(k == 0 for _s, k in placed[rack]):
            lower = max(total / n, s_max)  # no plan sending these replicas to this rack does better
            assert max(loads) <= lower + s_max * (1 + 1e-12)
            event("bound: no exclusions")
        else:
            event("bound: with exclusions")


@SETTINGS
@given(st.data())
def test_count_spread_is_the_least_possible_when_sizes_are_unknown(data: st.DataObject) -> None:
    case = data.draw(clusters(sized=False, disks=False))
    req = data.draw(drain_requests(case, caps=False, ceiling=False))
    try:
        plan = plan_moves(case.snapshot, req, allow_partial=True)
    except ConfigError:
        return
    for rack, receivers in receivers_by_rack(case, req).items():
        groups = []
        for m in plan.moves:
            here = [b for b in m.added if case.rack_of[b] == rack]
            if here:
                kept = {b for b in m.new_replicas if b not in m.added}
                groups.append((len(here), set(receivers) - kept))
        if not groups:
            continue
        got = [plan.cost.per_broker_in.get(b, 0) for b in receivers]
        least = least_spread(groups, receivers)
        assert max(got) - min(got) == least, (rack, got, least)
        event(f"least spread {min(least, 2)}")


@SETTINGS
@given(st.data())
def test_replace_rules(data: st.DataObject) -> None:
    case = data.draw(clusters())
    known = sorted(case.known)
    old = data.draw(st.sampled_from(known))
    new = data.draw(st.sampled_from(known))
    req = ReplaceRequest(old_broker=old, new_broker=new)
    try:
        plan = plan_moves(case.snapshot, req, allow_partial=True)
    except ConfigError:
        assert old == new or not can_receive(case, new)
        return
    for m in plan.moves:
        assert m.new_replicas == tuple(new if b == old else b for b in m.old_replicas)
        assert rack_ok(m.old_replicas, m.new_replicas, case.rack_of)
        assert live_isr(case, (m.topic, m.partition)) & set(m.new_replicas)
    if new in case.dirs:
        assert packs(case.dirs[new], incoming(case, plan.moves)[new], 0.85), "the default ceiling applies"
    assert validate_plan(case.snapshot, plan.moves) == []
    for u in plan.unplaceable:
        key = (u.topic, u.partition)
        reps = case.parts[key][0]
        candidate = tuple(new if b == old else b for b in reps)
        fits = new not in case.dirs or packs(case.dirs[new], [*incoming(case, plan.moves)[new], case.size[key]], 0.85)
        assert new in reps or not rack_ok(reps, candidate, case.rack_of) or not live_isr(case, key) - {old} or not fits


@st.composite
def random_moves(draw: st.DrawFn, case: Case) -> list[Move]:
    keys = sorted(case.parts)
    moves = []
    targets = sorted(b for b in case.known if can_receive(case, b)) or sorted(case.known)
    for key in draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3, unique=True)):
        old = case.parts[key][0]
        pool = st.one_of(st.sampled_from(targets), st.sampled_from(sorted(case.known | {99})))
        new = tuple(b if draw(st.integers(0, 3)) else draw(pool) for b in old)
        moves.append(Move(key[0], key[1], old, new))
    return moves


@SETTINGS
@given(st.data())
def test_validate_plan_accepts_exactly_what_the_model_accepts(data: st.DataObject) -> None:
    case = data.draw(clusters())
    moves = data.draw(random_moves(case))
    ceiling = data.draw(st.sampled_from([1.0, 0.85]))
    ok = True
    for m in moves:
        old, new = m.old_replicas, m.new_replicas
        added = [b for b in new if b not in old]
        ok &= len(set(new)) == len(new) and all(b in case.known and can_receive(case, b) for b in added)
        ok &= rack_ok(old, new, case.rack_of) and bool(live_isr(case, (m.topic, m.partition)) & set(new))
    for b, sizes in incoming(case, [m for m in moves if b_ok(case, m)]).items():
        ok &= b not in case.dirs or packs(case.dirs[b], sizes, ceiling)
    violations = validate_plan(case.snapshot, moves, max_disk_usage=ceiling)
    event("accepted" if not violations else "refused")
    assert (violations == []) == ok, violations


def b_ok(case: Case, m: Move) -> bool:
    """Moves whose added brokers are all real receivers: only those reach the capacity check."""
    return all(b in case.known and can_receive(case, b) for b in m.added)


@SETTINGS
@given(st.data())
def test_removal_impact_matches_the_model(data: st.DataObject) -> None:
    case = data.draw(clusters(sized=False, disks=False, stale=4, down_in_10=4))
    in_isr = sorted({b for _r, isr, _m in case.parts.values() for b in isr}) or sorted(case.known)
    removed = set(data.draw(st.lists(st.sampled_from(in_isr), min_size=1, max_size=3)))
    impact = removal_impact(case.snapshot, removed)
    offline, under = [], []
    for key, (_reps, isr, min_isr) in sorted(case.parts.items()):
        if not removed & set(isr):
            continue
        live = live_isr(case, key)
        surviving = live - removed  # a down broker never holds the surviving copy
        if not surviving:
            offline.append(key)
        elif live & removed and len(surviving) < min_isr:
            under.append(key)
    assert impact.offline == offline
    assert impact.under_min_isr == under
    event("unsafe" if offline or under else "safe")
    if any(not live_isr(case, k) and len(case.parts[k][1]) > 1 for k in offline):
        event("offline because every other ISR member is down too (defect 2)")


@SETTINGS
@given(
    dirs=st.lists(st.tuples(st.integers(1, 1000), st.integers(0, 1000)), min_size=1, max_size=3),
    size=st.integers(0, 2000),
    ceiling=st.sampled_from([1.0, 0.85, 0.5]),
)
def test_one_replica_needs_one_dir_with_room(dirs: list[tuple[int, int]], size: int, ceiling: float) -> None:
    """A replica lives in one log dir: placeable iff some single dir has the room (never the sum)."""
    sized = [(float(t), float(min(u, t))) for t, u in dirs]  # (total, used)
    fits = any(used + size <= ceiling * total for total, used in sized)
    racks = {1: "a", 2: "b", 3: "c", 4: "a"}
    partitions = pd.DataFrame(
        [("t", 0, 2, (1, 2, 3), (1, 2, 3), 1)], columns=["topic", "partition", "leader", "replicas", "isr", "min_isr"]
    )
    snap = ClusterSnapshot(
        cluster="dirs",
        brokers=pd.DataFrame({"broker_id": list(racks), "rack": list(racks.values()), "alive": True}),
        partitions=partitions,
        replicas=pd.DataFrame(
            [("t", 0, b, i, True, b == 2, float(size)) for i, b in enumerate((1, 2, 3))], columns=list(REPLICA_COLUMNS)
        ),
        log_dirs=pd.DataFrame(
            [(4, f"/d{i}", None, t, t - u) for i, (t, u) in enumerate(sized)],
            columns=["broker_id", "path", "error", "total_bytes", "usable_bytes"],
        ),
    )
    move = Move("t", 0, (1, 2, 3), (4, 2, 3))
    assert (validate_plan(snap, [move], max_disk_usage=ceiling) == []) == fits
    plan = plan_moves(snap, DrainRequest(brokers=[1], max_disk_usage=ceiling), allow_partial=True)
    assert plan.moves == ([move] if fits else [])
    event("fits" if fits else "does not fit")
