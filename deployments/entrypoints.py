"""Entrypoints for deployments whose flow needs another module imported first.

A deployment's run executes in a fresh process that imports only its entrypoint. The health check
hands executable decisions to the remediation dispatcher, which registers itself when
``flows.remediate`` is imported; pointing the health-check deployments here makes every scheduled
check able to heal, not only report.
"""

from __future__ import annotations

import flows.remediate  # noqa: F401  registers the remediation dispatcher
from flows.health_check import fleet_health, health_check

__all__ = ["fleet_health", "health_check"]
