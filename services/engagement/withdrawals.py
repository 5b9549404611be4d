"""A participant withdrew from the program (participant-withdrawn): their ongoing relationships
close early (their planned sessions cancelled), and the proposals still waiting for an answer
expire, so nobody answers them.
Blocking (storage): call through storage.run_sync."""

from __future__ import annotations

import functools

from services.common import clock, storage
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import Transaction
from services.engagement import domain, ending, seats
from services.engagement.convert import relationship_ended_event
from services.engagement.documents import Match, Relationship


def end_reason(withdrawal_reason: str) -> str:
    """What the relationship's ending says: `withdrawn: <reason>`, within the reason limit."""
    reason = withdrawal_reason.strip()
    return (f"withdrawn: {reason}" if reason else "withdrawn")[: domain.MAX_REASON]


def _involving(participant_id: str) -> dict[str, object]:
    return {"$or": [{"mentor_id": participant_id}, {"mentee_id": participant_id}]}


def apply_withdrawal(event: Event) -> list[Event]:
    """Close the participant's ongoing relationships and expire their open proposals. Returns
    the relationship-ended events to publish, each followed by the session-planned events of
    the sessions it cancelled: those closed now, and those this withdrawal closed before (a
    redelivery after a crash republishes them under the same ids)."""
    gone = event.participant_withdrawn
    return leave(event.envelope.organization_id, gone.participant_id, end_reason(gone.reason))


def leave(org: str, participant_id: str, reason: str) -> list[Event]:
    """A participant left (withdrawn or erased): what apply_withdrawal does, with the end
    reason given."""
    Match.objects(organization_id=org, status=domain.PROPOSED).filter(
        __raw__=_involving(participant_id)
    ).update(set__status=domain.EXPIRED)
    ongoing = Relationship.objects(organization_id=org, status__in=domain.ONGOING).filter(
        __raw__=_involving(participant_id)
    )
    for relationship in list(ongoing):
        storage.atomic(
            functools.partial(
                _close, relationship=relationship, reason=reason, participant_id=participant_id
            )
        )
    closed = Relationship.objects(
        organization_id=org, status=domain.CLOSED_EARLY, end_reason=reason
    ).filter(__raw__=_involving(participant_id))
    return [
        event
        for r in closed.order_by("relationship_id")
        for event in (relationship_ended_event(r), *ending.cancelled_with(r))
    ]


def _close(
    tx: Transaction, *, relationship: Relationship, reason: str, participant_id: str
) -> None:
    """Close it early, free its seats and cancel its planned sessions. Conditional on the
    status read: a pair ending it at the same moment wins or loses whole, never both."""
    if tx.update(
        Relationship,
        {"pk": relationship.pk, "status": relationship.status},
        set__status=domain.CLOSED_EARLY,
        set__end_reason=reason,
        set__ended_at=clock.now(),
    ):
        seats.release(tx, relationship)
        ending.cancel_planned(tx, relationship, participant_id)
