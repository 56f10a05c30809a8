"""The reassign and cancel-reassignment reports: the plan, its cost, what ran, and how they read in the UI."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field

from kafka_medic.errors import ActionFailed
from kafka_medic.executor import ExecutionResult
from kafka_medic.executor.batching import estimate_seconds, waves
from kafka_medic.executor.isr import capped
from kafka_medic.planner import Plan, estimate_plan, partition_sizes
from kafka_medic.planner.models import human_duration
from kafka_medic.policy import HealthPolicy
from kafka_medic.snapshot import ClusterSnapshot

#: Rows of the plan table artifact (the full plan is in the flow's result).
MAX_TABLE_ROWS = 1000


class ReassignReport(BaseModel):
    cluster: str
    status: str = Field(
        description="dry_run, completed, nothing_to_do, skipped (lock busy); on failure the raised error's report "
        "carries timed_out, partial, cancelled, stopped or isr_not_full"
    )
    dry_run: bool
    summary: str
    request: dict[str, Any]
    moves: int = Field(0, description="partitions in the plan")
    plan: dict[str, Any] | None = Field(None, description="planner output (moves, cost, unplaceable)")
    throttle_bytes_per_sec: int
    estimated_copy_s: float | None = Field(None, description="busiest receiver's bytes / throttle (lower bound)")
    cost_estimate: dict[str, Any] | None = Field(
        None, description="bytes, cross-AZ bytes, dollars and ETA of the plan (``CostEstimate.record()``)"
    )
    waves: int | None = Field(None, description="waves of moves under the caps if each wave finished together")
    preexisting_throttles: list[str] = Field(default_factory=list, description="throttles someone else set")
    journal: dict[str, Any] | None = Field(None, description="dry run: unfinished work of an earlier run")
    adoption: dict[str, Any] | None = None
    execution: dict[str, Any] | None = None
    verify: dict[str, Any] | None = None
    audit: list[dict[str, Any]] = Field(default_factory=list)
    run_id: str | None = None
    elapsed_s: float = 0.0


class ReassignmentIncomplete(ActionFailed):
    """Moves ran but did not all finish (timeout, failures, cancellation) or the ISR did not recover."""

    def __init__(self, message: str, report: ReassignReport) -> None:
        super().__init__(message)
        self.report = report


class CancelReport(BaseModel):
    cluster: str
    status: str = Field("completed", description="completed, nothing_to_do, dry_run, refused, busy, failed")
    summary: str
    held_lock: bool = Field(description="False: a reassign run was active; it removes its own throttles")
    result: dict[str, Any]
    throttles_removed: dict[str, Any] | None = None
    audit: list[dict[str, Any]] = Field(default_factory=list)


def plan_rows(plan: Plan, snapshot: ClusterSnapshot) -> list[dict[str, Any]]:
    sizes = partition_sizes(snapshot, [(m.topic, m.partition) for m in plan.moves])
    rows = []
    for m in plan.moves[:MAX_TABLE_ROWS]:
        size = sizes.get((m.topic, m.partition), math.nan)
        rows.append(
            {
                "partition": m.name,
                "old_replicas": str(list(m.old_replicas)),
                "new_replicas": str(list(m.new_replicas)),
                "added": str(list(m.added)),
                "removed": str(list(m.removed)),
                "size_mb": None if math.isnan(size) else round(size / 1e6, 3),
            }
        )
    return rows


def cost_markdown(
    cluster: str, request: dict[str, Any], dry_run: bool, caps: tuple[int, int], plan: Plan, rate: int,
    est_s: float | None, n_waves: int, preexisting: list[str], journal: dict[str, Any] | None,
    estimate: dict[str, Any] | None = None,
) -> str:  # fmt: skip
    """The plan's cost table; ``request`` is the planner request, ``caps`` (per broker, per cluster),
    ``estimate`` its ``CostEstimate.record()`` (dollars and ETA rows)."""
    c = plan.cost
    lines = [
        f"# Reassignment plan for `{cluster}` ({'dry run' if dry_run else 'to execute'})",
        "",
        f"Request: `{request}`",
        "",
        f"**{plan.summary()}**",
        "",
        "| figure | value |",
        "|---|---|",
        f"| partitions | {c.partitions} |",
        f"| replicas moved | {c.replicas_moved} |",
        f"| bytes moved | {c.bytes_moved / 1e6:.1f} MB |",
        f"| cross-AZ bytes | {c.cross_az_bytes / 1e6:.1f} MB |",
        f"| replicas of unknown size | {c.unknown_size_replicas} |",
        f"| preferred-leader changes | {c.preferred_leader_changes} |",
        f"| throttle | {rate / 1e6:.2f} MB/s per broker |",
        f"| copy time at the throttle (lower bound) | {'unknown' if est_s is None else f'{est_s:.0f} s'} |",
        *(
            [
                f"| cross-AZ cost | ${estimate['dollars']:,.2f} at ${estimate['price_per_gb']:g}/GB |",
                f"| ETA at the throttle (busiest broker, received or sent) | ~{human_duration(estimate['eta_s'])} "
                f"({estimate['bottleneck']}) |",
            ]
            if estimate
            else []
        ),
        f"| waves (caps {caps[0]}/broker, {caps[1]}/cluster) | {n_waves} |",
    ]
    if c.per_broker_bytes_in:
        lines += ["", "| receiving broker | replicas in | MB in |", "|---|---|---|"]
        for b, n in c.per_broker_in.items():
            lines.append(f"| {b} | {n} | {c.per_broker_bytes_in.get(b, 0.0) / 1e6:.1f} |")
    if plan.unplaceable:
        lines += ["", f"## {len(plan.unplaceable)} partition(s) left in place", ""]
        lines += [f"- {u.name}: {u.reason}" for u in plan.unplaceable[:50]]
    if preexisting:
        lines += ["", "## Throttles someone else set (kept as they are)", ""] + [f"- {p}" for p in preexisting]
    if journal:
        lines += ["", "## Unfinished work of an earlier run (adopted by the next real run)", "", f"- {journal}"]
    return "\n".join(lines)


def result_markdown(report: ReassignReport) -> str:
    lines = [f"# Reassignment of `{report.cluster}`: {report.status}", "", report.summary, ""]
    ex = report.execution or {}
    for label, key in (
        ("moves time (first submit to last done)", "moves_s"),
        ("throttle cleanup after the last move", "cleanup_s"),
    ):
        if ex.get(key) is not None:
            lines.append(f"- {label}: {ex[key]} s")
    if ex.get("failed"):
        lines += ["", "## Failed", ""] + [f"- {k}: {v}" for k, v in list(ex["failed"].items())[:50]]
    if ex.get("still_running"):
        lines += ["", f"## Still running ({len(ex['still_running'])})", "", capped(ex["still_running"])]
    if ex.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in ex["notes"]]
    if report.adoption:
        lines += ["", "## Adopted", "", f"- {report.adoption}"]
    if report.verify:
        lines += ["", "## ISR", "", f"- {report.verify.get('message', '')}"]
    return "\n".join(lines)


def first_notes(result: ExecutionResult) -> str:
    bits = []
    if result.failed:
        bits.append("failed: " + capped([f"{k} ({v})" for k, v in result.failed.items()], limit=5, sep="; "))
    if result.still_running:
        bits.append("still running: " + capped(result.still_running, limit=10))
    bits += result.notes[:3]
    return ("; " + "; ".join(bits)) if bits else ""


def fill_plan_figures(
    report: ReassignReport,
    snapshot: ClusterSnapshot,
    plan: Plan,
    rate: int,
    caps: tuple[int, int],
    policy: HealthPolicy | None = None,
) -> None:
    """The plan's figures on the report: its moves, the copy time at the throttle (the busiest receiver's
    bytes / throttle, a lower bound), the waves of moves under the caps (per broker, per cluster), and
    its cost in bytes, dollars (at the policy's price per GB) and ETA at this run's throttle."""
    report.cost_estimate = estimate_plan(plan, policy, throttle_bytes_per_sec=rate).record()
    sizes = partition_sizes(snapshot, [(m.topic, m.partition) for m in plan.moves])
    leaders = {(m.topic, m.partition): -1 for m in plan.moves}
    p = snapshot.partitions
    if not p.empty:
        for t, n, ldr in zip(p["topic"], p["partition"], p["leader"], strict=True):
            if (t, int(n)) in leaders:
                leaders[(t, int(n))] = int(ldr)
    plan_waves = waves(
        plan.moves, leaders=leaders, alive=snapshot.alive_broker_ids, max_per_broker=caps[0], max_per_cluster=caps[1]
    )
    report.moves = len(plan.moves)
    report.plan = plan.to_dict()
    report.estimated_copy_s = estimate_seconds(plan.moves, sizes, rate)
    report.waves = len(plan_waves)
