"""The sandbox is a real Kafka 4.1 KRaft cluster: these tests prove it behaves like one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kafka_medic.errors import SandboxError
from kafka_medic.loadgen import AckedProducer, verify_acked
from kafka_medic.monitor.cluster_reads import describe_cluster, describe_partitions, not_fully_replicated
from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.sandbox.layout import SandboxLayout, render_properties
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka


def test_layout_is_six_brokers_over_three_racks_with_rf3(healthy_sandbox: Sandbox) -> None:
    info = describe_cluster(healthy_sandbox.admin())
    assert [b.broker_id for b in info.brokers] == [1, 2, 3, 4, 5, 6]
    assert {b.rack for b in info.brokers} == {"az-a", "az-b", "az-c"}
    assert sum(b.rack == "az-a" for b in info.brokers) == 2


def test_rf3_topic_acks_all_round_trip(healthy_sandbox: Sandbox, topic_factory) -> None:
    topic = topic_factory(partitions=6)
    parts = describe_partitions(healthy_sandbox.admin(), [topic])
    assert (parts["replicas"].map(len) == 3).all()
    racks = healthy_sandbox.layout
    for reps in parts["replicas"]:
        assert len({racks.broker(b).rack for b in reps}) == 3, "rack-aware assignment spreads over 3 AZs"

    prod = AckedProducer(healthy_sandbox.layout.bootstrap_servers, topic, rate=500).start()
    time.sleep(2)
    stats = prod.stop()
    assert stats.acked > 200 and stats.failed == 0
    res = verify_acked(healthy_sandbox.layout.bootstrap_servers, topic, prod.acked_keys, timeout_s=30)
    assert res.missing == 0 and res.found == stats.acked


def test_kill_fences_broker_shrinks_isr_and_wipe_replace_restores(healthy_sandbox: Sandbox, topic_factory) -> None:
    sb = healthy_sandbox
    topic = topic_factory(partitions=6)
    admin = sb.admin()
    victim = 2
    before = describe_partitions(admin, [topic])
    hosted = before[before["replicas"].map(lambda r: victim in r)]
    assert not hosted.empty

    sb.kill(victim)
    t_kill = time.monotonic()
    gone_after = sb.wait_unregistered(victim, timeout_s=15)
    # broker.session.timeout.ms=3000 in the sandbox; allow polling and scheduling slack.
    assert gone_after < 3.0 + 3.0, f"fenced after {gone_after:.1f} s"

    def isr_shrunk() -> bool:
        now = describe_partitions(admin, [topic])
        mine = now[now["replicas"].map(lambda r: victim in r)]
        return len(mine) == len(hosted) and all(victim not in isr for isr in mine["isr"])

    wait_until(isr_shrunk, timeout_s=15, what="ISR without the killed broker")
    shrink_s = time.monotonic() - t_kill
    assert shrink_s < 15

    sb.wipe_and_replace(victim, timeout_s=60)
    assert victim in {b.broker_id for b in describe_cluster(admin).brokers}
    wait_until(
        lambda: not_fully_replicated(describe_partitions(admin)).empty,
        timeout_s=90,
        what="full ISR on every partition after wipe-and-replace",
    )
    after = describe_partitions(admin, [topic])
    assert all(victim in isr for isr in after[after["replicas"].map(lambda r: victim in r)]["isr"])


def test_wipe_and_replace_really_empties_the_disk(healthy_sandbox: Sandbox) -> None:
    sb = healthy_sandbox
    node = sb.layout.broker(5)
    data = sb.layout.data_dir(node)
    marker = data / "kafka-medic-test-marker"
    marker.write_text("old disk")
    old_meta = (data / "meta.properties").read_text()
    sb.wipe_and_replace(5, timeout_s=60)
    assert not marker.exists()
    new_meta = (data / "meta.properties").read_text()
    assert f"cluster.id={sb.cluster_id}" in new_meta and "node.id=5" in new_meta
    assert old_meta != new_meta, "a fresh disk gets a new directory.id"


def test_hang_then_resume(healthy_sandbox: Sandbox, topic_factory) -> None:
    sb = healthy_sandbox
    topic = topic_factory(partitions=6)
    admin = sb.admin()
    sb.hang(3)
    assert next(s for s in sb.status() if s.node_id == 3).process == "hung"
    # A stopped JVM sends no heartbeats: the controller fences it after the session timeout.
    sb.wait_unregistered(3, timeout_s=15)
    # Asked of the live brokers only, by a fresh client each time: a client that already talks to
    # the hung broker may send it every metadata request and time out (seen: 20 s of "Failed to
    # get metadata: Local: Timed out" while the cluster itself had long dropped broker 3).
    live = ",".join(f"127.0.0.1:{sb.layout.broker(b).port}" for b in (1, 2, 4, 5, 6))

    def dropped() -> bool:
        fresh = sb.admin(**{"bootstrap.servers": live})
        return all(3 not in isr for isr in describe_partitions(fresh, [topic])["isr"])

    wait_until(dropped, timeout_s=30, what="hung broker dropped from ISR")
    sb.resume(3)
    sb.wait_registered([3], timeout_s=30)
    assert next(s for s in sb.status() if s.node_id == 3).process == "running"
    wait_until(
        lambda: not_fully_replicated(describe_partitions(admin, [topic])).empty,
        timeout_s=60,
        what="ISR full again after resume",
    )


KEY_METRICS = (
    "kafka_server_replicamanager_underreplicatedpartitions",
    "kafka_server_replicamanager_underminisrpartitioncount",
    "kafka_server_brokertopicmetrics_bytesinpersec_oneminuterate",
    "kafka_server_brokertopicmetrics_bytesoutpersec_oneminuterate",
    "kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_oneminuterate",
    "kafka_network_socketserver_networkprocessoravgidlepercent",
    "kafka_server_replicamanager_isrshrinkspersec_oneminuterate",
    "kafka_server_replicamanager_isrexpandspersec_oneminuterate",
    'kafka_network_requestmetrics_totaltimems_99thpercentile{request="Produce"}',
    'kafka_network_requestmetrics_requestqueuetimems_99thpercentile{request="Produce"}',
    'kafka_network_requestmetrics_remotetimems_99thpercentile{request="Produce"}',
)


def test_jmx_exporter_serves_key_metrics_on_every_node(healthy_sandbox: Sandbox) -> None:
    for spec in healthy_sandbox.layout.broker_specs:
        text = urllib.request.urlopen(spec.metrics_url, timeout=10).read().decode()
        names = {line.split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
        missing = [m for m in KEY_METRICS if m not in names]
        assert not missing, f"broker {spec.node_id} lacks {missing}"
    ctrl = urllib.request.urlopen(healthy_sandbox.layout.controller.metrics_url, timeout=10).read().decode()
    assert "kafka_controller_kafkacontroller_activecontrollercount 1.0" in ctrl


# ------------------------------------------------------------------ bad input


def test_unknown_broker_id_is_a_clear_error(healthy_sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match=r"unknown node id 99; this sandbox has nodes 1, 2, 3, 4, 5, 6, 100 \(100"):
        healthy_sandbox.kill(99)


def test_the_controller_is_killed_and_started_like_any_node(healthy_sandbox: Sandbox) -> None:
    """``kill 100`` / ``start 100`` from the CLI: the controller (node 100) is a node like the others."""
    sb = healthy_sandbox
    cli = [sys.executable, "-m", "deployments.cli", "sandbox", "--state-dir", str(sb.layout.state_dir)]
    proc = subprocess.run([*cli, "kill", "100"], capture_output=True, text=True, timeout=60, env={**os.environ})
    assert proc.returncode == 0 and "controller 100 killed" in proc.stdout, proc.stderr
    assert next(s for s in sb.status(timeout_s=3) if s.node_id == 100).process == "stopped"
    proc = subprocess.run([*cli, "start", "100"], capture_output=True, text=True, timeout=180, env={**os.environ})
    assert proc.returncode == 0 and "controller 100 started" in proc.stdout, proc.stderr
    assert next(s for s in sb.status(timeout_s=3) if s.node_id == 100).process == "running"
    assert len(sb.registered_brokers()) == 6


def test_starting_twice_is_refused(healthy_sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="already running"):
        healthy_sandbox.up()
    assert len(healthy_sandbox.registered_brokers()) == 6  # and nothing was disturbed


def test_missing_java_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no java (nor anything else) on PATH
    sb = Sandbox(SandboxLayout(state_dir=tmp_path / "sb", port_base=25090))
    with pytest.raises(SandboxError, match=r"'java' was not found on PATH: install a Java 17\+ runtime"):
        sb.up()
    assert not (tmp_path / "sb").exists()


def test_port_taken_is_a_clear_error(tmp_path: Path) -> None:
    layout = SandboxLayout(state_dir=tmp_path / "sb", port_base=25290)
    with socket.socket() as s:
        s.bind(("127.0.0.1", layout.broker(2).port))
        s.listen(1)
        with pytest.raises(
            SandboxError, match=rf"port {layout.broker(2).port} \(broker-2 listener\) is already in use"
        ):
            Sandbox(layout).up()
    assert not Sandbox(layout).running_nodes()


def test_bad_layouts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="brokers must be between 1 and 50"):
        SandboxLayout(state_dir=tmp_path, brokers=0)
    with pytest.raises(SandboxError, match="racks must be between 1 and the broker count"):
        SandboxLayout(state_dir=tmp_path, brokers=2, racks=3)
    with pytest.raises(SandboxError, match="port_base 32000 puts ports outside"):
        SandboxLayout(state_dir=tmp_path, port_base=32000)
    with pytest.raises(SandboxError, match="broker_session_timeout_ms must be between 1000 and 60000, got 500"):
        SandboxLayout(state_dir=tmp_path, broker_session_timeout_ms=500)


def test_session_timeout_reaches_every_node_file(tmp_path: Path) -> None:
    """Fast fencing (3 s) by default; a layout may ask for Kafka's own 9 s (the listener-probe tests)."""
    fast = SandboxLayout(state_dir=tmp_path)
    slow = SandboxLayout(state_dir=tmp_path, broker_session_timeout_ms=9000)
    for layout, want in ((fast, "3000"), (slow, "9000")):
        for node in layout.nodes:
            text = render_properties(layout, node)
            assert f"broker.session.timeout.ms={want}\n" in text
            assert text.count("broker.session.timeout.ms=") == 1


def test_cli_error_is_one_line_and_nonzero(healthy_sandbox: Sandbox) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "deployments.cli", "sandbox", "--state-dir", str(healthy_sandbox.layout.state_dir),
         "kill", "42"],
        capture_output=True, text=True, timeout=60, env={**os.environ},
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "unknown node id 42" in proc.stderr
    assert len(healthy_sandbox.registered_brokers()) == 6


def test_cli_status_reads_a_running_sandbox(healthy_sandbox: Sandbox) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "deployments.cli", "sandbox", "--state-dir", str(healthy_sandbox.layout.state_dir),
         "status"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len([ln for ln in lines if " broker " in ln and " yes " in ln]) == 6
