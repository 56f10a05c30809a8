"""Deleting a test's topics without waiting on a dead broker.

A test that ends with a broker down (killed, hung, being replaced) used to spend 15 s in its
teardown: the admin client's "controller" (in KRaft a random broker the metadata names) was the
dead broker, and the delete waited for its request timeout (measured: 15.00 s teardowns in every
such test). Here the delete goes through a fresh client with a short timeout; what it could not
delete is deleted by the next :func:`tests.conftest.repair`, once every broker is back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from kafka_medic.sandbox.cluster import Sandbox

#: Topics a teardown could not delete (a broker was down): the next repair deletes them.
_LEFT: set[str] = set()


def drop_topics(sb: Sandbox, names: Iterable[str], *, timeout_s: float = 5.0) -> None:
    """Delete ``names``; whatever is not confirmed within ``timeout_s`` is left for the next repair."""
    names = sorted(set(names))
    if not names:
        return
    admin = sb.admin()  # fresh: not the test's client, whose "controller" may be the dead broker
    try:
        futures = admin.delete_topics(names, request_timeout=timeout_s, operation_timeout=timeout_s)
    except Exception:
        _LEFT.update(names)
        return
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout_s + 1)
        except Exception as exc:
            if "UNKNOWN_TOPIC" not in str(exc):  # already gone is deleted
                _LEFT.add(name)


def drop_left_over(sb: Sandbox) -> None:
    """Delete what earlier teardowns could not (called with every broker back)."""
    if not _LEFT:
        return
    left = sorted(_LEFT)
    _LEFT.clear()
    with contextlib.suppress(Exception):
        drop_topics(sb, left, timeout_s=15.0)
