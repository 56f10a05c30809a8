"""Configuration models of the core: a cluster, its policy, its replacer (plain pydantic, no Prefect).

The Prefect blocks in :mod:`blocks` subclass these models, so a block *is* valid settings and the
core never imports a block.
"""

from kafka_medic.settings.cluster import AwsSettings, ClusterSettings, SaslMechanism, SecurityProtocol
from kafka_medic.settings.replacers import (
    REPLACER_SLUGS,
    Ec2ReplacerSettings,
    ReplacerSettings,
    SandboxReplacerSettings,
    ScriptReplacerSettings,
)

__all__ = [
    "REPLACER_SLUGS",
    "AwsSettings",
    "ClusterSettings",
    "Ec2ReplacerSettings",
    "ReplacerSettings",
    "SandboxReplacerSettings",
    "SaslMechanism",
    "ScriptReplacerSettings",
    "SecurityProtocol",
]
