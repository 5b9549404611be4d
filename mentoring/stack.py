"""Start and stop the platform on this machine: Apache Kafka, the MongoDB-wire server, the
service processes and the nginx gateway in front of them.

`mentoring up` runs it for a person, its data under .run/data; the end-to-end tests run it on
free ports with data in a temporary directory. Children get SIGTERM if this process dies
(PR_SET_PDEATHSIG), so no orphan outlives it.

Unless HR_PRODUCER_KEYS_FILE is configured, each run makes its own HR producer keys file (under
the data, in hr-producers/) holding a new development key for the demo organisation, its
private half beside it; `Stack.hr_producer` adds a key for any other organisation, which the
services trust from then on. Likewise the analytics workers share a random peer secret made for
the run unless ANALYTICS_PEER_SECRET is configured.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mentoring.cli_notifications import MAIL_DIR_ENV
from mentoring.engines.kafka import KafkaNode
from mentoring.engines.mongo import MongoNode
from mentoring.engines.nginx import Gateway
from mentoring.mailcatcher import DEFAULT_PORT as DEFAULT_SMTP_PORT
from services.common.config import (
    DEFAULT_BROKER_PORT,
    DEFAULT_HTTP_PORTS,
    DEFAULT_MONGODB_PORT,
    DEFAULT_PORTS,
    Settings,
)
from services.common.hr_signatures import KEYS_FILE_ENV, ProducerKey, register, write_keys
from services.common.kafka import ensure_topics
from services.common.peers import SECRET_ENV as PEER_SECRET_ENV

SERVICES: tuple[str, ...] = ("enrollment", "matching", "engagement", "analytics", "notifications")
# The organisation `mentoring demo` and the README's examples use, and the id of the HR
# producer key each run makes for it.
DEMO_ORGANIZATION = "demo-org"
DEMO_KEY_ID = "demo-org-dev"
# The gateway's one address for every API (gRPC and HTTP/JSON); its status port is the next.
DEFAULT_GATEWAY_PORT = 8080
_PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    pass


# Below Linux's ephemeral range (32768-60999). A port bound to 0 comes from that range, and a
# client's outgoing connection (Kafka, the database) could take it between the pick and the
# server's own bind: a test stack then failed to start on "port already in use".
_PICKABLE = range(20000, 32768)
_picked: set[int] = set()


def free_port() -> int:
    """A port nobody listens on, not handed out before by this process."""
    while True:
        port = random.choice(_PICKABLE)
        if port in _picked:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _picked.add(port)
        return port


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: Ctrl-C still stops everything through Stack.stop()


@dataclass
class Ports:
    broker: int
    controller: int
    mongodb: int
    grpc: dict[str, int]
    metrics: dict[str, int]
    http: dict[str, int]
    # Fixed (configured) ports, or free ones picked for a test: extra workers follow suit.
    fixed: bool = True
    gateway: int = DEFAULT_GATEWAY_PORT
    gateway_status: int = DEFAULT_GATEWAY_PORT + 1
    # The development mail catcher (mentoring.mailcatcher) the notifications service sends to.
    smtp: int = DEFAULT_SMTP_PORT

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Ports:
        settings = {name: Settings.from_env(name, env) for name in SERVICES}
        broker = int(env.get("MENTORING_BROKER_PORT", DEFAULT_BROKER_PORT))
        gateway = int(env.get("MENTORING_GATEWAY_PORT", DEFAULT_GATEWAY_PORT))
        return cls(
            broker=broker,
            controller=int(env.get("MENTORING_CONTROLLER_PORT", broker + 1)),
            mongodb=int(env.get("MENTORING_MONGODB_PORT", DEFAULT_MONGODB_PORT)),
            grpc={n: s.grpc_port for n, s in settings.items()},
            metrics={n: s.metrics_port for n, s in settings.items()},
            http={n: s.http_port for n, s in settings.items()},
            gateway=gateway,
            gateway_status=int(env.get("MENTORING_GATEWAY_STATUS_PORT", gateway + 1)),
            smtp=int(env.get("MENTORING_SMTP_PORT", DEFAULT_SMTP_PORT)),
        )

    @classmethod
    def free(cls) -> Ports:
        return cls(
            broker=free_port(),
            controller=free_port(),
            mongodb=free_port(),
            grpc={n: free_port() for n in DEFAULT_PORTS},
            metrics={n: free_port() for n in DEFAULT_PORTS},
            http={n: free_port() for n in DEFAULT_HTTP_PORTS},
            fixed=False,
            gateway=free_port(),
            gateway_status=free_port(),
            smtp=free_port(),
        )

    def extra_worker(self, service: str, index: int) -> tuple[int, int, int]:
        """gRPC, metrics and HTTP ports of a service's worker number `index` (0 is the first):
        ten above the first worker's when the ports are fixed, else free ones."""
        if not self.fixed:
            return free_port(), free_port(), free_port()
        step = 10 * index
        return self.grpc[service] + step, self.metrics[service] + step, self.http[service] + step

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker}"

    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.grpc[service]}"


@dataclass
class Managed:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    # Where clients reach it, and its Prometheus endpoint's port, where it has one.
    address: str = ""
    metrics_port: int | None = None
    # A JVM that ran its shutdown hooks on SIGTERM (Kafka's clean stop) exits 128 + 15.
    clean_exits: tuple[int, ...] = (0,)

    def stopped_cleanly(self) -> bool:
        return self.process.returncode in self.clean_exits


@dataclass
class Stack:
    ports: Ports
    log_dir: Path
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    processes: list[Managed] = field(default_factory=list)
    # Where Kafka's log segments and the database's files live; under the logs unless given.
    data_dir: Path | None = None
    # This run's HR producer keys by organisation, once its keys file is made.
    _hr_producers: dict[str, ProducerKey] | None = field(default=None, init=False, repr=False)
    # The analytics workers' peer secret for this run, unless one is configured.
    _peer_secret: str = field(default_factory=lambda: secrets.token_hex(32), init=False, repr=False)

    @property
    def data(self) -> Path:
        return self.data_dir or self.log_dir / "data"

    @property
    def mail_dir(self) -> Path:
        """Where the mail catcher keeps its messages: MENTORING_MAIL_DIR, else beside the data
        (.run/mail under `mentoring up`, where `mentoring notifications list` looks)."""
        configured = self.env.get(MAIL_DIR_ENV, "").strip()
        return Path(configured) if configured else self.data.parent / "mail"

    @property
    def catches_mail(self) -> bool:
        """Whether this stack runs the mail catcher: unless a real SMTP server is configured."""
        return not self.env.get("SMTP_HOST", "").strip()

    @property
    def kafka(self) -> KafkaNode:
        partitions = int(self.env.get("KAFKA_TOPIC_PARTITIONS", "6"))
        return KafkaNode(self.data / "kafka", self.ports.broker, self.ports.controller, partitions)

    @property
    def mongodb(self) -> MongoNode:
        return MongoNode(self.data / "mongodb", self.ports.mongodb)

    @property
    def gateway(self) -> Gateway:
        """nginx in front of every service of the contract; one this stack does not run (or
        has no port for) answers UNAVAILABLE through it."""
        grpc = {n: self.ports.grpc.get(n, port) for n, (port, _) in DEFAULT_PORTS.items()}
        http = {n: self.ports.http.get(n, port) for n, port in DEFAULT_HTTP_PORTS.items()}
        return Gateway(
            self.data / "gateway",
            self.ports.gateway,
            self.ports.gateway_status,
            grpc={n: f"127.0.0.1:{port}" for n, port in grpc.items()},
            http={n: f"127.0.0.1:{port}" for n, port in http.items()},
        )

    @property
    def configured_hr_producer_keys(self) -> str:
        return self.env.get(KEYS_FILE_ENV, "").strip()

    @property
    def hr_producer_keys(self) -> Path:
        """The HR producer keys file the services trust: the configured one, else this run's."""
        configured = self.configured_hr_producer_keys
        return Path(configured) if configured else self.data / "hr-producers" / "keys.json"

    def hr_producer(self, organization_id: str) -> ProducerKey:
        """A key the services trust to sign the organisation's hr-events, made on first use."""
        if self.configured_hr_producer_keys:
            raise StackError(f"{KEYS_FILE_ENV} is configured: sign with a key it lists")
        producers = self._run_hr_producers()
        if organization_id not in producers:
            producers[organization_id] = ProducerKey.generate()
            register(self.hr_producer_keys, organization_id, producers[organization_id])
        return producers[organization_id]

    @property
    def demo_hr_producer_pem(self) -> Path:
        """The private half of this run's key for the demo organisation (key id DEMO_KEY_ID)."""
        return self.hr_producer_keys.with_name(f"{DEMO_ORGANIZATION}.pem")

    def _run_hr_producers(self) -> dict[str, ProducerKey]:
        """This run's keys, starting with a fresh keys file and a key for the demo
        organisation: the last run's keys are not trusted any more."""
        if self._hr_producers is None:
            write_keys(self.hr_producer_keys, {})
            demo = ProducerKey.generate(DEMO_KEY_ID)
            register(self.hr_producer_keys, DEMO_ORGANIZATION, demo)
            self._hr_producers = {DEMO_ORGANIZATION: demo}
            private = self.demo_hr_producer_pem
            private.unlink(missing_ok=True)
            private.touch(mode=0o600)  # before the key is in it
            private.write_bytes(demo.private_key_pem())
        return self._hr_producers

    def client_env(self) -> dict[str, str]:
        """Environment for a client (the CLI) to reach this stack."""
        env = {k: v for k, v in self.env.items()}
        env.update({f"{n.upper()}_ADDR": self.ports.address(n) for n in SERVICES})
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.ports.bootstrap
        env["MONGODB_URI"] = self.mongodb.uri
        if self.catches_mail:
            # `mentoring notifications list` and the demo read this stack's catcher.
            env[MAIL_DIR_ENV] = str(self.mail_dir)
        return env

    @property
    def analytics_peer_secret(self) -> str:
        """The secret the analytics workers forward requests with (services/common/peers.py):
        the configured ANALYTICS_PEER_SECRET, else a random one made for this run."""
        return self.env.get(PEER_SECRET_ENV, "") or self._peer_secret

    def service_env(self, service: str, metrics_port: int | None = None) -> dict[str, str]:
        env = self.client_env()
        prefix = service.upper()
        env[f"{prefix}_GRPC_PORT"] = str(self.ports.grpc[service])
        env[f"{prefix}_METRICS_PORT"] = str(metrics_port or self.ports.metrics[service])
        env[f"{prefix}_HTTP_PORT"] = str(self.ports.http[service])
        env.setdefault("PYTHONUNBUFFERED", "1")
        env[KEYS_FILE_ENV] = str(self.hr_producer_keys)
        env.pop(PEER_SECRET_ENV, None)
        if service == "analytics":
            env[PEER_SECRET_ENV] = self.analytics_peer_secret
        if service == "notifications":
            # Calendar feed and unsubscribe URLs point at this stack's gateway.
            env.setdefault("NOTIFICATIONS_PUBLIC_URL", f"http://{self.gateway.address}")
        if service == "notifications" and self.catches_mail:
            env["SMTP_HOST"] = "127.0.0.1"
            env["SMTP_PORT"] = str(self.ports.smtp)
            # The catcher is local and refuses only when told to: a retry costs nothing, so
            # it comes after a second rather than a minute.
            env.setdefault("MAIL_RETRY_BASE_SECONDS", "1")
        return env

    def _spawn(
        self, name: str, argv: list[str], env: Mapping[str, str], address: str = ""
    ) -> Managed:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Own process group: a terminal's Ctrl-C reaches only us, and we stop the
                # children in order (services before the broker they flush to).
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        managed = Managed(name, process, log, address)
        self.processes.append(managed)
        return managed

    def start_engines(self) -> None:
        """Kafka and the database, then the platform's topics."""
        self.start_kafka()
        self.start_mongodb()
        asyncio.run(ensure_topics(self.ports.bootstrap, self.kafka.partitions))

    def start_kafka(self) -> Managed:
        node = self.kafka
        self._fail_if_taken(node.port, "Kafka")
        self._fail_if_taken(node.controller_port, "Kafka's controller")
        node.prepare(self.env)
        managed = self._spawn("kafka", node.start_argv(self.env), self.env, self.ports.bootstrap)
        managed.clean_exits = (0, 128 + signal.SIGTERM)
        self._wait_port(managed, node.port, timeout=60.0)
        return managed

    def start_mongodb(self) -> Managed:
        node = self.mongodb
        self._fail_if_taken(node.port, "the MongoDB-wire server")
        managed = self._spawn("mongodb", node.start_argv(self.env), self.env, node.address)
        self._wait_port(managed, node.port, timeout=60.0)
        return managed

    def start_mailcatcher(self) -> Managed | None:
        """The development SMTP server keeping every message under mail_dir; none when a real
        SMTP server is configured (SMTP_HOST)."""
        if not self.catches_mail:
            return None
        self._fail_if_taken(self.ports.smtp, "the mail catcher")
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "mentoring.mailcatcher",
            "--dir",
            str(self.mail_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.ports.smtp),
        ]
        address = f"127.0.0.1:{self.ports.smtp}"
        managed = self._spawn("mailcatcher", argv, self.env, address)
        self._wait_port(managed, self.ports.smtp)
        return managed

    def start_gateway(self) -> Managed:
        """The gateway on its port, its access log (one line per call) in gateway.log."""
        gateway = self.gateway
        self._fail_if_taken(gateway.port, "the gateway")
        self._fail_if_taken(gateway.status_port, "the gateway's status page")
        gateway.prepare()
        managed = self._spawn("gateway", gateway.start_argv(self.env), self.env, gateway.address)
        self._wait_port(managed, gateway.port)
        return managed

    def start_service(
        self,
        service: str,
        *,
        name: str | None = None,
        metrics_port: int | None = None,
        grpc_port: int | None = None,
        http_port: int | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> Managed:
        """Start one service process; name and ports let a test run a second worker (on a free
        HTTP port unless given one), and extra_env sets variables for this process only."""
        if not self.configured_hr_producer_keys:
            self._run_hr_producers()
        env = {**self.service_env(service, metrics_port), **(extra_env or {})}
        if grpc_port is not None:
            env[f"{service.upper()}_GRPC_PORT"] = str(grpc_port)
            env[f"{service.upper()}_HTTP_PORT"] = str(http_port or free_port())
        port = grpc_port or self.ports.grpc[service]
        self._fail_if_taken(port, service)
        argv = [sys.executable, "-m", f"services.{service}"]
        managed = self._spawn(name or service, argv, env, f"127.0.0.1:{port}")
        managed.metrics_port = metrics_port or self.ports.metrics[service]
        return managed

    def start_all(self, timeout: float = 60.0, *, matching_workers: int = 1) -> None:
        """Engines and the mail catcher, then every service, matching with this many workers,
        then the gateway."""
        self.start_engines()
        self.start_mailcatcher()
        started = [self.start_service(s) for s in SERVICES]
        for index in range(1, matching_workers):
            grpc_port, metrics_port, http_port = self.ports.extra_worker("matching", index)
            started.append(
                self.start_service(
                    "matching",
                    name=f"matching-{index + 1}",
                    grpc_port=grpc_port,
                    metrics_port=metrics_port,
                    http_port=http_port,
                )
            )
        for managed in started:
            self.wait_serving(managed, managed.address, timeout)
        self.start_gateway()

    def wait_serving(self, managed: Managed, address: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                self._check_alive(managed)
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise StackError(
            f"{managed.name} not SERVING on {address} after {timeout}s\n{self.tail(managed)}"
        )

    def stop_process(self, managed: Managed, timeout: float = 15.0) -> int:
        process = managed.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if managed in self.processes:
            self.processes.remove(managed)
        return process.returncode

    def stop(self) -> dict[str, int]:
        """Stop everything, newest first; return the exit code of each that did not stop
        cleanly."""
        unclean = {}
        for managed in reversed(list(self.processes)):
            code = self.stop_process(managed)
            if not managed.stopped_cleanly():
                unclean[managed.name] = code
        return unclean

    def tail(self, managed: Managed, lines: int = 40) -> str:
        try:
            text = managed.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"  {managed.name}| {line}" for line in text[-lines:])

    def _check_alive(self, managed: Managed) -> None:
        if managed.process.poll() is not None:
            raise StackError(
                f"{managed.name} exited with {managed.process.returncode}\n{self.tail(managed)}"
            )

    def _wait_port(self, managed: Managed, port: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(managed)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise StackError(f"{managed.name} not listening on {port}\n{self.tail(managed)}")

    @staticmethod
    def _fail_if_taken(port: int, what: str) -> None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                raise StackError(
                    f"port {port} for {what} is already in use: stop what holds it, or choose "
                    "another port (see the configuration table in README.md)"
                )

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
