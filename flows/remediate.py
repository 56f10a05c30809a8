"""From decisions to actions: the health check's :func:`dispatch`, and the ``remediate`` flow.

For each executable broker decision of a health check (``demote_broker``, ``restart_broker``,
``replace_broker``, ``restore_broker``, ``reassign_away``) -- unless earlier attempts on that
broker failed recently (it backs off, and after too many gives up: :func:`tasks.ladder.attempt_gate`;
the health check turns "gave up" into an incident that pages) -- one ``remediate`` run, through
:func:`tasks.dispatch.start_flow`:
  a run of the ``remediate`` deployment when one exists (fire and forget: a long heal, or a pause
  waiting for a human, never blocks the next health check; not started twice for a broker, and a
  pause about one broker never holds back another: the cluster's locks still serialise the acts), else
  in this process -- and then, for a replacement that needs no approval, the ``replace-broker``
  subflow directly (one flow run less between the finding and the repair).

Pages are not sent from here: the health check's incidents (:mod:`kafka_medic.incidents`) tell
humans about stand-downs, failures and giving up, once, with repeats and a "resolved".

``remediate(cluster, decision)`` handles approve mode: it pauses with a typed ``Approval`` form
(``pause_flow_run(wait_for_input=...)``) for at most ``policy.approval_timeout_s``; approved ->
proceed, rejected or timed out -> nothing changes (audit ``rejected`` / ``skipped``). Every action
re-checks the cluster itself (locks, cooldown, fresh safety check, "still needed?"), so acting on
a decision that went stale while it waited is safe.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import apause_flow_run
from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict, Field

from blocks.kafka_cluster import KafkaCluster
from blocks.load import load_cluster
from flows.demote_broker import LeadershipParams, demote_broker, restore_broker
from flows.reassign import ReassignParams, reassign
from flows.replace_broker import ReplaceBrokerParams, replace_broker
from flows.restart_broker import RestartBrokerParams, restart_broker
from kafka_medic.audit import AUTOMATION_ACTOR, AuditStatus
from kafka_medic.decide import BROKER_REMEDIES, Decision, Remedy, approval_text
from kafka_medic.heal import REPLACE_ACTION, heal_findings
from kafka_medic.judgment import Ladder
from kafka_medic.state import maintenance_hold
from tasks.audit import RunAudit
from tasks.collect import look_now
from tasks.dispatch import start_flow
from tasks.ladder import attempt_gate
from tasks.state import cluster_state

FLOW_NAME = "remediate"
#: An in-process approval blocks the health check (whose own timeout is 600 s): bound it below that.
IN_PROCESS_APPROVAL_MAX_S = 480.0


def _logger() -> Any:
    """The run logger inside a flow run, the module logger elsewhere (tests, scripts)."""
    try:
        return get_run_logger()
    except Exception:
        return logging.getLogger(__name__)


class RemediationParams(BaseModel):
    """One decision to carry out (the ``decision`` parameter of the ``remediate`` flow)."""

    model_config = ConfigDict(extra="forbid")

    remedy: Remedy = Field(
        ..., description="demote_broker, restart_broker, replace_broker, restore_broker, reassign_away or page."
    )
    broker_id: int | None = Field(None, ge=0, description="The broker the decision is about.")
    rule: str = Field("", max_length=200, description="The health rule behind the decision.")
    reason: str = Field("", max_length=2000, description="Why (the finding's summary).")
    needs_approval: bool = Field(False, description="Pause for a human's approval first (approve mode).")
    dry_run: bool = Field(
        True,
        description="Carry out the checks only, change nothing (the default, so a form submitted as is never "
        "acts; the health check's dispatch passes False).",
    )
    actor: str = Field(AUTOMATION_ACTOR, max_length=200, description="Who asked.")
    findings: list[dict[str, Any]] = Field(default_factory=list, description="Serious findings (for pages).")
    cost: dict[str, Any] | None = Field(
        None, description="What the remedy copies (bytes, cross-AZ bytes, dollars, ETA): shown on the approval form."
    )

    @classmethod
    def from_decision(cls, d: Decision, findings: list[dict[str, Any]] | None = None) -> RemediationParams:
        serious = [f for f in findings or [] if f.get("severity") in ("critical", "warning")][:50]
        keep = ("rule", "severity", "summary", "brokers", "since", "action")
        return cls(
            remedy=d.remedy, broker_id=d.broker_id, rule=str(d.rule), reason=d.reason[:2000],
            needs_approval=d.needs_approval, findings=[{k: f.get(k) for k in keep} for f in serious], cost=d.cost,
            dry_run=False,  # a decision of the health check is carried out for real (its mode already said so)
        )  # fmt: skip


class Approval(RunInput):
    """The form a human fills in to approve or reject a remediation."""

    approve: bool = Field(False, description="Tick to let kafka-medic proceed.")
    comment: str = Field("", max_length=1000, description="Why (goes to the audit trail).")
    approver: str = Field("", max_length=200, description="Your name.")


@flow(name=FLOW_NAME, retries=0)
async def remediate(cluster: str, decision: RemediationParams) -> dict[str, Any]:
    """Carry out one remediation decision on ``cluster``, asking a human first in approve mode."""
    logger = get_run_logger()
    block = await load_cluster(cluster)
    d = decision
    brokers = (d.broker_id,) if d.broker_id is not None else ()
    audit = RunAudit(block, d.remedy.value, actor=d.actor, brokers=brokers)
    base = {"remedy": d.remedy.value, "broker_id": d.broker_id}

    if d.remedy not in BROKER_REMEDIES or d.broker_id is None:
        return {**base, "status": "ignored", "message": f"nothing to do for remedy {d.remedy.value}"}

    actor = d.actor
    if d.needs_approval:
        timeout_s = block.policy.approval_timeout_s
        ctx = FlowRunContext.get()
        if ctx is not None and ctx.flow_run is not None and ctx.flow_run.deployment_id is None:
            timeout_s = min(timeout_s, IN_PROCESS_APPROVAL_MAX_S)  # in-process: do not hold the health check
        await audit(
            AuditStatus.APPROVAL_REQUESTED, f"approval requested to {d.remedy.value} broker {d.broker_id}",
            action=d.remedy.value, timeout_s=timeout_s, reason=d.reason, cost=d.cost,
        )  # fmt: skip
        logger.warning("[%s] waiting up to %.0fs for approval: %s broker %s", cluster, timeout_s, d.remedy, d.broker_id)
        try:
            approval = await apause_flow_run(
                wait_for_input=Approval.with_initial_data(
                    description=approval_text(cluster, d.remedy, d.broker_id, d.rule, d.reason, d.cost),
                    approve=False,
                    comment="",
                    approver="",
                ),
                timeout=max(1, round(timeout_s)),
                poll_interval=max(1, min(10, round(timeout_s / 10))),
            )
        except FlowPauseTimeout:
            msg = f"no approval within {timeout_s:.0f}s to {d.remedy.value} broker {d.broker_id}; nothing was changed"
            await audit(AuditStatus.SKIPPED, msg, action=d.remedy.value, why="approval timed out")
            return {**base, "status": "approval_timeout", "message": msg}
        who = approval.approver or "someone"
        if not approval.approve:
            msg = f"{d.remedy.value} of broker {d.broker_id} rejected by {who}: {approval.comment}; nothing was changed"
            await audit(AuditStatus.REJECTED, msg, action=d.remedy.value, approver=approval.approver,
                        comment=approval.comment)  # fmt: skip
            return {**base, "status": "rejected", "message": msg}
        await audit(
            AuditStatus.APPROVED, f"{d.remedy.value} of broker {d.broker_id} approved by {who}",
            action=d.remedy.value, approver=approval.approver, comment=approval.comment,
        )  # fmt: skip
        actor = f"{approval.approver or 'approver'} (approved {d.actor})"

    if d.remedy is Remedy.REPLACE_BROKER:
        return await _replace(cluster, d, actor)
    if d.remedy is Remedy.REASSIGN_AWAY:
        return await _reassign_away(cluster, d, actor, audit)
    return await _ladder_step(cluster, d, actor)


async def _ladder_step(cluster: str, d: RemediationParams, actor: str) -> dict[str, Any]:
    """Demote, restart or restore (automation's parameters: act only if a fresh judgment still says so)."""
    assert d.broker_id is not None
    base = {"remedy": d.remedy.value, "broker_id": d.broker_id}
    reason = f"{d.rule}: {d.reason}"[:1000]
    if d.remedy is Remedy.RESTART_BROKER:
        params = RestartBrokerParams(broker_id=d.broker_id, dry_run=d.dry_run, automation=True, actor=actor,
                                     reason=reason)  # fmt: skip
        res = await restart_broker(cluster, params)
        return {**base, "status": res.status.value, "message": res.message, "result": res.model_dump(mode="json")}
    step = demote_broker if d.remedy is Remedy.DEMOTE_BROKER else restore_broker
    lp = LeadershipParams(broker_id=d.broker_id, dry_run=d.dry_run, automation=True, actor=actor, reason=reason)
    report = await step(cluster, lp)
    return {**base, "status": report.status, "message": report.summary, "result": report.model_dump(mode="json")}


async def _replace(cluster: str, d: RemediationParams, actor: str) -> dict[str, Any]:
    """The ``replace-broker`` subflow for a replacement decision (automation's parameters: restart a
    maybe-dead broker first, act only if a fresh evaluation still calls for it)."""
    assert d.broker_id is not None
    params = ReplaceBrokerParams(
        broker_id=d.broker_id, dry_run=d.dry_run, try_restart_first=True, require_finding=True,
        actor=actor, reason=f"{d.rule}: {d.reason}"[:1000],
    )  # fmt: skip
    res = await replace_broker(cluster, params)
    return {"remedy": d.remedy.value, "broker_id": d.broker_id, "status": res.status.value, "message": res.message,
            "result": res.model_dump(mode="json")}  # fmt: skip


async def _reassign_away(cluster: str, d: RemediationParams, actor: str, audit: RunAudit) -> dict[str, Any]:
    """Drain the broker's partitions to the others (no replacer configured): the ``reassign`` flow,
    after the same "still needed, automation allowed" check a replacement makes, on a fresh look."""
    base = {"remedy": d.remedy.value, "broker_id": d.broker_id}
    assert d.broker_id is not None
    look = await look_now(await load_cluster(cluster))
    ev, hold = look.evaluation, maintenance_hold(look.maintenance, automated=True)
    if hold or not ev.automation_allowed or not heal_findings(ev, d.broker_id):
        why = hold or ("automation stands down" if not ev.automation_allowed else "it no longer needs healing")
        msg = f"not moving partitions off broker {d.broker_id}: {why} (fresh health check)"
        await audit(AuditStatus.SKIPPED, msg, action="reassign", why=why)
        return {**base, "status": "skipped", "message": msg}
    params = ReassignParams(
        kind="drain", brokers=[d.broker_id], dry_run=d.dry_run, actor=actor, reason=f"{d.rule}: {d.reason}"[:1000]
    )
    res = await reassign(cluster, params)
    return {**base, "status": res.status, "message": res.summary, "result": res.model_dump(mode="json")}


# -- dispatch -------------------------------------------------------------------------------------------


async def dispatch(
    block: KafkaCluster, decisions: list[Decision], findings: list[dict[str, Any]], ladder: Ladder | None = None
) -> list[dict[str, Any]]:
    """Carry out a health check's executable decisions (see the module docstring). Never raises for
    one decision's failure: each gets a result dict, so the health check always completes."""
    logger = _logger()
    out: list[dict[str, Any]] = []
    todo = [d for d in decisions if d.execute]
    for d in (d for d in todo if d.remedy in BROKER_REMEDIES and d.broker_id is not None):
        base = {"remedy": d.remedy.value, "broker_id": d.broker_id}
        gate = attempt_gate(ladder or Ladder(), d.broker_id, block.policy)
        if not gate.allowed and d.remedy is not Remedy.RESTORE_BROKER:  # giving leadership back is never held
            out.append({**base, **gate.to_record()})  # giving up is an incident (a page) of the health check
            continue
        direct = d.remedy is Remedy.REPLACE_BROKER and not d.needs_approval
        if direct:
            remaining = await cluster_state(block.name).cooldown_remaining(
                REPLACE_ACTION, block.policy.replacement_cooldown_s
            )
            if remaining > 0:  # do not start a run only to have it skip (and audit) every cycle
                out.append({**base, "status": "cooling down", "remaining_cooldown_s": round(remaining, 1)})
                continue
        params = RemediationParams.from_decision(d, findings)
        try:
            started = await start_flow(
                remediate, {"cluster": block.name, "decision": params}, cluster=block.name,
                tags=[f"remedy:{d.remedy.value}"], once_key=f"broker:{d.broker_id}",
                in_process=_replace_directly if direct else None,
            )  # fmt: skip
            out.append({**base, **started.to_record()})
        except Exception as exc:
            logger.error("[%s] remediation %s of broker %s failed: %s", block.name, d.remedy, d.broker_id, exc)
            out.append({**base, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
    return out


async def _replace_directly(cluster: str, decision: RemediationParams) -> dict[str, Any]:
    """In-process, a replacement that needs no approval skips the remediate wrapper (nothing to wait for)."""
    return await _replace(cluster, decision, decision.actor)
