"""Planned sessions: scheduling, moving and cancelling one, each in one transaction with the
session-planned that reports it (staged in the outbox). Blocking: call through
storage.run_sync.

Every change raises the session's plan sequence by one and its event's id derives from the
session and that sequence: a retry (which changes nothing) rebuilds the same event, and
publishes it only if the first call could not (_latest). Calendars take the highest sequence
as the plan.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.common import idempotency, outbox
from services.common.errors import FailedPrecondition
from services.common.events import scoped_id
from services.common.outbox import OutboxEntry
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import Transaction
from services.engagement import convert, domain
from services.engagement.documents import Relationship, Session
from services.engagement.ending import plan_time
from services.engagement.store import NO_REQUEST_ID, ClientRequest, relationship_for, session_for


def _latest(session: Session, relationship: Relationship) -> list[Event]:
    """For a retry (which changes nothing): the event of the session's latest plan change while
    it is still unsent (the first call's publish failed), to deliver it now; nothing once it
    went out, so that a retry publishes nothing twice. Nothing once the session is held either:
    holding changed the length the event reports."""
    if session.status == domain.HELD:
        return []
    event = convert.session_planned(session, relationship)
    if OutboxEntry.objects(key=scoped_id(event), sent=False).first() is None:
        return []
    return [event]


def schedule_session(
    organization_id: str,
    relationship_id: str,
    participant_id: str,
    scheduled_at: datetime,
    minutes: int,
    mode: str,
    topics: list[str],
    request: ClientRequest = NO_REQUEST_ID,
    changed_by: str = "",
) -> tuple[Session, list[Event]]:
    """Plan a session (sequence 0). With a request id, a retry returns the first call's session.
    `changed_by`: who acts, when not `participant_id` (a coordinator acting for them)."""
    relationship, _ = relationship_for(organization_id, relationship_id, participant_id)
    session_id = idempotency.result_id(
        organization_id, request.request_id, "ScheduleSession", request.fingerprint
    )
    existing = Session.objects(organization_id=organization_id, session_id=session_id).first()
    if existing is not None:
        return existing, _latest(existing, relationship)
    if relationship.status != domain.ACTIVE:
        raise FailedPrecondition(f"relationship_id: the relationship is {relationship.status}")
    session = Session(
        organization_id=organization_id,
        program_id=relationship.program_id,
        session_id=session_id,
        relationship_id=relationship_id,
        minutes=minutes,
        mode=mode,
        status=domain.SCHEDULED,
        scheduled_at=scheduled_at,
        scheduled_by=participant_id,
        topics=topics,
        plan_sequence=0,
        changed_by=changed_by or participant_id,
        changed_at=plan_time(),
    )

    def plan(tx: Transaction) -> tuple[Session, list[Event]]:
        tx.insert(session)
        return session, [convert.session_planned(session, relationship)]

    try:
        return outbox.commit(plan)
    except DuplicateKeyError:  # a concurrent retry stored it first
        stored = Session.objects.get(organization_id=organization_id, session_id=session_id)
        return stored, _latest(stored, relationship)


def reschedule_session(
    organization_id: str,
    session_id: str,
    participant_id: str,
    scheduled_at: datetime,
    minutes: int,
    request: ClientRequest = NO_REQUEST_ID,
    changed_by: str = "",
) -> tuple[Session, list[Event]]:
    """Move a scheduled session (minutes 0: same length), one sequence up. A retry with the same
    request id, or a move to the time and length it has, changes nothing."""
    session, relationship = session_for(organization_id, session_id, participant_id)
    # As stored (milliseconds), so that moving it to the time it has is seen as such.
    scheduled_at = scheduled_at.replace(microsecond=scheduled_at.microsecond // 1000 * 1000)
    move_id = (
        idempotency.claim_request(
            organization_id, request.request_id, "RescheduleSession", request.fingerprint
        )
        if request.request_id
        else ""
    )

    def move(tx: Transaction) -> tuple[Session, list[Event]]:
        current: Session = tx.find(Session, pk=session.pk)
        length = minutes or current.minutes
        if move_id in (current.move_ids or []) or (
            current.status == domain.SCHEDULED
            and domain.aware(current.scheduled_at) == scheduled_at
            and current.minutes == length
        ):
            return current, _latest(current, relationship)
        domain.move(session_status=current.status, relationship_status=relationship.status)
        sequence = (current.plan_sequence or 0) + 1
        changes: dict[str, Any] = {
            "set__scheduled_at": scheduled_at,
            "set__minutes": length,
            "set__plan_sequence": sequence,
            "set__changed_by": changed_by or participant_id,
            "set__changed_at": plan_time(),
        }
        if move_id:
            changes["push__move_ids"] = move_id
        # Conditional on the state read: without transactions (unit tests) this keeps two
        # changes from taking the same sequence.
        moved = tx.update(
            Session,
            {"pk": current.pk, "status": domain.SCHEDULED, "scheduled_at": current.scheduled_at},
            **changes,
        )
        if not moved:
            raise FailedPrecondition("session_id: the session is changing; try again")
        current = tx.find(Session, pk=session.pk)
        return current, [convert.session_planned(current, relationship)]

    return outbox.commit(move)


def cancel_session(
    organization_id: str,
    session_id: str,
    participant_id: str,
    reason: str,
    changed_by: str = "",
) -> tuple[Session, list[Event]]:
    """Scheduled -> cancelled, one sequence up. Cancelling again changes nothing; a held
    session cannot be cancelled."""
    session, relationship = session_for(organization_id, session_id, participant_id)

    def cancel(tx: Transaction) -> tuple[Session, list[Event]]:
        current: Session = tx.find(Session, pk=session.pk)
        if not domain.cancel(current.status).changed:
            return current, _latest(current, relationship)
        cancelled = tx.update(
            Session,
            {"pk": current.pk, "status": domain.SCHEDULED},
            set__status=domain.CANCELLED,
            set__cancel_reason=reason,
            set__plan_sequence=(current.plan_sequence or 0) + 1,
            set__changed_by=changed_by or participant_id,
            set__changed_at=plan_time(),
        )
        current = tx.find(Session, pk=session.pk)
        if cancelled:
            return current, [convert.session_planned(current, relationship)]
        if current.status != domain.CANCELLED:  # held meanwhile
            raise FailedPrecondition(f"session_id: the session is {current.status}")
        return current, _latest(current, relationship)  # cancelled meanwhile, by another call

    return outbox.commit(cancel)
