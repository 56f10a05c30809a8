"""Faults to inject into a sandbox broker beyond kill and hang: a *slow* broker.

A slow broker is the hardest case for auto-healing: it is registered, in sync and answering, so no
liveness rule fires, yet every producer whose partitions it leads or follows waits on it.

:class:`CpuStarvedBroker` caps the broker JVM's CPU with a cgroup (a noisy neighbour, a throttled
instance): its request handlers fall behind, so its *own* metrics show it (handler idle ratio,
request queue time), as a real slow broker's do. Measured on the sandbox (6 brokers, 600 msg/s of
1 KB): capped at 5 % of a CPU its produce queue-time p99 went from ~20 ms (its peers' ~12 ms) to
~97 ms within a minute; at 2 % its exporter no longer answered a 3 s scrape. A duty-cycled SIGSTOP
(stopped half of every second) is the wrong model -- it raises every leader's produce p99 alike
(acks=all waits for the stopped follower) and leaves no trace in the stopped broker's own
metrics (idle ratio, queue time and fetcher lag all stayed at their peers' values), so no tool
can tell which broker is to blame from broker metrics.

The fault is bound to the process, like a leaking JVM or a runaway thread on the host: a restart
gives a new process outside the cgroup and clears it. Linux only (cgroup v1 ``cpu`` or v2 ``cpu.max``);
always removed on ``stop()``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from kafka_medic.errors import SandboxError

_V1 = Path("/sys/fs/cgroup/cpu")
_V2 = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


class CpuStarvedBroker:
    """Cap one process at ``cpu_share`` of one CPU; use as a context manager or ``start()``/``stop()``."""

    def __init__(self, pid: int, *, cpu_share: float = 0.05) -> None:
        if not 0 < cpu_share < 1:
            raise SandboxError(f"cpu_share must be in (0, 1), got {cpu_share}")
        self.pid, self.cpu_share = pid, cpu_share
        self.group: Path | None = None

    @staticmethod
    def available() -> str | None:
        """None if a CPU cgroup can be made here, else why not."""
        if (_V1 / "cpu.cfs_quota_us").exists() and os.access(_V1, os.W_OK):
            return None
        if "cpu" in (_V2 / "cgroup.controllers").read_text().split() if (_V2 / "cgroup.controllers").exists() else []:
            return None if os.access(_V2, os.W_OK) else f"{_V2} is not writable"
        return "no writable cgroup cpu controller (cgroup v1 cpu or v2 cpu.max)"

    def start(self) -> CpuStarvedBroker:
        why = self.available()
        if why is not None:
            raise SandboxError(f"cannot starve broker pid {self.pid} of CPU: {why}")
        quota = max(1000, int(PERIOD_US * self.cpu_share))
        name = f"kafka-medic-slow-{self.pid}-{uuid.uuid4().hex[:6]}"
        if (_V1 / "cpu.cfs_quota_us").exists():
            self.group = _V1 / name
            self.group.mkdir()
            (self.group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.group / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            self.group = _V2 / name
            self.group.mkdir()
            (self.group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        try:
            (self.group / "cgroup.procs").write_text(str(self.pid))
        except OSError as exc:
            self.stop()
            raise SandboxError(f"cannot move pid {self.pid} into {self.group}: {exc}") from exc
        return self

    def stop(self) -> None:
        """Move the process (if it still runs) back to the root group and remove ours."""
        if self.group is None:
            return
        root = self.group.parent
        with contextlib.suppress(OSError):
            for pid in (self.group / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    (root / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            self.group.rmdir()
        self.group = None

    def __enter__(self) -> CpuStarvedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
