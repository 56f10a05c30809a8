"""Paging humans: every configured channel, once per outage window, always in the audit trail.

A page is sent from the health check's own run (it must not wait for a free worker). Repeats of
the same page -- same rule(s), same brokers -- are suppressed for ``KAFKA_MEDIC_PAGE_REPEAT_S``
(default 900 s), so a long outage does not page every cycle, while a different outage pages at once.
"""

from __future__ import annotations

import logging
import os
import re
import zlib
from typing import Any

from kafka_medic.audit import AUTOMATION_ACTOR, AuditStatus
from kafka_medic.notify import format_page
from kafka_medic.redaction import cluster_secrets
from kafka_medic.settings.cluster import ClusterSettings
from tasks.audit import RunAudit
from tasks.notify import anotify
from tasks.state import cluster_state

log = logging.getLogger("kafka_medic.pages")


def page_repeat_s() -> float:
    try:
        return max(0.0, float(os.environ.get("KAFKA_MEDIC_PAGE_REPEAT_S", "900")))
    except ValueError:
        return 900.0


def page_key(rule: str, findings: list[dict[str, Any]]) -> str:
    """Suppression key of a page: its rule(s) and the brokers involved, so the same outage pages
    once per window but a different one (other brokers) pages at once."""
    brokers = sorted({int(b) for f in findings if f.get("action") == "page" for b in f.get("brokers") or []})
    slug = re.sub(r"[^a-z0-9]+", "-", rule.lower()).strip("-")[:40] or "page"
    return f"page-{slug}-{zlib.crc32(repr(brokers).encode()):08x}"


async def page_humans(
    cluster: ClusterSettings, rule: str, headline: str, findings: list[dict[str, Any]], *, actor: str = AUTOMATION_ACTOR
) -> dict[str, Any]:
    """Notify every configured channel and audit ``paged``; repeats within the window are suppressed."""
    state = cluster_state(cluster.name)
    action = page_key(rule, findings)
    repeat_s = page_repeat_s()
    remaining = await state.cooldown_remaining(action, repeat_s)
    if remaining > 0:
        log.warning("[%s] page %s suppressed (sent less than %.0fs ago): %s", cluster.name, rule, repeat_s, headline)
        return {"remedy": "page", "rule": rule, "status": "suppressed", "repeat_in_s": round(remaining, 1)}
    subject, body = format_page(cluster.name, headline, findings)
    deliveries = await anotify(cluster.name, subject, body, secrets=cluster_secrets(cluster))
    sent = [d.block for d in deliveries if d.ok]
    failed = [d.to_record() for d in deliveries if not d.ok]
    audit = RunAudit(cluster, "page", actor=actor)
    await audit(AuditStatus.PAGED, headline, rule=rule, sent_to=sent, failed=failed)
    if sent or not deliveries:  # all channels failed: try again next cycle
        await state.record_success(action)
    log.warning("[%s] PAGED (%s) via %s: %s", cluster.name, rule, sent or "no channel", headline)
    return {"remedy": "page", "rule": rule, "status": "paged", "sent_to": sent, "failed": failed}
