"""Running the async core of a command from sync code (the CLI, bootstrap), inside or outside an event loop.

The tasks layer is async only (one API, no sync twins). A sync entry point calls it through
:func:`run_sync`: ``asyncio.run`` when no loop is running, else a private loop in a worker thread
(a sync helper called from async code -- a test, a notebook -- must not block or reuse that loop).
A CLI command that may change a cluster runs through :func:`run_interruptible`, so Ctrl-C and
SIGTERM end it cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import signal
import sys
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    ctx = contextvars.copy_context()  # the caller's Prefect settings (API URL) go with it
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(ctx.run, asyncio.run, coro).result()


#: After Ctrl-C / SIGTERM: how long the CLI waits for the run's own cleanup (cancel the running
#: moves, remove throttles, keep the undo, end the audit trail; each of those is bounded itself).
INTERRUPT_GRACE_S = 150.0


def run_interruptible(coro: Coroutine[Any, Any, T], *, grace_s: float = INTERRUPT_GRACE_S) -> T:
    """Run ``coro`` so that Ctrl-C and SIGTERM stop it *cleanly*, then raise KeyboardInterrupt (exit 130).

    Why not ``asyncio.run``: there Ctrl-C cancels the run, but SIGTERM meets Prefect's own handler,
    which raises inside whatever the event loop is doing and then kills the process with the
    default action -- no ``finally`` of ours runs, so throttles, the undo and the audit's end were
    lost. Here the event loop runs on a worker thread (Prefect installs no signal handler off the
    main thread) and the main thread turns either signal into one cancellation of the run, whose
    shielded, bounded cleanup then runs (:func:`kafka_medic.waiting.finish_shielded`). A second
    signal, or ``grace_s`` without the run ending, stops waiting: what is left stays in the
    reassignment journal for the next run to adopt.
    """
    if threading.current_thread() is not threading.main_thread():
        return run_sync(coro)
    loop = asyncio.new_event_loop()
    ctx = contextvars.copy_context()  # the caller's Prefect settings (API URL) go with it
    task = loop.create_task(coro, context=ctx)
    outcome: dict[str, Any] = {}

    def drive() -> None:
        asyncio.set_event_loop(loop)
        try:
            outcome["result"] = loop.run_until_complete(task)
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc
        finally:
            with contextlib.suppress(Exception):  # as asyncio.run does
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    interrupted: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        if interrupted:
            raise KeyboardInterrupt  # second signal: stop waiting for the cleanup
        interrupted.append(signum)
        print(
            f"kafka-medic: {signal.Signals(signum).name}: stopping; cancelling the running moves and removing "
            "throttles (signal again to stop waiting)",
            file=sys.stderr,
            flush=True,
        )
        loop.call_soon_threadsafe(task.cancel)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    worker = threading.Thread(target=drive, name="kafka-medic-run", daemon=True)
    try:
        worker.start()
        deadline: float | None = None
        while worker.is_alive():
            worker.join(0.2)
            if interrupted and deadline is None:
                deadline = time.monotonic() + grace_s
            if deadline is not None and time.monotonic() > deadline:
                break
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if interrupted:
        raise KeyboardInterrupt
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]  # type: ignore[no-any-return]
