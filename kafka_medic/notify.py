"""Pages and notices to humans: what they say, and which audited statuses are worth one (text only).

Sending goes through Prefect notification blocks (:mod:`tasks.notify`); which blocks a cluster
pages is configuration, kept in one Prefect Variable per cluster::

    kafka_medic__<cluster>__notify = ["slack-webhook/oncall", "custom-webhook/pagerduty-bridge"]

Each entry is a block reference ``"<block-type-slug>/<block-name>"`` of any Prefect
``NotificationBlock`` (SlackWebhook, CustomWebhookNotificationBlock, SendgridEmail, PagerDutyWebHook,
MicrosoftTeamsWebhook, ...); a comma-separated string is accepted too. Why a Variable and not a
field of the cluster block: an operator changes on-call routing far more often than a cluster
definition, it is editable in the Prefect UI (Variables page), and the webhook URLs and tokens
stay where they belong -- in the notification blocks, as secrets.

Messages never carry secrets: they are built from finding summaries and decisions (never from
client configs), every known secret of the cluster is redacted from the text as a last guard
(:mod:`kafka_medic.redaction`), and delivery errors are reported without URLs (a Slack webhook URL
*is* the credential). Notification must never break healing: every failure is reported per
block, never raised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

_URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
_MAX_LINES = 40


@dataclass(frozen=True)
class Delivery:
    """How sending to one notification block went (secret-free)."""

    block: str
    ok: bool
    error: str | None = None

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def format_page(
    cluster: str,
    headline: str,
    findings: Sequence[Mapping[str, Any]] = (),
    *,
    severity: str = "critical",
    context: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """(subject, body) of a page: the headline, then the serious findings as one line each.

    Only summaries, rules, brokers and times go in: evidence dicts could hold anything.
    """
    subject = f"[kafka-medic] {severity.upper()} {cluster}: {headline}"[:250]
    lines = [f"Cluster: {cluster}", f"Severity: {severity}", "", headline, ""]
    serious = [f for f in findings if f.get("severity") in ("critical", "warning")]
    if serious:
        lines.append("Findings:")
        for f in serious[:_MAX_LINES]:
            brokers = ",".join(str(b) for b in f.get("brokers", []) or [])
            where = f" brokers {brokers}" if brokers else ""
            since = f" since {f['since']}" if f.get("since") else ""
            lines.append(f"- [{f.get('severity')}] {f.get('rule')}{where}: {f.get('summary')}{since}")
        if len(serious) > _MAX_LINES:
            lines.append(f"- ... and {len(serious) - _MAX_LINES} more")
    for key, value in (context or {}).items():
        lines.append(f"{key}: {value}")
    lines += ["", "Automation stands down for this cluster until a human has looked."]
    return subject, "\n".join(lines)


def error_text(exc: BaseException) -> str:
    text = _URL_RE.sub("<url>", str(exc))[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


#: Audit statuses that also go to the cluster's notification channels as a notice (besides pages):
#: what on-call wants to learn without watching the UI -- a human is asked to approve, a safety
#: guard refused, an action failed, an automated repair finished. Not "started", "skipped" (lock
#: busy, cooling down: every cycle would notify) or "planned" (dry runs).
NOTICE_STATUSES = frozenset({"approval_requested", "refused", "failed", "finished"})
#: For flows a person starts and watches (drain, reassign, maintenance): only what went wrong.
FAILURE_STATUSES = frozenset({"refused", "failed"})


def format_notice(cluster: str, action: str, status: str, summary: str, brokers: Sequence[int] = ()) -> tuple[str, str]:
    """(subject, body) of a notice about one audited action (summary only: details could hold anything)."""
    on = f" broker(s) {','.join(str(b) for b in brokers)}" if brokers else ""
    subject = f"[kafka-medic] {cluster}: {action}{on} {status.upper()}"[:250]
    body = "\n".join([f"Cluster: {cluster}", f"Action: {action}{on}", f"Status: {status}", "", summary[:2000]])
    return subject, body
