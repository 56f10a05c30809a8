"""Serve every kafka-medic flow as a Prefect deployment from one process: ``python -m deployments.serve``.

What gets deployed (deployment names are ``<flow-name>/<deployment-name>``):

* ``health-check/<cluster>`` for every cluster: one Interval schedule whose parameters name the
  cluster, and a deployment concurrency limit of 1 with collision strategy CANCEL_NEW. One
  deployment per cluster, not one deployment with a schedule per cluster, because Prefect's
  deployment concurrency limit covers the whole deployment: with one shared deployment a slow
  cluster would cancel (or queue) the checks of every other cluster. Per cluster, a check that
  is still running when the next one is due makes the new one be cancelled, so checks never pile
  up and a late check never runs on stale intent.
* ``<flow-name>/kafka-medic`` for every operator flow (maintenance, what-if, reassign, verify-isr,
  replace-broker, remediate, fleet-health): no schedule; run them from the UI (a form built from
  their pydantic parameter models), ``kafka-medic ... --deployed`` or ``prefect deployment run``.

Entrypoints are module paths (``flows.rolling_restart.rolling_restart``), so runs work from any working
directory as long as kafka-medic is installed (``pip install -e .``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from deployments.catalogue import CATALOGUE, Entry
from kafka_medic.errors import ConfigError, MedicError
from kafka_medic.naming import DEPLOYMENT_NAME, TAG, cluster_tag

DEFAULT_HEALTH_INTERVAL_S = 15.0
#: How often the serving process asks the server for runs to start. Prefect's default is 10 s, which
#: was seen to set the pace of healing: the remediation a health check dispatched waited up to 10 s
#: to be picked up (main job: 18 s from the deciding check to the replace-broker subflow), and a 5 s
#: schedule ran only every ~11 s. One small API call per poll for the whole process.
RUNNER_POLL_S = 2.0


def health_interval_s(value: float | None = None) -> float:
    """The health-check interval: the argument, else $KAFKA_MEDIC_HEALTH_INTERVAL_S, else 15 s."""
    if value is None:
        raw = os.environ.get("KAFKA_MEDIC_HEALTH_INTERVAL_S", "")
        try:
            value = float(raw) if raw.strip() else DEFAULT_HEALTH_INTERVAL_S
        except ValueError:
            raise ConfigError(f"KAFKA_MEDIC_HEALTH_INTERVAL_S must be a number of seconds, got {raw!r}") from None
    if not 1 <= value <= 86_400:
        raise ConfigError(f"the health-check interval must be between 1 and 86400 seconds, got {value:g}")
    return value


def health_check_deployment(entry: Entry, cluster: str, interval_s: float) -> Any:
    """``health-check/<cluster>``: every ``interval_s`` seconds, never two at once."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Interval
    from prefect.types.entrypoint import EntrypointType

    from kafka_medic.settings.validators import check_cluster_name

    check_cluster_name(cluster)
    return entry.flow.to_deployment(
        name=cluster,
        schedules=[Interval(interval_s, parameters={"cluster": cluster, "act": True})],
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        paused=False,
        description=f"Health check of cluster {cluster!r} every {interval_s:g} s (collect, evaluate, heal).",
        tags=[TAG, cluster_tag(cluster)],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def operator_deployment(entry: Entry) -> Any:
    """``<flow>/kafka-medic``: no schedule; run from the UI (a form from its parameter model) or the CLI."""
    from prefect.types.entrypoint import EntrypointType

    return entry.flow.to_deployment(
        name=DEPLOYMENT_NAME, description=entry.description, tags=[TAG], paused=False,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )  # fmt: skip


def build_deployments(clusters: Sequence[str], *, interval_s: float | None = None) -> list[Any]:
    """Every kafka-medic deployment (RunnerDeployment objects) for ``clusters``; nothing is sent yet."""
    interval = health_interval_s(interval_s)
    out: list[Any] = []
    for entry in CATALOGUE:
        if entry.per_cluster:
            out += [health_check_deployment(entry, c, interval) for c in sorted(set(clusters))]
        else:
            out.append(operator_deployment(entry))
    return out


def deployment_names(deployments: Sequence[Any]) -> list[str]:
    """``flow-name/deployment-name`` of each deployment, as ``prefect deployment run`` takes them."""
    return [f"{d.flow_name}/{d.name}" for d in deployments]


async def configured_clusters() -> list[str]:
    """Every KafkaCluster block on the Prefect server (empty when none, or the type is not registered)."""
    from blocks.load import cluster_names

    return await cluster_names()


async def aserve_until(deployments: Sequence[Any], stop: asyncio.Event, *, limit: int | None = None) -> None:
    """Serve ``deployments`` until ``stop`` is set, then stop the runner (in-flight runs are cancelled).

    Used by the main job, which owns signal handling and must shut the runner down before it stops
    the Prefect server and the sandbox. Schedules are NOT paused on shutdown: the same process
    re-registers them on the next start.
    """
    from prefect.runner import Runner

    runner = Runner(
        name=f"kafka-medic-{os.getpid()}", pause_on_shutdown=False, limit=limit, query_seconds=RUNNER_POLL_S
    )
    for d in deployments:
        await runner.aadd_deployment(d)
    task = asyncio.create_task(runner.start())
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # the runner ended by itself: surface why
            return
    finally:
        stopper.cancel()
        if not task.done():
            if runner.started:
                await runner.astop()
            try:
                await asyncio.wait_for(task, timeout=30)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__.split("\n", 1)[0])
    p.add_argument(
        "--cluster", action="append", default=None, help="cluster to health-check (repeatable; default: every block)"
    )
    p.add_argument("--health-interval", type=float, default=None, help="seconds between health checks (default 15)")
    p.add_argument(
        "--no-health-checks", action="store_true", help="serve only the operator flows (health checks served elsewhere)"
    )
    p.add_argument("--limit", type=int, default=None, help="most flow runs at once (default: Prefect's)")
    p.add_argument("--list", action="store_true", help="print the deployments and exit (nothing is served)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.no_health_checks:
            clusters = []
        else:
            clusters = args.cluster if args.cluster is not None else asyncio.run(configured_clusters())
        deployments = build_deployments(clusters, interval_s=args.health_interval)
    except (MedicError, ValueError) as exc:
        print(f"kafka-medic serve: error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(deployment_names(deployments)))
        return 0
    if not clusters and not args.no_health_checks:
        print(
            "kafka-medic serve: no clusters configured: no health checks are scheduled "
            "(run `kafka-medic bootstrap --clusters FILE` first)",
            file=sys.stderr,
        )
    from prefect import serve

    serve(*deployments, limit=args.limit, query_seconds=RUNNER_POLL_S)
    return 0


if __name__ == "__main__":
    sys.exit(main())
