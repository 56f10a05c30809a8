"""Small helpers shared by the AWS modules: error codes, bounded waits, a step log."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError

logger = logging.getLogger("kafka_medic.aws")


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ("" for anything else), e.g. "InvalidIPAddress.InUse"."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def error_text(exc: BaseException) -> str:
    """One line for operators: "Code: message" for AWS errors, the exception text otherwise."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', '?')}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


class Deadline:
    """One time budget for a whole operation, so every wait loop in it is bounded.

    A single budget (rather than one per phase) lets the caller reason about the worst case in
    one number, e.g. to set a Prefect task timeout just above it.
    """

    def __init__(self, budget_s: float) -> None:
        self.start = time.monotonic()
        self.end = self.start + budget_s

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def sleep(self, poll_s: float, until: float | None = None) -> None:
        """Sleep ``poll_s`` but never past the deadline (or past ``until``, a monotonic time)."""
        end = self.end if until is None else min(self.end, until)
        time.sleep(max(0.0, min(poll_s, end - time.monotonic())))


class StepLog:
    """Human-readable record of what an action did, with offsets from its start, plus timings.

    Kept in the result (and in errors) because an operator reading an audit record after a failed
    replacement needs to know exactly which step ran last.
    """

    def __init__(self, deadline: Deadline, prefix: str) -> None:
        self._deadline = deadline
        self._prefix = prefix
        self.steps: list[str] = []
        self.timings: dict[str, float] = {}

    def __call__(self, message: str) -> None:
        line = f"{self._deadline.elapsed():7.2f}s {message}"
        self.steps.append(line)
        logger.info("%s %s", self._prefix, line)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - t0, 3)
