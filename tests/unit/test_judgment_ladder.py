"""The ladder's episode end to end (issue 12): demote -> restart -> replace, and no loop in between.

Seen on the sandbox (bench_slow_broker --fault host): a broker slow because of its *host* went
demote -> restart (which did not bring it back healthy) -> leaderships restored -> restart again ...
and never reached the replace rung. Three things fed the loop, each pinned here:

* a restart that failed was not remembered as a rung taken, so the next climb restarted again;
* a demoted broker leads nothing, so its leader-only signals vanish and its score decays to 0: that
  is no proof of recovery, yet the relapse had to climb the whole way to the next rung's threshold;
* a relapse after a restart must go to a replacement, never to another restart.

The tests drive ``judge`` cycle by cycle (``Cluster`` of test_judgment) and play remediation the way
the flows record it (``with_rung`` / ``with_restored``, as :func:`tasks.ladder.record_attempt` does).
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_medic.judgment import (
    RUNG_ORDER,
    BrokerLadder,
    Judgment,
    Ladder,
    Rung,
    next_rung,
    pending_rung,
    with_restored,
    with_rung,
)
from kafka_medic.policy import HealthPolicy
from tests.unit.rules_helpers import T0
from tests.unit.test_judgment import Cluster, degraded

POLICY = HealthPolicy(degraded_settle_s=0, demote_score=3, restart_score=6, replace_score=9, ladder_reset_s=600)
BLIND = {
    k: float("nan")
    for k in ("produce_p99_ms", "produce_queue_p99_ms", "request_handler_idle", "network_processor_idle",
              "isr_shrinks_per_sec")
}  # fmt: skip


def take(c: Cluster, broker_id: int, rung: Rung, *, ok: bool = True) -> None:
    """Remediation took ``rung`` (``ok=False``: tried, did not heal the broker)."""
    c.ladder = c.ladder.with_broker(broker_id, with_rung(c.ladder.of(broker_id), rung, c.now, ok=ok))


def restore(c: Cluster, broker_id: int) -> None:
    c.ladder = c.ladder.with_broker(broker_id, with_restored(c.ladder.of(broker_id), c.now))


def climb_to(c: Cluster, rung: Rung, *, cycles: int = 20) -> Judgment:
    for _ in range(cycles):
        j = c.slow(3)
        if j.verdicts[3].due is not None:
            assert j.verdicts[3].due is rung, j.verdicts[3]
            return j
    raise AssertionError(f"{rung} never due: {j.verdicts[3]}")


def test_a_restart_that_failed_is_a_rung_taken_and_the_next_one_is_replace() -> None:
    c = Cluster(POLICY)
    c.healthy(6)
    climb_to(c, Rung.DEMOTE)
    take(c, 3, Rung.DEMOTE)
    j = climb_to(c, Rung.RESTART)
    assert j.verdicts[3].score == POLICY.restart_score
    take(c, 3, Rung.RESTART, ok=False)  # the restart flow: "did not bring it back healthy within 180s"
    assert c.ladder.of(3).rung is Rung.RESTART and c.ladder.of(3).failed
    j = c.slow(3)  # the first counted suspect cycle after it: straight to the replace rung
    assert j.verdicts[3].due is Rung.REPLACE, j.verdicts[3]
    assert j.verdicts[3].score < POLICY.replace_score, "no waiting for the replace score: the restart was the test"
    assert "replace it" in degraded(j, 3).summary
    # the record survives the Prefect Variable it lives in
    assert Ladder.from_json(c.ladder.to_json()) == c.ladder


def test_a_failed_restart_of_a_broker_that_is_not_slow_again_replaces_nothing() -> None:
    # the failure moves the episode to the replace rung; acting still needs evidence on a fresh cycle
    c = Cluster(POLICY)
    c.healthy(6)
    take(c, 3, Rung.DEMOTE)
    take(c, 3, Rung.RESTART, ok=False)
    for _ in range(3):
        j = c.cycle()
        assert j.verdicts[3].due is None
    assert j.verdicts[3].next_at == "replace at 6 (its restart failed)"


def test_a_relapse_on_probation_after_a_restart_is_replaced_not_restarted_again() -> None:
    c = Cluster(POLICY)
    c.healthy(6)
    climb_to(c, Rung.DEMOTE)
    take(c, 3, Rung.DEMOTE)
    climb_to(c, Rung.RESTART)
    take(c, 3, Rung.RESTART)  # it came back healthy (a cold JVM is not judged by the restart itself)
    for _ in range(POLICY.restart_score + 2):
        j = c.cycle()
        if j.verdicts[3].recovered:
            break
    assert j.verdicts[3].recovered
    restore(c, 3)  # leaderships given back: probation, NOT the end of the episode
    assert c.ladder.of(3).current(POLICY, c.now + timedelta(seconds=599)).rung is Rung.RESTART
    c.healthy(2)
    j = climb_to(c, Rung.REPLACE)
    assert j.verdicts[3].score == POLICY.restart_score, "the evidence that took the restart, not a fresh climb to 9"
    # a quiet probation, and only that, ends the episode: the next one starts at the bottom
    c2 = Cluster(POLICY)
    c2.healthy(6)
    take(c2, 3, Rung.DEMOTE)
    take(c2, 3, Rung.RESTART)
    restore(c2, 3)
    c2.now += timedelta(seconds=POLICY.ladder_reset_s)
    c2.healthy(1)
    assert climb_to(c2, Rung.DEMOTE).verdicts[3].score == POLICY.demote_score


def test_a_demoted_broker_whose_leader_signals_vanish_is_not_proof_of_recovery() -> None:
    # The loop of bench_slow_broker, cycle by cycle: demoted, the broker's produce p99 is simply gone
    # (it leads nothing), sometimes its exporter does not answer; its score decays to 0 and it gets
    # its leaderships back -- and is slow again the moment it leads. It climbs on to a restart at the
    # relapse's evidence (3), it is not demoted again, and it does not have to earn the restart score.
    c = Cluster(POLICY)
    c.healthy(6)
    climb_to(c, Rung.DEMOTE)
    take(c, 3, Rung.DEMOTE)
    for i in range(12):
        j = c.cycle({3: BLIND} if i % 3 == 0 else None)
        if j.verdicts[3].recovered:
            break
    assert j.verdicts[3].recovered and j.verdicts[3].score == 0
    restore(c, 3)
    j = c.cycle()
    assert j.verdicts[3].next_at == "restart at 3 (relapse on probation)"
    j = climb_to(c, Rung.RESTART)
    assert j.verdicts[3].score == POLICY.demote_score


def test_giving_leaderships_back_settles_the_cluster_like_a_rung() -> None:
    # seen in bench_slow_broker --fault process: a restarted (healed) broker got its leaderships back
    # and its first cycles as a leader again, on a loaded box, read as a relapse -> replaced
    c = Cluster(HealthPolicy(degraded_settle_s=60, demote_score=3, restart_score=6, replace_score=9))
    c.healthy(6)
    take(c, 3, Rung.DEMOTE)
    take(c, 3, Rung.RESTART)
    c.healthy(6)  # the settle window after the restart
    for _ in range(8):
        j = c.cycle()
    assert j.verdicts[3].recovered
    restore(c, 3)
    for _ in range(5):  # 50 s of a cold JVM taking its leaders back: nobody is judged
        j = c.slow(3)
        assert j.gate is not None and j.gate.startswith("settling") and j.verdicts[3].due is None
    c.healthy(2)
    assert climb_to(c, Rung.REPLACE).verdicts[3].score == 6


# -- properties ----------------------------------------------------------------------------------------

policies = st.tuples(st.integers(1, 20), st.integers(0, 20), st.integers(0, 20)).map(
    lambda t: HealthPolicy(demote_score=t[0], restart_score=t[0] + t[1], replace_score=t[0] + t[1] + t[2])
)


def _record(rung: Rung | None, failed: bool, restored: bool) -> BrokerLadder:
    return BrokerLadder(
        rung=rung, rung_at=T0 if rung else None, failed=bool(rung and failed),
        restored_at=T0 if rung and restored else None,
    )  # fmt: skip


records = st.builds(_record, st.sampled_from([None, *RUNG_ORDER]), st.booleans(), st.booleans())


@settings(max_examples=300, deadline=None, derandomize=True)
@given(policies, records, st.integers(0, 100), st.booleans())
def test_the_next_rung_is_always_the_one_above_and_a_relapse_needs_only_the_evidence_of_the_last_one(
    policy: HealthPolicy, record: BrokerLadder, score: int, can_restart: bool
) -> None:
    due = next_rung(record, score, policy, can_restart=can_restart)
    taken = -1 if record.rung is None else RUNG_ORDER.index(record.rung)
    above = [r for r in RUNG_ORDER[taken + 1 :] if r is not Rung.RESTART or can_restart]
    if due is not None:
        assert due is above[0], "never the same rung again, never one skipped"
    if record.rung is Rung.RESTART:
        assert due in (None, Rung.REPLACE), "after a restart (healed or not) the next rung is a replacement"
    if above and (record.failed or record.restored_at is not None):
        assert record.rung is not None
        took = {Rung.DEMOTE: policy.demote_score, Rung.RESTART: policy.restart_score}[record.rung]
        assert (due is above[0]) == (score >= took), "the evidence that took the rung it is on is enough"
        assert pending_rung(record, policy, can_restart=can_restart) == (above[0], took)
    # more evidence never takes a due rung away
    if due is not None:
        assert next_rung(record, score + 1, policy, can_restart=can_restart) is due
    assert BrokerLadder.from_json(record.to_json()) == record


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    restart_heals_cycles=st.booleans(),  # the restart flow called it healthy (a cold JVM) or not
    blind_every=st.sampled_from([0, 2, 3, 5]),  # every n-th cycle the starved exporter does not answer
    clean_every=st.sampled_from([0, 4, 7]),  # every n-th cycle the slow broker happens to look fine
)
def test_a_slow_host_climbs_demote_restart_replace_once_each_whatever_the_noise(
    restart_heals_cycles: bool, blind_every: int, clean_every: int
) -> None:
    """A broker slow because of its host: slow whenever it leads, silent when demoted, a restart does
    not fix it (whether or not the restart flow saw it come back healthy), a replacement does.
    Remediation takes every due rung at once and restores every recovered broker. Within one
    episode the rungs taken are exactly demote, restart, replace, each once, in that order."""
    c = Cluster(POLICY)
    c.healthy(6)
    taken: list[Rung] = []
    for i in range(1, 150):
        step = c.ladder.of(3)
        leads = step.rung is None or step.restored_at is not None or step.rung is not Rung.DEMOTE
        replaced = Rung.REPLACE in taken
        if blind_every and i % blind_every == 0:
            j = c.cycle({3: BLIND})
        elif leads and not replaced and not (clean_every and i % clean_every == 0):
            j = c.slow(3)
        else:
            j = c.cycle()
        v = j.verdicts[3]
        if v.due is not None:
            taken.append(v.due)
            take(c, 3, v.due, ok=v.due is not Rung.RESTART or restart_heals_cycles)
        elif v.recovered:
            restore(c, 3)
        if replaced:
            break
    assert taken == [Rung.DEMOTE, Rung.RESTART, Rung.REPLACE], taken
