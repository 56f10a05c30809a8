"""Findings: what the health rules say about a cluster, as plain data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Action(StrEnum):
    """What the decision engine may do about a finding."""

    NONE = "none"  # report only
    HEAL_DEAD_BROKER = "heal_dead_broker"  # restart it (disk kept) or replace it; without a replacer reassign away
    DEMOTE_BROKER = "demote_broker"  # a degraded broker's first rung: move its leaderships away
    RESTART_BROKER = "restart_broker"  # its second rung: restart it with its disk
    REPLACE_DEGRADED_BROKER = "replace_degraded_broker"  # its last rung (and a failed disk's only one)
    RESTORE_BROKER = "restore_broker"  # the episode is over: give a demoted broker its leaderships back
    PAGE = "page"  # a human must act; automation stands down


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    summary: str
    brokers: tuple[int, ...] = ()
    partitions: tuple[str, ...] = ()  # "topic-partition"
    evidence: dict[str, Any] = field(default_factory=dict)
    since: datetime | None = None
    action: Action = Action.NONE

    @property
    def actionable(self) -> bool:
        return self.action is not Action.NONE

    def to_record(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity.value
        d["action"] = self.action.value
        d["since"] = self.since.isoformat() if self.since else None
        d["brokers"] = list(self.brokers)
        d["partitions"] = list(self.partitions)
        return d
