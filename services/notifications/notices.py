"""Which platform events become messages to whom, with which template and values. Pure.

Values are strings and ids only: names and addresses are looked up in the contacts when the
message is sent, so an erasure in between leaves no trace of the person in what is queued.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC

from services.common.pb.mentoring.v1 import common_pb2, events_pb2
from services.notifications import preferences

NUDGE_TEMPLATES = ("no-session", "proposal-unanswered", "check-in-overdue", "ending-soon")
ANNOUNCEMENT = "announcement"
DIGEST = "daily-digest"
SESSION_TEMPLATES = {
    events_pb2.SESSION_PLAN_CHANGE_SCHEDULED: "session-scheduled",
    events_pb2.SESSION_PLAN_CHANGE_MOVED: "session-moved",
    events_pb2.SESSION_PLAN_CHANGE_CANCELLED: "session-cancelled",
}
CATEGORY: Mapping[str, str] = {
    **dict.fromkeys(NUDGE_TEMPLATES, preferences.NUDGES),
    ANNOUNCEMENT: preferences.ANNOUNCEMENTS,
    "match-proposed": preferences.MATCHES,
    "relationship-started": preferences.MATCHES,
    **dict.fromkeys(SESSION_TEMPLATES.values(), preferences.SESSIONS),
}
# The events that make messages (contacts come from the participant topics).
TOPICS = ("notification-requested", "match-proposed", "relationship-started", "session-planned")
MODES = {
    common_pb2.SESSION_MODE_VIRTUAL: "virtual",
    common_pb2.SESSION_MODE_FACE_TO_FACE: "face to face",
    common_pb2.SESSION_MODE_PHONE: "phone",
}


@dataclass(frozen=True, slots=True)
class Notice:
    """One message an event asks for: to whom, from which template, with which values."""

    participant_id: str
    template: str
    data: Mapping[str, str] = field(default_factory=dict)

    @property
    def category(self) -> str:
        return CATEGORY[self.template]


def message_id(event_id: str, participant_id: str, channel: str) -> str:
    """The same for the same event, recipient and channel: a message goes at most once."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"message/{event_id}/{participant_id}/{channel}").hex


def digest_id(organization_id: str, participant_id: str, due_key: str) -> str:
    name = f"digest/{organization_id}/{participant_id}/{due_key}"
    return uuid.uuid5(uuid.NAMESPACE_URL, name).hex


def requested_template(n: events_pb2.NotificationRequested) -> str:
    """Engagement's nudges keep their template; an announcement, whatever template name its
    coordinator gave, and anything unknown, is an announcement."""
    if n.reason == ANNOUNCEMENT:
        return ANNOUNCEMENT
    for name in (n.template, n.reason):
        if name in NUDGE_TEMPLATES:
            return name
    return ANNOUNCEMENT


def _pair(mentor: str, mentee: str, template: str, **data: str) -> list[Notice]:
    return [
        Notice(mentor, template, {**data, "other_participant_id": mentee}),
        Notice(mentee, template, {**data, "other_participant_id": mentor}),
    ]


def notices(event: events_pb2.Event) -> list[Notice]:
    kind = event.WhichOneof("payload")
    if kind == "notification_requested":
        n = event.notification_requested
        data = dict(n.data)
        for name in ("relationship_id", "match_id", "announcement_id"):
            if value := getattr(n, name):
                data[name] = value
        return [Notice(n.recipient_id, requested_template(n), data)]
    if kind == "match_proposed":
        m = event.match_proposed
        return _pair(m.mentor_id, m.mentee_id, "match-proposed", match_id=m.match_id)
    if kind == "relationship_started":
        r = event.relationship_started
        return _pair(
            r.mentor_id, r.mentee_id, "relationship-started", relationship_id=r.relationship_id
        )
    if kind == "session_planned":
        s = event.session_planned
        template = SESSION_TEMPLATES.get(s.change)
        if template is None:
            return []
        return _pair(
            s.mentor_id,
            s.mentee_id,
            template,
            session_id=s.session_id,
            relationship_id=s.relationship_id,
            mentor_id=s.mentor_id,
            mentee_id=s.mentee_id,
            starts_at=s.scheduled_at.ToDatetime(tzinfo=UTC).isoformat(),
            minutes=str(s.minutes),
            mode=MODES.get(s.mode, ""),
            topics=", ".join(s.topics),
            sequence=str(s.sequence),
            reason=s.cancel_reason,
        )
    return []
