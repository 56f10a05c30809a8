"""Loading a cluster's configuration from the Prefect server: its block, its replacer, the cluster names.

Every flow and command starts here, so an unknown name fails the same way everywhere: one line
naming the clusters (or replacer blocks) that do exist.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from blocks.api import prefect_api_errors
from blocks.kafka_cluster import KafkaCluster
from blocks.replacers import REPLACER_BLOCKS, Ec2Replacer
from kafka_medic.errors import ConfigError
from kafka_medic.replacers import Replacer, can_restart, replacer_for


async def cluster_names() -> list[str]:
    """Names of every KafkaCluster block on the server (empty when none, or the type is not registered)."""
    with prefect_api_errors("listing cluster blocks"):
        async with get_client() as client:
            try:
                docs = await client.read_block_documents_by_type(
                    KafkaCluster.get_block_type_slug(), include_secrets=False
                )
            except ObjectNotFound:  # the block type is not registered yet: no clusters
                return []
            except httpx.HTTPStatusError as exc:  # the same, as a bare 404 ("Block type not found")
                if exc.response.status_code == 404:
                    return []
                raise
    return sorted(d.name for d in docs if d.name and not d.is_anonymous)


async def load_cluster(name: str) -> KafkaCluster:
    """The cluster's block, or a clear error naming the clusters that do exist."""
    try:
        return await KafkaCluster.aload(name)
    except ValueError as exc:
        known = await cluster_names()
        hint = f"known clusters: {', '.join(known)}" if known else "no clusters are configured yet"
        raise ConfigError(f"unknown cluster {name!r}; {hint}") from exc


async def aload_replacer(cluster: KafkaCluster, **kwargs: Any) -> Replacer:
    """Load the block the cluster's ``replacer`` field names ("<slug>/<name>") and build its engine.

    For EC2 the AwsCredentials block is loaded here too, asynchronously: the replacer itself runs
    in a worker thread, and a block's sync ``load`` called where an event loop is running returns
    a coroutine instead of the block (Prefect's async dispatch).
    """
    ref = cluster.replacer
    if not ref:
        raise ConfigError(f"cluster {cluster.name!r} has no replacer configured (field 'replacer')")
    slug, _, name = ref.partition("/")
    cls = REPLACER_BLOCKS.get(slug)
    if cls is None:
        raise ConfigError(f"cluster {cluster.name!r}: unknown replacer type {slug!r} in {ref!r}")
    try:
        block = await cls.aload(name)
    except ValueError as exc:
        raise ConfigError(f"cluster {cluster.name!r}: replacer block {ref!r} does not exist; create it first") from exc
    if isinstance(block, Ec2Replacer) and block.aws_credentials and "session" not in kwargs:
        from prefect_aws import AwsCredentials

        try:
            creds = await AwsCredentials.aload(block.aws_credentials)
        except ValueError as exc:
            missing = f"AwsCredentials block {block.aws_credentials!r} does not exist"
            raise ConfigError(f"replacer {ref!r}: {missing}") from exc
        kwargs["session"] = creds.get_boto3_session()
    return replacer_for(block, cluster, **kwargs)


#: ref -> (read at, can restart): the health check asks every cycle; a replacer block rarely changes.
_CAN_RESTART: dict[str, tuple[float, bool]] = {}
CAN_RESTART_TTL_S = 60.0


async def replacer_can_restart(cluster: KafkaCluster) -> bool:
    """Whether the cluster's replacer can restart a broker with its disk (the ladder's middle rung).

    False without a replacer; a replacer block that cannot be read counts as "cannot restart"
    (the ladder then passes the rung over and the replacement itself reports the error).
    Cached for a minute per replacer block."""
    ref = cluster.replacer
    if not ref:
        return False
    hit = _CAN_RESTART.get(ref)
    if hit is not None and time.monotonic() - hit[0] < CAN_RESTART_TTL_S:
        return hit[1]
    slug, _, name = ref.partition("/")
    cls = REPLACER_BLOCKS.get(slug)
    try:
        ok = cls is not None and can_restart(await cls.aload(name))
    except Exception:
        ok = False
    _CAN_RESTART[ref] = (time.monotonic(), ok)
    return ok
