"""Apache Kafka from Maven Central jars, run as a single-node KRaft broker+controller on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from smartbus.services.apt import ensure_packages
from smartbus.services.base import Service
from smartbus.services.java import find_java
from smartbus.services.process import live_pid, port_accepts, run_checked, spawn_detached, terminate

NODE_ID = 1
POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
# A modest heap: the machine is shared, and one broker with a handful of topics needs little.
JVM_OPTIONS = ("-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true")
MAIN_CLASS = "kafka.Kafka"


@dataclass(frozen=True)
class KafkaPaths:
    libs: Path
    data_dir: Path
    logs_dir: Path
    config: Path
    log4j_config: Path
    pidfile: Path


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as Kafka's Uuid prints), never
    starting with "-": the storage tool would take it for an option (one id in 64 did; Kafka's own
    Uuid.randomUuid draws again for the same reason)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def render_server_properties(paths: KafkaPaths, host: str, port: int, partitions: int) -> str:
    """server.properties for one combined broker+controller; every replication factor is 1.

    The controller listens on the next port up (19093 beside the default 19092).
    """
    controller_port = port + 1
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(paths.data_dir),
        "auto.create.topics.enable": "true",
        "num.partitions": str(partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        # One broker, a few consumer groups: Kafka's default of 50 partitions for the group offsets topic is for
        # clusters. The broker creates the topic when the first consumer group forms; 50 partitions took the
        # pipeline's first second with them.
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # One member joining should not wait 3 s for others that will never come.
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "log.retention.hours": "168",
        "log.segment.bytes": str(256 * 1024 * 1024),
    }
    lines = ["# Written by `smartbus services`; edits are overwritten at the next start."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def render_log4j2_properties(logs_dir: Path) -> str:
    """Broker logs to a size-capped rolling file, so a long run cannot fill the disk."""
    return "\n".join(
        [
            "status = warn",
            "appender.file.type = RollingFile",
            "appender.file.name = file",
            f"appender.file.fileName = {logs_dir / 'server.log'}",
            f"appender.file.filePattern = {logs_dir / 'server.log.%i'}",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = [%d] %p %m (%c)%n",
            "appender.file.policies.type = Policies",
            "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
            "appender.file.policies.size.size = 50MB",
            "appender.file.strategy.type = DefaultRolloverStrategy",
            "appender.file.strategy.max = 3",
            "rootLogger.level = info",
            "rootLogger.appenderRef.file.ref = file",
            "logger.kafka.name = kafka",
            "logger.kafka.level = info",
            "logger.apache.name = org.apache.kafka",
            "logger.apache.level = info",
            "",
        ]
    )


def kafka_version(libs: Path) -> str | None:
    """The broker version, read from the kafka_2.13-<version>.jar name."""
    for jar in sorted(libs.glob("kafka_2.13-*.jar")):
        return jar.name.removeprefix("kafka_2.13-").removesuffix(".jar")
    return None


def java_command(java: str, paths: KafkaPaths, main_class: str, arguments: Sequence[str]) -> list[str]:
    return [
        java,
        *JVM_OPTIONS,
        f"-Dlog4j2.configurationFile={paths.log4j_config}",
        f"-Dkafka.logs.dir={paths.logs_dir}",
        "-cp",
        f"{paths.libs}/*",
        main_class,
        *arguments,
    ]


async def _list_topics(bootstrap: str) -> set[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _create_topics(bootstrap: str, names: Sequence[str], partitions: int) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        missing = [name for name in names if name not in set(await admin.list_topics())]
        if missing:
            await admin.create_topics(
                [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in missing]
            )
        return missing
    finally:
        await admin.close()


class KafkaService(Service):
    name = "kafka"
    startup_timeout_seconds = 90.0
    stop_grace_seconds = 30.0

    def __init__(self, services_dir: Path, host: str, port: int, partitions: int, topics: Sequence[str]) -> None:
        super().__init__(services_dir)
        self.host = host
        self.port = port
        self.partitions = partitions
        self.topics = tuple(topics)
        self.java = "java"  # replaced by install() with one known to be new enough

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def paths(self) -> KafkaPaths:
        return KafkaPaths(
            libs=self.home / "libs",
            data_dir=self.home / "data",
            logs_dir=self.home / "logs",
            config=self.home / "server.properties",
            log4j_config=self.home / "log4j2.properties",
            pidfile=self.home / "kafka.pid",
        )

    @property
    def log_path(self) -> Path:
        # server.log holds the broker's own messages; stdout.log only what escaped log4j (JVM errors).
        server_log = self.paths.logs_dir / "server.log"
        return server_log if server_log.exists() else self.paths.logs_dir / "stdout.log"

    def install(self) -> None:
        self.java = find_java()
        if shutil.which("mvn") is None:
            ensure_packages(["maven"])
        libs = self.paths.libs
        stamp = libs / ".pom-sha256"
        wanted = hashlib.sha256(POM.read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text().strip() == wanted and kafka_version(libs):
            return
        print("kafka: resolving the broker's jars from Maven Central ...", flush=True)
        started_at = time.monotonic()
        if libs.exists():
            shutil.rmtree(libs)
        libs.mkdir(parents=True)
        run_checked(
            ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", f"-DoutputDirectory={libs}"],
            "mvn dependency:copy-dependencies",
            cwd=self.home,
        )
        stamp.write_text(wanted + "\n")
        jars = len(list(libs.glob("*.jar")))
        print(f"kafka: {jars} jars resolved in {time.monotonic() - started_at:.1f} s", flush=True)

    def pid(self) -> int | None:
        return live_pid(self.paths.pidfile, MAIN_CLASS)

    def probe(self) -> str | None:
        if not port_accepts(self.host, self.port):
            return None
        # While the broker boots, aiokafka logs each refused attempt as an error: expected here, so hush it.
        client_log = logging.getLogger("aiokafka")
        level = client_log.level
        client_log.setLevel(logging.CRITICAL)
        try:
            asyncio.run(asyncio.wait_for(_list_topics(self.endpoint), timeout=10.0))
        except Exception:  # any failure to answer a metadata request means "not answering"
            return None
        finally:
            client_log.setLevel(level)
        return kafka_version(self.paths.libs) or "unknown"

    def _wanted_config(self) -> str:
        return render_server_properties(self.paths, self.host, self.port, self.partitions)

    def config_is_stale(self) -> bool:
        config = self.paths.config
        return config.exists() and config.read_text() != self._wanted_config()

    def launch(self) -> None:
        paths = self.paths
        for directory in (paths.data_dir, paths.logs_dir):
            directory.mkdir(parents=True, exist_ok=True)
        paths.config.write_text(self._wanted_config())
        paths.log4j_config.write_text(render_log4j2_properties(paths.logs_dir))
        if not (paths.data_dir / "meta.properties").exists():
            run_checked(
                java_command(
                    self.java,
                    paths,
                    "kafka.tools.StorageTool",
                    ["format", "--ignore-formatted", "-t", new_cluster_id(), "-c", str(paths.config)],
                ),
                "formatting Kafka storage",
            )
        spawn_detached(
            java_command(self.java, paths, MAIN_CLASS, [str(paths.config)]),
            cwd=self.home,
            log_path=paths.logs_dir / "stdout.log",
            pidfile=paths.pidfile,
        )

    def prepare(self) -> None:
        created = asyncio.run(_create_topics(self.endpoint, self.topics, self.partitions))
        if created:
            print(f"kafka: created topics {', '.join(created)} ({self.partitions} partitions each)", flush=True)

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            # SIGTERM runs the broker's controlled shutdown (flush logs, leave cleanly).
            terminate(pid, MAIN_CLASS, self.stop_grace_seconds)
