"""The ``kafka-medic`` command line: the ad hoc side of operating kafka-medic.

Errors are one clear line on stderr; tracebacks are for bugs only. Exit codes (the table is in
:mod:`kafka_medic.outcome`): 0 done or planned (dry run), 1 an action was attempted and did not
finish, 2 bad input / configuration / unknown cluster / Prefect API unreachable, 3 refused by a
safety guard, 4 busy or skipped (lock held, cooling down, not needed), 130 interrupted.

Flow commands (``health``, ``run``, ``drain``, ``elect-leaders`` ...) run the flow in this process
against the Prefect API, or with ``--deployed`` start a run of its deployment (as the UI does) and
optionally wait for it. Parameters are validated by the flow's own pydantic model before anything
runs, so ``--param brokers=abc`` fails with pydantic's message, in one line.

Which Prefect API: ``$PREFECT_API_URL`` (or the active Prefect profile); if neither is set and the
main job (``./medic start``) is running, its local server (recorded in ``.medic/service.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from kafka_medic.errors import ConfigError, MedicError
from kafka_medic.outcome import ExitCode, error_exit_code, exit_code

if TYPE_CHECKING:
    from deployments.catalogue import Entry

SERVICE_FILE = "service.json"


def medic_home() -> Path:
    """Where local state lives (sandbox data, local Prefect server DB): ``$KAFKA_MEDIC_HOME`` or ./.medic."""
    return Path(os.environ.get("KAFKA_MEDIC_HOME", Path.cwd() / ".medic")).resolve()


def _sandbox_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir).resolve() if args.state_dir else medic_home() / "sandbox"


def _node_name(sb: Any, node_id: int) -> str:
    """ "broker 3" or "controller 100": the CLI manages the controller like any node."""
    return f"{sb.layout.node(node_id).role} {node_id}"


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
        print(f"{_node_name(sb, args.broker_id)} killed (SIGKILL)")
    elif op == "hang":
        sb.hang(args.broker_id)
        print(f"{_node_name(sb, args.broker_id)} hung (SIGSTOP); `resume {args.broker_id}` to continue it")
    elif op == "resume":
        sb.resume(args.broker_id)
        print(f"{_node_name(sb, args.broker_id)} resumed (SIGCONT)")
    elif op == "restart":
        sb.restart(args.broker_id)
        print(f"{_node_name(sb, args.broker_id)} restarted and registered")
    elif op == "start":
        sb.start_broker(args.broker_id)
        print(f"{_node_name(sb, args.broker_id)} started and registered")
    elif op == "replace":
        sb.wipe_and_replace(args.broker_id)
        print(f"broker {args.broker_id} replaced with an empty disk and registered; replicas are re-fetching")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _broker_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a broker id (a whole number), got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"broker ids are >= 0, got {value}")
    return value


# -- Prefect plumbing -------------------------------------------------------------------------------


def use_service_api() -> str | None:
    """Point Prefect at the running main job's server when nothing else is configured.

    Must run before Prefect is imported (it reads its settings then). Returns the URL it set.
    """
    if os.environ.get("PREFECT_API_URL"):
        return None
    try:
        info = json.loads((medic_home() / SERVICE_FILE).read_text())
        pid, url = int(info["pid"]), str(info["api_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None  # stale file: the service is gone
    os.environ["PREFECT_API_URL"] = url
    return url


def _prefect_quiet(verbose: bool) -> None:
    """Without ``--verbose`` Prefect logs nothing: a failed flow run would otherwise print its traceback,
    and the CLI's contract is one line per error (the flow's result and error say what happened)."""
    os.environ["PREFECT_LOGGING_LEVEL"] = "INFO" if verbose else "CRITICAL"
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _api_url() -> str:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or "the ephemeral Prefect server"


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value``; the value is JSON when it parses as JSON (numbers, true, [1,2]), else a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--param expects key=value, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def run_flow(entry: Entry, kwargs: dict[str, Any], cluster: str, args: argparse.Namespace) -> Any:
    """Run the flow in this process, or (``--deployed``) as a run of its deployment, through the one
    adapter remediation uses too (:func:`tasks.dispatch.start_flow`). Returns the in-process report,
    or the exit code of the deployment run."""
    from prefect.settings import get_current_settings

    from deployments.sync import run_interruptible, run_sync
    from tasks.dispatch import start_flow

    mode = "deployment" if args.deployed else "in-process"
    wait_s = args.timeout if args.deployed and args.wait else 0.0
    # In this process, Ctrl-C / SIGTERM cancel the run and let it clean up (moves, throttles, undo, audit).
    runner = run_sync if args.deployed else run_interruptible
    started = runner(start_flow(entry.flow, kwargs, cluster=cluster, mode=mode, once_per_cluster=False, wait_s=wait_s))
    if started.mode == "in-process":
        return started.result
    run = started.flow_run
    ui = get_current_settings().ui_url
    link = f" ({ui}/runs/flow-run/{run.id})" if ui else ""
    if not args.wait:
        print(f"started {started.deployment} run {run.name} [{run.id}]{link}")
        return ExitCode.OK
    state = run.state
    print(f"{started.deployment} run {run.name} [{run.id}]: {state.name if state else 'unknown'}{link}")
    if state is None or not state.is_final():
        print(f"kafka-medic: error: the run did not finish within {args.timeout:g} s; it goes on", file=sys.stderr)
        return ExitCode.FAILED
    if not state.is_completed():
        print(f"kafka-medic: error: {state.message or state.name}", file=sys.stderr)
        return ExitCode.FAILED
    try:  # the report, when the server kept the run's result; else the run completing is all we know
        report = state.result(raise_on_failure=False, fetch=True)
    except Exception:
        report = None
    return _exit_code(report)


# -- rendering ---------------------------------------------------------------------------------------


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def render_health(report: Any) -> str:
    """A findings table, most serious first, then the decisions."""
    status = "healthy" if report.healthy else ("STAND DOWN" if not report.automation_allowed else "unhealthy")
    lines = [f"cluster {report.cluster}: {status}" + (" (maintenance mode)" if report.maintenance else "")]
    lines.append(", ".join(f"{k}: {v}" for k, v in report.counts.items()))
    if report.findings:
        rows = [["severity", "rule", "brokers", "summary"]]
        for f in report.findings:
            rows.append([f["severity"], f["rule"], ",".join(map(str, f["brokers"])), f["summary"][:140]])
        lines += ["", _table(rows)]
    if report.decisions:
        rows = [["remedy", "broker", "execute", "reason"]]
        for d in report.decisions:
            rows.append([d["remedy"], str(d["broker_id"] or ""), str(d["execute"]), d["reason"][:120]])
        lines += ["", _table(rows)]
    return "\n".join(lines)


def render_result(result: Any) -> str:
    """A compact view of any flow's result: scalar fields as ``key: value``, lists as counts."""
    from pydantic import BaseModel

    data = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
    if not isinstance(data, dict):
        return str(data)
    lines = []
    for key in ("verdict", "summary", "message"):
        if isinstance(data.get(key), str) and data[key]:
            lines.append(data[key])
    for key, value in data.items():
        if key in ("verdict", "summary", "message", "audit", "plan"):
            continue
        if isinstance(value, list):
            shown = ", ".join(map(str, value[:10])) if value and not isinstance(value[0], dict) else ""
            more = " ..." if len(value) > 10 else ""
            lines.append(f"{key}: {len(value)}" + (f" ({shown}{more})" if shown else ""))
        elif isinstance(value, dict):
            lines.append(f"{key}: {json.dumps(value, default=str)[:200]}")
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines)


# -- commands ----------------------------------------------------------------------------------------


def _exit_code(result: Any) -> int:
    """The documented exit code of a completed run's report (:mod:`kafka_medic.outcome`)."""
    status = getattr(result, "status", None)
    if status is None and isinstance(result, dict):
        status = result.get("status")
    return int(exit_code(str(status))) if status is not None else ExitCode.OK


def _run_flow(args: argparse.Namespace, flow_name: str, values: dict[str, Any]) -> int:
    """Shared path of ``run`` and every flow subcommand."""
    from deployments.catalogue import entry as catalogue_entry

    for text in getattr(args, "param", None) or []:
        key, value = parse_param(text)
        values[key] = value
    target = catalogue_entry(flow_name)
    kwargs = target.parameters(args.cluster, values)
    _require_cluster(args.cluster)
    result = run_flow(target, kwargs, args.cluster, args)
    if args.deployed:
        return int(result)
    if args.json:
        from pydantic import BaseModel

        data = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
        print(json.dumps(data, indent=2, default=str))
    elif target.name == "health-check":
        print(render_health(result))
    else:
        print(render_result(result))
    return _exit_code(result)


def _require_cluster(name: str) -> None:
    """Fail before any run is created when the cluster does not exist (one line, names the known ones)."""
    from blocks.load import cluster_names
    from deployments.sync import run_sync

    known = run_sync(cluster_names())
    if name not in known:
        hint = f"known clusters: {', '.join(known)}" if known else "no clusters are configured yet"
        raise ConfigError(f"unknown cluster {name!r}; {hint} (kafka-medic clusters load FILE)")


def _cmd_run(args: argparse.Namespace) -> int:
    return _run_flow(args, args.flow, {})


def _cmd_health(args: argparse.Namespace) -> int:
    return _run_flow(args, "health-check", {"act": args.act})


def _execute(args: argparse.Namespace, values: dict[str, Any]) -> dict[str, Any]:
    if getattr(args, "execute", False):
        values["dry_run"] = False
    return values


def _cmd_elect(args: argparse.Namespace) -> int:
    values: dict[str, Any] = {}
    if args.topic:
        values["topics"] = args.topic
    if args.partition:
        values["partitions"] = args.partition
    return _run_flow(args, "preferred-leader-election", _execute(args, values))


def _cmd_maintenance_mode(args: argparse.Namespace) -> int:
    from kafka_medic.audit import default_actor

    values = {"on": args.state == "on", "reason": args.reason or "", "by": args.by or default_actor()}
    return _run_flow(args, "maintenance-mode", values)


def _cmd_rolling_restart(args: argparse.Namespace) -> int:
    values: dict[str, Any] = {"brokers": args.broker} if args.broker else {}
    return _run_flow(args, "rolling-restart", _execute(args, values))


def _cmd_drain(args: argparse.Namespace) -> int:
    return _run_flow(args, "drain-broker", _execute(args, {"broker_id": args.broker}))


def _cmd_undrain(args: argparse.Namespace) -> int:
    return _run_flow(args, "undrain-broker", _execute(args, {"broker_id": args.broker}))


def _cmd_replace(args: argparse.Namespace) -> int:
    return _run_flow(args, "replace-broker", _execute(args, {"broker_id": args.broker}))


def _cmd_reassign(args: argparse.Namespace) -> int:
    values: dict[str, Any] = {"kind": args.kind}
    if args.broker:
        values["brokers"] = args.broker
    return _run_flow(args, "reassign", _execute(args, values))


def _cmd_verify_isr(args: argparse.Namespace) -> int:
    return _run_flow(args, "verify-isr", {})


def _cmd_what_if(args: argparse.Namespace) -> int:
    return _run_flow(args, "what-if", {"broker_ids": args.broker})


def _cmd_bootstrap(args: argparse.Namespace) -> int:
    from deployments.bootstrap import bootstrap

    result = bootstrap(args.clusters, work_pool=args.work_pool, deploy=args.deploy, interval_s=args.health_interval)
    print(f"bootstrap done on {_api_url()}")
    print("\n".join(result.lines()))
    return 0


def _cmd_clusters(args: argparse.Namespace) -> int:
    if args.clusters_op == "load":
        from deployments.bootstrap import bootstrap

        result = bootstrap(args.file)  # validates the whole file first: bad YAML saves nothing
        names = result.clusters_saved
        print(f"loaded {len(names)} cluster(s) from {args.file}: {', '.join(names)}")
        return 0
    from blocks.kafka_cluster import KafkaCluster
    from blocks.load import cluster_names
    from deployments.sync import run_sync

    table = [["name", "bootstrap servers", "mode", "replacer"]]
    for name in run_sync(cluster_names()):
        block = KafkaCluster.load(name)
        table.append([name, block.bootstrap_servers, str(block.policy.mode), block.replacer or "-"])
    print(_table(table) if len(table) > 1 else "no clusters configured (kafka-medic clusters load FILE)")
    return 0


# -- parser -----------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``kafka-medic: error: ...``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _flow_options(p: argparse.ArgumentParser, *, cluster_positional: bool = False, dry_run: bool = False) -> None:
    if cluster_positional:
        p.add_argument("cluster", help="cluster name (a KafkaCluster block)")
    else:
        p.add_argument("--cluster", "-c", required=True, help="cluster name (a KafkaCluster block)")
    if dry_run:
        p.add_argument("--execute", action="store_true", help="really do it (default: dry run, change nothing)")
    p.add_argument("--param", "-p", action="append", metavar="KEY=VALUE", help="any other flow parameter (JSON value)")
    p.add_argument("--deployed", action="store_true", help="start the deployment's run through the API instead")
    p.add_argument("--wait", action="store_true", help="with --deployed: wait for the run to finish")
    p.add_argument("--timeout", type=float, default=3600.0, help="with --deployed --wait: seconds to wait")
    p.add_argument("--json", action="store_true", help="print the flow's result as JSON")
    p.add_argument("--verbose", "-v", action="store_true", help="show Prefect's flow-run logs")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kafka-medic", description="Auto-healing for Apache Kafka clusters.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sb = sub.add_parser("sandbox", help="a real local Kafka KRaft cluster for tests and the demo")
    sb.add_argument("--state-dir", help="sandbox directory (default: $KAFKA_MEDIC_HOME/sandbox)")
    sb_sub = sb.add_subparsers(dest="sandbox_op", required=True, parser_class=_Parser)
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
        ("kill", "SIGKILL a broker or the controller (node 100)"),
        ("hang", "SIGSTOP a broker or the controller (half-alive hardware)"),
        ("resume", "SIGCONT a hung broker or controller"),
        ("restart", "controlled restart of a broker or the controller (node 100)"),
        ("start", "start a stopped broker or controller with its disk"),
        ("replace", "wipe a broker's disk and start it again with the same id"),
    ):
        p = sb_sub.add_parser(name, help=text)
        p.add_argument("broker_id", type=_positive_int)
    sb.set_defaults(func=_cmd_sandbox, prefect=False)

    boot = sub.add_parser("bootstrap", help="register block types, load clusters, create limits (idempotent)")
    boot.add_argument("--clusters", metavar="FILE", help="cluster YAML file to load into blocks")
    boot.add_argument("--work-pool", metavar="NAME", help="also create a process work pool (prefect deploy users)")
    boot.add_argument(
        "--deploy", action="store_true",
        help="(re)deploy every deployment (a health check per cluster + the operator flows) to --work-pool",
    )  # fmt: skip
    boot.add_argument(
        "--health-interval", type=float, default=None, metavar="SECONDS",
        help="health-check schedule interval for --deploy (default $KAFKA_MEDIC_HEALTH_INTERVAL_S or 15)",
    )  # fmt: skip
    boot.set_defaults(func=_cmd_bootstrap)

    cl = sub.add_parser("clusters", help="cluster definitions (Prefect blocks)")
    cl_sub = cl.add_subparsers(dest="clusters_op", required=True, parser_class=_Parser)
    cl_sub.add_parser("list", help="list cluster blocks")
    load = cl_sub.add_parser("load", help="validate a clusters YAML file and save every cluster as a block")
    load.add_argument("file", help="YAML file with a top-level 'clusters:' list")
    cl.set_defaults(func=_cmd_clusters)

    health = sub.add_parser("health", help="run the health check once and print its findings")
    _flow_options(health, cluster_positional=True)
    health.add_argument("--act", action="store_true", help="also dispatch remediation (default: report only)")
    health.set_defaults(func=_cmd_health)

    run = sub.add_parser("run", help="run any flow: run FLOW --cluster X --param key=value ...")
    run.add_argument("flow", help="flow name, e.g. rolling-restart, what-if, drain-broker")
    _flow_options(run)
    run.set_defaults(func=_cmd_run)

    elect = sub.add_parser("elect-leaders", help="preferred leader election (dry run unless --execute)")
    _flow_options(elect, dry_run=True)
    elect.add_argument("--topic", action="append", help="only this topic (repeatable)")
    elect.add_argument("--partition", action="append", help='only this partition, "topic-N" (repeatable)')
    elect.set_defaults(func=_cmd_elect)

    maint = sub.add_parser("maintenance", help="maintenance mode on|off (automation reports only)")
    maint.add_argument("state", choices=["on", "off"])
    _flow_options(maint)
    maint.add_argument("--reason", help="why (required for on)")
    maint.add_argument("--by", help="who (default: $KAFKA_MEDIC_ACTOR or user@host)")
    maint.set_defaults(func=_cmd_maintenance_mode)

    rr = sub.add_parser("rolling-restart", help="restart brokers one at a time (dry run unless --execute)")
    _flow_options(rr, dry_run=True)
    rr.add_argument("--broker", type=_broker_id, action="append", help="broker id, in order (default: all)")
    rr.set_defaults(func=_cmd_rolling_restart)

    for name, func, text in (
        ("drain", _cmd_drain, "move every replica off a broker (dry run unless --execute)"),
        ("undrain", _cmd_undrain, "move a drained broker's replicas back (dry run unless --execute)"),
        ("replace", _cmd_replace, "replace a broker: fresh machine/disk (dry run unless --execute)"),
    ):
        p = sub.add_parser(name, help=text)
        _flow_options(p, dry_run=True)
        p.add_argument("--broker", type=_broker_id, required=True, help="broker id")
        p.set_defaults(func=func)

    ra = sub.add_parser("reassign", help="partition reassignment: drain or replace (dry run unless --execute)")
    _flow_options(ra, dry_run=True)
    ra.add_argument("--kind", choices=["drain", "replace"], default="drain")
    ra.add_argument("--broker", type=_broker_id, action="append", help="broker(s) to drain")
    ra.set_defaults(func=_cmd_reassign)

    vi = sub.add_parser("verify-isr", help="wait until every partition's ISR is full")
    _flow_options(vi)
    vi.set_defaults(func=_cmd_verify_isr)

    wi = sub.add_parser("what-if", help="what would healing do if these brokers died? (touches nothing)")
    _flow_options(wi)
    wi.add_argument("--broker", type=_broker_id, action="append", required=True, help="broker id (repeatable)")
    wi.set_defaults(func=_cmd_what_if)
    return parser


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if "\n" not in text else text.replace("\n", "; ")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    saved = {k: os.environ.get(k) for k in ("PREFECT_API_URL", "PREFECT_LOGGING_LEVEL")}
    if getattr(args, "prefect", True):
        use_service_api()
        _prefect_quiet(getattr(args, "verbose", False))
    try:
        return func(args)
    except MedicError as exc:
        print(f"kafka-medic: error: {_one_line(exc)}", file=sys.stderr)
        return int(error_exit_code(exc))
    except KeyboardInterrupt:
        print("kafka-medic: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:
        message = _known_error(exc)
        if message is None:
            raise
        print(f"kafka-medic: error: {message}", file=sys.stderr)
        return 2
    finally:  # called in-process (tests, scripts): leave the environment as it was
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _known_error(exc: Exception) -> str | None:
    """One line for errors that are the environment's fault, not a bug (API down, bad input)."""
    import httpx
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        from deployments.catalogue import validation_message

        return validation_message(exc)
    if isinstance(exc, httpx.HTTPError):
        return f"Prefect API at {_api_url()} failed: {type(exc).__name__}: {_one_line(exc)}"
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {_one_line(exc)}"
    return None


if __name__ == "__main__":
    sys.exit(main())
