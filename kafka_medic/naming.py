"""Every name kafka-medic gives a Prefect object, in one place: limits, Variables, deployments, tags.

Names are part of the contract with operators (they find them in the UI, reset a limit with
``prefect gcl``, read a Variable) and with other processes (every worker must compute the same
name), so they are built here and nowhere else.
"""

from __future__ import annotations

from typing import Literal

from kafka_medic.settings.validators import check_cluster_name

#: Prefix of every Variable kafka-medic keeps (``kafka_medic__<cluster>__<what>``).
VARIABLE_PREFIX = "kafka_medic"
#: Tag on every Variable and deployment kafka-medic creates.
TAG = "kafka-medic"
#: Deployment name of every flow but the per-cluster health checks (``<flow-name>/kafka-medic``).
DEPLOYMENT_NAME = "kafka-medic"
HEALTH_CHECK_FLOW = "health-check"

LockKind = Literal["mutate", "replace"]


def limit_name(cluster: str, kind: LockKind = "mutate") -> str:
    """The global concurrency limit of one of a cluster's locks.

    ``mutate``: every mutating action on the cluster holds it. ``replace``: a broker replacement
    holds it for its whole, long, duration (replacements strictly one at a time).
    """
    if kind not in ("mutate", "replace"):
        raise ValueError(f"lock kind must be 'mutate' or 'replace', got {kind!r}")
    return f"kafka-medic-{kind}-{check_cluster_name(cluster)}"


def mutate_limit_name(cluster: str) -> str:
    return limit_name(cluster, "mutate")


def replace_limit_name(cluster: str) -> str:
    return limit_name(cluster, "replace")


def variable_name(cluster: str, *parts: str) -> str:
    """``kafka_medic__<cluster>__<part>__...``: Variable names allow [a-z0-9_-], up to 255 chars.

    Cluster names cannot contain ``_`` and parts cannot contain ``__``, so names never collide.
    """
    for part in parts:
        if not part or "__" in part:
            raise ValueError(f"variable name part {part!r} must be non-empty and free of '__'")
    return "__".join([VARIABLE_PREFIX, check_cluster_name(cluster), *parts])


def cluster_tag(cluster: str) -> str:
    """The tag of everything about one cluster (runs, Variables, deployments)."""
    return f"cluster:{cluster}"


def deployment_name(flow_name: str, cluster: str) -> str:
    """``<flow-name>/<deployment>``: health checks are deployed once per cluster, every other flow once."""
    return f"{flow_name}/{cluster if flow_name == HEALTH_CHECK_FLOW else DEPLOYMENT_NAME}"
