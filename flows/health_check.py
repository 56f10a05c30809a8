"""The periodic health check: collect -> evaluate -> publish -> emit events -> hand off remediation.

Thin orchestration over the pure core: collection is ``kafka_medic.collector`` (I/O, run in a
worker thread), evaluation is ``kafka_medic.rules.evaluate`` (pure), decisions are
``kafka_medic.decide`` (pure). This module only moves data between them and Prefect: persisted
state (Variables), artifacts for the UI, and events.

The flows are async on purpose: a sync flow run costs ~1 s of Prefect overhead here, an async one
~0.1 s, and a health check runs every few seconds on every cluster.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.events import emit_event
from prefect.variables import Variable
from pydantic import BaseModel, Field

from blocks.kafka_cluster import KafkaCluster
from kafka_medic import coordination
from kafka_medic.collector import CollectResult, KnownBroker
from kafka_medic.decide import Decision, Remedy, decide
from kafka_medic.errors import ConfigError
from kafka_medic.findings import Finding, Severity
from kafka_medic.rules import Evaluation, evaluate
from tasks.collect import collect_cluster

#: Hook the remediation side registers (flows.remediate); None until it is imported.
Dispatcher = Callable[[KafkaCluster, list[Decision], dict[str, Any]], Awaitable[list[dict[str, Any]]]]


class HealthReport(BaseModel):
    """What one health-check cycle found and did (the flow's return value)."""

    cluster: str
    healthy: bool
    automation_allowed: bool
    maintenance: bool
    counts: dict[str, int] = Field(description="findings per severity")
    findings: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    dispatched: list[dict[str, Any]] = Field(default_factory=list)
    collect_s: float
    evaluate_s: float


async def load_cluster(name: str) -> KafkaCluster:
    """The cluster's block, or a clear error naming the clusters that do exist."""
    try:
        return await KafkaCluster.aload(name)
    except ValueError as exc:
        known = await known_cluster_names()
        hint = f"known clusters: {', '.join(known)}" if known else "no clusters are configured yet"
        raise ConfigError(f"unknown cluster {name!r}; {hint}") from exc


async def known_cluster_names() -> list[str]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        try:
            docs = await client.read_block_documents_by_type("kafka-cluster", include_secrets=False)
        except Exception:  # the block type is not registered yet: no clusters
            return []
    return sorted(d.name for d in docs if d.name and not d.is_anonymous)


def _known_var(cluster: str) -> str:
    return coordination.variable_name(cluster, "known_brokers")


async def load_known_brokers(cluster: str) -> dict[int, KnownBroker]:
    raw = await Variable.aget(_known_var(cluster), default=None)
    if not isinstance(raw, dict):
        return {}
    out = {}
    for v in raw.get("brokers", []):
        try:
            kb = KnownBroker.from_json(v)
        except (KeyError, TypeError, ValueError):
            continue
        out[kb.broker_id] = kb
    return out


async def _save_known(cluster: str, known: dict[int, KnownBroker]) -> None:
    await Variable.aset(
        _known_var(cluster), {"brokers": [k.to_json() for k in sorted(known.values(), key=lambda k: k.broker_id)]},
        overwrite=True,
    )  # fmt: skip


def findings_markdown(cluster: str, ev: Evaluation, decisions: list[Decision], maintenance: bool) -> str:
    lines = [f"# Health of `{cluster}`", ""]
    if not ev.automation_allowed:
        lines += ["**AUTOMATION STANDS DOWN** — a human must act (see critical findings).", ""]
    if maintenance:
        lines += ["**Maintenance mode** — findings are reported, nothing is acted on.", ""]
    serious = [f for f in ev.findings if f.severity is not Severity.INFO]
    if not serious:
        lines.append("No warnings or critical findings.")
    else:
        lines += ["| severity | rule | brokers | summary | since |", "|---|---|---|---|---|"]
        for f in ev.findings:
            since = f.since.isoformat(timespec="seconds") if f.since else ""
            brokers = ",".join(map(str, f.brokers))
            lines.append(f"| {f.severity.value} | {f.rule} | {brokers} | {f.summary} | {since} |")
    if decisions:
        lines += ["", "## Decisions", "", "| remedy | broker | execute | reason |", "|---|---|---|---|"]
        for d in decisions:
            lines.append(f"| {d.remedy.value} | {d.broker_id or ''} | {d.execute} | {d.reason} |")
    return "\n".join(lines)


def _table_records(health: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows (timestamps as ISO text, NaN as null) for a Prefect table artifact."""
    return json.loads(health.round(3).to_json(orient="records", date_format="iso"))


def _emit(cluster: str, f: Finding) -> None:
    emit_event(
        event=f"kafka-medic.finding.{f.rule}",
        resource={"prefect.resource.id": f"kafka-medic.cluster.{cluster}", "kafka-medic.cluster": cluster},
        payload=f.to_record(),
    )


_dispatcher: Dispatcher | None = None

#: The latest collection per cluster in this process: (monotonic time taken, result). A replacement
#: dispatched by this health check reuses its slow parts (see ``recent_collection``).
_recent: dict[str, tuple[float, CollectResult]] = {}


def recent_collection(cluster: str, max_age_s: float) -> CollectResult | None:
    """This process's latest collection of ``cluster`` if younger than ``max_age_s``, else None.

    Process-local on purpose: a remediation run in another process (a deployment run) simply
    collects afresh. Callers must re-read what they judge safety on (``collector.refresh_liveness``).
    """
    hit = _recent.get(cluster)
    if hit is None or max_age_s <= 0 or time.monotonic() - hit[0] > max_age_s:
        return None
    return hit[1]


def register_dispatcher(fn: Dispatcher) -> None:
    """Remediation plugs in here, so the health check does not import every remediation flow."""
    global _dispatcher
    _dispatcher = fn


@flow(name="health-check", timeout_seconds=600, retries=0)
async def health_check(cluster: str, act: bool = True) -> HealthReport:
    """One cycle for one cluster: collect, evaluate, decide and (with ``act``) dispatch.

    Args:
        cluster: Name of the KafkaCluster block to check.
        act: Hand executable decisions to remediation (the cluster's mode still applies: observe
            and approve never act unattended). False reports the decisions and dispatches nothing.
    """
    logger = get_run_logger()
    # Four independent Prefect API reads, concurrently: every cycle pays them before it looks.
    block, known, down_since, maintenance_state = await asyncio.gather(
        load_cluster(cluster), load_known_brokers(cluster), coordination.aload_down_since(cluster),
        coordination.aget_maintenance(cluster),
    )  # fmt: skip
    maintenance = bool(maintenance_state and maintenance_state.on)

    t_collect = time.monotonic()
    result: CollectResult = await collect_cluster(block, known)
    _recent[cluster] = (t_collect, result)
    t0 = time.perf_counter()
    ev = evaluate(result.snapshot, block.policy, down_since=down_since)
    eval_s = time.perf_counter() - t0
    # Written only when changed: these are Prefect API writes on every cycle of every cluster, and
    # the cycle that finds a dead broker is the one that must not wait on them needlessly.
    if ev.down_since != down_since:
        await coordination.asave_down_since(cluster, ev.down_since)
    if result.known_brokers != known:
        await _save_known(cluster, result.known_brokers)

    decisions = decide(ev.findings, block.policy.mode, has_replacer=block.replacer is not None, maintenance=maintenance)
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
        key=f"broker-health-{cluster}", table=_table_records(ev.broker_health),
        description=f"Per-broker health of {cluster}",
    )  # fmt: skip
    await acreate_markdown_artifact(
        key=f"health-{cluster}", markdown=findings_markdown(cluster, ev, decisions, maintenance),
        description=f"Findings for {cluster}",
    )  # fmt: skip

    dispatched: list[dict[str, Any]] = []
    todo = [d for d in decisions if d.execute and d.remedy is not Remedy.REPORT]
    if act and todo and _dispatcher is None:
        importlib.import_module("flows.remediate")  # registers its dispatcher (kept lazy: no import cycle)
    if act and todo and _dispatcher is not None:
        dispatched = await _dispatcher(block, todo, {"findings": [f.to_record() for f in ev.findings]})
    elif todo:
        loaded = bool(_dispatcher)
        logger.info("[%s] decisions not dispatched (act=%s, remediation loaded=%s)", cluster, act, loaded)

    serious = counts["warning"] + counts["critical"]
    return HealthReport(
        cluster=cluster,
        healthy=serious == 0,
        automation_allowed=ev.automation_allowed,
        maintenance=maintenance,
        counts=counts,
        findings=[f.to_record() for f in ev.findings],
        decisions=[d.to_record() for d in decisions],
        dispatched=dispatched,
        collect_s=round(result.seconds, 3),
        evaluate_s=round(eval_s, 4),
    )


@flow(name="fleet-health", timeout_seconds=900)
async def fleet_health(clusters: list[str] | None = None, act: bool = True) -> list[HealthReport]:
    """Health check every named cluster (default: every configured one) concurrently; one summary table.

    Args:
        clusters: KafkaCluster block names to check; empty means every configured cluster.
        act: Let each check hand executable decisions to remediation (each cluster's mode applies).
    """
    names = clusters or await known_cluster_names()
    if not names:
        raise ConfigError("no clusters to check: create KafkaCluster blocks first (kafka-medic clusters load FILE)")
    results = await asyncio.gather(*(health_check(n, act=act) for n in names), return_exceptions=True)
    rows, reports = [], []
    for name, r in zip(names, results, strict=True):
        if isinstance(r, BaseException):
            rows.append({"cluster": name, "status": "check failed", "critical": None, "warning": None, "error": str(r)})
            continue
        reports.append(r)
        status = "healthy" if r.healthy else ("STAND DOWN" if not r.automation_allowed else "unhealthy")
        rows.append({"cluster": name, "status": status, "critical": r.counts["critical"],
                     "warning": r.counts["warning"], "error": None})  # fmt: skip
    await acreate_table_artifact(key="fleet-health", table=rows, description="Fleet health summary")
    return reports
