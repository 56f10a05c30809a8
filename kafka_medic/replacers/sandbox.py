"""The sandbox replacer: wipe a local sandbox broker's disk and start it again (tests, demos).

``Sandbox.wipe_and_replace`` gives the broker an empty disk with the same node.id: exactly what a
replaced machine looks like to Kafka.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kafka_medic.errors import ConfigError, MedicError
from kafka_medic.replacers.base import HostState, ReplaceOutcome, ReplacerError
from kafka_medic.settings.replacers import SandboxReplacerSettings


class SandboxBrokerReplacer:
    """Replaces a broker of a local sandbox by wiping its disk and starting it again."""

    kind = "sandbox"
    supports_restart = True

    def __init__(
        self, block: SandboxReplacerSettings, *, restart_graceful_s: float = 10.0, start_timeout_s: float = 120.0
    ) -> None:
        self.state_dir = Path(block.state_dir)
        self.restart_graceful_s = restart_graceful_s
        self.start_timeout_s = start_timeout_s

    def _open(self) -> Any:
        from kafka_medic.sandbox.cluster import open_sandbox

        if not (self.state_dir / "sandbox.json").exists():
            raise ConfigError(f"no sandbox state in {self.state_dir} (sandbox.json missing); check the replacer block")
        return open_sandbox(self.state_dir)

    def replace(self, broker_id: int, host: str) -> ReplaceOutcome:
        t0 = time.monotonic()
        sb = self._open()
        try:
            sb.layout.broker(broker_id)  # unknown id -> clear error before anything is touched
        except MedicError as exc:
            raise ReplacerError(str(exc), changed=False) from exc
        try:
            sb.wipe_and_replace(broker_id, wait=False)
        except MedicError as exc:
            raise ReplacerError(f"sandbox wipe-and-replace of broker {broker_id} failed: {exc}", changed=True) from exc
        data_dir = str(sb.layout.data_dir(sb.layout.broker(broker_id)))
        return ReplaceOutcome(
            "sandbox", "replace", broker_id, f"broker {broker_id} started on an empty disk ({data_dir})",
            time.monotonic() - t0, {"state_dir": str(self.state_dir), "data_dir": data_dir},
        )  # fmt: skip

    def restart(self, broker_id: int, host: str) -> ReplaceOutcome:
        t0 = time.monotonic()
        sb = self._open()
        try:
            sb.restart(broker_id, graceful_s=self.restart_graceful_s, timeout_s=self.start_timeout_s)
        except MedicError as exc:
            raise ReplacerError(f"sandbox restart of broker {broker_id} failed: {exc}", changed=True) from exc
        return ReplaceOutcome(
            "sandbox", "restart", broker_id, f"broker {broker_id} restarted with its disk", time.monotonic() - t0,
            {"state_dir": str(self.state_dir)},
        )  # fmt: skip

    def plan(self, broker_id: int, host: str) -> ReplaceOutcome:
        sb = self._open()
        try:
            node = sb.layout.broker(broker_id)
        except MedicError as exc:
            raise ReplacerError(str(exc), changed=False) from exc
        data_dir = str(sb.layout.data_dir(node))
        return ReplaceOutcome(
            "sandbox", "plan", broker_id, f"would kill broker {broker_id}, delete {data_dir}, format it and start it",
            0.0, {"state_dir": str(self.state_dir), "data_dir": data_dir},
        )  # fmt: skip

    def host_state(self, broker_id: int, host: str) -> HostState:
        """The sandbox's "host" is the broker's directory; its "disk" is the formatted data dir."""
        try:
            sb = self._open()
            node = sb.layout.broker(broker_id)
        except MedicError as exc:
            return HostState(None, None, None, f"cannot read the sandbox: {exc}")
        data_dir = sb.layout.data_dir(node)
        intact = (data_dir / "meta.properties").exists()
        return HostState(
            present=True, disk_intact=intact, impaired=None,
            detail=f"data dir {data_dir} {'formatted' if intact else 'missing or unformatted'}",
        )  # fmt: skip
