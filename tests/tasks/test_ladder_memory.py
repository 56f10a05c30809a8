"""tasks.ladder on a real Prefect server: what a remediation leaves in the ladder's memory (Variable)."""

from __future__ import annotations

import pytest

from kafka_medic.judgment import Rung, next_rung
from kafka_medic.settings.cluster import ClusterSettings
from tasks.ladder import attempt_gate, record_attempt
from tasks.state import cluster_state

pytestmark = pytest.mark.anyio


async def test_a_restart_that_ran_and_failed_is_remembered_as_the_restart_rung_taken(cluster_name: str) -> None:
    cluster = ClusterSettings(name=cluster_name, bootstrap_servers="127.0.0.1:9")
    await record_attempt(cluster, 3, "demote", True, rung=Rung.DEMOTE)
    await record_attempt(cluster, 3, "restart_broker", False)  # refused: nothing touched, no rung
    entry = (await cluster_state(cluster_name).ladder()).of(3)
    assert entry.rung is Rung.DEMOTE and not entry.failed
    await record_attempt(cluster, 3, "restart_broker", False, rung=Rung.RESTART)  # ran, not healthy in time
    ladder = await cluster_state(cluster_name).ladder()
    entry = ladder.of(3)
    assert entry.rung is Rung.RESTART and entry.failed
    assert [(a.action, a.ok) for a in entry.attempts] == [("demote", True), ("restart_broker", False),
                                                          ("restart_broker", False)]  # fmt: skip
    assert next_rung(entry, cluster.policy.restart_score, cluster.policy) is Rung.REPLACE
    assert next_rung(entry, cluster.policy.restart_score - 1, cluster.policy) is None
    gate = attempt_gate(ladder, 3, cluster.policy)
    assert not gate.allowed and "backing off after 2 failed attempt(s)" in gate.why, "the back-off still holds"
    # leaderships given back: on probation, the episode (and its rung) kept
    await record_attempt(cluster, 3, "restore", True, restored=True)
    entry = (await cluster_state(cluster_name).ladder()).of(3)
    assert entry.rung is Rung.RESTART and entry.restored_at is not None
