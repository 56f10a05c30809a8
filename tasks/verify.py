"""Waiting for the cluster to be whole again: every remediation ends here.

* :func:`wait_isr_full`: the selected partitions have a leader, an ISR equal to their replica list
  and at least ``min.insync.replicas`` in it (pure check: :mod:`kafka_medic.executor.isr`);
* :func:`wait_registered`: a new incarnation of a broker is registered, unfenced and serving;
* :func:`wait_in_sync`: a broker is back in the ISR of every partition it hosts;
* :func:`verify_after`: both of the last, then a full ISR where one is possible.

Every wait is bounded (:func:`kafka_medic.waiting.apoll`) and its timeout says what is still short,
because "ISR not full" alone sends an operator hunting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from kafka_medic.errors import ConfigError
from kafka_medic.executor.isr import MAX_LISTED, Shortfall, describe_shortfalls, select, shortfalls
from kafka_medic.heal import replicas_behind
from kafka_medic.monitor.cluster_reads import make_admin, read_metadata, topic_min_isr
from kafka_medic.monitor.liveness import new_incarnation_serving, registered_in_metadata
from kafka_medic.reports.verify import IsrNotFull, VerifyIsrReport
from kafka_medic.settings.cluster import ClusterSettings
from kafka_medic.waiting import NotYet, WaitTimeout, apoll

PartitionKey = tuple[str, int]
PollHook = Callable[[list[Shortfall], int], Awaitable[None]]
#: Between two looks while a broker comes back (one Metadata request each: cheap, and every poll
#: interval is added, on average half of it, to the time to repair).
FAST_POLL_S = 0.25


def _admin(cluster: ClusterSettings, socket_timeout_ms: int = 5000) -> Any:
    return make_admin({**cluster.confluent_config(), "socket.timeout.ms": socket_timeout_ms})


async def wait_isr_full(
    cluster: ClusterSettings,
    *,
    brokers: Iterable[int] = (),
    topics: Iterable[str] = (),
    partitions: Iterable[PartitionKey] = (),
    timeout_s: float = 600.0,
    poll_s: float = 2.0,
    on_poll: PollHook | None = None,
) -> VerifyIsrReport:
    """Wait (at most ``timeout_s``) until the selected partitions are fully in sync.

    Returns the report when they are; raises :class:`IsrNotFull` (with the report) when they are
    not in time, and ``ConfigError`` for topics the cluster does not have. Transient read errors
    are retried until the deadline (the last one is named in the error).
    """
    t0 = time.monotonic()
    broker_list, topic_list, keys = list(brokers), list(topics), list(partitions)
    admin = _admin(cluster, 10_000)
    seen: dict[str, Any] = {"min_isr": None, "last": [], "checked": 0, "error": None, "polls": 0}

    async def look() -> VerifyIsrReport:
        seen["polls"] += 1
        try:
            _brokers, parts = await asyncio.to_thread(read_metadata, admin, 10.0)
        except Exception as exc:  # broker restarting, controller moving: look again
            seen["error"] = f"{type(exc).__name__}: {exc}"
            raise NotYet(seen["error"]) from None
        if topic_list and seen["polls"] == 1:
            missing = sorted(set(topic_list) - set(parts["topic"] if not parts.empty else []))
            if missing:
                raise ConfigError(f"cluster {cluster.name!r} has no topic(s) {missing}")
        chosen = select(parts, brokers=broker_list, topics=topic_list, keys=keys)
        if seen["min_isr"] is None and not chosen.empty:
            # DescribeConfigs goes to the "controller" librdkafka picked, which may be the very
            # broker that just died: min ISR only sharpens the message, so a failed read is retried
            # on the next poll instead of hiding the shortfall list behind a config timeout.
            try:
                seen["min_isr"] = await asyncio.to_thread(topic_min_isr, admin, sorted(set(chosen["topic"])), 3.0)
            except Exception:
                seen["min_isr"] = None
        if not chosen.empty:
            chosen = chosen.assign(min_isr=chosen["topic"].map(seen["min_isr"] or {}).fillna(1).astype(int))
        seen["checked"], seen["last"], seen["error"] = len(chosen), shortfalls(chosen), None
        if seen["last"]:
            if on_poll is not None:
                await on_poll(seen["last"], seen["checked"])
            raise NotYet(describe_shortfalls(seen["last"]))
        return VerifyIsrReport(
            cluster=cluster.name, ok=True, partitions_checked=seen["checked"],
            waited_s=round(time.monotonic() - t0, 3), polls=seen["polls"],
            message=f"all {seen['checked']} selected partition(s) fully in sync",
        )  # fmt: skip

    try:
        return await apoll(look, timeout_s=timeout_s, interval_s=poll_s, what="full ISR")
    except WaitTimeout:
        pass
    waited = time.monotonic() - t0
    last, error = seen["last"], seen["error"]
    if last:
        message = f"ISR still not full on cluster {cluster.name!r} after {waited:.0f} s: {describe_shortfalls(last)}"
        message += f" (last read failed: {error})" if error else ""
    else:
        message = f"could not read cluster {cluster.name!r} for {waited:.0f} s: {error}"
    report = VerifyIsrReport(
        cluster=cluster.name, ok=False, partitions_checked=seen["checked"], waited_s=round(waited, 3),
        polls=seen["polls"], shortfall_count=len(last), shortfalls=[s.to_dict() for s in last[:MAX_LISTED]],
        message=message,
    )  # fmt: skip
    raise IsrNotFull(message, report)


async def wait_registered(cluster: ClusterSettings, broker_id: int, timeout_s: float) -> float:
    """Wait until a new incarnation of ``broker_id`` is registered, unfenced and serving
    (:func:`kafka_medic.monitor.liveness.new_incarnation_serving`); return seconds waited."""
    t0 = time.monotonic()
    admin = _admin(cluster)

    async def serving() -> None:
        why_not = await asyncio.to_thread(new_incarnation_serving, cluster, admin, broker_id)
        if why_not is not None:
            raise NotYet(why_not)

    # A cluster in the middle of a replacement may not answer every request: errors are "not yet".
    await apoll(serving, timeout_s=timeout_s, interval_s=FAST_POLL_S, what=f"broker {broker_id} registered",
                retry_on=(Exception,))  # fmt: skip
    return time.monotonic() - t0


async def wait_listed(cluster: ClusterSettings, broker_id: int, timeout_s: float) -> float:
    """Wait until ``broker_id`` is listed in metadata (registered, unfenced); return seconds waited."""
    t0 = time.monotonic()
    admin = _admin(cluster, 10_000)

    async def listed() -> None:
        why_not = await asyncio.to_thread(registered_in_metadata, admin, broker_id)
        if why_not is not None:
            raise NotYet(why_not)

    # A broker just restarted: transient client errors are expected.
    await apoll(listed, timeout_s=timeout_s, interval_s=1.0, what=f"broker {broker_id} listed", retry_on=(Exception,))
    return time.monotonic() - t0


async def wait_in_sync(cluster: ClusterSettings, broker_id: int, timeout_s: float) -> float:
    """Wait until ``broker_id`` is in the ISR of every partition it hosts and no partition is offline.

    This is a replacement's own success criterion (the new disk caught up); it does not demand a
    full ISR everywhere, which would be impossible while another broker is down (two brokers lost
    at once are replaced one after the other).
    """
    t0 = time.monotonic()
    admin = _admin(cluster)

    async def caught_up() -> None:
        _brokers, parts = await asyncio.to_thread(read_metadata, admin, 5.0)
        behind, offline = replicas_behind(parts, broker_id)
        if behind or offline:
            raise NotYet(f"{len(behind)} replica(s) still catching up, {len(offline)} partition(s) offline")

    await apoll(caught_up, timeout_s=timeout_s, interval_s=FAST_POLL_S,
                what=f"broker {broker_id}'s replicas in sync", retry_on=(Exception,))  # fmt: skip
    return time.monotonic() - t0


async def verify_after(cluster: ClusterSettings, broker_id: int, timeout_s: float) -> dict[str, float]:
    """The healed broker caught up (:func:`wait_in_sync`); then every partition it hosts has its full
    ISR -- unless another broker is down, in which case a full ISR is impossible until that one is
    healed too (said in the timings). Raises TimeoutError naming what is short."""
    t0 = time.monotonic()
    timings = {"in_sync_s": round(await wait_in_sync(cluster, broker_id, timeout_s), 3)}
    brokers, parts = await asyncio.to_thread(read_metadata, _admin(cluster), 5.0)
    alive = {b.broker_id for b in brokers}
    hosted = {b for reps in parts["replicas"] for b in reps} if not parts.empty else set()
    if hosted - alive:
        timings["isr_full_skipped_other_brokers_down"] = float(len(hosted - alive))
        return timings
    t1 = time.monotonic()
    try:
        await wait_isr_full(cluster, brokers=[broker_id], timeout_s=max(1.0, timeout_s - (t1 - t0)), poll_s=FAST_POLL_S)
    except IsrNotFull as exc:
        raise TimeoutError(str(exc)) from exc
    timings["isr_full_s"] = round(time.monotonic() - t1, 3)
    return timings


async def wait_back_in_sync(cluster: ClusterSettings, *, broker_id: int | None, timeout_s: float) -> float:
    """Wait until ``broker_id`` is listed again and every partition's ISR is its full replica set
    (the rolling restart's step condition); returns the seconds waited. Raises on timeout."""
    t0 = time.monotonic()
    if broker_id is not None:
        await wait_listed(cluster, broker_id, timeout_s)
    await wait_isr_full(cluster, timeout_s=max(1.0, timeout_s - (time.monotonic() - t0)), poll_s=1.0)
    return time.monotonic() - t0
