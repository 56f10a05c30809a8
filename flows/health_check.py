"""``health-check``: one cycle for one cluster -- look, decide, publish, hand off remediation.

Thin orchestration over the pure core: the look is :func:`tasks.collect.look_now` (a fresh
collection, evaluated by :mod:`kafka_medic.rules` with the persisted down-since times), decisions
are :func:`kafka_medic.decide.decide`, remediation is :func:`flows.remediate.dispatch`. This flow
only moves data between them and Prefect: persisted state, artifacts for the UI, and events.

The flows are async on purpose: a sync flow run costs ~1 s of Prefect overhead here, an async one
~0.1 s, and a health check runs every few seconds on every cluster.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.events import emit_event

from blocks.load import load_cluster, replacer_can_restart
from flows.remediate import dispatch
from kafka_medic.decide import COSTED_REMEDIES, Remedy, decide, with_costs
from kafka_medic.findings import Finding, Severity
from kafka_medic.incidents import conditions, ladder_conditions, remediation_conditions, worst
from kafka_medic.judgment import worth_saving
from kafka_medic.policy import Mode
from kafka_medic.reports.health import (
    HealthReport,
    findings_markdown,
    judgment_record,
    table_records,
)
from kafka_medic.state import now_utc
from tasks.collect import look_now
from tasks.incidents import track_incidents
from tasks.state import cluster_state


def _emit(cluster: str, f: Finding) -> None:
    emit_event(
        event=f"kafka-medic.finding.{f.rule}",
        resource={"prefect.resource.id": f"kafka-medic.cluster.{cluster}", "kafka-medic.cluster": cluster},
        payload=f.to_record(),
    )


@flow(name="health-check", timeout_seconds=600, retries=0)
async def health_check(cluster: str, act: bool = False) -> HealthReport:
    """One cycle for one cluster: collect, evaluate, decide and (with ``act``) dispatch.

    Args:
        cluster: Name of the KafkaCluster block to check.
        act: Hand executable decisions to remediation (default False: a form submitted with its defaults
            reports only; the schedules pass True; the cluster's mode still applies: observe
            and approve never act unattended). False reports the decisions and dispatches nothing.
    """
    logger = get_run_logger()
    block = await load_cluster(cluster)
    can_restart = await replacer_can_restart(block)
    look = await look_now(block, can_restart=can_restart)
    ev = look.evaluation
    # Written only when changed: these are Prefect API writes on every cycle of every cluster, and
    # the cycle that finds a dead broker is the one that must not wait on them needlessly.
    state = cluster_state(cluster)
    if ev.down_since != look.down_since:
        await state.save_down_since(ev.down_since)
    if look.result.known_brokers != look.known:
        await state.save_known_brokers(look.result.known_brokers)

    decisions = decide(ev.findings, block.policy.mode, has_replacer=block.replacer is not None,
                       can_restart=can_restart, maintenance=look.in_maintenance)  # fmt: skip
    if any(d.remedy in COSTED_REMEDIES for d in decisions):  # a pass over the partitions: only when one is due
        decisions = await asyncio.to_thread(with_costs, decisions, look.snapshot, block.policy)
    counts = {s.value: sum(f.severity is s for f in ev.findings) for s in Severity}
    for f in ev.findings:
        if f.severity is not Severity.INFO:
            logger.warning("[%s] %s %s: %s", cluster, f.severity.value, f.rule, f.summary)
        if f.actionable:
            _emit(cluster, f)

    # Written before dispatch, one after the other: the Prefect server's SQLite serialises writes,
    # and these overlapping the remediation's own writes (its subflow run) measurably stalled the
    # subflow's creation by seconds.
    await acreate_table_artifact(
        key=f"broker-health-{cluster}", table=table_records(ev.broker_health),
        description=f"Per-broker health of {cluster}",
    )  # fmt: skip
    await acreate_markdown_artifact(
        key=f"health-{cluster}", markdown=findings_markdown(cluster, ev, decisions, look.in_maintenance),
        description=f"Findings for {cluster}",
    )  # fmt: skip

    dispatched: list[dict[str, Any]] = []
    todo = [d for d in decisions if d.execute and d.remedy not in (Remedy.REPORT, Remedy.PAGE)]
    if act and todo:
        dispatched = await dispatch(block, todo, [f.to_record() for f in ev.findings], look.ladder)
    elif todo:
        logger.info("[%s] decisions not dispatched (act=False)", cluster)
    # The judgment is persisted after the dispatch (off the path to a repair), and only when it
    # moved (:func:`kafka_medic.judgment.worth_saving`); a remediation's guard judges its own look.
    if worth_saving(look.scores, look.judgment.scores, block.policy):
        await state.save_scores(look.judgment.scores)

    # Humans are told through incidents, from this cycle's findings and dispatch outcomes: once on
    # opening, again on a schedule while open, and "resolved" when it clears (kafka_medic.incidents).
    # A dead broker is somebody else's to heal only when automation will act on it this cycle, or
    # the cluster is in maintenance (a human is already working on it).
    heals = look.in_maintenance or (act and block.policy.mode is Mode.AUTO)
    ladder = await state.ladder() if dispatched else look.ladder  # attempts this cycle's dispatch made
    current = conditions(ev.findings, automation_heals=heals) + worst(
        [*remediation_conditions(dispatched), *ladder_conditions(ladder, block.policy, now_utc())]
    )
    incidents = await track_incidents(block, current)

    serious = counts["warning"] + counts["critical"]
    return HealthReport(
        cluster=cluster, healthy=serious == 0, automation_allowed=ev.automation_allowed,
        maintenance=look.in_maintenance, counts=counts, findings=[f.to_record() for f in ev.findings],
        decisions=[d.to_record() for d in decisions], dispatched=dispatched,
        collect_s=round(look.result.seconds, 3), evaluate_s=round(look.evaluate_s, 4),
        judgment=judgment_record(look.judgment, look.ladder), incidents=incidents,
    )  # fmt: skip
