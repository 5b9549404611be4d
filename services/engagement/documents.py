"""What engagement stores in its own database."""

from __future__ import annotations

from mongoengine import (
    BooleanField,
    DateTimeField,
    Document,
    EmbeddedDocument,
    EmbeddedDocumentListField,
    FloatField,
    IntField,
    ListField,
    StringField,
)

DECISIONS = ("none", "accept", "decline")


class Match(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    match_id = StringField(required=True)
    mentor_id = StringField(required=True)
    mentee_id = StringField(required=True)
    score = FloatField(default=0.0)
    status = StringField(required=True, choices=("proposed", "accepted", "declined", "expired"))
    origin = StringField(default="engine")
    mentor_decision = StringField(default="none", choices=DECISIONS)
    mentee_decision = StringField(default="none", choices=DECISIONS)
    relationship_id = StringField(default="")
    proposed_at = DateTimeField(required=True)
    meta = {
        "collection": "matches",
        "indexes": [
            {"fields": ["organization_id", "match_id"], "unique": True},
            ["organization_id", "program_id", "match_id"],
            ["organization_id", "mentor_id"],
            ["organization_id", "mentee_id"],
        ],
    }


class Relationship(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    relationship_id = StringField(required=True)
    match_id = StringField(required=True)
    mentor_id = StringField(required=True)
    mentee_id = StringField(required=True)
    status = StringField(
        required=True,
        default="active",
        choices=("active", "completed", "closed_early", "paused"),
    )
    end_reason = StringField(default="")
    ended_at = DateTimeField()
    started_at = DateTimeField(required=True)
    sessions = IntField(default=0)
    minutes = IntField(default=0)
    # Unset on relationships from before it existed: then six months after the start.
    expected_end_at = DateTimeField()
    paused_at = DateTimeField()
    pause_reason = StringField(default="")
    # Time spent in completed pauses; the health cadence does not count it.
    paused_seconds = FloatField(default=0.0)
    # When it was last resumed: the no-session nudge counts the silence from then at the earliest.
    resumed_at = DateTimeField()
    # Paused because a member went on leave of absence (leaves.py); `leave_holds` are the
    # members whose leave keeps it paused. It resumes when the last of them is back.
    leave_paused = BooleanField(default=False)
    leave_holds = ListField(StringField())
    messages = IntField(default=0)
    last_message_at = DateTimeField()
    meta = {
        "collection": "relationships",
        "indexes": [
            {"fields": ["organization_id", "relationship_id"], "unique": True},
            {"fields": ["organization_id", "match_id"], "unique": True},
            ["organization_id", "mentor_id"],
            ["organization_id", "mentee_id"],
        ],
    }


class Session(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    session_id = StringField(required=True)
    relationship_id = StringField(required=True)
    # Set once held; a scheduled session has only scheduled_at.
    held_at = DateTimeField()
    minutes = IntField(required=True)
    mode = StringField(required=True)
    logged_at = DateTimeField()
    # Sessions logged with LogSession are held from the start.
    status = StringField(default="held", choices=("scheduled", "held", "cancelled"))
    scheduled_at = DateTimeField()
    scheduled_by = StringField(default="")
    topics = ListField(StringField())
    cancel_reason = StringField(default="")
    # The sequence of its latest session-planned: 0 when scheduled, one more per move or
    # cancellation, so a retry rebuilds that event under the same id (convert.session_planned).
    plan_sequence = IntField(default=0)
    # Who made the latest of those changes: a member, or the coordinator acting for them.
    changed_by = StringField(default="")
    # When (to the millisecond, as stored): the event's occurred_at, also when rebuilt.
    changed_at = DateTimeField()
    # The ids RescheduleSession claimed for the request ids of the moves made: a retried move
    # finds its own here and moves nothing.
    move_ids = ListField(StringField())
    # False only between storing a logged session (LogSession) and adding it to the
    # relationship's counts: a retry after a crash in between counts it once.
    counted = BooleanField(default=True)
    meta = {
        "collection": "sessions",
        "indexes": [
            {"fields": ["organization_id", "session_id"], "unique": True},
            ["organization_id", "relationship_id", "held_at"],
        ],
    }


class SessionNote(Document):
    """One author's private note on a session. Only its author reads it; never published."""

    organization_id = StringField(required=True)
    session_id = StringField(required=True)
    author_id = StringField(required=True)
    text = StringField(default="")
    updated_at = DateTimeField(required=True)
    meta = {
        "collection": "session_notes",
        "indexes": [{"fields": ["organization_id", "session_id", "author_id"], "unique": True}],
    }


class Milestone(EmbeddedDocument):
    milestone_id = StringField(required=True)
    title = StringField(required=True)
    due_at = DateTimeField()
    done = BooleanField(default=False)


class Goal(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    goal_id = StringField(required=True)
    relationship_id = StringField(required=True)
    mentee_id = StringField(required=True)
    title = StringField(required=True)
    description = StringField(default="")
    target_date = DateTimeField(required=True)
    progress = IntField(default=0)
    status = StringField(default="open", choices=("open", "achieved", "abandoned"))
    milestones = EmbeddedDocumentListField(Milestone)
    created_by = StringField(required=True)
    created_at = DateTimeField(required=True)
    updated_at = DateTimeField(required=True)
    # Every change adds one; updates are conditional on it, and event ids derive from it.
    version = IntField(default=1)
    meta = {
        "collection": "goals",
        "indexes": [
            {"fields": ["organization_id", "goal_id"], "unique": True},
            ["organization_id", "relationship_id", "goal_id"],
        ],
    }


class Feedback(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    feedback_id = StringField(required=True)
    relationship_id = StringField(required=True)
    author_id = StringField(required=True)
    survey_point = StringField(required=True)
    rating = IntField(required=True)
    # Free text: stays here, never in an event.
    comment = StringField(default="")
    submitted_at = DateTimeField(required=True)
    meta = {
        "collection": "feedback",
        "indexes": [
            {"fields": ["organization_id", "feedback_id"], "unique": True},
            ["organization_id", "relationship_id"],
        ],
    }


class MessageReceipt(Document):
    """That a message was exchanged, for counting it once; never its content."""

    organization_id = StringField(required=True)
    relationship_id = StringField(required=True)
    message_id = StringField(required=True)
    sender_id = StringField(required=True)
    sent_at = DateTimeField(required=True)
    meta = {
        "collection": "message_receipts",
        "indexes": [
            {"fields": ["organization_id", "relationship_id", "message_id"], "unique": True}
        ],
    }


class TrainingResource(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    resource_id = StringField(required=True)
    title = StringField(required=True)
    kind = StringField(required=True, choices=("guide", "checklist", "video"))
    url = StringField(required=True)
    audience = StringField(required=True, choices=("mentors", "mentees", "both"))
    minutes = IntField(default=0)
    created_at = DateTimeField(required=True)
    meta = {
        "collection": "training_resources",
        "indexes": [
            {"fields": ["organization_id", "resource_id"], "unique": True},
            {"fields": ["organization_id", "program_id", "url"], "unique": True},
        ],
    }


class TrainingCompletion(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    resource_id = StringField(required=True)
    participant_id = StringField(required=True)
    completed_at = DateTimeField(required=True)
    meta = {
        "collection": "training_completions",
        "indexes": [
            {
                "fields": ["organization_id", "participant_id", "resource_id"],
                "unique": True,
            }
        ],
    }


class ProgramTerms(Document):
    """A program's relationship timeframe and meeting cadence (programs.py)."""

    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    timeframe_months = IntField(default=0)
    meeting_cadence_days = IntField(default=0)
    # The program-changed version these come from.
    version = IntField(required=True)
    updated_at = DateTimeField(required=True)
    meta = {
        "collection": "program_terms",
        "indexes": [{"fields": ["organization_id", "program_id"], "unique": True}],
    }


class ProgramParticipant(Document):
    """A program's participant as engagement knows them (directory.py, leaves.py)."""

    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    participant_id = StringField(required=True)
    # "mentor" or "mentee".
    role = StringField(required=True)
    cohort_id = StringField(default="")
    withdrawn = BooleanField(default=False)
    updated_at = DateTimeField(required=True)
    # A mentor's capacity as enrollment last said; unset until their registration comes.
    capacity = IntField()
    # The ongoing relationships they hold (seats.py); `relationships_listed` is false on an
    # entry from before the list was kept, which is then read from the relationships.
    relationships = ListField(StringField())
    relationships_listed = BooleanField(default=False)
    meta = {
        "collection": "program_participants",
        "indexes": [
            {"fields": ["organization_id", "participant_id"], "unique": True},
            ["organization_id", "program_id", "cohort_id", "participant_id"],
        ],
    }


class ParticipantLeave(Document):
    """A leave of absence HR reported for a participant (directory.py), and whether it is in
    force here (leaves.py). Kept apart from the directory: the leave timer reads only these."""

    organization_id = StringField(required=True)
    participant_id = StringField(required=True)
    program_id = StringField(required=True)
    # Unset when the person's latest update reports no leave; no end = until an update sets one.
    starts_on = DateTimeField()
    ends_on = DateTimeField()
    # In force: the person's relationships were paused for it.
    on_leave = BooleanField(default=False)
    updated_at = DateTimeField(required=True)
    meta = {
        "collection": "participant_leaves",
        "indexes": [{"fields": ["organization_id", "participant_id"], "unique": True}],
    }
