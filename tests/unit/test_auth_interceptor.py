"""Authentication in the shared gRPC bootstrap, over a real in-process server and channel:
EnrollmentServicer on mongomock, and a stand-in service that reports who called it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from mentoring.clients import channel as client_channel
from mentoring.tokens import mint
from services.common import auth
from services.common.api import (
    analytics_pb2,
    analytics_pb2_grpc,
    enrollment_pb2,
    enrollment_pb2_grpc,
)
from services.common.config import AuthSettings, Settings
from services.common.grpc_server import GrpcServer, ServiceBinding
from services.enrollment.servicer import EnrollmentServicer
from tests.unit import memory_db
from tests.unit.test_grpc_bootstrap import FakePublisher, free_port

ENROLLMENT = "mentoring.v1.EnrollmentService"
AUTH = AuthSettings(jwt_secret="k" * 32, issuer="tests", audience="mentoring")
ORG = "acme"


class WhoAmI(analytics_pb2_grpc.AnalyticsServiceServicer):
    """Answers with the principal the interceptor verified (servicers never parse tokens)."""

    async def GetProgramKpis(self, request: Any, context: Any) -> analytics_pb2.ProgramKpis:
        principal = auth.current()
        assert principal is not None
        return analytics_pb2.ProgramKpis(
            organization_id=principal.organization_id, program_id=principal.subject
        )


@pytest.fixture
async def server() -> AsyncIterator[GrpcServer]:
    settings = replace(
        Settings.from_env("enrollment", {}),
        grpc_port=free_port(),
        mongodb_database=f"test_auth_{uuid.uuid4().hex}",
        shutdown_grace_seconds=0.2,
        auth=AUTH,
    )
    memory_db.connect(settings)
    running = GrpcServer(
        settings,
        [
            ServiceBinding.of(
                enrollment_pb2.DESCRIPTOR,
                EnrollmentServicer(FakePublisher()),  # type: ignore[arg-type]
                enrollment_pb2_grpc.add_EnrollmentServiceServicer_to_server,
            ),
            ServiceBinding.of(
                analytics_pb2.DESCRIPTOR,
                WhoAmI(),
                analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server,
            ),
        ],
    )
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def token(*roles: str, org: str = ORG, sub: str = "someone") -> str:
    return mint(AUTH, organization=org, subject=sub, roles=roles)


def bearer(value: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {value}"),)


def handled(method: str, code: str) -> float:
    labels = {"grpc_service": ENROLLMENT, "grpc_method": method, "grpc_code": code}
    return REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0


async def rpc_error(call: Any) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await call
    return caught.value


CREATE = enrollment_pb2.CreateProgramRequest(organization_id=ORG, name="Pilot")


async def test_no_token_is_unauthenticated_and_counted(server: GrpcServer) -> None:
    before = handled("CreateProgram", "UNAUTHENTICATED")
    async with aio.insecure_channel(server.address) as ch:
        stub = enrollment_pb2_grpc.EnrollmentServiceStub(ch)
        err = await rpc_error(stub.CreateProgram(CREATE))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "authorization: Bearer" in err.details()
        forged = mint(
            replace(AUTH, jwt_secret="x" * 32), organization=ORG, subject="me", roles=["service"]
        )
        err = await rpc_error(stub.CreateProgram(CREATE, metadata=bearer(forged)))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert err.details() == "invalid token: Signature verification failed"
    assert handled("CreateProgram", "UNAUTHENTICATED") == before + 2


async def test_health_and_reflection_stay_open(server: GrpcServer) -> None:
    async with aio.insecure_channel(server.address) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (answer,) = [r async for r in stub.ServerReflectionInfo(iter([request]))]
        assert ENROLLMENT in {s.name for s in answer.list_services_response.service}


async def test_roles_and_organisations_are_enforced(server: GrpcServer) -> None:
    async with aio.insecure_channel(server.address) as ch:
        stub = enrollment_pb2_grpc.EnrollmentServiceStub(ch)
        program = await stub.CreateProgram(CREATE, metadata=bearer(token("coordinator")))
        assert program.organization_id == ORG

        before = handled("CreateProgram", "PERMISSION_DENIED")
        err = await rpc_error(stub.CreateProgram(CREATE, metadata=bearer(token("participant"))))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert err.details() == "CreateProgram is for coordinators only"
        assert handled("CreateProgram", "PERMISSION_DENIED") == before + 1

        # Participants may look at programs; nobody may look at another organisation's.
        listed = await stub.ListPrograms(
            enrollment_pb2.ListProgramsRequest(organization_id=ORG),
            metadata=bearer(token("participant")),
        )
        assert [p.program_id for p in listed.programs] == [program.program_id]
        err = await rpc_error(
            stub.GetProgram(
                enrollment_pb2.GetProgramRequest(
                    organization_id=ORG, program_id=program.program_id
                ),
                metadata=bearer(token("coordinator", org="globex")),
            )
        )
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert err.details().startswith("organization_id:")


async def test_the_servicer_sees_the_verified_principal(server: GrpcServer) -> None:
    def ask() -> analytics_pb2.ProgramKpis:
        # The CLI's (blocking) channel, which adds the header to every call.
        with client_channel(server.address, token("coordinator", sub="coord-7")) as ch:
            return analytics_pb2_grpc.AnalyticsServiceStub(ch).GetProgramKpis(
                analytics_pb2.GetProgramKpisRequest(organization_id=ORG, program_id="p"),
                timeout=10,
            )

    kpis = await asyncio.to_thread(ask)
    assert (kpis.organization_id, kpis.program_id) == (ORG, "coord-7")
    assert auth.current() is None  # nothing leaks outside the call
