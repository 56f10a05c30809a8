"""What one health-check cycle found and decided: the report, and how it reads in the UI."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from kafka_medic.decide import Decision, cost_line
from kafka_medic.findings import Severity
from kafka_medic.judgment import Judgment, Ladder
from kafka_medic.policy import HealthPolicy
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
    judgment: dict[str, Any] = Field(default_factory=dict, description="scores, verdicts and the ladder")
    incidents: list[dict[str, Any]] = Field(
        default_factory=list, description="incident transitions this cycle (opened, escalated, repeated, resolved)"
    )


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
        lines += ["", "## Decisions", "", "| remedy | broker | execute | reason | cost |", "|---|---|---|---|---|"]
        for d in decisions:
            cost = cost_line(d.cost) or (f"unknown: {d.cost_error}" if d.cost_error else "")
            lines.append(f"| {d.remedy.value} | {d.broker_id or ''} | {d.execute} | {d.reason} | {cost} |")
    return "\n".join(lines)


def table_records(health: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows (timestamps as ISO text, NaN as null) for a Prefect table artifact."""
    return json.loads(health.round(3).to_json(orient="records", date_format="iso"))


def judgment_record(judgment: Judgment, ladder: Ladder) -> dict[str, Any]:
    """The judgment of this cycle for the report: why nobody was judged, each broker's verdict and rung."""
    return {
        "gate": judgment.gate,
        "verdicts": [v.to_record() for _, v in sorted(judgment.verdicts.items()) if v.score or v.suspect],
        # why a broker was not judged though the cycle was (too little traffic, catching up, ...)
        "not_judged": {
            str(b): v.not_judged
            for b, v in sorted(judgment.verdicts.items())
            if v.not_judged and v.not_judged != judgment.gate
        },
        "ladder": {str(b): e.to_json() for b, e in sorted(ladder.brokers.items())},
    }


def judgment_markdown(judgment: Judgment, ladder: Ladder, policy: HealthPolicy) -> str:
    """Scores, verdicts and the ladder in the UI: what automation thinks of each broker, and why."""
    lines = ["", "## Judgment (degraded brokers: evidence over time)", ""]
    lines.append(
        f"A broker climbs demote -> restart -> replace at scores {policy.demote_score} / {policy.restart_score} / "
        f"{policy.replace_score} (+1 per cycle its signals agree, -{policy.score_decay} per clean cycle)."
    )
    if judgment.gate:
        lines += ["", f"Nobody was judged this cycle: {judgment.gate}."]
    shown = [v for _, v in sorted(judgment.verdicts.items()) if v.score or v.suspect or ladder.of(v.broker_id).rung]
    shown_ids = {v.broker_id for v in shown}
    if shown or ladder.brokers:
        lines += ["", "| broker | score | suspect | rung taken | due now | attempts (window) | note |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for v in shown:
            e = ladder.of(v.broker_id)
            tried = ", ".join(f"{a.action} {'ok' if a.ok else 'FAILED'}" for a in e.attempts[-5:]) or "-"
            lines.append(
                f"| {v.broker_id} | {v.score} | {'yes' if v.suspect else 'no'} | {e.rung.value if e.rung else '-'} | "
                f"{v.due.value if v.due else '-'} | {tried} | {v.not_judged or ''} |"
            )
        for b, e in sorted(ladder.brokers.items()):
            if b not in shown_ids:
                tried = ", ".join(f"{a.action} {'ok' if a.ok else 'FAILED'}" for a in e.attempts[-5:]) or "-"
                lines.append(f"| {b} | - | - | {e.rung.value if e.rung else '-'} | - | {tried} | |")
    else:
        lines += ["", "No broker is under suspicion."]
    return "\n".join(lines)
