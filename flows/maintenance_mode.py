"""``maintenance-mode``: tell automation to keep its hands off a cluster (health checks still report)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field, model_validator

from blocks.load import load_cluster
from kafka_medic.audit import AuditStatus
from tasks.audit import RunAudit
from tasks.state import cluster_state


class MaintenanceParams(BaseModel):
    """Turn maintenance mode on (automation reports but never acts) or off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on: bool = Field(True, description="True: automation stands down for this cluster. False: it acts again.")
    reason: str = Field("", max_length=1000, description="Why (required to turn it on); shown in the UI and audit.")
    by: str = Field(..., min_length=1, max_length=200, description="Who is changing it (name or team).")

    @model_validator(mode="after")
    def _reason_when_on(self) -> MaintenanceParams:
        if self.on and not self.reason.strip():
            raise ValueError("a reason is required to turn maintenance mode on")
        if not self.by.strip():
            raise ValueError("'by' must name who changes maintenance mode")
        return self


class MaintenanceReport(BaseModel):
    cluster: str
    on: bool
    reason: str
    by: str
    since: datetime
    previous: dict[str, Any] | None


@flow(name="maintenance-mode", timeout_seconds=120, retries=0)
async def maintenance_mode(cluster: str, params: MaintenanceParams) -> MaintenanceReport:
    """Turn maintenance mode on or off for a cluster (persisted in a Prefect Variable).

    While on, health checks keep collecting and reporting, but every decision is marked "not
    acting: maintenance mode" and nothing is dispatched. No cluster lock is taken on purpose: this
    is the emergency brake, and it must work while a long action holds the lock.

    Args:
        cluster: Name of the cluster (its KafkaCluster block), e.g. "sandbox".
        params: On or off, why, and who.
    """
    block = await load_cluster(cluster)
    store = cluster_state(cluster)
    previous = await store.maintenance()
    state = await store.set_maintenance(params.on, params.reason, params.by)
    audit = RunAudit(block, "maintenance_mode", actor=state.by)
    verb = "on" if params.on else "off"
    summary = f"maintenance mode {verb} by {state.by}" + (f": {state.reason}" if state.reason else "")
    await audit(AuditStatus.FINISHED, summary, on=state.on, reason=state.reason, by=state.by)
    await acreate_markdown_artifact(
        key=f"maintenance-{cluster}",
        markdown=f"# Maintenance mode of `{cluster}`: **{verb.upper()}**\n\nby {state.by} at "
        f"{state.since.isoformat(timespec='seconds')}\n\n{state.reason}",
        description=f"Maintenance mode of {cluster}",
    )
    return MaintenanceReport(
        cluster=cluster, on=state.on, reason=state.reason, by=state.by, since=state.since,
        previous=previous.model_dump(mode="json") if previous else None,
    )  # fmt: skip
