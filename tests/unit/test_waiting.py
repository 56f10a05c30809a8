"""kafka_medic/waiting.py: the bounded waits, and cleanup that survives the caller's cancellation."""

from __future__ import annotations

import asyncio

import pytest

from kafka_medic.outcome import ExitCode, exit_code
from kafka_medic.waiting import NotYet, WaitTimeout, apoll, finish_shielded


def test_cleanup_runs_to_its_end_while_the_caller_is_cancelled_then_the_cancel_propagates() -> None:
    steps: list[str] = []

    async def cleanup() -> str:
        for i in range(3):
            await asyncio.sleep(0.05)
            steps.append(f"step {i}")
        return "clean"

    async def caller() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await finish_shielded(cleanup(), timeout_s=5)

    async def main() -> None:
        task = asyncio.create_task(caller())
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.03)
        task.cancel()  # a second cancellation (anyio scopes repeat theirs) does not cut the cleanup short
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert steps == ["step 0", "step 1", "step 2"]


def test_cleanup_is_bounded_and_returns_its_value() -> None:
    async def stuck() -> None:
        await asyncio.sleep(60)

    async def quick() -> int:
        return 7

    async def main() -> None:
        assert await finish_shielded(quick(), timeout_s=1) == 7
        with pytest.raises(TimeoutError, match="within 1 s"):
            await finish_shielded(stuck(), timeout_s=1)

    asyncio.run(main())


def test_apoll_times_out_with_the_last_reason() -> None:
    def never() -> None:
        raise NotYet("still 2 moves")

    with pytest.raises(WaitTimeout, match="still 2 moves"):
        asyncio.run(apoll(never, timeout_s=0.2, interval_s=0.05, what="moves done"))


def test_interrupted_and_handed_back_runs_exit_1() -> None:
    assert exit_code("handed_back") is ExitCode.FAILED
    assert exit_code("interrupted") is ExitCode.FAILED
