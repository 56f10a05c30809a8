"""The preferred-leader-election report and how it reads in the UI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ElectionReport(BaseModel):
    cluster: str
    dry_run: bool
    status: str = Field("planned", description="planned (dry run), completed, nothing_to_do, busy, failed")
    summary: str = ""
    eligible: list[str] = Field(description="partitions whose leader would move / was asked to move")
    blocked: list[dict[str, Any]] = Field(description="skewed partitions whose preferred replica is out of sync")
    moved: int = Field(0, description="leaders now on their preferred replica (0 in a dry run)")
    not_moved: list[str] = Field(default_factory=list)
    errors: dict[str, str] = Field(default_factory=dict)
    audit: list[dict[str, Any]] = Field(default_factory=list)


def election_line(r: ElectionReport) -> str:
    if r.dry_run:
        return f"dry run: {len(r.eligible)} leader(s) would move, {len(r.blocked)} cannot (preferred out of sync)"
    return f"{r.moved} leader(s) moved, {len(r.not_moved)} did not, {len(r.blocked)} cannot (preferred out of sync)"


def election_markdown(r: ElectionReport) -> str:
    lines = [f"# Preferred leader election on `{r.cluster}`", "", f"**{election_line(r)}**", ""]
    if r.eligible:
        lines += ["Partitions: " + ", ".join(r.eligible[:200]) + (" ..." if len(r.eligible) > 200 else ""), ""]
    if r.blocked:
        lines += ["| partition | leader | preferred | why not |", "|---|---|---|---|"]
        lines += [f"| {b['partition']} | {b['leader']} | {b['preferred']} | {b['reason']} |" for b in r.blocked[:200]]
    return "\n".join(lines)
