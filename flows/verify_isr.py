"""verify-isr: wait until every (selected) partition is fully in sync. Every remediation ends here.

"Fully in sync" means: a leader, an ISR equal to the replica list, and at least
``min.insync.replicas`` in it (pure check: :mod:`kafka_medic.executor.isr`). The wait is bounded;
on timeout the error lists the partitions still short (capped) and how many there are, because
"ISR not full" alone sends an operator hunting.

:func:`wait_isr_full` is a plain async function so other flows (reassign, replace-broker) can
call it without the cost of a subflow run; the ``verify-isr`` flow wraps it and adds a report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from blocks.kafka_cluster import KafkaCluster
from flows.health_check import load_cluster
from kafka_medic.cluster_reads import make_admin, read_metadata, topic_min_isr
from kafka_medic.errors import ConfigError, MedicError
from kafka_medic.executor.isr import MAX_LISTED, Shortfall, describe_shortfalls, select, shortfalls

PartitionKey = tuple[str, int]


class VerifyIsrParams(BaseModel):
    """Which partitions to watch and for how long (empty filters: every partition)."""

    model_config = ConfigDict(extra="forbid")

    brokers: list[int] = Field(
        default_factory=list, description="Only partitions with a replica on one of these brokers (empty: all)."
    )
    topics: list[str] = Field(default_factory=list, description="Only these topics (empty: all).")
    timeout_s: float = Field(600.0, gt=0, le=86_400, description="Give up after this many seconds.")
    poll_s: float = Field(2.0, ge=0.1, le=60, description="Seconds between two looks at the cluster.")


class VerifyIsrReport(BaseModel):
    cluster: str
    ok: bool
    partitions_checked: int = Field(description="partitions selected by the filters")
    waited_s: float
    polls: int
    shortfall_count: int = Field(0, description="partitions still short at the end")
    shortfalls: list[dict[str, Any]] = Field(default_factory=list, description=f"at most {MAX_LISTED} of them")
    message: str = ""


class IsrNotFull(MedicError):
    """Some partitions were still short of a full ISR when the wait ended."""

    def __init__(self, message: str, report: VerifyIsrReport) -> None:
        super().__init__(message)
        self.report = report


PollHook = Callable[[list[Shortfall], int], Awaitable[None]]


def _poll(admin: Any, timeout_s: float) -> Any:
    _brokers, parts = read_metadata(admin, timeout_s)
    return parts


async def wait_isr_full(
    block: KafkaCluster,
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
    admin = make_admin({**block.confluent_config(), "socket.timeout.ms": 10_000})
    min_isr: dict[str, int] | None = None
    polls = 0
    last: list[Shortfall] = []
    checked = 0
    last_error: str | None = None
    while True:
        polls += 1
        try:
            parts = await asyncio.to_thread(_poll, admin, 10.0)
            if topic_list and polls == 1:
                missing = sorted(set(topic_list) - set(parts["topic"] if not parts.empty else []))
                if missing:
                    raise ConfigError(f"cluster {block.name!r} has no topic(s) {missing}")
            chosen = select(parts, brokers=broker_list, topics=topic_list, keys=keys)
            if min_isr is None and not chosen.empty:
                # DescribeConfigs goes to the "controller" librdkafka picked, which may be the very
                # broker that just died: min ISR only sharpens the message, so a failed read is retried
                # on the next poll instead of hiding the shortfall list behind a config timeout.
                try:
                    min_isr = await asyncio.to_thread(topic_min_isr, admin, sorted(set(chosen["topic"])), 3.0)
                except Exception:
                    min_isr = None
            if not chosen.empty:
                chosen = chosen.assign(min_isr=chosen["topic"].map(min_isr or {}).fillna(1).astype(int))
            checked = len(chosen)
            last = shortfalls(chosen)
            last_error = None
        except ConfigError:
            raise
        except Exception as exc:  # broker restarting, controller moving: look again
            last_error = f"{type(exc).__name__}: {exc}"
        waited = time.monotonic() - t0
        if last_error is None and not last:
            return VerifyIsrReport(
                cluster=block.name, ok=True, partitions_checked=checked, waited_s=round(waited, 3), polls=polls,
                message=f"all {checked} selected partition(s) fully in sync",
            )  # fmt: skip
        if on_poll is not None and last_error is None:
            await on_poll(last, checked)
        if waited >= timeout_s:
            break
        await asyncio.sleep(min(poll_s, max(0.0, timeout_s - waited)))
    waited = time.monotonic() - t0
    if last:
        message = f"ISR still not full on cluster {block.name!r} after {waited:.0f} s: {describe_shortfalls(last)}" + (
            f" (last read failed: {last_error})" if last_error else ""
        )
    else:
        message = f"could not read cluster {block.name!r} for {waited:.0f} s: {last_error}"
    report = VerifyIsrReport(
        cluster=block.name, ok=False, partitions_checked=checked, waited_s=round(waited, 3), polls=polls,
        shortfall_count=len(last), shortfalls=[s.to_dict() for s in last[:MAX_LISTED]], message=message,
    )  # fmt: skip
    raise IsrNotFull(message, report)


def isr_markdown(report: VerifyIsrReport) -> str:
    head = "ISR full" if report.ok else "**ISR NOT full**"
    lines = [
        f"# verify-isr on `{report.cluster}`: {head}",
        "",
        f"{report.partitions_checked} partition(s) checked, {report.polls} poll(s), {report.waited_s:.1f} s.",
        "",
        report.message,
    ]
    if report.shortfalls:
        lines += ["", "| partition | replicas | ISR | missing | leader | problems |", "|---|---|---|---|---|---|"]
        for s in report.shortfalls:
            cells = [s["partition"], s["replicas"], s["isr"], s["missing"], s["leader"], s["problems"]]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        if report.shortfall_count > len(report.shortfalls):
            lines.append(f"\n... and {report.shortfall_count - len(report.shortfalls)} more.")
    return "\n".join(lines)


@flow(name="verify-isr", retries=0)
async def verify_isr(cluster: str, params: VerifyIsrParams = VerifyIsrParams()) -> VerifyIsrReport:  # noqa: B008
    """Wait until every selected partition's ISR is its full replica list (bounded); report either way."""
    logger = get_run_logger()
    block = await load_cluster(cluster)
    try:
        report = await wait_isr_full(
            block, brokers=params.brokers, topics=params.topics, timeout_s=params.timeout_s, poll_s=params.poll_s
        )
    except IsrNotFull as exc:
        await acreate_markdown_artifact(
            key=f"verify-isr-{cluster}", markdown=isr_markdown(exc.report), description=f"ISR check of {cluster}"
        )
        logger.error("[%s] %s", cluster, exc)
        raise
    await acreate_markdown_artifact(
        key=f"verify-isr-{cluster}", markdown=isr_markdown(report), description=f"ISR check of {cluster}"
    )
    logger.info("[%s] %s", cluster, report.message)
    return report
