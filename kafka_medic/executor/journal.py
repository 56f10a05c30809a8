"""The reassignment journal: what this orchestrator started and set, kept on the Prefect server.

Why: an orchestrator can die in the middle of a reassignment (worker restart, OOM, lost host).
Kafka keeps moving the partitions, and the throttles it set stay in the cluster forever unless
someone removes them. The journal lets the next run *adopt* that work: wait for (or report) the
moves that still run, then remove exactly the throttles that were ours, and never submit a move
that conflicts with them.

Protocol (who writes what, when):

* Only the holder of the cluster's mutate lock writes the journal, so a live run's journal is
  never adopted by another run (adoption happens under the same lock).
* Intent is recorded *before* acting: moves and the throttles we are about to set are saved, then
  throttles are applied, then the moves submitted. A crash in between leaves a journal that
  claims a little more than was done; cleaning up a throttle that was never set is a no-op, and a
  move that was never submitted is simply "not in progress".
* Things are forgotten only *after* they are confirmed gone: a move leaves the journal once it
  finished and its throttle entries were removed.

Storage: one value per cluster in the state store (:mod:`kafka_medic.state`; a Prefect Variable
``kafka_medic__<cluster>__reassign_journal`` in production). A Variable value is limited to 5000
characters of JSON, so the representation is compact: moves are grouped per topic as
``"p=new/old;..."`` strings, and the topic throttle entries we own are not stored at all but
derived from the moves (minus the few that were already there before us, which are listed as
``skipped``). The executor sizes its batches so the journal always fits (:func:`fits`); a single
move that cannot fit raises :class:`JournalTooLarge`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from kafka_medic.errors import CoordinationError, MedicError
from kafka_medic.executor.throttles import Replica, ThrottleSet, group_entries, needed_for, parse_entries
from kafka_medic.naming import cluster_tag, variable_name
from kafka_medic.planner import Move
from kafka_medic.state import KeyValueStore, MemoryStore

JOURNAL_VERSION = 1
#: Prefect's limit on a Variable value, in characters of compact JSON.
JOURNAL_MAX_CHARS = 5000
PartitionKey = tuple[str, int]


class JournalTooLarge(MedicError):
    """The journal would not fit in a Prefect Variable; nothing was submitted."""


@dataclass(frozen=True)
class Journal:
    """One cluster's record of kafka-medic's own unfinished reassignment work."""

    cluster: str
    run_id: str
    actor: str
    started_at: datetime
    rate: int
    moves: tuple[Move, ...] = ()
    owned: ThrottleSet = field(default_factory=ThrottleSet)

    @property
    def keys(self) -> set[PartitionKey]:
        return {(m.topic, m.partition) for m in self.moves}

    @property
    def empty(self) -> bool:
        return not self.moves and not self.owned

    def with_moves(self, moves: Iterable[Move]) -> Journal:
        """Add or replace moves (by partition)."""
        by_key = {(m.topic, m.partition): m for m in self.moves}
        for m in moves:
            by_key[(m.topic, m.partition)] = m
        return replace(self, moves=tuple(sorted(by_key.values(), key=lambda m: (m.topic, m.partition))))

    def without_moves(self, keys: Iterable[PartitionKey]) -> Journal:
        drop = set(keys)
        return replace(self, moves=tuple(m for m in self.moves if (m.topic, m.partition) not in drop))

    def with_owned(self, owned: ThrottleSet) -> Journal:
        return replace(self, owned=owned)

    def summary(self) -> str:
        return (
            f"run {self.run_id} by {self.actor} started {self.started_at.isoformat(timespec='seconds')}: "
            f"{len(self.moves)} move(s) recorded; throttles owned: {self.owned.summary()}"
        )


# ----------------------------------------------------------------------------------------------
# Encoding (pure)
# ----------------------------------------------------------------------------------------------


def _ids(values: Iterable[int]) -> str:
    return ".".join(str(int(b)) for b in values)


def _parse_ids(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(".") if x != "")


def _derived_entries(moves: Iterable[Move]) -> ThrottleSet:
    """Topic throttle entries the moves need (rates are stored explicitly: they depend on liveness)."""
    full = needed_for(moves, alive=())
    return ThrottleSet(leader_replicas=full.leader_replicas, follower_replicas=full.follower_replicas)


def encode(journal: Journal) -> dict[str, Any]:
    """The compact JSON form stored in the Variable."""
    derived = _derived_entries(journal.moves)
    owned_entries = ThrottleSet(
        leader_replicas=journal.owned.leader_replicas, follower_replicas=journal.owned.follower_replicas
    )
    stray = owned_entries - derived
    if stray:
        # Invariant: an entry is forgotten only after its move left the journal's care.
        raise ValueError(f"journal owns throttle entries of moves it does not list: {stray.to_dict()}")
    skipped = derived - owned_entries
    by_topic: dict[str, list[str]] = {}
    for m in journal.moves:
        by_topic.setdefault(m.topic, []).append(f"{m.partition}={_ids(m.new_replicas)}/{_ids(m.old_replicas)}")
    out: dict[str, Any] = {
        "v": JOURNAL_VERSION,
        "run": journal.run_id,
        "actor": journal.actor,
        "at": journal.started_at.astimezone(UTC).isoformat(timespec="seconds"),
        "rate": int(journal.rate),
        "m": {t: ";".join(v) for t, v in sorted(by_topic.items())},
        "lr": sorted(journal.owned.leader_rate),
        "fr": sorted(journal.owned.follower_rate),
    }
    if skipped:
        out["sk"] = {"L": group_entries(skipped.leader_replicas), "F": group_entries(skipped.follower_replicas)}
    return out


def encoded_size(journal: Journal) -> int:
    """Characters of compact JSON, as Prefect counts them."""
    return len(json.dumps(encode(journal), separators=(",", ":"), ensure_ascii=False).encode())


def fits(journal: Journal, limit: int = JOURNAL_MAX_CHARS) -> bool:
    return encoded_size(journal) <= limit


class SizeBudget:
    """A running, never-low estimate of the journal's size as moves are added to it.

    Re-encoding the whole journal for every candidate move would make choosing a batch of n moves
    O(n^2); this adds each move's own characters instead (its ``p=new/old`` text, its topic key the
    first time, rate brokers not yet owned) and keeps ``margin`` characters for the entries that
    turn out to be someone else's (listed as skipped). The exact size is still checked on save.
    """

    def __init__(self, journal: Journal, alive: Iterable[int], limit: int = JOURNAL_MAX_CHARS, margin: int = 300):
        self.used = encoded_size(journal)
        self.limit = limit - margin
        self.topics = {m.topic for m in journal.moves}
        self.brokers = set(journal.owned.brokers)
        self.alive = set(alive)

    def cost(self, move: Move) -> tuple[int, set[int]]:
        chars = len(f"{move.partition}={_ids(move.new_replicas)}/{_ids(move.old_replicas)};")
        if move.topic not in self.topics:
            chars += len(json.dumps(move.topic, ensure_ascii=False).encode()) + 4  # "topic":"",
        old = set(move.old_replicas)
        involved = (old | set(move.new_replicas)) & self.alive
        new_brokers = {b for b in involved if b not in self.brokers}
        chars += sum(2 * (len(str(b)) + 1) for b in new_brokers)  # may join both rate lists
        return chars, new_brokers

    def try_add(self, move: Move) -> bool:
        """Count ``move`` in if it fits; False (and nothing counted) if it does not."""
        chars, new_brokers = self.cost(move)
        if self.used + chars > self.limit:
            return False
        self.used += chars
        self.topics.add(move.topic)
        self.brokers |= new_brokers
        return True


def decode(raw: Any, cluster: str) -> Journal:
    """Parse a stored journal; ValueError with the reason if it is not one we wrote."""
    if not isinstance(raw, dict) or raw.get("v") != JOURNAL_VERSION:
        raise ValueError(f"expected a version-{JOURNAL_VERSION} journal object")
    try:
        moves: list[Move] = []
        for topic, text in raw.get("m", {}).items():
            for item in filter(None, str(text).split(";")):
                p, _, lists = item.partition("=")
                new, _, old = lists.partition("/")
                moves.append(Move(str(topic), int(p), _parse_ids(old), _parse_ids(new)))
        moves.sort(key=lambda m: (m.topic, m.partition))
        skipped_l: set[Replica] = set()
        skipped_f: set[Replica] = set()
        for t, v in raw.get("sk", {}).get("L", {}).items():
            skipped_l |= parse_entries(t, v)
        for t, v in raw.get("sk", {}).get("F", {}).items():
            skipped_f |= parse_entries(t, v)
        derived = _derived_entries(moves)
        owned = ThrottleSet(
            frozenset(int(b) for b in raw.get("lr", [])),
            frozenset(int(b) for b in raw.get("fr", [])),
            derived.leader_replicas - skipped_l,
            derived.follower_replicas - skipped_f,
        )
        started = datetime.fromisoformat(str(raw["at"]))
        run, actor, rate = str(raw["run"]), str(raw.get("actor", "?")), int(raw["rate"])
        return Journal(cluster, run, actor, started, rate, tuple(moves), owned)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed journal: {exc}") from None


def check_fits(journal: Journal) -> None:
    size = encoded_size(journal)
    if size > JOURNAL_MAX_CHARS:
        raise JournalTooLarge(
            f"the reassignment journal of cluster {journal.cluster!r} would take {size} characters, over "
            f"Prefect's {JOURNAL_MAX_CHARS}-character Variable limit ({len(journal.moves)} moves); "
            "lower max_moves_per_cluster so fewer moves run at once"
        )


# ----------------------------------------------------------------------------------------------
# Storage
# ----------------------------------------------------------------------------------------------


class JournalStore(Protocol):
    async def load(self, cluster: str) -> Journal | None: ...
    async def save(self, journal: Journal) -> None: ...
    async def clear(self, cluster: str) -> None: ...


def journal_variable(cluster: str) -> str:
    return variable_name(cluster, "reassign_journal")


class StoreJournal:
    """Journals in a :class:`~kafka_medic.state.KeyValueStore`: Prefect Variables in production
    (server-side, so any worker can adopt; :func:`tasks.state.journal_store`), memory in tests."""

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store

    async def load(self, cluster: str) -> Journal | None:
        name = journal_variable(cluster)
        raw = await self.store.get(name)
        if raw is None:
            return None
        try:
            return decode(raw, cluster)
        except ValueError as exc:
            # Refuse rather than guess: ignoring it could leave someone's throttles in place forever.
            raise CoordinationError(
                f"variable {name!r} holds an unreadable reassignment journal ({exc}); inspect it, remove "
                "any kafka-medic throttles by hand if needed, then delete it in Prefect"
            ) from None

    async def save(self, journal: Journal) -> None:
        check_fits(journal)
        await self.store.put(
            journal_variable(journal.cluster), encode(journal), tags=["kafka-medic", cluster_tag(journal.cluster)]
        )

    async def clear(self, cluster: str) -> None:
        await self.store.delete(journal_variable(cluster))


def memory_journal_store() -> StoreJournal:
    """An in-process journal store (tests, callers without a Prefect server)."""
    return StoreJournal(MemoryStore())
