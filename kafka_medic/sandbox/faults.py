"""Faults to inject into a sandbox broker beyond kill and hang: a *slow* broker.

A slow broker is the hardest case for auto-healing: it is registered, in sync and answering, so no
liveness rule fires, yet every producer whose partitions it leads or follows waits on it. We make
one by duty-cycled SIGSTOP/SIGCONT of its JVM (``stop_s`` stopped out of every ``period_s``): its
request queue fills while it is stopped, its peers' acks=all produces wait for it as a follower,
and nothing fences it as long as ``stop_s`` stays well under the broker session timeout.

The fault is bound to the process, like a leaking JVM or a wedged thread: a restart clears it.
The thread is bounded (``max_s``) and always leaves the process running (SIGCONT) when it ends.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from kafka_medic.errors import SandboxError


class SlowBroker:
    """Duty-cycled SIGSTOP of one process; use as a context manager or ``start()``/``stop()``."""

    def __init__(self, pid: int, *, stop_s: float = 0.5, period_s: float = 1.0, max_s: float = 900.0) -> None:
        if not 0 < stop_s < period_s:
            raise SandboxError(f"stop_s ({stop_s}) must be > 0 and shorter than period_s ({period_s})")
        self.pid, self.stop_s, self.period_s, self.max_s = pid, stop_s, period_s, max_s
        self.cycles = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"slow-broker-{pid}", daemon=True)

    def start(self) -> SlowBroker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        self._thread.join(self.period_s + 5)
        self._signal(signal.SIGCONT)

    def __enter__(self) -> SlowBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _signal(self, sig: signal.Signals) -> bool:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:  # restarted or killed: the fault went with the process
            return False
        return True

    def _run(self) -> None:
        t0 = time.monotonic()
        try:
            while not self._done.is_set() and time.monotonic() - t0 < self.max_s:
                if not self._signal(signal.SIGSTOP):
                    return
                self._done.wait(self.stop_s)
                if not self._signal(signal.SIGCONT):
                    return
                self.cycles += 1
                self._done.wait(self.period_s - self.stop_s)
        finally:
            self._signal(signal.SIGCONT)
