"""What one health-check cycle found and decided: the report, and how it reads in the UI."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from kafka_medic.decide import Decision
from kafka_medic.findings import Severity
from kafka_medic.rules import Evaluation


class HealthReport(BaseModel):
    """What one health-check cycle found and did (the flow's return value)."""

    cluster: str
    healthy: bool
    automation_allowed: bool
    maintenance: bool
    counts: dict[str, int] = Field(description="findings per severity")
    findings: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    dispatched: list[dict[str, Any]] = Field(default_factory=list)
    collect_s: float
    evaluate_s: float


def findings_markdown(cluster: str, ev: Evaluation, decisions: list[Decision], maintenance: bool) -> str:
    lines = [f"# Health of `{cluster}`", ""]
    if not ev.automation_allowed:
        lines += ["**AUTOMATION STANDS DOWN** — a human must act (see critical findings).", ""]
    if maintenance:
        lines += ["**Maintenance mode** — findings are reported, nothing is acted on.", ""]
    serious = [f for f in ev.findings if f.severity is not Severity.INFO]
    if not serious:
        lines.append("No warnings or critical findings.")
    else:
        lines += ["| severity | rule | brokers | summary | since |", "|---|---|---|---|---|"]
        for f in ev.findings:
            since = f.since.isoformat(timespec="seconds") if f.since else ""
            brokers = ",".join(map(str, f.brokers))
            lines.append(f"| {f.severity.value} | {f.rule} | {brokers} | {f.summary} | {since} |")
    if decisions:
        lines += ["", "## Decisions", "", "| remedy | broker | execute | reason |", "|---|---|---|---|"]
        for d in decisions:
            lines.append(f"| {d.remedy.value} | {d.broker_id or ''} | {d.execute} | {d.reason} |")
    return "\n".join(lines)


def table_records(health: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows (timestamps as ISO text, NaN as null) for a Prefect table artifact."""
    return json.loads(health.round(3).to_json(orient="records", date_format="iso"))
