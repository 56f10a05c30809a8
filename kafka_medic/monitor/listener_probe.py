"""Is a broker's process gone? A short, bounded TCP connect to its Kafka listener.

Why: the controller fences a crashed broker only when its session expires
(``broker.session.timeout.ms``: 9 s by default, 3 s on the sandbox). Until then Metadata still
lists the broker, and it still sits in the ISR of its partitions, so a health check that trusts
the controller alone waits out the whole session before it can even start healing.

A connection *actively refused* -- the host answered with a TCP reset (or an ICMP port
unreachable) because nothing listens on the port -- is strong evidence that the broker process is
gone while its machine is up: a crashed or killed JVM. A hung JVM (SIGSTOP, a long GC pause) still
holds its listening socket, and the kernel completes the handshake for it, so it reads as
``open``. A timeout or an unreachable host proves nothing: that is what a network partition, a
firewall that drops packets or an overloaded host look like, and none of them may ever count as a
dead broker.

Caveat (documented for operators): a host firewall rule that REJECTs the medic's connections, or
``net.ipv4.tcp_abort_on_overflow=1`` on a broker whose accept queue overflows, also produce a
refusal. Both are rare; the grace period (``dead_broker_grace_s``) still applies to the evidence,
and the removal guard never lets a wipe take a partition offline or below min ISR. A cluster whose
network does this can switch the evidence off (``HealthPolicy.refused_listener_is_down``).
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from enum import StrEnum


class ListenerState(StrEnum):
    """What one connect attempt to a broker's listener showed."""

    OPEN = "open"  # accepted: a process holds the port (it may still be hung or sick)
    REFUSED = "refused"  # every address of the host actively refused: nothing listens there
    TIMEOUT = "timeout"  # no answer in time: network trouble or an overloaded host; proves nothing
    UNREACHABLE = "unreachable"  # no route / name does not resolve: network trouble; proves nothing
    ERROR = "error"  # anything else; proves nothing


#: errno values that mean "the host answered: nothing listens on that port".
_REFUSED_ERRNOS = frozenset({errno.ECONNREFUSED})
#: errno values that mean "we could not reach the host" (never evidence of a dead process).
_UNREACHABLE_ERRNOS = frozenset(
    {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL}
)


def classify_error(exc: BaseException) -> ListenerState:
    """The state a failed connect attempt stands for (pure; only ECONNREFUSED means refused)."""
    if isinstance(exc, TimeoutError):  # socket.timeout is an alias of TimeoutError
        return ListenerState.TIMEOUT
    if isinstance(exc, socket.gaierror):
        return ListenerState.UNREACHABLE
    if isinstance(exc, ConnectionRefusedError):
        return ListenerState.REFUSED
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.errno in _REFUSED_ERRNOS:
            return ListenerState.REFUSED
        if exc.errno in _UNREACHABLE_ERRNOS:
            return ListenerState.UNREACHABLE
        if exc.errno == errno.ETIMEDOUT:
            return ListenerState.TIMEOUT
    return ListenerState.ERROR


def combine(states: list[ListenerState]) -> ListenerState:
    """One verdict for a host with several addresses (pure).

    Refused only if EVERY address refused (one address that times out may be the real one);
    open if any address accepted; otherwise the most telling failure.
    """
    if not states:
        return ListenerState.UNREACHABLE
    if ListenerState.OPEN in states:
        return ListenerState.OPEN
    if all(s is ListenerState.REFUSED for s in states):
        return ListenerState.REFUSED
    for s in (ListenerState.TIMEOUT, ListenerState.UNREACHABLE, ListenerState.ERROR):
        if s in states:
            return s
    return ListenerState.ERROR


def probe_listener(host: str, port: int, timeout_s: float) -> ListenerState:
    """Connect to ``host:port`` (every resolved address, each bounded by ``timeout_s``), then close.

    Sends no bytes: the broker sees a connection open and close, nothing else.
    """
    deadline = time.monotonic() + timeout_s
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return classify_error(exc)
    states: list[ListenerState] = []
    for family, kind, proto, _name, addr in infos:
        left = deadline - time.monotonic()
        if left <= 0:
            states.append(ListenerState.TIMEOUT)
            break
        try:
            with socket.socket(family, kind, proto) as s:
                s.settimeout(left)
                s.connect(addr)
            return ListenerState.OPEN
        except OSError as exc:
            states.append(classify_error(exc))
    return combine(states)


def probe_listeners(
    endpoints: Mapping[int, tuple[str, int]], timeout_s: float, *, max_workers: int = 32
) -> dict[int, ListenerState]:
    """Probe every ``broker id -> (host, port)`` in parallel; the whole call is bounded.

    A probe still running after ``timeout_s`` + 0.5 s (a name lookup that hangs: the connect
    timeout does not cover it) is reported as ``timeout`` and left to finish in the background.
    """
    if not endpoints:
        return {}
    pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(endpoints))), thread_name_prefix="probe")
    try:
        futs = {b: pool.submit(probe_listener, host, int(port), timeout_s) for b, (host, port) in endpoints.items()}
        wait(list(futs.values()), timeout=timeout_s + 0.5)
        out: dict[int, ListenerState] = {}
        for b, fut in futs.items():
            if fut.done() and fut.exception() is None:
                out[b] = fut.result()
            else:
                out[b] = ListenerState.TIMEOUT if not fut.done() else ListenerState.ERROR
        return out
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
