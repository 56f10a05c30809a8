"""Shared fixtures. Real-broker tests share ONE sandbox cluster per session (start-up is ~20 s);
``healthy_sandbox`` repairs it before each test, so a test may kill, hang or wipe brokers freely.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic

from kafka_medic.cluster_reads import describe_partitions, not_fully_replicated
from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.sandbox.layout import SandboxLayout
from tests.waiting import wait_until

os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

#: Tests use their own port range so a running demo sandbox (19090+) is never touched.
TEST_PORT_BASE = int(os.environ.get("KAFKA_MEDIC_TEST_PORT_BASE", "21090"))


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    state = Path(tmp_path_factory.mktemp("sandbox"))
    sb = Sandbox(SandboxLayout(state_dir=state, port_base=TEST_PORT_BASE))
    try:
        secs = sb.up()
        print(f"\nsandbox up in {secs:.1f} s")
        yield sb
    finally:
        sb.down(wipe=False)


def repair(sb: Sandbox, timeout_s: float = 120.0) -> None:
    """Bring every broker back (resume hung, start stopped) and wait for full ISR everywhere."""
    for st in sb.status(timeout_s=3):
        if st.role != "broker":
            continue
        if st.process == "hung":
            sb.resume(st.node_id)
        elif st.process == "stopped":
            sb.start_broker(st.node_id, wait=False)
    ids = [b.node_id for b in sb.layout.broker_specs]
    sb.wait_registered(ids, timeout_s=timeout_s)
    admin = sb.admin()
    wait_until(
        lambda: not_fully_replicated(describe_partitions(admin)).empty,
        timeout_s=timeout_s,
        what="every partition back to full ISR",
    )


@pytest.fixture
def healthy_sandbox(sandbox: Sandbox) -> Iterator[Sandbox]:
    repair(sandbox)
    yield sandbox


@pytest.fixture
def topic_factory(sandbox: Sandbox):
    """Create RF-3 topics with unique names; deleted at the end of the test."""
    admin = sandbox.admin()
    created: list[str] = []

    def make(partitions: int = 6, rf: int = 3, config: dict[str, str] | None = None, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        fut = admin.create_topics([NewTopic(name, partitions, rf, config=config or {})], request_timeout=15)
        fut[name].result(timeout=20)
        wait_until(
            lambda: len(describe_partitions(admin, [name])) == partitions,
            timeout_s=20,
            what=f"topic {name} visible in metadata",
        )
        created.append(name)
        return name

    yield make
    if created:
        try:
            for f in admin.delete_topics(created, request_timeout=15).values():
                f.result(timeout=20)
        except Exception:  # a test that left the cluster broken must not mask its own failure
            pass
