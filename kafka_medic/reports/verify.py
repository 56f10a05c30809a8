"""The verify-isr report: which partitions were checked, which are still short of a full ISR."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from kafka_medic.errors import ActionFailed
from kafka_medic.executor.isr import MAX_LISTED


class VerifyIsrReport(BaseModel):
    cluster: str
    ok: bool
    partitions_checked: int = Field(description="partitions selected by the filters")
    waited_s: float
    polls: int
    shortfall_count: int = Field(0, description="partitions still short at the end")
    shortfalls: list[dict[str, Any]] = Field(default_factory=list, description=f"at most {MAX_LISTED} of them")
    message: str = ""


class IsrNotFull(ActionFailed):
    """Some partitions were still short of a full ISR when the wait ended."""

    def __init__(self, message: str, report: VerifyIsrReport) -> None:
        super().__init__(message)
        self.report = report


def isr_markdown(report: VerifyIsrReport) -> str:
    head = "ISR full" if report.ok else "**ISR NOT full**"
    lines = [
        f"# verify-isr on `{report.cluster}`: {head}",
        "",
        f"{report.partitions_checked} partition(s) checked, {report.polls} poll(s), {report.waited_s:.1f} s.",
        "",
        report.message,
    ]
    if report.shortfalls:
        lines += ["", "| partition | replicas | ISR | missing | leader | problems |", "|---|---|---|---|---|---|"]
        for s in report.shortfalls:
            cells = [s["partition"], s["replicas"], s["isr"], s["missing"], s["leader"], s["problems"]]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        if report.shortfall_count > len(report.shortfalls):
            lines.append(f"\n... and {report.shortfall_count - len(report.shortfalls)} more.")
    return "\n".join(lines)
