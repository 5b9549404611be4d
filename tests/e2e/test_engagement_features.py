"""Program lifecycle in engagement, end to end over gRPC and the broker: pausing, extending,
scheduled sessions with private notes, transcripts, goals, feedback, messages, training, and
the `mentoring engagement` commands."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import common_pb2, engagement_pb2, events_pb2
from services.common.events import partition_key
from services.engagement.domain import default_expected_end
from tests.e2e.engine import MENTEE, MENTOR, Program
from tests.e2e.support import eventually, read_topic

E = engagement_pb2
STRANGER = "someone-else"
Req = TypeVar("Req", bound=Message)


@dataclass
class Pair:
    program: Program
    mentor: str
    mentee: str
    relationship_id: str

    @property
    def org(self) -> str:
        return self.program.org

    def get(self) -> engagement_pb2.Relationship:
        return self.program.clients.engagement.GetRelationship(
            E.GetRelationshipRequest(organization_id=self.org, relationship_id=self.relationship_id)
        )


def new_pair(stack: Stack, clients: Clients, skill: str = "coaching") -> Pair:
    """A mentor and a mentee with the same skill, matched and both accepted."""
    program = Program(clients, stack)
    mentor = program.register("Mia", MENTOR, [skill], capacity=1)
    mentee = program.register("Leo", MENTEE, [skill])
    proposal = eventually("a proposal", lambda: next(iter(program.proposals(mentee)), None))
    eventually("engagement to see the proposal", lambda: program.known(proposal.match_id))
    program.respond(proposal.match_id, mentor, accept=True)
    started = program.respond(proposal.match_id, mentee, accept=True)
    assert started.relationship_id
    return Pair(program, mentor, mentee, started.relationship_id)


def rpc_error(call: Callable[[Req], object], request: Req) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as excinfo:
        call(request)
    return excinfo.value


def invalid(call: Callable[[Req], object], request: Req, field: str) -> None:
    error = rpc_error(call, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error.details().startswith(f"{field}:"), error.details()


def fails(call: Callable[[Req], object], request: Req, code: grpc.StatusCode) -> str:
    error = rpc_error(call, request)
    assert error.code() == code, error.details()
    return str(error.details())


def records(stack: Stack, program: Program, topic: str) -> list[bytes]:
    """Values of the program's records on a topic (other tests leave garbage with other keys)."""
    key = partition_key(program.org, program.pid)
    return [r.value for r in read_topic(stack.ports.bootstrap, topic) if r.key == key]


def events(stack: Stack, program: Program, topic: str) -> list[events_pb2.Event]:
    found = [events_pb2.Event.FromString(v) for v in records(stack, program, topic)]
    for event in found:
        assert event.envelope.producer == "engagement"
        assert (event.envelope.organization_id, event.envelope.program_id) == (
            program.org,
            program.pid,
        )
    return found


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def now() -> datetime:
    return datetime.now(UTC)


# --- 1. relationship lifecycle -------------------------------------------------------------


def test_pause_resume_and_extend_a_relationship(stack: Stack, clients: Clients) -> None:
    pair = new_pair(stack, clients)
    eng = clients.engagement
    org, rid = pair.org, pair.relationship_id
    started = pair.get()
    assert started.status == E.RELATIONSHIP_STATUS_ACTIVE
    assert started.expected_end_at.ToDatetime(UTC) == default_expected_end(
        started.started_at.ToDatetime(UTC)
    )
    assert started.health.score == 100  # a new pair is not behind

    pause = E.PauseRelationshipRequest(
        organization_id=org,
        relationship_id=rid,
        participant_id=pair.mentee,
        reason="Parental leave",
    )
    denied = E.PauseRelationshipRequest(
        organization_id=org, relationship_id=rid, participant_id=STRANGER
    )
    fails(eng.PauseRelationship, denied, grpc.StatusCode.PERMISSION_DENIED)
    invalid(
        eng.PauseRelationship, E.PauseRelationshipRequest(relationship_id=rid), "organization_id"
    )
    invalid(
        eng.PauseRelationship,
        E.PauseRelationshipRequest(organization_id=org, relationship_id=rid),
        "participant_id",
    )
    # Scoped by organisation: another tenant does not see it.
    fails(
        eng.PauseRelationship,
        E.PauseRelationshipRequest(
            organization_id="other-org", relationship_id=rid, participant_id=pair.mentee
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    paused = eng.PauseRelationship(pause)
    assert paused.status == E.RELATIONSHIP_STATUS_PAUSED
    assert paused.pause_reason == "Parental leave"
    assert eng.PauseRelationship(pause).status == E.RELATIONSHIP_STATUS_PAUSED  # a retry

    log = E.LogSessionRequest(
        organization_id=org,
        relationship_id=rid,
        minutes=30,
        mode=common_pb2.SESSION_MODE_PHONE,
        held_at=ts(now() - timedelta(hours=1)),
    )
    assert "paused" in fails(eng.LogSession, log, grpc.StatusCode.FAILED_PRECONDITION)
    schedule = E.ScheduleSessionRequest(
        organization_id=org,
        relationship_id=rid,
        participant_id=pair.mentor,
        scheduled_at=ts(now() + timedelta(days=1)),
        minutes=30,
        mode=common_pb2.SESSION_MODE_VIRTUAL,
    )
    fails(eng.ScheduleSession, schedule, grpc.StatusCode.FAILED_PRECONDITION)

    resumed = eng.ResumeRelationship(
        E.ResumeRelationshipRequest(
            organization_id=org, relationship_id=rid, participant_id=pair.mentor
        )
    )
    assert resumed.status == E.RELATIONSHIP_STATUS_ACTIVE
    assert resumed.pause_reason == ""
    assert eng.LogSession(log).minutes == 30

    current_end = resumed.expected_end_at.ToDatetime(UTC)
    invalid(
        eng.ExtendRelationship,
        E.ExtendRelationshipRequest(
            organization_id=org,
            relationship_id=rid,
            participant_id=pair.mentee,
            expected_end_at=ts(current_end - timedelta(days=1)),
        ),
        "expected_end_at",
    )
    invalid(
        eng.ExtendRelationship,
        E.ExtendRelationshipRequest(
            organization_id=org, relationship_id=rid, participant_id=pair.mentee
        ),
        "expected_end_at",
    )
    later = (current_end + timedelta(days=60)).replace(microsecond=0)
    extend = E.ExtendRelationshipRequest(
        organization_id=org,
        relationship_id=rid,
        participant_id=pair.mentee,
        expected_end_at=ts(later),
    )
    assert eng.ExtendRelationship(extend).expected_end_at.ToDatetime(UTC) == later
    assert eng.ExtendRelationship(extend).expected_end_at.ToDatetime(UTC) == later  # a retry
    assert pair.get().expected_end_at.ToDatetime(UTC) == later

    # A paused relationship can still be ended; afterwards it neither pauses nor resumes.
    eng.PauseRelationship(pause)
    ended = eng.EndRelationship(
        E.EndRelationshipRequest(
            organization_id=org, relationship_id=rid, participant_id=pair.mentor, completed=True
        )
    )
    assert ended.status == E.RELATIONSHIP_STATUS_COMPLETED
    fails(
        eng.ResumeRelationship,
        E.ResumeRelationshipRequest(
            organization_id=org, relationship_id=rid, participant_id=pair.mentor
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


# --- 2. sessions, notes and transcripts ----------------------------------------------------


def test_scheduled_sessions_private_notes_and_transcript(stack: Stack, clients: Clients) -> None:
    pair = new_pair(stack, clients)
    eng = clients.engagement
    org, rid = pair.org, pair.relationship_id
    mentor_note = f"mentor-private-{uuid.uuid4().hex}"
    mentee_note = f"mentee-private-{uuid.uuid4().hex}"

    def schedule(**fields: object) -> E.ScheduleSessionRequest:
        base: dict[str, object] = {
            "organization_id": org,
            "relationship_id": rid,
            "participant_id": pair.mentee,
            "scheduled_at": ts(now() + timedelta(hours=2)),
            "minutes": 45,
            "mode": common_pb2.SESSION_MODE_VIRTUAL,
            "topics": ["career plan", "feedback"],
        }
        base.update(fields)
        return E.ScheduleSessionRequest(**base)  # type: ignore[arg-type]

    invalid(
        eng.ScheduleSession, schedule(scheduled_at=ts(now() - timedelta(hours=1))), "scheduled_at"
    )
    invalid(eng.ScheduleSession, schedule(minutes=0), "minutes")
    invalid(eng.ScheduleSession, schedule(mode=common_pb2.SESSION_MODE_UNSPECIFIED), "mode")
    invalid(eng.ScheduleSession, schedule(topics=["x" * 101]), "topics")
    invalid(eng.ScheduleSession, schedule(relationship_id=""), "relationship_id")
    fails(eng.ScheduleSession, schedule(participant_id=STRANGER), grpc.StatusCode.PERMISSION_DENIED)

    planned = eng.ScheduleSession(schedule())
    assert planned.status == E.SESSION_STATUS_SCHEDULED
    assert list(planned.topics) == ["career plan", "feedback"]
    assert not planned.HasField("held_at")
    assert pair.get().sessions == 0  # planned is not held

    held_at = now() - timedelta(minutes=5)
    mark = E.MarkSessionHeldRequest(
        organization_id=org,
        session_id=planned.session_id,
        participant_id=pair.mentor,
        held_at=ts(held_at),
        minutes=50,
        private_note=mentor_note,
    )
    fails(
        eng.MarkSessionHeld,
        E.MarkSessionHeldRequest(
            organization_id=org, session_id=planned.session_id, participant_id=STRANGER
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    invalid(
        eng.MarkSessionHeld,
        E.MarkSessionHeldRequest(organization_id=org, participant_id=pair.mentor),
        "session_id",
    )
    held = eng.MarkSessionHeld(mark)
    assert (held.status, held.minutes, held.private_note) == (
        E.SESSION_STATUS_HELD,
        50,
        mentor_note,
    )
    assert eng.MarkSessionHeld(mark).status == E.SESSION_STATUS_HELD  # a retry counts once
    eng.AddSessionNote(
        E.AddSessionNoteRequest(
            organization_id=org,
            session_id=planned.session_id,
            participant_id=pair.mentee,
            text=mentee_note,
        )
    )

    other = eng.ScheduleSession(schedule(topics=[]))
    cancelled = eng.CancelSession(
        E.CancelSessionRequest(
            organization_id=org,
            session_id=other.session_id,
            participant_id=pair.mentor,
            reason="Clash with a workshop",
        )
    )
    assert (cancelled.status, cancelled.cancel_reason) == (
        E.SESSION_STATUS_CANCELLED,
        "Clash with a workshop",
    )
    fails(
        eng.MarkSessionHeld,
        E.MarkSessionHeldRequest(
            organization_id=org, session_id=other.session_id, participant_id=pair.mentor
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    fails(
        eng.CancelSession,
        E.CancelSessionRequest(
            organization_id=org, session_id=planned.session_id, participant_id=pair.mentor
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )

    # Each author reads only their own note.
    def notes(participant: str) -> dict[str, str]:
        listed = eng.ListSessions(
            E.ListSessionsRequest(
                organization_id=org, relationship_id=rid, participant_id=participant
            )
        )
        return {s.session_id: s.private_note for s in listed.sessions}

    assert notes(pair.mentor) == {planned.session_id: mentor_note, other.session_id: ""}
    assert notes(pair.mentee) == {planned.session_id: mentee_note, other.session_id: ""}
    fails(
        eng.ListSessions,
        E.ListSessionsRequest(organization_id=org, relationship_id=rid, participant_id=STRANGER),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    first_page = eng.ListSessions(
        E.ListSessionsRequest(
            organization_id=org, relationship_id=rid, participant_id=pair.mentor, page_size=1
        )
    )
    assert len(first_page.sessions) == 1 and first_page.next_page_token
    second_page = eng.ListSessions(
        E.ListSessionsRequest(
            organization_id=org,
            relationship_id=rid,
            participant_id=pair.mentor,
            page_size=1,
            page_token=first_page.next_page_token,
        )
    )
    assert {first_page.sessions[0].session_id, second_page.sessions[0].session_id} == {
        planned.session_id,
        other.session_id,
    }

    relationship = pair.get()
    assert (relationship.sessions, relationship.minutes) == (1, 50)

    transcript = eng.GetTranscript(
        E.GetTranscriptRequest(organization_id=org, participant_id=pair.mentor)
    )
    assert [s.session_id for s in transcript.sessions] == [planned.session_id]
    assert transcript.sessions[0].role == common_pb2.ROLE_MENTOR
    assert (transcript.session_minutes, transcript.recognised_hours) == (50, 0.83)
    mentee_view = eng.GetTranscript(
        E.GetTranscriptRequest(
            organization_id=org, participant_id=pair.mentee, program_id=pair.program.pid
        )
    )
    assert mentee_view.sessions[0].role == common_pb2.ROLE_MENTEE
    invalid(eng.GetTranscript, E.GetTranscriptRequest(organization_id=org), "participant_id")

    # session-logged: one event id for the held session (the retry reused it), no note anywhere.
    logged = events(stack, pair.program, "session-logged")
    ours = [e for e in logged if e.session_logged.session_id == planned.session_id]
    assert len({e.envelope.event_id for e in ours}) == 1
    assert ours[0].session_logged.minutes == 50
    assert ours[0].session_logged.held_at.ToDatetime(UTC) == held_at.replace(
        microsecond=held_at.microsecond - held_at.microsecond % 1000
    )
    for topic in ("session-logged", "relationship-started", "match-responded"):
        for value in records(stack, pair.program, topic):
            assert mentor_note.encode() not in value
            assert mentee_note.encode() not in value


# --- 3. goals ------------------------------------------------------------------------------


def test_goals_milestones_and_goal_updated_events(stack: Stack, clients: Clients) -> None:
    pair = new_pair(stack, clients)
    eng = clients.engagement
    org, rid = pair.org, pair.relationship_id
    title = f"Lead a team {uuid.uuid4().hex}"

    def create(**fields: object) -> E.CreateGoalRequest:
        base: dict[str, object] = {
            "organization_id": org,
            "relationship_id": rid,
            "participant_id": pair.mentee,
            "title": title,
            "target_date": ts(now() + timedelta(days=90)),
        }
        base.update(fields)
        return E.CreateGoalRequest(**base)  # type: ignore[arg-type]

    invalid(eng.CreateGoal, create(title="  "), "title")
    invalid(eng.CreateGoal, create(target_date=ts(now() - timedelta(days=1))), "target_date")
    fails(eng.CreateGoal, create(participant_id=STRANGER), grpc.StatusCode.PERMISSION_DENIED)
    goal = eng.CreateGoal(create(description="Run the Q3 project"))
    assert (goal.mentee_id, goal.status, goal.progress, goal.version) == (
        pair.mentee,
        events_pb2.GOAL_STATUS_OPEN,
        0,
        1,
    )
    # The mentor may write the mentee's goals down too; the goal stays the mentee's.
    second = eng.CreateGoal(create(participant_id=pair.mentor, title="Public speaking"))
    assert second.mentee_id == pair.mentee

    goal = eng.AddMilestone(
        E.AddMilestoneRequest(
            organization_id=org,
            goal_id=goal.goal_id,
            participant_id=pair.mentor,
            title="Shadow a team lead",
            due_at=ts(now() + timedelta(days=30)),
        )
    )
    milestone = goal.milestones[0]
    assert (milestone.title, milestone.done) == ("Shadow a team lead", False)

    def update(**fields: object) -> E.UpdateGoalProgressRequest:
        return E.UpdateGoalProgressRequest(
            organization_id=org,
            goal_id=goal.goal_id,
            participant_id=pair.mentee,
            **fields,  # type: ignore[arg-type]
        )

    invalid(eng.UpdateGoalProgress, update(progress=150), "progress")
    invalid(eng.UpdateGoalProgress, update(), "progress")
    invalid(
        eng.UpdateGoalProgress, update(completed_milestone_ids=["nope"]), "completed_milestone_ids"
    )
    progressed = eng.UpdateGoalProgress(
        update(progress=60, completed_milestone_ids=[milestone.milestone_id])
    )
    assert (progressed.progress, progressed.milestones[0].done, progressed.version) == (60, True, 3)
    again = eng.UpdateGoalProgress(update(progress=60))  # nothing changes: same version
    assert again.version == 3
    achieved = eng.UpdateGoalProgress(update(status=events_pb2.GOAL_STATUS_ACHIEVED))
    assert (achieved.status, achieved.progress, achieved.version) == (
        events_pb2.GOAL_STATUS_ACHIEVED,
        100,
        4,
    )
    fails(eng.UpdateGoalProgress, update(progress=10), grpc.StatusCode.FAILED_PRECONDITION)

    page = eng.ListGoals(
        E.ListGoalsRequest(
            organization_id=org, relationship_id=rid, participant_id=pair.mentor, page_size=1
        )
    )
    rest = eng.ListGoals(
        E.ListGoalsRequest(
            organization_id=org,
            relationship_id=rid,
            participant_id=pair.mentor,
            page_size=1,
            page_token=page.next_page_token,
        )
    )
    assert {g.goal_id for g in [*page.goals, *rest.goals]} == {goal.goal_id, second.goal_id}
    invalid(
        eng.ListGoals,
        E.ListGoalsRequest(
            organization_id=org, relationship_id=rid, participant_id=pair.mentor, page_token="!!"
        ),
        "page_token",
    )
    fails(
        eng.ListGoals,
        E.ListGoalsRequest(organization_id=org, relationship_id=rid, participant_id=STRANGER),
        grpc.StatusCode.PERMISSION_DENIED,
    )

    # goal-updated: one event per version (the unchanged retry reused version 3's id), no titles.
    found = [
        e
        for e in events(stack, pair.program, "goal-updated")
        if e.goal_updated.goal_id == goal.goal_id
    ]
    by_version = {e.goal_updated.version: e for e in found}
    assert sorted(by_version) == [1, 2, 3, 4]
    assert len({e.envelope.event_id for e in found}) == 4
    assert [by_version[v].goal_updated.change for v in (1, 2, 3, 4)] == [
        "created",
        "milestone_added",
        "progress_updated",
        "progress_updated",
    ]
    assert by_version[3].goal_updated.milestones_done == 1
    assert by_version[4].goal_updated.status == events_pb2.GOAL_STATUS_ACHIEVED
    assert all(title.encode() not in v for v in records(stack, pair.program, "goal-updated"))

    health = pair.get().health
    assert health.HasField("goals")
    assert health.goals == pytest.approx((1.0 + 0.0) / 2)


# --- 4. feedback and health ----------------------------------------------------------------


def test_feedback_rating_is_published_without_its_text(stack: Stack, clients: Clients) -> None:
    pair = new_pair(stack, clients)
    eng = clients.engagement
    org, rid = pair.org, pair.relationship_id
    comment = f"free-text-{uuid.uuid4().hex}"

    def submit(**fields: object) -> E.SubmitFeedbackRequest:
        base: dict[str, object] = {
            "organization_id": org,
            "relationship_id": rid,
            "participant_id": pair.mentee,
            "survey_point": "day-30",
            "rating": 4,
            "comment": comment,
        }
        base.update(fields)
        return E.SubmitFeedbackRequest(**base)  # type: ignore[arg-type]

    invalid(eng.SubmitFeedback, submit(rating=6), "rating")
    invalid(eng.SubmitFeedback, submit(rating=0), "rating")
    invalid(eng.SubmitFeedback, submit(survey_point="day-45"), "survey_point")
    fails(eng.SubmitFeedback, submit(participant_id=STRANGER), grpc.StatusCode.PERMISSION_DENIED)
    first = eng.SubmitFeedback(submit())
    assert (first.rating, first.comment, first.survey_point) == (4, comment, "day-30")
    assert eng.SubmitFeedback(submit()).feedback_id == first.feedback_id  # a retry
    fails(eng.SubmitFeedback, submit(rating=2), grpc.StatusCode.FAILED_PRECONDITION)
    mentor_side = eng.SubmitFeedback(
        submit(participant_id=pair.mentor, survey_point="periodic", rating=2, comment="")
    )
    another = eng.SubmitFeedback(
        submit(participant_id=pair.mentor, survey_point="periodic", rating=3, comment="")
    )
    assert mentor_side.feedback_id != another.feedback_id

    found = events(stack, pair.program, "feedback-submitted")
    ratings = {e.feedback_submitted.feedback_id: e.feedback_submitted for e in found}
    assert set(ratings) == {first.feedback_id, mentor_side.feedback_id, another.feedback_id}
    assert len({e.envelope.event_id for e in found}) == 3
    assert ratings[first.feedback_id].rating == 4
    assert ratings[first.feedback_id].author_role == common_pb2.ROLE_MENTEE
    assert ratings[another.feedback_id].author_role == common_pb2.ROLE_MENTOR
    assert all(
        comment.encode() not in v for v in records(stack, pair.program, "feedback-submitted")
    )

    health = pair.get().health
    assert health.ratings == pytest.approx(((4 + 2 + 3) / 3 - 1) / 4)
    assert not health.HasField("goals")
    # No session expected yet: cadence 1, so 50 of 75 weight is full and ratings give the rest.
    assert health.score == round(100 * (50 * 1.0 + 25 * health.ratings) / 75)


# --- 5. messages ---------------------------------------------------------------------------


def test_messages_are_counted_once_per_message_id(stack: Stack, clients: Clients) -> None:
    pair = new_pair(stack, clients)
    eng = clients.engagement
    org, rid = pair.org, pair.relationship_id

    def record(message_id: str, sender: str) -> engagement_pb2.Relationship:
        return eng.RecordMessage(
            E.RecordMessageRequest(
                organization_id=org,
                relationship_id=rid,
                participant_id=sender,
                message_id=message_id,
            )
        )

    assert record("chat-1", pair.mentee).messages == 1
    assert record("chat-1", pair.mentee).messages == 1  # a retry
    assert record("chat-2", pair.mentor).messages == 2
    invalid(
        eng.RecordMessage,
        E.RecordMessageRequest(
            organization_id=org, relationship_id=rid, participant_id=pair.mentor
        ),
        "message_id",
    )
    invalid(
        eng.RecordMessage,
        E.RecordMessageRequest(
            organization_id=org,
            relationship_id=rid,
            participant_id=pair.mentor,
            message_id="chat-9",
            sent_at=ts(now() + timedelta(days=3)),
        ),
        "sent_at",
    )
    fails(
        eng.RecordMessage,
        E.RecordMessageRequest(
            organization_id=org, relationship_id=rid, participant_id=STRANGER, message_id="x"
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert pair.get().messages == 2

    found = events(stack, pair.program, "message-sent")
    assert {e.message_sent.message_id for e in found} == {"chat-1", "chat-2"}
    assert len({e.envelope.event_id for e in found}) == 2
    senders = {e.message_sent.message_id: e.message_sent.sender_role for e in found}
    assert senders == {"chat-1": common_pb2.ROLE_MENTEE, "chat-2": common_pb2.ROLE_MENTOR}


# --- 6. training ---------------------------------------------------------------------------


def test_training_library_completions_and_transcript(stack: Stack, clients: Clients) -> None:
    pair = new_pair(stack, clients)
    eng = clients.engagement
    org, pid = pair.org, pair.program.pid

    def add(**fields: object) -> E.AddTrainingResourceRequest:
        base: dict[str, object] = {
            "organization_id": org,
            "program_id": pid,
            "title": "Mentoring 101",
            "kind": events_pb2.TRAINING_KIND_GUIDE,
            "url": "https://learn.example.org/mentoring-101",
            "audience": events_pb2.TRAINING_AUDIENCE_MENTORS,
            "minutes": 40,
        }
        base.update(fields)
        return E.AddTrainingResourceRequest(**base)  # type: ignore[arg-type]

    invalid(eng.AddTrainingResource, add(url="javascript:alert(1)"), "url")
    invalid(eng.AddTrainingResource, add(kind=events_pb2.TRAINING_KIND_UNSPECIFIED), "kind")
    invalid(
        eng.AddTrainingResource, add(audience=events_pb2.TRAINING_AUDIENCE_UNSPECIFIED), "audience"
    )
    invalid(eng.AddTrainingResource, add(minutes=601), "minutes")
    invalid(eng.AddTrainingResource, add(program_id=""), "program_id")
    guide = eng.AddTrainingResource(add())
    assert eng.AddTrainingResource(add()).resource_id == guide.resource_id  # a retry
    fails(eng.AddTrainingResource, add(title="Other"), grpc.StatusCode.ALREADY_EXISTS)
    video = eng.AddTrainingResource(
        add(
            title="Being mentored",
            kind=events_pb2.TRAINING_KIND_VIDEO,
            url="https://learn.example.org/mentee.mp4",
            audience=events_pb2.TRAINING_AUDIENCE_MENTEES,
            minutes=20,
        )
    )
    checklist = eng.AddTrainingResource(
        add(
            title="First meeting checklist",
            kind=events_pb2.TRAINING_KIND_CHECKLIST,
            url="https://learn.example.org/first-meeting",
            audience=events_pb2.TRAINING_AUDIENCE_BOTH,
            minutes=10,
        )
    )

    def listed(
        audience: int, page_size: int = 0, token: str = ""
    ) -> E.ListTrainingResourcesResponse:
        return eng.ListTrainingResources(
            E.ListTrainingResourcesRequest(
                organization_id=org,
                program_id=pid,
                audience=audience,  # type: ignore[arg-type]
                page_size=page_size,
                page_token=token,
            )
        )

    for_mentors = {r.resource_id for r in listed(events_pb2.TRAINING_AUDIENCE_MENTORS).resources}
    assert for_mentors == {guide.resource_id, checklist.resource_id}
    first = listed(events_pb2.TRAINING_AUDIENCE_UNSPECIFIED, page_size=2)
    rest = listed(
        events_pb2.TRAINING_AUDIENCE_UNSPECIFIED, page_size=2, token=first.next_page_token
    )
    assert len(first.resources) == 2 and len(rest.resources) == 1 and not rest.next_page_token
    invalid(
        eng.ListTrainingResources,
        E.ListTrainingResourcesRequest(organization_id=org, program_id=pid, page_size=501),
        "page_size",
    )

    def complete(resource_id: str, who: str) -> E.CompleteTrainingRequest:
        return E.CompleteTrainingRequest(
            organization_id=org, resource_id=resource_id, participant_id=who
        )

    # Engagement knows the mentor is a mentor (from the match): the mentees' video is not theirs.
    fails(
        eng.CompleteTraining,
        complete(video.resource_id, pair.mentor),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    fails(
        eng.CompleteTraining, complete("no-such-resource", pair.mentor), grpc.StatusCode.NOT_FOUND
    )
    invalid(eng.CompleteTraining, complete(guide.resource_id, ""), "participant_id")
    done = eng.CompleteTraining(complete(guide.resource_id, pair.mentor))
    assert (done.title, done.minutes, done.kind) == (
        "Mentoring 101",
        40,
        events_pb2.TRAINING_KIND_GUIDE,
    )
    assert (
        eng.CompleteTraining(complete(guide.resource_id, pair.mentor)).completed_at
        == done.completed_at
    )
    eng.CompleteTraining(complete(checklist.resource_id, pair.mentor))
    eng.CompleteTraining(complete(video.resource_id, pair.mentee))

    completions = eng.ListTrainingCompletions(
        E.ListTrainingCompletionsRequest(organization_id=org, participant_id=pair.mentor)
    )
    assert {c.resource_id for c in completions.completions} == {
        guide.resource_id,
        checklist.resource_id,
    }
    transcript = eng.GetTranscript(
        E.GetTranscriptRequest(organization_id=org, participant_id=pair.mentor, program_id=pid)
    )
    assert (transcript.training_minutes, transcript.session_minutes) == (50, 0)
    assert transcript.recognised_hours == 0.83

    found = events(stack, pair.program, "training-completed")
    keyed = {
        (e.training_completed.resource_id, e.training_completed.participant_id): e for e in found
    }
    assert set(keyed) == {
        (guide.resource_id, pair.mentor),
        (checklist.resource_id, pair.mentor),
        (video.resource_id, pair.mentee),
    }
    assert len({e.envelope.event_id for e in found}) == 3  # the repeat reused its event id
    assert keyed[(guide.resource_id, pair.mentor)].training_completed.minutes == 40
    assert (
        keyed[(video.resource_id, pair.mentee)].training_completed.audience
        == events_pb2.TRAINING_AUDIENCE_MENTEES
    )


# --- CLI -----------------------------------------------------------------------------------


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mentoring.cli_engagement", *args],
        capture_output=True,
        text=True,
        env={**stack.client_env(), "COLUMNS": "250"},
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_engagement_commands(stack: Stack, clients: Clients) -> None:
    pair = new_pair(stack, clients)
    org, rid, pid = pair.org, pair.relationship_id, pair.program.pid
    who = ["-o", org, "-r", rid, "-p", pair.mentee]

    out = ok(
        cli(stack, "goals", "add", *who, "--title", "Speak at a meetup", "--target", "2031-01-31")
    )
    goal_id = re.search(r"goal (\S+) created for mentee", out)
    assert goal_id, out
    out = ok(cli(stack, "goals", "list", *who))
    assert goal_id.group(1) in out and "Speak at a meetup" in out and "2031-01-31" in out

    out = ok(cli(stack, "feedback", "submit", *who, "--point", "day-30", "--rating", "5"))
    assert "day-30 rated 5/5" in out
    bad = cli(stack, "feedback", "submit", *who, "--point", "day-30", "--rating", "9")
    assert bad.returncode == 1
    assert "INVALID_ARGUMENT: rating:" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr

    out = ok(
        cli(
            stack,
            "training", "add", "-o", org, "--program", pid, "--title", "Listening skills",
            "--url", "https://learn.example.org/listening", "--kind", "video",
            "--audience", "both", "--minutes", "30",
        )
    )  # fmt: skip
    resource = re.search(r"resource (\S+) added", out)
    assert resource, out
    out = ok(cli(stack, "training", "list", "-o", org, "--program", pid, "--audience", "mentees"))
    assert "Listening skills" in out and "video" in out
    out = ok(
        cli(
            stack,
            "training",
            "complete",
            "-o",
            org,
            "-p",
            pair.mentee,
            "--resource",
            resource.group(1),
        )
    )
    assert "completed Listening skills (30 min)" in out

    out = ok(cli(stack, "transcript", "-o", org, "-p", pair.mentee))
    assert "training: Listening skills" in out
    assert "recognised hours: 0.50" in out
    assert pair.get().health.ratings == 1.0
