"""The main job: kafka-medic on the embedded default (``./medic start``).

Brings up the local sandbox cluster (6 brokers in 3 AZs) and keeps it running until Ctrl-C (or
``--exit-after``), then stops every process it started.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from kafka_medic.cli import medic_home
from kafka_medic.errors import MedicError
from kafka_medic.sandbox.cluster import Sandbox, status_table
from kafka_medic.sandbox.layout import SandboxLayout


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medic start", description=__doc__)
    parser.add_argument("--brokers", type=int, default=6)
    parser.add_argument("--exit-after", type=float, default=None, help="stop after this many seconds (smoke runs)")
    args = parser.parse_args(argv)

    stop = False

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _on_signal)
    sb = Sandbox(SandboxLayout(state_dir=medic_home() / "sandbox", brokers=args.brokers), owned=True)
    try:
        secs = sb.up()
        print(f"kafka-medic: sandbox cluster up in {secs:.1f} s (bootstrap {sb.layout.bootstrap_servers})")
        print(status_table(sb.status()), flush=True)
        print("kafka-medic: running; press Ctrl-C to stop.", flush=True)
        deadline = time.monotonic() + args.exit_after if args.exit_after is not None else None
        while not stop and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.5)
    except MedicError as exc:
        print(f"kafka-medic: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        print("kafka-medic: stopping...", flush=True)
        sb.down(graceful_s=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
