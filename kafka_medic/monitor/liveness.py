"""Is a broker back? Reads that tell a new incarnation of a broker from the registration it replaced.

Synchronous Kafka reads (run them in a worker thread). The waits around them are in
:mod:`tasks.verify`.
"""

from __future__ import annotations

from typing import Any

from kafka_medic.monitor.cluster_reads import host_port, make_admin, read_metadata
from kafka_medic.monitor.collector import ClusterAccess
from kafka_medic.monitor.listener_probe import ListenerState, probe_listener


def new_incarnation_serving(cluster: ClusterAccess, admin: Any, broker_id: int, timeout_s: float = 2.0) -> str | None:
    """None when ``broker_id`` is listed AND its own listener answers a Metadata request; else why not.

    Why "listed" is not enough: healing may start before the controller has fenced the crashed
    process (its listener refused), and until then metadata still lists the OLD registration --
    and the old ISR. The old process is gone (it refused connections, or the replacer stopped it),
    so an answer from the broker's own listener can only come from the new one, and Kafka enables
    request processing only once the broker has registered, caught up and been unfenced. A fresh
    client bootstrapped at that one address sends its first request there, so its success is that
    answer. A cheap TCP probe first: a listener that refuses costs no client and no timeout.
    """
    brokers, _ = read_metadata(admin, 5.0)
    ep = next((b for b in brokers if b.broker_id == broker_id), None)
    if ep is None:
        return f"not listed (registered brokers {sorted(b.broker_id for b in brokers)})"
    state = probe_listener(ep.host, ep.port, min(timeout_s, 1.0))
    if state is not ListenerState.OPEN:
        return f"listed, but its listener {ep.host}:{ep.port} is {state.value} (old registration, new one not up)"
    own = make_admin({**cluster.confluent_config(), "bootstrap.servers": host_port(ep.host, ep.port)})
    try:
        own.list_topics(timeout=timeout_s)
    except Exception as exc:
        return f"listed, but its own listener does not answer yet ({type(exc).__name__})"
    return None


def registered_in_metadata(admin: Any, broker_id: int) -> str | None:
    """None when ``broker_id`` is listed in metadata (registered and unfenced); else why not."""
    brokers, _parts = read_metadata(admin, 10.0)
    if broker_id not in {b.broker_id for b in brokers}:
        return f"broker {broker_id} is not registered yet"
    return None
