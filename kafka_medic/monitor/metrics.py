"""Parse Prometheus JMX exporter text into the broker metric columns the rules use.

Parsing is done by ``prometheus_client``'s parser (not by hand). The names are those produced by
the exporter rules in ``kafka_medic.sandbox.exporter`` (which we recommend for production too).
A scrape that fails or returns garbage is a *finding*, never a crash: ``parse_broker_metrics``
raises ``MetricsParseError`` and the collector records it.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from kafka_medic.errors import MedicError

# metric column -> (sample name, label filter)
BROKER_METRICS: dict[str, tuple[str, dict[str, str]]] = {
    "under_replicated_partitions": ("kafka_server_replicamanager_underreplicatedpartitions", {}),
    "under_min_isr_partitions": ("kafka_server_replicamanager_underminisrpartitioncount", {}),
    "offline_replicas": ("kafka_server_replicamanager_offlinereplicacount", {}),
    "bytes_in_per_sec": ("kafka_server_brokertopicmetrics_bytesinpersec_oneminuterate", {}),
    "bytes_out_per_sec": ("kafka_server_brokertopicmetrics_bytesoutpersec_oneminuterate", {}),
    "replication_bytes_in_per_sec": ("kafka_server_brokertopicmetrics_replicationbytesinpersec_oneminuterate", {}),
    "messages_in_per_sec": ("kafka_server_brokertopicmetrics_messagesinpersec_oneminuterate", {}),
    "request_handler_idle": ("kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_oneminuterate", {}),
    "network_processor_idle": ("kafka_network_socketserver_networkprocessoravgidlepercent", {}),
    "isr_shrinks_per_sec": ("kafka_server_replicamanager_isrshrinkspersec_oneminuterate", {}),
    "isr_expands_per_sec": ("kafka_server_replicamanager_isrexpandspersec_oneminuterate", {}),
    "produce_p99_ms": ("kafka_network_requestmetrics_totaltimems_99thpercentile", {"request": "Produce"}),
    "produce_queue_p99_ms": ("kafka_network_requestmetrics_requestqueuetimems_99thpercentile", {"request": "Produce"}),
    "produce_remote_p99_ms": ("kafka_network_requestmetrics_remotetimems_99thpercentile", {"request": "Produce"}),
    "fetch_consumer_p99_ms": ("kafka_network_requestmetrics_totaltimems_99thpercentile", {"request": "FetchConsumer"}),
    "fetch_follower_p99_ms": ("kafka_network_requestmetrics_totaltimems_99thpercentile", {"request": "FetchFollower"}),
}
_IDLE_MEAN = "kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_meanrate"

CONTROLLER_METRICS: dict[str, str] = {
    "active_controller_count": "kafka_controller_kafkacontroller_activecontrollercount",
    "offline_partitions": "kafka_controller_kafkacontroller_offlinepartitionscount",
    "fenced_brokers": "kafka_controller_kafkacontroller_fencedbrokercount",
    "active_brokers": "kafka_controller_kafkacontroller_activebrokercount",
}

#: A scrape must be quick: a hung broker's exporter (inside the stopped JVM) never answers.
SCRAPE_TIMEOUT_S = 5.0
MAX_BODY_BYTES = 8 * 1024 * 1024


class MetricsParseError(MedicError):
    """The endpoint answered with something that is not Prometheus text we understand."""


class ScrapeError(MedicError):
    """The endpoint could not be reached in time."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse_samples(text: str) -> list[Sample]:
    try:
        return [
            Sample(s.name, dict(s.labels), float(s.value))
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        ]
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise MetricsParseError(f"not Prometheus text format: {exc}") from exc


def _pick(samples: Iterable[Sample], name: str, labels: dict[str, str]) -> float:
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return math.nan


def parse_broker_metrics(text: str) -> dict[str, float]:
    """Metric columns (NaN where absent). Raises MetricsParseError if no Kafka metric is present."""
    samples = [s for s in parse_samples(text) if s.name.startswith("kafka_")]
    if not samples:
        raise MetricsParseError("no kafka_* metrics in the response (is this a Kafka JMX exporter?)")
    by_name: dict[str, list[Sample]] = {}
    for s in samples:
        by_name.setdefault(s.name, []).append(s)
    out = {col: _pick(by_name.get(name, ()), name, labels) for col, (name, labels) in BROKER_METRICS.items()}
    # The one-minute EWMA starts at 0 and warms up over a minute; right after a (re)start it would
    # read as "100 % busy". Until it warms up, fall back to the mean since start.
    idle = out["request_handler_idle"]
    mean = _pick(by_name.get(_IDLE_MEAN, ()), _IDLE_MEAN, {})
    if (math.isnan(idle) or idle == 0.0) and not math.isnan(mean) and mean > 0:
        out["request_handler_idle"] = mean
    for col in ("request_handler_idle", "network_processor_idle"):
        if not math.isnan(out[col]):
            out[col] = min(max(out[col], 0.0), 1.0)
    return out


def parse_controller_metrics(text: str) -> dict[str, float]:
    samples = parse_samples(text)
    out = {col: _pick(samples, name, {}) for col, name in CONTROLLER_METRICS.items()}
    if all(math.isnan(v) for v in out.values()):
        raise MetricsParseError("no kafka_controller_* metrics in the response (is this a KRaft controller?)")
    return out


def scrape(url: str, timeout_s: float = SCRAPE_TIMEOUT_S) -> str:
    """GET a /metrics page (bounded in time and size)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body = resp.read(MAX_BODY_BYTES + 1)
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ScrapeError(f"{url}: {reason}") from exc
    if len(body) > MAX_BODY_BYTES:
        raise MetricsParseError(f"{url}: response larger than {MAX_BODY_BYTES} bytes")
    return body.decode("utf-8", errors="replace")
