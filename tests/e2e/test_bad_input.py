"""Bad input gets a clear error and leaves no trace; bad events go to the dead-letter topic."""

from __future__ import annotations

import uuid

import grpc
import pytest

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import (
    analytics_pb2,
    common_pb2,
    enrollment_pb2,
    events_pb2,
    matching_pb2,
)
from services.common.events import EVENT_TOPICS, new_event, partition_key
from tests.e2e.engine import Program
from tests.e2e.support import DeadLetters, eventually, metric, produce, read_topic

VALID = {
    "role": common_pb2.ROLE_MENTOR,
    "display_name": "Grace Hopper",
    "email": "grace@example.org",
    "skills": ["cobol", "leadership"],
    "capacity": 2,
}


def new_program(clients: Clients) -> tuple[str, str]:
    org = f"org-{uuid.uuid4().hex[:8]}"
    program = clients.enrollment.CreateProgram(
        enrollment_pb2.CreateProgramRequest(organization_id=org, name="Bad input")
    )
    return org, program.program_id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"organization_id": ""}, "organization_id"),
        ({"program_id": "no such/id"}, "program_id"),
        ({"role": common_pb2.ROLE_UNSPECIFIED}, "role"),
        ({"display_name": "  "}, "display_name"),
        ({"email": ""}, "email"),
        ({"email": "not-an-address"}, "email"),
        ({"skills": []}, "skills"),
        ({"skills": ["python", ""]}, "skills[1]"),
        ({"capacity": 0}, "capacity"),
        ({"capacity": 99}, "capacity"),
    ],
)
def test_register_participant_rejects_bad_field(
    stack: Stack, clients: Clients, change: dict[str, object], field: str
) -> None:
    org, pid = new_program(clients)
    fields = {"organization_id": org, "program_id": pid, **VALID, **change}
    with pytest.raises(grpc.RpcError) as caught:
        clients.enrollment.RegisterParticipant(enrollment_pb2.RegisterParticipantRequest(**fields))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"{field}:")
    listed = clients.enrollment.ListParticipants(
        enrollment_pb2.ListParticipantsRequest(organization_id=org, program_id=pid)
    )
    assert list(listed.participants) == []


def test_rejected_registration_publishes_nothing(stack: Stack, clients: Clients) -> None:
    org, pid = new_program(clients)
    request = enrollment_pb2.RegisterParticipantRequest(
        organization_id=org, program_id=pid, **VALID
    )
    bad = enrollment_pb2.RegisterParticipantRequest()
    bad.CopyFrom(request)
    bad.email = "broken"
    with pytest.raises(grpc.RpcError):
        clients.enrollment.RegisterParticipant(bad)
    clients.enrollment.RegisterParticipant(request)
    records = read_topic(stack.ports.bootstrap, "participant-registered")
    mine = [r for r in records if r.key == partition_key(org, pid)]
    assert len(mine) == 1
    assert (
        events_pb2.Event.FromString(mine[0].value).participant_registered.display_name
        == "Grace Hopper"
    )


def test_unknown_program_is_not_found(stack: Stack, clients: Clients) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        clients.enrollment.RegisterParticipant(
            enrollment_pb2.RegisterParticipantRequest(
                organization_id="acme", program_id="nope", **VALID
            )
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details().startswith("program_id:")


# Consumer groups reading each topic: each must dead-letter an undecodable message and go on.
# Analytics reads every topic (through its ingest stage); its agent dead-letters what it cannot
# decode. Notifications reads every topic but hr-events, for webhooks.
READERS = {
    "participant-registered": {"matching", "engagement", "analytics", "notifications"},
    "match-responded": {"matching", "analytics", "notifications"},
    "match-proposed": {"engagement", "analytics", "notifications"},
    "relationship-started": {"analytics", "notifications"},
    "session-logged": {"analytics", "notifications"},
    "relationship-ended": {"matching", "analytics", "notifications"},
    "match-expired": {"engagement", "analytics", "notifications"},
    "matching-run-requested": {"matching", "analytics", "notifications"},
    # Matching workers also read it, without a group, into their run read model: they skip
    # what they cannot decode and leave dead-lettering to the group.
    "matching-run-completed": {"analytics", "notifications"},
    # Enrollment applies it to participants in its group; every matching worker also reads it
    # outside any group, for reporting lines, and leaves dead-lettering to enrollment.
    "hr-events": {"enrollment", "analytics"},
    "goal-updated": {"analytics", "notifications"},
    "feedback-submitted": {"analytics", "notifications"},
    "message-sent": {"analytics", "notifications"},
    "training-completed": {"analytics", "notifications"},
    "notification-requested": {"analytics", "notifications"},
    "session-planned": {"analytics", "notifications"},
    "program-changed": {"engagement", "analytics", "notifications"},
    "participant-updated": {"matching", "engagement", "analytics", "notifications"},
    "participant-withdrawn": {"matching", "engagement", "analytics", "notifications"},
    "application-submitted": {"analytics", "notifications"},
    "application-screened": {"analytics", "notifications"},
    "participant-erased": {"matching", "engagement", "analytics", "notifications"},
}


def test_undecodable_events_are_dead_lettered_and_consumers_go_on(
    stack: Stack, clients: Clients
) -> None:
    assert set(READERS) == set(EVENT_TOPICS)
    key = f"poison/{uuid.uuid4().hex}".encode()
    dead_letters = DeadLetters(stack.ports.bootstrap)
    produce(
        stack.ports.bootstrap,
        [(topic, key, b"\xff\xfe not protobuf " + topic.encode()) for topic in EVENT_TOPICS],
    )
    expected = {(topic, group) for topic, groups in READERS.items() for group in groups}

    found: dict[tuple[str, str], events_pb2.DeadLetter] = {}

    def letters() -> dict[tuple[str, str], events_pb2.DeadLetter] | None:
        for letter in dead_letters():
            if letter.key == key:
                found[(letter.source_topic, letter.consumer_group)] = letter
        return found if set(found) == expected else None

    try:
        eventually("a dead letter per topic and consumer group", letters, timeout=60)
    except AssertionError as error:
        missing, extra = sorted(expected - set(found)), sorted(set(found) - expected)
        raise AssertionError(f"{error}; missing {missing}; unexpected {extra}") from None
    for (topic, _), letter in found.items():
        assert letter.value == b"\xff\xfe not protobuf " + topic.encode()
        assert letter.reason
        assert letter.failed_at.seconds > 0

    # The consumers are alive: a registration made now is matched and counted.
    org, pid = new_program(clients)
    for role, name, capacity in (
        (common_pb2.ROLE_MENTOR, "Mo", 1),
        (common_pb2.ROLE_MENTEE, "Mia", 0),
    ):
        clients.enrollment.RegisterParticipant(
            enrollment_pb2.RegisterParticipantRequest(
                organization_id=org,
                program_id=pid,
                role=role,
                display_name=name,
                email=f"{name}@example.org",
                skills=["sql"],
                capacity=capacity,
            )
        )
    eventually(
        "the new pair to be proposed",
        lambda: (
            len(
                clients.matching.ListProposals(
                    matching_pb2.ListProposalsRequest(organization_id=org, program_id=pid)
                ).proposals
            )
            == 1
        ),
    )


def test_event_that_cannot_be_applied_is_dead_lettered(stack: Stack, clients: Clients) -> None:
    org, pid = new_program(clients)
    event = new_event(
        producer="hr-sync",
        organization_id=org,
        program_id=pid,
        payload=events_pb2.ParticipantRegistered(participant_id="p1", display_name="No role"),
    )
    dead_letters = DeadLetters(stack.ports.bootstrap)
    produce(
        stack.ports.bootstrap,
        [("participant-registered", partition_key(org, pid), event.SerializeToString())],
    )

    def letter() -> events_pb2.DeadLetter | None:
        for found in dead_letters():
            if found.consumer_group == "matching" and found.value == event.SerializeToString():
                return found
        return None

    assert "role" in eventually("matching to dead-letter the event", letter).reason


def test_redelivered_event_changes_nothing(stack: Stack, clients: Clients) -> None:
    org, pid = new_program(clients)
    for role, name, capacity in (
        (common_pb2.ROLE_MENTOR, "Ray", 1),
        (common_pb2.ROLE_MENTEE, "Rin", 0),
    ):
        clients.enrollment.RegisterParticipant(
            enrollment_pb2.RegisterParticipantRequest(
                organization_id=org,
                program_id=pid,
                role=role,
                display_name=name,
                email=f"{name}@example.org",
                skills=["go"],
                capacity=capacity,
            )
        )
    request = analytics_pb2.GetProgramKpisRequest(organization_id=org, program_id=pid)
    settled = eventually(
        "KPIs for the pair",
        lambda: (
            k if (k := clients.analytics.GetProgramKpis(request)).matches_proposed == 1 else None
        ),
    )
    originals = [
        r
        for r in read_topic(stack.ports.bootstrap, "participant-registered")
        if r.key == partition_key(org, pid)
    ]
    assert len(originals) == 2
    ports = stack.ports.metrics
    labels = {"topic": "participant-registered"}
    before = {
        g: metric(ports[g], "mentoring_events_duplicate_total", group=g, **labels)
        for g in ("matching", "analytics")
    }

    produce(stack.ports.bootstrap, [("participant-registered", r.key, r.value) for r in originals])

    for group in ("matching", "analytics"):
        eventually(
            f"{group} to see both duplicates",
            lambda g=group: (
                metric(ports[g], "mentoring_events_duplicate_total", group=g, **labels)
                == before[g] + 2
            ),
        )
    assert clients.analytics.GetProgramKpis(request) == settled
    proposals = clients.matching.ListProposals(
        matching_pb2.ListProposalsRequest(organization_id=org, program_id=pid)
    ).proposals
    assert len(proposals) == 1


def test_an_event_with_a_timestamp_out_of_range_is_dead_lettered_and_the_partition_goes_on(
    stack: Stack, clients: Clients
) -> None:
    # Reported: a match-proposed whose occurred_at.seconds was 10^15 decoded, then every
    # ToDatetime raised, and engagement's consumer stopped on that partition for good.
    program = Program(clients, stack)
    org, pid = program.org, program.pid

    def proposal(match_id: str) -> events_pb2.Event:
        return new_event(
            producer="matching",
            organization_id=org,
            program_id=pid,
            payload=events_pb2.MatchProposed(
                match_id=match_id, mentor_id="mentor-1", mentee_id="mentee-1", score=0.5
            ),
        )

    poison, after = proposal("poisoned"), proposal("after")
    poison.envelope.occurred_at.seconds = 10**15
    dead_letters = DeadLetters(stack.ports.bootstrap)
    produce(
        stack.ports.bootstrap,
        [
            ("match-proposed", partition_key(org, pid), e.SerializeToString())
            for e in (poison, after)
        ],
    )

    def letters() -> dict[str, events_pb2.DeadLetter] | None:
        found = {
            letter.consumer_group: letter
            for letter in dead_letters()
            if letter.value == poison.SerializeToString()
        }
        return found if {"engagement", "analytics"} <= set(found) else None

    for letter in eventually("engagement and analytics to dead-letter it", letters).values():
        assert "envelope.occurred_at is out of range" in letter.reason
    match = eventually(
        "the next proposal on the partition to reach engagement",
        lambda: program.known("after"),
    )
    assert match.mentee_id == "mentee-1"
