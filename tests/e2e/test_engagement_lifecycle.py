"""What engagement learns from the rest of the platform, end to end on the real broker: each
program's timeframe and meeting cadence (program-changed), leaves of absence (hr-events through
enrollment's participant-updated), proposals a withdrawal released (match-expired, also when it
overtakes its proposal), a participant directory for announcements to a cohort, a side or the
unmatched; and request ids that make LogSession, ScheduleSession and CreateGoal safe to retry."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import grpc

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import common_pb2, engagement_pb2, enrollment_pb2, events_pb2
from services.common.api import matching_pb2 as K
from services.common.events import new_event, partition_key
from services.engagement.domain import add_months
from tests.e2e.engine import MENTEE, MENTOR, Program
from tests.e2e.support import eventually, metric, produce, publish_hr, read_topic
from tests.e2e.test_engagement_features import fails, invalid, new_pair, now, ts
from tests.e2e.test_nudges import notifications, set_policy
from tests.e2e.test_withdrawals_and_hr import events_on, relationship, withdraw

E = engagement_pb2
DAY = 86_400
ACTIVE, PAUSED = E.RELATIONSHIP_STATUS_ACTIVE, E.RELATIONSHIP_STATUS_PAUSED
SKILLS = K.Criterion(kind=K.CRITERION_KIND_SKILLS, weight=5)


def set_terms(program: Program, months: int, cadence_days: int) -> None:
    program.clients.enrollment.UpdateProgram(
        enrollment_pb2.UpdateProgramRequest(
            organization_id=program.org,
            program_id=program.pid,
            settings=events_pb2.ProgramSettings(
                timeframe_months=months, meeting_cadence_days=cadence_days
            ),
        )
    )


def policy(program: Program) -> E.NudgePolicy:
    return program.clients.engagement.GetNudgePolicy(
        E.GetNudgePolicyRequest(organization_id=program.org, program_id=program.pid)
    )


def pair_up(program: Program, mentor: str, mentee: str) -> str:
    """A coordinator's proposal, accepted by both; returns the relationship id."""
    proposal = program.clients.matching.ProposeMatch(
        program.proposal_request(mentor, mentee, requested_by="coordinator")
    ).proposal
    eventually("engagement to see the proposal", lambda: program.known(proposal.match_id))
    program.respond(proposal.match_id, mentor, accept=True)
    return program.respond(proposal.match_id, mentee, accept=True).relationship_id


def engagement_consumed(stack: Stack, topic: str) -> float:
    return metric(
        stack.ports.metrics["engagement"],
        "mentoring_events_consumed_total",
        topic=topic,
        group="engagement",
    )


# --- 1. the program's timeframe and cadence ------------------------------------------------


def test_a_relationship_follows_its_programs_timeframe_and_cadence(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    assert policy(program).no_session_seconds == 21 * DAY  # no cadence stated yet
    set_terms(program, months=1, cadence_days=7)
    eventually(
        "engagement to take the cadence: 1.5 x 7 days without a session",
        lambda: policy(program).no_session_seconds == 10.5 * DAY,
    )
    # "Ending soon" 40 days ahead: due at once for a one-month relationship.
    set_policy(program, ending_soon_seconds=40 * DAY)
    assert policy(program).no_session_seconds == 10.5 * DAY  # still from the cadence
    mentor = program.register("Mia", MENTOR, ["coaching"], capacity=1)
    mentee = program.register("Leo", MENTEE, ["coaching"])
    proposal = eventually("a proposal", lambda: next(iter(program.proposals(mentee)), None))
    eventually("engagement to see the proposal", lambda: program.known(proposal.match_id))
    program.respond(proposal.match_id, mentor, accept=True)
    rid = program.respond(proposal.match_id, mentee, accept=True).relationship_id

    started = relationship(program, rid)
    start = started.started_at.ToDatetime(UTC)
    assert started.expected_end_at.ToDatetime(UTC) == add_months(start, 1)
    ending = eventually(
        "an ending-soon nudge to both",
        lambda: found if len(found := notifications(stack, program, "ending-soon")) == 2 else None,
    )
    assert {n.recipient_id for n in ending} == {mentor, mentee}
    assert {n.data["expected_end_at"] for n in ending} == {add_months(start, 1).isoformat()}

    # A later change of the program moves the threshold; a coordinator's own value stands.
    set_terms(program, months=1, cadence_days=10)
    eventually("the new cadence", lambda: policy(program).no_session_seconds == 15 * DAY)
    set_policy(program, no_session_seconds=3 * DAY)
    seen = engagement_consumed(stack, "program-changed")
    set_terms(program, months=1, cadence_days=20)
    eventually(
        "engagement to read the change",
        lambda: engagement_consumed(stack, "program-changed") > seen,
    )
    assert policy(program).no_session_seconds == 3 * DAY


# --- 2. leaves of absence ------------------------------------------------------------------


def test_a_leave_pauses_the_persons_relationships_and_the_return_resumes_them(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    program.configure(mode=K.MATCHING_MODE_BULK, criteria=[SKILLS])
    hr_id = f"h-{uuid.uuid4().hex[:6]}"
    mentor = program.register("Ada", MENTOR, ["ops"], capacity=2, hr_person_id=hr_id)
    first = program.register("Bo", MENTEE, ["ops"])
    second = program.register("Cy", MENTEE, ["ops"])
    program.wait_pool()
    on_leave_pair, own_pause_pair = (
        pair_up(program, mentor, first),
        pair_up(program, mentor, second),
    )
    clients.engagement.PauseRelationship(
        E.PauseRelationshipRequest(
            organization_id=program.org,
            relationship_id=own_pause_pair,
            participant_id=second,
            reason="exam month",
        )
    )

    back_at = now() + timedelta(seconds=15)
    publish_hr(
        stack,
        program.org,
        events_pb2.HrEvent(
            hr_person_id=hr_id,
            leave_of_absence=events_pb2.LeaveOfAbsence(
                starts_on=ts(now() - timedelta(minutes=1)), ends_on=ts(back_at)
            ),
        ),
    )
    paused = eventually(
        "the leave to pause the active relationship",
        lambda: r if (r := relationship(program, on_leave_pair)).status == PAUSED else None,
    )
    assert paused.pause_reason == "leave of absence"
    (update,) = events_on(stack, "participant-updated", program)
    assert update.participant_updated.participant_id == mentor
    reported = update.participant_updated.leave.ends_on.ToDatetime(UTC)
    assert abs(reported - back_at) < timedelta(milliseconds=1)  # as stored: milliseconds
    # Nobody is nudged while paused, even with a one-second threshold.
    set_policy(program, no_session_seconds=1)
    time.sleep(2)
    assert notifications(stack, program, "no-session") == []
    assert time.time() < back_at.timestamp(), "the test machine is too slow for this test"

    resumed = eventually(
        "the return to resume it",
        lambda: r if (r := relationship(program, on_leave_pair)).status == ACTIVE else None,
        timeout=40,
    )
    assert resumed.pause_reason == ""
    own = relationship(program, own_pause_pair)
    assert (own.status, own.pause_reason) == (PAUSED, "exam month")
    # Active again: the silence counts from the return, so the nudge comes only now.
    nudged = eventually(
        "a no-session nudge after the return",
        lambda: notifications(stack, program, "no-session") or None,
    )
    assert {n.relationship_id for n in nudged} == {on_leave_pair}
    assert all(datetime.fromisoformat(n.data["since"]) >= back_at for n in nudged)


# --- 3. proposals released by a withdrawal -------------------------------------------------


def test_a_withdrawal_expires_open_proposals_through_match_expired(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    program.register("Dee", MENTOR, ["law"], capacity=1)
    mentee = program.register("Eve", MENTEE, ["law"])
    proposal = eventually("a proposal", lambda: next(iter(program.proposals(mentee)), None))
    eventually("engagement to see it", lambda: program.known(proposal.match_id))
    withdraw(program, mentee, "moved abroad")

    def expired() -> list[events_pb2.MatchExpired] | None:
        key = partition_key(program.org, program.pid)
        found = [
            events_pb2.Event.FromString(r.value).match_expired
            for r in read_topic(stack.ports.bootstrap, "match-expired", settle=2)
            if r.key == key
        ]
        return found or None

    (event,) = eventually("match-expired from matching", expired)
    assert (event.match_id, event.mentee_id) == (proposal.match_id, mentee)
    assert program.match(proposal.match_id).status == common_pb2.MATCH_STATUS_EXPIRED


def test_an_expiry_that_overtakes_its_proposal_still_expires_it(
    stack: Stack, clients: Clients
) -> None:
    org, pid, match_id = f"org-{uuid.uuid4().hex[:8]}", "p-1", f"m-{uuid.uuid4().hex[:8]}"
    key = partition_key(org, pid)

    def event(payload: object) -> bytes:
        return new_event(
            producer="matching",
            organization_id=org,
            program_id=pid,
            payload=payload,  # type: ignore[arg-type]
        ).SerializeToString()

    before = engagement_consumed(stack, "match-proposed")
    pair = {"match_id": match_id, "mentor_id": "a", "mentee_id": "b"}
    produce(
        stack.ports.bootstrap,
        [
            ("match-expired", key, event(events_pb2.MatchExpired(**pair))),
            ("match-proposed", key, event(events_pb2.MatchProposed(**pair, score=0.5))),
        ],
    )
    eventually(
        "engagement to consume the proposal",
        lambda: engagement_consumed(stack, "match-proposed") > before,
    )
    assert _status(clients, org, match_id) == common_pb2.MATCH_STATUS_EXPIRED


def _status(clients: Clients, org: str, match_id: str) -> int | None:
    try:
        return clients.engagement.GetMatch(
            E.GetMatchRequest(organization_id=org, match_id=match_id)
        ).status
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


# --- 4. announcements to a cohort, a side, the unmatched -----------------------------------


def test_announcements_reach_a_cohort_a_side_and_the_unmatched(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    program.configure(mode=K.MATCHING_MODE_BULK, criteria=[SKILLS])
    for cohort in ("pilot", "wave-2"):
        clients.enrollment.CreateCohort(
            enrollment_pb2.CreateCohortRequest(
                organization_id=program.org, program_id=program.pid, cohort_id=cohort, name=cohort
            )
        )
    before = engagement_consumed(stack, "participant-registered")
    mentor = program.register("Fay", MENTOR, ["ux"], capacity=2, cohort_id="pilot")
    pilot = program.register("Gil", MENTEE, ["ux"], cohort_id="pilot")
    waiting = program.register("Hu", MENTEE, ["ux"], cohort_id="pilot")
    later = program.register("Ivy", MENTEE, ["ux"], cohort_id="wave-2")
    eventually(
        "engagement to know the four",
        lambda: engagement_consumed(stack, "participant-registered") >= before + 4,
    )
    program.wait_pool()
    pair_up(program, mentor, pilot)

    def announce(announcement_id: str, **narrow: object) -> list[str]:
        return sorted(
            clients.engagement.Announce(
                E.AnnounceRequest(
                    organization_id=program.org,
                    program_id=program.pid,
                    announcement_id=announcement_id,
                    message="Welcome to the program",
                    **narrow,  # type: ignore[arg-type]
                )
            ).recipient_ids
        )

    assert announce("all") == sorted([mentor, pilot, waiting, later])
    assert announce("pilot", cohort_id="pilot") == sorted([mentor, pilot, waiting])
    assert announce("unmatched", unmatched=True) == sorted([waiting, later])
    assert announce("mentees", role=common_pb2.ROLE_MENTEE) == sorted([pilot, waiting, later])
    assert announce("one", participant_id=later) == [later]
    found = eventually(
        "the cohort's notifications",
        lambda: (
            n
            if len(n := [x for x in notifications(stack, program) if x.announcement_id == "pilot"])
            == 3
            else None
        ),
    )
    assert {n.recipient_id for n in found} == {mentor, pilot, waiting}
    assert {n.reason for n in found} == {"announcement"}

    gone = engagement_consumed(stack, "participant-withdrawn")
    withdraw(program, later, "changed jobs")
    eventually(
        "engagement to learn the withdrawal",
        lambda: engagement_consumed(stack, "participant-withdrawn") > gone,
    )
    assert announce("after", unmatched=True) == [waiting]
    assert "withdrew" in fails(
        clients.engagement.Announce,
        E.AnnounceRequest(
            organization_id=program.org,
            program_id=program.pid,
            announcement_id="to-gone",
            participant_id=later,
            message="Hi",
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    fails(
        clients.engagement.Announce,
        E.AnnounceRequest(
            organization_id=program.org,
            program_id=program.pid,
            announcement_id="nobody",
            cohort_id="no-such-cohort",
            message="Hi",
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    base = {
        "organization_id": program.org,
        "program_id": program.pid,
        "announcement_id": "bad",
        "message": "Hi",
    }
    invalid(
        clients.engagement.Announce,
        E.AnnounceRequest(**base, participant_id=later, cohort_id="pilot"),  # type: ignore[arg-type]
        "participant_id",
    )
    announce_ = clients.engagement.Announce
    invalid(announce_, E.AnnounceRequest(**base, role=7), "role")  # type: ignore[arg-type]
    invalid(announce_, E.AnnounceRequest(**base, cohort_id="bad id!"), "cohort_id")  # type: ignore[arg-type]


# --- 5. request ids ------------------------------------------------------------------------


def test_request_ids_make_retries_return_the_first_result(stack: Stack, clients: Clients) -> None:
    pair = new_pair(stack, clients)
    eng, org, rid = clients.engagement, pair.org, pair.relationship_id
    plan = E.ScheduleSessionRequest(
        organization_id=org,
        relationship_id=rid,
        participant_id=pair.mentor,
        scheduled_at=ts(now() + timedelta(days=2)),
        minutes=45,
        mode=common_pb2.SESSION_MODE_VIRTUAL,
        request_id=f"plan-{uuid.uuid4().hex}",
    )
    first = eng.ScheduleSession(plan)
    assert eng.ScheduleSession(plan).session_id == first.session_id
    listed = eng.ListSessions(
        E.ListSessionsRequest(organization_id=org, relationship_id=rid, participant_id=pair.mentor)
    )
    assert [s.session_id for s in listed.sessions] == [first.session_id]
    changed = E.ScheduleSessionRequest()
    changed.CopyFrom(plan)
    changed.minutes = 60
    assert fails(eng.ScheduleSession, changed, grpc.StatusCode.ALREADY_EXISTS).startswith(
        "request_id:"
    )
    changed.request_id = "bad id!"
    invalid(eng.ScheduleSession, changed, "request_id")

    log = E.LogSessionRequest(
        organization_id=org,
        relationship_id=rid,
        held_at=ts(now() - timedelta(hours=3)),
        minutes=50,
        mode=common_pb2.SESSION_MODE_PHONE,
        request_id=f"log-{uuid.uuid4().hex}",
    )
    logged = eng.LogSession(log)
    assert eng.LogSession(log).session_id == logged.session_id
    assert (pair.get().sessions, pair.get().minutes) == (1, 50)
    # The same request id for another RPC is another request: refused.
    reused = E.CreateGoalRequest(
        organization_id=org,
        relationship_id=rid,
        participant_id=pair.mentee,
        title="Lead a project",
        target_date=ts(now() + timedelta(days=90)),
        request_id=log.request_id,
    )
    fails(eng.CreateGoal, reused, grpc.StatusCode.ALREADY_EXISTS)
    reused.request_id = f"goal-{uuid.uuid4().hex}"
    goal = eng.CreateGoal(reused)
    assert eng.CreateGoal(reused).goal_id == goal.goal_id
    goals = eng.ListGoals(
        E.ListGoalsRequest(organization_id=org, relationship_id=rid, participant_id=pair.mentee)
    )
    assert [g.goal_id for g in goals.goals] == [goal.goal_id]

    # The retried LogSession published nothing new: one event id for the session.
    key = partition_key(org, pair.program.pid)

    def logged_events() -> set[str] | None:
        ids = set()
        for record in read_topic(stack.ports.bootstrap, "session-logged", settle=2):
            event = events_pb2.Event.FromString(record.value) if record.key == key else None
            if event is not None and event.session_logged.session_id == logged.session_id:
                ids.add(event.envelope.event_id)
        return ids or None

    assert len(eventually("session-logged", logged_events)) == 1
