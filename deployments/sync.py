"""Running the async core of a command from sync code (the CLI, bootstrap), inside or outside an event loop.

The tasks layer is async only (one API, no sync twins). A sync entry point calls it through
:func:`run_sync`: ``asyncio.run`` when no loop is running, else a private loop in a worker thread
(a sync helper called from async code -- a test, a notebook -- must not block or reuse that loop).
"""

from __future__ import annotations

import asyncio
import contextvars
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
