"""Persisted state on the Prefect server: the Variables adapter of :class:`kafka_medic.state.KeyValueStore`.

Every process (scheduled checks, remediation on any worker, a CLI) reads and writes the same
Variables, which an operator can read and fix in the UI. Every error is one line naming the
Variable and the API URL (:func:`blocks.api.prefect_api_errors`).
"""

from __future__ import annotations

import contextlib
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import VariableCreate, VariableUpdate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from pydantic import ValidationError

from blocks.api import prefect_api_errors
from kafka_medic.errors import CoordinationError
from kafka_medic.executor.journal import StoreJournal
from kafka_medic.state import ClusterState, check_value_size


class PrefectVariableStore:
    """JSON values as Prefect Variables (create-or-update, safe against a concurrent first write)."""

    async def get(self, name: str) -> Any | None:
        with prefect_api_errors(f"reading variable {name!r}"):
            async with get_client() as client:
                variable = await client.read_variable_by_name(name)
        return None if variable is None else variable.value

    async def put(self, name: str, value: Any, *, tags: list[str]) -> None:
        check_value_size(name, value)
        try:
            create = VariableCreate(name=name, value=value, tags=tags)
            update = VariableUpdate(name=name, value=value, tags=tags)
        except ValidationError as exc:
            reason = "; ".join(err["msg"] for err in exc.errors())
            raise CoordinationError(f"cannot store variable {name!r}: {reason}") from None
        with prefect_api_errors(f"writing variable {name!r}"):
            async with get_client() as client:
                if await client.read_variable_by_name(name) is None:
                    try:
                        await client.create_variable(create)
                        return
                    except ObjectAlreadyExists:
                        pass
                await client.update_variable(update)

    async def delete(self, name: str) -> None:
        with prefect_api_errors(f"deleting variable {name!r}"):
            async with get_client() as client:
                with contextlib.suppress(ObjectNotFound):
                    await client.delete_variable_by_name(name)


def cluster_state(cluster: str) -> ClusterState:
    """The state of ``cluster`` (cooldowns, down-since, maintenance, known brokers, undo) on the server."""
    return ClusterState(PrefectVariableStore(), cluster)


def journal_store() -> StoreJournal:
    """Reassignment journals on the server, so any worker can adopt a dead run's work."""
    return StoreJournal(PrefectVariableStore())
