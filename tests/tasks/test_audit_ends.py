"""tasks/audit.py: an interrupted in-process run gives every audit "started" its end, from one place
(``tasks.dispatch.start_flow``), and touches no other run's audits. The trail's writes are recorded
in memory here; writing to Kafka is tested in tests/core/kafka/test_audit.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kafka_medic.audit import AuditStatus
from kafka_medic.settings.cluster import ClusterSettings
from tasks.audit import RunAudit
from tasks.dispatch import start_flow


def recording_audit(action: str, written: list[tuple[str, str, str]]) -> RunAudit:
    audit = RunAudit(ClusterSettings(name="c1", bootstrap_servers="127.0.0.1:9"), action, actor="pytest")

    def write(record: Any) -> bool:
        written.append((record.action, record.status.value, record.summary))
        return True

    audit._log.write = write  # type: ignore[method-assign]
    return audit


def test_an_interrupted_run_ends_every_open_started_and_leaves_other_runs_alone() -> None:
    written: list[tuple[str, str, str]] = []
    other = recording_audit("other_run", written)

    async def flow_like(**_: Any) -> None:
        outer, inner = recording_audit("rolling_restart", written), recording_audit("restart_broker", written)
        await outer(AuditStatus.STARTED, "restarting brokers [1, 2]")
        await inner(AuditStatus.STARTED, "restarting broker 1")
        await asyncio.sleep(30)

    async def main() -> None:
        await other(AuditStatus.STARTED, "another run, not interrupted")
        run = asyncio.create_task(start_flow(type("F", (), {"name": "f"}), {}, cluster="c1", mode="in-process",
                                             in_process=flow_like))  # fmt: skip
        while len(written) < 3:
            await asyncio.sleep(0.01)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(main())
    ends = [(a, s) for a, s, _ in written if s == "failed"]
    assert sorted(ends) == [("restart_broker", "failed"), ("rolling_restart", "failed")], written
    assert all("interrupted (CancelledError)" in summary for _, s, summary in written if s == "failed")
    assert other.open_starts == 1, "another run's started is not ended for it"
