"""The catalogue of flows, their parameter forms and the CLI's parsing of them: safe defaults, bounds,
one-line errors, and ``prefect.yaml`` kept equal to the catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from deployments.catalogue import CATALOGUE, entry, prefect_yaml, validation_message
from deployments.cli import parse_param
from flows.leader_election import ElectLeadersParams
from flows.maintenance_mode import MaintenanceParams
from flows.rolling_restart import RollingRestartParams
from flows.what_if import WhatIfParams
from kafka_medic.errors import ConfigError

# -- parameter models ----------------------------------------------------------------------------


def test_params_have_safe_defaults_and_bounds() -> None:
    assert ElectLeadersParams().dry_run and RollingRestartParams().dry_run
    with pytest.raises(ValidationError, match="reason is required"):
        MaintenanceParams(on=True, by="me")
    assert MaintenanceParams(on=False, by="me").reason == ""
    with pytest.raises(ValidationError, match="listed twice"):
        RollingRestartParams(brokers=[1, 1])
    with pytest.raises(ValidationError):
        RollingRestartParams(isr_timeout_s=0)
    with pytest.raises(ValidationError, match="topic-partition"):
        ElectLeadersParams(partitions=["nope"])
    with pytest.raises(ValidationError):
        WhatIfParams(broker_ids=[])
    with pytest.raises(ValidationError):
        ElectLeadersParams(dryrun=False)  # a typo is an error, not a silent default


# -- CLI helpers --------------------------------------------------------------------------------------


def test_param_parsing_and_one_line_validation() -> None:
    assert parse_param("brokers=[1,2]") == ("brokers", [1, 2])
    assert parse_param("dry_run=false") == ("dry_run", False)
    assert parse_param("reason=disk swap") == ("reason", "disk swap")
    with pytest.raises(ConfigError, match="key=value"):
        parse_param("oops")
    try:
        RollingRestartParams.model_validate({"brokers": "abc", "settle_s": -1})
    except ValidationError as exc:
        line = validation_message(exc)
    assert "\n" not in line and line.startswith("brokers:") and "settle_s:" in line


def test_the_catalogue_finds_each_flows_params_model() -> None:
    target = entry("rolling_restart")
    assert target.model == ("params", RollingRestartParams)
    kwargs = target.parameters("c1", {"brokers": [2, 1], "dry_run": False})
    assert kwargs["params"].brokers == [2, 1] and kwargs["params"].dry_run is False and kwargs["cluster"] == "c1"
    with pytest.raises(ConfigError, match=r"invalid parameters for rolling-restart: brokers\.0: "):
        target.parameters("c1", {"brokers": ["x"]})


def test_every_catalogued_flow_is_findable_by_name_and_unknown_names_list_the_choices() -> None:
    for e in CATALOGUE:
        assert entry(e.name) is e and entry(e.name.replace("-", "_").upper()) is e
    choices = "cancel-reassignment, demote-broker, drain-broker"
    with pytest.raises(ConfigError, match=f"unknown flow 'nope'; choose one of: {choices}"):
        entry("nope")


def test_prefect_yaml_is_generated_from_the_catalogue() -> None:
    text = (Path(__file__).resolve().parents[2] / "deployments" / "prefect.yaml").read_text()
    assert text == prefect_yaml(), "regenerate it: python -m deployments.catalogue --prefect-yaml"
    for e in CATALOGUE:
        assert f"entrypoint: {e.file_entrypoint}\n" in text
