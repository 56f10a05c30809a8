"""What every replacer kind provides: ``replace``, ``restart`` and ``plan`` a broker, and their results.

Everything here is synchronous (subprocesses, boto3, JVM starts): flows call it through
``asyncio.to_thread``. Waiting for the broker to register and for the ISR to fill is NOT done
here -- that is the flow's job and the same for every kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from kafka_medic.errors import MedicError


class ReplacerError(MedicError):
    """A replacer could not do its job. ``changed``: True/False when known, None when unknown
    (a failed script may have done anything before failing)."""

    def __init__(self, message: str, *, changed: bool | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.changed = changed
        self.details = details or {}


@dataclass(frozen=True)
class ReplaceOutcome:
    """What a replacer did. ``details`` are JSON-safe and secret-free (they go to the audit)."""

    kind: str  # "sandbox" | "script" | "ec2"
    action: str  # "replace" | "restart" | "plan"
    broker_id: int
    summary: str
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "action": self.action,
            "broker_id": self.broker_id,
            "summary": self.summary,
            "seconds": round(self.seconds, 3),
            "details": self.details,
        }


class Replacer(Protocol):
    """The interface every replacer kind provides."""

    kind: str
    supports_restart: bool

    def replace(self, broker_id: int, host: str) -> ReplaceOutcome:
        """Give the broker a fresh machine/disk (same broker id); return once it has been started."""
        ...

    def restart(self, broker_id: int, host: str) -> ReplaceOutcome:
        """Restart the broker keeping its disk (Orion's first step for a "maybe dead" broker)."""
        ...

    def plan(self, broker_id: int, host: str) -> ReplaceOutcome:
        """Describe what ``replace`` would do, changing nothing (dry runs)."""
        ...
