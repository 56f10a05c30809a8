"""The ``replace-broker`` flow: give one broker a fresh machine/disk, safely, one at a time.

Order of operations, and why:

1. Take the cluster's *replace* lock and its *mutate* lock, both fail-fast. The replace lock makes
   replacements strictly one at a time; the mutate lock makes a manual drain/reassignment and a
   replacement mutually exclusive (the seed's users suffered exactly that collision). Busy ->
   ``skipped``, not a failure: somebody else is already acting on the cluster.
2. While holding them, check the cooldown (``policy.replacement_cooldown_s``, persisted in a Prefect
   Variable, so every process sees it). Cooling down -> ``skipped`` with the seconds left.
3. On a FRESH snapshot: refuse if automation stands down (mass failure or any other paging
   finding), if the cluster state cannot be read, or if wiping this broker would take a partition
   offline or below min ISR (``safety.removal_impact``) -- naming the partitions.
4. Optionally restart first (Orion's "maybe dead": the broker is registered but unhealthy, or
   fenced while its JVM still answers), then re-check health; replace only if that did not help.
5. Replace; wait (bounded) until the broker registers and is unfenced; verify its replicas are
   back in sync (bounded); only then record success -- the cooldown starts from success, not from
   the attempt, so a half-done replacement never silences the next one.

Every outcome is audited (planned / skipped / refused / started / finished / failed). A failure
raises :class:`ReplaceFailed` (the run is Failed in Prefect with one clear line); the locks are
released on every path.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from enum import StrEnum
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from blocks.kafka_cluster import KafkaCluster
from flows.health_check import load_cluster, load_known_brokers, recent_collection
from kafka_medic import coordination
from kafka_medic.audit import AuditLog, AuditRecord, AuditStatus, default_actor
from kafka_medic.cluster_reads import host_port, make_admin, read_metadata
from kafka_medic.collector import CollectResult, refresh_liveness
from kafka_medic.errors import ConfigError, MedicError
from kafka_medic.findings import Action, Finding
from kafka_medic.listener_probe import ListenerState, probe_listener
from kafka_medic.notify import anotice, cluster_secrets
from kafka_medic.replacers import Replacer, ReplacerError, aload_replacer
from kafka_medic.rules import Evaluation, evaluate
from kafka_medic.safety import removal_impact
from tasks.collect import collect_cluster, probe_timeout

ACTION = "replace_broker"
RESTART_ACTION = "restart_broker"
#: Between two looks at the cluster while waiting (one Metadata request each: cheap, and every
#: poll interval is added, on average half of it, to the time to repair).
_POLL_S = 0.25
#: Findings that mean a restart did not help (liveness and disks; not latency outliers).
_STILL_BROKEN_RULES = frozenset({"broker_down", "offline_log_dir"})


def restart_action(broker_id: int) -> str:
    """Cooldown key of one broker's restarts: a broker restarted recently is replaced, not restarted again."""
    return f"restart-broker-{broker_id}"


class ReplaceFailed(MedicError):
    """The replacement was attempted and did not complete; the message says what state it left."""


class ReplaceStatus(StrEnum):
    PLANNED = "planned"  # dry run: every check ran, nothing changed
    SKIPPED = "skipped"  # lock busy, cooling down, or the broker no longer needs healing
    REFUSED = "refused"  # a safety guard said no
    RESTARTED = "restarted"  # a restart was enough; no replacement
    REPLACED = "replaced"


class ReplaceBrokerParams(BaseModel):
    """Parameters of one replacement (a nested form in the Prefect UI)."""

    model_config = ConfigDict(extra="forbid")

    broker_id: int = Field(..., ge=0, description="The broker to replace.")
    dry_run: bool = Field(True, description="Run every check and show the plan, change nothing.")
    try_restart_first: bool = Field(
        False,
        description="If the broker is registered but unhealthy, or fenced while its JVM still answers, "
        "restart it first and replace only if that does not help.",
    )
    cooldown_s: float | None = Field(
        None, ge=0, le=7 * 86_400, description="Override the policy's replacement cooldown for this run (seconds)."
    )
    verify_timeout_s: float | None = Field(
        None, gt=0, le=86_400, description="How long to wait for the broker's replicas to be back in sync "
        "(default: the policy's verify_timeout_s).",
    )  # fmt: skip
    register_timeout_s: float = Field(
        600.0, gt=0, le=7200, description="How long to wait for the new broker to register and be unfenced."
    )
    restart_check_s: float = Field(
        120.0, gt=0, le=3600, description="After a restart, how long to wait for the broker to look healthy."
    )
    require_finding: bool = Field(
        False,
        description="Act only if a fresh health evaluation still calls for healing this broker "
        "(automation sets this; a manual run may replace a broker that looks fine).",
    )
    actor: str = Field("", max_length=200, description="Who asked (default: $KAFKA_MEDIC_ACTOR or user@host).")
    reason: str = Field("", max_length=1000, description="Why (goes to the audit trail).")


class ReplaceBrokerResult(BaseModel):
    """What the run did."""

    cluster: str
    broker_id: int
    status: ReplaceStatus
    message: str
    dry_run: bool
    remaining_cooldown_s: float | None = None
    partitions: list[str] = Field(default_factory=list, description="partitions a refusal is about")
    outcome: dict[str, Any] | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    audit: list[dict[str, Any]] = Field(default_factory=list)


# -- pure helpers ----------------------------------------------------------------------------------


def replicas_behind(parts: pd.DataFrame, broker_id: int) -> tuple[list[str], list[str]]:
    """(partitions hosted on ``broker_id`` where it is not in the ISR, partitions without a leader)."""
    behind: list[str] = []
    offline: list[str] = []
    if parts.empty:
        return behind, offline
    for t, p, leader, reps, isr in zip(
        parts["topic"], parts["partition"], parts["leader"], parts["replicas"], parts["isr"], strict=True
    ):
        if int(leader) < 0:
            offline.append(f"{t}-{p}")
        if broker_id in reps and broker_id not in isr:
            behind.append(f"{t}-{p}")
    return behind, offline


def heal_findings(ev: Evaluation, broker_id: int) -> list[Finding]:
    """Findings that call for healing ``broker_id`` (dead beyond grace, or degraded)."""
    wanted = {Action.HEAL_DEAD_BROKER, Action.REPLACE_DEGRADED_BROKER}
    return [f for f in ev.findings if f.action in wanted and broker_id in f.brokers]


def broker_row(snapshot: Any, broker_id: int) -> dict[str, Any] | None:
    b = snapshot.brokers
    if b.empty:
        return None
    rows = b.loc[b["broker_id"] == broker_id]
    return None if rows.empty else rows.iloc[0].to_dict()


def maybe_dead(row: dict[str, Any] | None) -> bool:
    """Orion's "maybe dead": registered (but judged unhealthy), or fenced while its JVM still answers."""
    if row is None:
        return False
    return bool(row.get("alive")) or row.get("metrics_ok") is True


def _host(row: dict[str, Any] | None) -> str:
    host = (row or {}).get("host")
    return host if isinstance(host, str) else ""


def refusal_reasons(snapshot: Any, ev: Evaluation, broker_id: int) -> tuple[list[str], list[str]]:
    """(reasons, partitions) why replacing ``broker_id`` now is unsafe; ([], []) = safe."""
    reasons: list[str] = []
    partitions: list[str] = []
    unreachable = [i.message for i in snapshot.issues if str(i.message).startswith("cluster unreachable")]
    if unreachable:
        return [f"cannot verify safety, the cluster state is unreadable: {unreachable[0]}"], []
    if not ev.automation_allowed:
        pagers = [f for f in ev.findings if f.action is Action.PAGE]
        reasons.append("automation stands down: " + "; ".join(f"{f.rule}: {f.summary}" for f in pagers[:5]))
    try:
        impact = removal_impact(snapshot, [broker_id])
    except ConfigError as exc:
        return [*reasons, str(exc)], []
    if impact.offline:
        names = [f"{t}-{p}" for t, p in impact.offline]
        partitions += names
        reasons.append(f"{len(names)} partition(s) would lose their last in-sync replica: {', '.join(names[:50])}")
    if impact.under_min_isr:
        names = [f"{t}-{p}" for t, p in impact.under_min_isr]
        partitions += names
        reasons.append(f"{len(names)} partition(s) would drop below min.insync.replicas: {', '.join(names[:50])}")
    if reasons and impact.stale_isr_brokers:
        reasons.append(
            f"broker(s) {list(impact.stale_isr_brokers)} counted out of sync: down, though metadata still lists "
            "them in the ISR (not fenced yet)"
        )
    return reasons, partitions


# -- audit -------------------------------------------------------------------------------------------


class FlowAudit:
    """Audit records for one run: same cluster, actor, run id; written off the event loop."""

    def __init__(self, block: KafkaCluster, *, actor: str, brokers: tuple[int, ...] = ()) -> None:
        from prefect.context import FlowRunContext

        ctx = FlowRunContext.get()
        self.cluster = block.name
        self.actor = actor or default_actor()
        self.brokers = brokers
        self.run_id = str(ctx.flow_run.id) if ctx and ctx.flow_run else None
        self._log = AuditLog(block.confluent_config(), block.audit_topic)
        self._secrets = cluster_secrets(block)
        self.records: list[dict[str, Any]] = []
        self._warming: asyncio.Task[bool] | None = None

    def start_warming(self) -> None:
        """Prepare the audit producer in the background (~1 s: topic check, producer id) while the
        run takes its locks and checks safety, so no record on the critical path waits for it."""
        if self._warming is None:
            self._warming = asyncio.create_task(asyncio.to_thread(self._log.prepare))

    async def __call__(self, status: AuditStatus, summary: str, *, action: str = ACTION, **details: Any) -> None:
        record = AuditRecord(
            cluster=self.cluster, action=action, status=status, summary=summary, brokers=self.brokers,
            details=details, actor=self.actor, run_id=self.run_id,
        )  # fmt: skip
        written = await asyncio.to_thread(self._log.write, record)
        self.records.append({"id": record.id, "status": status.value, "at": record.at, "written": written})
        await anotice(self.cluster, action, status.value, summary, brokers=self.brokers, secrets=self._secrets)


# -- I/O steps ---------------------------------------------------------------------------------------


async def fresh_evaluation(block: KafkaCluster) -> tuple[CollectResult, Evaluation]:
    """Evaluate on state read NOW, with the persisted down-since times (grace periods stay honest).

    What the guards judge on -- listed brokers, leaders, ISR, listener probes -- is always read
    here. If this process's health check collected the cluster less than
    ``policy.guard_reuse_max_age_s`` ago, its slow parts (metrics, log dirs, configs) are reused
    instead of a full pass (~0.5 s more on the critical path of a replacement); otherwise, or if
    that collection cannot be reused, everything is collected afresh.
    """
    result: CollectResult | None = None
    base = recent_collection(block.name, block.policy.guard_reuse_max_age_s)
    if base is not None:
        try:
            result = await asyncio.to_thread(refresh_liveness, block, base, probe_timeout_s=probe_timeout(block))
        except Exception:  # the light read failed: a full pass reports why
            result = None
    if result is None:
        known = await load_known_brokers(block.name)
        result = await collect_cluster(block, known)
    down_since = await coordination.aload_down_since(block.name)
    return result, evaluate(result.snapshot, block.policy, down_since=down_since)


def _metadata(block: KafkaCluster, admin: Any) -> tuple[set[int], pd.DataFrame]:
    brokers, parts = read_metadata(admin, 5.0)
    return {b.broker_id for b in brokers}, parts


def new_incarnation_serving(block: KafkaCluster, admin: Any, broker_id: int, timeout_s: float = 2.0) -> str | None:
    """None when ``broker_id`` is listed AND its own listener answers a Metadata request; else why not.

    Why "listed" is not enough: healing may start before the controller has fenced the crashed
    process (its listener refused), and until then metadata still lists the OLD registration --
    and the old ISR. The old process is gone (it refused connections, or the replacer stopped it),
    so an answer from the broker's own listener can only come from the new one, and Kafka enables
    request processing only once the broker has registered, caught up and been unfenced. A fresh
    client bootstrapped at that one address sends its first request there, so its success is that
    answer. A cheap TCP probe first: a listener that refuses costs no client and no timeout.
    """
    brokers, _ = read_metadata(admin, 5.0)
    ep = next((b for b in brokers if b.broker_id == broker_id), None)
    if ep is None:
        return f"not listed (registered brokers {sorted(b.broker_id for b in brokers)})"
    state = probe_listener(ep.host, ep.port, min(timeout_s, 1.0))
    if state is not ListenerState.OPEN:
        return f"listed, but its listener {ep.host}:{ep.port} is {state.value} (old registration, new one not up)"
    own = make_admin({**block.confluent_config(), "bootstrap.servers": host_port(ep.host, ep.port)})
    try:
        own.list_topics(timeout=timeout_s)
    except Exception as exc:
        return f"listed, but its own listener does not answer yet ({type(exc).__name__})"
    return None


async def wait_registered(block: KafkaCluster, broker_id: int, timeout_s: float) -> float:
    """Wait until a new incarnation of ``broker_id`` is registered, unfenced and serving
    (:func:`new_incarnation_serving`); return seconds waited."""
    t0 = time.monotonic()
    admin = make_admin({**block.confluent_config(), "socket.timeout.ms": 5000})
    last: str = "no answer yet"
    while True:
        try:
            why_not = await asyncio.to_thread(new_incarnation_serving, block, admin, broker_id)
            if why_not is None:
                return time.monotonic() - t0
            last = why_not
        except Exception as exc:  # a cluster in the middle of a replacement may not answer every request
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() - t0 >= timeout_s:
            raise TimeoutError(f"broker {broker_id} did not register within {timeout_s:.0f}s ({last})")
        await asyncio.sleep(_POLL_S)


async def wait_in_sync(block: KafkaCluster, broker_id: int, timeout_s: float) -> float:
    """Wait until ``broker_id`` is in the ISR of every partition it hosts and no partition is offline.

    This is the replacement's own success criterion (the new disk caught up); it does not demand
    a full ISR everywhere, which would be impossible while another broker is down (two brokers
    lost at once are replaced one after the other).
    """
    t0 = time.monotonic()
    admin = make_admin({**block.confluent_config(), "socket.timeout.ms": 5000})
    last = "no answer yet"
    while True:
        try:
            _, parts = await asyncio.to_thread(_metadata, block, admin)
            behind, offline = replicas_behind(parts, broker_id)
            if not behind and not offline:
                return time.monotonic() - t0
            last = f"{len(behind)} replica(s) still catching up, {len(offline)} partition(s) offline"
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() - t0 >= timeout_s:
            raise TimeoutError(f"broker {broker_id}'s replicas were not in sync within {timeout_s:.0f}s ({last})")
        await asyncio.sleep(_POLL_S)


async def verify_after(block: KafkaCluster, broker_id: int, timeout_s: float) -> dict[str, float]:
    """The replaced broker caught up (:func:`wait_in_sync`); then every partition it hosts has its
    full ISR (``flows.verify_isr.wait_isr_full``) -- unless another broker is down, in which case
    a full ISR is impossible until that one is healed too. Raises TimeoutError naming what is short."""
    t0 = time.monotonic()
    timings = {"in_sync_s": round(await wait_in_sync(block, broker_id, timeout_s), 3)}
    try:
        from flows.verify_isr import IsrNotFull, wait_isr_full
    except ImportError:  # a trimmed install without the verifier: the replica check above stands
        return timings
    alive, parts = await asyncio.to_thread(_metadata, block, make_admin(block.confluent_config()))
    hosted = {b for reps in parts["replicas"] for b in reps} if not parts.empty else set()
    if hosted - alive:
        timings["isr_full_skipped_other_brokers_down"] = float(len(hosted - alive))
        return timings
    t1 = time.monotonic()
    try:
        await wait_isr_full(block, brokers=[broker_id], timeout_s=max(1.0, timeout_s - (t1 - t0)), poll_s=_POLL_S)
    except IsrNotFull as exc:
        raise TimeoutError(str(exc)) from exc
    timings["isr_full_s"] = round(time.monotonic() - t1, 3)
    return timings


# -- the flow ------------------------------------------------------------------------------------------


@flow(name="replace-broker", retries=0)
async def replace_broker(cluster: str, params: ReplaceBrokerParams) -> ReplaceBrokerResult:
    """Replace one broker of ``cluster`` (see the module docstring for the guarantees)."""
    b = params.broker_id
    try:
        res = await _replace_broker(cluster, params)
    except ReplaceFailed as exc:
        await _outcome_artifact(cluster, b, "FAILED", str(exc), {})
        raise
    await _outcome_artifact(cluster, b, res.status.value.upper(), res.message, res.timings)
    return res


async def _outcome_artifact(cluster: str, b: int, status: str, message: str, timings: dict[str, float]) -> None:
    """Every outcome (not only success) on the run's page: a refusal names its partitions there."""
    try:
        await acreate_markdown_artifact(
            key=f"replace-broker-{cluster}",
            markdown=f"# Broker {b} of `{cluster}`: {status}\n\n{message}\n\nTimings: `{timings}`",
            description=f"Broker {b} replacement: {status.lower()}",
        )
    except Exception as exc:  # a report, never the outcome itself
        get_run_logger().warning("could not write the outcome artifact: %s", exc)


async def _replace_broker(cluster: str, params: ReplaceBrokerParams) -> ReplaceBrokerResult:
    logger = get_run_logger()
    block = await load_cluster(cluster)
    b = params.broker_id
    audit = FlowAudit(block, actor=params.actor, brokers=(b,))
    cooldown_s = params.cooldown_s if params.cooldown_s is not None else block.policy.replacement_cooldown_s
    verify_s = params.verify_timeout_s or block.policy.verify_timeout_s
    timings: dict[str, float] = {}
    t_start = time.monotonic()

    def result(status: ReplaceStatus, message: str, **extra: Any) -> ReplaceBrokerResult:
        timings["total_s"] = round(time.monotonic() - t_start, 3)
        logger.info("[%s] broker %s: %s: %s", cluster, b, status.value, message)
        return ReplaceBrokerResult(
            cluster=cluster, broker_id=b, status=status, message=message, dry_run=params.dry_run,
            timings=dict(timings), audit=audit.records, **extra,
        )  # fmt: skip

    # Concurrently (both are Prefect API reads on the way to the repair); a missing or mistyped
    # replacer fails here, before any lock is taken.
    replacer, _ = await asyncio.gather(aload_replacer(block), coordination.aensure_cluster_limits(cluster))

    async with AsyncExitStack() as stack:
        handles: list[coordination.LockHandle] = []
        if not params.dry_run:  # a dry run changes nothing, so it never blocks a real action
            audit.start_warming()
            try:
                for kind in ("replace", "mutate"):
                    handles.append(await stack.enter_async_context(coordination.acluster_lock(cluster, kind=kind)))
            except coordination.ClusterBusy as exc:
                await audit(AuditStatus.SKIPPED, f"broker {b} not replaced: {exc}", reason=params.reason, why="busy")
                return result(ReplaceStatus.SKIPPED, str(exc))

        remaining = await coordination.acooldown_remaining(cluster, ACTION, cooldown_s)
        timings["prepare_s"] = round(time.monotonic() - t_start, 3)  # block, replacer, locks, cooldown
        if remaining > 0:
            msg = (
                f"broker {b} not replaced: cooling down, {remaining:.0f}s left of the {cooldown_s:.0f}s "
                "replacement cooldown (counted from the last successful replacement)"
            )
            await audit(
                AuditStatus.SKIPPED, msg, why="cooldown", remaining_s=round(remaining, 1), dry_run=params.dry_run
            )
            return result(ReplaceStatus.SKIPPED, msg, remaining_cooldown_s=round(remaining, 1))

        t0 = time.monotonic()
        collected, ev = await fresh_evaluation(block)
        timings["check_s"] = round(time.monotonic() - t0, 3)
        snap = collected.snapshot
        row = broker_row(snap, b)

        if params.require_finding and not heal_findings(ev, b):
            msg = f"broker {b} no longer needs healing (a fresh health check finds nothing to act on)"
            await audit(AuditStatus.SKIPPED, msg, why="not needed", dry_run=params.dry_run)
            return result(ReplaceStatus.SKIPPED, msg)

        reasons, partitions = refusal_reasons(snap, ev, b)
        if reasons:
            msg = f"refusing to replace broker {b}: " + "; ".join(reasons)
            await audit(AuditStatus.REFUSED, msg, partitions=partitions[:200], dry_run=params.dry_run)
            return result(ReplaceStatus.REFUSED, msg, partitions=partitions)

        host = _host(row)
        restart = params.try_restart_first and replacer.supports_restart and maybe_dead(row)
        if restart and await coordination.acooldown_remaining(cluster, restart_action(b), cooldown_s) > 0:
            restart = False  # restarted recently and still needs healing: a restart does not help
        if params.dry_run:
            plan = await asyncio.to_thread(replacer.plan, b, host)
            first = "restart it first (it may only be hung), then " if restart else ""
            msg = f"dry run: would {first}replace broker {b}: {plan.summary}"
            await audit(AuditStatus.PLANNED, msg, plan=plan.to_record(), reason=params.reason, dry_run=True)
            return result(ReplaceStatus.PLANNED, msg, outcome=plan.to_record())

        try:
            if restart:
                fixed = await _restart_first(block, replacer, b, host, params, audit, handles, timings, verify_s)
                if fixed is not None:
                    return result(ReplaceStatus.RESTARTED, fixed)
                # the restart did not help: judge safety again on the state it left
                collected, ev = await fresh_evaluation(block)
                reasons, partitions = refusal_reasons(collected.snapshot, ev, b)
                if reasons:
                    msg = f"refusing to replace broker {b} after its restart: " + "; ".join(reasons)
                    await audit(AuditStatus.REFUSED, msg, partitions=partitions[:200])
                    return result(ReplaceStatus.REFUSED, msg, partitions=partitions)
                host = _host(broker_row(collected.snapshot, b)) or host
            return await _replace(block, replacer, b, host, params, audit, handles, timings, verify_s, result)
        except ReplaceFailed:
            raise
        except Exception as exc:  # anything unexpected after a change may have been made
            msg = f"replacement of broker {b} failed: {type(exc).__name__}: {exc}"
            await audit(AuditStatus.FAILED, msg)
            raise ReplaceFailed(msg) from exc


def _ensure_held(handles: list[coordination.LockHandle]) -> None:
    for h in handles:
        h.ensure_held()


async def _replace(
    block: KafkaCluster,
    replacer: Replacer,
    b: int,
    host: str,
    params: ReplaceBrokerParams,
    audit: FlowAudit,
    handles: list[coordination.LockHandle],
    timings: dict[str, float],
    verify_s: float,
    result: Any,
) -> ReplaceBrokerResult:
    _ensure_held(handles)
    # The audit is a trail, not a gate (a failed write never stopped an action): the "started"
    # record is stamped now and written while the replacer starts, instead of before it.
    started = asyncio.create_task(
        audit(AuditStatus.STARTED, f"replacing broker {b} ({replacer.kind} replacer)", reason=params.reason, host=host)
    )
    t0 = time.monotonic()
    try:
        try:
            outcome = await asyncio.to_thread(replacer.replace, b, host)
        finally:
            await started  # "started" lands before any "failed"/"finished" record
    except ReplacerError as exc:
        changed = {True: "something was changed", False: "nothing was changed", None: "it may have changed things"}
        msg = f"replacer failed for broker {b} ({changed[exc.changed]}): {exc}"
        await audit(AuditStatus.FAILED, msg, changed=exc.changed, replacer=exc.details)
        raise ReplaceFailed(msg) from exc
    timings["replace_s"] = round(time.monotonic() - t0, 3)
    try:
        timings["register_s"] = round(await wait_registered(block, b, params.register_timeout_s), 3)
        _ensure_held(handles)
        timings.update(await verify_after(block, b, verify_s))
    except TimeoutError as exc:
        msg = f"broker {b} was replaced ({outcome.summary}) but did not recover: {exc}"
        await audit(AuditStatus.FAILED, msg, outcome=outcome.to_record(), timings=timings)
        raise ReplaceFailed(msg) from exc
    await coordination.arecord_success(block.name, ACTION)
    msg = f"broker {b} replaced and back in sync: {outcome.summary}"
    await audit(AuditStatus.FINISHED, msg, outcome=outcome.to_record(), timings=timings)
    return result(ReplaceStatus.REPLACED, msg, outcome=outcome.to_record())


async def _restart_first(
    block: KafkaCluster,
    replacer: Replacer,
    b: int,
    host: str,
    params: ReplaceBrokerParams,
    audit: FlowAudit,
    handles: list[coordination.LockHandle],
    timings: dict[str, float],
    verify_s: float,
) -> str | None:
    """Restart ``b``; return a message if that healed it, None if it still needs replacing.

    "Healed" means: registered again, its replicas back in sync, and no liveness or disk finding
    about it. Latency/idle outliers are NOT judged here: a JVM that just started is cold and slow
    for a while. If it stays degraded, a later health check decides again, and because this
    restart is remembered (``restart_action``) the next attempt replaces instead of restarting.
    """
    _ensure_held(handles)
    await audit(AuditStatus.STARTED, f"restarting broker {b} before replacing it", action=RESTART_ACTION)
    t0 = time.monotonic()
    try:
        await asyncio.to_thread(replacer.restart, b, host)
        await wait_registered(block, b, params.restart_check_s)
        timings["in_sync_s"] = round(await wait_in_sync(block, b, min(verify_s, params.restart_check_s)), 3)
    except (ReplacerError, TimeoutError) as exc:
        await audit(AuditStatus.FAILED, f"restart did not bring broker {b} back: {exc}", action=RESTART_ACTION)
        return None
    timings["restart_s"] = round(time.monotonic() - t0, 3)
    await coordination.arecord_success(block.name, restart_action(b))
    _, ev = await fresh_evaluation(block)
    still = [f for f in ev.findings if b in f.brokers and f.rule in _STILL_BROKEN_RULES]
    if still:
        await audit(
            AuditStatus.FAILED, f"broker {b} is still unhealthy after a restart ({still[0].summary}); replacing it",
            action=RESTART_ACTION,
        )  # fmt: skip
        return None
    msg = f"broker {b} restarted and back in sync; no replacement needed"
    await audit(AuditStatus.FINISHED, msg, action=RESTART_ACTION, timings=timings)
    return msg
