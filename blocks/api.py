"""One-line errors for the Prefect API, shared by everything that talks to it (blocks, tasks, setup).

A flow that cannot reach the server must fail with a line an operator can act on (which URL, what
was being done), not with an httpx traceback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx

from kafka_medic.errors import CoordinationError

T = TypeVar("T")


def api_url() -> str:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or "the ephemeral in-process Prefect server"


def describe_http_error(exc: httpx.HTTPStatusError) -> str:
    try:
        detail = exc.response.json().get("detail")
    except Exception:
        detail = None
    text = f"HTTP {exc.response.status_code}"
    return f"{text}: {detail}" if detail else text


@contextmanager
def prefect_api_errors(doing: str) -> Iterator[None]:
    """Turn transport and HTTP errors from the Prefect client into one-line CoordinationErrors."""
    try:
        yield
    except httpx.HTTPStatusError as exc:
        raise CoordinationError(f"Prefect API at {api_url()} refused {doing}: {describe_http_error(exc)}") from exc
    except (httpx.HTTPError, OSError) as exc:
        raise CoordinationError(
            f"Prefect API at {api_url()} is unreachable while {doing}: {type(exc).__name__}: {exc}. "
            "Check PREFECT_API_URL and that the Prefect server is running."
        ) from exc


async def read_or_none(doing: str, read: Callable[[Any], Awaitable[T]]) -> T | None:
    """``read(client)`` on a fresh Prefect client; None when the object does not exist (one-line errors)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with prefect_api_errors(doing):
        async with get_client() as client:
            try:
                return await read(client)
            except ObjectNotFound:
                return None
