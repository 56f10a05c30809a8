"""Keeping secrets out of text that leaves the process: notices, pages, script output, audit summaries.

The last guard, not the first: messages are built from summaries (never from client configs), and
this replaces any known secret value that slipped in anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MASK = "**********"


def redact(text: str, secrets: Iterable[str], *, min_len: int = 3) -> str:
    """Replace every occurrence of each secret value (longest first) with a mask.

    ``min_len``: shorter values are left alone (a one-letter "secret" would mangle every message);
    script output passes 1, since nothing a script prints is worth a leaked credential.
    """
    for s in sorted({s for s in secrets if s and len(s) >= min_len}, key=len, reverse=True):
        text = text.replace(s, MASK)
    return text


def cluster_secrets(settings: Any) -> list[str]:
    """Every SecretStr value on a cluster's settings (SASL password, key password, ...)."""
    out: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if hasattr(value, "get_secret_value"):
            secret = value.get_secret_value()
            if isinstance(secret, str):
                out.append(secret)
    return out
