"""The ``kafka-medic`` command line: the ad hoc side of operating kafka-medic.

Errors are one clear line on stderr and a non-zero exit code; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kafka_medic.errors import MedicError


def medic_home() -> Path:
    """Where local state lives (sandbox data, local Prefect server DB): ``$KAFKA_MEDIC_HOME`` or ./.medic."""
    return Path(os.environ.get("KAFKA_MEDIC_HOME", Path.cwd() / ".medic")).resolve()


def _sandbox_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir).resolve() if args.state_dir else medic_home() / "sandbox"


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from kafka_medic.sandbox.cluster import open_sandbox, status_dicts, status_table

    sb = open_sandbox(
        _sandbox_dir(args),
        brokers=getattr(args, "brokers", None),
        racks=getattr(args, "racks", None),
        port_base=getattr(args, "port_base", None),
    )
    op = args.sandbox_op
    if op == "up":
        secs = sb.up()
        print(f"sandbox up in {secs:.1f} s; bootstrap servers: {sb.layout.bootstrap_servers}")
        print(status_table(sb.status()))
    elif op == "down":
        sb.down(graceful_s=args.graceful, wipe=args.wipe)
        print("sandbox stopped" + (" and wiped" if args.wipe else ""))
    elif op == "status":
        st = sb.status()
        print(json.dumps(status_dicts(st), indent=2) if args.json else status_table(st))
    elif op == "kill":
        sb.kill(args.broker_id)
        print(f"broker {args.broker_id} killed (SIGKILL)")
    elif op == "hang":
        sb.hang(args.broker_id)
        print(f"broker {args.broker_id} hung (SIGSTOP); `resume {args.broker_id}` to continue it")
    elif op == "resume":
        sb.resume(args.broker_id)
        print(f"broker {args.broker_id} resumed (SIGCONT)")
    elif op == "restart":
        sb.restart(args.broker_id)
        print(f"broker {args.broker_id} restarted and registered")
    elif op == "start":
        sb.start_broker(args.broker_id)
        print(f"broker {args.broker_id} started and registered")
    elif op == "replace":
        sb.wipe_and_replace(args.broker_id)
        print(f"broker {args.broker_id} replaced with an empty disk and registered; replicas are re-fetching")
    return 0


def _cmd_clusters(args: argparse.Namespace) -> int:
    """Load cluster definitions from YAML into KafkaCluster blocks (and their concurrency limits)."""
    from kafka_medic.config import save_clusters_as_blocks

    names = save_clusters_as_blocks(args.file, overwrite=True)
    print(f"loaded {len(names)} cluster(s) from {args.file}: {', '.join(names)}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kafka-medic", description="Auto-healing for Apache Kafka clusters.")
    sub = parser.add_subparsers(dest="command", required=True)

    sb = sub.add_parser("sandbox", help="a real local Kafka KRaft cluster for tests and the demo")
    sb.add_argument("--state-dir", help="sandbox directory (default: $KAFKA_MEDIC_HOME/sandbox)")
    sb_sub = sb.add_subparsers(dest="sandbox_op", required=True)
    up = sb_sub.add_parser("up", help="start the controller and brokers; wait until all are registered")
    up.add_argument("--brokers", type=_positive_int, help="number of brokers (default 6)")
    up.add_argument("--racks", type=_positive_int, help="number of racks/AZs (default 3)")
    up.add_argument("--port-base", type=_positive_int, help="first port (default 19090)")
    down = sb_sub.add_parser("down", help="stop every node")
    down.add_argument("--graceful", type=float, default=10.0, help="seconds to wait after SIGTERM (default 10)")
    down.add_argument("--wipe", action="store_true", help="also delete all sandbox data")
    st = sb_sub.add_parser("status", help="nodes, pids, registration")
    st.add_argument("--json", action="store_true")
    for name, text in (
        ("kill", "SIGKILL a broker"),
        ("hang", "SIGSTOP a broker (half-alive hardware)"),
        ("resume", "SIGCONT a hung broker"),
        ("restart", "controlled restart of a broker"),
        ("start", "start a stopped broker with its disk"),
        ("replace", "wipe a broker's disk and start it again with the same id"),
    ):
        p = sb_sub.add_parser(name, help=text)
        p.add_argument("broker_id", type=_positive_int)
    sb.set_defaults(func=_cmd_sandbox)

    cl = sub.add_parser("clusters", help="cluster definitions (Prefect blocks)")
    cl_sub = cl.add_subparsers(dest="clusters_op", required=True)
    load = cl_sub.add_parser("load", help="validate a clusters YAML file and save every cluster as a block")
    load.add_argument("file", help="YAML file with a top-level 'clusters:' list")
    cl.set_defaults(func=_cmd_clusters)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except MedicError as exc:
        print(f"kafka-medic: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kafka-medic: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
