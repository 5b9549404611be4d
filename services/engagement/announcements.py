"""Coordinator announcements: one `notification-requested` per recipient.

Recipients are the participants engagement knows in the program: the mentors and mentees of
its matches (whatever their status). Engagement does not hold registrations, so a participant
with no match yet, and cohort membership, are unknown here: such people are reached only by
naming them (participant_id). Withdrawn participants are not known either: the notification
service is the place that drops them.

The announcement is stored under the caller's announcement_id with its recipients, so a repeat
fans out to the same people with the same event ids (consumers drop the copies) even if the
program gained participants since. Blocking functions here run through storage.run_sync.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mongoengine import DateTimeField, Document, ListField, StringField
from mongoengine.errors import NotUniqueError

from services.common import clock
from services.common.api import events_pb2
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from services.common.events import stable_event_id
from services.engagement import nudges
from services.engagement.documents import Match
from services.engagement.notifications import notification_event

DEFAULT_TEMPLATE = "announcement"
MAX_MESSAGE = 2000
_TEMPLATE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


@dataclass(frozen=True, slots=True)
class AnnouncementRequest:
    organization_id: str
    program_id: str
    announcement_id: str
    participant_id: str
    template: str
    message: str


def validate(*, cohort_id: str, template: str, message: str) -> tuple[str, str]:
    """Check what a coordinator announces; return the template and message. Pure."""
    if cohort_id:
        raise InvalidArgument(
            "cohort_id",
            "engagement does not know cohort membership yet: announce to the program or name "
            "a participant",
        )
    chosen = template.strip() or DEFAULT_TEMPLATE
    if not _TEMPLATE.match(chosen):
        raise InvalidArgument("template", "must be 1-64 lower-case letters, digits or hyphens")
    text = message.strip()
    if not text:
        raise InvalidArgument("message", "is required")
    if len(text) > MAX_MESSAGE:
        raise InvalidArgument("message", f"must be at most {MAX_MESSAGE} characters")
    return chosen, text


class Announcement(Document):
    organization_id = StringField(required=True)
    announcement_id = StringField(required=True)
    program_id = StringField(required=True)
    participant_id = StringField(default="")
    template = StringField(required=True)
    message = StringField(required=True)
    # "participant id:side" (side "mentor", "mentee" or "" when unknown), in order.
    recipients = ListField(StringField())
    created_at = DateTimeField(required=True)
    meta = {
        "collection": "announcements",
        "indexes": [{"fields": ["organization_id", "announcement_id"], "unique": True}],
    }


def known_participants(organization_id: str, program_id: str) -> dict[str, str]:
    """Participant id -> side, from the program's matches, in id order."""
    sides: dict[str, str] = {}
    for m in Match.objects(organization_id=organization_id, program_id=program_id).only(
        "mentor_id", "mentee_id"
    ):
        sides.setdefault(m.mentor_id, nudges.MENTOR)
        sides.setdefault(m.mentee_id, nudges.MENTEE)
    return dict(sorted(sides.items()))


def _same(doc: Announcement, request: AnnouncementRequest) -> bool:
    return (doc.program_id, doc.participant_id, doc.template, doc.message) == (
        request.program_id,
        request.participant_id,
        request.template,
        request.message,
    )


def announce(request: AnnouncementRequest) -> tuple[Announcement, bool]:
    """Store the announcement with its recipients; return it and whether this call created
    it. A repeat with the same content returns the stored one; different content under the
    same announcement_id is refused (ALREADY_EXISTS)."""
    org = request.organization_id
    existing = Announcement.objects(
        organization_id=org, announcement_id=request.announcement_id
    ).first()
    if existing is not None:
        if not _same(existing, request):
            raise AlreadyExists("announcement_id: used already for a different announcement")
        return existing, False
    known = known_participants(org, request.program_id)
    if request.participant_id:
        recipients = {request.participant_id: known.get(request.participant_id, "")}
    else:
        recipients = known
    if not recipients:
        raise FailedPrecondition(
            "program_id: engagement knows no participants in this program yet (none matched)"
        )
    doc = Announcement(
        organization_id=org,
        announcement_id=request.announcement_id,
        program_id=request.program_id,
        participant_id=request.participant_id,
        template=request.template,
        message=request.message,
        recipients=[f"{pid}:{side}" for pid, side in recipients.items()],
        created_at=clock.now(),
    )
    try:
        doc.save(force_insert=True)
    except NotUniqueError:
        return announce(request)  # a concurrent identical request won: answer as a repeat
    return doc, True


def recipients_of(doc: Announcement) -> list[tuple[str, str]]:
    """(participant id, side); ids may hold ":", sides never do."""
    pairs = []
    for entry in doc.recipients:
        participant_id, _, side = str(entry).rpartition(":")
        pairs.append((participant_id, side))
    return pairs


def events(doc: Announcement) -> list[events_pb2.Event]:
    return [
        notification_event(
            organization_id=doc.organization_id,
            program_id=doc.program_id,
            notification_id=stable_event_id(
                "notification-requested",
                doc.organization_id,
                nudges.ANNOUNCEMENT,
                doc.announcement_id,
                recipient,
            ),
            recipient_id=recipient,
            recipient_side=side,
            template=doc.template,
            reason=nudges.ANNOUNCEMENT,
            data={"message": doc.message},
            announcement_id=doc.announcement_id,
        )
        for recipient, side in recipients_of(doc)
    ]
