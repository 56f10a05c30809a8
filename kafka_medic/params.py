"""Form fields every mutating flow shares, so each form asks the same question the same way."""

from __future__ import annotations

from typing import Any

from pydantic import Field

#: How long to wait for the cluster's mutate lock before the run completes as ``busy``.
LOCK_WAIT: Any = Field(
    30.0, ge=0, le=3600, description="How long to wait for the cluster's mutate lock (another action running)."
)
