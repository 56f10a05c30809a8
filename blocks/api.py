"""One-line errors for the Prefect API, shared by everything that talks to it (blocks, tasks, setup).

A flow that cannot reach the server must fail with a line an operator can act on (which URL, what
was being done), not with an httpx traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from kafka_medic.errors import CoordinationError


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
