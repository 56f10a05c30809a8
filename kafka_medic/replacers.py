"""Execution of the three replacer kinds behind one interface: ``replace`` and ``restart`` a broker.

The replacer *configuration* lives in Prefect blocks (:mod:`blocks.replacers`); this module turns a
block into something that acts:

* ``sandbox``: the local sandbox cluster (tests, demos) -- ``Sandbox.wipe_and_replace`` gives the
  broker an empty disk with the same node.id, exactly what a replaced machine looks like to Kafka.
* ``script``: an operator's program, run as an argv list (never a shell), bounded in time and in
  memory. DoctorKafka ran ``sh -c "<command> <host>"`` and ignored the exit code; here a hostile
  host string stays one argument, a non-zero exit is a failure, and a hung program is killed
  with its whole process group.
* ``ec2``: Orion-style terminate-and-relaunch with the same private IP (:mod:`kafka_medic.aws`).

Everything here is synchronous (subprocesses, boto3, JVM starts): flows call it through
``asyncio.to_thread``. Waiting for the broker to register and for the ISR to fill is NOT done
here -- that is the flow's job and the same for every kind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from blocks.replacers import Ec2Replacer, SandboxReplacer, ScriptReplacer
from kafka_medic.errors import ConfigError, MedicError

if TYPE_CHECKING:
    from blocks.kafka_cluster import AwsSettings, KafkaCluster

log = logging.getLogger(__name__)

#: How much of a script's output is kept (the tail): enough for any error message, bounded memory.
OUTPUT_KEEP_BYTES = 64 * 1024
#: How much of that tail goes into results/audit records (the full kept tail is logged).
OUTPUT_RECORD_BYTES = 4 * 1024
#: After SIGTERM to a timed-out script's process group, how long before SIGKILL.
KILL_GRACE_S = 5.0
#: After the script exits, how long to keep reading output that its leftover children still write.
DRAIN_AFTER_EXIT_S = 2.0

_REDACTED = "**********"


class ReplacerError(MedicError):
    """A replacer could not do its job. ``changed``: True/False when known, None when unknown
    (a failed script may have done anything before failing)."""

    def __init__(self, message: str, *, changed: bool | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.changed = changed
        self.details = details or {}


@dataclass(frozen=True)
class ReplaceOutcome:
    """What a replacer did. ``details`` are JSON-safe and secret-free (they go to the audit)."""

    kind: str  # "sandbox" | "script" | "ec2"
    action: str  # "replace" | "restart" | "plan"
    broker_id: int
    summary: str
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "action": self.action,
            "broker_id": self.broker_id,
            "summary": self.summary,
            "seconds": round(self.seconds, 3),
            "details": self.details,
        }


class Replacer(Protocol):
    """The interface every replacer kind provides."""

    kind: str
    supports_restart: bool

    def replace(self, broker_id: int, host: str) -> ReplaceOutcome:
        """Give the broker a fresh machine/disk (same broker id); return once it has been started."""
        ...

    def restart(self, broker_id: int, host: str) -> ReplaceOutcome:
        """Restart the broker keeping its disk (Orion's first step for a "maybe dead" broker)."""
        ...

    def plan(self, broker_id: int, host: str) -> ReplaceOutcome:
        """Describe what ``replace`` would do, changing nothing (dry runs)."""
        ...


# -- sandbox ---------------------------------------------------------------------------------------


class SandboxBrokerReplacer:
    """Replaces a broker of a local sandbox by wiping its disk and starting it again."""

    kind = "sandbox"
    supports_restart = True

    def __init__(self, block: SandboxReplacer, *, restart_graceful_s: float = 10.0, start_timeout_s: float = 120.0):
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


# -- script ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptRun:
    """The result of one bounded program run."""

    argv: list[str]
    exit_code: int | None  # None: killed after the timeout
    timed_out: bool
    seconds: float
    output_tail: str  # the last ``keep_bytes`` of stdout+stderr, secrets redacted
    output_bytes: int  # everything the program wrote (kept or not)

    @property
    def truncated(self) -> bool:
        return self.output_bytes > len(self.output_tail.encode())


def _redact(text: str, secrets: list[str]) -> str:
    for s in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(s, _REDACTED)
    return text


def _kill_group(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the program's whole process group, then SIGKILL what is left (bounded)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    # SIGKILL the group even if the leader exited: children it left behind must not survive.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def run_bounded(
    argv: list[str],
    *,
    timeout_s: float,
    env: dict[str, str] | None = None,
    keep_bytes: int = OUTPUT_KEEP_BYTES,
    secrets: list[str] | None = None,
    kill_grace_s: float = KILL_GRACE_S,
    drain_after_exit_s: float = DRAIN_AFTER_EXIT_S,
) -> ScriptRun:
    """Run ``argv`` (no shell) with a deadline, keeping only the tail of its output.

    Why not ``subprocess.run(capture_output=True, timeout=...)``: it buffers ALL output in memory,
    and on timeout kills only the direct child, so a grandchild holding the pipe open makes it
    hang. Here the program gets its own session/process group (killed as a whole on timeout), its
    output is read incrementally into a bounded buffer, and reading stops at most
    ``drain_after_exit_s`` after the program exits even if a leftover child keeps the pipe open.
    Raises ReplacerError if the program cannot be started.
    """
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills everything it started
            close_fds=True,
            env=env,
        )
    except OSError as exc:  # not found, not executable, ...
        raise ReplacerError(f"cannot start replacer program {argv[0]!r}: {exc}", changed=False) from exc
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    buf = bytearray()
    total = 0
    timed_out = False
    deadline = t0 + timeout_s
    exited_at: float | None = None
    eof = False
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        try:
            while True:
                now = time.monotonic()
                if not eof:
                    for _key, _ev in sel.select(timeout=max(0.0, min(0.2, deadline - now)) if not timed_out else 0.2):
                        # Read what is there now (bounded per round so a flood cannot starve the clock).
                        for _ in range(64):
                            try:
                                chunk = os.read(fd, 65536)
                            except BlockingIOError:
                                break
                            if not chunk:
                                eof = True
                                break
                            total += len(chunk)
                            buf += chunk
                            if len(buf) > keep_bytes:
                                del buf[: len(buf) - keep_bytes]
                else:
                    time.sleep(0.05)
                code = proc.poll()
                now = time.monotonic()
                if code is not None:
                    if eof:
                        break
                    if exited_at is None:
                        exited_at = now
                    elif now - exited_at >= drain_after_exit_s:
                        break  # a leftover child holds the pipe: do not wait for it
                elif now >= deadline and not timed_out:
                    timed_out = True
                    _kill_group(proc, kill_grace_s)
                    exited_at = time.monotonic()
        finally:
            if proc.poll() is None:  # interrupted (e.g. the flow was cancelled): never leave it running
                _kill_group(proc, 0.5)
            proc.stdout.close()
    text = _redact(bytes(buf).decode("utf-8", errors="replace"), secrets or [])
    return ScriptRun(
        argv=list(argv),
        exit_code=None if timed_out else proc.returncode,
        timed_out=timed_out,
        seconds=time.monotonic() - t0,
        output_tail=text,
        output_bytes=total,
    )


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class ScriptBrokerReplacer:
    """Runs the operator's replacement program for one broker (argv list, no shell)."""

    kind = "script"
    supports_restart = False  # the block has one command: the replacement

    def __init__(self, block: ScriptReplacer, *, cluster_name: str = "") -> None:
        self.block = block
        self.cluster_name = cluster_name

    def _argv(self, broker_id: int, host: str) -> list[str]:
        if not host and any("{host}" in a for a in self.block.argv):
            raise ReplacerError(
                f"the host of broker {broker_id} is unknown (never seen alive by kafka-medic), and the replacer "
                "command needs {host}; run a health check while the broker is up, or replace it by hand",
                changed=False,
            )
        return self.block.render_argv(broker_id, host)

    def _env(self, broker_id: int, host: str) -> dict[str, str]:
        return {
            **os.environ,
            **self.block.env,
            **{k: v.get_secret_value() for k, v in self.block.secret_env.items()},
            "KAFKA_MEDIC_BROKER_ID": str(broker_id),
            "KAFKA_MEDIC_HOST": host,
            "KAFKA_MEDIC_CLUSTER": self.cluster_name,
        }

    def replace(self, broker_id: int, host: str) -> ReplaceOutcome:
        argv = self._argv(broker_id, host)
        secrets = [v.get_secret_value() for v in self.block.secret_env.values()]
        log.info("replacer script for broker %s: %s (timeout %.0fs)", broker_id, argv, self.block.timeout_s)
        run = run_bounded(argv, timeout_s=self.block.timeout_s, env=self._env(broker_id, host), secrets=secrets)
        for line in run.output_tail.splitlines()[-200:]:
            log.info("replacer[%s] %s", broker_id, line)
        details = {
            "argv": run.argv,
            "exit_code": run.exit_code,
            "timed_out": run.timed_out,
            "output_bytes": run.output_bytes,
            "output_tail": run.output_tail[-OUTPUT_RECORD_BYTES:],
        }
        last = run.output_tail.strip()[-500:]
        shown = f"; last output: {last}" if last else "; it wrote no output"
        if run.timed_out:
            raise ReplacerError(
                f"replacer script {argv[0]!r} for broker {broker_id} timed out after {self.block.timeout_s:.0f}s and "
                f"was killed (its whole process group){shown}",
                details=details,
            )
        assert run.exit_code is not None
        if run.exit_code != 0:
            raise ReplacerError(
                f"replacer script {argv[0]!r} for broker {broker_id} {_exit_text(run.exit_code)} after "
                f"{run.seconds:.1f}s{shown}",
                details=details,
            )
        return ReplaceOutcome(
            "script", "replace", broker_id, f"replacer script {argv[0]!r} succeeded in {run.seconds:.1f}s",
            run.seconds, details,
        )  # fmt: skip

    def restart(self, broker_id: int, host: str) -> ReplaceOutcome:
        raise ReplacerError("the script replacer has no restart command; only replacement is possible", changed=False)

    def plan(self, broker_id: int, host: str) -> ReplaceOutcome:
        argv = self._argv(broker_id, host)
        return ReplaceOutcome(
            "script", "plan", broker_id, f"would run {argv} (timeout {self.block.timeout_s:.0f}s)", 0.0,
            {"argv": argv, "timeout_s": self.block.timeout_s},
        )  # fmt: skip


# -- EC2 -------------------------------------------------------------------------------------------


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Ec2BrokerReplacer:
    """Terminates a broker's EC2 instance and launches a copy with the same private IP and tags.

    The broker -> instance mapping uses the cluster's ``aws`` settings (broker-id tag, cluster tag)
    when present, else the default ``kafka-broker-id`` tag; a broker whose host is an IP is also
    matched (and cross-checked) by private IP.
    """

    kind = "ec2"
    supports_restart = True

    def __init__(
        self,
        block: Ec2Replacer,
        *,
        cluster_name: str,
        aws: AwsSettings | None = None,
        poll_s: float = 5.0,
        session: Any = None,
        ec2_client: Any = None,
        route53_client: Any = None,
    ) -> None:
        self.block = block
        self._session = session  # a boto3 Session (credentials resolved), or None: resolve lazily
        self.cluster_name = cluster_name
        self.broker_id_tag = aws.broker_id_tag if aws is not None else "kafka-broker-id"
        self.cluster_tag = (
            (aws.cluster_tag_key, aws.cluster_tag_value)
            if aws is not None and aws.cluster_tag_key and aws.cluster_tag_value is not None
            else None
        )
        self.poll_s = poll_s
        self._ec2 = ec2_client
        self._route53 = route53_client

    def _client(self, service: str) -> Any:
        from botocore.config import Config

        from tasks.aws_session import boto3_session

        kwargs: dict[str, Any] = {
            "region_name": self.block.region,
            "config": Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 5, "mode": "standard"}),
        }
        if self.block.endpoint_url:
            kwargs["endpoint_url"] = self.block.endpoint_url
        if self._session is None:
            self._session = boto3_session(self.block.aws_credentials)
        return self._session.client(service, **kwargs)

    @property
    def ec2(self) -> Any:
        if self._ec2 is None:
            self._ec2 = self._client("ec2")
        return self._ec2

    @property
    def route53(self) -> Any:
        if self._route53 is None and self.block.hosted_zone_id:
            self._route53 = self._client("route53")
        return self._route53

    def instance_of(self, broker_id: int, host: str) -> str:
        from kafka_medic.aws import AwsCollectionError, find_broker_instances

        try:
            found = find_broker_instances(
                self.ec2,
                cluster_tag=self.cluster_tag,
                broker_id_tag=self.broker_id_tag,
                private_ips={broker_id: host} if host and _is_ip(host) else None,
            )
        except (AwsCollectionError, ConfigError) as exc:
            raise ReplacerError(f"cannot map broker {broker_id} to its EC2 instance: {exc}", changed=False) from exc
        info = found.get(broker_id)
        if info is None:
            where = f" with {self.cluster_tag[0]}={self.cluster_tag[1]}" if self.cluster_tag else ""
            raise ReplacerError(
                f"no live EC2 instance found for broker {broker_id} (tag {self.broker_id_tag}={broker_id}{where}"
                + (f", or private IP {host}" if host and _is_ip(host) else "")
                + "); nothing was changed",
                changed=False,
            )
        return info.instance_id

    def _replace(self, broker_id: int, host: str, *, dry_run: bool) -> ReplaceOutcome:
        from kafka_medic.aws import AwsActionError, replace_instance

        t0 = time.monotonic()
        instance_id = self.instance_of(broker_id, host)
        record_name = (
            self.block.record_name_template.format(broker_id=broker_id, cluster=self.cluster_name)
            if self.block.record_name_template
            else None
        )
        try:
            result = replace_instance(
                self.ec2,
                instance_id,
                keep_private_ip=self.block.keep_private_ip,
                instance_type_fallbacks=self.block.instance_type_fallbacks,
                wait_timeout_s=self.block.wait_timeout_s,
                poll_s=self.poll_s,
                route53_client=self.route53 if record_name else None,
                hosted_zone_id=self.block.hosted_zone_id,
                record_name=record_name,
                dry_run=dry_run,
            )
        except AwsActionError as exc:
            raise ReplacerError(
                f"EC2 replacement of broker {broker_id} ({instance_id}) failed: {exc}",
                changed=exc.changed,
                details={"instance_id": instance_id, "steps": list(exc.steps), "new_instance_id": exc.new_instance_id},
            ) from exc
        except ConfigError as exc:
            raise ReplacerError(f"EC2 replacement of broker {broker_id}: {exc}", changed=False) from exc
        record = result.to_record()
        if dry_run:
            summary = f"would terminate {instance_id} and launch a {result.instance_type} ({result.strategy})"
        else:
            summary = (
                f"replaced {instance_id} by {result.new_instance_id} ({result.instance_type}, "
                f"private IP {result.private_ip}, {result.strategy})"
            )
        return ReplaceOutcome(
            "ec2", "plan" if dry_run else "replace", broker_id, summary, time.monotonic() - t0, record
        )

    def replace(self, broker_id: int, host: str) -> ReplaceOutcome:
        return self._replace(broker_id, host, dry_run=False)

    def plan(self, broker_id: int, host: str) -> ReplaceOutcome:
        return self._replace(broker_id, host, dry_run=True)

    def restart(self, broker_id: int, host: str) -> ReplaceOutcome:
        from kafka_medic.aws import AwsActionError, restart_instance

        t0 = time.monotonic()
        instance_id = self.instance_of(broker_id, host)
        try:
            res = restart_instance(self.ec2, instance_id, wait_timeout_s=self.block.wait_timeout_s, poll_s=self.poll_s)
        except AwsActionError as exc:
            raise ReplacerError(
                f"EC2 reboot of broker {broker_id} ({instance_id}) failed: {exc}", changed=exc.changed
            ) from exc
        return ReplaceOutcome(
            "ec2", "restart", broker_id, f"rebooted {instance_id} (EC2 status {res.ec2_status})",
            time.monotonic() - t0, {"instance_id": instance_id, "steps": res.steps},
        )  # fmt: skip


# -- loading ---------------------------------------------------------------------------------------

_BLOCK_CLASSES: dict[str, type[Any]] = {
    SandboxReplacer.get_block_type_slug(): SandboxReplacer,
    ScriptReplacer.get_block_type_slug(): ScriptReplacer,
    Ec2Replacer.get_block_type_slug(): Ec2Replacer,
}


def replacer_for(block: Any, cluster: KafkaCluster, **kwargs: Any) -> Replacer:
    """The executor for a loaded replacer block (pure dispatch on its type)."""
    if isinstance(block, SandboxReplacer):
        return SandboxBrokerReplacer(block, **kwargs)
    if isinstance(block, ScriptReplacer):
        return ScriptBrokerReplacer(block, cluster_name=cluster.name)
    if isinstance(block, Ec2Replacer):
        return Ec2BrokerReplacer(block, cluster_name=cluster.name, aws=cluster.aws, **kwargs)
    raise ConfigError(f"unsupported replacer block type {type(block).__name__}")


def _split_ref(cluster: KafkaCluster) -> tuple[type[Any], str]:
    ref = cluster.replacer
    if not ref:
        raise ConfigError(f"cluster {cluster.name!r} has no replacer configured (field 'replacer')")
    slug, _, name = ref.partition("/")
    cls = _BLOCK_CLASSES.get(slug)
    if cls is None:
        raise ConfigError(f"cluster {cluster.name!r}: unknown replacer type {slug!r} in {ref!r}")
    return cls, name


async def aload_replacer(cluster: KafkaCluster, **kwargs: Any) -> Replacer:
    """Load the block the cluster's ``replacer`` field names ("<slug>/<name>") and wrap it.

    For EC2 the AwsCredentials block is loaded here too, asynchronously: the replacer itself runs
    in a worker thread, and a block's sync ``load`` called where an event loop is running returns
    a coroutine instead of the block (Prefect's async dispatch).
    """
    cls, name = _split_ref(cluster)
    try:
        block = await cls.aload(name)
    except ValueError as exc:
        raise ConfigError(
            f"cluster {cluster.name!r}: replacer block {cluster.replacer!r} does not exist; create it first"
        ) from exc
    if isinstance(block, Ec2Replacer) and block.aws_credentials and "session" not in kwargs:
        from prefect_aws import AwsCredentials

        try:
            creds = await AwsCredentials.aload(block.aws_credentials)
        except ValueError as exc:
            raise ConfigError(
                f"replacer {cluster.replacer!r}: AwsCredentials block {block.aws_credentials!r} does not exist"
            ) from exc
        kwargs["session"] = creds.get_boto3_session()
    return replacer_for(block, cluster, **kwargs)


def load_replacer(cluster: KafkaCluster, **kwargs: Any) -> Replacer:
    """Sync twin of :func:`aload_replacer` (scripts, benchmarks)."""
    cls, name = _split_ref(cluster)
    try:
        block = cls.load(name)
    except ValueError as exc:
        raise ConfigError(
            f"cluster {cluster.name!r}: replacer block {cluster.replacer!r} does not exist; create it first"
        ) from exc
    return replacer_for(block, cluster, **kwargs)
