"""``fleet-health``: the health check of every cluster at once, and one summary table."""

from __future__ import annotations

import asyncio

from prefect import flow
from prefect.artifacts import acreate_table_artifact

from blocks.load import cluster_names
from flows.health_check import health_check
from kafka_medic.errors import ConfigError
from kafka_medic.reports.health import HealthReport


@flow(name="fleet-health", timeout_seconds=900)
async def fleet_health(clusters: list[str] | None = None, act: bool = True) -> list[HealthReport]:
    """Health check every named cluster (default: every configured one) concurrently; one summary table.

    Args:
        clusters: KafkaCluster block names to check; empty means every configured cluster.
        act: Let each check hand executable decisions to remediation (each cluster's mode applies).
    """
    names = clusters or await cluster_names()
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
