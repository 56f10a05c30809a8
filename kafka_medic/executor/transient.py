"""Which failures are worth retrying: transient Kafka trouble, and nothing else.

A retry is only safe and useful when the same request can succeed a moment later: a request that
timed out, a controller that moved, a broker that is restarting. Bad input, a safety refusal or a
plan that no longer fits the cluster fail the same way every time, so retrying them only delays the
operator's answer (and a retried safety refusal looks like flakiness instead of a decision).

Both clients are covered: confluent-kafka raises ``KafkaException(KafkaError)`` (``retriable()``
and error codes), kafka-python raises ``kafka.errors.KafkaError`` subclasses with a ``retriable``
class flag. The cause chain is followed, so a wrapped Kafka error still counts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

from kafka_medic.errors import MedicError

T = TypeVar("T")

# confluent-kafka / librdkafka codes that mean "try again": local timeouts and transport trouble,
# and broker answers about leadership/controller moves or overload.
_CONFLUENT_TRANSIENT_NAMES = (
    "_TIMED_OUT",
    "_TRANSPORT",
    "_ALL_BROKERS_DOWN",
    "_WAIT_COORD",
    "_MSG_TIMED_OUT",
    "REQUEST_TIMED_OUT",
    "NOT_CONTROLLER",
    "NETWORK_EXCEPTION",
    "LEADER_NOT_AVAILABLE",
    "NOT_LEADER_FOR_PARTITION",
    "BROKER_NOT_AVAILABLE",
    "COORDINATOR_NOT_AVAILABLE",
    "THROTTLING_QUOTA_EXCEEDED",
)


class TransientKafkaError(MedicError):
    """A Kafka call failed in a way that may succeed if retried (the cluster was unreachable, ...)."""


def _confluent_codes() -> frozenset[int]:
    try:
        from confluent_kafka import KafkaError
    except ImportError:  # pragma: no cover - a hard dependency
        return frozenset()
    return frozenset(int(getattr(KafkaError, n)) for n in _CONFLUENT_TRANSIENT_NAMES if hasattr(KafkaError, n))


_CODES = _confluent_codes()


def _one_is_transient(exc: BaseException) -> bool | None:
    """True/False when ``exc`` itself decides; None to look at its cause."""
    if isinstance(exc, TransientKafkaError):
        return True
    if isinstance(exc, MedicError):
        return False  # our own refusals (safety, config, busy) are decisions, not accidents
    if isinstance(exc, TimeoutError | concurrent.futures.TimeoutError | asyncio.TimeoutError):
        return True
    try:
        from confluent_kafka import KafkaError as CKError
        from confluent_kafka import KafkaException
    except ImportError:  # pragma: no cover
        KafkaException = CKError = None  # type: ignore[assignment,misc]
    if KafkaException is not None and isinstance(exc, KafkaException):
        err = exc.args[0] if exc.args else None
        if isinstance(err, CKError):
            return bool(err.retriable()) or int(err.code()) in _CODES
        return False
    try:
        import kafka.errors as kerrors
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, kerrors.KafkaError):
        return bool(getattr(exc, "retriable", False))
    return None


def is_transient(exc: BaseException | None) -> bool:
    """True when ``exc`` (or what caused it) is a transient Kafka failure worth a retry."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        verdict = _one_is_transient(exc)
        if verdict is not None:
            return verdict
        exc = exc.__cause__ or exc.__context__
    return False


def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task only if it failed on a transient Kafka error."""
    data = getattr(state, "data", None)
    if isinstance(data, BaseException):
        return is_transient(data)
    try:
        result = state.result(raise_on_failure=False)
    except Exception as exc:  # the result itself may be the raised exception
        return is_transient(exc)
    return isinstance(result, BaseException) and is_transient(result)


async def call_with_retries(
    fn: Callable[..., T],
    *args: Any,
    what: str,
    attempts: int = 4,
    first_delay_s: float = 0.5,
    max_delay_s: float = 5.0,
) -> T:
    """Run a blocking, idempotent Kafka call in a worker thread; retry it on transient errors only.

    Exponential backoff (0.5, 1, 2 ... s, capped). The last transient error is re-raised as
    :class:`TransientKafkaError` naming ``what``, so a Prefect task around it can retry once more.
    """
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            return await asyncio.to_thread(fn, *args)
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == attempts:
                raise TransientKafkaError(f"{what} failed {attempts} times; last error: {exc}") from exc
            await asyncio.sleep(delay)
            delay = min(max_delay_s, delay * 2)
    raise AssertionError("unreachable")  # pragma: no cover
