"""From decisions to actions: the health check's dispatcher and the ``remediate`` flow.

``dispatch(block, decisions, context)`` is registered with ``flows.health_check`` when this module
is imported. For each executable decision:

* ``page``: notify humans (``kafka_medic.notify``) and audit ``paged`` -- right here, in the
  health check's run, because paging must not depend on a worker being free. Repeats of the same
  page are suppressed for ``KAFKA_MEDIC_PAGE_REPEAT_S`` (default 900 s) so a long outage does not
  page every cycle.
* ``replace_broker`` / ``reassign_away``: wrapped in one ``remediate`` run. If a deployment of the
  ``remediate`` flow exists (``KAFKA_MEDIC_REMEDIATE_DEPLOYMENT`` names one, else the first found),
  it is started with ``run_deployment(..., timeout=0)``: a long heal (or a pause waiting for a
  human) never blocks the next health check, and a run already active for the cluster is not
  started twice. Otherwise the run happens in-process as a subflow (fine for tests and small
  setups; the health check waits for it): a ``remediate`` subflow, or -- for a replacement that
  needs no approval -- the ``replace-broker`` subflow directly (one flow run less between the
  finding and the repair).

``remediate(cluster, decision)`` handles approve mode: it pauses with a typed ``Approval`` form
(``pause_flow_run(wait_for_input=...)``) for at most ``policy.approval_timeout_s``; approved ->
proceed, rejected or timed out -> nothing changes (audit ``rejected`` / ``skipped``). Every action
re-checks the cluster itself (locks, cooldown, fresh safety check, "still needed?"), so acting on
a decision that went stale while it waited is safe.
"""

from __future__ import annotations

import logging
import os
import re
import zlib
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import apause_flow_run
from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict, Field

from blocks.kafka_cluster import KafkaCluster
from flows.health_check import load_cluster, register_dispatcher
from flows.replace_broker import ACTION as REPLACE_ACTION
from flows.replace_broker import FlowAudit, ReplaceBrokerParams, fresh_evaluation, heal_findings, replace_broker
from kafka_medic import coordination
from kafka_medic.audit import AuditStatus
from kafka_medic.decide import Decision, Remedy
from kafka_medic.notify import anotify, cluster_secrets, format_page

FLOW_NAME = "remediate"
AUTOMATION_ACTOR = "kafka-medic automation"
#: An in-process approval blocks the health check (whose own timeout is 600 s): bound it below that.
IN_PROCESS_APPROVAL_MAX_S = 480.0
_ACTIVE_STATES = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED]


def _logger() -> Any:
    """The run logger inside a flow run, the module logger elsewhere (tests, scripts)."""
    try:
        return get_run_logger()
    except Exception:
        return logging.getLogger(__name__)


def _page_repeat_s() -> float:
    try:
        return max(0.0, float(os.environ.get("KAFKA_MEDIC_PAGE_REPEAT_S", "900")))
    except ValueError:
        return 900.0


def cluster_tag(cluster: str) -> str:
    """Tag on every remediate run, so one cluster's active runs can be found."""
    return f"kafka-medic-cluster:{cluster}"


class RemediationParams(BaseModel):
    """One decision to carry out (the ``decision`` parameter of the ``remediate`` flow)."""

    model_config = ConfigDict(extra="forbid")

    remedy: Remedy = Field(..., description="replace_broker, reassign_away or page.")
    broker_id: int | None = Field(None, ge=0, description="The broker the decision is about.")
    rule: str = Field("", max_length=200, description="The health rule behind the decision.")
    reason: str = Field("", max_length=2000, description="Why (the finding's summary).")
    needs_approval: bool = Field(False, description="Pause for a human's approval first (approve mode).")
    dry_run: bool = Field(False, description="Carry out the checks only (automation acts for real).")
    actor: str = Field(AUTOMATION_ACTOR, max_length=200, description="Who asked.")
    findings: list[dict[str, Any]] = Field(default_factory=list, description="Serious findings (for pages).")

    @classmethod
    def from_decision(cls, d: Decision, findings: list[dict[str, Any]] | None = None) -> RemediationParams:
        serious = [f for f in findings or [] if f.get("severity") in ("critical", "warning")][:50]
        keep = ("rule", "severity", "summary", "brokers", "since", "action")
        return cls(
            remedy=d.remedy, broker_id=d.broker_id, rule=str(d.rule), reason=d.reason[:2000],
            needs_approval=d.needs_approval, findings=[{k: f.get(k) for k in keep} for f in serious],
        )  # fmt: skip


class Approval(RunInput):
    """The form a human fills in to approve or reject a remediation."""

    approve: bool = Field(False, description="Tick to let kafka-medic proceed.")
    comment: str = Field("", max_length=1000, description="Why (goes to the audit trail).")
    approver: str = Field("", max_length=200, description="Your name.")


# -- pages -----------------------------------------------------------------------------------------------


def page_key(rule: str, findings: list[dict[str, Any]]) -> str:
    """Suppression key of a page: its rule(s) and the brokers involved, so the same outage pages
    once per window but a different one (other brokers) pages at once."""
    brokers = sorted({int(b) for f in findings if f.get("action") == "page" for b in f.get("brokers") or []})
    slug = re.sub(r"[^a-z0-9]+", "-", rule.lower()).strip("-")[:40] or "page"
    return f"page-{slug}-{zlib.crc32(repr(brokers).encode()):08x}"


async def page_humans(
    block: KafkaCluster, rule: str, headline: str, findings: list[dict[str, Any]], *, actor: str = AUTOMATION_ACTOR
) -> dict[str, Any]:
    """Notify every configured channel and audit ``paged``; repeats within the window are suppressed."""
    logger = _logger()
    action = page_key(rule, findings)
    repeat_s = _page_repeat_s()
    remaining = await coordination.acooldown_remaining(block.name, action, repeat_s)
    if remaining > 0:
        logger.warning("[%s] page %s suppressed (sent less than %.0fs ago): %s", block.name, rule, repeat_s, headline)
        return {"remedy": "page", "rule": rule, "status": "suppressed", "repeat_in_s": round(remaining, 1)}
    subject, body = format_page(block.name, headline, findings)
    deliveries = await anotify(block.name, subject, body, secrets=cluster_secrets(block))
    sent = [d.block for d in deliveries if d.ok]
    failed = [d.to_record() for d in deliveries if not d.ok]
    audit = FlowAudit(block, actor=actor)
    await audit(AuditStatus.PAGED, headline, action="page", rule=rule, sent_to=sent, failed=failed)
    if sent or not deliveries:  # all channels failed: try again next cycle
        await coordination.arecord_success(block.name, action)
    logger.warning("[%s] PAGED (%s) via %s: %s", block.name, rule, sent or "no channel", headline)
    return {"remedy": "page", "rule": rule, "status": "paged", "sent_to": sent, "failed": failed}


# -- the remediate flow ----------------------------------------------------------------------------------


def _approval_text(cluster: str, d: RemediationParams) -> str:
    what = {
        Remedy.REPLACE_BROKER: f"**replace broker {d.broker_id}** (fresh machine/disk, same broker id)",
        Remedy.REASSIGN_AWAY: f"**move every partition off broker {d.broker_id}**",
    }.get(d.remedy, d.remedy.value)
    return (
        f"kafka-medic wants to {what} on cluster `{cluster}`.\n\n"
        f"Reason ({d.rule}): {d.reason}\n\n"
        "Before acting it re-checks the cluster (locks, cooldown, safety on a fresh snapshot). "
        "Tick **approve** to proceed; leave it unticked to reject."
    )


@flow(name=FLOW_NAME, retries=0)
async def remediate(cluster: str, decision: RemediationParams) -> dict[str, Any]:
    """Carry out one remediation decision on ``cluster``, asking a human first in approve mode."""
    logger = get_run_logger()
    block = await load_cluster(cluster)
    d = decision
    brokers = (d.broker_id,) if d.broker_id is not None else ()
    audit = FlowAudit(block, actor=d.actor, brokers=brokers)
    base = {"remedy": d.remedy.value, "broker_id": d.broker_id}

    if d.remedy is Remedy.PAGE:
        return await page_humans(block, d.rule, d.reason, d.findings, actor=d.actor)
    if d.remedy not in (Remedy.REPLACE_BROKER, Remedy.REASSIGN_AWAY) or d.broker_id is None:
        return {**base, "status": "ignored", "message": f"nothing to do for remedy {d.remedy.value}"}

    actor = d.actor
    if d.needs_approval:
        timeout_s = block.policy.approval_timeout_s
        from prefect.context import FlowRunContext

        ctx = FlowRunContext.get()
        if ctx is not None and ctx.flow_run is not None and ctx.flow_run.deployment_id is None:
            timeout_s = min(timeout_s, IN_PROCESS_APPROVAL_MAX_S)  # in-process: do not hold the health check
        await audit(
            AuditStatus.APPROVAL_REQUESTED, f"approval requested to {d.remedy.value} broker {d.broker_id}",
            action=d.remedy.value, timeout_s=timeout_s, reason=d.reason,
        )  # fmt: skip
        logger.warning("[%s] waiting up to %.0fs for approval: %s broker %s", cluster, timeout_s, d.remedy, d.broker_id)
        try:
            approval = await apause_flow_run(
                wait_for_input=Approval.with_initial_data(
                    description=_approval_text(cluster, d), approve=False, comment="", approver=""
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
    return await _reassign_away(cluster, d, actor, audit)


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


async def _reassign_away(cluster: str, d: RemediationParams, actor: str, audit: FlowAudit) -> dict[str, Any]:
    """Drain the broker's partitions to the others (no replacer configured): the ``reassign`` flow,
    after the same "still needed, automation allowed" check a replacement makes."""
    base = {"remedy": d.remedy.value, "broker_id": d.broker_id}
    try:
        from flows.reassign import ReassignParams, reassign
    except ImportError:
        msg = f"cannot move partitions off broker {d.broker_id}: the reassign flow is not installed"
        await audit(AuditStatus.SKIPPED, msg, action="reassign", why="reassign flow unavailable")
        return {**base, "status": "skipped", "message": msg}
    assert d.broker_id is not None
    block = await load_cluster(cluster)
    _, ev = await fresh_evaluation(block)
    if not ev.automation_allowed or not heal_findings(ev, d.broker_id):
        why = "automation stands down" if not ev.automation_allowed else "it no longer needs healing"
        msg = f"not moving partitions off broker {d.broker_id}: {why} (fresh health check)"
        await audit(AuditStatus.SKIPPED, msg, action="reassign", why=why)
        return {**base, "status": "skipped", "message": msg}
    params = ReassignParams(
        kind="drain", brokers=[d.broker_id], dry_run=d.dry_run, actor=actor, reason=f"{d.rule}: {d.reason}"[:1000]
    )
    res = await reassign(cluster, params)
    return {**base, "status": res.status, "message": res.summary, "result": res.model_dump(mode="json")}


# -- dispatch -------------------------------------------------------------------------------------------


async def remediate_deployment() -> tuple[str, Any] | None:
    """("remediate/<name>", deployment id) of the deployment to use, or None to run in-process."""
    wanted = os.environ.get("KAFKA_MEDIC_REMEDIATE_DEPLOYMENT", "").strip()
    async with get_client() as client:
        deployments = await client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])))
    names = sorted((dep.name, dep.id) for dep in deployments)
    if wanted:
        short = wanted.split("/", 1)[-1]
        match = [n for n in names if n[0] == short]
        if not match:
            _logger().error("KAFKA_MEDIC_REMEDIATE_DEPLOYMENT=%s does not exist; running in-process", wanted)
            return None
        names = match
    return (f"{FLOW_NAME}/{names[0][0]}", names[0][1]) if names else None


async def active_runs(deployment_id: Any, cluster: str) -> list[Any]:
    """Remediate runs of this deployment for ``cluster`` that are not finished yet."""
    async with get_client() as client:
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[cluster_tag(cluster)]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=_ACTIVE_STATES)),
            ),
            limit=5,
        )


async def dispatch(block: KafkaCluster, decisions: list[Decision], context: dict[str, Any]) -> list[dict[str, Any]]:
    """Carry out the health check's executable decisions (see the module docstring). Never raises
    for one decision's failure: each gets a result dict, so the health check always completes."""
    logger = _logger()
    findings = list(context.get("findings", []))
    out: list[dict[str, Any]] = []
    todo = [d for d in decisions if d.execute]

    pages = [d for d in todo if d.remedy is Remedy.PAGE]
    if pages:
        headline = "; ".join(d.reason for d in pages)[:1000]
        rule = "+".join(sorted({str(d.rule) for d in pages}))
        try:
            out.append(await page_humans(block, rule, headline, findings))
        except Exception as exc:
            logger.exception("[%s] paging failed", block.name)
            out.append({"remedy": "page", "status": "failed", "error": f"{type(exc).__name__}: {exc}"})

    actions = [d for d in todo if d.remedy in (Remedy.REPLACE_BROKER, Remedy.REASSIGN_AWAY)]
    if not actions:
        return out
    try:
        deployment = await remediate_deployment()
    except Exception as exc:
        logger.error("[%s] cannot look up the remediate deployment (%s); running in-process", block.name, exc)
        deployment = None

    for d in actions:
        base = {"remedy": d.remedy.value, "broker_id": d.broker_id}
        if d.remedy is Remedy.REPLACE_BROKER and not d.needs_approval:
            remaining = await coordination.acooldown_remaining(
                block.name, REPLACE_ACTION, block.policy.replacement_cooldown_s
            )
            if remaining > 0:  # do not start a run only to have it skip (and audit) every cycle
                out.append({**base, "status": "cooling down", "remaining_cooldown_s": round(remaining, 1)})
                continue
        params = RemediationParams.from_decision(d, findings)
        try:
            if deployment is not None:
                name, dep_id = deployment
                active = await active_runs(dep_id, block.name)
                if active:
                    out.append({**base, "status": "already running", "flow_run_id": str(active[0].id),
                                "mode": "deployment"})  # fmt: skip
                    continue
                fr = await run_deployment(
                    name,
                    parameters={"cluster": block.name, "decision": params.model_dump(mode="json")},
                    timeout=0,
                    tags=[cluster_tag(block.name), f"remedy:{d.remedy.value}"],
                )
                out.append({**base, "status": "started", "mode": "deployment", "deployment": name,
                            "flow_run_id": str(fr.id), "flow_run_name": fr.name})  # fmt: skip
            elif d.remedy is Remedy.REPLACE_BROKER and not d.needs_approval:
                # Nothing for the remediate wrapper to do (no approval to wait for): the replacement
                # runs as the health check's subflow directly, one flow run less before the repair.
                out.append({**base, "mode": "in-process", **await _replace(block.name, params, params.actor)})
            else:
                res = await remediate(block.name, params)
                out.append({**base, "mode": "in-process", **res})
        except Exception as exc:
            logger.error("[%s] remediation %s of broker %s failed: %s", block.name, d.remedy, d.broker_id, exc)
            out.append({**base, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
    return out


register_dispatcher(dispatch)
