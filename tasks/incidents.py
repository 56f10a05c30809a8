"""Incidents on the Prefect side: persist them, page or notify, emit the lifecycle events.

The lifecycle itself is pure (:mod:`kafka_medic.incidents`); this runs it once per health check:
reads the open incidents (a Prefect Variable), steps them with this cycle's conditions, writes them
back only when they changed, sends each transition through the cluster's notification blocks
(pages and "resolved" notices alike, secrets redacted), audits the pages, and emits one Prefect
event per transition (``kafka-medic.incident.opened`` / ``escalated`` / ``repeated`` /
``resolved``) so Prefect Automations can route them. Never raises: telling humans must not break
the health check, and an unreadable store is itself logged loudly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from prefect.events import emit_event

from kafka_medic.audit import AUTOMATION_ACTOR, AuditStatus
from kafka_medic.incidents import Condition, Notification, message, step
from kafka_medic.redaction import cluster_secrets
from kafka_medic.settings.cluster import ClusterSettings
from kafka_medic.state import now_utc
from tasks.audit import RunAudit
from tasks.notify import anotify
from tasks.state import cluster_state

log = logging.getLogger("kafka_medic.incidents")


def _emit(cluster: str, n: Notification) -> None:
    try:
        emit_event(
            event=n.event,
            resource={
                "prefect.resource.id": f"kafka-medic.cluster.{cluster}",
                "kafka-medic.cluster": cluster,
                "kafka-medic.incident": n.incident.key,
            },
            payload=n.to_record(),
        )
    except Exception as exc:  # events are best effort; the notification below is what humans get
        log.warning("[%s] could not emit %s: %s", cluster, n.event, exc)


async def track_incidents(cluster: ClusterSettings, current: Iterable[Condition]) -> list[dict[str, Any]]:
    """One cycle of the incident lifecycle for ``cluster``; returns what was sent (for the report)."""
    state = cluster_state(cluster.name)
    now = now_utc()
    try:
        before = await state.incidents()
    except Exception as exc:
        log.error("[%s] cannot read open incidents (%s): paging from this cycle's conditions alone", cluster.name, exc)
        from kafka_medic.incidents import Incidents

        before = Incidents()
    policy = cluster.policy
    after, notes = step(before, current, now, repeat_s=policy.incident_repeat_s,
                        resolve_cycles=policy.incident_resolve_cycles)  # fmt: skip
    if after != before:
        try:
            await state.save_incidents(after)
        except Exception as exc:
            log.error("[%s] cannot save incidents: %s", cluster.name, exc)
    sent: list[dict[str, Any]] = []
    for n in notes:
        _emit(cluster.name, n)
        deliveries = await anotify(cluster.name, n.subject, message(n, cluster.name, now),
                                   secrets=cluster_secrets(cluster))  # fmt: skip
        record = {**n.to_record(), "sent_to": [d.block for d in deliveries if d.ok],
                  "failed": [d.to_record() for d in deliveries if not d.ok]}  # fmt: skip
        if n.page:  # pages are in the audit trail, as every page always was
            audit = RunAudit(cluster, "incident", actor=AUTOMATION_ACTOR, brokers=n.incident.brokers)
            await audit(AuditStatus.PAGED, f"{n.subject}: {n.incident.summary}", incident=n.incident.key,
                        transition=n.transition.value, sent_to=record["sent_to"])  # fmt: skip
        log.warning("[%s] incident %s %s: %s", cluster.name, n.transition.value, n.incident.key, n.incident.summary)
        sent.append(record)
    return sent
