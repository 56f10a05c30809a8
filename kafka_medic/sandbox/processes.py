"""Start, signal and reap node JVMs, tracked by pid so nothing outlives its owner.

Why pid files and /proc checks: the CLI starts a sandbox in one process and stops it from another,
and a pid can be reused by an unrelated process once ours is gone. Before signalling we check that
the pid still runs *our* node (its command line names our properties file).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

from kafka_medic.errors import SandboxError
from kafka_medic.waiting import NotYet, WaitTimeout, poll

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL the JVM when the process that started it dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(argv: list[str], log_path: Path, *, die_with_parent: bool) -> int:
    """Start a process detached from our terminal, output appended to ``log_path``; return its pid.

    ``die_with_parent`` is only honoured on the main thread: Linux ties PDEATHSIG to the *thread*
    that forked, and a worker thread (e.g. a Prefect task) may exit long before the process does.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pdeath = die_with_parent and threading.current_thread() is threading.main_thread()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if pdeath else None,
        )
    # Reap it in the background so a killed JVM never lingers as a zombie in our process table.
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc.pid


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def proc_state(pid: int) -> str | None:
    """Single-letter Linux process state (R, S, T for stopped, Z zombie...), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def is_ours(pid: int | None, marker: str) -> bool:
    """True if ``pid`` is alive (not a zombie) and its command line contains ``marker``."""
    if not pid:
        return False
    state = proc_state(pid)
    return state not in (None, "Z", "X") and marker in cmdline(pid)


def signal_node(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def wait_stopped(pid: int, stopped: bool, timeout_s: float = 10.0) -> None:
    """Wait (bounded) until the kernel shows ``pid`` stopped (``T``) or not: a signal is delivered
    asynchronously, and a JVM stops only once every thread has (CI read "running" right after a
    SIGSTOP on a loaded machine)."""

    def settled() -> None:
        if (proc_state(pid) == "T") is not stopped:
            raise NotYet(f"process {pid} not {'stopped' if stopped else 'running'} yet")

    poll(settled, timeout_s=timeout_s, interval_s=0.02, what=f"process {pid} {'stopped' if stopped else 'resumed'}")


def wait_gone(pid: int, marker: str, timeout_s: float) -> bool:
    def gone() -> None:
        if is_ours(pid, marker):
            raise NotYet(f"process {pid} still running")

    try:
        poll(gone, timeout_s=timeout_s, interval_s=0.05, what=f"process {pid} gone")
    except WaitTimeout:
        return not is_ours(pid, marker)
    return True


def stop(pid: int, marker: str, *, graceful_s: float) -> None:
    """SIGTERM, wait up to ``graceful_s``, then SIGKILL and wait (bounded)."""
    if not is_ours(pid, marker):
        return
    if graceful_s > 0:
        signal_node(pid, signal.SIGCONT)  # a SIGSTOPped JVM cannot handle SIGTERM
        signal_node(pid, signal.SIGTERM)
        if wait_gone(pid, marker, graceful_s):
            return
    signal_node(pid, signal.SIGKILL)
    if not wait_gone(pid, marker, 15):
        raise SandboxError(f"process {pid} did not exit 15 s after SIGKILL")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_port_free(port: int, timeout_s: float) -> bool:
    def free() -> None:
        if not port_free(port):
            raise NotYet(f"port {port} in use")

    try:
        poll(free, timeout_s=timeout_s, interval_s=0.1, what=f"port {port} free")
    except WaitTimeout:
        return port_free(port)
    return True
