"""Live KPIs over gRPC, from events on the real broker: sign-ups and screening, cohorts and time
ranges, skill balance, relationships at risk, retention from hr-events; and two analytics
workers sharing the partitions, any of them answering, the survivor keeping the figures."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from mentoring.clients import Clients
from mentoring.stack import Managed, Ports, Stack
from services.common.api import (
    analytics_pb2,
    analytics_pb2_grpc,
    common_pb2,
    enrollment_pb2,
    events_pb2,
)
from services.common.events import new_event, partition_key, topic_of
from services.common.hr_signatures import ProducerKey
from services.common.peers import FORWARDED, Peers
from tests.e2e.support import eventually, metric, produce, start_workers

MENTOR, MENTEE = common_pb2.ROLE_MENTOR, common_pb2.ROLE_MENTEE
NOW = datetime.now(UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def new_org() -> str:
    return f"org-{uuid.uuid4().hex[:8]}"


def publish(
    bootstrap: str,
    org: str,
    program: str,
    items: list[tuple[Message, datetime]],
    signed_with: ProducerKey | None = None,
) -> None:
    """Events as the other services (or HR systems, `signed_with` their key) would publish
    them, dated in the past."""
    events = [
        new_event(
            producer="tests",
            organization_id=org,
            program_id=program,
            payload=payload,
            occurred_at=when,
        )
        for payload, when in items
    ]
    produce(
        bootstrap,
        [(topic_of(e), partition_key(org, program), e.SerializeToString()) for e in events],
        signed_with=signed_with,
    )


def registered(
    pid: str, role: common_pb2.Role.ValueType, skills: list[str], **profile: str
) -> Message:
    return events_pb2.ParticipantRegistered(
        participant_id=pid,
        role=role,
        display_name=pid,
        skills=skills,
        capacity=2 if role == MENTOR else 0,
        profile=common_pb2.Profile(**profile),  # type: ignore[arg-type]
    )


def kpis(clients: Clients, org: str, program: str, **request: object) -> analytics_pb2.ProgramKpis:
    reply: analytics_pb2.ProgramKpis = clients.analytics.GetProgramKpis(
        analytics_pb2.GetProgramKpisRequest(
            organization_id=org,
            program_id=program,
            **request,  # type: ignore[arg-type]
        )
    )
    return reply


def rpc_error(call: object) -> grpc.RpcError:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as exc:
        return exc
    raise AssertionError("the call succeeded")


def test_sign_ups_screening_and_campaigns_through_enrollment(
    stack: Stack, clients: Clients
) -> None:
    org = new_org()
    pid = clients.enrollment.CreateProgram(
        enrollment_pb2.CreateProgramRequest(
            organization_id=org,
            name="Screened",
            settings=events_pb2.ProgramSettings(requires_approval=True),
        )
    ).program_id

    def apply(name: str, role: common_pb2.Role.ValueType, campaign: str = "") -> str:
        participant_id: str = clients.enrollment.RegisterParticipant(
            enrollment_pb2.RegisterParticipantRequest(
                organization_id=org,
                program_id=pid,
                role=role,
                display_name=name,
                email=f"{name}@{org}.example",
                skills=["python"],
                capacity=1 if role == MENTOR else 0,
                campaign=campaign,
            )
        ).participant_id
        return participant_id

    ann = apply("ann", MENTEE, "newsletter")
    bob = apply("bob", MENTEE, "newsletter")
    cid = apply("cid", MENTOR)
    dee = apply("dee", MENTEE, "intranet")
    screen = enrollment_pb2.ScreenParticipantRequest
    clients.enrollment.ApproveParticipant(screen(organization_id=org, participant_id=ann))
    clients.enrollment.ApproveParticipant(screen(organization_id=org, participant_id=cid))
    clients.enrollment.RejectParticipant(
        screen(organization_id=org, participant_id=bob, reason="not in the audience")
    )
    clients.enrollment.WaitlistParticipant(
        screen(organization_id=org, participant_id=dee, reason="full")
    )

    def settled() -> analytics_pb2.ProgramKpis | None:
        got = kpis(clients, org, pid)
        return got if (got.approvals, got.rejections, got.waitlisted) == (2, 1, 1) else None

    got = eventually("the screening figures", settled)
    assert (got.applications, got.mentor_applications, got.mentee_applications) == (4, 1, 3)
    assert (got.mentors, got.mentees) == (1, 1)
    campaigns = {c.campaign: (c.applications, c.approvals) for c in got.signups_by_campaign}
    assert campaigns == {"newsletter": (2, 1), "intranet": (1, 0), "": (1, 1)}
    (week,) = got.weekly
    assert (week.mentor_applications, week.mentee_applications, week.approvals) == (1, 3, 2)


def test_cohorts_time_ranges_engagement_and_skills(stack: Stack, clients: Clients) -> None:
    org, pid = new_org(), "program-a"
    publish(
        stack.ports.bootstrap,
        org,
        pid,
        [
            (registered("m1", MENTOR, ["python", "sql"], cohort_id="pilot"), days_ago(60)),
            (registered("m2", MENTOR, ["python"], cohort_id="wave-2"), days_ago(60)),
            (registered("e1", MENTEE, ["python", "leadership"], cohort_id="pilot"), days_ago(60)),
            (registered("e2", MENTEE, ["leadership"], cohort_id="wave-2"), days_ago(60)),
            (registered("e3", MENTEE, ["leadership"], cohort_id="wave-2"), days_ago(60)),
            (
                events_pb2.RelationshipStarted(
                    relationship_id="r1", mentor_id="m1", mentee_id="e1"
                ),
                days_ago(50),
            ),
            (
                events_pb2.RelationshipStarted(
                    relationship_id="r2", mentor_id="m2", mentee_id="e2"
                ),
                days_ago(40),
            ),
            (
                events_pb2.SessionLogged(session_id="s1", relationship_id="r1", minutes=60),
                days_ago(45),
            ),
            (
                events_pb2.SessionLogged(session_id="s2", relationship_id="r1", minutes=30),
                days_ago(3),
            ),
            (
                events_pb2.SessionLogged(session_id="s3", relationship_id="r2", minutes=45),
                days_ago(2),
            ),
            (events_pb2.MessageSent(relationship_id="r2", message_id="x1"), days_ago(2)),
            (
                events_pb2.FeedbackSubmitted(feedback_id="f1", relationship_id="r1", rating=5),
                days_ago(3),
            ),
            (
                events_pb2.FeedbackSubmitted(feedback_id="f2", relationship_id="r2", rating=4),
                days_ago(2),
            ),
            (
                events_pb2.GoalUpdated(
                    goal_id="g1", relationship_id="r1", status=events_pb2.GOAL_STATUS_ACHIEVED
                ),
                days_ago(3),
            ),
            (
                events_pb2.GoalUpdated(
                    goal_id="g2", relationship_id="r2", status=events_pb2.GOAL_STATUS_OPEN
                ),
                days_ago(2),
            ),
            (
                events_pb2.TrainingCompleted(resource_id="intro", participant_id="e1"),
                days_ago(55),
            ),
        ],
    )

    def folded() -> analytics_pb2.ProgramKpis | None:
        k = kpis(clients, org, pid)
        figures = (k.mentees, k.relationships_started, k.sessions, k.messages, k.feedback_responses)
        done = figures == (3, 2, 3, 1, 2) and (k.goals_set, k.trainings_completed) == (2, 1)
        return k if done else None

    whole = eventually("all events folded", folded)
    assert (whole.mentors, whole.mentees, whole.mentees_matched) == (2, 3, 2)
    assert whole.match_rate == pytest.approx(2 / 3)
    assert whole.median_days_to_match == pytest.approx(15.0, abs=0.01)
    assert (whole.sessions, whole.session_minutes, whole.messages) == (3, 135, 1)
    per_pair = (
        whole.sessions_per_relationship,
        whole.hours_per_relationship,
        whole.messages_per_relationship,
    )
    assert per_pair == (1.5, 1.125, 0.5)
    assert (whole.goals_set, whole.goals_achieved, whole.goal_completion_rate) == (2, 1, 0.5)
    assert list(whole.satisfaction_distribution) == [0, 0, 0, 1, 1]
    assert whole.satisfaction_mean == pytest.approx(4.5)
    assert whole.participants_trained == 1
    assert whole.training_completion_rate == pytest.approx(0.2)
    assert sum(w.sessions for w in whole.weekly) == 3

    pilot = kpis(clients, org, pid, cohort_id="pilot")
    assert (pilot.mentors, pilot.mentees, pilot.sessions, pilot.session_minutes) == (1, 1, 2, 90)

    last_week = analytics_pb2.TimeRange()
    last_week.start.FromDatetime(days_ago(7))
    recent = kpis(clients, org, pid, range=last_week)
    assert (recent.sessions, recent.session_minutes, recent.feedback_responses) == (2, 75, 2)
    assert (recent.approvals, recent.relationships_started) == (0, 0)
    assert recent.mentors == 2  # stock figures are as of now
    assert recent.range == last_week

    balance = clients.analytics.GetSkillBalance(
        analytics_pb2.GetSkillBalanceRequest(organization_id=org, program_id=pid)
    )
    rows = [(s.skill, s.mentors, s.mentor_capacity, s.mentees, s.gap) for s in balance.skills]
    assert rows == [
        ("leadership", 0, 0, 3, -3),
        ("sql", 1, 2, 0, 2),
        ("python", 2, 4, 1, 3),
    ]
    wave_2 = clients.analytics.GetSkillBalance(
        analytics_pb2.GetSkillBalanceRequest(
            organization_id=org, program_id=pid, cohort_id="wave-2", limit=1
        )
    )
    assert [(s.skill, s.mentees) for s in wave_2.skills] == [("leadership", 2)]


def test_relationships_at_risk_are_listed_with_reasons_and_gauged(
    stack: Stack, clients: Clients
) -> None:
    org, pid = new_org(), "program-risk"
    cadence = events_pb2.ProgramChanged(
        name="Risky", settings=events_pb2.ProgramSettings(meeting_cadence_days=7)
    )
    items: list[tuple[Message, datetime]] = [(cadence, days_ago(90))]
    items += [(registered("m", MENTOR, ["go"]), days_ago(90))]
    for n in range(4):
        items.append((registered(f"e{n}", MENTEE, ["go"]), days_ago(90)))
        items.append(
            (
                events_pb2.RelationshipStarted(
                    relationship_id=f"r{n}", mentor_id="m", mentee_id=f"e{n}"
                ),
                days_ago(80),
            )
        )
    items += [
        # r0: met once, long ago. r1: never met. r2: met recently and rated it badly.
        (events_pb2.SessionLogged(session_id="a", relationship_id="r0", minutes=30), days_ago(40)),
        (events_pb2.SessionLogged(session_id="b", relationship_id="r2", minutes=30), days_ago(1)),
        (
            events_pb2.FeedbackSubmitted(feedback_id="f", relationship_id="r2", rating=1),
            days_ago(1),
        ),
        # r3 is fine: met yesterday.
        (events_pb2.SessionLogged(session_id="c", relationship_id="r3", minutes=30), days_ago(1)),
    ]
    publish(stack.ports.bootstrap, org, pid, items)

    # The events travel on several topics, so their folding interleaves: before r0's session is
    # folded, r0 is at risk for another reason. Wait for all of them, then look.
    def folded() -> bool:
        k = kpis(clients, org, pid)
        return (k.relationships_started, k.sessions, k.feedback_responses) == (4, 3, 1)

    eventually("every event folded", folded)
    request = analytics_pb2.ListAtRiskRelationshipsRequest(
        organization_id=org, program_id=pid, page_size=2
    )
    first = clients.analytics.ListAtRiskRelationships(request)
    assert first.total == 3
    second = clients.analytics.ListAtRiskRelationships(
        analytics_pb2.ListAtRiskRelationshipsRequest(
            organization_id=org, program_id=pid, page_size=2, page_token=first.next_page_token
        )
    )
    assert not second.next_page_token
    found = {r.relationship_id: r for r in [*first.relationships, *second.relationships]}
    assert set(found) == {"r0", "r1", "r2"}
    assert found["r0"].reasons == ["no contact for 40 days"]
    assert found["r0"].sessions == 1 and found["r0"].last_session_at.ToDatetime(tzinfo=UTC) < NOW
    assert found["r1"].reasons == ["no session in the 80 days since the start"]
    assert not found["r1"].HasField("last_session_at")
    assert found["r2"].reasons == ["latest check-in rating 1/5"]
    assert found["r2"].latest_rating == 1
    assert kpis(clients, org, pid).relationships_at_risk == 3
    eventually(
        "the at-risk gauge",
        lambda: (
            metric(
                stack.ports.metrics["analytics"],
                "mentoring_program_kpi",
                organization=org,
                program=pid,
                kpi="relationships_at_risk",
            )
            == 3
        ),
    )


def test_retention_compares_participants_with_everyone_else(stack: Stack, clients: Clients) -> None:
    org = new_org()

    def hr(person: str, when: datetime, **change: Message) -> tuple[Message, datetime]:
        return events_pb2.HrEvent(hr_person_id=person, **change), when  # type: ignore[arg-type]

    def hired(person: str) -> tuple[Message, datetime]:
        change = events_pb2.Hired(department="eng")
        change.hired_on.FromDatetime(days_ago(900))
        return hr(person, days_ago(900), hired=change)

    def left(person: str, days: float) -> tuple[Message, datetime]:
        change = events_pb2.Terminated(reason="resigned")
        change.effective_on.FromDatetime(days_ago(days))
        return hr(person, days_ago(days), terminated=change)

    people = [f"h{n}" for n in range(8)]
    hris = stack.hr_producer(org)
    publish(stack.ports.bootstrap, org, "", [hired(p) for p in people], hris)
    # h0-h3 join a program 400 days ago; h0 leaves 300 days ago (within 6 months).
    publish(
        stack.ports.bootstrap,
        org,
        "leaders",
        [(registered(f"p-{p}", MENTEE, ["go"], hr_person_id=p), days_ago(400)) for p in people[:4]],
    )
    # Non-participants h4 and h5 leave 300 and 100 days ago.
    publish(
        stack.ports.bootstrap,
        org,
        "",
        [left("h0", 300), left("h4", 300), left("h5", 100)],
        hris,
    )

    def rows() -> dict[int, analytics_pb2.RetentionRow] | None:
        got = clients.analytics.GetRetention(analytics_pb2.GetRetentionRequest(organization_id=org))
        found = {row.months: row for row in got.rows}
        return (
            found
            if found[6].participants == 4 and found[12].non_participants_retained == 2
            else None
        )

    found = eventually("retention rows", rows)
    six, twelve = found[6], found[12]
    assert (six.participants, six.participants_retained) == (4, 3)
    assert (six.non_participants, six.non_participants_retained) == (4, 3)
    assert (twelve.participants_retained, twelve.non_participants) == (3, 4)
    assert six.participant_rate == pytest.approx(0.75)
    assert twelve.difference_points == pytest.approx(100 * (0.75 - 0.5))
    scoped = clients.analytics.GetRetention(
        analytics_pb2.GetRetentionRequest(organization_id=org, program_id="leaders", months=[3])
    )
    assert [(r.months, r.participants) for r in scoped.rows] == [(3, 4)]


@pytest.mark.parametrize(
    ("method", "request_", "field"),
    [
        ("GetProgramKpis", analytics_pb2.GetProgramKpisRequest(program_id="p"), "organization_id"),
        ("GetProgramKpis", analytics_pb2.GetProgramKpisRequest(organization_id="o"), "program_id"),
        (
            "GetSkillBalance",
            analytics_pb2.GetSkillBalanceRequest(organization_id="o"),
            "program_id",
        ),
        (
            "ListAtRiskRelationships",
            analytics_pb2.ListAtRiskRelationshipsRequest(
                organization_id="o", program_id="p", page_token="%%%"
            ),
            "page_token",
        ),
        (
            "ListAtRiskRelationships",
            analytics_pb2.ListAtRiskRelationshipsRequest(
                organization_id="o", program_id="p", page_size=100_000
            ),
            "page_size",
        ),
        (
            "GetRetention",
            analytics_pb2.GetRetentionRequest(organization_id="o", months=[0]),
            "months",
        ),
    ],
)
def test_bad_requests_name_the_field(
    stack: Stack, clients: Clients, method: str, request_: Message, field: str
) -> None:
    err = rpc_error(lambda: getattr(clients.analytics, method)(request_))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith(f"{field}:")


def test_a_range_that_ends_before_it_starts_is_refused(stack: Stack, clients: Clients) -> None:
    backwards = analytics_pb2.TimeRange()
    backwards.start.FromDatetime(days_ago(1))
    backwards.end.FromDatetime(days_ago(3))
    err = rpc_error(lambda: kpis(clients, "o", "p", range=backwards))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("range.end:")


def test_a_request_marked_forwarded_needs_a_peer_token_for_this_worker(stack: Stack) -> None:
    """Authentication is off on this stack; forwarding between workers still needs the secret
    the launcher gave the analytics workers."""
    address = stack.ports.address("analytics")
    url = f"grpc://{address}"  # what the worker advertises to its consumer group
    rpc = "/mentoring.v1.AnalyticsService/GetProgramKpis"
    request = analytics_pb2.GetProgramKpisRequest(organization_id="o", program_id="p")
    elsewhere = "grpc://127.0.0.1:1"
    peer = Peers(stack.analytics_peer_secret, elsewhere)
    forged = [
        (FORWARDED, "1"),
        *Peers("f" * 64, elsewhere).forward_metadata(url, rpc, None)[0],  # another secret
        *peer.forward_metadata(elsewhere, rpc, None)[0],  # for another worker
    ]
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(rpc, request_serializer=lambda m: m.SerializeToString())
        for metadata in forged:
            err = rpc_error(lambda m=metadata: call(request, metadata=(m,), timeout=10))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
            assert err.details().startswith("forwarded request: invalid peer token")
        # A genuine peer's request is answered, with the proof that the worker knows the secret.
        metadata, jti = peer.forward_metadata(url, rpc, None)
        data, answered = call.with_call(request, metadata=metadata, timeout=20)
        reply = peer.verified_reply(url, jti, data, answered.trailing_metadata())
        assert analytics_pb2.ProgramKpis.FromString(reply).program_id == "p"


# --- two workers ---------------------------------------------------------------------------


@dataclass
class Worker:
    process: Managed
    grpc_port: int
    metrics_port: int

    def stub(self) -> analytics_pb2_grpc.AnalyticsServiceStub:
        return analytics_pb2_grpc.AnalyticsServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")
        )


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, list[Worker]]]:
    # A broker of its own: these workers must not share a group with the session's analytics.
    stack = Stack(
        Ports.free(), log_dir=Path(tmp_path_factory.mktemp("analytics")), env=dict(os.environ)
    )
    try:
        stack.start_engines()
        started = start_workers(stack, "analytics", ("analytics-a", "analytics-b"))
        yield stack, [Worker(*worker) for worker in started]
    finally:
        stack.stop()


def sessions_in(stack: Stack, programs: list[str], count: int) -> None:
    for program in programs:
        publish(
            stack.ports.bootstrap,
            "acme",
            program,
            [
                (
                    events_pb2.SessionLogged(
                        session_id=f"{program}-{n}-{uuid.uuid4().hex}",
                        relationship_id="r",
                        minutes=10,
                    ),
                    days_ago(1),
                )
                for n in range(count)
            ],
        )


def sessions_seen(worker: Worker, program: str) -> int:
    request = analytics_pb2.GetProgramKpisRequest(organization_id="acme", program_id=program)
    try:
        return int(worker.stub().GetProgramKpis(request, timeout=20).sessions)
    except grpc.RpcError as exc:
        # What a client does while partitions move between workers: retry.
        if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return -1
        raise


def seen_exactly(worker: Worker, program: str, sessions: int) -> Callable[[], bool]:
    return lambda: sessions_seen(worker, program) == sessions


def test_two_workers_share_partitions_and_either_answers_for_any_program(
    workers: tuple[Stack, list[Worker]],
) -> None:
    stack, (a, b) = workers
    programs = [f"program-{n}" for n in range(12)]
    sessions_in(stack, programs, 3)
    for worker in (a, b):
        for program in programs:
            eventually(
                f"{program} through {worker.process.name}",
                seen_exactly(worker, program, 3),
                timeout=60,
            )

    def gauged() -> list[set[str]] | None:
        found = [
            {
                program
                for program in programs
                if metric(
                    w.metrics_port,
                    "mentoring_program_kpi",
                    organization="acme",
                    program=program,
                    kpi="sessions",
                )
            }
            for w in (a, b)
        ]
        return found if len(found[0] | found[1]) == len(programs) else None

    # Each worker folds and exports its own partitions' programs only.
    exported = eventually("every program's gauges", gauged, timeout=10)
    assert exported[0] and exported[1]
    assert not exported[0] & exported[1]


def test_the_survivor_keeps_the_figures_and_folds_new_events(
    workers: tuple[Stack, list[Worker]],
) -> None:
    stack, (a, b) = workers
    programs = [f"program-{n}" for n in range(12)]
    b.process.process.send_signal(signal.SIGKILL)
    b.process.process.wait()
    stack.processes.remove(b.process)
    # Restored from the changelog on the survivor: nothing counted twice, nothing lost.
    for program in programs:
        eventually(f"{program} on the survivor", seen_exactly(a, program, 3), timeout=90)
    sessions_in(stack, programs, 1)
    for program in programs:
        eventually(f"{program} moved on", seen_exactly(a, program, 4), timeout=30)
