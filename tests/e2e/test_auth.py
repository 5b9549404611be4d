"""Authentication on, end to end: a second small platform (broker, enrollment, matching,
engagement) started with AUTH_JWT_SECRET, driven over gRPC, through the CLI and the gateway."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mentoring.clients import TOKEN_ENV, Clients
from mentoring.stack import Ports, Stack
from mentoring.tokens import mint
from services.common.api import (
    common_pb2,
    engagement_pb2,
    enrollment_pb2,
    enrollment_pb2_grpc,
    events_pb2,
    matching_pb2,
)
from services.common.config import AuthSettings
from services.common.events import partition_key
from tests.e2e.engine import MENTEE, MENTOR, Program
from tests.e2e.support import eventually, metric, read_topic, without_auth
from tests.e2e.test_gateway import start_gateway

E = engagement_pb2
AUTH_ENV = {
    "AUTH_JWT_SECRET": f"e2e-{uuid.uuid4().hex}{uuid.uuid4().hex}",
    "AUTH_JWT_ISSUER": "mentoring-e2e",
    "AUTH_JWT_AUDIENCE": "mentoring",
}
SETTINGS = AuthSettings.from_env(AUTH_ENV)
SERVED = ("enrollment", "matching", "engagement")
Req = TypeVar("Req", bound=Message)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {**without_auth(os.environ), **AUTH_ENV, "SCHEDULER_INTERVAL_SECONDS": "0.5"}
    platform = Stack(Ports.free(), log_dir=tmp_path_factory.mktemp("secure-logs"), env=env)
    try:
        platform.start_engines()
        started = [platform.start_service(service) for service in SERVED]
        for managed, service in zip(started, SERVED, strict=True):
            platform.wait_serving(managed, platform.ports.address(service))
        yield platform
    finally:
        platform.stop()


def token(org: str, sub: str, *roles: str) -> str:
    return mint(SETTINGS, organization=org, subject=sub, roles=roles)


@dataclass
class Pair:
    program: Program
    mentor: str
    mentee: str
    relationship_id: str


@dataclass
class World:
    stack: Stack
    org: str
    coordinator: Clients
    first: Pair
    second: Pair
    opened: list[Clients]

    def client_env(self, token_value: str | None) -> dict[str, str]:
        env = {k: v for k, v in self.stack.client_env().items() if not k.startswith("AUTH_")}
        if token_value:
            env[TOKEN_ENV] = token_value
        return env

    def as_(self, sub: str, *roles: str, org: str = "") -> Clients:
        clients = Clients(env=self.client_env(token(org or self.org, sub, *roles)))
        self.opened.append(clients)
        return clients

    def participant(self, participant_id: str) -> Clients:
        return self.as_(participant_id, "participant")


def _engagement_knows(program: Program, match_id: str) -> bool:
    try:
        program.match(match_id)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return False
        raise
    return True


def new_pair(world: World, skill: str) -> Pair:
    """A program with one mentor and one mentee, who accept their proposal themselves."""
    program = Program(world.coordinator, world.stack, org=world.org)
    mentor = program.register("Mia", MENTOR, [skill], capacity=1)
    mentee = program.register("Leo", MENTEE, [skill])
    proposal = eventually("a proposal", lambda: next(iter(program.proposals(mentee)), None))
    eventually("engagement to see it", lambda: _engagement_knows(program, proposal.match_id))
    match = None
    for who in (mentor, mentee):
        match = world.participant(who).engagement.RespondToMatch(
            E.RespondToMatchRequest(
                organization_id=world.org,
                match_id=proposal.match_id,
                participant_id=who,
                decision=common_pb2.MATCH_DECISION_ACCEPT,
            )
        )
    assert match is not None and match.relationship_id
    return Pair(program, mentor, mentee, match.relationship_id)


@pytest.fixture(scope="module")
def world(secure: Stack) -> Iterator[World]:
    org = f"org-{uuid.uuid4().hex[:8]}"
    coordinator = Clients(
        env={**secure.client_env(), TOKEN_ENV: token(org, "coord", "coordinator")}
    )
    built = World(secure, org, coordinator, None, None, [])  # type: ignore[arg-type]
    try:
        built.first = new_pair(built, "coaching")
        built.second = new_pair(built, "rust")
        yield built
    finally:
        for clients in (coordinator, *built.opened):
            clients.close()


def refused(call: Callable[[Req], object], request: Req) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request)
    return caught.value


def denied(call: Callable[[Req], object], request: Req, starts: str) -> None:
    error = refused(call, request)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error.details()
    assert error.details().startswith(starts), error.details()


def test_no_token_is_unauthenticated_on_every_service_and_health_stays_open(
    secure: Stack,
) -> None:
    before = metric(
        secure.ports.metrics["enrollment"],
        "grpc_server_handled_total",
        grpc_service="mentoring.v1.EnrollmentService",
        grpc_method="ListPrograms",
        grpc_code="UNAUTHENTICATED",
    )
    with Clients(env={k: v for k, v in secure.client_env().items() if k != TOKEN_ENV}) as anon:
        for call, request in (
            (anon.enrollment.ListPrograms, enrollment_pb2.ListProgramsRequest(organization_id="o")),
            (
                anon.matching.GetMatchingConfig,
                matching_pb2.GetMatchingConfigRequest(organization_id="o", program_id="p"),
            ),
            (anon.engagement.ListMatches, E.ListMatchesRequest(organization_id="o")),
        ):
            error = refused(call, request)  # type: ignore[arg-type]
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "authorization: Bearer" in error.details()
    for service in SERVED:
        with grpc.insecure_channel(secure.ports.address(service)) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    # Counted under its code, with nothing about the caller in the labels.
    eventually(
        "the refusal to be counted",
        lambda: (
            metric(
                secure.ports.metrics["enrollment"],
                "grpc_server_handled_total",
                grpc_service="mentoring.v1.EnrollmentService",
                grpc_method="ListPrograms",
                grpc_code="UNAUTHENTICATED",
            )
            == before + 1
        ),
    )


def test_a_token_valid_for_longer_than_the_maximum_is_unauthenticated(world: World) -> None:
    week = mint(
        SETTINGS,
        organization=world.org,
        subject="coord",
        roles=["coordinator"],
        ttl_seconds=7 * 24 * 3600,
    )
    with Clients(env=world.client_env(week)) as clients:
        error = refused(
            clients.enrollment.ListPrograms,
            enrollment_pb2.ListProgramsRequest(organization_id=world.org),
        )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "valid for longer than 86400 seconds" in error.details()


def test_another_organisations_token_is_permission_denied(world: World) -> None:
    outsider = world.as_("coord", "coordinator", org="globex")
    denied(
        outsider.engagement.GetRelationship,
        E.GetRelationshipRequest(
            organization_id=world.org, relationship_id=world.first.relationship_id
        ),
        "organization_id:",
    )
    denied(
        outsider.enrollment.ListPrograms,
        enrollment_pb2.ListProgramsRequest(organization_id=world.org),
        "organization_id:",
    )


def test_participants_cannot_run_the_program(world: World) -> None:
    mentee = world.participant(world.first.mentee)
    pid = world.first.program.pid
    denied(
        mentee.enrollment.CreateProgram,
        enrollment_pb2.CreateProgramRequest(organization_id=world.org, name="Mine"),
        "CreateProgram is for coordinators only",
    )
    denied(
        mentee.enrollment.ApproveParticipant,
        enrollment_pb2.ScreenParticipantRequest(
            organization_id=world.org, participant_id=world.first.mentee
        ),
        "ApproveParticipant is for coordinators only",
    )
    denied(
        mentee.matching.StartMatchingRun,
        matching_pb2.StartMatchingRunRequest(organization_id=world.org, program_id=pid),
        "StartMatchingRun is for coordinators only",
    )
    # What is theirs they may read: the program and their own matches.
    program = mentee.enrollment.GetProgram(
        enrollment_pb2.GetProgramRequest(organization_id=world.org, program_id=pid)
    )
    assert program.program_id == pid
    mine = mentee.engagement.ListMatches(
        E.ListMatchesRequest(
            organization_id=world.org, program_id=pid, participant_id=world.first.mentee
        )
    )
    assert [m.relationship_id for m in mine.matches] == [world.first.relationship_id]


def test_audited_actions_record_the_caller_and_refuse_another_name(world: World) -> None:
    """requested_by (who overrode a hard rule, who asked for an erasure) is the token's
    subject: a request cannot put someone else's name on the record."""
    program = Program(world.coordinator, world.stack, org=world.org)
    program.configure(mode=matching_pb2.MATCHING_MODE_BULK)
    mentor = program.register("Ada", MENTOR, ["cobol"], capacity=1)
    mentee = program.register("Bo", MENTEE, ["welding"])
    program.wait_pool()
    propose = program.proposal_request(mentor, mentee, requested_by="someone-else")
    denied(world.coordinator.matching.ProposeMatch, propose, "requested_by: must be the caller")
    assert program.proposals(mentee) == []
    propose.requested_by = ""
    proposal = world.coordinator.matching.ProposeMatch(propose).proposal
    assert proposal.proposed_by == "coord"
    assert [p.proposed_by for p in program.proposals(mentee)] == ["coord"]

    erase = enrollment_pb2.ErasePersonRequest(
        organization_id=world.org,
        person=enrollment_pb2.PersonRef(participant_id=mentee),
        reason="GDPR art. 17 request 7",
        requested_by="the-dpo",
    )
    denied(world.coordinator.enrollment.ErasePerson, erase, "requested_by: must be the caller")
    erase.requested_by = "coord"
    assert world.coordinator.enrollment.ErasePerson(erase).requested_by == "coord"


def test_the_pair_acts_on_their_relationship_and_nobody_else(world: World) -> None:
    first, org = world.first, world.org
    mentee, mentor = world.participant(first.mentee), world.participant(first.mentor)
    paused = mentee.engagement.PauseRelationship(
        E.PauseRelationshipRequest(
            organization_id=org, relationship_id=first.relationship_id, participant_id=first.mentee
        )
    )
    assert paused.status == E.RELATIONSHIP_STATUS_PAUSED
    resumed = mentor.engagement.ResumeRelationship(
        E.ResumeRelationshipRequest(
            organization_id=org, relationship_id=first.relationship_id, participant_id=first.mentor
        )
    )
    assert resumed.status == E.RELATIONSHIP_STATUS_ACTIVE
    seen = mentee.engagement.GetRelationship(
        E.GetRelationshipRequest(organization_id=org, relationship_id=first.relationship_id)
    )
    assert (seen.mentor_id, seen.mentee_id) == (first.mentor, first.mentee)

    # The other pair's mentee: as themselves they are not part of it; as someone else, refused.
    stranger = world.participant(world.second.mentee)
    denied(
        stranger.engagement.PauseRelationship,
        E.PauseRelationshipRequest(
            organization_id=org,
            relationship_id=first.relationship_id,
            participant_id=world.second.mentee,
        ),
        "participant_id: not the mentor or the mentee",
    )
    denied(
        stranger.engagement.PauseRelationship,
        E.PauseRelationshipRequest(
            organization_id=org, relationship_id=first.relationship_id, participant_id=first.mentee
        ),
        "participant_id: a participant may act only as themselves",
    )
    denied(
        stranger.engagement.GetRelationship,
        E.GetRelationshipRequest(organization_id=org, relationship_id=first.relationship_id),
        "relationship_id: the caller is neither its mentor nor its mentee",
    )
    held = Timestamp()
    held.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    log = E.LogSessionRequest(
        organization_id=org,
        relationship_id=first.relationship_id,
        held_at=held,
        minutes=30,
        mode=common_pb2.SESSION_MODE_VIRTUAL,
    )
    denied(stranger.engagement.LogSession, log, "relationship_id: the caller is neither")
    assert mentor.engagement.LogSession(log).minutes == 30
    match = world.coordinator.engagement.GetRelationship(
        E.GetRelationshipRequest(organization_id=org, relationship_id=first.relationship_id)
    ).match_id
    denied(
        stranger.engagement.GetMatch,
        E.GetMatchRequest(organization_id=org, match_id=match),
        "match_id: the caller is neither",
    )


def test_a_coordinator_acts_on_any_relationship_but_never_sees_private_notes(
    world: World,
) -> None:
    second, org = world.second, world.org
    coordinator, mentor = world.coordinator, world.participant(second.mentor)
    current = coordinator.engagement.GetRelationship(
        E.GetRelationshipRequest(organization_id=org, relationship_id=second.relationship_id)
    )
    later = Timestamp()
    later.FromDatetime(current.expected_end_at.ToDatetime(UTC) + timedelta(days=30))
    extended = coordinator.engagement.ExtendRelationship(
        E.ExtendRelationshipRequest(
            organization_id=org,
            relationship_id=second.relationship_id,
            participant_id=second.mentor,
            expected_end_at=later,
        )
    )
    assert extended.expected_end_at == later

    when = Timestamp()
    when.FromDatetime(datetime.now(UTC) + timedelta(days=2))
    session = mentor.engagement.ScheduleSession(
        E.ScheduleSessionRequest(
            organization_id=org,
            relationship_id=second.relationship_id,
            participant_id=second.mentor,
            scheduled_at=when,
            minutes=45,
            mode=common_pb2.SESSION_MODE_VIRTUAL,
        )
    )
    note = E.AddSessionNoteRequest(
        organization_id=org,
        session_id=session.session_id,
        participant_id=second.mentor,
        text="talk about the promotion",
    )
    assert mentor.engagement.AddSessionNote(note).private_note == "talk about the promotion"
    denied(coordinator.engagement.AddSessionNote, note, "participant_id: AddSessionNote is private")

    def listed(clients: Clients) -> list[str]:
        return [
            s.private_note
            for s in clients.engagement.ListSessions(
                E.ListSessionsRequest(
                    organization_id=org,
                    relationship_id=second.relationship_id,
                    participant_id=second.mentor,
                )
            ).sessions
        ]

    assert listed(mentor) == ["talk about the promotion"]
    assert listed(coordinator) == [""]

    # A coordinator may record that the session took place, but not with the member's note.
    earlier = Timestamp()
    earlier.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    held = E.MarkSessionHeldRequest(
        organization_id=org,
        session_id=session.session_id,
        participant_id=second.mentor,
        held_at=earlier,
        private_note="overwritten?",
    )
    denied(coordinator.engagement.MarkSessionHeld, held, "private_note: only its author")
    held.private_note = ""
    marked = coordinator.engagement.MarkSessionHeld(held)
    assert (marked.status, marked.private_note) == (E.SESSION_STATUS_HELD, "")
    assert listed(mentor) == ["talk about the promotion"]


def test_session_planned_names_the_coordinator_who_moved_a_session(world: World) -> None:
    first, org = world.first, world.org
    mentee = world.participant(first.mentee)
    when, later = Timestamp(), Timestamp()
    soon = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=3)
    when.FromDatetime(soon)
    later.FromDatetime(soon + timedelta(days=1))
    session = mentee.engagement.ScheduleSession(
        E.ScheduleSessionRequest(
            organization_id=org,
            relationship_id=first.relationship_id,
            participant_id=first.mentee,
            scheduled_at=when,
            minutes=30,
            mode=common_pb2.SESSION_MODE_VIRTUAL,
        )
    )
    move = E.RescheduleSessionRequest(
        organization_id=org,
        session_id=session.session_id,
        participant_id=first.mentee,
        scheduled_at=later,
    )
    stranger = world.participant(world.second.mentee)
    denied(
        stranger.engagement.RescheduleSession,
        move,
        "participant_id: a participant may act only as themselves",
    )
    assert world.coordinator.engagement.RescheduleSession(move).scheduled_at == later
    key = partition_key(org, first.program.pid)

    def changers() -> dict[int, str] | None:
        found = {
            e.session_planned.sequence: e.session_planned.changed_by
            for record in read_topic(world.stack.ports.bootstrap, "session-planned")
            if record.key == key
            for e in [events_pb2.Event.FromString(record.value)]
            if e.session_planned.session_id == session.session_id
        }
        return found if len(found) == 2 else None

    # The member scheduled it; the coordinator (the token's subject) moved it for them.
    assert eventually("both changes on session-planned", changers) == {0: first.mentee, 1: "coord"}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mentoring.cli", *args],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=60,
        check=False,
    )


def test_the_cli_sends_its_token(world: World) -> None:
    minted = cli(
        {**world.client_env(None), **AUTH_ENV},
        *("auth", "token", "--org", world.org, "--role", "coordinator", "--sub", "cli-user"),
    )
    assert minted.returncode == 0, minted.stdout + minted.stderr
    coordinator_token = minted.stdout.strip()
    pid = world.first.program.pid

    with_option = cli(
        world.client_env(None), "--token", coordinator_token, "programs", "list", "-o", world.org
    )
    assert with_option.returncode == 0, with_option.stdout + with_option.stderr
    assert pid in with_option.stdout
    from_env = cli(world.client_env(coordinator_token), "programs", "list", "-o", world.org)
    assert from_env.returncode == 0 and pid in from_env.stdout, from_env.stdout

    anonymous = cli(world.client_env(None), "programs", "list", "-o", world.org)
    assert anonymous.returncode == 1
    assert "UNAUTHENTICATED: missing credentials" in anonymous.stdout
    participant = token(world.org, world.first.mentee, "participant")
    create = cli(
        world.client_env(participant), "programs", "create", "-o", world.org, "--name", "Mine"
    )
    assert create.returncode == 1
    assert "PERMISSION_DENIED: CreateProgram is for coordinators only" in create.stdout


def test_the_gateway_passes_the_authorization_header_on(world: World, tmp_path: Path) -> None:
    gateway = start_gateway(
        tmp_path / "gateway",
        {name: world.stack.ports.address(name) for name in (*SERVED, "analytics")},
    )
    try:
        with grpc.insecure_channel(gateway.address) as channel:
            stub = enrollment_pb2_grpc.EnrollmentServiceStub(channel)
            request = enrollment_pb2.ListProgramsRequest(organization_id=world.org)
            error = refused(stub.ListPrograms, request)
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            header = (("authorization", f"Bearer {token(world.org, 'coord', 'coordinator')}"),)
            listed = stub.ListPrograms(request, metadata=header, timeout=10)
            assert world.first.program.pid in {p.program_id for p in listed.programs}
    finally:
        gateway.stop()


def test_a_participant_registers_only_as_themself_and_never_sets_hr_identifiers(
    world: World,
) -> None:
    program = world.first.program
    applicant = Clients(
        env=world.client_env(
            mint(
                SETTINGS,
                organization=world.org,
                subject=f"applicant-{uuid.uuid4().hex[:6]}",
                roles=["participant"],
                email="Zoe@Example.org",
            )
        )
    )
    world.opened.append(applicant)

    def register(email: str, **profile: str) -> enrollment_pb2.RegisterParticipantRequest:
        return enrollment_pb2.RegisterParticipantRequest(
            organization_id=world.org,
            program_id=program.pid,
            role=common_pb2.ROLE_MENTEE,
            display_name="Zoe",
            email=email,
            skills=["coaching"],
            profile=common_pb2.Profile(**profile),
        )

    call = applicant.enrollment.RegisterParticipant
    denied(call, register("eve@example.org"), "email: a participant registers only under")
    denied(call, register("zoe@example.org", hr_person_id="h-1"), "profile.hr_person_id: set by")
    denied(call, register("zoe@example.org", manager_id="h-2"), "profile.manager_id: set by")
    zoe = call(register("zoe@example.org", department="R&D"))

    # HR identifiers come from coordinators (and HR events, imports); the participant's own
    # update of their profile keeps them.
    world.coordinator.enrollment.UpdateParticipantProfile(
        enrollment_pb2.UpdateParticipantProfileRequest(
            organization_id=world.org,
            participant_id=zoe.participant_id,
            profile=common_pb2.Profile(hr_person_id="h-77", manager_id="h-1", department="R&D"),
        )
    )
    own = enrollment_pb2.UpdateParticipantProfileRequest(
        organization_id=world.org,
        participant_id=zoe.participant_id,
        profile=common_pb2.Profile(department="Operations"),
    )
    updated = world.participant(zoe.participant_id).enrollment.UpdateParticipantProfile(own)
    assert updated.profile.department == "Operations"
    assert (updated.profile.hr_person_id, updated.profile.manager_id) == ("h-77", "h-1")
