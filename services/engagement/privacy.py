"""A person's personal data in engagement: the export, and the erasure (participant-erased).

Engagement holds no names or contact details; what it holds about a person is what they did
and wrote in the program. Erasing a participant:

- makes them leave, as a withdrawal does: open proposals expire, ongoing relationships close
  early ("withdrawn: erased", published on relationship-ended);
- erases the free text of their relationships. In a one-to-one relationship, what either member
  writes about it is about both, so this goes for both members' words: session topics and
  cancellation reasons, both members' private session notes, every check-in comment, pause and
  end reasons. The mentee's goals (title, description, milestone titles) go when the erased
  person is the mentee; a mentor's erasure leaves the mentee's own goals as they are;
- erases the message of an announcement sent to them alone.

Ids, dates, statuses, minutes, ratings, progress and counts stay: KPIs, transcripts of the other
member and relationship health are unchanged. Blocking functions run through storage.run_sync.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio

from services.common.api import engagement_pb2
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.privacy import ERASED, ERASURE_REASON, redact, require_participant_ids
from services.common.storage import run_sync
from services.common.validation import require_id
from services.engagement import domain, store
from services.engagement.announcements import Announcement
from services.engagement.convert import (
    completion_message,
    feedback_message,
    goal_message,
    relationship_message,
    session_message,
)
from services.engagement.documents import (
    Feedback,
    Goal,
    Match,
    MessageReceipt,
    Milestone,
    Relationship,
    Session,
    SessionNote,
    TrainingCompletion,
    TrainingResource,
)
from services.engagement.notifications import SentNotification
from services.engagement.servicer import EngagementServicer, match_message
from services.engagement.withdrawals import end_reason, leave

SIDES = ("mentor", "mentee", "")


def _set_time(field: Timestamp, moment: datetime | None) -> None:
    if moment is not None:
        field.FromDatetime(domain.aware(moment))


def _involving(participant_ids: list[str]) -> dict[str, object]:
    return {
        "$or": [{"mentor_id": {"$in": participant_ids}}, {"mentee_id": {"$in": participant_ids}}]
    }


def erase_participant(organization_id: str, participant_id: str) -> list[Event]:
    """Erase one participant (idempotent). Returns the relationship-ended events to publish:
    those this erasure closed, now or before (a redelivery republishes them, same ids)."""
    org = organization_id
    left = end_reason(ERASURE_REASON)
    ended = leave(org, participant_id, left)
    relationships = list(
        Relationship.objects(organization_id=org).filter(__raw__=_involving([participant_id]))
    )
    relationship_ids = [r.relationship_id for r in relationships]
    for r in relationships:
        Relationship.objects(pk=r.pk).update_one(
            set__end_reason=redact(r.end_reason or "", keep={left}),
            set__pause_reason=redact(r.pause_reason or ""),
        )
    sessions = Session.objects(organization_id=org, relationship_id__in=relationship_ids)
    session_ids = [s.session_id for s in sessions.only("session_id")]
    sessions.update(set__topics=[])
    for s in Session.objects(organization_id=org, relationship_id__in=relationship_ids):
        if s.cancel_reason:
            Session.objects(pk=s.pk).update_one(set__cancel_reason=ERASED)
    SessionNote.objects(organization_id=org, session_id__in=session_ids).delete()
    Feedback.objects(organization_id=org, relationship_id__in=relationship_ids).update(
        set__comment=""
    )
    for goal in Goal.objects(organization_id=org, mentee_id=participant_id):
        # Not conditional on the version, and the version stays: no goal-updated is owed.
        Goal.objects(pk=goal.pk).update_one(
            set__title=ERASED,
            set__description="",
            set__milestones=[
                Milestone(milestone_id=m.milestone_id, title=ERASED, due_at=m.due_at, done=m.done)
                for m in goal.milestones
            ],
        )
    Announcement.objects(organization_id=org, participant_id=participant_id).update(
        set__message=ERASED
    )
    return ended


def export(
    organization_id: str, participant_ids: list[str]
) -> engagement_pb2.EngagementPersonalData:
    org = organization_id
    out = engagement_pb2.EngagementPersonalData(organization_id=org)
    involving = _involving(participant_ids)
    for m in Match.objects(organization_id=org).filter(__raw__=involving).order_by("match_id"):
        out.matches.append(match_message(m))
    relationships = list(
        Relationship.objects(organization_id=org)
        .filter(__raw__=involving)
        .order_by("relationship_id")
    )
    for r in relationships:
        out.relationships.append(relationship_message(r, store.expected_end(r)))
    sessions = list(
        Session.objects(
            organization_id=org, relationship_id__in=[r.relationship_id for r in relationships]
        ).order_by("relationship_id", "session_id")
    )
    notes = {
        n.session_id: n.text
        for n in SessionNote.objects(
            organization_id=org,
            author_id__in=participant_ids,
            session_id__in=[s.session_id for s in sessions],
        )
    }
    for s in sessions:
        out.sessions.append(session_message(s, notes.get(s.session_id, "")))
    for g in Goal.objects(organization_id=org, mentee_id__in=participant_ids).order_by("goal_id"):
        out.goals.append(goal_message(g))
    for f in Feedback.objects(organization_id=org, author_id__in=participant_ids).order_by(
        "feedback_id"
    ):
        out.feedback.append(feedback_message(f))
    for receipt in MessageReceipt.objects(
        organization_id=org, sender_id__in=participant_ids
    ).order_by("sent_at", "message_id"):
        sent = out.messages.add(
            relationship_id=receipt.relationship_id,
            message_id=receipt.message_id,
            sender_id=receipt.sender_id,
        )
        _set_time(sent.sent_at, receipt.sent_at)
    completions = list(
        TrainingCompletion.objects(organization_id=org, participant_id__in=participant_ids)
    )
    resources = {
        r.resource_id: r
        for r in TrainingResource.objects(
            organization_id=org, resource_id__in=[c.resource_id for c in completions]
        )
    }
    for c in sorted(completions, key=lambda c: (c.completed_at, c.resource_id)):
        if c.resource_id in resources:
            out.training.append(completion_message(c, resources[c.resource_id]))
    for n in SentNotification.objects(
        organization_id=org, recipient_id__in=participant_ids
    ).order_by("sent_at", "notification_id"):
        record = out.notifications.add(
            program_id=n.program_id,
            notification_id=n.notification_id,
            recipient_id=n.recipient_id,
            reason=n.reason,
            subject=n.subject or "",
        )
        _set_time(record.sent_at, n.sent_at)
    recipients = [f"{pid}:{side}" for pid in participant_ids for side in SIDES]
    for a in Announcement.objects(organization_id=org, recipients__in=recipients).order_by(
        "created_at", "announcement_id"
    ):
        for entry in a.recipients:
            recipient = str(entry).rpartition(":")[0]
            if recipient in participant_ids:
                record = out.notifications.add(
                    program_id=a.program_id,
                    recipient_id=recipient,
                    reason="announcement",
                    announcement_id=a.announcement_id,
                    message=a.message,
                )
                _set_time(record.sent_at, a.created_at)
    return out


class PersonalDataServicer(EngagementServicer):
    """EngagementService whole: the RPCs of EngagementServicer, and the personal-data export,
    kept here beside the erasure rules."""

    async def ExportPersonalData(
        self,
        request: engagement_pb2.ExportEngagementPersonalDataRequest,
        context: aio.ServicerContext,
    ) -> engagement_pb2.EngagementPersonalData:
        org = require_id("organization_id", request.organization_id)
        ids = require_participant_ids(list(request.participant_ids))
        return await run_sync(export, org, ids)
