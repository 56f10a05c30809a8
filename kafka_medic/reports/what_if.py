"""The what-if report: verdicts, findings, decisions, the drain plan and its cost; how it reads in the UI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from kafka_medic.planner.models import human_bytes, human_duration

#: Moves listed in the table artifact (the return value has them all).
MAX_TABLE_ROWS = 1000


class WhatIfReport(BaseModel):
    """The verdicts, the plan and its cost (``plan`` is ``Plan.to_dict()``)."""

    cluster: str
    broker_ids: list[int]
    safe: bool = Field(description="True when nothing would go offline or below min ISR")
    offline: list[str] = Field(description="partitions whose every in-sync replica is on those brokers")
    under_min_isr: list[str] = Field(description="partitions left with fewer in-sync replicas than min ISR")
    leaderships: int = Field(description="partitions those brokers lead (leader elections)")
    mass_failure: bool = Field(description="True when automation would stand down and page instead of healing")
    automation_allowed: bool
    verdict: str = Field(description="one line an operator can act on")
    findings: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    plan: dict[str, Any] | None = Field(description="drain plan of the dead brokers (what reassign-away would move)")
    plan_error: str | None = None
    cost: dict[str, Any] | None = None
    cross_az_bytes: float | None = None
    estimate: dict[str, Any] | None = Field(
        None, description="the drain plan's bytes, cross-AZ bytes, dollars and ETA (``CostEstimate.record()``)"
    )
    replace_vs_drain: list[dict[str, Any]] = Field(
        default_factory=list,
        description="per dead broker: replacing it in its AZ vs draining it, which is cheaper and which faster",
    )
    replace_vs_drain_notes: list[str] = Field(default_factory=list, description="brokers not compared, and why")
    mode: str
    maintenance: bool


def report_markdown(r: WhatIfReport) -> str:
    lines = [f"# What if brokers {r.broker_ids} of `{r.cluster}` died?", "", f"**{r.verdict}**", ""]
    lines += [f"- mode: `{r.mode}`" + (" (maintenance mode on)" if r.maintenance else "")]
    lines += [f"- partitions offline: {len(r.offline)}" + (f" ({', '.join(r.offline[:50])})" if r.offline else "")]
    lines += [
        f"- partitions below min ISR: {len(r.under_min_isr)}"
        + (f" ({', '.join(r.under_min_isr[:50])})" if r.under_min_isr else "")
    ]
    lines += [f"- leaders to re-elect: {r.leaderships}"]
    if r.cost:
        c = r.cost
        lines += [
            f"- to move: {c['partitions']} partitions, {c['replicas_moved']} replicas, "
            f"{c['bytes_moved'] / 1e9:.3f} GB ({c['cross_az_bytes'] / 1e9:.3f} GB cross-AZ)"
        ]
    if r.estimate:
        lines += [f"- drain cost: {r.estimate['summary']}"]
    if r.plan_error:
        lines += [f"- no drain plan: {r.plan_error}"]
    if r.plan and r.plan["unplaceable"]:
        lines += [f"- cannot be placed: {len(r.plan['unplaceable'])} partition(s)"]
    lines += replace_vs_drain_markdown(r)
    if r.decisions:
        lines += ["", "## Decisions", "", "| remedy | broker | execute | reason |", "|---|---|---|---|"]
        lines += [f"| {d['remedy']} | {d['broker_id'] or ''} | {d['execute']} | {d['reason']} |" for d in r.decisions]
    if r.findings:
        lines += ["", "## Findings", "", "| severity | rule | summary |", "|---|---|---|"]
        lines += [f"| {f['severity']} | {f['rule']} | {f['summary']} |" for f in r.findings]
    return "\n".join(lines)


def replace_vs_drain_markdown(r: WhatIfReport) -> list[str]:
    """The replace-in-the-same-AZ vs drain table: both repairs of the same failure side by side."""
    if not r.replace_vs_drain and not r.replace_vs_drain_notes:
        return []
    lines = ["", "## Replace in the same AZ, or drain?", ""]
    if r.replace_vs_drain:
        lines += [
            "| broker | repair | bytes | cross-AZ | dollars | ETA | bottleneck |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in r.replace_vs_drain:
            for side in ("replace", "drain"):
                e = c[side]
                mark = " (cheaper)" if c["cheaper"] == side else ""
                fast = " (faster)" if c["faster"] == side else ""
                lines.append(
                    f"| {c['broker']} | {side} | {human_bytes(e['bytes'])} | {human_bytes(e['cross_az_bytes'])} | "
                    f"${e['dollars']:,.2f}{mark} | ~{human_duration(e['eta_s'])}{fast} | {e['bottleneck']} |"
                )
        lines += [""] + [f"- {c['verdict']}" for c in r.replace_vs_drain]
    lines += [f"- {n}" for n in r.replace_vs_drain_notes]
    lines += [
        "",
        "ETAs count copying at the throttle only: a replacement also waits for its machine, and a drain "
        "leaves the cluster one broker short until one is back.",
    ]
    return lines


def move_rows(plan: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not plan:
        return []
    rows = [
        {"partition": f"{m['topic']}-{m['partition']}", "from": str(m["old_replicas"]), "to": str(m["new_replicas"])}
        for m in plan["moves"][:MAX_TABLE_ROWS]
    ]
    rows += [
        {"partition": f"{u['topic']}-{u['partition']}", "from": "", "to": f"UNPLACEABLE: {u['reason']}"}
        for u in plan["unplaceable"][: max(0, MAX_TABLE_ROWS - len(rows))]
    ]
    return rows
