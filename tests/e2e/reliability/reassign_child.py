"""The reassign flow in a process of its own, so reliability scenario 5 can SIGKILL a real orchestrator.

Usage: ``python -m tests.e2e.reliability.reassign_child CLUSTER PARAMS_JSON LEASE_S`` with
PREFECT_API_URL set. Prints one JSON line with the report's status if it ever finishes.

``LEASE_S`` shortens the cluster lock's lease (default 300 s) to the server's minimum of 60 s, so
a test can watch the server reclaim a dead holder's lock within its time budget; the mechanism
(lease, no renewal from a dead process, the repossessor freeing the slot) is the production one.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys


def main(argv: list[str]) -> int:
    cluster, params_json, lease_s = argv[0], argv[1], float(argv[2])
    os.environ["KAFKA_MEDIC_LOCK_LEASE_S"] = str(lease_s)  # the operators' knob (tasks.locks.default_lease_s)
    from flows.reassign import ReassignParams, reassign

    report = asyncio.run(reassign(cluster, ReassignParams.model_validate_json(params_json)))
    print(json.dumps({"status": report.status, "summary": report.summary}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
