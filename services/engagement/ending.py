"""The sessions a relationship's end leaves planned: cancelled with it, each with the
session-planned that tells calendars to drop it. Blocking (storage): call through
storage.run_sync, or inside the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime

from services.common import clock
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import Transaction
from services.engagement import convert, domain
from services.engagement.documents import Relationship, Session

# The cancellation reason of the sessions an ending cancels: how they are found again.
RELATIONSHIP_ENDED = "the relationship ended"


def plan_time() -> datetime:
    """Now as the database keeps it (milliseconds): an event built before storing and one
    rebuilt from the stored session agree."""
    now = clock.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def cancel_planned(tx: Transaction, relationship: Relationship, changed_by: str) -> list[Event]:
    """Cancel the relationship's scheduled sessions in the caller's transaction, one sequence
    up each; their session-planned events."""
    cancelled = []
    for session in tx.find_all(
        Session,
        organization_id=relationship.organization_id,
        relationship_id=relationship.relationship_id,
        status=domain.SCHEDULED,
    ):
        if tx.update(
            Session,
            {"pk": session.pk, "status": domain.SCHEDULED},
            set__status=domain.CANCELLED,
            set__cancel_reason=RELATIONSHIP_ENDED,
            set__plan_sequence=(session.plan_sequence or 0) + 1,
            set__changed_by=changed_by,
            set__changed_at=plan_time(),
        ):
            cancelled.append(convert.session_planned(tx.find(Session, pk=session.pk), relationship))
    return cancelled


def cancelled_with(relationship: Relationship) -> list[Event]:
    """The session-planned events of the sessions the relationship's end cancelled, rebuilt
    from the store (same ids), for a caller that publishes after committing."""
    sessions = Session.objects(
        organization_id=relationship.organization_id,
        relationship_id=relationship.relationship_id,
        status=domain.CANCELLED,
        cancel_reason=RELATIONSHIP_ENDED,
    ).order_by("session_id")
    return [convert.session_planned(s, relationship) for s in sessions]
