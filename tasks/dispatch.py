"""Running a flow: in this process, or as a run of its deployment -- the one adapter for both.

Who uses it: remediation (the health check hands a decision to ``remediate``; a long heal, or a
pause waiting for a human, must not block the next health check, so it runs as a deployment run
when one exists) and the CLI (``kafka-medic ... [--deployed [--wait]]``: in this process, or a
run of the deployment as the UI starts one). Deployment names come from
:func:`kafka_medic.naming.deployment_name`, the same rule serve and ``prefect.yaml`` use.

In-process the flow is simply awaited (as a subflow inside a flow run): fine for tests and small
setups, and one flow run less on the way to a repair.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from pydantic import BaseModel

from blocks.api import api_url, read_or_none
from kafka_medic.errors import ConfigError
from kafka_medic.naming import cluster_tag, deployment_name
from tasks.audit import end_open_audits, track_open_audits, untrack_open_audits

log = logging.getLogger("kafka_medic.dispatch")
_ACTIVE_STATES = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED]

Mode = Literal["auto", "deployment", "in-process"]


@dataclass
class Started:
    """How a flow was run, and what came of it so far."""

    mode: Literal["deployment", "in-process"]
    status: str  # in-process: "finished"; deployment: "started", "already running", or the final state's name
    result: Any = None  # in-process: the flow's return value
    deployment: str | None = None
    flow_run: Any = None  # deployment: the FlowRun (with its state when waited for)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """JSON-safe summary; an in-process result that is a dict is merged in (its ``status`` wins)."""
        out: dict[str, Any] = {"mode": self.mode, "status": self.status, **self.extra}
        if self.deployment:
            out["deployment"] = self.deployment
        if self.flow_run is not None:
            out["flow_run_id"] = str(self.flow_run.id)
            out["flow_run_name"] = self.flow_run.name
        if isinstance(self.result, dict):
            out.update(self.result)
        elif self.result is not None:
            out["result"] = self.result
        return out


def json_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """Flow parameters as a deployment run takes them (pydantic models dumped to JSON)."""
    return {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in parameters.items()}


async def find_deployment(flow_name: str, cluster: str) -> tuple[str, Any] | None:
    """(``flow/deployment`` name, id) of the flow's deployment for ``cluster``, or None if not deployed."""
    name = deployment_name(flow_name, cluster)
    dep = await read_or_none(f"reading deployment {name!r}", lambda client: client.read_deployment_by_name(name))
    return None if dep is None else (name, dep.id)


async def active_runs(deployment_id: Any, cluster: str, once_key: str | None = None) -> list[Any]:
    """Runs of this deployment for ``cluster`` (and tagged ``once_key``, if given) not finished yet."""
    async with get_client() as client:
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[cluster_tag(cluster), *([once_key] if once_key else [])]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=_ACTIVE_STATES)),
            ),
            limit=5,
        )


async def start_flow(
    flow: Any, parameters: dict[str, Any], *, cluster: str, mode: Mode = "auto", tags: list[str] | None = None,
    once_per_cluster: bool = True, once_key: str | None = None, wait_s: float = 0.0,
    in_process: Callable[..., Awaitable[Any]] | None = None,
) -> Started:  # fmt: skip
    """Run ``flow`` with ``parameters`` (``cluster`` among them) and say how.

    ``mode``: ``auto`` -- a run of its deployment when the flow is deployed, else in this process;
    ``deployment`` -- its deployment or a ConfigError saying how to create one; ``in-process``.
    A deployment run is tagged with the cluster; with ``once_per_cluster`` it is not started while
    another run of it for the cluster is active -- or, with ``once_key`` (a tag the run also gets),
    another run for the cluster with that tag: remediation passes ``broker:<id>``, so a run paused
    for a human's approval about one broker never holds back the healing of another. ``wait_s`` > 0
    waits that long for it to finish (0: fire and forget). In this process ``in_process(**parameters)``
    runs when given (a shorter path to the same work), else the flow itself.
    """
    found = None
    if mode != "in-process":
        try:
            found = await find_deployment(flow.name, cluster)
        except Exception as exc:
            if mode == "deployment":
                raise
            log.error("[%s] cannot look up the %s deployment (%s); running in-process", cluster, flow.name, exc)
        if found is None and mode == "deployment":
            raise ConfigError(
                f"deployment {deployment_name(flow.name, cluster)!r} not found on {api_url()}; start "
                "`python -m deployments.serve` (or ./medic start) first"
            )
    if found is None:
        token = track_open_audits()
        try:
            result = await (in_process or flow)(**parameters)
        except BaseException as exc:
            if not isinstance(exc, Exception):  # interrupted (Ctrl-C, SIGTERM via the CLI, cancelled)
                await end_open_audits(exc)
            raise
        finally:
            untrack_open_audits(token)
        return Started("in-process", "finished", result=result)
    name, dep_id = found
    if once_per_cluster:
        active = await active_runs(dep_id, cluster, once_key)
        if active:
            return Started("deployment", "already running", deployment=name, flow_run=active[0])
    run = await run_deployment(
        name, parameters=json_parameters(parameters), timeout=wait_s,
        tags=[cluster_tag(cluster), *([once_key] if once_key else []), *(tags or [])],
        as_subflow=mode == "auto",
    )  # fmt: skip
    state = run.state.name if wait_s and run.state is not None else "started"
    return Started("deployment", state, deployment=name, flow_run=run)
