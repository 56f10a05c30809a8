"""Shared fixtures. Real-broker tests share ONE sandbox cluster per session (start-up is ~20 s);
``healthy_sandbox`` repairs it before each test, so a test may kill, hang or wipe brokers freely.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import ElectionType, TopicPartition
from confluent_kafka.admin import NewTopic

from kafka_medic.monitor.cluster_reads import describe_partitions, not_fully_replicated
from kafka_medic.monitor.listener_probe import ListenerState, probe_listeners
from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.sandbox.layout import SandboxLayout
from tests.topics import drop_left_over, drop_topics
from tests.waiting import wait_until

os.environ["PREFECT_LOGGING_TO_API_ENABLED"] = "false"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

#: pytest-xdist worker index (0 without xdist): each worker runs its own sandbox on its own ports.
WORKER_INDEX = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
#: A sandbox takes base..base+1200, below the kernel's ephemeral ports (32768+). Offsets of the
#: workers' sandboxes, clear of the fixed ranges some tests use (25090-26300, 29300-31300, 32000).
#: ``./medic test`` distributes whole files (``--dist loadfile``): a file's fixed ports are used by
#: one worker at a time.
WORKER_PORT_OFFSETS = (0, 6000, 2000)
if len(WORKER_PORT_OFFSETS) <= WORKER_INDEX:
    raise pytest.UsageError(f"at most {len(WORKER_PORT_OFFSETS)} xdist workers (each runs its own sandbox)")
#: Tests use their own port range so a running demo sandbox (19090+) is never touched.
TEST_PORT_BASE = int(os.environ.get("KAFKA_MEDIC_TEST_PORT_BASE", "21090")) + WORKER_PORT_OFFSETS[WORKER_INDEX]


@contextlib.contextmanager
def running_sandbox(layout: SandboxLayout, label: str = "sandbox") -> Iterator[Sandbox]:
    """A sandbox of ``layout``, up for the block and stopped after it (its data kept for a post-mortem)."""
    sb = Sandbox(layout)
    try:
        secs = sb.up()
        print(f"\n{label} up in {secs:.1f} s")
        yield sb
    finally:
        sb.down(wipe=False)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    state = Path(tmp_path_factory.mktemp("sandbox"))
    with running_sandbox(SandboxLayout(state_dir=state, port_base=TEST_PORT_BASE)) as sb:
        yield sb


def repair(sb: Sandbox, timeout_s: float = 120.0) -> None:
    """Bring every broker back (resume hung, start stopped, replace a lost disk) and wait for full ISR."""
    for st in sb.status(timeout_s=3):
        if st.role == "controller":  # a test may kill the controller (node 100): it comes back first
            if st.process == "hung":
                sb.resume(st.node_id)
            elif st.process == "stopped":
                sb.start_broker(st.node_id, wait=False)
            continue
        if st.process == "hung":
            sb.resume(st.node_id)
        elif (
            st.process == "stopped"
            and not (sb.layout.data_dir(sb.layout.broker(st.node_id)) / "meta.properties").exists()
        ):
            sb.wipe_and_replace(st.node_id, wait=False)  # killed with its disk lost, and never healed
        elif st.process == "stopped":
            sb.start_broker(st.node_id, wait=False)
    ids = [b.node_id for b in sb.layout.broker_specs]
    sb.wait_registered(ids, timeout_s=timeout_s)
    # A restarted broker is listed (unfenced) a moment before its listener accepts connections:
    # clients that pick it (e.g. kafka-python's admin, which sends to the "controller" metadata
    # names, a random live broker in KRaft) would be refused. Wait until every listener accepts.
    endpoints = {b.node_id: ("127.0.0.1", b.port) for b in sb.layout.broker_specs}
    wait_until(
        lambda: all(s is ListenerState.OPEN for s in probe_listeners(endpoints, 1.0).values()),
        timeout_s=timeout_s,
        what="every broker listener accepting connections",
    )
    admin = sb.admin()
    wait_until(
        lambda: not_fully_replicated(describe_partitions(admin)).empty,
        timeout_s=timeout_s,
        what="every partition back to full ISR",
    )
    drop_left_over(sb)  # topics earlier teardowns could not delete while a broker was down
    # Auto leader rebalance is off in the sandbox (leader balance is kafka-medic's job), so after a
    # kill leadership stays skewed: put preferred leaders back so each test starts balanced.
    parts = describe_partitions(admin)
    skewed = parts[[int(r[0]) != int(ldr) for r, ldr in zip(parts["replicas"], parts["leader"], strict=True)]]
    if not skewed.empty:
        tps = [TopicPartition(t, int(p)) for t, p in zip(skewed["topic"], skewed["partition"], strict=True)]
        with contextlib.suppress(Exception):  # "election not needed" for some partitions is fine
            admin.elect_leaders(ElectionType.PREFERRED, tps).result(timeout=30)
        wait_until(
            lambda: all(int(r[0]) == int(ldr) for r, ldr in zip(*_leaders(admin), strict=True)),
            timeout_s=30,
            what="preferred leaders restored",
        )


def _leaders(admin) -> tuple[list, list]:
    parts = describe_partitions(admin)
    return list(parts["replicas"]), list(parts["leader"])


@pytest.fixture
def healthy_sandbox(sandbox: Sandbox) -> Iterator[Sandbox]:
    repair(sandbox)
    yield sandbox


@pytest.fixture
def topic_factory(sandbox: Sandbox):
    """Create RF-3 topics with unique names; deleted at the end of the test."""
    admin = sandbox.admin()
    created: list[str] = []

    def make(
        partitions: int = 6,
        rf: int = 3,
        config: dict[str, str] | None = None,
        prefix: str = "t",
        replicas: list[list[int]] | None = None,
    ) -> str:
        """``replicas``: an explicit placement (one replica list per partition, preferred leader first),
        for tests whose outcome depends on which brokers hold which partition."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        if replicas is not None:
            partitions = len(replicas)
            topic = NewTopic(name, num_partitions=partitions, replica_assignment=replicas, config=config or {})
        else:
            topic = NewTopic(name, partitions, rf, config=config or {})
        fut = admin.create_topics([topic], request_timeout=15)
        fut[name].result(timeout=20)
        wait_until(
            lambda: len(describe_partitions(admin, [name])) == partitions,
            timeout_s=20,
            what=f"topic {name} visible in metadata",
        )
        created.append(name)
        return name

    yield make
    drop_topics(sandbox, created)  # never fails: a test that left the cluster broken must not mask its own failure


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """ONE throw-away Prefect server (SQLite in a temp dir) for the whole session (~10 s to start).

    Imported here, not at module level: the server stack is heavy and pure unit tests need none of it.
    """
    from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, PREFECT_SERVER_ANALYTICS_ENABLED, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        temporary_settings({PREFECT_LOGGING_TO_API_ENABLED: False, PREFECT_SERVER_ANALYTICS_ENABLED: False}),
        # 60 s was not enough on the shared 2-core machine under load (three runs in a row timed out);
        # tests/e2e/reliability/conftest.py measured 80 s for a real server there.
        prefect_test_harness(server_startup_timeout=180),
    ):
        yield


@pytest.fixture
def hook() -> Iterator[Any]:
    """A local webhook receiver for pages and notices (:mod:`tests.webhook`; imported here lazily so the
    unit tests never import Prefect)."""
    from tests.webhook import webhook_receiver

    with webhook_receiver() as received:
        yield received


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio, like Prefect itself."""
    return "asyncio"


#: tests/<folder>/... -> marker <folder>: ``pytest -m unit`` runs what ``pytest tests/unit`` runs.
LAYER_MARKERS = ("unit", "core", "blocks", "tasks", "flows", "deployments", "e2e")
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers set by folder: each test is marked with the layer it tests (see the README's Tests)."""
    for item in items:
        parts = Path(str(item.fspath)).resolve().relative_to(_TESTS).parts
        if len(parts) > 1 and parts[0] in LAYER_MARKERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Scenario lines travel on the test's report (``user_properties``): under xdist the summary is
    printed by the controller, which never ran the test."""
    from tests import scenarios

    if call.when == "call":
        item.user_properties.extend(("kafka-medic-scenario", line) for line in scenarios.take())
    yield


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    from tests import scenarios

    if report.when == "call":
        scenarios.collect(v for k, v in report.user_properties if k == "kafka-medic-scenario")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """End every run with the reliability scenarios' one-line reports (see ``tests/scenarios.py``)."""
    from tests import scenarios

    if scenarios.SUMMARY:
        terminalreporter.section("kafka-medic reliability scenarios")
        for line in scenarios.SUMMARY:
            terminalreporter.write_line(line)
