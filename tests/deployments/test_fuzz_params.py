"""Fuzz every flow's parameter model and the CLI's ``key=value`` parser with hostile input.

Parameters come from the Prefect UI form, ``prefect deployment run``, the CLI and the API: any JSON
at all. A model must either accept a value that respects its declared bounds (finite numbers, in
range) or refuse it with a pydantic ValidationError — never crash with another exception, never
let NaN, infinity, a negative id or an absurd timeout through to a flow that would act on it.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from deployments.cli import parse_param
from flows.cancel_reassignment import CancelParams
from flows.drain import DrainParams
from flows.leader_election import ElectLeadersParams
from flows.maintenance_mode import MaintenanceParams
from flows.reassign import ReassignParams
from flows.replace_broker import ReplaceBrokerParams
from flows.rolling_restart import RollingRestartParams
from flows.undrain import UndrainParams
from flows.verify_isr import VerifyIsrParams
from flows.what_if import WhatIfParams
from kafka_medic.errors import ConfigError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MODELS: list[type[BaseModel]] = [
    DrainParams, UndrainParams, ElectLeadersParams, MaintenanceParams, ReassignParams, CancelParams,
    ReplaceBrokerParams, RollingRestartParams, VerifyIsrParams, WhatIfParams,
]  # fmt: skip

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "-1", "0", "1e309", "nan", "inf", "x" * 5000, "orders-3", "1", "true", "../../etc"]),
    st.text(max_size=30),
)
_values = st.one_of(
    _scalars, st.lists(_scalars, max_size=5), st.dictionaries(st.text(max_size=5), _scalars, max_size=3)
)


def _bounds(model: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """Per top-level field: its numeric bounds from the JSON schema (what the UI form enforces too)."""
    props = model.model_json_schema().get("properties", {})
    keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    out: dict[str, dict[str, Any]] = {}
    for name, spec in props.items():
        found = {k: spec[k] for k in keys if k in spec}
        for alt in spec.get("anyOf", []):
            found.update({k: alt[k] for k in keys if k in alt})
        if found:
            out[name] = found
    return out


def _check_numbers(value: Any, where: str) -> None:
    if isinstance(value, float):
        assert math.isfinite(value), f"{where} accepted a non-finite number {value!r}"
    elif isinstance(value, list | tuple | set | frozenset):
        for i, v in enumerate(value):
            _check_numbers(v, f"{where}[{i}]")


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@FUZZ
@given(data=st.data())
def test_param_models_accept_only_bounded_finite_values(model: type[BaseModel], data: st.DataObject) -> None:
    fields = list(model.model_fields)
    keys = st.one_of(st.sampled_from(fields), st.text(max_size=8)) if fields else st.text(max_size=8)
    raw = data.draw(st.dictionaries(keys, _values, max_size=len(fields) + 2))
    try:
        params = model.model_validate(raw)
    except ValidationError:
        return  # refused with a field-by-field message: fine
    assert set(raw) <= set(fields), f"{model.__name__} accepted unknown keys {sorted(set(raw) - set(fields))}"
    for name, bound in _bounds(model).items():
        value = getattr(params, name)
        _check_numbers(value, f"{model.__name__}.{name}")
        numbers = value if isinstance(value, list) else [value]
        for v in numbers:
            if not isinstance(v, int | float) or isinstance(v, bool):
                continue
            assert "minimum" not in bound or v >= bound["minimum"], (name, v, bound)
            assert "maximum" not in bound or v <= bound["maximum"], (name, v, bound)
            assert "exclusiveMinimum" not in bound or v > bound["exclusiveMinimum"], (name, v, bound)
            assert "exclusiveMaximum" not in bound or v < bound["exclusiveMaximum"], (name, v, bound)
    for name in fields:
        _check_numbers(getattr(params, name), f"{model.__name__}.{name}")


@FUZZ
@given(st.text(max_size=60))
def test_cli_key_value_parser_never_crashes(text: str) -> None:
    try:
        key, _value = parse_param(text)
    except ConfigError as exc:
        assert str(exc), "the error says what is wrong"
        return
    assert key and "=" not in key


@pytest.mark.parametrize(
    ("model", "raw", "fragment"),
    [
        (DrainParams, {"broker_id": -1}, "broker_id"),
        (DrainParams, {"broker_id": 1, "timeout_s": 1e12}, "timeout_s"),
        (RollingRestartParams, {"brokers": []}, "at least one broker"),
        (RollingRestartParams, {"brokers": [1, 1]}, "listed twice"),
        (VerifyIsrParams, {"timeout_s": 0}, "timeout_s"),
        (VerifyIsrParams, {"timeout_s": float("nan")}, "timeout_s"),
        (MaintenanceParams, {"on": True, "reason": "  ", "by": "me"}, "reason is required"),
        (ElectLeadersParams, {"partitions": ["orders"]}, "topic-partition"),
        (WhatIfParams, {"broker_ids": []}, "broker_ids"),
    ],
)
def test_absurd_parameters_are_refused_with_the_field_named(
    model: type[BaseModel], raw: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ValidationError) as err:
        model.model_validate(raw)
    assert fragment in str(err.value)
