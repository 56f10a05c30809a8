"""Running a flow: in this process, or as a run of its deployment -- the one adapter for both.

Who uses it: remediation (the health check hands a decision to ``remediate``; a long heal, or a
pause waiting for a human, must not block the next health check, so it runs as a deployment run
when one exists) and the CLI's ``--deployed`` (start a run as the UI does). Deployment names come
from :func:`kafka_medic.naming.deployment_name`, the same rule serve and ``prefect.yaml`` use.

In-process (no deployment found, or ``prefer_deployment=False``) the flow is simply awaited as a
subflow: fine for tests and small setups, and one flow run less on the way to a repair.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

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
from prefect.exceptions import ObjectNotFound
from pydantic import BaseModel

from blocks.api import prefect_api_errors
from kafka_medic.naming import cluster_tag, deployment_name

log = logging.getLogger("kafka_medic.dispatch")
_ACTIVE_STATES = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED]


def json_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """Flow parameters as a deployment run takes them (pydantic models dumped to JSON)."""
    return {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in parameters.items()}


async def find_deployment(flow_name: str, cluster: str) -> tuple[str, Any] | None:
    """(``flow/deployment`` name, id) of the flow's deployment for ``cluster``, or None if not deployed."""
    name = deployment_name(flow_name, cluster)
    with prefect_api_errors(f"reading deployment {name!r}"):
        async with get_client() as client:
            try:
                dep = await client.read_deployment_by_name(name)
            except ObjectNotFound:
                return None
    return name, dep.id


async def active_runs(deployment_id: Any, cluster: str) -> list[Any]:
    """Runs of this deployment for ``cluster`` that are not finished yet."""
    async with get_client() as client:
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[cluster_tag(cluster)]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=_ACTIVE_STATES)),
            ),
            limit=5,
        )


async def start_flow(
    flow: Any, parameters: dict[str, Any], *, cluster: str, tags: list[str] | None = None,
    prefer_deployment: bool = True, once_per_cluster: bool = True,
    in_process: Callable[..., Awaitable[Any]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Run ``flow`` with ``parameters`` (``cluster`` among them) and say how.

    As a deployment run when the flow is deployed (fire and forget; tagged with the cluster, and
    with ``once_per_cluster`` not started while another run of it for the cluster is active),
    else in this process: ``in_process(**parameters)`` when given (a shorter path to the same
    work), else the flow itself, awaited. Returns a dict with ``mode`` and ``status``; an
    in-process result that is a dict is merged in (its own ``status`` wins), any other goes under
    ``result``.
    """
    found = None
    if prefer_deployment:
        try:
            found = await find_deployment(flow.name, cluster)
        except Exception as exc:
            log.error("[%s] cannot look up the %s deployment (%s); running in-process", cluster, flow.name, exc)
    if found is None:
        result = await (in_process or flow)(**parameters)
        if isinstance(result, dict):
            return {"mode": "in-process", "status": "finished", **result}
        return {"mode": "in-process", "status": "finished", "result": result}
    name, dep_id = found
    if once_per_cluster:
        active = await active_runs(dep_id, cluster)
        if active:
            return {"mode": "deployment", "status": "already running", "flow_run_id": str(active[0].id)}
    run = await run_deployment(
        name, parameters=json_parameters(parameters), timeout=0, tags=[cluster_tag(cluster), *(tags or [])]
    )
    return {"mode": "deployment", "status": "started", "deployment": name, "flow_run_id": str(run.id),
            "flow_run_name": run.name}  # fmt: skip
