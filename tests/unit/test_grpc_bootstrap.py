"""The shared gRPC bootstrap, driven over a real in-process grpc.aio server and channel.

EnrollmentServicer runs for real on mongomock; only the event publisher is a fake.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import Any

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from services.common import clock
from services.common.api import (
    common_pb2,
    enrollment_pb2,
    enrollment_pb2_grpc,
    events_pb2,
    matching_pb2,
    matching_pb2_grpc,
)
from services.common.config import Settings
from services.common.events import decode_event
from services.common.grpc_server import GrpcServer, ServiceBinding
from services.enrollment.servicer import EnrollmentServicer
from tests.unit import memory_db

ENROLLMENT = "mentoring.v1.EnrollmentService"
MATCHING = "mentoring.v1.MatchingService"
ORG = "org-1"


class FakePublisher:
    """Stands in for EventPublisher: records what would have gone to the broker."""

    def __init__(self) -> None:
        self.events: list[events_pb2.Event] = []

    async def publish(self, events: Sequence[events_pb2.Event]) -> None:
        self.events.extend(events)


def registrations(stack: Stack) -> list[events_pb2.Event]:
    return [e for e in stack.publisher.events if e.HasField("participant_registered")]


class ExplodingMatching(matching_pb2_grpc.MatchingServiceServicer):
    async def ListProposals(self, request: Any, context: Any) -> Any:
        raise RuntimeError("db password is hunter2")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    server: GrpcServer
    channel: aio.Channel
    publisher: FakePublisher
    stopped: bool = False
    programs: list[str] = field(default_factory=list)

    @property
    def enrollment(self) -> enrollment_pb2_grpc.EnrollmentServiceStub:
        return enrollment_pb2_grpc.EnrollmentServiceStub(self.channel)

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await self.server.stop()


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    settings = replace(
        Settings.from_env("enrollment", {}),
        bind_host="127.0.0.1",
        grpc_port=free_port(),
        mongodb_database=f"test_enrollment_{uuid.uuid4().hex}",
        shutdown_grace_seconds=0.2,
    )
    memory_db.connect(settings)
    publisher = FakePublisher()
    server = GrpcServer(
        settings,
        [
            ServiceBinding.of(
                enrollment_pb2.DESCRIPTOR,
                EnrollmentServicer(publisher),  # type: ignore[arg-type]
                enrollment_pb2_grpc.add_EnrollmentServiceServicer_to_server,
            ),
            ServiceBinding.of(
                matching_pb2.DESCRIPTOR,
                ExplodingMatching(),
                matching_pb2_grpc.add_MatchingServiceServicer_to_server,
            ),
        ],
    )
    await server.start()
    channel = aio.insecure_channel(server.address)
    stack = Stack(server, channel, publisher)
    try:
        yield stack
    finally:
        await channel.close()
        await stack.stop()


async def create_program(stack: Stack) -> str:
    program = await stack.enrollment.CreateProgram(
        enrollment_pb2.CreateProgramRequest(organization_id=ORG, name="Pilot", objective="grow")
    )
    return str(program.program_id)


def registration(program_id: str, **overrides: Any) -> enrollment_pb2.RegisterParticipantRequest:
    fields: dict[str, Any] = {
        "organization_id": ORG,
        "program_id": program_id,
        "role": common_pb2.ROLE_MENTOR,
        "display_name": "Ada Lovelace",
        "email": "ada@example.org",
        "skills": ["Python", "go"],
        "capacity": 2,
    }
    fields.update(overrides)
    return enrollment_pb2.RegisterParticipantRequest(**fields)


async def rpc_error(call: Any) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await call
    return caught.value


def handled(service: str, method: str, code: str) -> float:
    labels = {"grpc_service": service, "grpc_method": method, "grpc_code": code}
    return REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0


# --- the enrollment API over the wire -----------------------------------------------------


async def test_create_program_then_register_publishes_one_event(stack: Stack) -> None:
    program_id = await create_program(stack)
    assert uuid.UUID(program_id)

    participant = await stack.enrollment.RegisterParticipant(registration(program_id))
    assert participant.participant_id
    assert participant.program_id == program_id
    assert list(participant.skills) == ["python", "go"]
    assert participant.HasField("registered_at")

    # The application (counted by sign-up figures) and, with no screening, the registration.
    application, event = stack.publisher.events
    assert application.WhichOneof("payload") == "application_submitted"
    assert application.application_submitted.participant_id == participant.participant_id
    assert event.WhichOneof("payload") == "participant_registered"
    assert event.envelope.organization_id == ORG
    assert event.envelope.program_id == program_id
    assert event.envelope.producer == "enrollment"
    assert event.participant_registered.participant_id == participant.participant_id
    assert event.participant_registered.role == common_pb2.ROLE_MENTOR
    assert event.participant_registered.capacity == 2
    # What was "published" is a valid event for its topic.
    decode_event(event.SerializeToString(), topic="participant-registered")


async def test_bad_email_is_invalid_argument_and_nothing_happens(stack: Stack) -> None:
    program_id = await create_program(stack)
    before = handled(ENROLLMENT, "RegisterParticipant", "INVALID_ARGUMENT")

    err = await rpc_error(
        stack.enrollment.RegisterParticipant(registration(program_id, email="not-an-email"))
    )

    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("email")
    assert stack.publisher.events == []
    listed = await stack.enrollment.ListParticipants(
        enrollment_pb2.ListParticipantsRequest(organization_id=ORG, program_id=program_id)
    )
    assert list(listed.participants) == []
    after = handled(ENROLLMENT, "RegisterParticipant", "INVALID_ARGUMENT")
    assert after == before + 1


async def test_unknown_program_is_not_found(stack: Stack) -> None:
    err = await rpc_error(stack.enrollment.RegisterParticipant(registration("no-such-program")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details().startswith("program_id")
    assert "no-such-program" in err.details()
    assert stack.publisher.events == []


async def test_retrying_a_registration_returns_the_same_participant(stack: Stack) -> None:
    program_id = await create_program(stack)
    first = await stack.enrollment.RegisterParticipant(registration(program_id))
    # Same person: e-mail case and skill spelling differ only before normalisation.
    again = await stack.enrollment.RegisterParticipant(
        registration(program_id, email=" ADA@example.org", skills=["python", "GO"])
    )
    assert again.participant_id == first.participant_id

    # A retry republishes the same events under the same ids: consumers drop the copies.
    first_events, second_events = stack.publisher.events[:2], stack.publisher.events[2:]
    assert [e.envelope.event_id for e in first_events] == [
        e.envelope.event_id for e in second_events
    ]
    first_event, second_event = registrations(stack)
    assert first_event.envelope.event_id == second_event.envelope.event_id
    assert second_event.participant_registered == first_event.participant_registered

    listed = await stack.enrollment.ListParticipants(
        enrollment_pb2.ListParticipantsRequest(organization_id=ORG, program_id=program_id)
    )
    assert [p.participant_id for p in listed.participants] == [first.participant_id]


class FrozenDatetime(datetime):
    """A clock at a fixed instant with sub-millisecond digits, as real clocks have."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> FrozenDatetime:
        return cls(2025, 1, 2, 3, 4, 5, 678901, tzinfo=tz)


async def test_a_retry_answers_exactly_what_the_first_call_answered(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stored registered_at is what later reads and retries report; the first answer
    # and the first event must carry the same instant, or "the same" event differs.
    monkeypatch.setattr(clock, "datetime", FrozenDatetime)
    program_id = await create_program(stack)
    first = await stack.enrollment.RegisterParticipant(registration(program_id))
    again = await stack.enrollment.RegisterParticipant(registration(program_id))
    fetched = await stack.enrollment.GetParticipant(
        enrollment_pb2.GetParticipantRequest(
            organization_id=ORG, participant_id=first.participant_id
        )
    )
    assert again == first
    assert fetched == first
    assert stack.publisher.events[2:] == stack.publisher.events[:2]
    first_event, second_event = registrations(stack)
    assert second_event == first_event
    assert first_event.envelope.occurred_at == first.registered_at


async def test_same_email_with_different_data_is_already_exists(stack: Stack) -> None:
    program_id = await create_program(stack)
    await stack.enrollment.RegisterParticipant(registration(program_id))

    err = await rpc_error(
        stack.enrollment.RegisterParticipant(registration(program_id, display_name="Someone"))
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert err.details().startswith("email")
    assert len(registrations(stack)) == 1


async def test_an_unexpected_exception_is_internal_and_hides_its_message(stack: Stack) -> None:
    before = handled(MATCHING, "ListProposals", "INTERNAL")
    stub = matching_pb2_grpc.MatchingServiceStub(stack.channel)
    err = await rpc_error(
        stub.ListProposals(matching_pb2.ListProposalsRequest(organization_id=ORG))
    )
    assert err.code() == grpc.StatusCode.INTERNAL
    assert err.details() == "internal error"
    assert "hunter2" not in (err.debug_error_string() or "")
    assert handled(MATCHING, "ListProposals", "INTERNAL") == before + 1


async def test_successful_calls_are_counted_as_ok(stack: Stack) -> None:
    before = handled(ENROLLMENT, "CreateProgram", "OK")
    await create_program(stack)
    assert handled(ENROLLMENT, "CreateProgram", "OK") == before + 1


# --- health --------------------------------------------------------------------------------


async def test_health_serving_then_not_serving_after_stop(stack: Stack) -> None:
    health = health_pb2_grpc.HealthStub(stack.channel)
    for service in ("", ENROLLMENT, MATCHING):
        response = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING, service

    await stack.stop()

    # The server no longer answers, so ask its health servicer directly.
    for service in ("", ENROLLMENT):
        response = await stack.server.health.Check(
            health_pb2.HealthCheckRequest(service=service), None
        )
        assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING, service


async def test_health_of_an_unknown_service_is_not_found(stack: Stack) -> None:
    before = handled("grpc.health.v1.Health", "Check", "NOT_FOUND")
    health = health_pb2_grpc.HealthStub(stack.channel)
    err = await rpc_error(health.Check(health_pb2.HealthCheckRequest(service="nope.Service")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # A servicer's own context.abort() is recorded with the code it aborted with. Its status
    # reaches the client before the interceptor sees the AbortError, so allow a moment.
    for _ in range(100):
        if handled("grpc.health.v1.Health", "Check", "NOT_FOUND") > before:
            break
        await asyncio.sleep(0.01)
    assert handled("grpc.health.v1.Health", "Check", "NOT_FOUND") == before + 1


# --- reflection ----------------------------------------------------------------------------


async def reflect(
    stack: Stack, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(stack.channel)
    responses = [r async for r in stub.ServerReflectionInfo(iter([request]))]
    assert len(responses) == 1
    return responses[0]


async def test_reflection_lists_the_services(stack: Stack) -> None:
    response = await reflect(stack, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in response.list_services_response.service}
    assert {ENROLLMENT, MATCHING, "grpc.health.v1.Health"} <= names


async def test_reflection_serves_the_enrollment_schema(stack: Stack) -> None:
    from google.protobuf import descriptor_pb2

    response = await reflect(
        stack, reflection_pb2.ServerReflectionRequest(file_containing_symbol=ENROLLMENT)
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in response.file_descriptor_response.file_descriptor_proto
    ]
    enrollment_file = next(f for f in files if f.name == "mentoring/v1/enrollment.proto")
    (service,) = enrollment_file.service
    assert service.name == "EnrollmentService"
    assert "RegisterParticipant" in {m.name for m in service.method}
