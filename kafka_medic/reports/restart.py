"""The rolling-restart report and how it reads in the UI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class RestartStep(BaseModel):
    broker_id: int
    restart_s: float
    isr_full_s: float
    summary: str


class RollingRestartReport(BaseModel):
    cluster: str
    dry_run: bool
    brokers: list[int]
    status: str = Field("planned", description="planned (dry run), completed, refused, busy, stopped")
    summary: str = ""
    blockers: list[str] = Field(default_factory=list, description="why the first step would be refused now")
    steps: list[RestartStep] = Field(default_factory=list)
    election: dict[str, Any] | None = None
    audit: list[dict[str, Any]] = Field(default_factory=list)


def restart_markdown(r: RollingRestartReport) -> str:
    title = "dry run" if r.dry_run else f"{len(r.steps)} of {len(r.brokers)} brokers restarted"
    lines = [f"# Rolling restart of `{r.cluster}`: {title}", "", f"Order: {r.brokers}", ""]
    if r.blockers:
        lines += ["**Refused / stopped because:**", "", *[f"- {b}" for b in r.blockers], ""]
    if r.steps:
        lines += ["| broker | restart (s) | ISR full after (s) | summary |", "|---|---|---|---|"]
        lines += [f"| {s.broker_id} | {s.restart_s} | {s.isr_full_s} | {s.summary} |" for s in r.steps]
    if r.election:
        lines += ["", f"Preferred leader election afterwards: {r.election['moved']} of {r.election['requested']} moved"]
    return "\n".join(lines)
