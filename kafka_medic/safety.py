"""Safety guards: checks every automated change must pass, as pure functions of a snapshot.

Two questions are answered here, independently of how a plan was made (our planner, Kafka's own
``--generate``, or a human):

* ``validate_plan``: is this reassignment safe to submit against the cluster as it is now?
* ``removal_impact``: what happens if these brokers disappear right now (wiped, killed,
  restarted)? Used before replacing a broker and before each step of a rolling restart.

Nothing here talks to Kafka or Prefect; the snapshot is the only input.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from kafka_medic.errors import ConfigError, SafetyError
from kafka_medic.policy import DEFAULT_MOVE_MAX_DISK_USAGE
from kafka_medic.snapshot import ClusterSnapshot

PartitionKey = tuple[str, int]

# How many names an error message lists before it summarises the rest as "... and N more".
_MAX_NAMES_IN_MESSAGE = 50


class MoveLike(Protocol):
    """Anything shaped like ``kafka_medic.planner.Move`` (kept structural to avoid an import cycle)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def old_replicas(self) -> tuple[int, ...]: ...
    @property
    def new_replicas(self) -> tuple[int, ...]: ...


# ----------------------------------------------------------------------------------------------
# Small helpers shared with the planner
# ----------------------------------------------------------------------------------------------


def normalise_rack(value: Any) -> str | None:
    """pandas hands back NaN/None/"" for a missing rack; all mean "no rack"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value)
    return text or None


def racks_of(snapshot: ClusterSnapshot) -> dict[int, str | None]:
    """Broker id -> rack (None when unset). Brokers missing from the frame have no entry."""
    b = snapshot.brokers
    if b.empty:
        return {}
    return {int(i): normalise_rack(r) for i, r in zip(b["broker_id"], b["rack"], strict=True)}


def rack_spread(replicas: Sequence[int], rack_of: Mapping[int, str | None]) -> int:
    """Number of distinct racks a replica list covers. A missing/None rack counts as one "rack"."""
    return len({rack_of.get(b) for b in replicas})


def rack_counts(replicas: Sequence[int], rack_of: Mapping[int, str | None]) -> Counter[str | None]:
    return Counter(rack_of.get(b) for b in replicas)


def rack_concentration_increase(
    old: Sequence[int], new: Sequence[int], rack_of: Mapping[int, str | None]
) -> list[tuple[str | None, int, int]]:
    """Racks holding more replicas of the partition afterwards than allowed, as (rack, before, after).

    Allowed is one replica per rack, or as many as the rack already had (an existing violation
    may persist but not grow). This is the "never gains a second replica in one rack" rule; it
    implies the distinct-rack count cannot drop.
    """
    before = rack_counts(old, rack_of)
    after = rack_counts(new, rack_of)
    return sorted(
        ((r, before.get(r, 0), n) for r, n in after.items() if n > max(1, before.get(r, 0))),
        key=lambda t: (t[0] is None, t[0] or ""),
    )


def would_reduce_rf(old: Sequence[int], new: Sequence[int]) -> bool:
    """True if the new list keeps fewer distinct replicas than the old one."""
    return len(set(new)) < len(set(old))


def rack_aware(rack_of: Mapping[int, str | None]) -> bool:
    """True when some broker has a rack: AZ spread is then a rule every move must keep."""
    return any(r is not None for r in rack_of.values())


def rackless_brokers(rack_of: Mapping[int, str | None]) -> set[int]:
    """Brokers that may not receive a replica because their AZ is unknown (issue 14, defect 5).

    The rule: in a rack-aware cluster (some broker has a rack), a broker without one never
    receives a replica -- the planner does not pick it and ``validate_plan`` refuses a move onto it.
    Why refuse rather than count it as an AZ of its own: it sits in some real AZ, and with RF 3
    over 3 AZs that AZ always holds another replica of the partition, so "its own rack" let moves
    put two replicas in one AZ while passing as rack-safe. Unknown must read as unsafe. Its existing
    replicas may stay or be moved away (that only removes an unknown), and in a cluster where no
    broker has a rack there is no AZ spread to keep, so nothing is refused there.
    """
    if not rack_aware(rack_of):
        return set()
    return {b for b, r in rack_of.items() if r is None}


def known_broker_ids(snapshot: ClusterSnapshot) -> set[int]:
    """Brokers the cluster knows of: registered ones plus any id still named in a replica list.

    A dead broker may be missing from DescribeCluster yet still own replicas; it is real (you can
    drain or replace it), whereas an id found in neither place is a typo.
    """
    ids = {int(b) for b in snapshot.brokers["broker_id"]} if not snapshot.brokers.empty else set()
    if not snapshot.replicas.empty:
        ids.update(int(b) for b in snapshot.replicas["broker_id"].unique())
    elif not snapshot.partitions.empty:
        for reps in snapshot.partitions["replicas"]:
            ids.update(int(b) for b in reps)
    return ids


def down_broker_ids(snapshot: ClusterSnapshot) -> set[int]:
    """Brokers the snapshot knows are down: ``alive`` False (fenced, gone, or still listed while
    their listener refuses connections), and brokers named in a replica list but missing from the
    broker frame (not registered, so not serving -- also when the frame is empty: then no broker
    is known to serve, and a guard must not count any as holding a surviving copy). Unknown
    liveness (None/NaN) is not "down"."""
    b = snapshot.brokers
    out: set[int] = set()
    listed: set[int] = set()
    if b.empty or "alive" not in b.columns:
        return known_broker_ids(snapshot) - ({int(i) for i in b["broker_id"]} if not b.empty else set())
    for bid, alive in zip(b["broker_id"], b["alive"], strict=True):
        listed.add(int(bid))
        if alive is None or _isnan(alive) or alive is pd.NA:
            continue
        if not bool(alive):
            out.add(int(bid))
    return out | (known_broker_ids(snapshot) - listed)


def effective_isr(isr: Sequence[int], down: AbstractSet[int]) -> tuple[int, ...]:
    """THE definition of "in sync" for every guard and the planner: the ISR members not known down.

    Why one definition: the planner used to trust the ISR as listed while the validator dropped
    brokers it knew were down, so with a second broker down 5-10 % of fuzzed drain moves were
    planned and then refused, and the whole drain with them (issue 14, defect 1).
    Why "not down": metadata keeps a crashed broker in the ISR until its session expires, and the
    controller keeps the last member listed even after fencing it. Either way the copy sits on a
    broker that is not serving: it can neither feed a new replica nor be counted on to survive
    (issue 14, defect 2). The result may be empty -- the partition has no live in-sync copy.
    ``removal_impact`` still treats removing a *listed* member of such an ISR as losing a copy
    (its disk may hold the last one), so an empty result never makes a wipe look safe.
    """
    return tuple(b for b in isr if b not in down)


def _names(keys: Iterable[PartitionKey], limit: int = _MAX_NAMES_IN_MESSAGE) -> str:
    names = [f"{t}-{p}" for t, p in keys]
    if len(names) > limit:
        return ", ".join(names[:limit]) + f" ... and {len(names) - limit} more"
    return ", ".join(names)


class PartitionTable:
    """Read access to the partitions frame by row, normalising cells only when a row is read.

    The guards and the planner do per-partition logic on the few thousand rows a change touches,
    out of possibly millions; converting every cell up front (or building a dict of every key)
    would dominate their run time, and ``DataFrame.loc`` in a loop is slower still. Raw cells
    (tuples, lists or numpy arrays of ids) are kept as the frame holds them and can be scanned
    with set operations, which treat numpy and Python ints alike.
    """

    def __init__(self, snapshot: ClusterSnapshot) -> None:
        p = snapshot.partitions
        self._frame = p
        self.default_min_isr = int(snapshot.default_min_isr)
        if p.empty:
            self.raw_topics: list[Any] = []
            self.raw_partitions: list[Any] = []
            self.raw_replicas: list[Any] = []
            self.raw_isr: list[Any] = []
            self.raw_leaders: list[Any] = []
            self.raw_min_isr: list[Any] = []
            return
        self.raw_topics = p["topic"].tolist()
        self.raw_partitions = p["partition"].tolist()
        self.raw_replicas = p["replicas"].tolist()
        self.raw_isr = p["isr"].tolist()
        self.raw_leaders = p["leader"].tolist()
        self.raw_min_isr = p["min_isr"].tolist() if "min_isr" in p.columns else [None] * len(p)

    @classmethod
    def from_snapshot(cls, snapshot: ClusterSnapshot) -> PartitionTable:
        return cls(snapshot)

    def __len__(self) -> int:
        return len(self.raw_topics)

    def key(self, i: int) -> PartitionKey:
        return (str(self.raw_topics[i]), int(self.raw_partitions[i]))

    def replicas(self, i: int) -> tuple[int, ...]:
        return int_tuple(self.raw_replicas[i])

    def isr(self, i: int) -> tuple[int, ...]:
        return int_tuple(self.raw_isr[i])

    def leader(self, i: int) -> int:
        x = self.raw_leaders[i]
        return -1 if x is None or _isnan(x) else int(x)

    def min_isr(self, i: int) -> int:
        x = self.raw_min_isr[i]
        return self.default_min_isr if x is None or _isnan(x) else int(x)

    def known_min_isr(self, i: int) -> int | None:
        """The partition's min ISR as read from the cluster; None when nobody read it (no default:
        a guard that judges a destructive step on a guessed min ISR could take producers down)."""
        x = self.raw_min_isr[i]
        return None if x is None or _isnan(x) else int(x)

    def rows(self, keys: Sequence[PartitionKey]) -> list[int | None]:
        """Row of each (topic, partition), None when the cluster has no such partition."""
        if not keys or not self.raw_topics:
            return [None] * len(keys)
        index = pd.MultiIndex.from_arrays([self._frame["topic"], self._frame["partition"]])
        if index.is_unique:
            found = index.get_indexer(pd.MultiIndex.from_tuples(list(keys))).tolist()
            return [None if r < 0 else int(r) for r in found]
        first: dict[PartitionKey, int] = {}  # duplicated rows (a broken snapshot): first one wins
        for i in range(len(self)):
            first.setdefault(self.key(i), i)
        return [first.get(k) for k in keys]


def _isnan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def int_tuple(value: Any) -> tuple[int, ...]:
    """A replica/ISR cell as a tuple of ints (None or NaN -> empty; lists and numpy arrays accepted)."""
    if value is None or _isnan(value):
        return ()
    return tuple(int(b) for b in value)


def brokers_without_online_log_dir(snapshot: ClusterSnapshot) -> set[int]:
    """Brokers that report log dirs but none online: they cannot host a new replica."""
    ld = snapshot.log_dirs
    if ld is None or ld.empty:
        return set()
    has_dirs = {int(b) for b in ld["broker_id"]}
    has_online = {int(b) for b in ld.loc[ld["error"].isna(), "broker_id"]}
    return has_dirs - has_online


def log_dir_space(snapshot: ClusterSnapshot) -> dict[int, list[tuple[float, float]]]:
    """Broker -> [(total_bytes, used_bytes)] of each online log dir, in path order.

    Only brokers whose every online dir reports its size: for the others capacity is unknown and
    is not checked (documented on the requests). Offline dirs hold nothing new and are left out.
    """
    ld = snapshot.log_dirs
    if ld is None or ld.empty:
        return {}
    # Numbers may arrive as text (the snapshot accepts the health rules' convention): read as numbers.
    ids = pd.to_numeric(ld["broker_id"], errors="coerce").tolist()
    total = pd.to_numeric(ld["total_bytes"], errors="coerce").tolist()
    usable = pd.to_numeric(ld["usable_bytes"], errors="coerce").tolist()
    paths = ld["path"].tolist() if "path" in ld.columns else [""] * len(ld)
    out: dict[int, list[tuple[str, float, float]]] = {}
    unknown: set[int] = set()
    for b, err, path, t, u in zip(ids, ld["error"].tolist(), paths, total, usable, strict=True):
        if not (err is None or _isnan(err)):
            continue
        b = int(b)
        if math.isnan(t) or math.isnan(u) or t <= 0:
            unknown.add(b)
            continue
        out.setdefault(b, []).append((str(path), float(t), float(t) - float(u)))
    return {b: [(t, used) for _p, t, used in sorted(d)] for b, d in sorted(out.items()) if b not in unknown}


def worst_fit(dirs: Sequence[tuple[float, float]], size: float, max_disk_usage: float) -> int | None:
    """The log dir a new replica of ``size`` bytes is counted on: the online dir with the most room
    under ``max_disk_usage`` (first such dir on a tie); None when even that one cannot take it.

    ``dirs`` are (total, used) pairs. A replica lives in exactly one dir, so room is per dir, never
    summed over a broker's dirs (issue 14, defect 3).
    """
    best, best_room = None, -math.inf
    for i, (total, used) in enumerate(dirs):
        room = max_disk_usage * total - used
        if room > best_room:
            best, best_room = i, room
    if best is None or dirs[best][1] + size > max_disk_usage * dirs[best][0]:
        return None
    return best


def first_misfit(
    dirs: Sequence[tuple[float, float]], sizes: Sequence[float], max_disk_usage: float
) -> tuple[int, list[tuple[float, float]]] | None:
    """Pack ``sizes`` (already sorted largest first) onto ``dirs`` by ``worst_fit``; return the index
    of the first size that fits nowhere and the dirs as they were then, or None when all fit.

    Why worst-fit, largest first: it is the packing the planner builds (it places partitions largest
    first, each on the emptiest dir) and the one ``validate_plan`` re-checks, so the two agree.
    Kafka itself picks a new replica's dir by partition count, not by free space; the reassignment
    does not pin dirs, so this is the best packing, not a promise of Kafka's choice.
    """
    k, state = _pack(dirs, sizes, max_disk_usage)
    return None if k is None else (k, state)


def packed(
    dirs: Sequence[tuple[float, float]], sizes: Sequence[float], max_disk_usage: float
) -> list[tuple[float, float]] | None:
    """The dirs after ``first_misfit``'s packing of ``sizes`` (largest first), None if one does not fit."""
    k, state = _pack(dirs, sizes, max_disk_usage)
    return state if k is None else None


def _pack(
    dirs: Sequence[tuple[float, float]], sizes: Sequence[float], max_disk_usage: float
) -> tuple[int | None, list[tuple[float, float]]]:
    state = list(dirs)
    if len(state) == 1:  # the usual single data dir: a running sum decides, no search
        total, used = state[0]
        for k, size in enumerate(sizes):
            if used + size > max_disk_usage * total:
                return k, [(total, used)]
            used += size
        return None, [(total, used)]
    for k, size in enumerate(sizes):
        i = worst_fit(state, size, max_disk_usage)
        if i is None:
            return k, state
        state[i] = (state[i][0], state[i][1] + size)
    return None, state


def partition_size_map(snapshot: ClusterSnapshot, keys: Sequence[PartitionKey]) -> dict[PartitionKey, float]:
    """(topic, partition) -> size in bytes, NaN when no replica reports a size.

    The size of a partition is its largest known replica: followers copy the leader, so the
    biggest replica is what a new replica will have to fetch (a lagging or freshly added
    replica under-reports).
    """
    if not keys:
        return {}
    r = snapshot.replicas
    if r.empty or "size_bytes" not in r.columns:
        return dict.fromkeys(keys, math.nan)
    if 4 * len(keys) < len(r):  # a drain touches a few partitions of many: group only their topics' rows
        r = r[r["topic"].isin({t for t, _p in keys})]
    by_partition = r.groupby(["topic", "partition"], sort=False)["size_bytes"].max()
    wanted = pd.MultiIndex.from_tuples(list(keys), names=["topic", "partition"])
    values = by_partition.reindex(wanted).to_numpy(dtype=float)
    return dict(zip(keys, values.tolist(), strict=True))


def in_flight_reassignments(snapshot: ClusterSnapshot) -> set[PartitionKey]:
    r = snapshot.reassignments
    if r is None or r.empty:
        return set()
    return {(str(t), int(p)) for t, p in zip(r["topic"], r["partition"], strict=True)}


# ----------------------------------------------------------------------------------------------
# Plan validation
# ----------------------------------------------------------------------------------------------


def validate_plan(
    snapshot: ClusterSnapshot, moves: Iterable[MoveLike], *, max_disk_usage: float | None = None
) -> list[str]:
    """Every reason this reassignment is unsafe to submit now; [] means safe.

    Checks per move: the partition exists and appears once in the plan; the plan is not stale
    (its ``old_replicas`` are the cluster's current replicas, else it was computed for another
    state); no reassignment is already in flight for it (submitting would silently replace it);
    replication factor not reduced; no broker listed twice; every added broker is known, alive
    and has an online log dir; rack spread not reduced and no rack gains a second replica (an existing violation may
    persist, not grow); at least one current in-sync replica stays in the list (otherwise the new
    replicas have nobody in sync to copy from and the partition could go offline) -- judged on
    ``effective_isr``, so a crashed broker still listed in a stale ISR does not count.
    In a rack-aware cluster no target may lack a rack (``rackless_brokers``). Per target broker,
    the replicas it would receive must fit its online log dirs, each dir at most
    ``max_disk_usage`` full (default: the policy's ``move_max_disk_usage``; pass the request's own
    ceiling to check a plan made with another), packed as ``first_misfit`` packs them; brokers
    whose dir sizes are unknown are not checked.
    """
    ceiling = DEFAULT_MOVE_MAX_DISK_USAGE if max_disk_usage is None else max_disk_usage
    if not 0 < ceiling <= 1:
        raise ConfigError(f"max_disk_usage must be in (0, 1], got {ceiling!r}")
    table = PartitionTable.from_snapshot(snapshot)
    rack_of = racks_of(snapshot)
    alive = snapshot.alive_broker_ids if not snapshot.brokers.empty else set()
    known = known_broker_ids(snapshot)
    no_log_dir = brokers_without_online_log_dir(snapshot)
    in_flight = in_flight_reassignments(snapshot)
    down = down_broker_ids(snapshot)
    no_rack = rackless_brokers({**rack_of, **dict.fromkeys(known - set(rack_of))})
    seen: set[PartitionKey] = set()
    out: list[str] = []
    incoming: dict[int, list[tuple[PartitionKey, str]]] = {}
    move_list = list(moves)
    rows = table.rows([(str(m.topic), int(m.partition)) for m in move_list])
    for m, row in zip(move_list, rows, strict=True):
        key = (str(m.topic), int(m.partition))
        name = f"{key[0]}-{key[1]}"
        new = tuple(int(b) for b in m.new_replicas)
        if key in seen:
            out.append(f"{name}: appears more than once in the plan")
            continue
        seen.add(key)
        if row is None:
            out.append(f"{name}: partition is not in the cluster")
            continue
        current = table.replicas(row)
        if tuple(int(b) for b in m.old_replicas) != current:
            out.append(
                f"{name}: plan is stale: it expects replicas {list(m.old_replicas)} but the cluster has {list(current)}"
            )
        if key in in_flight:
            out.append(f"{name}: a reassignment is already in progress for this partition")
        if not new or would_reduce_rf(current, new) or len(new) < len(current):
            out.append(f"{name}: replication factor reduced from {len(current)} to {len(set(new))}")
        dupes = sorted(b for b, n in Counter(new).items() if n > 1)
        if dupes:
            out.append(f"{name}: broker(s) {dupes} listed more than once in {list(new)}")
        current_set = set(current)
        for b in dict.fromkeys(new):
            if b in current_set:
                continue
            if b not in known:
                out.append(f"{name}: target broker {b} is unknown to the cluster")
            elif b not in alive:
                out.append(f"{name}: target broker {b} is not alive")
            elif b in no_log_dir:
                out.append(f"{name}: target broker {b} has every log dir offline")
            elif b in no_rack:
                out.append(
                    f"{name}: target broker {b} has no rack in a rack-aware cluster; its AZ is unknown, so "
                    "AZ spread cannot be kept"
                )
            else:
                incoming.setdefault(b, []).append((key, name))
        before, after = rack_spread(current, rack_of), rack_spread(new, rack_of)
        if after < before:
            out.append(f"{name}: rack spread reduced from {before} to {after} racks ({list(current)} -> {list(new)})")
        else:
            for rack, was, now in rack_concentration_increase(current, new, rack_of):
                out.append(f"{name}: rack {rack!r} would hold {now} replicas (had {was}); a rack may not gain a second")
        listed = table.isr(row)
        isr = effective_isr(listed, down)
        if not set(isr) & set(new):
            if listed and not isr:
                out.append(
                    f"{name}: no live in-sync replica: every ISR member ({list(listed)}) is down, so no copy "
                    "can be trusted to feed the new replicas or to survive the move"
                )
            else:
                out.append(
                    f"{name}: no current in-sync replica remains (ISR {list(isr)}, new replicas {list(new)}); "
                    "the last in-sync copy would be removed"
                )
    out.extend(_capacity_violations(snapshot, incoming, ceiling))
    return out


def _capacity_violations(
    snapshot: ClusterSnapshot, incoming: Mapping[int, list[tuple[PartitionKey, str]]], ceiling: float
) -> list[str]:
    """Targets whose incoming replicas do not fit their log dirs (see ``first_misfit``)."""
    space = log_dir_space(snapshot)
    checked = {b: got for b, got in incoming.items() if b in space}
    if not checked:
        return []
    sizes = partition_size_map(snapshot, sorted({key for got in checked.values() for key, _n in got}))
    out: list[str] = []
    for b, got in sorted(checked.items()):
        ordered = sorted(got, key=lambda kn: (-_known(sizes[kn[0]]), kn[0]))
        misfit = first_misfit(space[b], [_known(sizes[key]) for key, _n in ordered], ceiling)
        if misfit is None:
            continue
        k, dirs = misfit
        room = max(ceiling * t - used for t, used in dirs)
        out.append(
            f"{ordered[k][1]}: target broker {b} cannot hold it: with the {k} larger replica(s) it also "
            f"receives, no online log dir keeps {_gb(_known(sizes[ordered[k][0]]))} under "
            f"max_disk_usage={ceiling:g} (most room left in one dir: {_gb(max(room, 0.0))})"
        )
    return out


def _known(size: float) -> float:
    return 0.0 if math.isnan(size) else size


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def assert_plan_safe(snapshot: ClusterSnapshot, moves: Iterable[MoveLike]) -> None:
    """Raise ``SafetyError`` listing every violation ``validate_plan`` finds."""
    violations = validate_plan(snapshot, moves)
    if violations:
        shown = violations[:_MAX_NAMES_IN_MESSAGE]
        more = f" ... and {len(violations) - len(shown)} more" if len(violations) > len(shown) else ""
        raise SafetyError(
            f"Refusing the reassignment: {len(violations)} safety violation(s): " + "; ".join(shown) + more
        )


# ----------------------------------------------------------------------------------------------
# Removal impact
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemovalImpact:
    """What losing ``brokers`` right now would do, judged on the current ISR.

    ``offline``: partitions where a removed broker holds a listed in-sync copy and no live
    in-sync copy stays elsewhere -- a down broker never holds the surviving copy (they go or stay
    offline; with unclean election disabled until a removed broker returns, and a wiped broker
    never returns). ``under_min_isr``: partitions whose live ISR loses a member and keeps some,
    but fewer than ``min.insync.replicas`` (acks=all producers start failing).
    ``leaderships``: partitions currently led by a removed broker (they need a leader election).
    Judged on ``effective_isr`` (THE definition of in sync: listed and not down); brokers the
    snapshot knows are down do not count even where stale metadata still lists them
    (``stale_isr_brokers`` names them). ``min_isr_unknown``: partitions whose live ISR
    loses a member but whose min ISR was not read (unknown is not "the default": it refuses).
    """

    brokers: tuple[int, ...]
    offline: list[PartitionKey] = field(default_factory=list)
    under_min_isr: list[PartitionKey] = field(default_factory=list)
    leaderships: int = 0
    isr_members_lost: int = 0
    stale_isr_brokers: tuple[int, ...] = ()
    min_isr_unknown: list[PartitionKey] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        """True when nothing goes offline, nothing drops below min ISR, and every min ISR it depends on is known."""
        return not self.offline and not self.under_min_isr and not self.min_isr_unknown

    def summary(self) -> str:
        return (
            f"removing brokers {list(self.brokers)}: {len(self.offline)} partitions offline, "
            f"{len(self.under_min_isr)} below min ISR, {self.leaderships} leaders to re-elect"
        )


def removal_impact(
    snapshot: ClusterSnapshot, broker_ids: Iterable[int], *, also_down: AbstractSet[int] = frozenset()
) -> RemovalImpact:
    """What happens to availability if ``broker_ids`` stop serving now (see ``RemovalImpact``),
    judged on ``effective_isr`` (brokers the snapshot knows are down are not in sync).

    Raises ``ConfigError`` for broker ids the cluster does not know (a typo must not read as
    "no impact").
    """
    removed = {int(b) for b in broker_ids}
    unknown = sorted(removed - known_broker_ids(snapshot))
    if unknown:
        raise ConfigError(f"Unknown broker id(s) {unknown}: not registered and not in any replica list.")
    table = PartitionTable.from_snapshot(snapshot)
    down = down_broker_ids(snapshot) | {int(b) for b in also_down}
    offline: list[PartitionKey] = []
    under: list[PartitionKey] = []
    unknown_min: list[PartitionKey] = []
    leaderships = 0
    lost = 0
    stale: set[int] = set()
    leaders = table.raw_leaders
    for i, raw_isr in enumerate(table.raw_isr):
        if leaders[i] in removed:
            leaderships += 1
        if removed.isdisjoint(raw_isr):
            continue  # the removed brokers hold no listed in-sync copy of this partition
        listed = table.isr(i)
        isr = effective_isr(listed, down)
        stale.update(b for b in listed if b in down and b not in removed)
        surviving = [b for b in isr if b not in removed]
        lost_now = len(isr) - len(surviving)
        lost += lost_now
        key = table.key(i)
        if not surviving:
            # Removed brokers hold a listed in-sync copy and no live one is left elsewhere (a down
            # broker never holds the surviving copy): wiping them may destroy the last copy.
            offline.append(key)
        elif lost_now:
            min_isr = table.known_min_isr(i)
            if min_isr is None:
                unknown_min.append(key)
            elif len(surviving) < min_isr:
                under.append(key)
    return RemovalImpact(
        brokers=tuple(sorted(removed)),
        offline=sorted(offline),
        under_min_isr=sorted(under),
        leaderships=leaderships,
        isr_members_lost=lost,
        stale_isr_brokers=tuple(sorted(stale)),
        min_isr_unknown=sorted(unknown_min),
    )


def assert_removal_safe(
    snapshot: ClusterSnapshot, broker_ids: Iterable[int], *, allow_under_min_isr: bool = False
) -> RemovalImpact:
    """Raise ``SafetyError`` if removing ``broker_ids`` now would take partitions offline (always
    refused: for a wipe that is data loss) or below min ISR (refused unless allowed, e.g. a
    rolling restart that accepts a brief acks=all outage). Returns the impact when safe.
    """
    impact = removal_impact(snapshot, broker_ids)
    problems: list[str] = []
    if impact.offline:
        problems.append(
            f"{len(impact.offline)} partition(s) would lose their last in-sync replica: {_names(impact.offline)}"
        )
    if impact.under_min_isr and not allow_under_min_isr:
        problems.append(
            f"{len(impact.under_min_isr)} partition(s) would drop below min.insync.replicas: "
            f"{_names(impact.under_min_isr)}"
        )
    if impact.min_isr_unknown:
        problems.append(
            f"the min.insync.replicas of {len(impact.min_isr_unknown)} partition(s) losing a replica is unknown "
            f"(not read from the cluster): {_names(impact.min_isr_unknown)}"
        )
    if problems:
        raise SafetyError(
            f"Refusing to remove broker(s) {list(impact.brokers)}: "
            + "; ".join(problems)
            + ". Wait for the ISR to recover (or move those replicas first)."
        )
    return impact
