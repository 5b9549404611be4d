"""Engagement's records as API messages, and the events of the program-lifecycle features.

Event ids derive from what each event is about, so a retried RPC republishes the same id and
consumers drop the copy. Private notes, feedback comments, goal titles and message contents
never enter an event.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.api import common_pb2, engagement_pb2, events_pb2
from services.common.events import new_event, stable_event_id
from services.common.pb.mentoring.v1.events_pb2 import Event, RelationshipEnded
from services.engagement import domain
from services.engagement.documents import (
    Feedback,
    Goal,
    Match,
    Relationship,
    Session,
    TrainingCompletion,
    TrainingResource,
)
from services.engagement.health import Health

STATUS = {
    domain.PROPOSED: common_pb2.MATCH_STATUS_PROPOSED,
    domain.ACCEPTED: common_pb2.MATCH_STATUS_ACCEPTED,
    domain.DECLINED: common_pb2.MATCH_STATUS_DECLINED,
    domain.EXPIRED: common_pb2.MATCH_STATUS_EXPIRED,
}
DECISION = {
    domain.NONE: common_pb2.MATCH_DECISION_UNSPECIFIED,
    domain.ACCEPT: common_pb2.MATCH_DECISION_ACCEPT,
    domain.DECLINE: common_pb2.MATCH_DECISION_DECLINE,
}
DECISION_NAMES = {value: name for name, value in DECISION.items()}

RELATIONSHIP_STATUS = {
    domain.ACTIVE: engagement_pb2.RELATIONSHIP_STATUS_ACTIVE,
    domain.COMPLETED: engagement_pb2.RELATIONSHIP_STATUS_COMPLETED,
    domain.CLOSED_EARLY: engagement_pb2.RELATIONSHIP_STATUS_CLOSED_EARLY,
    domain.PAUSED: engagement_pb2.RELATIONSHIP_STATUS_PAUSED,
}
MODES = {
    common_pb2.SESSION_MODE_VIRTUAL: "virtual",
    common_pb2.SESSION_MODE_FACE_TO_FACE: "face_to_face",
    common_pb2.SESSION_MODE_PHONE: "phone",
}
MODE_VALUES = {name: value for value, name in MODES.items()}
SESSION_STATUS = {
    domain.SCHEDULED: engagement_pb2.SESSION_STATUS_SCHEDULED,
    domain.HELD: engagement_pb2.SESSION_STATUS_HELD,
    domain.CANCELLED: engagement_pb2.SESSION_STATUS_CANCELLED,
}
GOAL_STATUS = {
    domain.GOAL_OPEN: events_pb2.GOAL_STATUS_OPEN,
    domain.GOAL_ACHIEVED: events_pb2.GOAL_STATUS_ACHIEVED,
    domain.GOAL_ABANDONED: events_pb2.GOAL_STATUS_ABANDONED,
}
GOAL_STATUS_NAMES = {value: name for name, value in GOAL_STATUS.items()}
TRAINING_KIND = {
    domain.GUIDE: events_pb2.TRAINING_KIND_GUIDE,
    domain.CHECKLIST: events_pb2.TRAINING_KIND_CHECKLIST,
    domain.VIDEO: events_pb2.TRAINING_KIND_VIDEO,
}
TRAINING_KIND_NAMES = {value: name for name, value in TRAINING_KIND.items()}
AUDIENCE = {
    domain.MENTORS: events_pb2.TRAINING_AUDIENCE_MENTORS,
    domain.MENTEES: events_pb2.TRAINING_AUDIENCE_MENTEES,
    domain.BOTH: events_pb2.TRAINING_AUDIENCE_BOTH,
}
AUDIENCE_NAMES = {value: name for name, value in AUDIENCE.items()}
ROLE = {domain.MENTOR: common_pb2.ROLE_MENTOR, domain.MENTEE: common_pb2.ROLE_MENTEE}
ROLE_NAMES = {value: name for name, value in ROLE.items()}
PRODUCER = "engagement"


def _set_time(field: Timestamp, moment: datetime | None) -> None:
    if moment is not None:
        field.FromDatetime(domain.aware(moment))


def relationship_message(
    r: Relationship, expected_end: datetime, health: Health | None = None
) -> engagement_pb2.Relationship:
    msg = engagement_pb2.Relationship(
        organization_id=r.organization_id,
        program_id=r.program_id,
        relationship_id=r.relationship_id,
        match_id=r.match_id,
        mentor_id=r.mentor_id,
        mentee_id=r.mentee_id,
        sessions=r.sessions,
        minutes=r.minutes,
        status=RELATIONSHIP_STATUS[r.status],
        end_reason=r.end_reason,
        messages=r.messages or 0,
        pause_reason=r.pause_reason or "",
    )
    msg.started_at.FromDatetime(r.started_at)
    msg.expected_end_at.FromDatetime(expected_end)
    if health is not None:
        msg.health.score = health.score
        msg.health.cadence = health.cadence
        msg.health.expected_sessions = health.expected_sessions
        if health.goals is not None:
            msg.health.goals = health.goals
        if health.ratings is not None:
            msg.health.ratings = health.ratings
    return msg


def session_message(s: Session, note: str = "") -> engagement_pb2.Session:
    msg = engagement_pb2.Session(
        organization_id=s.organization_id,
        program_id=s.program_id,
        session_id=s.session_id,
        relationship_id=s.relationship_id,
        minutes=s.minutes,
        mode=MODE_VALUES[s.mode],
        status=SESSION_STATUS[s.status or domain.HELD],
        topics=list(s.topics or ()),
        private_note=note,
        cancel_reason=s.cancel_reason or "",
    )
    _set_time(msg.held_at, s.held_at)
    _set_time(msg.scheduled_at, s.scheduled_at)
    return msg


def session_logged(s: Session) -> events_pb2.Event:
    """The same event LogSession publishes, with the same id for the same session."""
    payload = events_pb2.SessionLogged(
        session_id=s.session_id,
        relationship_id=s.relationship_id,
        minutes=s.minutes,
        mode=MODE_VALUES[s.mode],
    )
    _set_time(payload.held_at, s.held_at)
    return new_event(
        producer=PRODUCER,
        organization_id=s.organization_id,
        program_id=s.program_id,
        event_id=stable_event_id("session-logged", s.organization_id, s.session_id),
        payload=payload,
    )


def plan_change(s: Session) -> events_pb2.SessionPlanChange.ValueType:
    """What the session's latest session-planned reports, from its state: the latest change of
    a cancelled session is its cancellation, otherwise a move unless it never changed."""
    if s.status == domain.CANCELLED:
        return events_pb2.SESSION_PLAN_CHANGE_CANCELLED
    if s.plan_sequence:
        return events_pb2.SESSION_PLAN_CHANGE_MOVED
    return events_pb2.SESSION_PLAN_CHANGE_SCHEDULED


def session_planned(s: Session, r: Relationship) -> events_pb2.Event:
    """The session's plan as its latest change left it, under one id per (session, sequence):
    a retried schedule, move or cancellation rebuilds the same event (planning.py)."""
    payload = events_pb2.SessionPlanned(
        session_id=s.session_id,
        relationship_id=s.relationship_id,
        mentor_id=r.mentor_id,
        mentee_id=r.mentee_id,
        minutes=s.minutes,
        mode=MODE_VALUES[s.mode],
        topics=list(s.topics or ()),
        change=plan_change(s),
        sequence=s.plan_sequence or 0,
        cancel_reason=(s.cancel_reason or "") if s.status == domain.CANCELLED else "",
        changed_by=s.changed_by or s.scheduled_by or "",
    )
    _set_time(payload.scheduled_at, s.scheduled_at)
    return new_event(
        producer=PRODUCER,
        organization_id=s.organization_id,
        program_id=s.program_id,
        event_id=stable_event_id(
            "session-planned", s.organization_id, s.session_id, str(s.plan_sequence or 0)
        ),
        payload=payload,
        occurred_at=domain.aware(s.changed_at) if s.changed_at is not None else None,
    )


def goal_message(g: Goal) -> engagement_pb2.Goal:
    msg = engagement_pb2.Goal(
        organization_id=g.organization_id,
        program_id=g.program_id,
        goal_id=g.goal_id,
        relationship_id=g.relationship_id,
        mentee_id=g.mentee_id,
        title=g.title,
        description=g.description,
        progress=g.progress,
        status=GOAL_STATUS[g.status],
        created_by=g.created_by,
        version=g.version,
    )
    _set_time(msg.target_date, g.target_date)
    for m in g.milestones:
        milestone = msg.milestones.add(milestone_id=m.milestone_id, title=m.title, done=m.done)
        _set_time(milestone.due_at, m.due_at)
    return msg


def goal_updated(g: Goal, change: str) -> events_pb2.Event:
    payload = events_pb2.GoalUpdated(
        goal_id=g.goal_id,
        relationship_id=g.relationship_id,
        mentee_id=g.mentee_id,
        change=change,
        progress=g.progress,
        status=GOAL_STATUS[g.status],
        milestones=len(g.milestones),
        milestones_done=sum(1 for m in g.milestones if m.done),
        version=g.version,
    )
    _set_time(payload.target_date, g.target_date)
    return new_event(
        producer=PRODUCER,
        organization_id=g.organization_id,
        program_id=g.program_id,
        # One event per version of the goal: a retry that changed nothing reuses the id.
        event_id=stable_event_id("goal-updated", g.organization_id, g.goal_id, str(g.version)),
        payload=payload,
    )


def feedback_message(f: Feedback) -> engagement_pb2.Feedback:
    msg = engagement_pb2.Feedback(
        organization_id=f.organization_id,
        program_id=f.program_id,
        feedback_id=f.feedback_id,
        relationship_id=f.relationship_id,
        author_id=f.author_id,
        survey_point=f.survey_point,
        rating=f.rating,
        comment=f.comment,
    )
    _set_time(msg.submitted_at, f.submitted_at)
    return msg


def feedback_submitted(f: Feedback, side: str) -> events_pb2.Event:
    return new_event(
        producer=PRODUCER,
        organization_id=f.organization_id,
        program_id=f.program_id,
        event_id=stable_event_id("feedback-submitted", f.organization_id, f.feedback_id),
        # No comment: see FeedbackSubmitted in events.proto.
        payload=events_pb2.FeedbackSubmitted(
            feedback_id=f.feedback_id,
            relationship_id=f.relationship_id,
            author_id=f.author_id,
            author_role=ROLE[side],
            survey_point=f.survey_point,
            rating=f.rating,
        ),
    )


def message_sent(
    r: Relationship, sender_id: str, side: str, message_id: str, sent_at: datetime
) -> events_pb2.Event:
    payload = events_pb2.MessageSent(
        relationship_id=r.relationship_id,
        sender_id=sender_id,
        sender_role=ROLE[side],
        message_id=message_id,
    )
    payload.sent_at.FromDatetime(sent_at)
    return new_event(
        producer=PRODUCER,
        organization_id=r.organization_id,
        program_id=r.program_id,
        event_id=stable_event_id("message-sent", r.organization_id, r.relationship_id, message_id),
        payload=payload,
    )


def resource_message(r: TrainingResource) -> engagement_pb2.TrainingResource:
    return engagement_pb2.TrainingResource(
        organization_id=r.organization_id,
        program_id=r.program_id,
        resource_id=r.resource_id,
        title=r.title,
        kind=TRAINING_KIND[r.kind],
        url=r.url,
        audience=AUDIENCE[r.audience],
        minutes=r.minutes,
    )


def completion_message(
    c: TrainingCompletion, r: TrainingResource
) -> engagement_pb2.TrainingCompletion:
    msg = engagement_pb2.TrainingCompletion(
        organization_id=c.organization_id,
        program_id=c.program_id,
        resource_id=c.resource_id,
        participant_id=c.participant_id,
        title=r.title,
        kind=TRAINING_KIND[r.kind],
        minutes=r.minutes,
    )
    _set_time(msg.completed_at, c.completed_at)
    return msg


def training_completed(c: TrainingCompletion, r: TrainingResource) -> events_pb2.Event:
    return new_event(
        producer=PRODUCER,
        organization_id=c.organization_id,
        program_id=c.program_id,
        event_id=stable_event_id(
            "training-completed", c.organization_id, c.resource_id, c.participant_id
        ),
        payload=events_pb2.TrainingCompleted(
            resource_id=c.resource_id,
            participant_id=c.participant_id,
            kind=TRAINING_KIND[r.kind],
            audience=AUDIENCE[r.audience],
            minutes=r.minutes,
        ),
    )


def relationship_ended_event(relationship: Relationship, not_a_good_fit: bool = False) -> Event:
    """relationship-ended, under one stable id per relationship: it ends once, whoever ends
    it (a member through EndRelationship, or a withdrawal), and a retry republishes the same."""
    org = relationship.organization_id
    return new_event(
        producer="engagement",
        organization_id=org,
        program_id=relationship.program_id,
        event_id=stable_event_id("relationship-ended", org, relationship.relationship_id),
        payload=RelationshipEnded(
            relationship_id=relationship.relationship_id,
            match_id=relationship.match_id,
            mentor_id=relationship.mentor_id,
            mentee_id=relationship.mentee_id,
            reason=relationship.end_reason,
            not_a_good_fit=not_a_good_fit,
            completed=relationship.status == domain.COMPLETED,
        ),
    )


def response_events(match: Match, participant_id: str) -> list[Event]:
    """Events for an answer. Their ids derive from the answer, so a retried RPC republishes the
    same events and consumers drop the copies."""
    decision = match.mentor_decision if participant_id == match.mentor_id else match.mentee_decision
    common = {
        "producer": "engagement",
        "organization_id": match.organization_id,
        "program_id": match.program_id,
    }
    events = [
        new_event(
            **common,
            event_id=stable_event_id(
                "match-responded", match.organization_id, match.match_id, participant_id, decision
            ),
            payload=events_pb2.MatchResponded(
                match_id=match.match_id,
                participant_id=participant_id,
                decision=DECISION[decision],
                status=STATUS[match.status],
                mentor_id=match.mentor_id,
                mentee_id=match.mentee_id,
            ),
        )
    ]
    if match.relationship_id:
        events.append(
            new_event(
                **common,
                event_id=stable_event_id(
                    "relationship-started", match.organization_id, match.relationship_id
                ),
                payload=events_pb2.RelationshipStarted(
                    relationship_id=match.relationship_id,
                    match_id=match.match_id,
                    mentor_id=match.mentor_id,
                    mentee_id=match.mentee_id,
                ),
            )
        )
    return events
