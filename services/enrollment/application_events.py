"""Events about applications themselves, which sign-up figures count before any screening.

Their ids derive from the registration's stored event id, so a retried request republishes
the same event and consumers drop the copy.
"""

from __future__ import annotations

import uuid

from services.common.api import common_pb2, events_pb2
from services.common.events import new_event
from services.enrollment import domain
from services.enrollment.documents import Participant

ROLES = {domain.MENTOR: common_pb2.ROLE_MENTOR, domain.MENTEE: common_pb2.ROLE_MENTEE}
DECISIONS = {
    domain.REGISTERED: events_pb2.SCREENING_DECISION_APPROVED,
    domain.REJECTED: events_pb2.SCREENING_DECISION_REJECTED,
    domain.WAITLISTED: events_pb2.SCREENING_DECISION_WAITLISTED,
}


def _derived_id(doc: Participant, what: str) -> str:
    return str(uuid.uuid5(uuid.UUID(doc.event_id), what))


def _cohort(doc: Participant) -> str:
    return common_pb2.Profile.FromString(doc.profile or b"").cohort_id


def application_submitted_event(doc: Participant) -> events_pb2.Event:
    return new_event(
        producer="enrollment",
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        event_id=_derived_id(doc, "application-submitted"),
        occurred_at=doc.registered_at,
        payload=events_pb2.ApplicationSubmitted(
            participant_id=doc.participant_id,
            role=ROLES[doc.role],
            campaign=doc.campaign or "",
            cohort_id=_cohort(doc),
        ),
    )


def application_screened_event(doc: Participant) -> events_pb2.Event | None:
    """The screening decision the participant's status records, if it is one."""
    decision = DECISIONS.get(doc.status or domain.REGISTERED)
    if decision is None:
        return None
    return new_event(
        producer="enrollment",
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        event_id=_derived_id(doc, f"application-screened:{doc.status}"),
        occurred_at=doc.status_changed_at or doc.registered_at,
        payload=events_pb2.ApplicationScreened(
            participant_id=doc.participant_id,
            role=ROLES[doc.role],
            decision=decision,
        ),
    )
