"""The one setup step a Prefect server needs before kafka-medic runs on it. Idempotent.

``kafka-medic bootstrap [--clusters clusters.yaml] [--work-pool NAME]``:

1. register every kafka-medic block type (so blocks can be created and edited in the UI);
2. load the cluster file, validate all of it, and save each cluster as a KafkaCluster block;
3. create (or repair: size 1, active) the two global concurrency limits of EVERY cluster block on
   the server -- not only the ones in the file: a cluster created in the UI needs them too, and a
   missing limit makes every mutating action refuse to run (never run unprotected);
4. optionally create a process work pool for ``prefect deploy`` users;
5. optionally (``--deploy``, with ``--work-pool``) (re)deploy every kafka-medic deployment to that
   pool: one ``health-check/<cluster>`` per cluster block on the server (interval schedule, limit 1,
   CANCEL_NEW) and every operator flow -- the same deployments ``python -m deployments.serve``
   serves, run instead by ``prefect worker start --pool NAME`` on machines that have this checkout
   at the same path (the deployments point at it).

Running it twice changes nothing the second time (Prefect registers types by slug and schemas by
checksum, blocks are overwritten with the same content, limits are read before they are created,
deployments are updated in place by name).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blocks import register_block_types
from blocks.api import prefect_api_errors
from blocks.kafka_cluster import KafkaCluster
from blocks.load import cluster_names
from deployments.sync import run_sync
from kafka_medic.errors import ConfigError
from kafka_medic.settings.clusters_file import load_clusters
from tasks.locks import ensure_cluster_limits


@dataclass
class BootstrapResult:
    block_types: list[str]
    clusters_saved: list[str]
    extra_blocks: list[str]
    clusters: list[str]
    limits: list[str]
    work_pool: str | None = None
    work_pool_created: bool = False
    deployed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"block types registered: {', '.join(self.block_types)}"]
        if self.clusters_saved:
            out.append(f"cluster blocks saved: {', '.join(self.clusters_saved)}")
        if self.extra_blocks:
            out.append(f"blocks saved: {', '.join(self.extra_blocks)}")
        out.append(f"clusters configured: {', '.join(self.clusters) or 'none'}")
        out.append(f"concurrency limits ready: {len(self.limits)}")
        if self.work_pool:
            state = "created" if self.work_pool_created else "already there"
            out.append(f"process work pool {self.work_pool!r}: {state}")
        if self.deployed:
            out.append(f"deployed to {self.work_pool!r}: {len(self.deployed)} deployments ({', '.join(self.deployed)})")
        return out + self.notes


def cluster_block_names() -> list[str]:
    """Names of every KafkaCluster block document on the server (for sync callers: this and the CLI)."""
    return run_sync(cluster_names())


def save_clusters_as_blocks(path: str | os.PathLike[str], overwrite: bool = True) -> list[str]:
    """Load a cluster file and save each cluster as a KafkaCluster block named after it.

    The whole file is validated before anything is saved. Block types are registered and each
    cluster's concurrency limits created first (both idempotent), so this one call is all a fresh
    Prefect server needs. Returns the block names. With ``overwrite=False`` an existing block is a
    ConfigError naming it (clusters earlier in the file are saved already).
    """
    clusters = load_clusters(path, model=KafkaCluster)
    names: list[str] = []
    with prefect_api_errors("saving cluster blocks"):
        register_block_types()
        for cluster in clusters:
            try:
                cluster.save(cluster.name, overwrite=overwrite, _sync=True)  # type: ignore[call-arg]
            except ValueError as exc:
                if "already in use" in str(exc):
                    raise ConfigError(
                        f"{path}: a kafka-cluster block named {cluster.name!r} already exists "
                        "(pass overwrite=True to replace it)"
                    ) from None
                raise
            run_sync(ensure_cluster_limits(cluster.name))
            names.append(cluster.name)
    return names


def ensure_process_work_pool(name: str) -> bool:
    """Create a process work pool named ``name`` if missing; True if it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with prefect_api_errors(f"creating work pool {name!r}"), get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            try:
                client.create_work_pool(WorkPoolCreate(name=name, type="process"))
                return True
            except ObjectAlreadyExists:
                return False
        if pool.type != "process":
            raise ConfigError(f"work pool {name!r} exists with type {pool.type!r}; kafka-medic expects 'process'")
        return False


def bootstrap(
    clusters_file: str | os.PathLike[str] | None = None,
    *,
    blocks: Sequence[tuple[str, Any]] = (),
    work_pool: str | None = None,
    deploy: bool = False,
    interval_s: float | None = None,
) -> BootstrapResult:
    """Register block types, save cluster (and ``blocks``: (name, Block) pairs), create limits;
    with ``deploy`` (needs ``work_pool``), (re)deploy everything to the pool.

    ``blocks`` are saved before the limits are ensured, so a KafkaCluster passed here (the main job's
    sandbox cluster) gets its limits in the same call.
    """
    if deploy and not work_pool:
        raise ConfigError("--deploy needs --work-pool NAME: the deployments are run by that pool's workers")
    if deploy:
        from deployments.serve import health_interval_s

        health_interval_s(interval_s)  # a bad interval is refused before anything is written
    types = register_block_types()
    saved: list[str] = []
    if clusters_file is not None:
        path = Path(clusters_file)
        if not path.is_file():
            raise ConfigError(f"cluster file {str(path)!r} does not exist")
        saved = save_clusters_as_blocks(path)
    extra: list[str] = []
    with prefect_api_errors("saving blocks"):
        for name, block in blocks:
            block.save(name, overwrite=True, _sync=True)
            extra.append(f"{block.get_block_type_slug()}/{name}")
    clusters = cluster_block_names()
    limits: list[str] = []
    for name in clusters:
        limits.extend(run_sync(ensure_cluster_limits(name)))
    result = BootstrapResult(types, saved, extra, clusters, limits)
    if work_pool:
        result.work_pool = work_pool
        result.work_pool_created = ensure_process_work_pool(work_pool)
    if deploy and work_pool:
        result.deployed = deploy_to_pool(clusters, work_pool, interval_s=interval_s)
    return result


def ensure_audit_topic(cluster: str) -> str:
    """Create ``cluster``'s audit topic if missing, while the cluster is healthy (the first write
    may come during an outage, when a new topic can land without headroom). A cluster that cannot
    be reached now is not an error here: the topic is then created at the first write."""
    from blocks.load import load_cluster
    from kafka_medic.audit import AuditLog

    block = run_sync(load_cluster(cluster))
    try:
        AuditLog(block.confluent_config(), block.audit_topic, timeout_s=10.0).ensure_topic()
    except Exception as exc:
        return f"{cluster}: audit topic {block.audit_topic!r} not checked ({type(exc).__name__}: {str(exc)[:200]})"
    return f"{cluster}: audit topic {block.audit_topic!r}"


def deploy_to_pool(clusters: Sequence[str], work_pool: str, *, interval_s: float | None = None) -> list[str]:
    """Create or update every kafka-medic deployment on ``work_pool``; their ``flow/deployment`` names.

    Sync (call it outside an event loop: Prefect's ``to_deployment`` turns async inside one).
    """
    from deployments.serve import build_deployments, deployment_names

    deployments = build_deployments(clusters, interval_s=interval_s)
    with prefect_api_errors(f"deploying to work pool {work_pool!r}"):
        for d in deployments:
            d.apply(work_pool_name=work_pool)
    return deployment_names(deployments)
