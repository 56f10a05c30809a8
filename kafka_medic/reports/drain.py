"""The drain / undrain report and how it reads in the UI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class DrainReport(BaseModel):
    action: str = Field(description='"drain" or "undrain"')
    cluster: str
    broker_id: int
    dry_run: bool
    status: str = Field("planned", description="planned (dry run), completed, nothing_to_do, skipped, busy, refused")
    moves: int = Field(description="partitions moved (or to move, in a dry run)")
    summary: str
    plan: dict[str, Any] | None = Field(None, description="planner output (moves, cost, unplaceable)")
    cost: dict[str, Any] | None = Field(
        None, description="drain: bytes, cross-AZ bytes, dollars and ETA of its plan (``CostEstimate.record()``)"
    )
    rollback_stored_in: str | None = Field(None, description="Prefect Variable(s) holding the undo")
    remaining_on_broker: int | None = Field(None, description="replicas still on the broker afterwards")
    reassign: dict[str, Any] | None = Field(None, description="the reassign flow's report (drain)")
    execution: dict[str, Any] | None = Field(None, description="the executor's result (undrain)")
    skipped: list[dict[str, Any]] = Field(default_factory=list, description="undrain: partitions not moved back")
    audit: list[dict[str, Any]] = Field(default_factory=list)


def drain_markdown(r: DrainReport) -> str:
    lines = [
        f"# {r.action.capitalize()} of broker {r.broker_id} on `{r.cluster}`" + (" (dry run)" if r.dry_run else "")
    ]
    lines += ["", f"**{r.summary}**"]
    if r.cost:
        lines += ["", f"Cost: {r.cost['summary']}"]
    if r.rollback_stored_in:
        lines += ["", f"Undo stored in {r.rollback_stored_in}: run `undrain-broker` to put the replicas back."]
    moves = (r.plan or {}).get("moves") or []
    if moves:
        lines += ["", "| partition | from | to |", "|---|---|---|"]
        lines += [f"| {m['topic']}-{m['partition']} | {m['old_replicas']} | {m['new_replicas']} |" for m in moves[:500]]
    if r.skipped:
        lines += ["", "| partition | skipped because |", "|---|---|"]
        lines += [f"| {s['partition']} | {s['reason']} |" for s in r.skipped[:500]]
    return "\n".join(lines)
