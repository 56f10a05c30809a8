"""A secure sandbox (SASL_SSL + SCRAM-SHA-512, 3 brokers over 3 racks) shared by the security tests.

Three brokers, not six: TLS costs CPU on this small machine and three racks with RF 3 are enough to
prove that collection, the health check and the audit trail work over SASL_SSL. Its ports come from
their own range (29300..31000) so it never collides with the PLAINTEXT test sandbox.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic

from kafka_medic.monitor.cluster_reads import describe_partitions
from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.sandbox.layout import SandboxLayout
from tests.conftest import WORKER_INDEX, repair, running_sandbox
from tests.waiting import wait_until

#: One secure sandbox per xdist worker; the offsets keep clear of the fixed layouts in test_tls_sasl
#: (29500, 30000: ports base..base+1100 each).
SECURE_WORKER_OFFSETS = (0, 500, 900)
SECURE_PORT_BASE = (
    int(os.environ.get("KAFKA_MEDIC_SECURE_TEST_PORT_BASE", "29300"))
    + SECURE_WORKER_OFFSETS[min(WORKER_INDEX, len(SECURE_WORKER_OFFSETS) - 1)]
)
if not 29_300 <= SECURE_PORT_BASE <= 31_000:
    raise pytest.UsageError(f"KAFKA_MEDIC_SECURE_TEST_PORT_BASE must be in 29300..31000, got {SECURE_PORT_BASE}")


@pytest.fixture(scope="session")
def secure_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    state = Path(tmp_path_factory.mktemp("secure-sandbox"))
    layout = SandboxLayout(state_dir=state, brokers=3, racks=3, port_base=SECURE_PORT_BASE, security="sasl_ssl")
    with running_sandbox(layout, "secure sandbox") as sb:
        yield sb


@pytest.fixture
def healthy_secure(secure_sandbox: Sandbox) -> Iterator[Sandbox]:
    """The secure sandbox with every broker back and every partition fully replicated."""
    repair(secure_sandbox)
    yield secure_sandbox


class Secrets(list[str]):
    """The clear passwords, for scanning; its repr is masked so a failing test's report shows none."""

    def __repr__(self) -> str:
        return f"<{len(self)} secrets>"


@pytest.fixture(scope="session")
def secrets_in_use(secure_sandbox: Sandbox) -> Secrets:
    """Every password of the secure sandbox (admin and inter-broker): none may ever be printed."""
    from kafka_medic.sandbox.security import load_secrets

    return Secrets(u.password.get_secret_value() for u in load_secrets(secure_sandbox.layout).users)


@pytest.fixture
def secure_topic(healthy_secure: Sandbox) -> Iterator[Callable[..., str]]:
    """Create RF-3 topics on the secure sandbox (as the SCRAM admin); deleted at the end of the test."""
    admin = healthy_secure.admin()
    created: list[str] = []

    def make(partitions: int = 3) -> str:
        name = f"sec-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(name, partitions, 3)], request_timeout=15)[name].result(timeout=20)
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


#: Loggers that do not propagate to the root logger (so caplog would miss them) or that are the
#: likeliest to print a client configuration.
EXTRA_LOGGERS = ("prefect.extra", "prefect._internal", "uvicorn", "fastapi")
DEBUG_LOGGERS = ("", "prefect", "kafka", "kafka_medic", "httpx", "httpcore", "confluent_kafka", *EXTRA_LOGGERS)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG on root, prefect, kafka(-python), kafka_medic and the HTTP stack.

    The caplog handler is also attached to the loggers that do not propagate, so nothing logged in
    this process escapes the scan.
    """
    for name in DEBUG_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    attached = [logging.getLogger(n) for n in EXTRA_LOGGERS]
    for lg in attached:
        lg.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        for lg in attached:
            lg.removeHandler(caplog.handler)
