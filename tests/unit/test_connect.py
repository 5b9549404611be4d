"""The HTTP/JSON API (Connect protocol) of the shared bootstrap, over a real in-process server:
EnrollmentServicer on mongomock behind the same interceptors as gRPC, called with aiohttp."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from grpc import aio
from prometheus_client import REGISTRY

from mentoring.tokens import mint
from services.common import peers
from services.common.api import enrollment_pb2, enrollment_pb2_grpc
from services.common.config import AuthSettings, Settings
from services.common.connect import CONNECT_CODES, HttpServicerContext, metadata_of
from services.common.grpc_server import ApiServer, ServiceBinding
from services.common.http_server import HttpServer, http_app
from services.enrollment.servicer import EnrollmentServicer
from tests.unit import memory_db
from tests.unit.test_grpc_bootstrap import FakePublisher, free_port

AUTH = AuthSettings(jwt_secret="k" * 32, issuer="tests", audience="mentoring")
ORG = "acme"
PORTAL = "https://portal.acme.example"
ENROLLMENT = "mentoring.v1.EnrollmentService"
SERVICES = Path(__file__).resolve().parents[2] / "services"


@pytest.fixture
async def api() -> AsyncIterator[ApiServer]:
    settings = replace(
        Settings.from_env("enrollment", {}),
        grpc_port=free_port(),
        http_port=free_port(),
        mongodb_database=f"test_connect_{uuid.uuid4().hex}",
        shutdown_grace_seconds=0.2,
        auth=AUTH,
        cors_origins=(PORTAL,),
    )
    memory_db.connect(settings)
    binding = ServiceBinding.of(
        enrollment_pb2.DESCRIPTOR,
        EnrollmentServicer(FakePublisher()),  # type: ignore[arg-type]
        enrollment_pb2_grpc.add_EnrollmentServiceServicer_to_server,
    )
    running = ApiServer(settings, [binding])
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def url(server: ApiServer, method: str) -> str:
    assert server.http is not None
    return f"http://{server.http.address}/{ENROLLMENT}/{method}"


def token(*roles: str, org: str = ORG) -> dict[str, str]:
    return {"authorization": f"Bearer {mint(AUTH, organization=org, subject='me', roles=roles)}"}


async def post(
    server: ApiServer, method: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url(server, method), data=json.dumps(body), headers=headers or {}) as reply,
    ):
        return reply.status, await reply.json(content_type=None)


def handled(method: str, code: str) -> float:
    labels = {"grpc_service": ENROLLMENT, "grpc_method": method, "grpc_code": code}
    return REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0


async def test_a_coordinator_creates_and_lists_programs_as_json(api: ApiServer) -> None:
    coordinator = {**token("coordinator"), "content-type": "application/json"}
    status, created = await post(
        api, "CreateProgram", {"organization_id": ORG, "name": "Pilot"}, coordinator
    )
    assert status == 200
    assert (created["organizationId"], created["name"]) == (ORG, "Pilot")
    # The JSON names from the proto (camelCase) are taken as well as the field names.
    status, listed = await post(api, "ListPrograms", {"organizationId": ORG}, coordinator)
    assert status == 200
    assert [p["programId"] for p in listed["programs"]] == [created["programId"]]
    # Over gRPC, the same program: one servicer behind both.
    assert api.grpc.address
    async with aio.insecure_channel(api.grpc.address) as channel:
        stub = enrollment_pb2_grpc.EnrollmentServiceStub(channel)
        over_grpc = await stub.ListPrograms(
            enrollment_pb2.ListProgramsRequest(organization_id=ORG),
            metadata=tuple(token("coordinator").items()),
        )
    assert [p.program_id for p in over_grpc.programs] == [created["programId"]]


async def test_refusals_are_connect_errors_naming_the_problem_and_counted(api: ApiServer) -> None:
    json_type = {"content-type": "application/json"}
    before = handled("CreateProgram", "INVALID_ARGUMENT")
    status, body = await post(
        api,
        "CreateProgram",
        {"organization_id": ORG, "name": " "},
        {**token("coordinator"), **json_type},
    )
    assert (status, body) == (400, {"code": "invalid_argument", "message": "name: is required"})
    assert handled("CreateProgram", "INVALID_ARGUMENT") == before + 1

    status, body = await post(
        api,
        "CreateProgram",
        {"organization_id": ORG, "name": "X"},
        {**token("coordinator", org="globex"), **json_type},
    )
    assert status == 403
    assert body["code"] == "permission_denied"
    assert body["message"].startswith("organization_id:")

    status, body = await post(
        api, "CreateProgram", {"organization_id": ORG, "name": "X"}, json_type
    )
    assert (status, body["code"]) == (401, "unauthenticated")

    # A misspelt field is refused rather than dropped.
    status, body = await post(
        api,
        "CreateProgram",
        {"organization_id": ORG, "nmae": "X"},
        {**token("coordinator"), **json_type},
    )
    assert (status, body["code"]) == (400, "invalid_argument")
    assert "nmae" in body["message"]


async def test_protocol_refusals_have_json_bodies(api: ApiServer) -> None:
    assert api.http is not None
    async with aiohttp.ClientSession() as session:
        async with session.get(url(api, "CreateProgram")) as reply:
            assert reply.status == 405
            assert (await reply.json())["code"] == "unimplemented"
        async with session.post(
            f"http://{api.http.address}/mentoring.v1.NoSuchService/Get",
            data="{}",
            headers={"content-type": "application/json"},
        ) as reply:
            assert reply.status == 404
            assert (await reply.json())["code"] == "unimplemented"
        async with session.post(
            url(api, "ListPrograms"), data="x", headers={"content-type": "text/plain"}
        ) as reply:
            assert reply.status == 415
            assert (await reply.json())["code"] == "invalid_argument"


async def test_cors_answers_listed_origins_only(api: ApiServer) -> None:
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    async with aiohttp.ClientSession() as session:
        async with session.options(
            url(api, "ListPrograms"), headers={**preflight, "origin": PORTAL}
        ) as reply:
            assert reply.status == 204
            assert reply.headers["access-control-allow-origin"] == PORTAL
            assert "authorization" in reply.headers["access-control-allow-headers"]
        async with session.options(
            url(api, "ListPrograms"), headers={**preflight, "origin": "https://evil.example"}
        ) as reply:
            assert reply.status == 403
            assert "access-control-allow-origin" not in reply.headers
        async with session.post(
            url(api, "ListPrograms"),
            data=json.dumps({"organization_id": ORG}),
            headers={**token("coordinator"), "content-type": "application/json", "origin": PORTAL},
        ) as reply:
            assert reply.status == 200
            assert reply.headers["access-control-allow-origin"] == PORTAL


def test_the_peer_token_and_protocol_headers_never_become_metadata() -> None:
    kept = metadata_of(
        [
            ("Authorization", "Bearer t"),
            (peers.FORWARDED.upper(), "forged"),
            ("Connect-Protocol-Version", "1"),
            ("Content-Type", "application/json"),
            ("X-Request-Id", "r-1"),
        ]
    )
    assert kept == (("authorization", "Bearer t"), ("x-request-id", "r-1"))


def test_every_grpc_code_has_a_connect_code() -> None:
    assert set(CONNECT_CODES) == set(grpc.StatusCode) - {grpc.StatusCode.OK}
    assert CONNECT_CODES[grpc.StatusCode.INVALID_ARGUMENT].value == "invalid_argument"


def test_the_http_context_has_every_context_method_the_services_call() -> None:
    """Servicers and interceptors get an HttpServicerContext for HTTP calls: a context method
    it lacks would fail only over HTTP."""
    used = set()
    for source in SERVICES.rglob("*.py"):
        text = source.read_text()
        if "/pb/" not in str(source) and "ServicerContext" in text:
            used |= set(re.findall(r"\bcontext\.([a-z_]\w*)\(", text))
    assert used, "the scan found no context calls"
    assert used <= set(dir(HttpServicerContext))


async def test_pages_are_served_beside_the_rpcs_and_other_paths_are_refused() -> None:
    async def hello(scope: Any, receive: Any, send: Any) -> None:
        body = f"page {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    port = free_port()
    server = HttpServer(http_app([], (), {"/calendar/": hello}), "127.0.0.1", port, 0.2)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/calendar/abc.ics") as reply:
                assert (reply.status, await reply.text()) == (200, "page /calendar/abc.ics")
            async with session.get(f"http://127.0.0.1:{port}/calendars/abc.ics") as reply:
                assert reply.status == 404
                assert (await reply.json())["code"] == "unimplemented"
    finally:
        await server.stop()
