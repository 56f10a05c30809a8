"""The script replacer: an operator's program, run as an argv list (never a shell), bounded in time
and in memory.

DoctorKafka ran ``sh -c "<command> <host>"`` and ignored the exit code; here a hostile host string
stays one argument, a non-zero exit is a failure, and a hung program is killed with its whole
process group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass

from kafka_medic.redaction import redact
from kafka_medic.replacers.base import UNKNOWN_HOST, HostState, ReplaceOutcome, ReplacerError
from kafka_medic.settings.replacers import ScriptReplacerSettings

log = logging.getLogger(__name__)

#: How much of a script's output is kept (the tail): enough for any error message, bounded memory.
OUTPUT_KEEP_BYTES = 64 * 1024
#: How much of that tail goes into results/audit records (the full kept tail is logged).
OUTPUT_RECORD_BYTES = 4 * 1024
#: After SIGTERM to a timed-out script's process group, how long before SIGKILL.
KILL_GRACE_S = 5.0
#: After the script exits, how long to keep reading output that its leftover children still write.
DRAIN_AFTER_EXIT_S = 2.0


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
    return redact(text, secrets, min_len=1)


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

    def __init__(self, block: ScriptReplacerSettings, *, cluster_name: str = "") -> None:
        self.block = block
        self.cluster_name = cluster_name

    @property
    def supports_restart(self) -> bool:
        """Only with a ``restart_argv``: the replacement command is never used as a restart."""
        return bool(self.block.restart_argv)

    def _argv(self, broker_id: int, host: str, *, restart: bool = False) -> list[str]:
        template = (self.block.restart_argv if restart else self.block.argv) or []
        if not host and any("{host}" in a for a in template):
            raise ReplacerError(
                f"the host of broker {broker_id} is unknown (never seen alive by kafka-medic), and the replacer "
                "command needs {host}; run a health check while the broker is up, or replace it by hand",
                changed=False,
            )
        return self.block.render_argv(broker_id, host, restart=restart)

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
        return self._run(broker_id, host, "replace")

    def _run(self, broker_id: int, host: str, action: str) -> ReplaceOutcome:
        argv = self._argv(broker_id, host, restart=action == "restart")
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
            "script", action, broker_id, f"{action} script {argv[0]!r} succeeded in {run.seconds:.1f}s",
            run.seconds, details,
        )  # fmt: skip

    def restart(self, broker_id: int, host: str) -> ReplaceOutcome:
        if not self.block.restart_argv:
            raise ReplacerError(
                "this script replacer has no restart_argv: it can only replace (wipe) a broker, never restart it",
                changed=False,
            )
        return self._run(broker_id, host, "restart")

    def host_state(self, broker_id: int, host: str) -> HostState:
        """A script replacer cannot see the host: unknown (a restart, when configured, is bounded anyway)."""
        return UNKNOWN_HOST

    def plan(self, broker_id: int, host: str) -> ReplaceOutcome:
        argv = self._argv(broker_id, host)
        return ReplaceOutcome(
            "script", "plan", broker_id, f"would run {argv} (timeout {self.block.timeout_s:.0f}s)", 0.0,
            {"argv": argv, "timeout_s": self.block.timeout_s},
        )  # fmt: skip
