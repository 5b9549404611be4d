"""Coordinator announcements: one `notification-requested` per recipient.

Recipients are the program's participants who have not withdrawn: those in engagement's
directory (directory.py, from enrollment's participant events) and, for people registered
before the directory existed, the mentors and mentees of the program's matches. A coordinator
narrows them to a cohort (the directory's cohort ids), a side (mentors or mentees) or the
unmatched (in no active or paused relationship), or names one participant.

The announcement is stored under the caller's announcement_id with its recipients, so a repeat
fans out to the same people with the same event ids (consumers drop the copies) even if the
program gained participants since. Blocking functions here run through storage.run_sync.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mongoengine import BooleanField, DateTimeField, Document, ListField, StringField

from services.common import clock, outbox
from services.common.api import events_pb2
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from services.common.events import stable_event_id
from services.common.validation import require_id
from services.engagement import directory, domain, nudges
from services.engagement.documents import Match, Relationship
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
    # Narrow the program's participants: one cohort, "mentor" or "mentee", the unmatched.
    cohort_id: str = ""
    role: str = ""
    unmatched: bool = False


def validate_audience(*, participant_id: str, cohort_id: str, role: str, unmatched: bool) -> None:
    """Check who an announcement is for. Pure."""
    if participant_id:
        require_id("participant_id", participant_id)
        if cohort_id or role or unmatched:
            raise InvalidArgument(
                "participant_id", "names one participant: leave cohort_id, role and unmatched unset"
            )
    if cohort_id:
        require_id("cohort_id", cohort_id)
    if role not in ("", nudges.MENTOR, nudges.MENTEE):
        raise InvalidArgument("role", "must be mentor, mentee or unspecified")


def validate(*, template: str, message: str) -> tuple[str, str]:
    """Check what a coordinator announces; return the template and message. Pure."""
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
    cohort_id = StringField(default="")
    role = StringField(default="")
    unmatched = BooleanField(default=False)
    template = StringField(required=True)
    message = StringField(required=True)
    # "participant id:side" (side "mentor", "mentee" or "" when unknown), in order.
    recipients = ListField(StringField())
    created_at = DateTimeField(required=True)
    meta = {
        "collection": "announcements",
        "indexes": [{"fields": ["organization_id", "announcement_id"], "unique": True}],
    }


@dataclass(frozen=True, slots=True)
class Known:
    side: str
    cohort_id: str = ""
    # Whether the directory knows the cohort (people known only from matches: it does not).
    listed: bool = False


def known_participants(organization_id: str, program_id: str) -> dict[str, Known]:
    """Participant id -> what engagement knows of them, for the program's participants who
    have not withdrawn, in id order: the directory, and the people of the program's matches
    (who may predate it)."""
    known: dict[str, Known] = {}
    gone: set[str] = set()
    for entry in directory.members(organization_id, program_id):
        if entry.withdrawn:
            gone.add(entry.participant_id)
        else:
            known[entry.participant_id] = Known(entry.role, entry.cohort_id or "", listed=True)
    for m in Match.objects(organization_id=organization_id, program_id=program_id).only(
        "mentor_id", "mentee_id"
    ):
        for pid, side in ((m.mentor_id, nudges.MENTOR), (m.mentee_id, nudges.MENTEE)):
            if pid not in gone:
                known.setdefault(pid, Known(side))
    return dict(sorted(known.items()))


def matched_participants(organization_id: str, program_id: str) -> set[str]:
    """Members of the program's active or paused relationships."""
    matched: set[str] = set()
    for r in Relationship.objects(
        organization_id=organization_id, program_id=program_id, status__in=domain.ONGOING
    ).only("mentor_id", "mentee_id"):
        matched.update((r.mentor_id, r.mentee_id))
    return matched


def audience(request: AnnouncementRequest) -> dict[str, str]:
    """Recipient id -> side ("" when unknown) for an announcement."""
    org, program_id = request.organization_id, request.program_id
    if request.participant_id:
        entry = directory.get(org, request.participant_id)
        if entry is not None and entry.program_id != program_id:
            raise FailedPrecondition("participant_id: not a participant of this program")
        if entry is not None and entry.withdrawn:
            raise FailedPrecondition("participant_id: withdrew from the program")
        known = known_participants(org, program_id).get(request.participant_id)
        return {request.participant_id: known.side if known else ""}
    people = known_participants(org, program_id)
    if request.cohort_id:
        people = {
            pid: k for pid, k in people.items() if k.listed and k.cohort_id == request.cohort_id
        }
    if request.role:
        people = {pid: k for pid, k in people.items() if k.side == request.role}
    if request.unmatched:
        matched = matched_participants(org, program_id)
        people = {pid: k for pid, k in people.items() if pid not in matched}
    return {pid: k.side for pid, k in people.items()}


def _same(doc: Announcement, request: AnnouncementRequest) -> bool:
    stored = (
        doc.program_id,
        doc.participant_id,
        doc.cohort_id or "",
        doc.role or "",
        bool(doc.unmatched),
        doc.template,
        doc.message,
    )
    return stored == (
        request.program_id,
        request.participant_id,
        request.cohort_id,
        request.role,
        request.unmatched,
        request.template,
        request.message,
    )


def announce(
    request: AnnouncementRequest,
) -> tuple[Announcement, bool, list[events_pb2.Event]]:
    """Store the announcement with its recipients and stage a notification-requested per
    recipient (outbox), in one transaction; return it, whether this call created it and the
    events to deliver. A repeat with the same content returns the stored one and its events
    (same ids); different content under the same announcement_id is refused (ALREADY_EXISTS)."""
    org = request.organization_id
    existing = Announcement.objects(
        organization_id=org, announcement_id=request.announcement_id
    ).first()
    if existing is not None:
        if not _same(existing, request):
            raise AlreadyExists("announcement_id: used already for a different announcement")
        return existing, False, events(existing)
    recipients = audience(request)
    if not recipients:
        raise FailedPrecondition(
            "program_id: no participant of this program fits (none known yet, or all filtered "
            "out by cohort_id, role or unmatched)"
        )
    doc = Announcement(
        organization_id=org,
        announcement_id=request.announcement_id,
        program_id=request.program_id,
        participant_id=request.participant_id,
        cohort_id=request.cohort_id,
        role=request.role,
        unmatched=request.unmatched,
        template=request.template,
        message=request.message,
        recipients=[f"{pid}:{side}" for pid, side in recipients.items()],
        created_at=clock.now(),
    )
    if not outbox.insert(doc, events(doc)):
        return announce(request)  # a concurrent identical request won: answer as a repeat
    return doc, True, events(doc)


def recipients_of(doc: Announcement) -> list[tuple[str, str]]:
    """(participant id, side); ids may hold ":", sides never do."""
    pairs = []
    for entry in doc.recipients:
        participant_id, _, side = str(entry).rpartition(":")
        pairs.append((participant_id, side))
    return pairs


def audience_kind(doc: Announcement) -> str:
    """Who an announcement was for, in a word a channel can act on: a team channel gets what
    went to a group, never what a coordinator wrote to one person."""
    if doc.participant_id:
        return "participant"
    return "cohort" if doc.cohort_id else "program"


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
            data={"message": doc.message, "audience": audience_kind(doc)},
            announcement_id=doc.announcement_id,
        )
        for recipient, side in recipients_of(doc)
    ]
