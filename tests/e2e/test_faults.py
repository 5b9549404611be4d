"""Faults only real engines can show: Kafka restarted mid-stream, and every service killed
(kill -9) in the middle of a journey, then restarted. Nothing is lost and nothing is counted
twice: what enrollment, matching and engagement hold is reconciled with analytics' KPIs."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from confluent_kafka import Producer

from mentoring.clients import Clients
from mentoring.stack import SERVICES, Managed, Ports, Stack
from services.common.api import (
    analytics_pb2,
    common_pb2,
    engagement_pb2,
    enrollment_pb2,
    events_pb2,
    matching_pb2,
)
from services.common.events import new_event, partition_key, topic_of
from services.common.outbox import CRASH_AT_ENV, CRASH_EXIT_CODE
from tests.e2e.engine import MENTEE, MENTOR, Program
from tests.e2e.support import eventually, metric, read_topic, without_auth

SKILLS = matching_pb2.Criterion(kind=matching_pb2.CRITERION_KIND_SKILLS, weight=5)
RECONCILED = (
    "mentors",
    "mentees",
    "matches_proposed",
    "matches_accepted",
    "active_relationships",
    "sessions",
)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Clients]]:
    # A platform of its own: these tests stop its broker and kill its services.
    env = {**without_auth(os.environ), "SCHEDULER_INTERVAL_SECONDS": "0.5"}
    stack = Stack(Ports.free(), log_dir=tmp_path_factory.mktemp("faults"), env=env)
    try:
        stack.start_all()
        with Clients(env=stack.client_env()) as clients:
            yield stack, clients
    finally:
        stack.stop()


def process(stack: Stack, name: str) -> Managed:
    [found] = [m for m in stack.processes if m.name == name]
    return found


def kpis(clients: Clients, program: Program) -> analytics_pb2.ProgramKpis | None:
    try:
        return clients.analytics.GetProgramKpis(
            analytics_pb2.GetProgramKpisRequest(
                organization_id=program.org, program_id=program.pid
            ),
            timeout=20,
        )
    except grpc.RpcError as exc:
        if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return None  # a restarted worker still joining its group: what a client retries
        raise


def sessions_logged(program: Program, first: int, count: int) -> list[events_pb2.Event]:
    held = datetime.now(UTC) - timedelta(days=1)
    return [
        new_event(
            producer="tests",
            organization_id=program.org,
            program_id=program.pid,
            payload=events_pb2.SessionLogged(
                session_id=f"s-{n}", relationship_id="r-outside", minutes=30
            ),
            occurred_at=held,
        )
        for n in range(first, first + count)
    ]


def test_events_before_during_and_after_a_broker_restart_all_count(
    faulty: tuple[Stack, Clients],
) -> None:
    stack, clients = faulty
    program = Program(clients, faulty[0])
    # librdkafka keeps what is produced while the broker is away and sends it once it is back.
    producer = Producer(
        {
            "bootstrap.servers": stack.ports.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 120_000,
        }
    )
    failed: list[object] = []

    def send(events: list[events_pb2.Event]) -> None:
        for event in events:
            producer.produce(
                topic_of(event),
                value=event.SerializeToString(),
                key=partition_key(program.org, program.pid),
                on_delivery=lambda err, _msg: err and failed.append(err),
            )
        producer.poll(0)

    send(sessions_logged(program, 0, 20))
    assert producer.flush(30) == 0
    kafka = process(stack, "kafka")
    assert stack.stop_process(kafka) in kafka.clean_exits, stack.tail(kafka)
    send(sessions_logged(program, 20, 20))
    stack.start_kafka()
    send(sessions_logged(program, 40, 20))
    assert producer.flush(90) == 0 and not failed, failed

    counted = eventually(
        "all 60 sessions in the KPIs",
        lambda: k if (k := kpis(clients, program)) and k.sessions >= 60 else None,
        timeout=120,
    )
    assert counted.sessions == 60
    # The services reconnected: a registration after the restart flows to analytics.
    program.register("Rosa", MENTOR, ["go"], 1)
    program.register("Tom", MENTEE, ["go"])
    eventually(
        "the new registrations in the KPIs",
        lambda: (k := kpis(clients, program)) and (k.mentors, k.mentees) == (1, 1),
        timeout=60,
    )


def kill_and_restart(stack: Stack, service: str) -> None:
    victim = process(stack, service)
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait()
    stack.processes.remove(victim)
    restarted = stack.start_service(service)
    stack.wait_serving(restarted, restarted.address)


def test_a_journey_completes_while_each_service_is_killed_in_turn(
    faulty: tuple[Stack, Clients],
) -> None:
    stack, clients = faulty
    program = Program(clients, stack)
    program.configure(mode=matching_pb2.MATCHING_MODE_CONTINUOUS, criteria=[SKILLS])
    pairs = []
    for victim in SERVICES:
        skill = f"skill-{uuid.uuid4().hex[:6]}"
        mentor = program.register(f"Mentor{victim.title()}", MENTOR, [skill], 1)
        mentee = program.register(f"Mentee{victim.title()}", MENTEE, [skill])
        # The registrations are published; the victim dies while they travel.
        kill_and_restart(stack, victim)
        proposal = eventually(
            f"a proposal after {victim} died",
            lambda mentee=mentee: next(iter(program.proposals(mentee)), None),
            timeout=90,
        )
        assert proposal.mentor_id == mentor
        eventually(
            "engagement to know the proposal", lambda p=proposal: program.known(p.match_id), 60
        )
        program.respond(proposal.match_id, mentor, accept=True)
        accepted = program.respond(proposal.match_id, mentee, accept=True)
        assert accepted.status == common_pb2.MATCH_STATUS_ACCEPTED
        log = engagement_pb2.LogSessionRequest(
            organization_id=program.org,
            relationship_id=accepted.relationship_id,
            minutes=45,
            mode=common_pb2.SESSION_MODE_VIRTUAL,
        )
        log.held_at.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
        clients.engagement.LogSession(log)
        pairs.append((mentor, mentee, accepted.relationship_id))

    # What each service holds, reconciled with the KPIs: nothing lost, nothing twice.
    people = clients.enrollment.ListParticipants(
        enrollment_pb2.ListParticipantsRequest(
            organization_id=program.org, program_id=program.pid, page_size=100
        )
    ).participants
    assert len(people) == 2 * len(SERVICES)
    proposals = program.proposals()
    assert sorted(p.mentee_id for p in proposals) == sorted(mentee for _, mentee, _ in pairs)
    matches = clients.engagement.ListMatches(
        engagement_pb2.ListMatchesRequest(
            organization_id=program.org, program_id=program.pid, page_size=100
        )
    ).matches
    assert sorted(m.match_id for m in matches) == sorted(p.match_id for p in proposals)
    assert {m.status for m in matches} == {common_pb2.MATCH_STATUS_ACCEPTED}
    relationships = {m.relationship_id for m in matches}
    assert relationships == {relationship for _, _, relationship in pairs}

    expected = dict.fromkeys(RECONCILED, len(SERVICES))
    seen: list[dict[str, int]] = []

    def reconciled() -> bool:
        k = kpis(clients, program)
        if k is not None:
            seen.append({name: getattr(k, name) for name in RECONCILED})
        return bool(seen) and seen[-1] == expected

    try:
        eventually("the KPIs to match every service's records", reconciled, timeout=90)
    except AssertionError:
        pytest.fail(f"KPIs {seen[-1] if seen else None}, the services hold {expected}")


# --- the outbox: a crash between a commit and the publication of its events ----------------


def start_doomed(stack: Stack, service: str, step: str) -> Managed:
    """The service again, set to die (CRASH_EXIT_CODE) at `step` of its first delivery."""
    stack.stop_process(process(stack, service))
    doomed = stack.start_service(service, extra_env={CRASH_AT_ENV: step})
    stack.wait_serving(doomed, doomed.address)
    return doomed


def restart_after_crash(stack: Stack, doomed: Managed, timeout: float = 30) -> Managed:
    assert doomed.process.wait(timeout) == CRASH_EXIT_CODE, stack.tail(doomed)
    stack.processes.remove(doomed)
    restarted = stack.start_service(doomed.name)
    stack.wait_serving(restarted, restarted.address)
    return restarted


# Staged once: published by the restarted service's relay, or by the writer and again by it.
COPIES = {"outbox-committed": 1, "outbox-published": 2}


def about(field: str, value: str) -> Callable[[events_pb2.Event], bool]:
    """Whether an event's payload has this value in this field (its match_id...)."""

    def check(event: events_pb2.Event) -> bool:
        kind = event.WhichOneof("payload")
        return kind is not None and getattr(getattr(event, kind), field, None) == value

    return check


def published_for(
    stack: Stack, topic: str, match_id: str, copies: int, field: str = "match_id"
) -> list[events_pb2.Event]:
    """The events on the topic about the match (or whatever `field` names), once there are
    `copies` of them."""
    wanted = about(field, match_id)

    def found() -> list[events_pb2.Event] | None:
        events = [
            event
            for record in read_topic(stack.ports.bootstrap, topic, settle=5)
            if wanted(event := events_pb2.Event.FromString(record.value))
        ]
        return events if len(events) >= copies else None

    published: list[events_pb2.Event] = eventually(
        f"{copies} publication(s) on {topic}", found, timeout=60
    )
    return published


@pytest.mark.parametrize("step", ["outbox-committed", "outbox-published"])
def test_an_accept_whose_service_dies_after_its_commit_publishes_its_events_once(
    faulty: tuple[Stack, Clients], step: str
) -> None:
    """Engagement dies right after the transaction that starts a relationship commits (its
    events staged, not yet published), or right after publishing them (not yet marked sent).
    After a restart its outbox relay publishes what was left: the relationship's start reaches
    the topic under one event id, and the KPIs count the relationship once."""
    stack, clients = faulty
    program = Program(clients, stack)
    program.configure(mode=matching_pb2.MATCHING_MODE_CONTINUOUS, criteria=[SKILLS])
    skill = f"skill-{uuid.uuid4().hex[:6]}"
    mentor = program.register("Grace", MENTOR, [skill], 1)
    mentee = program.register("Linus", MENTEE, [skill])
    proposal = eventually(
        "a proposal", lambda: next(iter(program.proposals(mentee)), None), timeout=60
    )
    eventually("engagement to know the proposal", lambda: program.known(proposal.match_id), 60)
    program.respond(proposal.match_id, mentor, accept=True)

    doomed = start_doomed(stack, "engagement", step)
    with pytest.raises(grpc.RpcError):
        program.respond(proposal.match_id, mentee, accept=True)
    restarted = restart_after_crash(stack, doomed)

    accepted = program.match(proposal.match_id)
    assert accepted.status == common_pb2.MATCH_STATUS_ACCEPTED and accepted.relationship_id
    copies = COPIES[step]
    published = published_for(stack, "relationship-started", proposal.match_id, copies)
    assert len(published) == copies
    assert len({e.envelope.event_id for e in published}) == 1
    relayed = metric(
        restarted.metrics_port, "mentoring_outbox_relayed_total", topic="relationship-started"
    )
    assert relayed >= 1
    counted = eventually(
        "the relationship in the KPIs",
        lambda: (k := kpis(clients, program)) and k.active_relationships >= 1 and k,
        timeout=60,
    )
    assert counted.active_relationships == 1
    assert counted.matches_accepted == 1


@pytest.mark.parametrize("step", ["outbox-committed", "outbox-published"])
def test_a_registration_whose_enrollment_dies_after_its_commit_is_announced_once(
    faulty: tuple[Stack, Clients], step: str
) -> None:
    """Enrollment dies right after the transaction that stores a registration commits, or
    right after publishing its events. The caller never retries; the restarted service's relay
    announces the participant: participant-registered under one event id, and matching and the
    KPIs count them once."""
    stack, clients = faulty
    program = Program(clients, stack)
    program.configure(mode=matching_pb2.MATCHING_MODE_CONTINUOUS, criteria=[SKILLS])
    skill = f"skill-{uuid.uuid4().hex[:6]}"
    mentor = program.register("Frances", MENTOR, [skill], 1)

    doomed = start_doomed(stack, "enrollment", step)
    with pytest.raises(grpc.RpcError):
        program.register("Margaret", MENTEE, [skill])
    restarted = restart_after_crash(stack, doomed)

    (mentee,) = [
        p
        for p in clients.enrollment.ListParticipants(
            enrollment_pb2.ListParticipantsRequest(
                organization_id=program.org, program_id=program.pid, page_size=10
            )
        ).participants
        if p.participant_id != mentor
    ]
    copies = COPIES[step]
    published = published_for(
        stack, "participant-registered", mentee.participant_id, copies, field="participant_id"
    )
    assert len(published) == copies
    assert len({e.envelope.event_id for e in published}) == 1
    relayed = metric(
        restarted.metrics_port, "mentoring_outbox_relayed_total", topic="participant-registered"
    )
    assert relayed >= 1
    # Matching knows the mentee, once: they are proposed to the mentor.
    proposal = eventually(
        "a proposal for the mentee",
        lambda: next(iter(program.proposals(mentee.participant_id)), None),
        timeout=60,
    )
    assert proposal.mentor_id == mentor
    counted = eventually(
        "both in the KPIs",
        lambda: (k := kpis(clients, program)) and (k.mentors, k.mentees) == (1, 1) and k,
        timeout=60,
    )
    assert counted.mentees == 1


@pytest.mark.parametrize("step", ["outbox-committed", "outbox-published"])
def test_a_coordinators_pair_whose_matching_dies_after_its_commit_is_proposed_once(
    faulty: tuple[Stack, Clients], step: str
) -> None:
    """Matching dies right after the transaction that takes the mentor's slot and the mentee
    and stores the proposal commits (its match-proposed not yet published), or right after
    publishing it (not yet marked published). Restarted, it publishes what was left: the
    proposal reaches the topic under one event id, engagement and the KPIs know it once, and
    the mentor's only slot is taken once."""
    stack, clients = faulty
    program = Program(clients, stack)
    program.configure(mode=matching_pb2.MATCHING_MODE_BULK, criteria=[SKILLS])
    skill = f"skill-{uuid.uuid4().hex[:6]}"
    mentor = program.register("Ada", MENTOR, [skill], 1)
    mentee = program.register("Alan", MENTEE, [skill])
    other = program.register("Kathleen", MENTEE, [skill])
    program.wait_pool()

    doomed = start_doomed(stack, "matching", step)
    with pytest.raises(grpc.RpcError):
        clients.matching.ProposeMatch(program.proposal_request(mentor, mentee))
    restarted = restart_after_crash(stack, doomed)

    (proposal,) = program.proposals()
    assert (proposal.mentor_id, proposal.mentee_id) == (mentor, mentee)
    assert proposal.origin == common_pb2.MATCH_ORIGIN_COORDINATOR
    copies = COPIES[step]
    published = published_for(stack, "match-proposed", proposal.match_id, copies)
    assert len(published) == copies
    assert len({e.envelope.event_id for e in published}) == 1
    relayed = metric(
        restarted.metrics_port, "mentoring_outbox_relayed_total", topic="match-proposed"
    )
    assert relayed >= 1
    eventually("engagement to know the proposal", lambda: program.known(proposal.match_id), 60)
    counted = eventually(
        "the proposal in the KPIs",
        lambda: (k := kpis(clients, program)) and k.matches_proposed >= 1 and k,
        timeout=60,
    )
    assert counted.matches_proposed == 1
    # The slot went with the proposal, once: the mentor has none left for another mentee.
    with pytest.raises(grpc.RpcError) as refused:
        clients.matching.ProposeMatch(program.proposal_request(mentor, other))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("step", ["outbox-committed", "outbox-published"])
def test_a_request_whose_matching_dies_expiring_it_expires_once_and_moves_on(
    faulty: tuple[Stack, Clients], step: str
) -> None:
    """A mentee's request goes unanswered. Matching expires it in one transaction (the slot
    back, match-expired staged, the mentee's next choice proposed) and dies right after the
    commit, or right after publishing match-expired. Restarted, it publishes what was left:
    match-expired under one event id, the next choice's proposal once, and engagement shows the
    first match expired."""
    stack, clients = faulty
    program = Program(clients, stack)
    expiry_seconds = 8  # longer than stopping the worker that takes the request
    program.configure(
        mode=matching_pb2.MATCHING_MODE_SELF,
        criteria=[SKILLS],
        request_expiry_seconds=expiry_seconds,
    )
    skill = f"skill-{uuid.uuid4().hex[:6]}"
    first = program.register("Barbara", MENTOR, [skill], 1)
    second = program.register("Edsger", MENTOR, [skill], 1)
    mentee = program.register("Donald", MENTEE, [skill])
    program.wait_pool()
    asked = clients.matching.RequestMentor(
        matching_pb2.RequestMentorRequest(
            organization_id=program.org,
            program_id=program.pid,
            mentee_id=mentee,
            mentor_ids=[first, second],
        )
    )
    assert asked.mentor_id == first

    # The restarted worker's expiry task finds the request overdue, expires it and dies.
    doomed = start_doomed(stack, "matching", step)
    restart_after_crash(stack, doomed, timeout=expiry_seconds + 30)

    copies = COPIES[step]
    expired = published_for(stack, "match-expired", asked.match_id, copies)
    assert len(expired) == copies
    assert len({e.envelope.event_id for e in expired}) == 1
    # The next choice was proposed in the same transaction, and published once.
    by_mentor = {p.mentor_id: p for p in program.proposals(mentee)}
    assert by_mentor[first].status == common_pb2.MATCH_STATUS_EXPIRED
    moved_on = by_mentor[second]
    assert moved_on.origin == common_pb2.MATCH_ORIGIN_MENTEE_REQUEST
    (proposed,) = published_for(stack, "match-proposed", moved_on.match_id, 1)
    assert proposed.match_proposed.mentor_id == second
    eventually(
        "engagement to show the first match expired",
        lambda: program.match(asked.match_id).status == common_pb2.MATCH_STATUS_EXPIRED,
        timeout=60,
    )
