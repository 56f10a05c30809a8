"""The one bounded wait: look again every so often until a check passes, never past a deadline.

Every wait in kafka-medic (a broker registering, an ISR filling, an instance starting, a server
answering) is the same loop, and the same three mistakes were made in its hand-written copies:
no deadline, a deadline overrun by a whole interval, and a timeout that does not say what was
last seen. Here:

* a check *returns* its value when done and *raises* :class:`NotYet` with the reason when not;
* exceptions listed in ``retry_on`` (transient read errors while a broker restarts) count as
  "not yet" and are named in the timeout message; anything else propagates at once;
* the last sleep is cut to the deadline, so a wait never overruns it by more than one check;
* the timeout is :class:`WaitTimeout` (a ``TimeoutError``) whose message says what was awaited,
  for how long, how many looks, and the last reason -- the line an operator needs.

``poll`` is for synchronous code (the sandbox, boto3 waits); ``apoll`` for flows and tasks, and it
accepts a check that is a coroutine function or a plain function (run it in a thread yourself if
it blocks: ``lambda: asyncio.to_thread(read)``).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class NotYet(Exception):
    """Raised by a check: the condition does not hold yet; the message says why (shown on timeout)."""


class WaitTimeout(TimeoutError):
    """A bounded wait ended without its condition; the message names it and the last reason."""

    def __init__(self, what: str, waited_s: float, looks: int, last: str) -> None:
        self.what = what
        self.waited_s = waited_s
        self.looks = looks
        self.last = last
        super().__init__(f"{what}: not reached after {waited_s:.0f} s ({looks} looks); last: {last}")


def _check_bounds(timeout_s: float, interval_s: float) -> None:
    if not (math.isfinite(timeout_s) and timeout_s >= 0):
        raise ValueError(f"timeout_s must be a finite number >= 0, got {timeout_s!r}")
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f"interval_s must be a finite number > 0, got {interval_s!r}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, NotYet):
        return str(exc) or "not yet"
    return f"{type(exc).__name__}: {exc}"


def poll(
    check: Callable[[], T],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.25,
    max_interval_s: float | None = None,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``check`` until it returns (its value is returned); :class:`WaitTimeout` after ``timeout_s``.

    ``max_interval_s``: the interval doubles after each look up to this bound (default: fixed).
    """
    _check_bounds(timeout_s, interval_s)
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    delay, looks, last = interval_s, 0, "not checked yet"
    while True:
        looks += 1
        try:
            return check()
        except NotYet as exc:
            last = _reason(exc)
        except retry_on as exc:
            last = _reason(exc)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(what, time.monotonic() - t0, looks, last)
        time.sleep(min(delay, remaining))
        if max_interval_s is not None:
            delay = min(max_interval_s, delay * 2)


async def apoll(
    check: Callable[[], Awaitable[T]] | Callable[[], T],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.25,
    max_interval_s: float | None = None,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """The async :func:`poll`: ``check`` may be a coroutine function or a plain (non-blocking) one."""
    _check_bounds(timeout_s, interval_s)
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    delay, looks, last = interval_s, 0, "not checked yet"
    while True:
        looks += 1
        try:
            value: Any = check()
            if inspect.isawaitable(value):
                value = await value
            return value  # type: ignore[no-any-return]
        except NotYet as exc:
            last = _reason(exc)
        except retry_on as exc:
            last = _reason(exc)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(what, time.monotonic() - t0, looks, last)
        await asyncio.sleep(min(delay, remaining))
        if max_interval_s is not None:
            delay = min(max_interval_s, delay * 2)


async def finish_shielded(aw: Awaitable[T], *, timeout_s: float) -> T:
    """Run cleanup to its end even while the caller is being cancelled, for at most ``timeout_s``.

    Why: Ctrl-C in the CLI, a cancelled flow run or a task group tearing down cancels the awaiting
    task, and a plain ``await`` in a ``finally`` is then cancelled at its first step (anyio's cancel
    scopes even re-cancel every later await), so throttles and audit ends were left behind.
    Cancellation requests that arrive meanwhile are held back and raised again once the cleanup is
    over; the deadline keeps a stuck cleanup from hanging the stop (what it did not finish is then
    the journal's, for the next run to adopt). Raises ``TimeoutError`` when the deadline cut it short.
    """
    _check_bounds(timeout_s, 1.0)
    task = asyncio.ensure_future(aw)
    deadline = time.monotonic() + timeout_s
    cancelled = False
    while not task.done():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            task.cancel()
            break
        try:
            await asyncio.wait({task}, timeout=remaining)
        except asyncio.CancelledError:
            cancelled = True
    if not task.done():
        try:
            await asyncio.wait({task}, timeout=5.0)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        if task.done() and not task.cancelled() and task.exception() is not None:
            task.exception()  # retrieved: the caller's cancellation is what propagates
        raise asyncio.CancelledError()
    if task.cancelled() or not task.done():
        raise TimeoutError(f"cleanup did not finish within {timeout_s:g} s")
    return task.result()
