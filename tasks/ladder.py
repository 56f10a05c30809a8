"""The ladder's memory on the remediation side: attempts and rungs, and the gate before another try.

Every remediation of a broker (demote, restart, replace, move away, restore) records its attempt
-- ok or not -- in the cluster's :class:`kafka_medic.judgment.Ladder` (a Prefect Variable), and a
rung taken on automation's judgment records the rung, so the next health check knows the broker
already lost its leaderships, or was already restarted. Writers hold the cluster's *mutate* lock
(every remediation flow takes it), so read-modify-write here never races another writer.

:func:`attempt_gate` is what the health check asks before it starts another remediation of a
broker: a failed or refused one backs off (``remediation_backoff_s``, doubling), and after
``remediation_max_attempts`` in ``remediation_window_s`` automation gives up on the broker (the
health check's incidents page about it once, repeat on a schedule, and say when it is resolved).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kafka_medic.judgment import Attempt, Ladder, Rung, may_attempt, with_attempt, with_restored, with_rung
from kafka_medic.policy import HealthPolicy
from kafka_medic.settings.cluster import ClusterSettings
from kafka_medic.state import now_utc
from tasks.state import cluster_state

log = logging.getLogger("kafka_medic.ladder")


async def record_attempt(
    cluster: ClusterSettings, broker_id: int, action: str, ok: bool, *, rung: Rung | None = None,
    restored: bool = False,
) -> None:  # fmt: skip
    """Remember one attempt on ``broker_id`` (and the rung it took, or that its leaderships are back).

    A ``rung`` is remembered whether or not the attempt healed the broker: a caller passes it only
    for a rung that was actually *tried* (a restart that ran but did not bring the broker back
    healthy counts as taken and failed, so the next rung is a replacement, not another restart);
    refusals and stand-downs, which touched nothing, pass no rung.

    Never raises: the attempt happened whether or not it could be remembered (a lost record only
    means one more try later, which the cooldowns and locks still bound)."""
    state = cluster_state(cluster.name)
    try:
        ladder = await state.ladder()
        now = now_utc()
        entry = with_attempt(ladder.of(broker_id), Attempt(now, action, ok), cluster.policy)
        if rung is not None:
            entry = with_rung(entry, rung, now, ok=ok)
        if ok and restored:
            entry = with_restored(entry, now)
        await state.save_ladder(ladder.with_broker(broker_id, entry))
    except Exception as exc:
        log.error("[%s] could not record the %s attempt on broker %s: %s", cluster.name, action, broker_id, exc)


@dataclass(frozen=True)
class Gate:
    """May automation try another remediation of this broker now?"""

    allowed: bool
    why: str = ""
    gave_up: bool = False

    def to_record(self) -> dict[str, Any]:
        return {"status": "gave up" if self.gave_up else "backing off", "why": self.why}


def attempt_gate(ladder: Ladder, broker_id: int, policy: HealthPolicy, now: datetime | None = None) -> Gate:
    allowed, why, gave_up = may_attempt(ladder.of(broker_id), policy, now or now_utc())
    return Gate(allowed, why, gave_up)
