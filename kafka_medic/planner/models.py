"""Planner inputs and outputs.

Requests are pydantic models (``extra="forbid"``, described fields) because they arrive from
Prefect UI forms, flow parameters and YAML: a typo must fail loudly, never be ignored.
Results (``Plan``, ``Move`` ...) are frozen dataclasses: plain data that is cheap to build by the
thousand, pickles for Prefect results and converts to JSON with ``to_dict``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kafka_medic.errors import SafetyError
from kafka_medic.policy import DEFAULT_MOVE_MAX_DISK_USAGE


def _sorted_unique(ids: list[int]) -> list[int]:
    return sorted(set(ids))


class DrainRequest(BaseModel):
    """Move every replica off ``brokers`` (decommission, or heal a dead broker without a replacement)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["drain"] = Field("drain", description="Request type: move every replica off some brokers.")
    brokers: list[int] = Field(
        ...,
        min_length=1,
        description="Broker ids to empty. Dead brokers are allowed (that is the usual case).",
    )
    exclude: list[int] = Field(
        default_factory=list,
        description="Broker ids that must not receive replicas (e.g. brokers about to be drained next).",
    )
    max_replicas_per_broker: int | None = Field(
        None,
        ge=1,
        description="A receiving broker may hold at most this many replicas afterwards (None: no cap).",
    )
    max_disk_usage: float = Field(
        DEFAULT_MOVE_MAX_DISK_USAGE,
        gt=0,
        le=1,
        description="Each log dir of a receiving broker must stay at or below this share of its size "
        "(used + incoming bytes; a replica lives in one dir, so free space is never summed over dirs). "
        "Only checked where log-dir and partition sizes are known.",
    )

    @field_validator("brokers", "exclude")
    @classmethod
    def _normalise(cls, ids: list[int]) -> list[int]:
        return _sorted_unique(ids)

    @property
    def disk_ceiling(self) -> float:
        """The per-log-dir ceiling in force (``validate_plan(..., max_disk_usage=...)`` takes it)."""
        return self.max_disk_usage


class ReplaceRequest(BaseModel):
    """Move all of ``old_broker``'s replicas 1:1 onto ``new_broker`` (topicmappr's sub-affinity)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["replace"] = Field("replace", description="Request type: swap one broker for another.")
    old_broker: int = Field(..., description="Broker id whose replicas move (may be dead).")
    new_broker: int = Field(..., description="Alive broker id that takes over every replica of the old broker.")
    max_disk_usage: float | None = Field(
        DEFAULT_MOVE_MAX_DISK_USAGE,
        gt=0,
        le=1,
        description="Each log dir of the new broker must stay at or below this share of its size, as for a "
        "drain. None: the default ceiling (a replacement is never planned without a disk check).",
    )

    @property
    def disk_ceiling(self) -> float:
        """The ceiling in force (None, as older stored requests carry it, means the default)."""
        return DEFAULT_MOVE_MAX_DISK_USAGE if self.max_disk_usage is None else self.max_disk_usage


PlanRequest = Annotated[DrainRequest | ReplaceRequest, Field(discriminator="kind")]
"""Either request, told apart by ``kind`` (a Prefect form renders this as a choice)."""


@dataclass(frozen=True)
class Move:
    """One partition's new replica list. Position 0 is the preferred leader, as in Kafka."""

    topic: str
    partition: int
    old_replicas: tuple[int, ...]
    new_replicas: tuple[int, ...]

    @property
    def added(self) -> tuple[int, ...]:
        """Brokers that must copy the partition's data (in new-list order)."""
        old = set(self.old_replicas)
        return tuple(b for b in self.new_replicas if b not in old)

    @property
    def removed(self) -> tuple[int, ...]:
        """Brokers that drop their replica (in old-list order)."""
        new = set(self.new_replicas)
        return tuple(b for b in self.old_replicas if b not in new)

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "old_replicas": list(self.old_replicas),
            "new_replicas": list(self.new_replicas),
        }


@dataclass(frozen=True)
class Unplaceable:
    """A partition the planner left where it is, and the operator-readable reason why."""

    topic: str
    partition: int
    reason: str

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "reason": self.reason}


@dataclass(frozen=True)
class PlanCost:
    """What executing a plan costs: data copied, where it flows, and who receives it.

    ``bytes_moved`` uses each partition's largest known replica size (followers hold the leader's
    data); replicas of partitions with no known size count 0 bytes and are tallied in
    ``unknown_size_replicas`` so a 0 is never mistaken for "free".
    ``cross_az_bytes``: bytes whose new replica sits in a different rack than the broker it will
    copy from. Kafka followers always fetch from the partition leader, so that is the current
    leader's rack; with no alive leader, the racks of the alive in-sync replicas. Unknown racks
    count as cross-AZ (an upper bound is the safe side of a cost estimate).
    """

    replicas_moved: int = 0
    bytes_moved: float = 0.0
    cross_az_bytes: float = 0.0
    partitions: int = 0
    per_broker_in: dict[int, int] = field(default_factory=dict)
    per_broker_bytes_in: dict[int, float] = field(default_factory=dict)
    per_broker_out: dict[int, int] = field(default_factory=dict)
    unknown_size_replicas: int = 0
    preferred_leader_changes: int = 0
    # Bytes each source broker sends (the partition's alive leader, else the first live in-sync
    # replica: whoever will lead); partitions with no live source are not counted.
    per_source_bytes_out: dict[int, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "replicas_moved": self.replicas_moved,
            "bytes_moved": self.bytes_moved,
            "cross_az_bytes": self.cross_az_bytes,
            "partitions": self.partitions,
            "per_broker_in": {str(k): v for k, v in self.per_broker_in.items()},
            "per_broker_bytes_in": {str(k): v for k, v in self.per_broker_bytes_in.items()},
            "per_broker_out": {str(k): v for k, v in self.per_broker_out.items()},
            "unknown_size_replicas": self.unknown_size_replicas,
            "preferred_leader_changes": self.preferred_leader_changes,
            "per_source_bytes_out": {str(k): v for k, v in self.per_source_bytes_out.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlanCost:
        return cls(
            replicas_moved=int(d["replicas_moved"]),
            bytes_moved=float(d["bytes_moved"]),
            cross_az_bytes=float(d["cross_az_bytes"]),
            partitions=int(d["partitions"]),
            per_broker_in={int(k): int(v) for k, v in d.get("per_broker_in", {}).items()},
            per_broker_bytes_in={int(k): float(v) for k, v in d.get("per_broker_bytes_in", {}).items()},
            per_broker_out={int(k): int(v) for k, v in d.get("per_broker_out", {}).items()},
            unknown_size_replicas=int(d.get("unknown_size_replicas", 0)),
            preferred_leader_changes=int(d.get("preferred_leader_changes", 0)),
            per_source_bytes_out={int(k): float(v) for k, v in d.get("per_source_bytes_out", {}).items()},
        )


@dataclass(frozen=True)
class CostEstimate:
    """What a plan or a broker replacement costs in bytes, dollars and time (see
    ``kafka_medic.planner.estimate``). Plain data for decisions, approval forms, audit and artifacts.

    ``eta_s``: copying time at the replication throttle, set by the busiest broker -- the one that
    receives, or sends, the most bytes (Kafka throttles each broker's follower and leader traffic
    at the rate). A floor: the copy runs at the throttle at best; instance start-up and catch-up
    on new writes are not included. ``dollars``: ``cross_az_bytes`` at ``price_per_gb`` (GB =
    10^9 bytes, a few % above a per-GiB price: the safe side of an estimate). ``not_copied``:
    partitions left out (a drain's unplaceable ones; a replacement's partitions with no live
    in-sync replica to copy from). Replicas of unknown size count 0 bytes and are tallied in
    ``unknown_size_replicas`` so a 0 is never mistaken for "free".
    """

    what: str
    replicas: int
    bytes_moved: float
    cross_az_bytes: float
    dollars: float
    eta_s: float
    bottleneck: str
    price_per_gb: float
    throttle_bytes_per_sec: float
    receivers: int = 0
    unknown_size_replicas: int = 0
    not_copied: int = 0

    def summary(self) -> str:
        text = (
            f"{self.what}: {human_bytes(self.bytes_moved)} to copy ({human_bytes(self.cross_az_bytes)} cross-AZ, "
            f"${self.dollars:,.2f} at ${self.price_per_gb:g}/GB), ~{human_duration(self.eta_s)} at "
            f"{human_bytes(self.throttle_bytes_per_sec)}/s per broker ({self.bottleneck})"
        )
        if self.unknown_size_replicas:
            text += f"; {self.unknown_size_replicas} replicas of unknown size counted as 0"
        if self.not_copied:
            text += f"; {self.not_copied} partitions cannot be copied"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def record(self) -> dict[str, Any]:
        """The compact form carried by decisions, approval forms and audit records: the four figures
        an operator weighs (bytes, cross-AZ bytes, dollars, ETA), what they assume (price, throttle),
        what they leave out, and the one-line summary. Rounded: a record is read, not recomputed."""
        return {
            "what": self.what,
            "bytes": round(self.bytes_moved),
            "cross_az_bytes": round(self.cross_az_bytes),
            "dollars": round(self.dollars, 2),
            "eta_s": round(self.eta_s, 1),
            "replicas": self.replicas,
            "receivers": self.receivers,
            "price_per_gb": self.price_per_gb,
            "throttle_bytes_per_sec": self.throttle_bytes_per_sec,
            "bottleneck": self.bottleneck,
            "unknown_size_replicas": self.unknown_size_replicas,
            "not_copied": self.not_copied,
            "summary": self.summary(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CostEstimate:
        return cls(**{name: d[name] for name in cls.__dataclass_fields__ if name in d})


def human_bytes(n: float) -> str:
    """1.29 TB, 735.0 GB, 12.3 MB, 512 B (powers of 10, as disk and transfer prices are quoted)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}" if unit == "TB" else f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def human_duration(seconds: float) -> str:
    """2 d 3 h, 7 h 8 min, 4 min 10 s, 35 s."""
    s = math.ceil(seconds)
    days, rest = divmod(s, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


@dataclass(frozen=True)
class Plan:
    """A reassignment plan. ``moves`` are sorted by (topic, partition); nothing else moves.

    When a drained broker was a partition's preferred leader, its replacement takes position 0,
    so a preferred-leader election run after the reassignment moves leadership onto the new broker
    (``cost.preferred_leader_changes`` counts those partitions).
    """

    moves: list[Move]
    cost: PlanCost
    unplaceable: list[Unplaceable] = field(default_factory=list)
    request: DrainRequest | ReplaceRequest | None = None

    @property
    def ok(self) -> bool:
        """True when every partition that had to move has a move (nothing was left behind)."""
        return not self.unplaceable

    def to_kafka_json(self) -> dict[str, Any]:
        """The JSON ``kafka-reassign-partitions --execute --reassignment-json-file`` takes."""
        return {
            "version": 1,
            "partitions": [
                {"topic": m.topic, "partition": m.partition, "replicas": list(m.new_replicas)} for m in self.moves
            ],
        }

    def rollback_kafka_json(self) -> dict[str, Any]:
        """The reassignment that puts every moved partition back where it was."""
        return {
            "version": 1,
            "partitions": [
                {"topic": m.topic, "partition": m.partition, "replicas": list(m.old_replicas)} for m in self.moves
            ],
        }

    def summary(self) -> str:
        c = self.cost
        text = (
            f"{c.partitions} partitions, {c.replicas_moved} replicas, {c.bytes_moved / 1e9:.2f} GB to move "
            f"({c.cross_az_bytes / 1e9:.2f} GB cross-AZ) onto {len(c.per_broker_in)} brokers"
        )
        if c.unknown_size_replicas:
            text += f"; {c.unknown_size_replicas} replicas of unknown size"
        if self.unplaceable:
            text += f"; {len(self.unplaceable)} partitions cannot be placed"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "moves": [m.to_dict() for m in self.moves],
            "cost": self.cost.to_dict(),
            "unplaceable": [u.to_dict() for u in self.unplaceable],
            "request": self.request.model_dump() if self.request is not None else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        req = d.get("request")
        request: DrainRequest | ReplaceRequest | None = None
        if req is not None:
            request = ReplaceRequest(**req) if req.get("kind") == "replace" else DrainRequest(**req)
        return cls(
            moves=[
                Move(m["topic"], int(m["partition"]), tuple(m["old_replicas"]), tuple(m["new_replicas"]))
                for m in d["moves"]
            ],
            cost=PlanCost.from_dict(d["cost"]),
            unplaceable=[Unplaceable(u["topic"], int(u["partition"]), u["reason"]) for u in d.get("unplaceable", [])],
            request=request,
        )


def format_unplaceable(items: Sequence[Unplaceable]) -> str:
    """Every unplaceable partition by name, grouped by reason (one line per reason)."""
    by_reason: dict[str, list[str]] = {}
    for u in items:
        by_reason.setdefault(u.reason, []).append(u.name)
    return "; ".join(f"{', '.join(names)}: {reason}" for reason, names in by_reason.items())


class PlanningError(SafetyError):
    """Some partitions have no target that keeps every safety constraint; nothing was planned.

    A ``SafetyError`` because the alternative would be a plan that loses rack spread, overfills a
    disk or removes the last in-sync replica. ``unplaceable`` lists each partition and why;
    ``plan_moves(..., allow_partial=True)`` returns the rest of the plan instead.
    """

    def __init__(self, unplaceable: Sequence[Unplaceable]) -> None:
        self.unplaceable: list[Unplaceable] = list(unplaceable)
        super().__init__(
            f"{len(self.unplaceable)} partition(s) cannot be placed without breaking a safety constraint "
            "(nothing was changed; pass allow_partial=True to plan the rest): " + format_unplaceable(self.unplaceable)
        )
