"""RunAudit: the one way every flow writes its audit trail and tells humans about it.

One record shape for every action (cluster, action, status, summary, brokers, details, actor, run
id), written acks=all to the cluster's audit topic off the event loop, kept on the run's report,
and -- by one rule -- sent as a notice to the cluster's notification channels:

* ``refused``, ``failed`` and ``approval_requested`` always (a human must know or act);
* ``finished`` only for actions automation started (on-call wants to learn what automation did;
  a person who ran a command watches its result and does not need a message about it);
* never ``planned``, ``started`` or ``skipped`` (a skipped action recurs every cycle).

Writing never raises (:class:`kafka_medic.audit.AuditLog`): an unwritable trail is logged and noted
on the record (``written: false``), and the action's own outcome is what the flow reports.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Iterable
from typing import Any

from prefect import get_run_logger
from prefect.context import FlowRunContext

from kafka_medic.audit import AuditLog, AuditRecord, AuditStatus, default_actor, is_automation
from kafka_medic.redaction import cluster_secrets
from kafka_medic.settings.cluster import ClusterSettings
from kafka_medic.waiting import finish_shielded
from tasks.notify import anotice

#: Statuses that always reach the notification channels; ``finished`` too when automation acted.
#: Statuses that end an action that was "started".
ENDS = frozenset({AuditStatus.FINISHED, AuditStatus.FAILED, AuditStatus.REFUSED, AuditStatus.SKIPPED})
ALWAYS_NOTICE = frozenset({AuditStatus.REFUSED, AuditStatus.FAILED, AuditStatus.APPROVAL_REQUESTED})

#: librdkafka would print every reconnect of the audit producer while a broker restarts; a failed
#: write is reported by AuditLog itself.
_quiet_clients = logging.getLogger("kafka_medic.audit.clients")
_quiet_clients.setLevel(logging.CRITICAL)


#: The RunAudits of the in-process run being driven (``tasks.dispatch.start_flow``) that wrote a
#: "started": a mutable set shared with every flow and subflow of that run, so an interruption can
#: end each of them from one place (:func:`end_open_audits`) without another run's being touched.
_open_audits: contextvars.ContextVar[set[RunAudit] | None] = contextvars.ContextVar(
    "kafka_medic_open_audits", default=None
)


def track_open_audits() -> contextvars.Token[set[RunAudit] | None]:
    """Start collecting the audits with an open "started" of the run about to be driven here."""
    return _open_audits.set(set())


async def end_open_audits(exc: BaseException) -> None:
    """The run was interrupted: every audit of it still "started" gets its end (``failed``)."""
    for audit in list(_open_audits.get() or ()):
        if audit.open_starts:
            await audit.end_interrupted(exc, audit.action.replace("_", " "))


def untrack_open_audits(token: contextvars.Token[set[RunAudit] | None]) -> None:
    _open_audits.reset(token)


def current_run_id() -> str | None:
    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx is not None and ctx.flow_run is not None else None


def _logger() -> Any:
    try:
        return get_run_logger()
    except Exception:  # outside a flow run (scripts, tests)
        return logging.getLogger("kafka_medic.audit")


class RunAudit:
    """The audit trail of one run: same cluster, action, actor and run id on every record."""

    def __init__(
        self, cluster: ClusterSettings, action: str, *, actor: str = "", brokers: Iterable[int] = (),
        run_id: str | None = None,
    ) -> None:  # fmt: skip
        """``run_id``: this run's (the default), or a dead run's whose trail this one closes."""
        self.cluster = cluster.name
        self.action = action
        self.actor = (actor or default_actor())[:200]
        self.brokers = tuple(int(b) for b in brokers)
        self.run_id = run_id or current_run_id()
        self.automated = is_automation(self.actor)
        self._log = AuditLog({**cluster.confluent_config(), "logger": _quiet_clients}, cluster.audit_topic)
        self._secrets = cluster_secrets(cluster)
        self._warming: asyncio.Task[bool] | None = None
        self.records: list[dict[str, Any]] = []
        #: "started" records written and not yet followed by an end (finished / failed / ...).
        self.open_starts = 0

    def start_warming(self) -> None:
        """Prepare the audit producer in the background (~1 s: topic check, producer id) while the
        run takes its locks and checks safety, so no record on the critical path waits for it."""
        if self._warming is None:
            self._warming = asyncio.create_task(asyncio.to_thread(self._log.prepare))

    def notices(self, status: AuditStatus) -> bool:
        return status in ALWAYS_NOTICE or (status is AuditStatus.FINISHED and self.automated)

    async def __call__(
        self,
        status: AuditStatus,
        summary: str,
        *,
        action: str | None = None,
        brokers: Iterable[int] | None = None,
        **details: Any,
    ) -> AuditRecord:
        """Write one record (and a notice if the rule says so); returns it. Never raises for the trail."""
        record = AuditRecord(
            cluster=self.cluster, action=action or self.action, status=status, summary=summary[:2000],
            brokers=self.brokers if brokers is None else tuple(int(b) for b in brokers), details=details,
            actor=self.actor, run_id=self.run_id,
        )  # fmt: skip
        if status is AuditStatus.STARTED:
            self.open_starts += 1
            opened = _open_audits.get()
            if opened is not None:
                opened.add(self)
        elif status in ENDS and self.open_starts:
            self.open_starts -= 1
        written = await asyncio.to_thread(self._log.write, record)
        self.records.append(
            {"id": record.id, "at": record.at, "action": record.action, "status": status.value,
             "summary": record.summary, "written": written}
        )  # fmt: skip
        _logger().info("[audit %s] %s: %s", status.value, record.action, record.summary)
        if self.notices(status):
            await anotice(self.cluster, record.action, status.value, record.summary, brokers=record.brokers,
                          secrets=self._secrets, statuses=frozenset({status.value}))  # fmt: skip
        return record

    async def end_interrupted(self, exc: BaseException, what: str, **details: Any) -> None:
        """Give every open "started" record its end (``failed``, saying it was interrupted), even while
        the run is being cancelled (Ctrl-C, SIGTERM, a cancelled run): an audit trail with a start and
        no end reads as "still running" forever. Bounded; never raises for the trail itself."""
        summary = f"{what} interrupted ({type(exc).__name__}); see the run's report for what was cleaned up"
        while self.open_starts:
            before = self.open_starts
            try:
                await finish_shielded(self(AuditStatus.FAILED, summary, interrupted=True, **details), timeout_s=20)
            except TimeoutError:
                _logger().error("could not write the end of an interrupted %s to the audit trail", self.action)
                return
            if self.open_starts >= before:
                return

    async def busy(self, exc: BaseException, **details: Any) -> str:
        """The outcome convention's "busy": another action holds the cluster's lock, nothing changed.
        Audited ``skipped`` (``why="busy"``, no notice: it recurs); returns the summary for the report."""
        summary = str(exc)
        await self(AuditStatus.SKIPPED, summary, why="busy", **details)
        return summary
