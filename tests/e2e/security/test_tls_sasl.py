"""kafka-medic on a SASL_SSL + SCRAM-SHA-512 cluster (real brokers): it connects with the block's
credentials, everything else is refused, and no password ever shows up in what it prints or stores.

"Anywhere" means everything this process can observe: every log record (DEBUG on root, prefect,
kafka-python, kafka_medic and the HTTP stack, non-propagating Prefect loggers included), the flow
run's logs read back from the Prefect API (API logging is switched on for that one run), stdout and
stderr at file-descriptor level (librdkafka writes there natively), artifacts, the flow run and its
task runs, events, the block document as the UI sees it, audit records, the HealthReport, and the
block's repr/str/describe().
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import stat
import struct
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import kafka.errors
import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.events.filters import EventAnyResourceFilter, EventFilter
from prefect.logging.handlers import APILogHandler
from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings
from pydantic import SecretStr

from blocks.kafka_cluster import KafkaCluster
from blocks.sandbox import sandbox_cluster, secure_cluster_block
from flows.health_check import HealthReport, health_check
from kafka_medic.audit import AuditLog, AuditRecord, AuditStatus, read_audit
from kafka_medic.errors import SandboxError
from kafka_medic.monitor import kip455
from kafka_medic.monitor.cluster_reads import describe_partitions, not_fully_replicated
from kafka_medic.monitor.collector import collect_snapshot
from kafka_medic.policy import HealthPolicy
from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.sandbox.layout import SandboxLayout, render_properties
from kafka_medic.sandbox.security import (
    SCRAM_ITERATIONS,
    ScramUser,
    ensure_material,
    load_secrets,
    salted_password,
    scram_format_arg,
    storage_format_args,
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.anyio]

_quiet = logging.getLogger("kafka_medic.librdkafka")


# ----------------------------------------------------------------------------------- helpers


def assert_no_secret(where: str, text: str, secrets: Iterable[str]) -> None:
    """Fail if any secret occurs in ``text``; the failure message shows context, never the secret.

    Whitespace is also ignored once, so a secret split by line wrapping is still found.
    """
    squeezed = re.sub(r"\s+", "", text)
    for secret in secrets:
        for haystack in (text, squeezed):
            at = haystack.find(secret)
            if at >= 0:
                context = haystack[max(0, at - 150) : at + len(secret) + 60].replace(secret, "<SECRET>")
                pytest.fail(f"a password appears in {where}: ...{context}...", pytrace=False)


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the captured records carry: formatted line, message, args, exception, extra fields."""
    parts = []
    for r in caplog.records:
        parts += [caplog.handler.format(r), r.getMessage(), repr(vars(r))]
    return "\n".join(parts)


def _api_versions_request(correlation_id: int) -> bytes:
    """A Kafka ApiVersions v0 request in the PLAINTEXT wire format (size-prefixed)."""
    client_id = b"probe"
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


def _admin_errors(conf: dict) -> tuple[AdminClient, list[KafkaError]]:
    errors: list[KafkaError] = []
    admin = AdminClient({**conf, "logger": _quiet, "socket.timeout.ms": 3000, "error_cb": errors.append})
    return admin, errors


def _list_topics_fails(conf: dict) -> list[KafkaError]:
    """Metadata with ``conf`` must fail; return the errors the client reported on the way."""
    admin, errors = _admin_errors(conf)
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=6)
    admin.poll(1)  # error_cb runs only while the client is polled
    return errors


async def _save(block: KafkaCluster) -> str:
    await block.save(block.name, overwrite=True)
    return block.name


def _name() -> str:
    return f"sec-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------- what the broker refuses


def test_plaintext_kafka_protocol_is_not_served(healthy_secure: Sandbox) -> None:
    """A raw PLAINTEXT ApiVersions request gets no Kafka answer: the listener speaks TLS only."""
    for spec in healthy_secure.layout.broker_specs:
        with socket.create_connection(("127.0.0.1", spec.port), timeout=5) as s:
            s.sendall(_api_versions_request(correlation_id=4242))
            data = b""
            with contextlib.suppress(TimeoutError, ConnectionResetError):
                while len(data) < 8:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
        is_kafka_answer = len(data) >= 8 and struct.unpack(">i", data[4:8])[0] == 4242
        assert not is_kafka_answer, f"broker {spec.node_id} answered a PLAINTEXT Kafka request"


def test_plaintext_clients_cannot_connect(healthy_secure: Sandbox) -> None:
    sb = healthy_secure
    _list_topics_fails({"bootstrap.servers": sb.layout.bootstrap_servers, "security.protocol": "PLAINTEXT"})

    with pytest.raises(kafka.errors.KafkaError):  # "Unable to bootstrap" (a timeout)
        KafkaAdminClient(
            bootstrap_servers=sb.layout.bootstrap_servers.split(","),
            security_protocol="PLAINTEXT",
            request_timeout_ms=3000,
            bootstrap_timeout_ms=5000,
        )

    # A PLAINTEXT block (what someone who forgot the security settings would have) reports the cluster
    # unreachable instead of crashing or seeing brokers.
    result = collect_snapshot(sandbox_cluster(sb, name="plain"), timeout_s=4)
    assert not result.snapshot.brokers["alive"].any()
    assert any("unreachable" in i.message for i in result.snapshot.issues), result.snapshot.issues


def test_wrong_password_and_unknown_user_are_refused(
    healthy_secure: Sandbox, secrets_in_use: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    cs = healthy_secure.client_security()
    assert cs is not None
    good = cs.confluent_config()
    wrong = f"wrong-{uuid.uuid4().hex}"
    for overrides in ({"sasl.password": wrong}, {"sasl.username": f"nobody-{uuid.uuid4().hex[:6]}"}):
        errors = _list_topics_fails({**good, **overrides})
        auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
        assert auth, f"expected an authentication error, got {[str(e) for e in errors]}"
        shown = " ".join(str(e) for e in errors)
        assert_no_secret("librdkafka's authentication error", shown, [*secrets_in_use, wrong])

    kp = {**cs.kafka_python_config(), "sasl_plain_password": wrong}
    with caplog.at_level(logging.WARNING, logger="kafka"), pytest.raises(kafka.errors.KafkaError) as exc_info:
        KafkaAdminClient(**kp, request_timeout_ms=3000, bootstrap_timeout_ms=5000)
    assert_no_secret("kafka-python's error", repr(exc_info.value), [*secrets_in_use, wrong])
    assert_no_secret("kafka-python's log", caplog.text, [*secrets_in_use, wrong])

    # The right credentials do work (so the refusals above are about the credentials).
    admin, _ = _admin_errors(good)
    assert len(admin.list_topics(timeout=10).brokers) == 3


def test_certificate_is_verified(healthy_secure: Sandbox) -> None:
    """Without the sandbox CA the TLS handshake fails: clients really verify the broker certificate."""
    cs = healthy_secure.client_security()
    assert cs is not None
    conf = {k: v for k, v in cs.confluent_config().items() if k != "ssl.ca.location"}
    errors = _list_topics_fails(conf)
    assert any(e.code() == KafkaError._SSL or "SSL" in str(e) for e in errors), [str(e) for e in errors]


def test_secret_files_are_owner_only_and_no_clear_password_leaves_them(
    healthy_secure: Sandbox, secrets_in_use: list[str]
) -> None:
    layout = healthy_secure.layout
    assert stat.S_IMODE(layout.security_dir.stat().st_mode) == 0o700
    for path in (layout.credentials_file, layout.keystore_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for spec in layout.broker_specs:  # they hold the inter-broker password
        assert stat.S_IMODE(layout.properties_path(spec).stat().st_mode) == 0o600
    # The only files that may hold a clear password: the credentials file and the brokers' properties.
    allowed = {layout.credentials_file, *(layout.properties_path(s) for s in layout.broker_specs)}
    for path in layout.state_dir.rglob("*"):
        if path.is_file() and path not in allowed and "data" not in path.relative_to(layout.state_dir).parts:
            assert_no_secret(str(path), path.read_text(errors="replace"), secrets_in_use)
    # The StorageTool gets the salted SCRAM form, never the clear password (command lines are public).
    args = " ".join(storage_format_args(layout))
    assert args.count("--add-scram") == 2 and "saltedpassword=" in args
    assert_no_secret("the StorageTool command line", args, secrets_in_use)
    # ...and it is RFC 5802's Hi() (the broker accepted it: every client test here authenticates).
    user = ScramUser("u", SecretStr("pencil"))
    salt = b"0123456789abcdef"
    assert salted_password("pencil", salt) == salted_password("pencil", salt, SCRAM_ITERATIONS)
    assert "pencil" not in scram_format_arg(user, salt=salt)


def test_block_and_client_security_never_show_the_password(healthy_secure: Sandbox, secrets_in_use: list[str]) -> None:
    block = secure_cluster_block(healthy_secure, "show")
    cs = healthy_secure.client_security()
    assert cs is not None and block.sasl_password is not None
    assert block.sasl_password.get_secret_value() == cs.password.get_secret_value()
    shown = "\n".join(
        [
            repr(block), str(block), block.describe(), block.model_dump_json(), repr(block.model_dump()),
            repr(cs), str(cs), repr(load_secrets(healthy_secure.layout)),
        ]
    )  # fmt: skip
    assert_no_secret("the block's or the client settings' printed forms", shown, secrets_in_use)
    assert "password=set" in block.describe()
    # Only the two client-config methods reveal it, because a client needs it.
    assert block.confluent_config()["sasl.password"] in secrets_in_use
    assert block.kafka_python_config()["sasl_plain_password"] in secrets_in_use


# ------------------------------------------------------------ what works with the credentials


def test_collect_snapshot_over_sasl_ssl(
    healthy_secure: Sandbox, secure_topic, debug_logs: pytest.LogCaptureFixture, secrets_in_use: list[str]
) -> None:
    topic = secure_topic(partitions=3)
    block = secure_cluster_block(healthy_secure, "collect")
    snap = collect_snapshot(block, timeout_s=10).snapshot
    assert snap.issues == [], snap.issues
    assert sorted(snap.brokers["broker_id"]) == [1, 2, 3] and snap.brokers["alive"].all()
    assert set(snap.brokers["rack"]) == {"az-a", "az-b", "az-c"}
    assert snap.brokers["metrics_ok"].all(), "the JMX exporters stay plain HTTP and answer"
    mine = snap.partitions[snap.partitions["topic"] == topic]
    assert len(mine) == 3 and (mine["replicas"].map(len) == 3).all()
    # DescribeLogDirs and ListPartitionReassignments went through kafka-python with SASL_SSL + SCRAM.
    assert sorted(snap.log_dirs["broker_id"].unique()) == [1, 2, 3]
    assert snap.log_dirs["error"].isna().all()
    assert snap.reassignments.empty
    assert_no_secret("log records", log_text(debug_logs), secrets_in_use)


async def test_health_check_over_sasl_ssl_leaks_no_secret(
    healthy_secure: Sandbox,
    prefect_server: None,
    debug_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    secrets_in_use: list[str],
) -> None:
    name = await _save(secure_cluster_block(healthy_secure, _name()))
    with temporary_settings({PREFECT_LOGGING_TO_API_ENABLED: True}):
        state = await health_check(name, act=False, return_state=True)
        await APILogHandler.aflush()
    report: HealthReport = await state.result()
    flow_run_id = state.state_details.flow_run_id

    # Everything was collected over SASL_SSL. (Not "healthy": on a loaded 2-core machine the latency
    # rule may flag a slow broker, which is about load, not security.)
    assert not [f for f in report.findings if f["rule"] == "collection_error"], report.findings
    assert report.counts["critical"] == 0, report.findings

    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"broker-health-{name}", f"health-{name}"]))
        )
        api_logs = await _read_logs(client, flow_run_id)
        flow_run = await client.read_flow_run(flow_run_id)
        task_runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        doc_public = await client.read_block_document_by_name(name, "kafka-cluster", include_secrets=False)
        doc_secret = await client.read_block_document_by_name(name, "kafka-cluster", include_secrets=True)
        events = await _read_events(client, flow_run_id)

    assert {a.key for a in artifacts} == {f"broker-health-{name}", f"health-{name}"}
    table = next(a for a in artifacts if a.key == f"broker-health-{name}")
    rows = _table_rows(table.data)
    assert sorted(r["broker_id"] for r in rows) == [1, 2, 3] and all(r["alive"] for r in rows), rows
    assert api_logs, "the flow run's logs reached the API (API logging was on for this run)"
    assert task_runs, "the collect task ran"
    assert events, "the flow run's events reached the API"
    # Sanity: the API does store the secret (that is where blocks keep it), so the scans look at real data.
    assert str(doc_secret.data.get("sasl_password")) in secrets_in_use

    out, err = capfd.readouterr()
    scanned = {
        "the HealthReport": report.model_dump_json(),
        "artifacts": "\n".join(a.model_dump_json() for a in artifacts),
        "the flow run's API logs": "\n".join(log.model_dump_json() for log in api_logs),
        "the flow run": flow_run.model_dump_json(),
        "task runs": "\n".join(t.model_dump_json() for t in task_runs),
        "events": "\n".join(e.model_dump_json() for e in events),
        "the block document as the UI sees it": doc_public.model_dump_json(),
        "log records": log_text(debug_logs),
        "stdout": out,
        "stderr": err,
    }
    for where, text in scanned.items():
        assert_no_secret(where, text, secrets_in_use)


async def test_wrong_password_is_reported_without_leaking(
    healthy_secure: Sandbox,
    prefect_server: None,
    debug_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    secrets_in_use: list[str],
) -> None:
    """Error paths are where credentials leak (exception text, config dumps): a bad block must be a finding."""
    wrong = f"wrong-{uuid.uuid4().hex}"
    name = await _save(secure_cluster_block(healthy_secure, _name(), sasl_password=SecretStr(wrong)))
    report = await health_check(name, act=False)
    assert not report.healthy
    errors = [f for f in report.findings if f["rule"] == "collection_error"]
    assert any("unreachable" in f["summary"] for f in errors), report.findings
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"broker-health-{name}", f"health-{name}"]))
        )
    out, err = capfd.readouterr()
    every = [*secrets_in_use, wrong]
    assert_no_secret("the HealthReport", report.model_dump_json(), every)
    assert_no_secret("artifacts", "\n".join(a.model_dump_json() for a in artifacts), every)
    assert_no_secret("log records", log_text(debug_logs), every)
    assert_no_secret("stdout/stderr", out + "\n" + err, every)


def test_audit_log_round_trip_with_credentials(
    healthy_secure: Sandbox, debug_logs: pytest.LogCaptureFixture, secrets_in_use: list[str]
) -> None:
    block = secure_cluster_block(healthy_secure, "audit")
    conf = block.confluent_config()
    topic = f"__audit-{uuid.uuid4().hex[:6]}"
    log = AuditLog(conf, topic)
    first = AuditRecord(block.name, "replace_broker", AuditStatus.STARTED, "replacing 2", brokers=(2,))
    # A careless caller hands the whole client config and the block to ``details``: still no secret.
    second = AuditRecord(
        block.name, "replace_broker", AuditStatus.FINISHED, "replaced 2", brokers=(2,),
        details={"client": conf, "block": block, "cluster": block.describe(), "sasl": block.sasl_password},
    )  # fmt: skip
    assert log.write(first) and log.write(second)
    records = read_audit(conf, topic)
    assert [r["status"] for r in records] == ["started", "finished"]
    assert records[1]["details"]["client"]["sasl.username"] == "admin"
    assert_no_secret("audit records", json.dumps(records), secrets_in_use)
    assert_no_secret("log records", log_text(debug_logs), secrets_in_use)
    # Without credentials the audit topic cannot be read at all.
    plain = {"bootstrap.servers": healthy_secure.layout.bootstrap_servers, "socket.timeout.ms": 3000}
    with pytest.raises(KafkaException):
        read_audit(plain, topic, timeout_s=4)
    with contextlib.suppress(Exception):
        healthy_secure.admin().delete_topics([topic])[topic].result(timeout=20)


async def test_killed_broker_is_reported_over_sasl_ssl(
    healthy_secure: Sandbox,
    secure_topic,
    prefect_server: None,
    debug_logs: pytest.LogCaptureFixture,
    secrets_in_use: list[str],
) -> None:
    sb = healthy_secure
    secure_topic(partitions=3)
    name = await _save(secure_cluster_block(sb, _name(), policy=HealthPolicy(dead_broker_grace_s=3600)))
    first = await health_check(name, act=False)  # remembers broker 3's rack and host
    assert not [f for f in first.findings if f["rule"] in ("broker_down", "collection_error")], first.findings
    sb.kill(3)
    deadline = time.monotonic() + 40
    report = None
    while time.monotonic() < deadline:
        report = await health_check(name, act=False)
        # A refused listener makes the broker down at once; its partitions show under-replicated
        # only once the controller has fenced it and the leaders shrunk their ISR: wait for both.
        rules = {f["rule"] for f in report.findings}
        if {"broker_down", "under_replicated"} <= rules:
            break
        await _sleep(0.5)
    assert report is not None
    down = [f for f in report.findings if f["rule"] == "broker_down"]
    assert down and down[0]["brokers"] == [3], report.findings
    assert any(f["rule"] == "under_replicated" for f in report.findings)
    # The surviving brokers are still read over SASL_SSL: only the dead broker is missing.
    assert not [f for f in report.findings if f["rule"] == "collection_error" and "unreachable" in f["summary"]]
    assert_no_secret("the HealthReport", report.model_dump_json(), secrets_in_use)
    assert_no_secret("log records", log_text(debug_logs), secrets_in_use)


def test_kafka_python_admin_debug_log_does_not_leak_password(
    healthy_secure: Sandbox, debug_logs: pytest.LogCaptureFixture, secrets_in_use: list[str]
) -> None:
    block = secure_cluster_block(healthy_secure, "kp-debug")
    with kip455.kafka_python_admin(block.kafka_python_config(), 5000) as kadmin:
        kip455.list_reassignments(kadmin, 5000)
    assert_no_secret("kafka-python DEBUG log records", log_text(debug_logs), secrets_in_use)


# ----------------------------------------------------------------------------------- utilities


async def _read_logs(client, flow_run_id) -> list:
    """The flow run's logs from the API; they are written asynchronously, so wait (bounded)."""
    deadline = time.monotonic() + 15
    logs: list = []
    while time.monotonic() < deadline:
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        if logs:
            return logs
        await _sleep(0.3)
    return logs


async def _read_events(client, flow_run_id) -> list:
    """Events about the flow run or its task runs (persisted asynchronously: wait, bounded)."""
    flt = EventFilter(any_resource=EventAnyResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]))
    deadline = time.monotonic() + 20
    events: list = []
    while time.monotonic() < deadline:
        page = await client.read_events(filter=flt, limit=50)
        events = list(page.events)
        for _ in range(10):  # bounded paging
            if page.next_page is None:
                break
            page = await client.read_events_page(page.next_page)
            events += page.events
        if any(e.event.startswith("prefect.flow-run.Completed") for e in events):
            return events
        await _sleep(0.5)
    return events


def _table_rows(data: object) -> list[dict]:
    return json.loads(data) if isinstance(data, str) else list(data)  # type: ignore[arg-type]


async def _sleep(s: float) -> None:
    import anyio

    await anyio.sleep(s)


# ------------------------------------------------------------------ replacing a broker, securely


def test_wipe_and_replace_rejoins_over_sasl_ssl(healthy_secure: Sandbox, secure_topic) -> None:
    """A replaced broker (empty disk, same id) authenticates to its peers with SCRAM and catches up."""
    sb = healthy_secure
    topic = secure_topic(partitions=3)
    sb.wipe_and_replace(2, timeout_s=90)
    admin = sb.admin()
    wait_until(
        lambda: not_fully_replicated(describe_partitions(admin, [topic])).empty,
        timeout_s=90,
        what="full ISR after replacing broker 2 on the secure sandbox",
    )
    # registered_brokers() polls DescribeCluster with its own timeout: right after a replacement,
    # librdkafka may route DescribeCluster to a "controller" broker that is still reconnecting.
    wait_until(lambda: 2 in sb.registered_brokers(), timeout_s=30, what="broker 2 registered over SASL_SSL")


# ------------------------------------------------------------------------------ pure, no brokers


def test_secure_layout_renders_tls_and_scram(tmp_path: Path) -> None:
    layout = SandboxLayout(state_dir=tmp_path, brokers=3, racks=3, port_base=29500, security="sasl_ssl")
    broker = render_properties(layout, layout.broker(1), inter_broker_password="pw-123")
    props = dict(line.split("=", 1) for line in broker.splitlines())
    assert props["listeners"] == "SASL_SSL://127.0.0.1:29501" == props["advertised.listeners"]
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["ssl.keystore.type"] == "PEM" and props["ssl.keystore.location"] == str(layout.keystore_file)
    assert props["ssl.truststore.type"] == "PEM" and props["ssl.truststore.location"] == str(layout.ca_file)
    assert "pw-123" in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    controller = render_properties(layout, layout.controller)
    assert "listeners=CONTROLLER://127.0.0.1:29600" in controller and "pw-123" not in controller
    with pytest.raises(SandboxError, match="inter-broker SCRAM password"):
        render_properties(layout, layout.broker(1))
    with pytest.raises(SandboxError, match="security must be one of"):
        SandboxLayout(state_dir=tmp_path, security="tls")  # type: ignore[arg-type]


def test_plaintext_layout_is_unchanged_by_default(tmp_path: Path) -> None:
    layout = SandboxLayout(state_dir=tmp_path)
    assert layout.security == "plaintext" and not layout.secure
    text = render_properties(layout, layout.broker(1))
    assert "listeners=PLAINTEXT://127.0.0.1:19091" in text
    assert "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT" in text
    assert "ssl." not in text and "sasl" not in text
    assert Sandbox(layout).client_security() is None


def test_material_is_made_once_owner_only_and_valid(tmp_path: Path) -> None:
    from cryptography import x509

    layout = SandboxLayout(state_dir=tmp_path / "sb", security="sasl_ssl", port_base=29500)
    first = ensure_material(layout)
    keystore = layout.keystore_file.read_bytes()
    again = ensure_material(layout)
    assert again == first and layout.keystore_file.read_bytes() == keystore, "reused, not regenerated"
    assert first.admin.password.get_secret_value() != first.broker.password.get_secret_value()
    assert stat.S_IMODE(layout.credentials_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(layout.keystore_file.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in keystore and b"PRIVATE KEY" not in layout.ca_file.read_bytes()
    certs = x509.load_pem_x509_certificates(keystore)
    san = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    ca = x509.load_pem_x509_certificate(layout.ca_file.read_bytes())
    certs[0].verify_directly_issued_by(ca)
    cs = Sandbox(layout).client_security()
    assert cs is not None and cs.username == "admin" and cs.ca_file == layout.ca_file
    assert "**" in repr(cs) and first.admin.password.get_secret_value() not in repr(cs)


def test_flipping_an_existing_sandbox_to_secure_is_refused(tmp_path: Path) -> None:
    """The SCRAM users exist only if the controller was formatted secure: say so instead of hanging."""
    plain = SandboxLayout(state_dir=tmp_path / "sb", port_base=30000)
    meta = plain.data_dir(plain.controller) / "meta.properties"
    meta.parent.mkdir(parents=True)
    meta.write_text("cluster.id=x\n")
    (tmp_path / "sb" / "sandbox.json").write_text(json.dumps({"cluster_id": "x", "pids": {}, "layout": {}}))
    secure = Sandbox(SandboxLayout(state_dir=tmp_path / "sb", port_base=30000, security="sasl_ssl"))
    with pytest.raises(SandboxError, match="created with security='plaintext'"):
        secure.up(timeout_s=5)
    assert secure.running_nodes() == []
