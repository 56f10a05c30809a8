"""tests/deployments: one real Prefect server (``prefect server start``) shared by this package's tests.

Package scope, not session: the session's ``prefect_test_harness`` (other packages) must see its
own settings again once these tests are done.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deployments.local_server import LocalPrefectServer
from kafka_medic.sandbox.cluster import Sandbox
from tests.policies import QUIET_DEGRADED
from tests.prefect_env import local_prefect, save_sandbox_cluster, unique_cluster


@pytest.fixture(scope="package")
def medic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrefectServer]:
    with local_prefect(tmp_path_factory.mktemp("prefect-home")) as server:
        yield server


@pytest.fixture
def sandbox_cluster_name(medic_server: LocalPrefectServer, healthy_sandbox: Sandbox) -> str:
    """A fresh KafkaCluster block (observe mode, sandbox replacer, limits) on the healthy test sandbox.

    Degraded-broker outlier rules are muted (a broker restarted by the previous test is an idle-ratio
    outlier for a while on a loaded 2-core machine); they have tests of their own.
    """
    from kafka_medic.policy import HealthPolicy

    name = unique_cluster()
    save_sandbox_cluster(healthy_sandbox, name, policy=HealthPolicy(**QUIET_DEGRADED))
    return name
