"""Fuzz the parsers that read untrusted input: they either succeed or raise OUR clear error type.

A metrics endpoint can return anything (a proxy's HTML error page, a truncated body, binary junk);
a cluster YAML file is typed by humans. Neither may crash the service with an unexpected exception.
"""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_medic.errors import ConfigError
from kafka_medic.monitor.metrics import (
    BROKER_METRICS,
    MetricsParseError,
    parse_broker_metrics,
    parse_controller_metrics,
)
from kafka_medic.policy import HealthPolicy
from kafka_medic.settings.clusters_file import parse_clusters

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_metric_names = st.sampled_from([name for name, _ in BROKER_METRICS.values()] + ["kafka_x", "jvm_y", "#", "# TYPE"])
_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(["NaN", "+Inf", "-Inf", "1e999", "x"])
)
_lines = st.one_of(
    st.text(max_size=80),
    st.builds(lambda n, v: f"{n} {v}", _metric_names, _values),
    st.builds(lambda n, v: f'{n}{{request="Produce"}} {v}', _metric_names, _values),
)


@FUZZ
@given(st.lists(_lines, max_size=30).map("\n".join))
def test_broker_metrics_parser_never_raises_anything_else(text: str) -> None:
    try:
        out = parse_broker_metrics(text)
    except MetricsParseError:
        return
    assert set(out) == set(BROKER_METRICS)
    for col in ("request_handler_idle", "network_processor_idle"):
        assert math.isnan(out[col]) or 0.0 <= out[col] <= 1.0


@FUZZ
@given(st.text(max_size=400))
def test_controller_metrics_parser_never_raises_anything_else(text: str) -> None:
    with contextlib.suppress(MetricsParseError):
        parse_controller_metrics(text)


@pytest.mark.parametrize(
    "garbage",
    ["<html><body>502 Bad Gateway</body></html>", "\x00\xff\xfe", "kafka_server_x{ 1", "", "# HELP only\n"],
)
def test_known_garbage_is_a_parse_error(garbage: str) -> None:
    with pytest.raises(MetricsParseError):
        parse_broker_metrics(garbage)


_yaml_scalars = st.one_of(st.integers(-5, 10**6), st.floats(allow_nan=False), st.text(max_size=20), st.booleans())
_policy_keys = st.sampled_from([*HealthPolicy.model_fields, "no_such_field"])
_cluster = st.fixed_dictionaries(
    {"name": st.one_of(st.just("prod-a"), st.text(max_size=12))},
    optional={
        "bootstrap_servers": st.one_of(st.just("k1:9092,k2:9092"), st.text(max_size=20)),
        "policy": st.dictionaries(_policy_keys, _yaml_scalars, max_size=4),
        "expected_brokers": st.lists(st.integers(-3, 5), max_size=4),
        "bogus": _yaml_scalars,
    },
)


def _to_yaml(clusters: list[dict]) -> str:
    import yaml

    return yaml.safe_dump({"clusters": clusters})


@FUZZ
@given(st.lists(_cluster, max_size=3).map(_to_yaml))
def test_cluster_yaml_is_valid_or_a_config_error(text: str) -> None:
    try:
        clusters = parse_clusters(text, file="fuzz.yaml", environ={})
    except ConfigError as exc:
        assert "fuzz.yaml" in str(exc)
        return
    assert all(c.name and c.bootstrap_servers for c in clusters)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_as_cluster_yaml(text: str) -> None:
    try:
        parse_clusters(text, file="junk.yaml", environ={})
    except ConfigError as exc:
        assert "junk.yaml" in str(exc)
