"""Engagement's storage operations. Blocking: call through storage.run_sync."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from mongoengine.errors import NotUniqueError

from services.common import clock, idempotency
from services.common.errors import FailedPrecondition, NotFound, PermissionDenied
from services.common.events import stable_event_id
from services.common.pb.mentoring.v1.common_pb2 import (
    MATCH_ORIGIN_COORDINATOR,
    MATCH_ORIGIN_ENGINE,
    MATCH_ORIGIN_MENTEE_REQUEST,
)
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.engagement import domain
from services.engagement.documents import Match, Relationship, Session

GROUP = "engagement"
ORIGIN_NAMES = {
    MATCH_ORIGIN_ENGINE: "engine",
    MATCH_ORIGIN_MENTEE_REQUEST: "mentee_request",
    MATCH_ORIGIN_COORDINATOR: "coordinator",
}


def record_proposals(events: list[Event]) -> None:
    """Store proposed matches and expiries; a redelivered event is ignored."""
    fresh = idempotency.unprocessed(events, GROUP)
    for event in fresh:
        env = event.envelope
        if event.HasField("match_expired"):
            Match.objects(
                organization_id=env.organization_id,
                match_id=event.match_expired.match_id,
                status=domain.PROPOSED,
            ).update_one(set__status=domain.EXPIRED)
            continue
        proposed = event.match_proposed
        # A mentee who asked for this mentor has accepted by asking.
        requested = proposed.origin == MATCH_ORIGIN_MENTEE_REQUEST
        Match.objects(organization_id=env.organization_id, match_id=proposed.match_id).update_one(
            upsert=True,
            set_on_insert__program_id=env.program_id,
            set_on_insert__mentor_id=proposed.mentor_id,
            set_on_insert__mentee_id=proposed.mentee_id,
            set_on_insert__score=proposed.score,
            set_on_insert__status=domain.PROPOSED,
            set_on_insert__mentor_decision=domain.NONE,
            set_on_insert__mentee_decision=domain.ACCEPT if requested else domain.NONE,
            set_on_insert__origin=ORIGIN_NAMES.get(proposed.origin, "engine"),
            set_on_insert__proposed_at=env.occurred_at.ToDatetime(UTC),
        )
    idempotency.mark_processed(fresh, GROUP)


def get_match(organization_id: str, match_id: str) -> Match:
    match = Match.objects(organization_id=organization_id, match_id=match_id).first()
    if match is None:
        raise NotFound(f"match_id: no match {match_id!r}")
    return match


def list_matches(
    organization_id: str, program_id: str, participant_id: str, size: int, after: str | None
) -> list[Match]:
    query = Match.objects(organization_id=organization_id, program_id=program_id)
    if participant_id:
        query = query.filter(
            __raw__={"$or": [{"mentor_id": participant_id}, {"mentee_id": participant_id}]}
        )
    if after:
        query = query.filter(match_id__gt=after)
    return list(query.order_by("match_id").limit(size))


def respond(
    organization_id: str, match_id: str, participant_id: str, decision: str
) -> tuple[Match, bool]:
    """Record one side's answer atomically; return the match and whether it changed.

    The update is conditional on the state the decision was computed from, so two answers
    arriving at once cannot both win: the loser recomputes from the fresh state.
    """
    for _ in range(5):
        match = get_match(organization_id, match_id)
        if participant_id == match.mentor_id:
            side = "mentor"
        elif participant_id == match.mentee_id:
            side = "mentee"
        else:
            raise PermissionDenied("participant_id: not the mentor or the mentee of this match")
        outcome = domain.respond(
            status=match.status,
            mentor_decision=match.mentor_decision,
            mentee_decision=match.mentee_decision,
            side=side,
            decision=decision,
        )
        if not outcome.changed:
            return match, False
        relationship_id = (
            stable_event_id("relationship", organization_id, match_id)
            if outcome.status == domain.ACCEPTED
            else ""
        )
        updated = Match.objects(
            pk=match.pk,
            status=match.status,
            mentor_decision=match.mentor_decision,
            mentee_decision=match.mentee_decision,
        ).update_one(
            set__mentor_decision=outcome.mentor_decision,
            set__mentee_decision=outcome.mentee_decision,
            set__status=outcome.status,
            set__relationship_id=relationship_id,
        )
        if updated:
            match.reload()
            if relationship_id:
                _start_relationship(match)
            return match, True
    raise FailedPrecondition("match_id: the match is changing too fast; try again")


def _start_relationship(match: Match) -> None:
    try:
        Relationship(
            organization_id=match.organization_id,
            program_id=match.program_id,
            relationship_id=match.relationship_id,
            match_id=match.match_id,
            mentor_id=match.mentor_id,
            mentee_id=match.mentee_id,
            started_at=clock.now(),
        ).save(force_insert=True)
    except NotUniqueError:
        pass  # a retry after a crash between the two writes


def get_relationship(organization_id: str, relationship_id: str) -> Relationship:
    doc = Relationship.objects(
        organization_id=organization_id, relationship_id=relationship_id
    ).first()
    if doc is None:
        raise NotFound(f"relationship_id: no relationship {relationship_id!r}")
    return doc


def log_session(
    organization_id: str, relationship_id: str, held_at: datetime, minutes: int, mode: str
) -> Session:
    relationship = get_relationship(organization_id, relationship_id)
    if relationship.status != "active":
        raise FailedPrecondition(f"relationship_id: the relationship is {relationship.status}")
    session = Session(
        organization_id=organization_id,
        program_id=relationship.program_id,
        session_id=str(uuid.uuid4()),
        relationship_id=relationship_id,
        held_at=held_at,
        minutes=minutes,
        mode=mode,
        logged_at=clock.now(),
    ).save(force_insert=True)
    Relationship.objects(pk=relationship.pk).update_one(inc__sessions=1, inc__minutes=minutes)
    return session


def end_relationship(
    organization_id: str,
    relationship_id: str,
    participant_id: str,
    completed: bool,
    reason: str,
    not_a_good_fit: bool,
) -> tuple[Relationship, bool]:
    """End it once: returns the relationship and whether this call ended it (a retry of the
    same ending returns it unchanged)."""
    relationship = get_relationship(organization_id, relationship_id)
    if participant_id not in (relationship.mentor_id, relationship.mentee_id):
        raise PermissionDenied("participant_id: not the mentor or the mentee of this relationship")
    wanted = domain.COMPLETED if completed else domain.CLOSED_EARLY
    if relationship.status == wanted and relationship.end_reason == reason.strip():
        return relationship, False
    status = domain.end_status(
        current=relationship.status,
        completed=completed,
        reason=reason,
        not_a_good_fit=not_a_good_fit,
    )
    changed = Relationship.objects(pk=relationship.pk, status=domain.ACTIVE).update_one(
        set__status=status, set__end_reason=reason.strip(), set__ended_at=clock.now()
    )
    relationship.reload()
    if not changed:
        raise FailedPrecondition(
            f"relationship_id: the relationship is already {relationship.status}"
        )
    return relationship, True
