"""Apache Kafka's own broker from Maven Central's jars, one node in KRaft mode.

`install` resolves `deploy/kafka/pom.xml` (kafka_2.13 and its runtime dependencies) with Maven
into the engines cache. `KafkaNode` writes a server.properties for a data directory and gives
the two commands the launcher runs: format the storage once (kafka.tools.StorageTool), then
start kafka.Kafka. The settings mirror the apache/kafka service of docker-compose.yml.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mentoring.engines.cache import DEPLOY, cache_dir

VERSION = "3.9.1"
POM = DEPLOY / "kafka" / "pom.xml"
LOG4J = DEPLOY / "kafka" / "log4j.properties"
# A single local node needs little heap; Kafka's own scripts default to 1 GB.
HEAP_OPTS = ("-Xms256m", "-Xmx512m")
# What a message may weigh: services.common.events.MAX_MESSAGE_BYTES (not imported here: the
# launcher loads none of the services' code).
MESSAGE_MAX_BYTES = 16 * 1024 * 1024


class EngineMissing(RuntimeError):
    pass


def _stamp() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def libs_dir(env: Mapping[str, str] = os.environ) -> Path:
    return cache_dir(env) / f"kafka-{VERSION}" / "libs"


def installed(env: Mapping[str, str] = os.environ) -> bool:
    stamp = libs_dir(env) / ".complete"
    return stamp.is_file() and stamp.read_text().strip() == _stamp()


def install(env: Mapping[str, str] = os.environ) -> Path:
    """Copy the broker's jars into the cache with Maven, unless this pom's jars are there."""
    target = libs_dir(env)
    if installed(env):
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise EngineMissing("Maven (mvn) is not installed: `make engine-deps` installs it")
    staging = target.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run(
        [
            mvn,
            "--batch-mode",
            "--file",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ],
        check=True,
    )
    (staging / ".complete").write_text(_stamp())
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def java() -> str:
    home = os.environ.get("JAVA_HOME", "").strip()
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not found or not Path(found).exists():
        raise EngineMissing("Java is not installed: `make engine-deps` installs it")
    return found


@dataclass(frozen=True, slots=True)
class KafkaNode:
    """One broker-and-controller node on loopback, its log segments under data_dir."""

    data_dir: Path
    port: int
    controller_port: int
    partitions: int = 6

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / "logs"

    def properties(self) -> str:
        listener = f"PLAINTEXT://127.0.0.1:{self.port}"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"{listener},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": listener,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.log_dirs),
            "num.partitions": str(self.partitions),
            "offsets.topic.replication.factor": "1",
            # Fewer offset partitions than Kafka's 50: one node, a handful of groups, and a
            # faster first start. docker-compose.yml keeps the default.
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            # The largest message the services send (services/common/kafka.py).
            "message.max.bytes": str(MESSAGE_MAX_BYTES),
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def classpath(self, env: Mapping[str, str] = os.environ) -> str:
        if not installed(env):
            raise EngineMissing(
                f"Apache Kafka {VERSION} is not prepared: run `make engines` "
                "(or `mentoring engines install`)"
            )
        return f"{libs_dir(env)}/*"

    def _java_argv(self, main: str, env: Mapping[str, str]) -> list[str]:
        return [
            java(),
            *HEAP_OPTS,
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{LOG4J}",
            "-cp",
            self.classpath(env),
            main,
        ]

    def prepare(self, env: Mapping[str, str] = os.environ, cluster_id: str = "") -> None:
        """Write server.properties; format the storage the first time (it then persists), for
        `cluster_id` or a new random one."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.properties_file.write_text(self.properties())
        if (self.log_dirs / "meta.properties").exists():
            return
        argv = self._java_argv("kafka.tools.StorageTool", env)
        # One argument with "=": a random id may start with "-", which argparse would
        # otherwise read as an option (about one format in 64 failed that way).
        argv += [
            "format",
            f"--cluster-id={cluster_id or _cluster_id()}",
            f"--config={self.properties_file}",
        ]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"formatting Kafka's storage failed:\n{done.stdout}{done.stderr}")

    def start_argv(self, env: Mapping[str, str] = os.environ) -> list[str]:
        return [*self._java_argv("kafka.Kafka", env), str(self.properties_file)]


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding (what random-uuid gives)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
