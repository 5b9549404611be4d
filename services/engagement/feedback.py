"""Check-in feedback: storage operations. Blocking: call through storage.run_sync."""

from __future__ import annotations

import uuid

from services.common import clock, outbox
from services.common.errors import FailedPrecondition
from services.common.events import stable_event_id
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.engagement import convert, domain
from services.engagement.documents import Feedback
from services.engagement.store import relationship_for


def submit(
    organization_id: str,
    relationship_id: str,
    participant_id: str,
    survey_point: str,
    rating: int,
    comment: str,
) -> tuple[Feedback, list[Event]]:
    """Store an answer with feedback-submitted (outbox); return it and the event. A once-only
    check-in (day-30 …) has one answer per author: resubmitting the same answer is a retry and
    changes nothing, a different one is refused. Periodic check-ins can be answered any number
    of times."""
    relationship, side = relationship_for(organization_id, relationship_id, participant_id)
    once = survey_point != domain.PERIODIC
    feedback_id = (
        stable_event_id("feedback", organization_id, relationship_id, participant_id, survey_point)
        if once
        else str(uuid.uuid4())
    )
    doc = Feedback(
        organization_id=organization_id,
        program_id=relationship.program_id,
        feedback_id=feedback_id,
        relationship_id=relationship_id,
        author_id=participant_id,
        survey_point=survey_point,
        rating=rating,
        comment=comment,
        submitted_at=clock.now(),
    )
    if outbox.insert(doc, [convert.feedback_submitted(doc, side)]):
        return doc, [convert.feedback_submitted(doc, side)]
    existing = Feedback.objects(organization_id=organization_id, feedback_id=feedback_id).get()
    if (existing.rating, existing.comment) != (rating, comment):
        raise FailedPrecondition(f"survey_point: the {survey_point} check-in is answered already")
    return existing, [convert.feedback_submitted(existing, side)]
