"""Sending pages and notices through Prefect notification blocks (never raises; see :mod:`kafka_medic.notify`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

import prefect.blocks.notifications  # noqa: F401  (registers the notification block types for Block.aload)
from prefect.blocks.core import Block

from kafka_medic.notify import NOTICE_STATUSES, Delivery, error_text, format_notice
from kafka_medic.redaction import redact
from tasks.state import cluster_state

log = logging.getLogger("kafka_medic.notify")

NOTIFY_TIMEOUT_S = 30.0


async def notification_refs(cluster: str) -> list[str]:
    """The notification block references configured for ``cluster`` (empty if none)."""
    state = cluster_state(cluster)
    try:
        return await state.notify_refs()
    except Exception as exc:  # the Prefect API is down: report, do not raise
        log.error("cannot read notification config %s: %s", state.notify_variable(), exc)
        return []


async def _send_one(ref: str, subject: str, body: str, timeout_s: float) -> Delivery:
    try:
        block = await Block.aload(ref)
    except (ValueError, KeyError) as exc:
        return Delivery(ref, False, f"notification block {ref!r} not found or not loadable: {error_text(exc)}")
    send = getattr(block, "anotify", None)
    if send is None:
        notify = getattr(block, "notify", None)
        if notify is None:
            return Delivery(ref, False, f"block {ref!r} is not a notification block")

        async def send(body: str, subject: str | None = None) -> None:
            await asyncio.to_thread(notify, body, subject)

    try:
        await asyncio.wait_for(send(body, subject), timeout=timeout_s)
    except TimeoutError:
        return Delivery(ref, False, f"timed out after {timeout_s:.0f}s")
    except Exception as exc:
        return Delivery(ref, False, error_text(exc))
    return Delivery(ref, True)


async def anotify(
    cluster: str,
    subject: str,
    body: str,
    *,
    block_refs: Sequence[str] | None = None,
    secrets: Iterable[str] = (),
    timeout_s: float = NOTIFY_TIMEOUT_S,
) -> list[Delivery]:
    """Send ``subject``/``body`` through every configured notification block, concurrently.

    Never raises: returns one :class:`Delivery` per block. No blocks configured -> [] and a
    warning naming the Variable to set (the page is still in the audit trail and the logs).
    """
    refs = list(block_refs) if block_refs is not None else await notification_refs(cluster)
    secret_list = list(secrets)
    subject, body = redact(subject, secret_list), redact(body, secret_list)
    if not refs:
        log.warning(
            "no notification blocks configured for cluster %s (set Variable %s to a list of "
            "'<block-type-slug>/<block-name>'); message not sent: %s",
            cluster,
            cluster_state(cluster).notify_variable(),
            subject,
        )
        return []
    results = await asyncio.gather(*(_send_one(ref, subject, body, timeout_s) for ref in refs))
    for r in results:
        if not r.ok:
            log.error("notification via %s failed: %s", r.block, r.error)
    return list(results)


async def anotice(
    cluster: str,
    action: str,
    status: str,
    summary: str,
    *,
    brokers: Sequence[int] = (),
    secrets: Iterable[str] = (),
    statuses: frozenset[str] = NOTICE_STATUSES,
) -> list[Delivery]:
    """Send a notice for an audited action whose ``status`` is in ``statuses``; never raises.

    Quiet when the cluster has no notification channels (unlike a page, a notice is not worth a
    warning in every run's log): the audit record is the trail either way.
    """
    if str(status) not in statuses:
        return []
    try:
        refs = await notification_refs(cluster)
        if not refs:
            return []
        subject, body = format_notice(cluster, action, str(status), summary, brokers)
        return await anotify(cluster, subject, body, block_refs=refs, secrets=secrets)
    except Exception as exc:  # notification must never break an action
        log.error("notice for %s %s on %s not sent: %s", action, status, cluster, exc)
        return []
