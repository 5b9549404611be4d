"""Engagement's storage operations. Blocking: call through storage.run_sync."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from mongoengine.errors import NotUniqueError

from services.common import clock, idempotency
from services.common.errors import FailedPrecondition, NotFound, PermissionDenied
from services.common.events import stable_event_id
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.engagement import domain
from services.engagement.documents import Match, Relationship, Session

GROUP = "engagement"


def record_proposals(events: list[Event]) -> None:
    """Store proposed matches; a redelivered proposal is ignored."""
    fresh = idempotency.unprocessed(events, GROUP)
    for event in fresh:
        env, proposed = event.envelope, event.match_proposed
        Match.objects(organization_id=env.organization_id, match_id=proposed.match_id).update_one(
            upsert=True,
            set_on_insert__program_id=env.program_id,
            set_on_insert__mentor_id=proposed.mentor_id,
            set_on_insert__mentee_id=proposed.mentee_id,
            set_on_insert__score=proposed.score,
            set_on_insert__status=domain.PROPOSED,
            set_on_insert__mentor_decision=domain.NONE,
            set_on_insert__mentee_decision=domain.NONE,
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
