"""Replacer steps as Prefect tasks (each a blocking call in a worker thread, visible in the run's graph)."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import task

from kafka_medic.replacers import Replacer


@task(name="restart-broker", cache_policy=None)
async def restart_broker_task(replacer: Replacer, broker_id: int, host: str) -> dict[str, Any]:
    """Restart one broker keeping its disk, through the cluster's replacer (sandbox, EC2 reboot)."""
    outcome = await asyncio.to_thread(replacer.restart, broker_id, host)
    return outcome.to_record()
