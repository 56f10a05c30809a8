"""The replace-broker result: what the run did (or why it did not), and how it reads in the UI."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from kafka_medic.errors import ActionFailed


class ReplaceFailed(ActionFailed):
    """The replacement was attempted and did not complete; the message says what state it left."""


class ReplaceStatus(StrEnum):
    PLANNED = "planned"  # dry run: every check ran, nothing changed
    BUSY = "busy"  # another action holds one of the cluster's locks
    SKIPPED = "skipped"  # cooling down, or the broker no longer needs healing
    REFUSED = "refused"  # a safety guard said no
    STOOD_DOWN = "stood_down"  # acting could not help (no controller, sole copies, audit unwritable)
    RESTARTED = "restarted"  # a restart was enough; no replacement
    REPLACED = "replaced"


class ReplaceBrokerResult(BaseModel):
    """What the run did."""

    cluster: str
    broker_id: int
    status: ReplaceStatus
    message: str
    dry_run: bool
    remaining_cooldown_s: float | None = None
    partitions: list[str] = Field(default_factory=list, description="partitions a refusal is about")
    outcome: dict[str, Any] | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    notes: dict[str, Any] = Field(default_factory=dict, description="host state, why it restarted first or not")
    audit: list[dict[str, Any]] = Field(default_factory=list)


def outcome_markdown(
    cluster: str,
    broker_id: int,
    status: str,
    message: str,
    timings: dict[str, float],
    cost: dict[str, Any] | None = None,
) -> str:
    """Every outcome (not only success) on the run's page: a refusal names its partitions there; a
    replacement (or its dry run) says what it copies (``cost``: ``CostEstimate.record()``)."""
    text = f"# Broker {broker_id} of `{cluster}`: {status}\n\n{message}\n\nTimings: `{timings}`"
    if cost and "summary" in cost:
        text += f"\n\nCost: {cost['summary']}"
    elif cost and "error" in cost:
        text += f"\n\nCost: unknown ({cost['error']})"
    return text
