"""Resolve the Kafka broker jars and the Prometheus JMX exporter agent from Maven Central.

The sandbox runs the real Apache Kafka broker, not an emulation. There is no Docker engine and no
Apache download mirror here, so the jars come from Maven Central through ``mvn`` into a cache
outside the repository, keyed by version: the second start downloads nothing.

A user who already has a Kafka distribution can point ``KAFKA_MEDIC_KAFKA_LIBS`` at its ``libs/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kafka_medic.errors import SandboxError

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "1.7.36"
JMX_EXPORTER_VERSION = "1.0.1"

#: Downloads are bounded: a hung Maven must not hang the sandbox (or CI) forever.
MVN_TIMEOUT_S = 900

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.kafka-medic</groupId>
  <artifactId>sandbox-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>{slf4j}</version>
    </dependency>
  </dependencies>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>org.slf4j</groupId>
        <artifactId>slf4j-api</artifactId>
        <version>{slf4j}</version>
      </dependency>
    </dependencies>
  </dependencyManagement>
</project>
"""


@dataclass(frozen=True)
class KafkaJars:
    """Where the broker classpath and the JMX exporter agent live on disk."""

    libs_dir: Path
    jmx_agent: Path

    @property
    def classpath(self) -> str:
        # java expands the quoted wildcard itself.
        return str(self.libs_dir / "*")


def cache_root() -> Path:
    """The cache outside the repo (``KAFKA_MEDIC_CACHE`` or ``~/.cache/kafka-medic``)."""
    return Path(os.environ.get("KAFKA_MEDIC_CACHE", Path.home() / ".cache" / "kafka-medic"))


def require_tool(name: str, hint: str) -> str:
    """Return the path of an executable or raise a one-line, actionable error."""
    path = shutil.which(name)
    if path is None:
        raise SandboxError(f"'{name}' was not found on PATH: {hint}")
    return path


def _run_mvn(args: list[str], cwd: Path, what: str) -> None:
    mvn = require_tool("mvn", "install Apache Maven (e.g. `apt-get install maven`) to fetch the Kafka jars")
    try:
        proc = subprocess.run(
            [mvn, "-B", "-q", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=MVN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"downloading {what} from Maven Central timed out after {MVN_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise SandboxError(
            f"downloading {what} from Maven Central failed (mvn exit {proc.returncode}); "
            f"check network access to Maven Central. Last output:\n{tail}"
        )


def ensure_jars(kafka_version: str = KAFKA_VERSION) -> KafkaJars:
    """Return the jars, downloading them once into the cache if needed."""
    root = cache_root()
    agent = root / f"jmx_prometheus_javaagent-{JMX_EXPORTER_VERSION}.jar"
    user_libs = os.environ.get("KAFKA_MEDIC_KAFKA_LIBS")
    if user_libs:
        libs = Path(user_libs)
        if not any(libs.glob("kafka_*.jar")):
            raise SandboxError(f"KAFKA_MEDIC_KAFKA_LIBS={libs} holds no kafka_*.jar; point it at a Kafka libs/ dir")
    else:
        libs = root / f"kafka-{kafka_version}" / "libs"
        marker = libs.parent / ".complete"
        if not marker.exists():
            work = libs.parent
            work.mkdir(parents=True, exist_ok=True)
            (work / "pom.xml").write_text(
                _POM.format(scala=SCALA_VERSION, kafka=kafka_version, log4j=LOG4J_VERSION, slf4j=SLF4J_VERSION)
            )
            if libs.exists():
                shutil.rmtree(libs)
            _run_mvn(
                ["dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={libs}"],
                work,
                f"Kafka {kafka_version} jars",
            )
            marker.write_text(kafka_version + "\n")
    if not agent.exists():
        root.mkdir(parents=True, exist_ok=True)
        _run_mvn(
            [
                "dependency:copy",
                f"-Dartifact=io.prometheus.jmx:jmx_prometheus_javaagent:{JMX_EXPORTER_VERSION}",
                f"-DoutputDirectory={root}",
            ],
            root,
            "the Prometheus JMX exporter agent",
        )
        if not agent.exists():
            raise SandboxError(f"mvn reported success but {agent} is missing")
    return KafkaJars(libs_dir=libs, jmx_agent=agent)


_TOOLS_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.kafka-medic</groupId>
  <artifactId>kafka-tools-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


def kafka_tools_libs(kafka_version: str = KAFKA_VERSION) -> Path:
    """``org.apache.kafka:kafka-tools`` and its dependencies (``kafka-reassign-partitions`` and the
    like, which the broker jars lack), fetched once with Maven next to the broker jars. For tests
    and benchmarks that want Kafka's own tools as a second opinion, run as argv."""
    work = cache_root() / f"kafka-tools-{kafka_version}"
    libs = work / "libs"
    marker = work / ".complete"
    if marker.exists():
        return libs
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(_TOOLS_POM.format(version=kafka_version))
    if libs.exists():
        shutil.rmtree(libs)
    _run_mvn(["dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={libs}"], work,
             f"kafka-tools {kafka_version}")  # fmt: skip
    marker.write_text(kafka_version + "\n")
    return libs
