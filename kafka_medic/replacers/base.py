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


@dataclass(frozen=True)
class HostState:
    """What the host side says about a broker's machine and disk (None: this replacer cannot tell).

    The second signal next to Kafka's own view, read right before a destructive rung: a broker
    whose machine and disk are still there is restarted with its disk first; a wipe needs the disk
    gone, the host impaired, or a restart that did not help.
    """

    present: bool | None  # the machine/process slot still exists (a restart can bring it back)
    disk_intact: bool | None  # the broker's data is still on its disk
    impaired: bool | None = None  # the host itself reports a fault (EC2 status checks, scheduled retirement)
    detail: str = ""

    @property
    def restartable(self) -> bool:
        """A restart may bring the broker back with its data (unknown counts as yes: the restart is bounded)."""
        return self.present is not False and self.disk_intact is not False

    def to_record(self) -> dict[str, Any]:
        return {"present": self.present, "disk_intact": self.disk_intact, "impaired": self.impaired,
                "detail": self.detail}  # fmt: skip


UNKNOWN_HOST = HostState(None, None, None, "this replacer cannot see the host")


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

    def host_state(self, broker_id: int, host: str) -> HostState:
        """Read the host side (machine, disk, host faults); changes nothing; never raises for a read error
        (it returns what it could not tell as None, with the reason in ``detail``)."""
        ...
