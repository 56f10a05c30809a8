"""Cross-process coordination through the Prefect server: cluster locks, cooldowns, state.

Every kafka-medic process (scheduled health checks, remediation runs, a CLI on a laptop) talks to
the same Prefect server, so it is the natural place for the little shared state healing needs:

* **Locks** are Prefect global concurrency limits of size 1: ``kafka-medic-mutate-<cluster>``
  (every mutating action on a cluster holds it) and ``kafka-medic-replace-<cluster>`` (a broker
  replacement holds it for its whole, long, duration). Limits are visible and resettable in the
  Prefect UI (Concurrency page) and with ``prefect gcl``.
* **Cooldowns, broker down-since times and maintenance mode** are Prefect Variables, so a restart
  or a second process sees them, and an operator can read them in the UI.

Why the locks do not use ``prefect.concurrency.sync.concurrency`` (prefect 3.9.1; (1) and (4) measured,
(2) and (3) read in its source):
(1) every refused fail-fast attempt (``max_retries=0``) logs an ERROR line "Service
'ConcurrencySlotAcquisitionWithLeaseService' failed to process item" with no limit name, so a
routine "cluster busy" would look like a crash in the logs; (2) attempts on the same limit in one
process are queued behind each other in a per-process service, and ``timeout_seconds`` only
starts when an attempt reaches the head of that queue, so a "wait at most N s" could wait much
longer; (3) while waiting, the client sleeps for the server's ``Retry-After`` (up to 30 s by
default) and can miss a release (see PrefectHQ/prefect#23183); (4) ``timeout_seconds=0`` raises even
when the slot is free. We therefore call the same server endpoints (increment-with-lease, lease
renewal, decrement-with-lease) directly through the Prefect client, with exactly the semantics of
``strict=True`` (a missing limit is an error, never an unprotected run) plus: a missing, disabled
or resized (limit != 1) limit is refused, fail-fast makes exactly one attempt, a bounded wait polls at
most every second and never overruns its deadline by more than one request, and losing the lease
is reported on the handle instead of by killing the body mid-operation.

Measured on the SQLite-backed server: two attempts arriving at the same instant can make one of
them hit "database is locked" (HTTP 503), which the Prefect client retries after ~2 s; so even a
fail-fast attempt may take ~2 s under contention. Mutual exclusion is unaffected.

Every function raises :class:`CoordinationError` with the API URL when the Prefect API cannot be
reached or refuses a request, so a flow fails with one clear line instead of an httpx traceback.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
    VariableCreate,
    VariableUpdate,
)
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from blocks.kafka_cluster import check_cluster_name
from kafka_medic.errors import MedicError

logger = logging.getLogger("kafka_medic.coordination")

MUTATE_LIMIT_PREFIX = "kafka-medic-mutate-"
REPLACE_LIMIT_PREFIX = "kafka-medic-replace-"
VARIABLE_PREFIX = "kafka_medic__"
VARIABLE_TAG = "kafka-medic"

DEFAULT_LEASE_S = 300.0
MIN_LEASE_S = 60.0  # the server refuses shorter leases
MAX_WAIT_S = 24 * 3600.0
_POLL_FIRST_S = 0.1
_POLL_MAX_S = 1.0
_RENEW_FRACTION = 0.5  # renew at half the lease: a failed renewal still leaves time to retry
#: A lease the server no longer knows while this much of it is still left (by our own clock) was
#: forgotten (server restarted with in-memory lease storage), not expired: see _lease_forgotten.
_FORGOTTEN_MARGIN_S = 15.0
_ACTION_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")

LockKind = Literal["mutate", "replace"]


class CoordinationError(MedicError):
    """The Prefect API is unreachable, refused a request, or holds unusable coordination state."""


class ClusterBusy(MedicError):
    """Another action holds the cluster's lock; nothing was changed."""


class LockLost(MedicError):
    """The lock's lease could not be renewed: another action may now hold the lock."""


# -- errors and names ------------------------------------------------------------------------------


def _api_url() -> str:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or "the ephemeral in-process Prefect server"


def _describe_http_error(exc: httpx.HTTPStatusError) -> str:
    try:
        detail = exc.response.json().get("detail")
    except Exception:
        detail = None
    text = f"HTTP {exc.response.status_code}"
    return f"{text}: {detail}" if detail else text


@contextmanager
def prefect_api_errors(doing: str) -> Iterator[None]:
    """Turn transport and HTTP errors from the Prefect client into one-line CoordinationErrors."""
    try:
        yield
    except httpx.HTTPStatusError as exc:
        raise CoordinationError(f"Prefect API at {_api_url()} refused {doing}: {_describe_http_error(exc)}") from exc
    except (httpx.HTTPError, OSError) as exc:
        raise CoordinationError(
            f"Prefect API at {_api_url()} is unreachable while {doing}: {type(exc).__name__}: {exc}. "
            "Check PREFECT_API_URL and that the Prefect server is running."
        ) from exc


def mutate_limit_name(cluster_name: str) -> str:
    """Name of the global concurrency limit every mutating action on the cluster takes."""
    return MUTATE_LIMIT_PREFIX + check_cluster_name(cluster_name)


def replace_limit_name(cluster_name: str) -> str:
    """Name of the global concurrency limit a broker replacement holds for its whole duration."""
    return REPLACE_LIMIT_PREFIX + check_cluster_name(cluster_name)


def _check_action(action: str) -> str:
    if len(action) > 64 or not _ACTION_RE.match(action):
        raise ValueError(
            f"action {action!r} must be 1-64 lowercase letters/digits, words separated by single '-' or '_'"
        )
    return action


def variable_name(cluster_name: str, *parts: str) -> str:
    """``kafka_medic__<cluster>__<part>__...``: Variable names allow [a-z0-9_-], up to 255 chars.

    Cluster names cannot contain ``_`` and parts cannot contain ``__``, so names never collide.
    """
    return "__".join([VARIABLE_PREFIX.rstrip("_"), check_cluster_name(cluster_name), *parts])


def _utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (e.g. datetime.now(UTC)), got naive {value!r}")
    return value.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


# -- concurrency limits -----------------------------------------------------------------------------


def ensure_cluster_limits(cluster_name: str) -> tuple[str, str]:
    """Create (or repair) the cluster's two limits: size 1 and active. Idempotent and race-safe.

    Repairing matters: a limit disabled or resized in the UI would otherwise let two actions run
    at once. Returns ``(mutate_limit_name, replace_limit_name)``.
    """
    names = (mutate_limit_name(cluster_name), replace_limit_name(cluster_name))
    with prefect_api_errors(f"creating concurrency limits {list(names)}"), get_client(sync_client=True) as client:
        for name in names:
            # Read first: creating an existing limit makes the server log an IntegrityError traceback.
            try:
                limit = client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                try:
                    client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(name=name, limit=1, active=True)
                    )
                    continue
                except ObjectAlreadyExists:  # created concurrently by another process
                    limit = client.read_global_concurrency_limit_by_name(name)
            if limit.limit != 1 or not limit.active:
                client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=1, active=True))
    return names


async def aensure_cluster_limits(cluster_name: str) -> tuple[str, str]:
    """Async twin of :func:`ensure_cluster_limits`."""
    names = (mutate_limit_name(cluster_name), replace_limit_name(cluster_name))
    with prefect_api_errors(f"creating concurrency limits {list(names)}"):
        async with get_client() as client:
            for name in names:
                try:
                    limit = await client.read_global_concurrency_limit_by_name(name)
                except ObjectNotFound:
                    try:
                        await client.create_global_concurrency_limit(
                            GlobalConcurrencyLimitCreate(name=name, limit=1, active=True)
                        )
                        continue
                    except ObjectAlreadyExists:
                        limit = await client.read_global_concurrency_limit_by_name(name)
                if limit.limit != 1 or not limit.active:
                    await client.update_global_concurrency_limit(
                        name, GlobalConcurrencyLimitUpdate(limit=1, active=True)
                    )
    return names


# -- locks ---------------------------------------------------------------------------------------------

# Limits held by the current context: a nested attempt on the same limit would only wait for
# itself, so it fails at once with a clear message instead.
_held: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("kafka_medic_held_locks", default=frozenset())


@dataclass
class LockHandle:
    """A held cluster lock. Check :attr:`lost` (or call :meth:`ensure_held`) before each step.

    The lease is renewed in the background; if renewal fails until the lease expires (Prefect API
    down for minutes), another process may take the lock, so a careful holder stops mutating.
    """

    cluster_name: str
    limit_name: str
    lease_id: UUID
    acquired_at: datetime
    _lost: threading.Event = field(default_factory=threading.Event, repr=False)
    #: Monotonic time before which the server cannot have expired the lease: the send time of the
    #: request that (re)started it plus its duration (the server counts from its later receipt).
    valid_until: float = field(default=0.0, repr=False)
    #: The server answered "no such lease" while it was still valid: it forgot it (see _lease_forgotten).
    forgotten: bool = field(default=False, repr=False)

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def ensure_held(self) -> None:
        """Raise LockLost if the lease could not be kept; call before each mutating step."""
        if self.lost:
            raise LockLost(
                f"lost the lock {self.limit_name!r} of cluster {self.cluster_name!r}: its lease could not be "
                "renewed (Prefect API unreachable?); another action may be running, so stop here"
            )


def _check_lock_args(wait_s: float, lease_s: float) -> None:
    if not (math.isfinite(wait_s) and 0 <= wait_s <= MAX_WAIT_S):
        raise ValueError(f"wait_s must be between 0 and {MAX_WAIT_S:.0f} seconds, got {wait_s!r}")
    if not (math.isfinite(lease_s) and MIN_LEASE_S <= lease_s <= 86_400):
        raise ValueError(f"lease_s must be between {MIN_LEASE_S:.0f} and 86400 seconds, got {lease_s!r}")


def _limit_name(cluster_name: str, kind: LockKind) -> str:
    return mutate_limit_name(cluster_name) if kind == "mutate" else replace_limit_name(cluster_name)


def _current_holder() -> ConcurrencyLeaseHolder | None:
    """Record the flow/task run holding the lease (shown by Prefect with the lease)."""
    from prefect.context import FlowRunContext, TaskRunContext

    task_ctx = TaskRunContext.get()
    if task_ctx is not None:
        return ConcurrencyLeaseHolder(type="task_run", id=task_ctx.task_run.id)
    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        return ConcurrencyLeaseHolder(type="flow_run", id=flow_ctx.flow_run.id)
    return None


def _check_limit(limit: Any, name: str, cluster_name: str) -> None:
    if not limit.active or limit.limit != 1:
        state = "disabled" if not limit.active else f"set to {limit.limit} slots"
        raise CoordinationError(
            f"concurrency limit {name!r} is {state}, so it cannot guarantee one action at a time; "
            f"run ensure_cluster_limits({cluster_name!r}) to repair it"
        )


def _missing_limit(name: str, cluster_name: str) -> CoordinationError:
    return CoordinationError(
        f"concurrency limit {name!r} does not exist; run ensure_cluster_limits({cluster_name!r}) "
        "(or save the cluster's blocks) first"
    )


def _busy(cluster_name: str, name: str, kind: LockKind, wait_s: float) -> ClusterBusy:
    what = "a broker replacement is" if kind == "replace" else "another kafka-medic action is"
    waited = f" after waiting {wait_s:g}s" if wait_s > 0 else ""
    return ClusterBusy(
        f"cluster {cluster_name!r} is busy: {what} holding {name!r}{waited}; nothing was changed. "
        f"If nothing is running (a crashed holder on a server without lease reclaim), free it with "
        f"`prefect gcl update {name} --active-slots 0`."
    )


def _lease_from(response: httpx.Response, name: str, cluster_name: str) -> UUID:
    body = response.json()
    if not body.get("limits"):
        raise _missing_limit(name, cluster_name)  # same meaning as strict=True
    return UUID(body["lease_id"])


def _poll_delay(attempt: int, remaining: float) -> float:
    # Exponential from 0.1 s to 1 s, jittered so several waiters do not poll in lockstep.
    base = min(_POLL_MAX_S, _POLL_FIRST_S * (2 ** min(attempt, 10)))
    return max(0.0, min(remaining, base * random.uniform(0.8, 1.2)))


def _renewal_loop(handle: LockHandle, lease_s: float, stop: threading.Event) -> None:
    """Renew the lease at half its duration; mark the handle lost if the lease runs out."""
    expires = handle.valid_until or time.monotonic() + lease_s
    delay = lease_s * _RENEW_FRACTION
    try:
        with get_client(sync_client=True) as client:
            while not stop.wait(delay):
                started = time.monotonic()
                try:
                    client.renew_concurrency_lease(handle.lease_id, lease_s)
                except httpx.HTTPStatusError as exc:
                    if exc.response.status_code < 500:  # 410 Gone: lease expired, revoked or forgotten
                        handle.forgotten = _gone_early(handle, exc)
                        why = " (it forgot a valid lease: restarted?)" if handle.forgotten else ""
                        _mark_lost(handle, f"the server refused the renewal ({_describe_http_error(exc)}){why}")
                        return
                    failure = _describe_http_error(exc)
                except Exception as exc:
                    failure = f"{type(exc).__name__}: {exc}"
                else:
                    expires = handle.valid_until = started + lease_s
                    delay = lease_s * _RENEW_FRACTION
                    continue
                left = expires - time.monotonic()
                if left <= 0:
                    _mark_lost(handle, f"renewal kept failing until the lease expired ({failure})")
                    return
                logger.warning("renewing lease of %s failed (%s); retrying", handle.limit_name, failure)
                delay = max(0.5, min(5.0, left / 3))
    except Exception as exc:  # could not even build a client
        _mark_lost(handle, f"{type(exc).__name__}: {exc}")


def _mark_lost(handle: LockHandle, why: str) -> None:
    handle._lost.set()
    logger.error(
        "lost lock %s of cluster %s: %s; another action may now hold it",
        handle.limit_name,
        handle.cluster_name,
        why,
    )


def _start_renewal(handle: LockHandle, lease_s: float) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    # Threads do not inherit contextvars; copy them so the thread uses the same Prefect settings
    # (API URL) as the caller, e.g. inside temporary_settings().
    ctx = contextvars.copy_context()
    thread = threading.Thread(
        target=ctx.run,
        args=(_renewal_loop, handle, lease_s, stop),
        name=f"kafka-medic-lease-{handle.limit_name}",
        daemon=True,
    )
    thread.start()
    return stop, thread


def _lease_forgotten(client: Any, handle: LockHandle) -> bool:
    """True when the server no longer knows a lease that cannot have expired yet.

    A Prefect server keeps leases in memory by default (``PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE``)
    but slot counts in its database: after a server restart the slot stays taken with no lease
    behind it, so releasing "with lease" is a silent no-op and the repossessor (which works from
    leases) never frees it -- the cluster would stay locked forever. A renewal answered 410 while
    the lease still had time left by our clock tells that apart from a real expiry (after which the
    repossessor freed the slot and someone else may hold it now). On a live lease the renewal only
    extends it by the minimum, just before it is released.
    """
    if handle.forgotten:  # the renewal thread already saw it
        return True
    if handle.valid_until <= 0:  # an orphan handle: nothing is known about its lease
        return False
    try:
        client.renew_concurrency_lease(handle.lease_id, MIN_LEASE_S)
    except httpx.HTTPStatusError as exc:
        return _gone_early(handle, exc)
    return False


def _gone_early(handle: LockHandle, exc: httpx.HTTPStatusError) -> bool:
    """A 410 for a lease that, by our clock, still had a safe margin left: forgotten, not expired."""
    return exc.response.status_code == 410 and time.monotonic() < handle.valid_until - _FORGOTTEN_MARGIN_S


def _release_sync(handle: LockHandle) -> None:
    try:
        with prefect_api_errors(f"releasing {handle.limit_name!r}"), get_client(sync_client=True) as client:
            if _lease_forgotten(client, handle):
                # Our slot is still counted and nobody else could take it since: free it by name.
                held_s = max(1.0, (_now() - handle.acquired_at).total_seconds())
                client.release_concurrency_slots(names=[handle.limit_name], slots=1, occupancy_seconds=held_s)
                logger.warning(
                    "the Prefect server forgot the lease of %s (restarted with in-memory lease storage?); "
                    "freed its slot by name so the cluster does not stay locked",
                    handle.limit_name,
                )
                return
            client.release_concurrency_slots_with_lease(handle.lease_id)
    except CoordinationError as exc:
        # Raising here would hide the body's own result or error, and cannot free the slot
        # anyway; the lease expires by itself (on a real server it is then reclaimed).
        logger.error(
            "could not release %s (%s); it stays held until its lease expires, or free it with "
            "`prefect gcl update %s --active-slots 0`",
            handle.limit_name,
            exc,
            handle.limit_name,
        )


def _enter_held(name: str) -> contextvars.Token[frozenset[str]]:
    held = _held.get()
    if name in held:
        raise CoordinationError(
            f"lock {name!r} is already held by this flow/context; the cluster lock is not re-entrant: "
            "take it once in the outermost mutating step"
        )
    return _held.set(held | {name})


@contextmanager
def cluster_lock(
    cluster_name: str, *, wait_s: float = 0, kind: LockKind = "mutate", lease_s: float = DEFAULT_LEASE_S
) -> Iterator[LockHandle]:
    """Hold the cluster's lock (``kind="mutate"`` or ``"replace"``) for the ``with`` body.

    ``wait_s=0`` fails fast: one attempt, no retry, :class:`ClusterBusy` if another holder has it.
    ``wait_s>0`` retries for at most that long, then raises ClusterBusy. A missing, disabled or
    resized limit raises :class:`CoordinationError` (never runs unprotected). The lock is released
    when the body ends, also on exceptions. Not re-entrant.
    """
    _check_lock_args(wait_s, lease_s)
    name = _limit_name(cluster_name, kind)
    token = _enter_held(name)
    try:
        handle = _acquire_sync(cluster_name, name, kind, wait_s, lease_s)
        stop, thread = _start_renewal(handle, lease_s)
        try:
            yield handle
        finally:
            stop.set()
            thread.join(timeout=5)
            _release_sync(handle)
    finally:
        _held.reset(token)


def _acquire_sync(cluster_name: str, name: str, kind: LockKind, wait_s: float, lease_s: float) -> LockHandle:
    deadline = time.monotonic() + wait_s
    holder = _current_holder()
    with prefect_api_errors(f"acquiring {name!r}"), get_client(sync_client=True) as client:
        try:
            _check_limit(client.read_global_concurrency_limit_by_name(name), name, cluster_name)
        except ObjectNotFound:
            raise _missing_limit(name, cluster_name) from None
        attempt = 0
        while True:
            sent = time.monotonic()
            try:
                response = client.increment_concurrency_slots_with_lease(
                    names=[name], slots=1, mode="concurrency", lease_duration=lease_s, holder=holder
                )
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 423:  # 423 Locked: held by someone else
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _busy(cluster_name, name, kind, wait_s) from None
                time.sleep(_poll_delay(attempt, remaining))
                attempt += 1
                continue
            lease_id = _lease_from(response, name, cluster_name)
            return LockHandle(cluster_name, name, lease_id, _now(), valid_until=sent + lease_s)


@asynccontextmanager
async def acluster_lock(
    cluster_name: str, *, wait_s: float = 0, kind: LockKind = "mutate", lease_s: float = DEFAULT_LEASE_S
) -> AsyncIterator[LockHandle]:
    """Async twin of :func:`cluster_lock` (``async with acluster_lock(...) as handle:``)."""
    _check_lock_args(wait_s, lease_s)
    name = _limit_name(cluster_name, kind)
    token = _enter_held(name)
    try:
        handle = await _acquire_async(cluster_name, name, kind, wait_s, lease_s)
        stop, thread = _start_renewal(handle, lease_s)
        try:
            yield handle
        finally:
            stop.set()
            # Release even if the body was cancelled; the blocking bits run in a thread.
            await asyncio.shield(asyncio.to_thread(_stop_and_release, handle, thread))
    finally:
        _held.reset(token)


def _stop_and_release(handle: LockHandle, thread: threading.Thread) -> None:
    thread.join(timeout=5)
    _release_sync(handle)


async def _acquire_async(cluster_name: str, name: str, kind: LockKind, wait_s: float, lease_s: float) -> LockHandle:
    deadline = time.monotonic() + wait_s
    holder = _current_holder()
    with prefect_api_errors(f"acquiring {name!r}"):
        async with get_client() as client:
            try:
                _check_limit(await client.read_global_concurrency_limit_by_name(name), name, cluster_name)
            except ObjectNotFound:
                raise _missing_limit(name, cluster_name) from None
            attempt = 0
            while True:
                sent = time.monotonic()
                request = asyncio.ensure_future(
                    client.increment_concurrency_slots_with_lease(
                        names=[name], slots=1, mode="concurrency", lease_duration=lease_s, holder=holder
                    )
                )
                try:
                    response = await asyncio.shield(request)
                except asyncio.CancelledError:
                    # Cancelled mid-request: the server may still grant the slot; give it back.
                    request.add_done_callback(_release_orphan)
                    raise
                except httpx.HTTPStatusError as exc:
                    if exc.response.status_code != 423:
                        raise
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise _busy(cluster_name, name, kind, wait_s) from None
                    await asyncio.sleep(_poll_delay(attempt, remaining))
                    attempt += 1
                    continue
                lease_id = _lease_from(response, name, cluster_name)
                return LockHandle(cluster_name, name, lease_id, _now(), valid_until=sent + lease_s)


def _release_orphan(request: asyncio.Future[httpx.Response]) -> None:
    if request.cancelled() or request.exception() is not None:
        return
    try:
        body = request.result().json()
        if not body.get("limits"):
            return
        lease_id = UUID(body["lease_id"])
    except Exception:
        return
    orphan = LockHandle("?", ",".join(lim["name"] for lim in body["limits"]), lease_id, _now())
    ctx = contextvars.copy_context()
    threading.Thread(target=ctx.run, args=(_release_sync, orphan), daemon=True).start()


# -- variables ------------------------------------------------------------------------------------------


def _read_var(name: str) -> Any | None:
    with prefect_api_errors(f"reading variable {name!r}"), get_client(sync_client=True) as client:
        variable = client.read_variable_by_name(name)
    return None if variable is None else variable.value


async def _aread_var(name: str) -> Any | None:
    with prefect_api_errors(f"reading variable {name!r}"):
        async with get_client() as client:
            variable = await client.read_variable_by_name(name)
    return None if variable is None else variable.value


def _var_models(name: str, value: Any, cluster_name: str) -> tuple[VariableCreate, VariableUpdate]:
    tags = [VARIABLE_TAG, f"cluster:{cluster_name}"]
    try:
        return (
            VariableCreate(name=name, value=value, tags=tags),
            VariableUpdate(name=name, value=value, tags=tags),
        )
    except ValidationError as exc:
        # e.g. longer than Prefect's 5000-character limit for a variable value
        reason = "; ".join(err["msg"] for err in exc.errors())
        raise CoordinationError(f"cannot store variable {name!r}: {reason}") from None


def _write_var(name: str, value: Any, cluster_name: str) -> None:
    """Create or overwrite a variable; safe against a concurrent first write (409)."""
    create, update = _var_models(name, value, cluster_name)
    with prefect_api_errors(f"writing variable {name!r}"), get_client(sync_client=True) as client:
        if client.read_variable_by_name(name) is None:
            try:
                client.create_variable(create)
                return
            except ObjectAlreadyExists:
                pass
        client.update_variable(update)


async def _awrite_var(name: str, value: Any, cluster_name: str) -> None:
    create, update = _var_models(name, value, cluster_name)
    with prefect_api_errors(f"writing variable {name!r}"):
        async with get_client() as client:
            if await client.read_variable_by_name(name) is None:
                try:
                    await client.create_variable(create)
                    return
                except ObjectAlreadyExists:
                    pass
            await client.update_variable(update)


def _bad_stored(name: str, why: str) -> CoordinationError:
    # Refuse rather than guess: treating a corrupt cooldown as "never" would allow an action.
    return CoordinationError(f"variable {name!r} holds an invalid value ({why}); fix or delete it in Prefect")


# -- cooldowns ------------------------------------------------------------------------------------------


def _cooldown_var(cluster_name: str, action: str) -> str:
    return variable_name(cluster_name, _check_action(action), "last_success")


def _parse_when(name: str, raw: Any) -> datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _bad_stored(name, f"expected an ISO-8601 time string, got {type(raw).__name__}")
    try:
        return _utc(datetime.fromisoformat(raw), "stored time")
    except ValueError as exc:
        raise _bad_stored(name, str(exc)) from None


def last_success(cluster_name: str, action: str) -> datetime | None:
    """When ``action`` last succeeded on the cluster (UTC), or None if never recorded."""
    name = _cooldown_var(cluster_name, action)
    return _parse_when(name, _read_var(name))


async def alast_success(cluster_name: str, action: str) -> datetime | None:
    """Async twin of :func:`last_success`."""
    name = _cooldown_var(cluster_name, action)
    return _parse_when(name, await _aread_var(name))


def record_success(cluster_name: str, action: str, when: datetime | None = None) -> None:
    """Record that ``action`` succeeded at ``when`` (default now; must be timezone-aware)."""
    name = _cooldown_var(cluster_name, action)
    _write_var(name, _utc(when or _now(), "when").isoformat(), cluster_name)


async def arecord_success(cluster_name: str, action: str, when: datetime | None = None) -> None:
    """Async twin of :func:`record_success`."""
    name = _cooldown_var(cluster_name, action)
    await _awrite_var(name, _utc(when or _now(), "when").isoformat(), cluster_name)


def remaining_cooldown(last: datetime | None, cooldown_s: float, now: datetime) -> float:
    """Seconds left before the action may run again; pure, so rules can be tested without I/O.

    A last success in the future (clock skew between hosts) counts as "just now": the safe side.
    """
    if not (math.isfinite(cooldown_s) and cooldown_s >= 0):
        raise ValueError(f"cooldown_s must be a finite number >= 0, got {cooldown_s!r}")
    if last is None:
        return 0.0
    elapsed = max(0.0, (_utc(now, "now") - _utc(last, "last")).total_seconds())
    return max(0.0, cooldown_s - elapsed)


def cooldown_remaining(cluster_name: str, action: str, cooldown_s: float, now: datetime | None = None) -> float:
    """Seconds until ``action`` may run again on the cluster (0.0 = allowed now).

    Check it while holding the cluster lock, then :func:`record_success` before releasing, so two
    processes cannot both pass the check.
    """
    return remaining_cooldown(last_success(cluster_name, action), cooldown_s, now or _now())


async def acooldown_remaining(cluster_name: str, action: str, cooldown_s: float, now: datetime | None = None) -> float:
    """Async twin of :func:`cooldown_remaining`."""
    return remaining_cooldown(await alast_success(cluster_name, action), cooldown_s, now or _now())


# -- broker down-since map ------------------------------------------------------------------------------

_DOWN_SINCE_VERSION = 1


def _down_var(cluster_name: str) -> str:
    return variable_name(cluster_name, "down_since")


def _encode_down_since(mapping: dict[int, datetime]) -> dict[str, Any]:
    # Grouped by time: brokers that went down together share one timestamp, which keeps a mass
    # failure of hundreds of brokers inside Prefect's 5000-character variable limit.
    by_time: dict[str, list[int]] = {}
    for broker_id, since in sorted(mapping.items()):
        if isinstance(broker_id, bool) or not isinstance(broker_id, int) or broker_id < 0:
            raise ValueError(f"broker ids must be ints >= 0, got {broker_id!r}")
        by_time.setdefault(_utc(since, f"down-since of broker {broker_id}").isoformat(), []).append(broker_id)
    return {"version": _DOWN_SINCE_VERSION, "since": by_time}


def _decode_down_since(name: str, raw: Any) -> dict[int, datetime]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or raw.get("version") != _DOWN_SINCE_VERSION or not isinstance(raw.get("since"), dict):
        raise _bad_stored(name, f"expected {{'version': {_DOWN_SINCE_VERSION}, 'since': {{time: [broker ids]}}}}")
    out: dict[int, datetime] = {}
    for when, brokers in raw["since"].items():
        since = _parse_when(name, when)
        if not isinstance(brokers, list) or not all(isinstance(b, int) and not isinstance(b, bool) for b in brokers):
            raise _bad_stored(name, f"broker list for {when} is not a list of ints")
        for broker_id in brokers:
            if broker_id in out:
                raise _bad_stored(name, f"broker {broker_id} appears twice")
            out[broker_id] = since  # type: ignore[assignment]
    return out


def load_down_since(cluster_name: str) -> dict[int, datetime]:
    """Broker id -> since when it has been seen down (UTC); empty if nothing is stored."""
    name = _down_var(cluster_name)
    return _decode_down_since(name, _read_var(name))


async def aload_down_since(cluster_name: str) -> dict[int, datetime]:
    """Async twin of :func:`load_down_since`."""
    name = _down_var(cluster_name)
    return _decode_down_since(name, await _aread_var(name))


def save_down_since(cluster_name: str, mapping: dict[int, datetime]) -> None:
    """Replace the stored down-since map (timezone-aware datetimes)."""
    _write_var(_down_var(cluster_name), _encode_down_since(mapping), cluster_name)


async def asave_down_since(cluster_name: str, mapping: dict[int, datetime]) -> None:
    """Async twin of :func:`save_down_since`."""
    await _awrite_var(_down_var(cluster_name), _encode_down_since(mapping), cluster_name)


# -- maintenance mode -----------------------------------------------------------------------------------


class MaintenanceState(BaseModel):
    """Whether automation must leave a cluster alone, who said so, why and since when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on: bool
    reason: str = Field("", max_length=1000)
    by: str = Field(..., min_length=1, max_length=200)
    since: datetime

    @field_validator("since")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return _utc(value, "since")


def _maintenance_var(cluster_name: str) -> str:
    return variable_name(cluster_name, "maintenance")


def _new_maintenance(on: bool, reason: str, by: str) -> MaintenanceState:
    if on and not reason.strip():
        raise ValueError("a reason is required to turn maintenance mode on")
    if not by.strip():
        raise ValueError("'by' must name who changes maintenance mode")
    return MaintenanceState(on=on, reason=reason.strip(), by=by.strip(), since=_now())


def _parse_maintenance(name: str, raw: Any) -> MaintenanceState | None:
    if raw is None:
        return None
    try:
        return MaintenanceState.model_validate(raw)
    except ValidationError as exc:
        raise _bad_stored(
            name, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        ) from None


def set_maintenance(cluster_name: str, on: bool, reason: str, by: str) -> MaintenanceState:
    """Turn maintenance mode on or off. The record is kept when turned off (who and why)."""
    state = _new_maintenance(on, reason, by)
    _write_var(_maintenance_var(cluster_name), state.model_dump(mode="json"), cluster_name)
    return state


async def aset_maintenance(cluster_name: str, on: bool, reason: str, by: str) -> MaintenanceState:
    """Async twin of :func:`set_maintenance`."""
    state = _new_maintenance(on, reason, by)
    await _awrite_var(_maintenance_var(cluster_name), state.model_dump(mode="json"), cluster_name)
    return state


def get_maintenance(cluster_name: str) -> MaintenanceState | None:
    """The last maintenance-mode record, or None if it was never set. Check ``.on``."""
    name = _maintenance_var(cluster_name)
    return _parse_maintenance(name, _read_var(name))


async def aget_maintenance(cluster_name: str) -> MaintenanceState | None:
    """Async twin of :func:`get_maintenance`."""
    name = _maintenance_var(cluster_name)
    return _parse_maintenance(name, await _aread_var(name))


def in_maintenance(cluster_name: str) -> bool:
    """True when automation must stand down for the cluster."""
    state = get_maintenance(cluster_name)
    return state is not None and state.on
