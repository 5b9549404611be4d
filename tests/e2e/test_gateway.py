"""The nginx gateway in front of the real platform: one port for native gRPC and HTTP/JSON.

The session's stack runs the gateway (`Stack.start_gateway`: Debian 13's nginx from the engines
cache, which `make engines` prepares), rendered from deploy/gateway/nginx.conf.template for the
session's ports. Other tests start their own gateway, in front of closed ports (services down)
or of stand-in upstreams that echo what reached them (routing by content type, the headers the
services receive).
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import grpc
import pyqwest
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from mentoring.clients import Clients
from mentoring.engines import nginx
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
from services.common.config import DEFAULT_HTTP_PORTS, DEFAULT_PORTS
from services.common.peers import FORWARDED
from tests.e2e.support import eventually

# The gRPC service each process serves, as the paths name it.
API = {
    "enrollment": "mentoring.v1.EnrollmentService",
    "matching": "mentoring.v1.MatchingService",
    "engagement": "mentoring.v1.EngagementService",
    "analytics": "mentoring.v1.AnalyticsService",
    "notifications": "mentoring.v1.NotificationService",
}


@dataclass
class RunningGateway:
    config: nginx.Gateway
    # Where nginx's stdout (one line per call) goes.
    access_log: Path
    # Ours to stop; None for the stack's, which stops with the stack.
    process: subprocess.Popen[bytes] | None = None
    error_log: Path | None = None

    @property
    def address(self) -> str:
        return self.config.address

    def logs(self) -> str:
        logs = [self.access_log, *([self.error_log] if self.error_log else [])]
        return "".join(log.read_text(errors="replace") for log in logs)

    def lines(self, needle: str) -> list[str]:
        return [line for line in self.access_log.read_text().splitlines() if needle in line]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_gateway(
    folder: Path,
    upstreams: Mapping[str, str],
    http_upstreams: Mapping[str, str] | None = None,
    www: Path = nginx.WWW,
) -> RunningGateway:
    """nginx in the foreground with `folder` as its prefix, in front of these gRPC and HTTP
    addresses by service; a service left out is a closed port."""
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    config = nginx.Gateway(
        folder,
        free_port(),
        free_port(),
        grpc={name: upstreams.get(name, closed) for name in DEFAULT_PORTS},
        http={name: (http_upstreams or {}).get(name, closed) for name in DEFAULT_HTTP_PORTS},
        www=www,
    )
    config.prepare()
    checked = subprocess.run(
        config.check_argv(), capture_output=True, text=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stderr
    access_log, error_log = folder / "access.log", folder / "error.log"
    with access_log.open("wb") as out, error_log.open("wb") as err:
        process = subprocess.Popen(
            config.start_argv(), stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
    gateway = RunningGateway(config, access_log, process, error_log)

    def listening() -> bool:
        assert process.poll() is None, f"nginx exited\n{gateway.logs()}"
        try:
            with socket.create_connection(("127.0.0.1", config.port), timeout=0.5):
                pass
            with urllib.request.urlopen(
                f"http://127.0.0.1:{config.status_port}/healthz", timeout=1
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


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        return json.loads(self.body)


def http1(
    address: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """One HTTP/1.1 request, redirects not followed."""
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        assert response.version == 11
        found = {name.lower(): value for name, value in response.getheaders()}
        return Reply(response.status, found, response.read())
    finally:
        connection.close()


def post_json(address: str, path: str, message: Mapping[str, Any], **headers: str) -> Reply:
    body = json.dumps(message).encode()
    return http1(address, "POST", path, body, {"content-type": "application/json", **headers})


@pytest.fixture(scope="module")
def gateway(stack: Stack) -> RunningGateway:
    """The stack's own gateway (`start_all` starts it after the services)."""
    (managed,) = [m for m in stack.processes if m.name == "gateway"]
    return RunningGateway(stack.gateway, managed.log)


@pytest.fixture(scope="module")
def channel(gateway: RunningGateway) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(gateway.address) as opened:
        yield opened


@pytest.fixture(scope="module")
def program(channel: grpc.Channel) -> tuple[str, str]:
    """An organisation and a program made through the gateway (gRPC)."""
    org = f"gw-{uuid.uuid4().hex[:8]}"
    created = enrollment_pb2_grpc.EnrollmentServiceStub(channel).CreateProgram(
        enrollment_pb2.CreateProgramRequest(organization_id=org, name="Gateway"), timeout=10
    )
    return org, created.program_id


def test_every_service_answers_through_the_one_gateway_port(
    gateway: RunningGateway, channel: grpc.Channel
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
        upstream = f"upstream={gateway.config.grpc[service]} "
        assert all(
            "kind=grpc" in line and "grpc_status=0" in line and upstream in line for line in lines
        ), lines


def test_a_service_error_arrives_unchanged(
    gateway: RunningGateway, channel: grpc.Channel, clients: Clients
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
        lambda: any("grpc_status=3" in line for line in gateway.lines("RegisterParticipant")),
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
    stack: Stack, gateway: RunningGateway, channel: grpc.Channel
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


# One read-only RPC per service, as JSON, and what its reply must say.
JSON_CALLS: dict[str, tuple[str, bool, str]] = {
    # service: (method, takes the program, a key of the reply that names the organisation)
    "enrollment": ("ListPrograms", False, "programs"),
    "matching": ("GetMatchingConfig", True, "organizationId"),
    "engagement": ("ListMatches", True, ""),
    "analytics": ("GetProgramKpis", True, "organizationId"),
    "notifications": ("ListWebhooks", False, ""),
}


@pytest.mark.parametrize("service", SERVICES)
def test_json_over_http1_reaches_each_service(
    stack: Stack, gateway: RunningGateway, program: tuple[str, str], service: str
) -> None:
    org, pid = program
    method, takes_program, names_org = JSON_CALLS[service]
    path = f"/{API[service]}/{method}"
    message = {"organization_id": org, **({"program_id": pid} if takes_program else {})}
    reply = post_json(gateway.address, path, message)
    assert reply.status == 200, reply
    answer = reply.json()
    if names_org == "programs":
        assert pid in {p["programId"] for p in answer["programs"]}, answer
    elif names_org:
        assert answer[names_org] == org, answer
    else:
        assert isinstance(answer, dict), answer
    lines = eventually("the access log", lambda: gateway.lines(f'"POST {path} HTTP/1.1" 200'))
    upstream = f"upstream=127.0.0.1:{stack.ports.http[service]} "
    assert all("kind=http" in line and upstream in line for line in lines), lines


def test_json_over_h2c_and_grpc_share_the_port(
    gateway: RunningGateway, channel: grpc.Channel, program: tuple[str, str]
) -> None:
    org, pid = program
    path = f"/{API['enrollment']}/ListPrograms"
    h2c = pyqwest.SyncClient(pyqwest.SyncHTTPTransport(http_version=pyqwest.HTTPVersion.HTTP2))
    reply = h2c.post(
        f"http://{gateway.address}{path}",
        headers={"content-type": "application/json"},
        content=json.dumps({"organization_id": org}).encode(),
        timeout=10,
    )
    assert reply.status == 200, reply.content
    assert pid in {p["programId"] for p in json.loads(reply.content)["programs"]}
    eventually(
        "an HTTP/2 JSON call", lambda: gateway.lines(f'"POST {path} HTTP/2.0" 200 kind=http')
    )

    listed = enrollment_pb2_grpc.EnrollmentServiceStub(channel).ListPrograms(
        enrollment_pb2.ListProgramsRequest(organization_id=org), timeout=10
    )
    assert pid in {p.program_id for p in listed.programs}


def test_an_unknown_path_is_a_json_404(gateway: RunningGateway) -> None:
    for method, path in (
        ("POST", "/mentoring.v1.NoSuchService/Do"),
        ("GET", "/"),
        ("OPTIONS", "/nothing/here"),
    ):
        reply = http1(gateway.address, method, path, b"{}" if method == "POST" else None)
        assert reply.status == 404, (method, path, reply)
        assert reply.json()["code"] == "unimplemented"


def test_the_openapi_document_and_the_reference_page_are_served(gateway: RunningGateway) -> None:
    document = nginx.WWW / "openapi.json"
    reply = http1(gateway.address, "GET", "/openapi.json")
    assert reply.status == 200, f"{document} is served at /openapi.json: {reply}"
    assert reply.json() == json.loads(document.read_text())
    assert reply.json()["openapi"].startswith("3.1")
    page = http1(gateway.address, "GET", "/docs/")
    assert page.status == 200, page
    assert page.headers["content-type"].startswith("text/html")


def test_unreachable_services_are_unavailable_to_both_kinds_of_caller(tmp_path: Path) -> None:
    gateway = start_gateway(tmp_path / "down", {})  # every service a closed port
    try:
        with grpc.insecure_channel(gateway.address) as channel:
            stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.GetProgramKpis(
                    analytics_pb2.GetProgramKpisRequest(organization_id="o", program_id="p"),
                    timeout=10,
                )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert caught.value.details() == "gateway: service unavailable"
        for service in DEFAULT_PORTS:
            reply = post_json(gateway.address, f"/{API[service]}/Anything", {})
            assert reply.status == 503, (service, reply)
            assert reply.json() == {
                "code": "unavailable",
                "message": "gateway: service unavailable",
            }
    finally:
        gateway.stop()
    assert gateway.process is not None and gateway.process.returncode == 0, gateway.logs()


# Stand-in upstreams: each answers with what reached it.


class _EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _EchoServer

    def _echo(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = {
            "service": self.server.label,
            "method": self.command,
            "path": self.path,
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "body": body.decode(),
        }
        reply = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_OPTIONS = _echo

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _EchoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, label: str) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.label = label


# The methods the stand-ins answer (any name will do: nginx routes by service).
ECHOED_METHODS = ("Method", "GetProgramKpis")


def _grpc_echo_handler(service: str) -> Any:
    """Answers each method of the service's gRPC API with what reached it, as JSON."""

    def echo_for(method: str) -> Any:
        def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
            metadata = {key: str(value) for key, value in context.invocation_metadata()}
            path = f"/{API[service]}/{method}"
            return json.dumps({"service": service, "path": path, "headers": metadata}).encode()

        return grpc.unary_unary_rpc_method_handler(echo)

    return grpc.method_handlers_generic_handler(
        API[service], {method: echo_for(method) for method in ECHOED_METHODS}
    )


@dataclass
class StandIns:
    gateway: RunningGateway
    http_servers: list[_EchoServer] = field(default_factory=list)
    grpc_servers: list[grpc.Server] = field(default_factory=list)

    def stop(self) -> None:
        self.gateway.stop()
        for server in self.http_servers:
            server.shutdown()
            server.server_close()
        for grpc_server in self.grpc_servers:
            grpc_server.stop(None)


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIns]:
    """A gateway with stand-ins for every service's two ports, and a www folder of its own."""
    www = tmp_path_factory.mktemp("www")
    (www / "openapi.json").write_text('{"openapi": "3.1.0", "paths": {}}')
    (www / "docs").mkdir()
    (www / "docs" / "index.html").write_text("<!doctype html><title>API</title>")
    (www / "docs" / "app.js").write_text("console.log('docs');")
    http_servers, grpc_servers, http_up, grpc_up = [], [], {}, {}
    for service in DEFAULT_PORTS:
        echo = _EchoServer(service)
        Thread(target=echo.serve_forever, daemon=True).start()
        http_servers.append(echo)
        http_up[service] = f"127.0.0.1:{echo.server_address[1]}"
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        server.add_generic_rpc_handlers((_grpc_echo_handler(service),))
        grpc_up[service] = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
        server.start()
        grpc_servers.append(server)
    running = StandIns(
        start_gateway(tmp_path_factory.mktemp("standin-gateway"), grpc_up, http_up, www),
        http_servers,
        grpc_servers,
    )
    try:
        yield running
    finally:
        running.stop()
    assert running.gateway.process is not None
    assert running.gateway.process.returncode == 0, running.gateway.logs()


def grpc_echo(address: str, path: str, metadata: tuple[tuple[str, str], ...] = ()) -> Any:
    with grpc.insecure_channel(address) as channel:
        return json.loads(channel.unary_unary(path)(b"", metadata=metadata, timeout=10))


@pytest.mark.parametrize("service", list(DEFAULT_PORTS))
def test_each_kind_of_call_goes_to_the_right_port_of_its_service(
    standins: StandIns, service: str
) -> None:
    address = standins.gateway.address
    path = f"/{API[service]}/Method"
    for content_type in (
        "application/json",
        "application/json; charset=utf-8",
        "application/proto",
        "application/grpc-web+proto",  # served by the HTTP port, like Connect
    ):
        seen = http1(address, "POST", path, b"{}", {"content-type": content_type}).json()
        assert (seen["service"], seen["method"], seen["path"]) == (service, "POST", path)
        assert seen["headers"]["content-type"] == content_type
        assert seen["body"] == "{}"
    query = "?encoding=json&message=%7B%7D"
    seen = http1(address, "GET", path + query).json()
    assert (seen["service"], seen["method"], seen["path"]) == (service, "GET", path + query)
    # CORS preflights reach the service, which answers them from its allow-list.
    preflight = {"origin": "https://portal.example", "access-control-request-method": "POST"}
    seen = http1(address, "OPTIONS", path, headers=preflight).json()
    assert (seen["service"], seen["method"]) == (service, "OPTIONS")
    assert seen["headers"]["origin"] == "https://portal.example"
    # Native gRPC goes to the gRPC port.
    seen = grpc_echo(address, path)
    assert (seen["service"], seen["path"]) == (service, path)


def test_the_analytics_peer_header_never_comes_from_outside(standins: StandIns) -> None:
    address = standins.gateway.address
    path = f"/{API['analytics']}/GetProgramKpis"
    sent = {FORWARDED: "forged-peer-token", "authorization": "Bearer user-token"}
    seen = post_json(address, path, {}, **sent).json()
    assert seen["service"] == "analytics"
    assert seen["headers"]["authorization"] == "Bearer user-token"
    assert FORWARDED not in seen["headers"]
    seen = grpc_echo(address, path, tuple(sent.items()))
    assert seen["service"] == "analytics"
    assert seen["headers"]["authorization"] == "Bearer user-token"
    assert FORWARDED not in seen["headers"]


def test_static_files_are_served_with_their_types(standins: StandIns) -> None:
    address = standins.gateway.address
    document = http1(address, "GET", "/openapi.json")
    assert document.status == 200
    assert document.json() == {"openapi": "3.1.0", "paths": {}}
    redirect = http1(address, "GET", "/docs")
    assert (redirect.status, redirect.headers["location"]) == (301, "/docs/")
    page = http1(address, "GET", "/docs/")
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.body == b"<!doctype html><title>API</title>"
    script = http1(address, "GET", "/docs/app.js")
    assert (script.status, script.headers["content-type"]) == (200, "application/javascript")
