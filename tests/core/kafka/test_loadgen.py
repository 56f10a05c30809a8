"""The load generator's memory is bounded when it is not asked to remember what was acknowledged.

``./medic start`` runs an acks=all load for as long as the service lives and never verifies it; a
key set that grows per message there is a leak of ~6 MiB an hour at 20 msg/s (bench/RESULTS.md,
"Memory soak").
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import NewTopic

from kafka_medic.loadgen import AckedProducer
from kafka_medic.sandbox.cluster import Sandbox
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka


def _topic(sb: Sandbox) -> str:
    topic = f"loadgen-{uuid.uuid4().hex[:6]}"
    admin = sb.admin()  # referenced until the result is in: a collected client fails its futures
    admin.create_topics([NewTopic(topic, 3, 3)])[topic].result(timeout=30)
    return topic


def _produce(sb: Sandbox, topic: str, *, record_keys: bool, at_least: int) -> AckedProducer:
    load = AckedProducer(sb.layout.bootstrap_servers, topic, rate=500, record_keys=record_keys).start()
    try:
        wait_until(lambda: load.stats.acked >= at_least, timeout_s=60, what=f"{at_least} acknowledged messages")
    finally:
        load.stop(flush_timeout_s=30)
    return load


def test_unrecorded_load_keeps_counts_but_no_keys(healthy_sandbox: Sandbox) -> None:
    topic = _topic(healthy_sandbox)
    load = _produce(healthy_sandbox, topic, record_keys=False, at_least=500)
    assert load.stats.acked >= 500 and load.stats.failed == 0
    assert load.acked_keys == set()  # bounded: nothing is kept per message


def test_recorded_load_remembers_every_acknowledged_key(healthy_sandbox: Sandbox) -> None:
    topic = _topic(healthy_sandbox)
    load = _produce(healthy_sandbox, topic, record_keys=True, at_least=200)
    assert len(load.acked_keys) == load.stats.acked >= 200
