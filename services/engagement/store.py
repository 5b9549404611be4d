"""Engagement's storage operations. Blocking: call through storage.run_sync."""

from __future__ import annotations

from dataclasses import dataclass
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
from services.common.storage import update_if
from services.engagement import domain, programs
from services.engagement.documents import (
    Feedback,
    Goal,
    Match,
    MessageReceipt,
    Relationship,
    Session,
    SessionNote,
)

GROUP = "engagement"
ORIGIN_NAMES = {
    MATCH_ORIGIN_ENGINE: "engine",
    MATCH_ORIGIN_MENTEE_REQUEST: "mentee_request",
    MATCH_ORIGIN_COORDINATOR: "coordinator",
}


def _expire(event: Event) -> None:
    """A proposal nobody will answer expires. match-expired and match-proposed travel on
    different topics, so the expiry may come first: it then leaves the match stored as expired,
    and the proposal, when it comes, finds it there and changes nothing."""
    env, expired = event.envelope, event.match_expired
    found = Match.objects(organization_id=env.organization_id, match_id=expired.match_id)
    if update_if(found, {"status": domain.PROPOSED}, set__status=domain.EXPIRED):
        return
    found.update_one(
        upsert=True,
        set_on_insert__program_id=env.program_id,
        set_on_insert__mentor_id=expired.mentor_id,
        set_on_insert__mentee_id=expired.mentee_id,
        set_on_insert__status=domain.EXPIRED,
        set_on_insert__proposed_at=env.occurred_at.ToDatetime(UTC),
    )


def record_proposals(events: list[Event]) -> None:
    """Store proposed matches and expiries; a redelivered event is ignored."""
    fresh = idempotency.unprocessed(events, GROUP)
    for event in fresh:
        env = event.envelope
        if event.HasField("match_expired"):
            _expire(event)
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
    started_at = clock.now()
    terms = programs.terms_of(match.organization_id, match.program_id)
    try:
        Relationship(
            organization_id=match.organization_id,
            program_id=match.program_id,
            relationship_id=match.relationship_id,
            match_id=match.match_id,
            mentor_id=match.mentor_id,
            mentee_id=match.mentee_id,
            started_at=started_at,
            expected_end_at=domain.expected_end(started_at, terms.timeframe_months),
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


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """A request's idempotency key (empty: none) and the fingerprint of the request."""

    request_id: str = ""
    fingerprint: str = ""


NO_REQUEST_ID = ClientRequest()


def _session_id(organization_id: str, operation: str, request: ClientRequest) -> str:
    return idempotency.result_id(
        organization_id, request.request_id, operation, request.fingerprint
    )


def _existing_session(organization_id: str, session_id: str) -> Session | None:
    found: Session | None = Session.objects(
        organization_id=organization_id, session_id=session_id
    ).first()
    return found


def _count(session: Session) -> None:
    """Add a logged session to its relationship's counts, once."""
    if Session.objects(pk=session.pk, counted=False).update_one(set__counted=True):
        Relationship.objects(
            organization_id=session.organization_id, relationship_id=session.relationship_id
        ).update_one(inc__sessions=1, inc__minutes=session.minutes)


def log_session(
    organization_id: str,
    relationship_id: str,
    held_at: datetime,
    minutes: int,
    mode: str,
    request: ClientRequest = NO_REQUEST_ID,
) -> Session:
    """Log a held session. With a request id, a retry returns the first call's session."""
    session_id = _session_id(organization_id, "LogSession", request)
    existing = _existing_session(organization_id, session_id)
    if existing is not None:
        _count(existing)  # the first call may have stopped before counting it
        return existing
    relationship = get_relationship(organization_id, relationship_id)
    if relationship.status != "active":
        raise FailedPrecondition(f"relationship_id: the relationship is {relationship.status}")
    try:
        session = Session(
            organization_id=organization_id,
            program_id=relationship.program_id,
            session_id=session_id,
            relationship_id=relationship_id,
            held_at=held_at,
            minutes=minutes,
            mode=mode,
            logged_at=clock.now(),
            counted=False,
        ).save(force_insert=True)
    except NotUniqueError:  # a concurrent retry stored it first
        session = Session.objects.get(organization_id=organization_id, session_id=session_id)
    _count(session)
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
    changed = Relationship.objects(pk=relationship.pk, status=relationship.status).update_one(
        set__status=status, set__end_reason=reason.strip(), set__ended_at=clock.now()
    )
    relationship.reload()
    if not changed:
        raise FailedPrecondition(
            f"relationship_id: the relationship is already {relationship.status}"
        )
    return relationship, True


# --- relationship lifecycle ----------------------------------------------------------------


def relationship_for(
    organization_id: str, relationship_id: str, participant_id: str
) -> tuple[Relationship, str]:
    """The relationship and the participant's side on it; nobody else may act on it."""
    relationship = get_relationship(organization_id, relationship_id)
    side = domain.side_of(
        mentor_id=relationship.mentor_id,
        mentee_id=relationship.mentee_id,
        participant_id=participant_id,
    )
    return relationship, side


def expected_end(relationship: Relationship) -> datetime:
    if relationship.expected_end_at is not None:
        return domain.aware(relationship.expected_end_at)
    return domain.default_expected_end(domain.aware(relationship.started_at))


def pause_relationship(
    organization_id: str, relationship_id: str, participant_id: str, reason: str
) -> Relationship:
    relationship, _ = relationship_for(organization_id, relationship_id, participant_id)
    outcome = domain.pause(relationship.status)
    if outcome.changed:
        updated = Relationship.objects(pk=relationship.pk, status=domain.ACTIVE).update_one(
            set__status=domain.PAUSED, set__paused_at=clock.now(), set__pause_reason=reason
        )
        if not updated:
            raise FailedPrecondition("relationship_id: the relationship changed; try again")
        relationship.reload()
    return relationship


def resume_relationship(
    organization_id: str, relationship_id: str, participant_id: str
) -> Relationship:
    relationship, _ = relationship_for(organization_id, relationship_id, participant_id)
    outcome = domain.resume(relationship.status)
    if outcome.changed:
        now = clock.now()
        paused_at = domain.aware(relationship.paused_at) if relationship.paused_at else now
        # Resumed by the pair: a leave that paused it no longer holds it (leaves.py).
        updated = Relationship.objects(pk=relationship.pk, status=domain.PAUSED).update_one(
            set__status=domain.ACTIVE,
            unset__paused_at=True,
            set__pause_reason="",
            set__resumed_at=now,
            set__leave_paused=False,
            set__leave_holds=[],
            inc__paused_seconds=max(0.0, (now - paused_at).total_seconds()),
        )
        if not updated:
            raise FailedPrecondition("relationship_id: the relationship changed; try again")
        relationship.reload()
    return relationship


def extend_relationship(
    organization_id: str, relationship_id: str, participant_id: str, new_end: datetime | None
) -> Relationship:
    relationship, _ = relationship_for(organization_id, relationship_id, participant_id)
    current = expected_end(relationship)
    if new_end is not None and new_end == current:
        return relationship  # a retry of the same extension
    domain.validate_extension(
        status=relationship.status,
        started_at=domain.aware(relationship.started_at),
        current_end=current,
        new_end=new_end,
    )
    Relationship.objects(pk=relationship.pk).update_one(set__expected_end_at=new_end)
    relationship.reload()
    return relationship


@dataclass(frozen=True)
class HealthInputs:
    relationship: Relationship
    goals: list[tuple[str, int]]
    ratings: list[int]
    # The program's meeting cadence; 0 = not stated.
    cadence_days: int = 0


def health_inputs(organization_id: str, relationship_id: str) -> HealthInputs:
    relationship = get_relationship(organization_id, relationship_id)
    goals = [
        (g.status, g.progress)
        for g in Goal.objects(organization_id=organization_id, relationship_id=relationship_id)
    ]
    ratings = [
        f.rating
        for f in Feedback.objects(organization_id=organization_id, relationship_id=relationship_id)
    ]
    terms = programs.terms_of(organization_id, relationship.program_id)
    return HealthInputs(relationship, goals, ratings, terms.meeting_cadence_days)


# --- messages ------------------------------------------------------------------------------


def record_message(
    organization_id: str,
    relationship_id: str,
    participant_id: str,
    message_id: str,
    sent_at: datetime,
) -> tuple[Relationship, str, bool]:
    """Count a message once per message id; return the relationship, the sender's side and
    whether this call counted it."""
    relationship, side = relationship_for(organization_id, relationship_id, participant_id)
    seen = MessageReceipt.objects(
        organization_id=organization_id, relationship_id=relationship_id, message_id=message_id
    ).first()
    if seen is not None:
        return relationship, side, False  # a retry: counted already
    domain.message_allowed(relationship.status)
    try:
        MessageReceipt(
            organization_id=organization_id,
            relationship_id=relationship_id,
            message_id=message_id,
            sender_id=participant_id,
            sent_at=sent_at,
        ).save(force_insert=True)
    except NotUniqueError:
        return relationship, side, False
    Relationship.objects(pk=relationship.pk).update_one(
        inc__messages=1, set__last_message_at=sent_at
    )
    relationship.reload()
    return relationship, side, True


# --- sessions ------------------------------------------------------------------------------


def schedule_session(
    organization_id: str,
    relationship_id: str,
    participant_id: str,
    scheduled_at: datetime,
    minutes: int,
    mode: str,
    topics: list[str],
    request: ClientRequest = NO_REQUEST_ID,
) -> Session:
    """Plan a session. With a request id, a retry returns the first call's session."""
    relationship, _ = relationship_for(organization_id, relationship_id, participant_id)
    session_id = _session_id(organization_id, "ScheduleSession", request)
    existing = _existing_session(organization_id, session_id)
    if existing is not None:
        return existing
    if relationship.status != domain.ACTIVE:
        raise FailedPrecondition(f"relationship_id: the relationship is {relationship.status}")
    try:
        saved: Session = Session(
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
        ).save(force_insert=True)
    except NotUniqueError:  # a concurrent retry stored it first
        saved = Session.objects.get(organization_id=organization_id, session_id=session_id)
    return saved


def session_for(
    organization_id: str, session_id: str, participant_id: str
) -> tuple[Session, Relationship]:
    session = Session.objects(organization_id=organization_id, session_id=session_id).first()
    if session is None:
        raise NotFound(f"session_id: no session {session_id!r}")
    relationship, _ = relationship_for(organization_id, session.relationship_id, participant_id)
    return session, relationship


def note_of(organization_id: str, session_id: str, author_id: str) -> str:
    note = SessionNote.objects(
        organization_id=organization_id, session_id=session_id, author_id=author_id
    ).first()
    return note.text if note is not None else ""


def set_note(organization_id: str, session_id: str, author_id: str, text: str) -> None:
    SessionNote.objects(
        organization_id=organization_id, session_id=session_id, author_id=author_id
    ).update_one(upsert=True, set__text=text, set__updated_at=clock.now())


def mark_held(
    organization_id: str,
    session_id: str,
    participant_id: str,
    held_at: datetime | None,
    minutes: int,
    note: str,
    now: datetime,
) -> tuple[Session, str]:
    """Scheduled -> held, counted on the relationship once. Returns the session and the
    caller's note."""
    session, relationship = session_for(organization_id, session_id, participant_id)
    outcome = domain.hold(session_status=session.status, relationship_status=relationship.status)
    if outcome.changed:
        when = held_at or domain.aware(session.scheduled_at)
        length = minutes or session.minutes
        domain.validate_held(held_at=when, minutes=length, now=now)
        updated = Session.objects(pk=session.pk, status=domain.SCHEDULED).update_one(
            set__status=domain.HELD,
            set__held_at=when,
            set__minutes=length,
            set__logged_at=clock.now(),
        )
        if updated:
            Relationship.objects(pk=relationship.pk).update_one(
                inc__sessions=1, inc__minutes=length
            )
        session.reload()
        if session.status != domain.HELD:
            raise FailedPrecondition(f"session_id: the session is {session.status}")
    if note:
        set_note(organization_id, session_id, participant_id, note)
    return session, note_of(organization_id, session_id, participant_id)


def cancel_session(
    organization_id: str, session_id: str, participant_id: str, reason: str
) -> tuple[Session, str]:
    session, _ = session_for(organization_id, session_id, participant_id)
    outcome = domain.cancel(session.status)
    if outcome.changed:
        updated = Session.objects(pk=session.pk, status=domain.SCHEDULED).update_one(
            set__status=domain.CANCELLED, set__cancel_reason=reason
        )
        session.reload()
        if not updated and session.status != domain.CANCELLED:
            raise FailedPrecondition(f"session_id: the session is {session.status}")
    return session, note_of(organization_id, session_id, participant_id)


def add_note(
    organization_id: str, session_id: str, participant_id: str, text: str
) -> tuple[Session, str]:
    session, _ = session_for(organization_id, session_id, participant_id)
    set_note(organization_id, session_id, participant_id, text)
    return session, text


def list_sessions(
    organization_id: str,
    relationship_id: str,
    participant_id: str,
    size: int,
    after: str | None,
) -> list[tuple[Session, str]]:
    """A page of the relationship's sessions in id order, each with the caller's own note."""
    relationship_for(organization_id, relationship_id, participant_id)
    query = Session.objects(organization_id=organization_id, relationship_id=relationship_id)
    if after:
        query = query.filter(session_id__gt=after)
    sessions = list(query.order_by("session_id").limit(size))
    notes = {
        n.session_id: n.text
        for n in SessionNote.objects(
            organization_id=organization_id,
            author_id=participant_id,
            session_id__in=[s.session_id for s in sessions],
        )
    }
    return [(s, notes.get(s.session_id, "")) for s in sessions]


def transcript_sessions(
    organization_id: str, participant_id: str, program_id: str
) -> list[tuple[Session, str]]:
    """The participant's held sessions, oldest first, each with their side in it."""
    query = Relationship.objects(organization_id=organization_id).filter(
        __raw__={"$or": [{"mentor_id": participant_id}, {"mentee_id": participant_id}]}
    )
    if program_id:
        query = query.filter(program_id=program_id)
    sides = {
        r.relationship_id: domain.MENTOR if r.mentor_id == participant_id else domain.MENTEE
        for r in query
    }
    if not sides:
        return []
    held = Session.objects(
        organization_id=organization_id,
        relationship_id__in=list(sides),
        status=domain.HELD,
    ).order_by("held_at", "session_id")
    return [(s, sides[s.relationship_id]) for s in held]
