"""The catalogue: every kafka-medic flow, its parameter model and how it is deployed -- in one list.

Everything that names flows reads it: ``serve`` (one deployment per entry, the health check once
per cluster), ``prefect.yaml`` (generated from it: ``python -m deployments.catalogue --prefect-yaml``;
a test keeps the file equal to that output), the CLI (``kafka-medic run FLOW``, each subcommand,
parameter validation, ``--deployed``) and bootstrap's ``--deploy``. Remediation starts its two
flows through :mod:`tasks.dispatch`, by the same deployment names (:func:`kafka_medic.naming.deployment_name`).

Parameters are validated by the flow's own pydantic model before anything runs (the same model the
Prefect UI renders as a form), so a bad ``--param`` fails with pydantic's message, in one line.
"""

from __future__ import annotations

import inspect
import sys
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from flows.cancel_reassignment import cancel_reassignment
from flows.demote_broker import demote_broker, restore_broker
from flows.drain import drain_broker
from flows.fleet_health import fleet_health
from flows.health_check import health_check
from flows.leader_election import preferred_leader_election
from flows.maintenance_mode import maintenance_mode
from flows.reassign import reassign
from flows.remediate import remediate
from flows.replace_broker import replace_broker
from flows.restart_broker import restart_broker
from flows.rolling_restart import rolling_restart
from flows.undrain import undrain_broker
from flows.verify_isr import verify_isr
from flows.what_if import what_if
from kafka_medic.errors import ConfigError
from kafka_medic.naming import DEPLOYMENT_NAME, HEALTH_CHECK_FLOW, TAG


def validation_message(exc: ValidationError) -> str:
    """pydantic's errors as one line: ``field: message; other: message``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(parts)


@dataclass(frozen=True)
class Entry:
    """One flow: the flow object, what it is for, and (derived) its parameter model."""

    flow: Any
    description: str

    @property
    def name(self) -> str:
        return str(self.flow.name)

    @property
    def per_cluster(self) -> bool:
        """Deployed once per cluster with a schedule (the health check), else once for all clusters."""
        return self.name == HEALTH_CHECK_FLOW

    @property
    def module_entrypoint(self) -> str:
        """``flows.drain.drain_broker``: how ``serve`` and workers import it (any working directory)."""
        return f"{self.flow.fn.__module__}.{self.flow.fn.__name__}"

    @property
    def file_entrypoint(self) -> str:
        """``flows/drain.py:drain_broker``: how ``prefect deploy`` names it."""
        return f"{self.flow.fn.__module__.replace('.', '/')}.py:{self.flow.fn.__name__}"

    @property
    def arguments(self) -> list[str]:
        return [p for p in inspect.signature(self.flow.fn).parameters if p != "cluster"]

    @property
    def model(self) -> tuple[str, type[BaseModel]] | None:
        """(argument name, pydantic model) of the flow's parameter form, or None (plain arguments)."""
        hints = typing.get_type_hints(self.flow.fn)
        for arg in self.arguments:
            for cand in (hints.get(arg), *typing.get_args(hints.get(arg))):
                if isinstance(cand, type) and issubclass(cand, BaseModel):
                    return arg, cand
        return None

    def parameters(self, cluster: str, values: dict[str, Any]) -> dict[str, Any]:
        """The flow's call arguments for ``cluster``, validated by the flow's model (one-line ConfigError)."""
        model = self.model
        if model is None:
            unknown = sorted(set(values) - set(self.arguments))
            if unknown:
                raise ConfigError(f"{self.name} has no parameter(s) {unknown}; it takes {self.arguments}")
            return {"cluster": cluster, **values}
        arg, cls = model
        top = {k: v for k, v in values.items() if k in self.arguments and k != arg}
        inner = {k: v for k, v in values.items() if k not in top}
        try:
            validated = cls.model_validate(inner)
        except ValidationError as exc:
            raise ConfigError(f"invalid parameters for {self.name}: {validation_message(exc)}") from None
        return {"cluster": cluster, **top, arg: validated}


#: Every flow, health check first, then in the order the UI lists them best.
CATALOGUE: tuple[Entry, ...] = (
    Entry(health_check, "Health check of one cluster: collect, evaluate, heal."),
    Entry(preferred_leader_election, "Move leaders back to their preferred replicas."),
    Entry(maintenance_mode, "Turn maintenance mode on/off: automation reports only."),
    Entry(rolling_restart, "Restart brokers one at a time, waiting for full ISR."),
    Entry(drain_broker, "Move every replica off a broker (dry run by default)."),
    Entry(undrain_broker, "Move a drained broker's replicas back (undo a drain)."),
    Entry(what_if, "What would healing do if these brokers died? Touches nothing."),
    Entry(reassign, "Drain or replace brokers by partition reassignment."),
    Entry(cancel_reassignment, "Cancel in-flight partition reassignments."),
    Entry(verify_isr, "Wait until every partition's ISR is full."),
    Entry(replace_broker, "Heal one broker: restart it with its disk if its host is there, else replace it."),
    Entry(restart_broker, "Restart one broker keeping its disk (the ladder's middle rung)."),
    Entry(demote_broker, "Take every leadership off a broker (no data moves; reversible)."),
    Entry(restore_broker, "Give a broker its leaderships back (undo a demotion)."),
    Entry(remediate, "Carry out one healing decision (approvals)."),
    Entry(fleet_health, "Health check every cluster once."),
)


def entry(name: str) -> Entry:
    """The catalogue entry of a flow by name (``drain-broker``, ``drain_broker``), or a clear error."""
    key = name.strip().lower().replace("_", "-")
    for e in CATALOGUE:
        if e.name == key:
            return e
    raise ConfigError(f"unknown flow {name!r}; choose one of: {', '.join(sorted(e.name for e in CATALOGUE))}")


_YAML_HEAD = """\
# GENERATED from deployments/catalogue.py -- do not edit by hand; regenerate with
#   python -m deployments.catalogue --prefect-yaml > deployments/prefect.yaml
#
# kafka-medic deployments for `prefect deploy`: the same deployments `python -m deployments.serve`
# serves, run by a process work pool instead. From the repository root:
#
#   kafka-medic bootstrap --clusters clusters.yaml --work-pool kafka-medic
#   prefect --no-prompt deploy --all --prefect-file deployments/prefect.yaml
#   prefect worker start --pool kafka-medic
#
# One health-check deployment per cluster (deployment name = cluster name): copy the
# `sandbox` entry for each cluster and change the name and the `cluster` parameter (or let
# `kafka-medic bootstrap --work-pool NAME --deploy` deploy one per cluster block for you).
# Its concurrency limit (1, CANCEL_NEW) keeps checks of one cluster from piling up; one deployment
# per cluster keeps a slow cluster from cancelling another cluster's checks.
# The worker must run in this directory (or one with kafka-medic installed): the pull step below
# sets the flow runs' working directory to the directory `prefect deploy` was run from.

name: kafka-medic
prefect-version: 3.9.1

build: null
push: null
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: "{{ $PWD }}"

definitions:
  work_pool: &pool
    name: kafka-medic
    work_queue_name: default
  health_limit: &health_limit
    limit: 1
    collision_strategy: CANCEL_NEW

deployments:
"""


def prefect_yaml(example_cluster: str = "sandbox", interval_s: float = 15.0) -> str:
    """``deployments/prefect.yaml``, generated from the catalogue (one health check for ``example_cluster``)."""
    out = [_YAML_HEAD]
    for e in CATALOGUE:
        if e.per_cluster:
            out.append(
                f"  - name: {example_cluster}\n"
                f"    entrypoint: {e.file_entrypoint}\n"
                f"    description: \"Health check of cluster '{example_cluster}' every {interval_s:g} s "
                '(collect, evaluate, heal)."\n'
                f'    tags: [{TAG}, "cluster:{example_cluster}"]\n'
                "    schedules:\n"
                f"      - interval: {interval_s:g}\n"
                f"        parameters: {{cluster: {example_cluster}, act: true}}\n"
                "        active: true\n"
                "    concurrency_limit: *health_limit\n"
                "    work_pool: *pool\n"
            )
        else:
            out.append(
                f"  - name: {DEPLOYMENT_NAME}\n"
                f"    entrypoint: {e.file_entrypoint}\n"
                f'    description: "{e.description}"\n'
                f"    tags: [{TAG}]\n"
                "    work_pool: *pool\n"
            )
    return "".join(out)


if __name__ == "__main__":
    if sys.argv[1:] != ["--prefect-yaml"]:
        print("usage: python -m deployments.catalogue --prefect-yaml", file=sys.stderr)
        sys.exit(2)
    sys.stdout.write(prefect_yaml())
