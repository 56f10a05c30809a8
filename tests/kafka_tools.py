"""Kafka's own command-line tools, run as argv against the test sandbox: a second opinion that does
not go through any kafka-medic code (our admin reads could share a blind spot with our writes).

* ``kafka-configs.sh --describe`` is ``kafka.admin.ConfigCommand``, in the broker jar the sandbox
  already runs on (``Sandbox.jars``);
* ``kafka-reassign-partitions.sh --list`` is ``org.apache.kafka.tools.reassign.ReassignPartitionsCommand``
  in ``org.apache.kafka:kafka-tools``, fetched once with Maven into the same cache as the broker
  jars (``~/.cache/kafka-medic/kafka-tools-<version>``), as ``bench/bench_generate_compare.py`` does.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.sandbox.jars import kafka_tools_libs, require_tool

TOOL_TIMEOUT_S = 120
THROTTLE_KEYS = (
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
)


def tools_libs() -> Path:
    """kafka-tools and its dependencies (downloaded once, then cached)."""
    return kafka_tools_libs()


def _java(classpath: str, main: str, *args: str) -> str:
    java = require_tool("java", "install a Java 17+ runtime")
    argv = [java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", classpath, main, *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    assert proc.returncode == 0, f"{main} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def throttle_configs(sb: Sandbox, *, brokers: list[int]) -> list[str]:
    """Every replication-throttle config ``kafka-configs.sh --describe`` shows on ``brokers`` and on
    all topics, as ``"broker 2 leader.replication.throttled.rate=..."`` / ``"topic t ...=..."`` lines."""
    bootstrap = sb.layout.bootstrap_servers
    classpath = sb.jars.classpath
    main = "kafka.admin.ConfigCommand"
    found: list[str] = []
    for b in brokers:
        out = _java(classpath, main, "--bootstrap-server", bootstrap, "--describe", "--entity-type", "brokers",
                    "--entity-name", str(b))  # fmt: skip
        found += [f"broker {b} {kv}" for kv in _throttles_in(out)]
    out = _java(classpath, main, "--bootstrap-server", bootstrap, "--describe", "--entity-type", "topics")
    topic = "?"
    for line in out.splitlines():
        m = re.match(r"Dynamic configs for topic (\S+) are:", line.strip())
        if m:
            topic = m.group(1)
            continue
        found += [f"topic {topic} {kv}" for kv in _throttles_in(line)]
    return found


def _throttles_in(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        item = line.strip().split(" ", 1)[0]
        if item.split("=", 1)[0] in THROTTLE_KEYS:
            out.append(item)
    return out


def reassignments_listed(sb: Sandbox) -> str:
    """What ``kafka-reassign-partitions.sh --list`` prints (``"No partition reassignments found."``
    when there are none)."""
    classpath = str(tools_libs() / "*")
    main = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
    return _java(classpath, main, "--bootstrap-server", sb.layout.bootstrap_servers, "--list").strip()
