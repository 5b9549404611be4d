"""The nginx gRPC gateway in front of the real platform: one port, every API.

Debian's `nginx` must be installed: `make test` runs `make system-deps`. The test renders
deploy/gateway/nginx.conf.template for the session's gRPC ports (docker-compose renders the same
template with the compose service names) and runs nginx in the foreground under a temporary prefix.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from mentoring.clients import Clients
from mentoring.stack import SERVICES, Stack, free_port
from services.common.api import (
    analytics_pb2,
    analytics_pb2_grpc,
    common_pb2,
    engagement_pb2,
    engagement_pb2_grpc,
    enrollment_pb2,
    enrollment_pb2_grpc,
    matching_pb2,
    matching_pb2_grpc,
)
from tests.e2e.support import eventually

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "gateway" / "nginx.conf.template"


def nginx_binary() -> str:
    # Debian installs nginx in /usr/sbin, which is not on every user's PATH.
    path = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    assert path, "`nginx` is not installed: run `make system-deps` (Debian package nginx)"
    return path


def render(upstreams: dict[str, str], listen: str, status_listen: str) -> str:
    text = Template(TEMPLATE.read_text()).safe_substitute(
        GATEWAY_LISTEN=listen,
        GATEWAY_STATUS_LISTEN=status_listen,
        **{f"GATEWAY_{name.upper()}": address for name, address in upstreams.items()},
    )
    directives = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    left = [line for line in directives if "$GATEWAY_" in line or "${GATEWAY_" in line]
    assert not left, f"placeholders left unfilled: {left}"
    return text


@dataclass
class Gateway:
    port: int
    status_port: int
    process: subprocess.Popen[bytes]
    access_log: Path
    error_log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.access_log.read_text(errors="replace") + self.error_log.read_text(
            errors="replace"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_gateway(folder: Path, upstreams: dict[str, str]) -> Gateway:
    """nginx in the foreground with `folder` as its prefix: config, temp files, pid, logs."""
    port, status_port = free_port(), free_port()
    (folder / "conf").mkdir(parents=True)
    config = folder / "conf" / "nginx.conf"
    config.write_text(render(upstreams, f"127.0.0.1:{port}", f"127.0.0.1:{status_port}"))
    nginx = nginx_binary()
    base = [nginx, "-p", f"{folder}/", "-c", str(config), "-e", "stderr"]
    checked = subprocess.run(
        [*base, "-t", "-g", f"pid {folder / 'nginx.pid'};"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    access_log, error_log = folder / "access.log", folder / "error.log"
    with access_log.open("wb") as out, error_log.open("wb") as err:
        process = subprocess.Popen(
            [*base, "-g", f"daemon off; pid {folder / 'nginx.pid'};"],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    gateway = Gateway(port, status_port, process, access_log, error_log)

    def listening() -> bool:
        assert process.poll() is None, f"nginx exited\n{gateway.logs()}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
            with urllib.request.urlopen(
                f"http://127.0.0.1:{status_port}/healthz", timeout=1
            ) as response:
                return bool(response.status == 200 and response.read() == b"ok\n")
        except OSError:
            return False

    try:
        eventually("nginx to listen", listening, timeout=20)
    except BaseException:
        gateway.stop()
        raise
    return gateway


@pytest.fixture(scope="module")
def gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = start_gateway(
        tmp_path_factory.mktemp("gateway"),
        {name: stack.ports.address(name) for name in SERVICES},
    )
    try:
        yield running
    finally:
        running.stop()
    assert running.process.returncode == 0, running.logs()


@pytest.fixture(scope="module")
def channel(gateway: Gateway) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(gateway.address) as opened:
        yield opened


def test_every_service_answers_through_the_one_gateway_port(
    gateway: Gateway, channel: grpc.Channel
) -> None:
    enrollment = enrollment_pb2_grpc.EnrollmentServiceStub(channel)
    matching = matching_pb2_grpc.MatchingServiceStub(channel)
    engagement = engagement_pb2_grpc.EngagementServiceStub(channel)
    analytics = analytics_pb2_grpc.AnalyticsServiceStub(channel)
    org = f"gw-{uuid.uuid4().hex[:8]}"

    program = enrollment.CreateProgram(
        enrollment_pb2.CreateProgramRequest(organization_id=org, name="Through the gateway"),
        timeout=10,
    )
    pid = program.program_id
    for role, name, capacity in (
        (common_pb2.ROLE_MENTOR, "Gita", 1),
        (common_pb2.ROLE_MENTEE, "Gus", 0),
    ):
        participant = enrollment.RegisterParticipant(
            enrollment_pb2.RegisterParticipantRequest(
                organization_id=org,
                program_id=pid,
                role=role,
                display_name=name,
                email=f"{name.lower()}@example.org",
                skills=["rust"],
                capacity=capacity,
            ),
            timeout=10,
        )
        assert participant.display_name == name

    config = matching.GetMatchingConfig(
        matching_pb2.GetMatchingConfigRequest(organization_id=org, program_id=pid), timeout=10
    )
    assert (config.organization_id, config.program_id) == (org, pid)
    assert list(config.criteria)  # every program starts with skills

    # Routing is what is tested here: each service answers for the new program at once (the
    # event flow behind the answers has its own tests).
    matches = engagement.ListMatches(
        engagement_pb2.ListMatchesRequest(organization_id=org, program_id=pid), timeout=10
    )
    assert all(m.program_id == pid for m in matches.matches)
    kpis = analytics.GetProgramKpis(
        analytics_pb2.GetProgramKpisRequest(organization_id=org, program_id=pid), timeout=10
    )
    assert (kpis.organization_id, kpis.program_id) == (org, pid)

    health = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=""), timeout=10
    )
    assert health.status == health_pb2.HealthCheckResponse.SERVING

    # Each call reached the service that owns it, and the access log names the upstream.
    log = eventually(
        "the access log",
        lambda: text if "GetProgramKpis" in (text := gateway.access_log.read_text()) else None,
    )
    for service, method in (
        ("enrollment", "/mentoring.v1.EnrollmentService/CreateProgram"),
        ("matching", "/mentoring.v1.MatchingService/GetMatchingConfig"),
        ("engagement", "/mentoring.v1.EngagementService/ListMatches"),
        ("analytics", "/mentoring.v1.AnalyticsService/GetProgramKpis"),
    ):
        lines = [line for line in log.splitlines() if f"POST {method} " in line]
        assert lines, (method, log)
        upstream = f"upstream=127.0.0.1:{gateway_upstream_port(gateway, service)}"
        assert all("grpc_status=0" in line and upstream in line for line in lines), lines


def gateway_upstream_port(gateway: Gateway, service: str) -> int:
    config = (gateway.access_log.parent / "conf" / "nginx.conf").read_text()
    block = config.split(f"upstream {service} {{", 1)[1].split("}", 1)[0]
    return int(block.split("server 127.0.0.1:", 1)[1].split(";", 1)[0])


def test_a_service_error_arrives_unchanged(
    gateway: Gateway, channel: grpc.Channel, clients: Clients
) -> None:
    org = f"gw-{uuid.uuid4().hex[:8]}"
    pid = clients.enrollment.CreateProgram(
        enrollment_pb2.CreateProgramRequest(organization_id=org, name="Errors")
    ).program_id
    bad = enrollment_pb2.RegisterParticipantRequest(
        organization_id=org,
        program_id=pid,
        role=common_pb2.ROLE_MENTOR,
        display_name="Ada",
        email="not-an-address",
        skills=["math"],
        capacity=1,
    )
    errors = []
    for stub in (
        clients.enrollment,  # directly
        enrollment_pb2_grpc.EnrollmentServiceStub(channel),  # through nginx
    ):
        with pytest.raises(grpc.RpcError) as caught:
            stub.RegisterParticipant(bad, timeout=10)
        errors.append((caught.value.code(), caught.value.details()))
    direct, through = errors
    assert direct[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert direct[1].startswith("email:")
    assert through == direct
    eventually(
        "the access log to record grpc_status=3",
        lambda: any(
            "RegisterParticipant" in line and "grpc_status=3" in line
            for line in gateway.access_log.read_text().splitlines()
        ),
    )


def test_reflection_and_unknown_services(channel: grpc.Channel) -> None:
    # Reflection is a bidirectional stream: it works through nginx, answered by enrollment.
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "mentoring.v1.EnrollmentService" in services
    unknown = channel.unary_unary("/mentoring.v1.NoSuchService/Do")
    with pytest.raises(grpc.RpcError) as caught:
        unknown(b"", timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "unknown service" in caught.value.details()


def test_cli_reaches_every_service_through_the_gateway(
    stack: Stack, gateway: Gateway, channel: grpc.Channel
) -> None:
    org = f"gw-{uuid.uuid4().hex[:8]}"
    pid = (
        enrollment_pb2_grpc.EnrollmentServiceStub(channel)
        .CreateProgram(enrollment_pb2.CreateProgramRequest(organization_id=org, name="CLI"))
        .program_id
    )
    env = {
        **stack.client_env(),
        **{f"{name.upper()}_ADDR": gateway.address for name in SERVICES},
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [sys.executable, "-m", "mentoring.cli", "kpis", "-o", org, "-p", pid],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert pid in result.stdout
    assert "mentors" in result.stdout


def test_unreachable_service_is_unavailable(tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    gateway = start_gateway(tmp_path / "down", dict.fromkeys(SERVICES, closed))
    try:
        with grpc.insecure_channel(gateway.address) as channel:
            stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as caught:
                stub.GetProgramKpis(
                    analytics_pb2.GetProgramKpisRequest(organization_id="o", program_id="p"),
                    timeout=10,
                )
            assert time.monotonic() - started < 5
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert caught.value.details() == "gateway: service unavailable"
    finally:
        gateway.stop()
