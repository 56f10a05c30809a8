"""Pages and notices to humans, through Prefect notification blocks.

Which blocks a cluster pages is configuration, kept in one Prefect Variable per cluster:

    kafka_medic__<cluster>__notify = ["slack-webhook/oncall", "custom-webhook/pagerduty-bridge"]

Each entry is a block reference ``"<block-type-slug>/<block-name>"`` of any Prefect
``NotificationBlock`` (SlackWebhook, CustomWebhookNotificationBlock, SendgridEmail, PagerDutyWebHook,
MicrosoftTeamsWebhook, ...); a comma-separated string is accepted too. Why a Variable and not a
field of the cluster block: an operator changes on-call routing far more often than a cluster
definition, it is editable in the Prefect UI (Variables page), and the webhook URLs and tokens
stay where they belong -- in the notification blocks, as secrets. Callers may also pass
``block_refs`` explicitly (a flow parameter), which wins over the Variable.

Messages never carry secrets: they are built from finding summaries and decisions (never from
client configs), every known secret of the cluster is redacted from the text as a last guard, and
delivery errors are reported without URLs (a Slack webhook URL *is* the credential).
Notification must never break healing: every failure is reported per block, never raised.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import prefect.blocks.notifications  # noqa: F401  (registers the notification block types for Block.aload)
from prefect.blocks.core import Block
from prefect.variables import Variable

from kafka_medic import coordination

log = logging.getLogger(__name__)

NOTIFY_TIMEOUT_S = 30.0
_REF_RE = re.compile(r"^[a-z0-9-]+/[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
_URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
_REDACTED = "**********"
_MAX_LINES = 40


@dataclass(frozen=True)
class Delivery:
    """How sending to one notification block went (secret-free)."""

    block: str
    ok: bool
    error: str | None = None

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def notify_variable(cluster: str) -> str:
    """The Variable holding the cluster's notification block references."""
    return coordination.variable_name(cluster, "notify")


def parse_refs(raw: Any) -> list[str]:
    """Block references from a Variable value (list or comma-separated string); invalid ones dropped
    with a warning, so one typo does not silence the other channels."""
    if raw is None:
        return []
    items: Iterable[Any]
    if isinstance(raw, str):
        items = raw.split(",")
    elif isinstance(raw, list | tuple):
        items = raw
    elif isinstance(raw, Mapping) and isinstance(raw.get("blocks"), list):
        items = raw["blocks"]
    else:
        log.warning("notification config has an unexpected shape (%s); expected a list of block refs", type(raw))
        return []
    out: list[str] = []
    for item in items:
        ref = str(item).strip()
        if not ref:
            continue
        if not _REF_RE.match(ref):
            log.warning("ignoring notification block reference %r: expected '<block-type-slug>/<block-name>'", ref)
            continue
        if ref not in out:
            out.append(ref)
    return out


async def notification_refs(cluster: str) -> list[str]:
    """The notification block references configured for ``cluster`` (empty if none)."""
    try:
        raw = await Variable.aget(notify_variable(cluster), default=None)
    except Exception as exc:  # the Prefect API is down: report, do not raise
        log.error("cannot read notification config %s: %s", notify_variable(cluster), exc)
        return []
    return parse_refs(raw)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret value (longest first) with a mask."""
    for s in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(s, _REDACTED)
    return text


def cluster_secrets(block: Any) -> list[str]:
    """Every SecretStr value on a cluster block (SASL password, key password, ...)."""
    out: list[str] = []
    for name in type(block).model_fields:
        value = getattr(block, name, None)
        if hasattr(value, "get_secret_value"):
            secret = value.get_secret_value()
            if isinstance(secret, str):
                out.append(secret)
    return out


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


def _error_text(exc: BaseException) -> str:
    text = _URL_RE.sub("<url>", str(exc))[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _send_one(ref: str, subject: str, body: str, timeout_s: float) -> Delivery:
    try:
        block = await Block.aload(ref)
    except (ValueError, KeyError) as exc:
        return Delivery(ref, False, f"notification block {ref!r} not found or not loadable: {_error_text(exc)}")
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
        return Delivery(ref, False, _error_text(exc))
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
            notify_variable(cluster),
            subject,
        )
        return []
    results = await asyncio.gather(*(_send_one(ref, subject, body, timeout_s) for ref in refs))
    for r in results:
        if not r.ok:
            log.error("notification via %s failed: %s", r.block, r.error)
    return list(results)


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
