"""What kafka-medic remembers between runs, behind one small store API.

Healing needs a little shared state that every process (scheduled health checks, remediation
runs on any worker, a CLI on a laptop) must see the same way:

* **cooldowns**: when an action last succeeded (a replacement, a restart, a page), so the next one
  waits its policy's time;
* **down-since**: since when each broker has been seen down, so a restarted service keeps counting
  a grace period instead of starting it again;
* **maintenance mode**: on/off, who, why, since when;
* **known brokers**: host, port and rack of every broker seen, so a dead broker keeps its rack;
* **drain undo**: each moved partition's previous replicas, for ``undrain``;
* **notification channels**: which notification blocks a cluster pages;
* the reassignment **journal** (:mod:`kafka_medic.executor.journal` encodes it; it uses the same store).

The *store* is a port (:class:`KeyValueStore`: get / put / delete of JSON values by name) with a
memory adapter here for tests and callers without a server, and a Prefect Variables adapter in
:mod:`tasks.state`: the server is the place every process already talks to, a Variable is
readable (and fixable) in the UI, and it survives any process. :class:`ClusterState` is the typed
view of one cluster's state over any store; every encoding and every validation lives here, pure.

Reading refuses rather than guesses: a corrupt cooldown treated as "never" would allow an action,
so an unreadable value raises :class:`~kafka_medic.errors.CoordinationError` naming the Variable.
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kafka_medic.errors import CoordinationError
from kafka_medic.incidents import Incidents
from kafka_medic.judgment import Ladder, Scores
from kafka_medic.maintenance.rollback import merge_rollback, planned_rollback
from kafka_medic.monitor.collector import KnownBroker
from kafka_medic.naming import cluster_tag, variable_name

log = logging.getLogger(__name__)

#: Prefect refuses Variable values whose JSON is longer than this; every adapter enforces it, so a
#: value that fits in memory fits on the server too.
MAX_VALUE_CHARS = 5000
#: Largest JSON kept in one value of a chunked record (drain undo), leaving room for its envelope.
CHUNK_CHARS = 4500
_ACTION_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_REF_RE = re.compile(r"^[a-z0-9-]+/[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
_DOWN_SINCE_VERSION = 1

Rollback = list[tuple[str, int, tuple[int, ...], tuple[int, ...]]]
#: What can be undone: a drain (``undrain-broker``) and a demotion (``restore-broker``).
UndoKind = Literal["drain", "demotion"]
UNDO_VARIABLES: dict[str, str] = {"drain": "drain_rollback", "demotion": "demotion_rollback"}


class KeyValueStore(Protocol):
    """JSON values by name, shared by every kafka-medic process (the Prefect adapter: Variables)."""

    async def get(self, name: str) -> Any | None: ...
    async def put(self, name: str, value: Any, *, tags: list[str]) -> None: ...
    async def delete(self, name: str) -> None: ...


def check_value_size(name: str, value: Any) -> None:
    """Refuse a value the server would refuse (its compact JSON over :data:`MAX_VALUE_CHARS`)."""
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str))
    if size > MAX_VALUE_CHARS:
        raise CoordinationError(f"cannot store variable {name!r}: {size} characters of JSON, over {MAX_VALUE_CHARS}")


class MemoryStore:
    """In-process store (tests, scripts without a server); values round-trip through JSON like the real one."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.tags: dict[str, list[str]] = {}

    async def get(self, name: str) -> Any | None:
        raw = self.values.get(name)
        return None if raw is None else json.loads(raw)

    async def put(self, name: str, value: Any, *, tags: list[str]) -> None:
        check_value_size(name, value)
        self.values[name] = json.dumps(value, separators=(",", ":"))
        self.tags[name] = list(tags)

    async def delete(self, name: str) -> None:
        self.values.pop(name, None)
        self.tags.pop(name, None)


# -- pure codecs -----------------------------------------------------------------------------------------


def bad_stored(name: str, why: str) -> CoordinationError:
    return CoordinationError(f"variable {name!r} holds an invalid value ({why}); fix or delete it in Prefect")


def utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (e.g. datetime.now(UTC)), got naive {value!r}")
    return value.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


def check_action(action: str) -> str:
    if len(action) > 64 or not _ACTION_RE.match(action):
        raise ValueError(
            f"action {action!r} must be 1-64 lowercase letters/digits, words separated by single '-' or '_'"
        )
    return action


def parse_when(name: str, raw: Any) -> datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise bad_stored(name, f"expected an ISO-8601 time string, got {type(raw).__name__}")
    try:
        return utc(datetime.fromisoformat(raw), "stored time")
    except ValueError as exc:
        raise bad_stored(name, str(exc)) from None


def remaining_cooldown(last: datetime | None, cooldown_s: float, now: datetime) -> float:
    """Seconds left before the action may run again; pure, so rules can be tested without I/O.

    A last success in the future (clock skew between hosts) counts as "just now": the safe side.
    """
    if not (math.isfinite(cooldown_s) and cooldown_s >= 0):
        raise ValueError(f"cooldown_s must be a finite number >= 0, got {cooldown_s!r}")
    if last is None:
        return 0.0
    elapsed = max(0.0, (utc(now, "now") - utc(last, "last")).total_seconds())
    return max(0.0, cooldown_s - elapsed)


def encode_down_since(mapping: Mapping[int, datetime]) -> dict[str, Any]:
    """Grouped by time: brokers that went down together share one timestamp, which keeps a mass
    failure of hundreds of brokers inside the server's 5000-character value limit."""
    by_time: dict[str, list[int]] = {}
    for broker_id, since in sorted(mapping.items()):
        if isinstance(broker_id, bool) or not isinstance(broker_id, int) or broker_id < 0:
            raise ValueError(f"broker ids must be ints >= 0, got {broker_id!r}")
        by_time.setdefault(utc(since, f"down-since of broker {broker_id}").isoformat(), []).append(broker_id)
    return {"version": _DOWN_SINCE_VERSION, "since": by_time}


def decode_down_since(name: str, raw: Any) -> dict[int, datetime]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or raw.get("version") != _DOWN_SINCE_VERSION or not isinstance(raw.get("since"), dict):
        raise bad_stored(name, f"expected {{'version': {_DOWN_SINCE_VERSION}, 'since': {{time: [broker ids]}}}}")
    out: dict[int, datetime] = {}
    for when, brokers in raw["since"].items():
        since = parse_when(name, when)
        if not isinstance(brokers, list) or not all(isinstance(b, int) and not isinstance(b, bool) for b in brokers):
            raise bad_stored(name, f"broker list for {when} is not a list of ints")
        for broker_id in brokers:
            if broker_id in out:
                raise bad_stored(name, f"broker {broker_id} appears twice")
            out[broker_id] = since  # type: ignore[assignment]
    return out


class MaintenanceState(BaseModel):
    """Whether automation must leave a cluster alone, who said so, why and since when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on: bool
    reason: str = Field("", max_length=1000)
    by: str = Field(..., min_length=1, max_length=200)
    since: datetime

    @field_validator("since")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return utc(value, "since")


def new_maintenance(on: bool, reason: str, by: str, now: datetime | None = None) -> MaintenanceState:
    if on and not reason.strip():
        raise ValueError("a reason is required to turn maintenance mode on")
    if not by.strip():
        raise ValueError("'by' must name who changes maintenance mode")
    return MaintenanceState(on=on, reason=reason.strip(), by=by.strip(), since=now or now_utc())


def grace_after_maintenance(
    down_since: Mapping[int, datetime], maintenance: MaintenanceState | None
) -> dict[int, datetime]:
    """Down-since times with the time spent in maintenance not counted.

    A broker stopped for work while the cluster was in maintenance must not be wiped the moment
    maintenance ends because its grace period ran out during the work: once maintenance is off, a
    broker down since before that gets its whole grace period from the end of maintenance (and the
    health check persists that, so it holds across cycles). While maintenance is on nothing acts,
    so the times are left as they are.
    """
    if maintenance is None or maintenance.on:
        return dict(down_since)
    return {b: max(t, maintenance.since) for b, t in down_since.items()}


def maintenance_hold(maintenance: MaintenanceState | None, *, automated: bool) -> str | None:
    """Why a remediation automation started (``automated``, approved by a human or not) must not act
    now because the cluster is in maintenance, or None.

    Checked on the fresh look right before a change, not only when the decision was made: the
    maintenance switch works without any lock (it is the emergency brake), so it can be thrown while
    a remediation waits for its lock or for a human's approval. Humans' own runs may still act.
    """
    if maintenance is None or not maintenance.on or not automated:
        return None
    why = f": {maintenance.reason}" if maintenance.reason else ""
    since = maintenance.since.isoformat(timespec="seconds")
    return f"the cluster is in maintenance (since {since}, by {maintenance.by}{why})"


def parse_maintenance(name: str, raw: Any) -> MaintenanceState | None:
    if raw is None:
        return None
    try:
        return MaintenanceState.model_validate(raw)
    except ValidationError as exc:
        raise bad_stored(name, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None


def decode_known_brokers(raw: Any) -> dict[int, KnownBroker]:
    """Tolerant: an entry that cannot be read is dropped (it only costs a dead broker its rack)."""
    out: dict[int, KnownBroker] = {}
    for item in raw.get("brokers", []) if isinstance(raw, dict) else []:
        try:
            kb = KnownBroker.from_json(item)
        except (KeyError, TypeError, ValueError):
            continue
        out[kb.broker_id] = kb
    return out


def encode_known_brokers(known: Mapping[int, KnownBroker]) -> dict[str, Any]:
    return {"brokers": [k.to_json() for k in sorted(known.values(), key=lambda k: k.broker_id)]}


def parse_refs(raw: Any) -> list[str]:
    """Notification block references from a stored value (list or comma-separated string); invalid
    ones dropped with a warning, so one typo does not silence the other channels."""
    if raw is None:
        return []
    items: Iterable[Any]
    if isinstance(raw, str):
        items = raw.split(",")
    elif isinstance(raw, list | tuple):
        items = raw
    elif isinstance(raw, Mapping) and isinstance(raw.get("blocks"), list):
        items = raw["blocks"]
    else:
        log.warning("notification config has an unexpected shape (%s); expected a list of block refs", type(raw))
        return []
    out: list[str] = []
    for item in items:
        ref = str(item).strip()
        if not ref:
            continue
        if not _REF_RE.match(ref):
            log.warning("ignoring notification block reference %r: expected '<block-type-slug>/<block-name>'", ref)
            continue
        if ref not in out:
            out.append(ref)
    return out


def _split_json_text(text: str, limit: int) -> list[str]:
    """Pieces of ``text`` each of which, as a JSON string, stays within ``limit`` characters
    (quotes and backslashes take two once escaped)."""
    out: list[str] = []
    pos = 0
    while pos < len(text):
        n = limit
        while len(json.dumps(text[pos : pos + n])) > limit:
            n = max(1, n * 3 // 4)
        out.append(text[pos : pos + n])
        pos += n
    return out


# -- one cluster's state ---------------------------------------------------------------------------------


class ClusterState:
    """The typed state of one cluster over a :class:`KeyValueStore` (one Variable per item)."""

    def __init__(self, store: KeyValueStore, cluster: str) -> None:
        self.store = store
        self.cluster = cluster
        self.tags = ["kafka-medic", cluster_tag(cluster)]
        variable_name(cluster)  # validates the cluster name once, here

    def name(self, *parts: str) -> str:
        return variable_name(self.cluster, *parts)

    async def _put(self, name: str, value: Any) -> None:
        await self.store.put(name, value, tags=self.tags)

    # cooldowns ----------------------------------------------------------------------------------------

    def _cooldown_var(self, action: str) -> str:
        return self.name(check_action(action), "last_success")

    async def last_success(self, action: str) -> datetime | None:
        """When ``action`` last succeeded on the cluster (UTC), or None if never recorded."""
        name = self._cooldown_var(action)
        return parse_when(name, await self.store.get(name))

    async def record_success(self, action: str, when: datetime | None = None) -> None:
        """Record that ``action`` succeeded at ``when`` (default now; must be timezone-aware).

        Check the cooldown while holding the cluster lock, then record before releasing it, so two
        processes cannot both pass the check.
        """
        await self._put(self._cooldown_var(action), utc(when or now_utc(), "when").isoformat())

    async def cooldown_remaining(self, action: str, cooldown_s: float, now: datetime | None = None) -> float:
        """Seconds until ``action`` may run again on the cluster (0.0 = allowed now)."""
        return remaining_cooldown(await self.last_success(action), cooldown_s, now or now_utc())

    # down-since ---------------------------------------------------------------------------------------

    async def down_since(self) -> dict[int, datetime]:
        """Broker id -> since when it has been seen down (UTC); empty if nothing is stored."""
        name = self.name("down_since")
        return decode_down_since(name, await self.store.get(name))

    async def save_down_since(self, mapping: Mapping[int, datetime]) -> None:
        await self._put(self.name("down_since"), encode_down_since(mapping))

    # maintenance --------------------------------------------------------------------------------------

    async def maintenance(self) -> MaintenanceState | None:
        """The last maintenance-mode record, or None if it was never set. Check ``.on``."""
        name = self.name("maintenance")
        return parse_maintenance(name, await self.store.get(name))

    async def in_maintenance(self) -> bool:
        state = await self.maintenance()
        return state is not None and state.on

    async def set_maintenance(self, on: bool, reason: str, by: str) -> MaintenanceState:
        """Turn maintenance mode on or off. The record is kept when turned off (who and why)."""
        state = new_maintenance(on, reason, by)
        await self._put(self.name("maintenance"), state.model_dump(mode="json"))
        return state

    # known brokers ------------------------------------------------------------------------------------

    async def known_brokers(self) -> dict[int, KnownBroker]:
        return decode_known_brokers(await self.store.get(self.name("known_brokers")))

    async def save_known_brokers(self, known: Mapping[int, KnownBroker]) -> None:
        await self._put(self.name("known_brokers"), encode_known_brokers(known))

    # notification channels ----------------------------------------------------------------------------

    def notify_variable(self) -> str:
        return self.name("notify")

    async def notify_refs(self) -> list[str]:
        return parse_refs(await self.store.get(self.notify_variable()))

    # values larger than one Variable ------------------------------------------------------------------

    async def _put_large(self, name: str, value: Any) -> str:
        """Store ``value`` under ``name``: as is when it fits, else as numbered parts of its JSON text
        (parts first, the head last, all stamped with one generation), so a value of any size is kept
        and a reader never mixes two writes. Returns where it went."""
        text = json.dumps(value, separators=(",", ":"))
        old = await self.store.get(name)
        old_parts = int(old.get("parts", 0)) if isinstance(old, dict) and isinstance(old.get("parts"), int) else 0
        if len(text) <= CHUNK_CHARS:
            await self._put(name, value)
            parts = 0
        else:
            gen = uuid.uuid4().hex[:12]
            chunks = _split_json_text(text, CHUNK_CHARS - 100)
            for i, chunk in enumerate(chunks):
                await self._put(f"{name}__part{i}", {"gen": gen, "text": chunk})
            await self._put(name, {"parts": len(chunks), "gen": gen})
            parts = len(chunks)
        for i in range(parts, old_parts):  # a value that shrank leaves no stale parts behind
            await self.store.delete(f"{name}__part{i}")
        return f"variable {name}" + (f" (+{parts} parts)" if parts else "")

    async def _get_large(self, name: str) -> Any | None:
        raw = await self.store.get(name)
        if not (isinstance(raw, dict) and set(raw) == {"parts", "gen"}):
            return raw
        chunks = []
        for i in range(int(raw["parts"])):
            part = await self.store.get(f"{name}__part{i}")
            if not isinstance(part, dict) or part.get("gen") != raw["gen"]:
                raise bad_stored(name, f"part {i} is missing or from another write")
            chunks.append(str(part["text"]))
        try:
            return json.loads("".join(chunks))
        except ValueError as exc:
            raise bad_stored(name, f"its parts do not make one value: {exc}") from None

    async def _delete_large(self, name: str) -> None:
        raw = await self.store.get(name)
        if isinstance(raw, dict) and isinstance(raw.get("parts"), int):
            for i in range(raw["parts"]):
                await self.store.delete(f"{name}__part{i}")
        await self.store.delete(name)

    # judgment: scores (the health check writes them) and the ladder (remediation writes it) -----------

    async def scores(self) -> Scores:
        name = self.name("scores")
        try:
            return Scores.from_json(await self._get_large(name))
        except ValueError as exc:
            raise bad_stored(name, str(exc)) from None

    async def save_scores(self, scores: Scores) -> str:
        return await self._put_large(self.name("scores"), scores.to_json())

    async def ladder(self) -> Ladder:
        name = self.name("ladder")
        try:
            return Ladder.from_json(await self._get_large(name))
        except ValueError as exc:
            raise bad_stored(name, str(exc)) from None

    async def save_ladder(self, ladder: Ladder) -> str:
        return await self._put_large(self.name("ladder"), ladder.to_json())

    async def incidents(self) -> Incidents:
        name = self.name("incidents")
        try:
            return Incidents.from_json(await self._get_large(name))
        except ValueError as exc:
            raise bad_stored(name, str(exc)) from None

    async def save_incidents(self, incidents: Incidents) -> str:
        return await self._put_large(self.name("incidents"), incidents.to_json())

    # undo of a drain or a demotion ------------------------------------------------------------------

    def _undo_var(self, kind: UndoKind, broker_id: int) -> str:
        return self.name(UNDO_VARIABLES[kind], str(int(broker_id)))

    async def save_undo(self, kind: UndoKind, broker_id: int, entries: Rollback, run_id: str | None) -> str:
        """Keep the undo of a drain or a demotion of ``broker_id`` (each changed partition's previous
        replica list); returns where it went. A drain of a broker with thousands of partitions must
        not lose its undo: a large one is kept in parts (:meth:`_put_large`).
        """
        moves = [[t, p, list(old), list(new)] for t, p, old, new in entries]
        head = {"version": 1, "broker_id": broker_id, "at": now_utc().isoformat(timespec="seconds"), "run_id": run_id}
        return await self._put_large(self._undo_var(kind, broker_id), {**head, "moves": moves})

    async def undo(self, kind: UndoKind, broker_id: int) -> Rollback | None:
        """The stored undo of the ``kind`` of ``broker_id``, or None when none is recorded."""
        name = self._undo_var(kind, broker_id)
        raw = await self._get_large(name)
        if raw is None:
            return None
        try:
            return [(str(t), int(p), tuple(map(int, old)), tuple(map(int, new))) for t, p, old, new in raw["moves"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise bad_stored(name, f"the undo of the {kind} of broker {broker_id} is unreadable: {exc}") from None

    async def clear_undo(self, kind: UndoKind, broker_id: int) -> None:
        await self._delete_large(self._undo_var(kind, broker_id))

    async def save_planned_drain_undo(self, brokers: Iterable[int], moves: Iterable[Any], run_id: str | None) -> None:
        """A drain's undo, saved before its first move and merged with any earlier record of the same
        broker (an interrupted drain run again). Failing to save it stops the drain before anything
        moved: a drain without its way back is what this guards against."""
        moves = list(moves)
        for b in brokers:
            planned = planned_rollback(moves, b)
            if planned:
                await self.save_undo("drain", b, merge_rollback(await self.undo("drain", b) or [], planned), run_id)
