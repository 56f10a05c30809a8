"""Safe defaults: every form that can change a cluster, submitted as it comes, changes nothing.

A Prefect UI "Custom run" form or a CLI call with no options uses these defaults; an operator who
clicks through must get a dry run (or a report), never an action. Checked over the whole catalogue,
so a new flow with an acting default fails here. No broker or server needed.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from pydantic import BaseModel

from deployments.catalogue import CATALOGUE
from flows.cancel_reassignment import CancelParams
from flows.remediate import RemediationParams
from kafka_medic.decide import Decision, Remedy

#: Flows that only read, or that change automation's state rather than the cluster (maintenance
#: mode is the emergency brake: it must act at once, and it only stops automation).
READ_ONLY = {"what-if", "verify-isr", "maintenance-mode"}

#: Required fields per form, to build it "as submitted with its defaults".
REQUIRED: dict[str, dict[str, Any]] = {
    "remediate": {"remedy": Remedy.REPLACE_BROKER, "broker_id": 3},
    "reassign": {"kind": "drain", "brokers": [3]},
}


def _defaults(name: str, model: type[BaseModel]) -> BaseModel:
    needed = REQUIRED.get(name, {})
    for field_name, field in model.model_fields.items():
        if field.is_required() and field_name not in needed:
            needed = {**needed, field_name: 1 if field.annotation in (int, "int") else [1]}
    return model.model_validate(needed)


@pytest.mark.parametrize("e", [e for e in CATALOGUE if e.name not in READ_ONLY], ids=lambda e: e.name)
def test_every_acting_form_defaults_to_a_dry_run(e: Any) -> None:
    if e.model is not None:
        _arg, model = e.model
        assert "dry_run" in model.model_fields, f"{e.name}: its form has no dry run"
        assert model.model_fields["dry_run"].default is True, f"{e.name}: dry_run defaults to acting"
        assert _defaults(e.name, model).dry_run is True  # type: ignore[attr-defined]
    else:  # plain arguments: the health checks act only when told to (the schedules pass act=True)
        act = inspect.signature(e.flow.fn).parameters["act"]
        assert act.default is False, f"{e.name}: act defaults to acting"


def test_cancel_reassignment_has_a_dry_run_by_default() -> None:
    assert CancelParams().dry_run is True
    assert CancelParams(dry_run=False).dry_run is False


def test_remediate_form_is_a_dry_run_but_a_health_check_decision_acts() -> None:
    """The served ``remediate`` form defaults to a dry run; decisions the health check dispatches
    (its mode already said "act") are carried out for real, explicitly."""
    assert RemediationParams(remedy=Remedy.REPLACE_BROKER, broker_id=3).dry_run is True
    d = Decision(Remedy.REPLACE_BROKER, 3, "broker_down", "down", execute=True, needs_approval=False)
    assert RemediationParams.from_decision(d).dry_run is False
