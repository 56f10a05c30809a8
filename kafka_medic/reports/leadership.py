"""The report of a demotion (leadership taken off a broker) or its undo, and how it reads in the UI."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class LeadershipReport(BaseModel):
    action: Literal["demote", "restore"]
    cluster: str
    broker_id: int
    dry_run: bool
    status: str = Field(
        "planned", description="planned (dry run), completed, nothing_to_do, skipped, busy, refused, failed"
    )
    summary: str = ""
    reordered: list[str] = Field(default_factory=list, description="partitions whose replica order changed")
    elected: int = Field(0, description="leaders now where the action wanted them")
    not_moved: list[str] = Field(default_factory=list, description="partitions whose leader did not move")
    skipped: list[tuple[str, str]] = Field(default_factory=list, description="(partition, why) left as they were")
    leads_after: int | None = Field(None, description="partitions the broker leads afterwards")
    undo_stored_in: str | None = None
    audit: list[dict[str, Any]] = Field(default_factory=list)


def leadership_markdown(r: LeadershipReport) -> str:
    verb = "Demotion" if r.action == "demote" else "Leadership restore"
    lines = [f"# {verb} of broker {r.broker_id} on `{r.cluster}`", "", f"**{r.status}**: {r.summary}", ""]
    if r.reordered:
        lines += ["Reordered: " + ", ".join(r.reordered[:200]) + (" ..." if len(r.reordered) > 200 else ""), ""]
    if r.not_moved:
        lines += ["Leader did not move: " + ", ".join(r.not_moved[:200]), ""]
    if r.skipped:
        lines += ["| partition | left as it was because |", "|---|---|"]
        lines += [f"| {p} | {why} |" for p, why in r.skipped[:200]]
    if r.undo_stored_in:
        lines += ["", f"The undo is kept in {r.undo_stored_in}; `restore-broker` puts it back."]
    return "\n".join(lines)
