"""What a repair costs in bytes, dollars and time: a plan, a broker replacement, and the two compared.

Why these three figures: bytes set the time (each broker copies at the replication throttle),
bytes that cross AZs set the bill (AWS charges inter-AZ traffic on both sides, $0.02/GB in
effect; ``HealthPolicy.inter_az_price_per_gb``), and the time is how long the cluster runs with
fewer copies. An operator choosing between replacing a dead broker (a fresh machine in the same
AZ re-fetches every replica the broker held) and draining it (its replicas are re-created on the
other brokers) needs all three for both, side by side: ``compare_replace_vs_drain``.

Measured shape (``bench/bench_cost.py``, bench/RESULTS.md, issue 14): when broker 1 of the
synthetic 200-broker / 100k-partition cluster fails, replacing it and draining it copy the same
1.28 TB, all of it across AZs (RF 3 over 3 AZs: once the broker is gone its AZ holds no other
copy, so every new replica in that AZ fetches from another), so both cost $25.69 at $0.02/GB; the
drain spreads the copy over the AZ's 66 other brokers and takes ~2 h 29 min at 50 MB/s against
~7 h 8 min, bounded by one sender that leads 447 GB after the failure (the synthetic layout gives
all the partitions a broker leads one follower); with followers spread at random it takes ~10 min.
The drain leaves one broker fewer until a machine is back, and a replacement also waits for the
machine: neither is in the ETA.

Pure functions of a snapshot and a ``HealthPolicy``; nothing here talks to Kafka or Prefect.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from kafka_medic.errors import ConfigError
from kafka_medic.planner.models import (
    CostEstimate,
    DrainRequest,
    Plan,
    PlanCost,
    ReplaceRequest,
    human_bytes,
    human_duration,
)
from kafka_medic.planner.planner import plan_moves
from kafka_medic.policy import HealthPolicy
from kafka_medic.safety import (
    PartitionTable,
    down_broker_ids,
    effective_isr,
    known_broker_ids,
    partition_size_map,
    racks_of,
)
from kafka_medic.snapshot import ClusterSnapshot


def _policy(policy: HealthPolicy | None) -> HealthPolicy:
    return HealthPolicy() if policy is None else policy


def _busiest(per_in: dict[int, float], per_out: dict[int, float]) -> tuple[float, str]:
    """The broker that receives or sends the most bytes, and a line naming it."""
    b_in = max(per_in.items(), key=lambda kv: (kv[1], -kv[0]), default=(None, 0.0))
    b_out = max(per_out.items(), key=lambda kv: (kv[1], -kv[0]), default=(None, 0.0))
    if b_in[0] is None and b_out[0] is None:
        return 0.0, "nothing to copy"
    if b_in[1] >= b_out[1]:
        return b_in[1], f"broker {b_in[0]} receives {human_bytes(b_in[1])}"
    return b_out[1], f"broker {b_out[0]} sends {human_bytes(b_out[1])}"


def estimate_plan(
    plan: Plan | PlanCost,
    policy: HealthPolicy | None = None,
    *,
    what: str | None = None,
    throttle_bytes_per_sec: float | None = None,
) -> CostEstimate:
    """Bytes, cross-AZ bytes, dollars and ETA of a plan (``Plan`` or its ``PlanCost``).

    ETA = the busiest broker's bytes (received, or sent as the partitions' leader) / the
    throttle: ``throttle_bytes_per_sec`` when given (a reassignment run's own rate), else the
    policy's. Dollars = cross-AZ bytes x ``inter_az_price_per_gb``.
    """
    p = _policy(policy)
    if throttle_bytes_per_sec is not None:
        p = p.model_copy(update={"throttle_bytes_per_sec": int(throttle_bytes_per_sec)})
    cost = plan.cost if isinstance(plan, Plan) else plan
    if what is None:
        what = _describe(plan.request) if isinstance(plan, Plan) and plan.request is not None else "plan"
    busiest, bottleneck = _busiest(cost.per_broker_bytes_in, cost.per_source_bytes_out)
    return CostEstimate(
        what=what,
        replicas=cost.replicas_moved,
        bytes_moved=cost.bytes_moved,
        cross_az_bytes=cost.cross_az_bytes,
        dollars=cost.cross_az_bytes / 1e9 * p.inter_az_price_per_gb,
        eta_s=busiest / p.throttle_bytes_per_sec,
        bottleneck=bottleneck,
        price_per_gb=p.inter_az_price_per_gb,
        throttle_bytes_per_sec=float(p.throttle_bytes_per_sec),
        receivers=len(cost.per_broker_in),
        unknown_size_replicas=cost.unknown_size_replicas,
        not_copied=len(plan.unplaceable) if isinstance(plan, Plan) else 0,
    )


def _describe(request: DrainRequest | ReplaceRequest) -> str:
    if isinstance(request, DrainRequest):
        return f"drain of broker(s) {request.brokers}"
    return f"move of broker {request.old_broker}'s replicas onto broker {request.new_broker}"


def replacement_cost(snapshot: ClusterSnapshot, broker_id: int, policy: HealthPolicy | None = None) -> CostEstimate:
    """What replacing ``broker_id`` by a fresh machine in its own AZ costs: it must re-fetch every
    replica the broker holds.

    Per partition on the broker: its size (largest known replica) is fetched from the partition's
    leader -- the current one if it is alive and not this broker, else the first live in-sync
    replica in assignment order (whoever the controller elects). The bytes cross AZs when that
    source's rack differs from the broker's (an unknown rack on either side counts as crossing:
    the safe side of an estimate). Partitions with no live in-sync replica besides this broker
    cannot be re-fetched and are counted in ``not_copied``. ETA: the new broker receives every
    byte, and each source sends its share, both at the throttle (kafka-medic does not throttle a
    replacement's re-fetch, so this is what it costs under the policy's throttle; unthrottled it
    may finish sooner). Raises ``ConfigError`` for a broker id the cluster does not know.
    """
    p = _policy(policy)
    broker_id = int(broker_id)
    if broker_id not in known_broker_ids(snapshot):
        raise ConfigError(f"Unknown broker id {broker_id}: not registered and not in any replica list.")
    table = PartitionTable.from_snapshot(snapshot)
    holds = np.fromiter(map(frozenset({broker_id}).isdisjoint, table.raw_replicas), dtype=bool, count=len(table))
    rows = np.flatnonzero(~holds).tolist()
    keys = [table.key(i) for i in rows]
    sizes = partition_size_map(snapshot, keys)
    rack_of = racks_of(snapshot)
    own = rack_of.get(broker_id)
    alive = snapshot.alive_broker_ids
    down = down_broker_ids(snapshot)
    total = cross = 0.0
    unknown = not_copied = 0
    per_source: dict[int, float] = {}
    for i, key in zip(rows, keys, strict=True):
        live = [b for b in effective_isr(table.isr(i), down) if b != broker_id and b in alive]
        leader = table.leader(i)
        if leader != broker_id and leader in alive:
            source: int | None = leader
        else:
            source = next((b for b in table.replicas(i) if b in live), None)
        if source is None:
            not_copied += 1
            continue
        size = sizes[key]
        if math.isnan(size):
            unknown += 1
            size = 0.0
        total += size
        per_source[source] = per_source.get(source, 0.0) + size
        source_rack = rack_of.get(source)
        if own is None or source_rack is None or source_rack != own:
            cross += size
    busiest, bottleneck = _busiest({broker_id: total} if rows else {}, per_source)
    return CostEstimate(
        what=f"replacement of broker {broker_id} in its AZ ({own if own is not None else 'rack unknown'})",
        replicas=len(rows) - not_copied,
        bytes_moved=total,
        cross_az_bytes=cross,
        dollars=cross / 1e9 * p.inter_az_price_per_gb,
        eta_s=busiest / p.throttle_bytes_per_sec,
        bottleneck=bottleneck,
        price_per_gb=p.inter_az_price_per_gb,
        throttle_bytes_per_sec=float(p.throttle_bytes_per_sec),
        receivers=1 if rows else 0,
        unknown_size_replicas=unknown,
        not_copied=not_copied,
    )


@dataclass(frozen=True)
class ReplaceOrDrain:
    """The same failure repaired two ways: replace the broker in its AZ, or drain it."""

    broker: int
    replace: CostEstimate
    drain: CostEstimate
    cheaper: str  # "replace", "drain" or "same" (within a cent)
    faster: str  # "replace", "drain" or "same" (within a second)
    verdict: str  # one line an operator can act on

    def to_record(self) -> dict[str, Any]:
        """The compact form for reports: each side's ``CostEstimate.record()`` and the verdict."""
        return {
            "broker": self.broker,
            "replace": self.replace.record(),
            "drain": self.drain.record(),
            "cheaper": self.cheaper,
            "faster": self.faster,
            "verdict": self.verdict,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "broker": self.broker,
            "replace": self.replace.to_dict(),
            "drain": self.drain.to_dict(),
            "cheaper": self.cheaper,
            "faster": self.faster,
            "verdict": self.verdict,
        }


def compare_replace_vs_drain(
    snapshot: ClusterSnapshot, broker_id: int, policy: HealthPolicy | None = None
) -> ReplaceOrDrain:
    """Cost of replacing ``broker_id`` in its AZ (``replacement_cost``) next to the cost of draining
    it (``plan_moves`` with the policy's disk ceiling, partial plans allowed), both for the same
    failure (the broker down: ``as_failed``), and a one-line verdict saying which is cheaper and
    which is faster. Raises ``ConfigError`` for an unknown broker, or as ``plan_moves`` does for a
    drain that cannot be meant (e.g. the last broker)."""
    p = _policy(policy)
    replace = replacement_cost(snapshot, broker_id, p)
    failed = as_failed(snapshot, broker_id)
    plan = plan_moves(
        failed, DrainRequest(brokers=[int(broker_id)], max_disk_usage=p.move_max_disk_usage), allow_partial=True
    )
    drain = estimate_plan(plan, p, what=f"drain of broker {int(broker_id)}")
    cheaper = _winner(replace.dollars, drain.dollars, 0.01)
    faster = _winner(replace.eta_s, drain.eta_s, 1.0)
    verdict = _verdict(int(broker_id), replace, drain, cheaper, faster)
    return ReplaceOrDrain(int(broker_id), replace, drain, cheaper, faster, verdict)


def as_failed(snapshot: ClusterSnapshot, broker_id: int) -> ClusterSnapshot:
    """``snapshot`` with ``broker_id`` down (alive=False): the failure both repairs answer.

    Why: a broker still listed as alive leads some partitions, and a drain planned against that
    state copies those from the broker itself (in its own AZ, as a busy sender); after the crash
    being repaired, they come from the new leaders. Nothing else changes (the guards already judge
    a down broker's ISR entries as not in sync).
    """
    brokers = snapshot.brokers.copy()
    mask = brokers["broker_id"].astype("int64") == int(broker_id)
    brokers["alive"] = brokers["alive"].astype(object)
    brokers.loc[mask, "alive"] = False
    return dataclasses.replace(snapshot, brokers=brokers)


def _winner(replace: float, drain: float, tolerance: float) -> str:
    if abs(replace - drain) < tolerance:
        return "same"
    return "replace" if replace < drain else "drain"


def _verdict(broker: int, replace: CostEstimate, drain: CostEstimate, cheaper: str, faster: str) -> str:
    speed = (
        f"both take ~{human_duration(replace.eta_s)}"
        if faster == "same"
        else f"{faster} is faster (~{human_duration(min(replace.eta_s, drain.eta_s))} vs "
        f"~{human_duration(max(replace.eta_s, drain.eta_s))})"
    )
    money = (
        f"both cost ${replace.dollars:,.2f} in cross-AZ traffic"
        if cheaper == "same"
        else f"{cheaper} is cheaper (${min(replace.dollars, drain.dollars):,.2f} vs "
        f"${max(replace.dollars, drain.dollars):,.2f} cross-AZ)"
    )
    text = f"Broker {broker}: {speed}; {money}; replace copies {human_bytes(replace.bytes_moved)} onto 1 new broker"
    text += f", drain {human_bytes(drain.bytes_moved)} onto {drain.receivers} broker(s)"
    caveats = []
    if drain.not_copied:
        caveats.append(f"{drain.not_copied} partition(s) cannot be drained")
    if replace.not_copied:
        caveats.append(f"{replace.not_copied} partition(s) have no live in-sync copy to re-fetch")
    if caveats:
        text += " (" + "; ".join(caveats) + ")"
    return text


__all__ = ["ReplaceOrDrain", "compare_replace_vs_drain", "estimate_plan", "replacement_cost"]
