"""kafka_medic.heal: restart before wipe -- the host side is the second signal before a destructive step."""

from __future__ import annotations

import pytest

from kafka_medic.heal import restart_first
from kafka_medic.replacers.base import UNKNOWN_HOST, HostState

DEAD = {"broker_id": 3, "alive": False, "metrics_ok": False}  # crashed: not registered, exporter silent
HUNG = {"broker_id": 3, "alive": False, "metrics_ok": True}  # fenced, but its JVM still answers
THERE = HostState(True, True, False, "instance running, data volume in-use")


@pytest.mark.parametrize(
    ("row", "host", "restarted", "can", "expected", "why"),
    [
        (DEAD, THERE, False, True, True, "host and disk are still there"),
        (HUNG, UNKNOWN_HOST, False, True, True, "may only be hung"),
        (DEAD, UNKNOWN_HOST, False, True, True, "cannot be seen"),
        (DEAD, HostState(True, False, None, "data dir missing"), False, True, False, "disk is gone"),
        (DEAD, HostState(False, None, None, "terminated"), False, True, False, "host is gone"),
        (DEAD, HostState(True, True, True, "status checks impaired"), False, True, False, "reports a fault"),
        (DEAD, THERE, True, True, False, "restarted recently"),
        (DEAD, THERE, False, False, False, "cannot restart"),
    ],
)  # fmt: skip
def test_restart_first_unless_the_disk_or_host_is_gone_or_it_was_just_tried(
    row: dict, host: HostState, restarted: bool, can: bool, expected: bool, why: str
) -> None:
    go, reason = restart_first(row, host, supports_restart=can, restarted_recently=restarted)
    assert go is expected and why in reason, reason
