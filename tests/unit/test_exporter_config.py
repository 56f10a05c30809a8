"""The JMX exporter rules we ship produce the sample names ``kafka_medic.monitor.metrics`` parses.

No broker here: the exporter's own rule semantics are applied by hand (the pattern must match the
whole ``domain<key=value, ...><>attribute`` string, ``$n`` is the n-th group, then
``lowercaseOutputName`` and the name sanitising), so a typo in a rule or a mapping fails in unit
tests rather than as a column that is silently NaN on every real cluster.
"""

from __future__ import annotations

import re

import pytest
import yaml

from kafka_medic.monitor.metrics import BROKER_METRICS, parse_broker_metrics
from kafka_medic.sandbox.exporter import JMX_EXPORTER_CONFIG

CONFIG = yaml.safe_load(JMX_EXPORTER_CONFIG)


def _exported(mbean: str, attribute: str) -> tuple[str, dict[str, str]] | None:
    """(sample name, labels) the exporter serves for one MBean attribute, as its first matching rule says."""
    domain, _, props = mbean.partition(":")
    included = any(re.fullmatch(re.escape(inc).replace(r"\*", ".*"), mbean) for inc in CONFIG["includeObjectNames"])
    if not included:
        return None
    pairs = ", ".join(props.split(","))
    subject = f"{domain}<{pairs}><>{attribute}"
    for rule in CONFIG["rules"]:
        m = re.fullmatch(rule["pattern"], subject)
        if m is None:
            continue

        def sub(template: str, m: re.Match[str] = m) -> str:
            return re.sub(r"\$(\d+)", lambda g: m.group(int(g.group(1))), template)

        name = re.sub(r"_+", "_", re.sub(r"[^a-zA-Z0-9:_]", "_", sub(rule["name"]))).lower()
        labels = {k.lower(): sub(v) for k, v in (rule.get("labels") or {}).items()}
        return name, labels
    return None


@pytest.mark.parametrize(
    ("column", "mbean"),
    [
        ("produce_p99_ms", "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=Produce"),
        ("produce_queue_p99_ms", "kafka.network:type=RequestMetrics,name=RequestQueueTimeMs,request=Produce"),
        ("produce_remote_p99_ms", "kafka.network:type=RequestMetrics,name=RemoteTimeMs,request=Produce"),
        ("fetch_follower_p99_ms", "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=FetchFollower"),
    ],
)
def test_request_metric_rules_serve_the_names_the_collector_parses(column: str, mbean: str) -> None:
    assert _exported(mbean, "99thPercentile") == BROKER_METRICS[column]
    assert _exported(mbean, "Mean") is not None  # the mean is served too, for operators' dashboards


def test_remote_time_is_parsed_into_its_column() -> None:
    text = (
        'kafka_network_requestmetrics_totaltimems_99thpercentile{request="Produce",} 40.0\n'
        'kafka_network_requestmetrics_remotetimems_99thpercentile{request="Produce",} 31.5\n'
        'kafka_network_requestmetrics_remotetimems_mean{request="Produce",} 4.0\n'
    )
    out = parse_broker_metrics(text)
    assert out["produce_p99_ms"] == 40.0
    assert out["produce_remote_p99_ms"] == 31.5
