"""``what-if``: what would automatic healing do if these brokers died right now? Touches nothing.

The answer is computed by :func:`kafka_medic.what_if.what_if_report` (pure) on one fresh look at
the cluster -- the same look automation takes -- and shown as the return value and two artifacts.
It writes no Variable, takes no lock and sends nothing to the cluster.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from pydantic import BaseModel, ConfigDict, Field

from blocks.load import load_cluster
from kafka_medic.params import BrokerSet
from kafka_medic.reports.what_if import WhatIfReport, move_rows, report_markdown
from kafka_medic.what_if import what_if_report
from tasks.collect import look_now


class WhatIfParams(BaseModel):
    """Which brokers to pretend are dead."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    broker_ids: BrokerSet = Field(..., min_length=1, max_length=10_000, description="Brokers to simulate as dead.")


@flow(name="what-if", timeout_seconds=600, retries=0)
async def what_if(cluster: str, params: WhatIfParams) -> WhatIfReport:
    """Report what healing would do if ``params.broker_ids`` died now; read-only.

    Args:
        cluster: Name of the cluster (its KafkaCluster block), e.g. "sandbox".
        params: The brokers to pretend are dead.
    """
    block = await load_cluster(cluster)
    look = await look_now(block)
    report = what_if_report(
        look.snapshot, params.broker_ids, block.policy, has_replacer=block.replacer is not None,
        maintenance=look.in_maintenance, down_since=look.down_since,
    )  # fmt: skip
    await acreate_markdown_artifact(
        key=f"what-if-{cluster}", markdown=report_markdown(report), description=f"What if {params.broker_ids} died"
    )
    rows = move_rows(report.plan)
    if rows:
        await acreate_table_artifact(
            key=f"what-if-moves-{cluster}", table=rows, description="Moves a drain of the dead brokers would make"
        )
    get_run_logger().info("[%s] %s", cluster, report.verdict)
    return report
