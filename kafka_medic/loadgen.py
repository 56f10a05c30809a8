"""Steady acks=all load and a verifying consumer: the evidence that healing lost nothing.

The producer remembers every message the cluster *acknowledged*; afterwards the verifier reads the
topic from the beginning and reports any acknowledged message it cannot find. A message that was
never acknowledged may or may not be there; that is allowed (the client was told it failed).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition


@dataclass
class LoadStats:
    attempted: int = 0
    acked: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class AckedProducer:
    """A background thread producing ``rate`` msgs/s with acks=all, recording acknowledged keys.

    ``record_keys=False`` keeps only the counts: for load that runs indefinitely and is never
    verified (``./medic start``), where the key set would grow by ~90 bytes per acknowledged
    message for as long as the process lives (~6 MiB an hour at 20 msg/s).

    Every producer call, delivery callbacks included, runs in the one background thread (the final
    flush too), so the counters need no lock. They used to take one, with the final flush in the
    caller's thread: a test stopping the producer while brokers were down hung forever in a
    delivery callback waiting for that lock (seen under load, pytest's timeout could not fire).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        rate: float = 200.0,
        value_bytes: int = 200,
        extra_conf: dict[str, Any] | None = None,
        record_keys: bool = True,
    ) -> None:
        self.topic = topic
        self.rate = rate
        self.value = b"x" * value_bytes
        self.stats = LoadStats()
        self.record_keys = record_keys
        self.acked_keys: set[str] = set()
        self._stop = threading.Event()
        self._flush_timeout_s = 40.0
        self._run_id = uuid.uuid4().hex[:8]
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "message.timeout.ms": 30_000,
                "linger.ms": 5,
                **(extra_conf or {}),
            }
        )
        self._thread = threading.Thread(target=self._run, name=f"load-{topic}", daemon=True)

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:  # in the background thread only
        if err is None:
            self.stats.acked += 1
            if self.record_keys:
                self.acked_keys.add(msg.key().decode())
        else:
            self.stats.failed += 1
            name = err.name()
            self.stats.errors[name] = self.stats.errors.get(name, 0) + 1

    def _run(self) -> None:
        interval = 1.0 / self.rate if self.rate > 0 else 0.0
        n = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            key = f"{self._run_id}-{n}"
            try:
                self._producer.produce(self.topic, key=key.encode(), value=self.value, on_delivery=self._on_delivery)
                n += 1
                self.stats.attempted += 1
            except BufferError:
                self._producer.poll(0.1)
                continue
            except KafkaException as exc:  # fatal (e.g. idempotence lost its sequence): no more sends
                name = f"produce: {exc.args[0].name() if exc.args else type(exc).__name__}"
                self.stats.errors[name] = self.stats.errors.get(name, 0) + 1
                break
            self._producer.poll(0)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
        try:
            self._producer.flush(self._flush_timeout_s)  # outstanding deliveries: acked or failed, bounded
        except Exception as exc:  # e.g. a fatal idempotence error after brokers died: say so, do not die
            name = f"flush: {type(exc).__name__}"
            self.stats.errors[name] = self.stats.errors.get(name, 0) + 1

    def start(self) -> AckedProducer:
        self._thread.start()
        return self

    def stop(self, flush_timeout_s: float = 40.0) -> LoadStats:
        """Stop producing and wait (bounded) for outstanding deliveries to be acked or fail."""
        self._flush_timeout_s = flush_timeout_s
        self._stop.set()
        self._thread.join(timeout=flush_timeout_s + 15)
        if self._thread.is_alive():
            self.stats.errors["stop_timed_out"] = self.stats.errors.get("stop_timed_out", 0) + 1
        return self.stats


@dataclass
class VerifyResult:
    acked: int
    found: int
    missing: int
    read: int
    seconds: float

    @property
    def lost(self) -> int:
        return self.missing


def _high_watermark(consumer: Consumer, topic: str, partition: int, deadline: float) -> int:
    """The partition's high watermark, retried until ``deadline``: right after a broker dies its
    partitions' new leaders answer OFFSET_NOT_AVAILABLE ("leader high watermark is not caught
    up") for a moment, which is not a verification failure."""
    while True:
        try:
            return int(consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1])
        except KafkaException:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def verify_acked(
    bootstrap: str,
    topic: str,
    acked_keys: set[str],
    *,
    timeout_s: float = 60.0,
    extra_conf: dict[str, Any] | None = None,
) -> VerifyResult:
    """Read ``topic`` from the beginning up to the current end offsets; count missing acked keys."""
    t0 = time.monotonic()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"kafka-medic-verify-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            **(extra_conf or {}),
        }
    )
    try:
        md = consumer.list_topics(topic, timeout=10)
        parts = sorted(md.topics[topic].partitions)
        ends: dict[int, int] = {}
        deadline = t0 + timeout_s
        for p in parts:
            ends[p] = _high_watermark(consumer, topic, p, deadline)
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        remaining = set(acked_keys)
        positions = dict.fromkeys(parts, 0)
        read = 0
        while time.monotonic() < deadline and any(positions[p] < ends[p] for p in parts):
            msgs = consumer.consume(num_messages=1000, timeout=1.0)
            for m in msgs:
                if m.error():
                    continue
                read += 1
                positions[m.partition()] = m.offset() + 1
                k = m.key()
                if k is not None:
                    remaining.discard(k.decode())
        missing = len(remaining)
        return VerifyResult(len(acked_keys), len(acked_keys) - missing, missing, read, time.monotonic() - t0)
    finally:
        consumer.close()
