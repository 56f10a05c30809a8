"""Replacers: the three ways to give a broker a fresh machine/disk or restart it, behind one interface.

* ``sandbox``: the local sandbox cluster (tests, demos);
* ``script``: an operator's program, run as an argv list, bounded in time and memory;
* ``ec2``: terminate-and-relaunch with the same private IP, reboot to restart.

The settings of each kind are :mod:`kafka_medic.settings.replacers`; loading them from a cluster's
Prefect blocks is :func:`blocks.load.aload_replacer`.
"""

from __future__ import annotations

from typing import Any

from kafka_medic.errors import ConfigError
from kafka_medic.replacers.base import UNKNOWN_HOST, HostState, ReplaceOutcome, Replacer, ReplacerError
from kafka_medic.replacers.ec2 import Ec2BrokerReplacer
from kafka_medic.replacers.sandbox import SandboxBrokerReplacer
from kafka_medic.replacers.script import ScriptBrokerReplacer, run_bounded
from kafka_medic.settings.cluster import ClusterSettings
from kafka_medic.settings.replacers import Ec2ReplacerSettings, SandboxReplacerSettings, ScriptReplacerSettings

__all__ = [
    "UNKNOWN_HOST",
    "Ec2BrokerReplacer",
    "HostState",
    "ReplaceOutcome",
    "Replacer",
    "ReplacerError",
    "SandboxBrokerReplacer",
    "ScriptBrokerReplacer",
    "can_restart",
    "replacer_for",
    "run_bounded",
]


def can_restart(settings: Any) -> bool:
    """Whether a replacer with these settings can restart a broker keeping its disk (the ladder's
    middle rung): sandbox and EC2 always; a script replacer only with a ``restart_argv``."""
    if isinstance(settings, ScriptReplacerSettings):
        return bool(settings.restart_argv)
    return isinstance(settings, (SandboxReplacerSettings, Ec2ReplacerSettings))


def replacer_for(settings: Any, cluster: ClusterSettings, **kwargs: Any) -> Replacer:
    """The engine for a replacer's settings (pure dispatch on their type)."""
    if isinstance(settings, SandboxReplacerSettings):
        return SandboxBrokerReplacer(settings, **kwargs)
    if isinstance(settings, ScriptReplacerSettings):
        return ScriptBrokerReplacer(settings, cluster_name=cluster.name)
    if isinstance(settings, Ec2ReplacerSettings):
        return Ec2BrokerReplacer(settings, cluster_name=cluster.name, aws=cluster.aws, **kwargs)
    raise ConfigError(f"unsupported replacer settings {type(settings).__name__}")
