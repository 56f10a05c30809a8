"""``verify-isr``: wait until every (selected) partition is fully in sync; every remediation ends with it.

The wait is :func:`tasks.verify.wait_isr_full` (other flows call it directly, without the cost of a
subflow run); this flow adds the report artifact. An ISR still short at the deadline fails the
run: it is a check, and a failed check is what it must say.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from blocks.load import load_cluster
from kafka_medic.reports.verify import IsrNotFull, VerifyIsrReport, isr_markdown
from tasks.verify import wait_isr_full


class VerifyIsrParams(BaseModel):
    """Which partitions to watch and for how long (empty filters: every partition)."""

    model_config = ConfigDict(extra="forbid")

    brokers: list[int] = Field(
        default_factory=list, description="Only partitions with a replica on one of these brokers (empty: all)."
    )
    topics: list[str] = Field(default_factory=list, description="Only these topics (empty: all).")
    timeout_s: float = Field(600.0, gt=0, le=86_400, description="Give up after this many seconds.")
    poll_s: float = Field(2.0, ge=0.1, le=60, description="Seconds between two looks at the cluster.")


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
        report = exc.report
    await acreate_markdown_artifact(
        key=f"verify-isr-{cluster}", markdown=isr_markdown(report), description=f"ISR check of {cluster}"
    )
    if not report.ok:
        logger.error("[%s] %s", cluster, report.message)
        raise IsrNotFull(report.message, report)
    logger.info("[%s] %s", cluster, report.message)
    return report
