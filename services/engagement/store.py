"""Engagement's storage operations. Blocking: call through storage.run_sync."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.errors import DuplicateKeyError

from services.common import clock, idempotency, outbox
from services.common.errors import FailedPrecondition, NotFound, PermissionDenied
from services.common.events import stable_event_id
from services.common.pb.mentoring.v1.common_pb2 import (
    MATCH_ORIGIN_COORDINATOR,
    MATCH_ORIGIN_ENGINE,
    MATCH_ORIGIN_MENTEE_REQUEST,
)
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import Transaction, update_if
from services.engagement import convert, domain, ending, programs, seats
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
    """Store proposed matches and expiries; applying one again changes nothing."""
    for event in events:
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
) -> tuple[Match, list[Event]]:
    """Record one side's answer, and start the relationship when both sides accepted, in one
    transaction with the events that report them (staged in the outbox). Returns the match and
    the answer's events, also on an unchanged repeat: the caller may be retrying after a failed
    publish, and the events keep their ids.

    An accept that would give the mentor more ongoing relationships than their capacity, or
    the mentee a second one, is refused whole (FAILED_PRECONDITION, seats.py).
    """
    return outbox.commit(
        lambda tx: _respond(tx, organization_id, match_id, participant_id, decision)
    )


def _respond(
    tx: Transaction, organization_id: str, match_id: str, participant_id: str, decision: str
) -> tuple[Match, list[Event]]:
    match = tx.find(Match, organization_id=organization_id, match_id=match_id)
    if match is None:
        raise NotFound(f"match_id: no match {match_id!r}")
    if participant_id == match.mentor_id:
        side = domain.MENTOR
    elif participant_id == match.mentee_id:
        side = domain.MENTEE
    else:
        raise PermissionDenied("participant_id: not the mentor or the mentee of this match")
    outcome = domain.respond(
        status=match.status,
        mentor_decision=match.mentor_decision,
        mentee_decision=match.mentee_decision,
        side=side,
        decision=decision,
    )
    if outcome.changed:
        relationship_id = (
            stable_event_id("relationship", organization_id, match_id)
            if outcome.status == domain.ACCEPTED
            else ""
        )
        # Conditional on what the answer was computed from: without transactions (unit
        # tests) this is what keeps two answers from both winning.
        updated = tx.update(
            Match,
            {
                "pk": match.pk,
                "status": match.status,
                "mentor_decision": match.mentor_decision,
                "mentee_decision": match.mentee_decision,
            },
            set__mentor_decision=outcome.mentor_decision,
            set__mentee_decision=outcome.mentee_decision,
            set__status=outcome.status,
            set__relationship_id=relationship_id,
        )
        if not updated:
            raise FailedPrecondition("match_id: the match is changing too fast; try again")
        match.mentor_decision = outcome.mentor_decision
        match.mentee_decision = outcome.mentee_decision
        match.status = outcome.status
        match.relationship_id = relationship_id
        if relationship_id:
            seats.take(tx, match)
            _start_relationship(tx, match)
    return match, convert.response_events(match, participant_id)


def _start_relationship(tx: Transaction, match: Match) -> None:
    keys = {"organization_id": match.organization_id, "relationship_id": match.relationship_id}
    if tx.find(Relationship, **keys) is not None:
        return
    started_at = clock.now()
    terms = programs.terms_of(match.organization_id, match.program_id)
    tx.insert(
        Relationship(
            **keys,
            program_id=match.program_id,
            match_id=match.match_id,
            mentor_id=match.mentor_id,
            mentee_id=match.mentee_id,
            started_at=started_at,
            expected_end_at=domain.expected_end(started_at, terms.timeframe_months),
        )
    )


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
) -> tuple[Session, list[Event]]:
    """Log a held session, counted on its relationship in the same transaction as
    session-logged. With a request id, a retry returns the first call's session (and its
    event, to deliver again)."""
    session_id = _session_id(organization_id, "LogSession", request)
    relationship = get_relationship(organization_id, relationship_id)

    def log(tx: Transaction) -> tuple[Session, list[Event]]:
        session = Session(
            organization_id=organization_id,
            program_id=relationship.program_id,
            session_id=session_id,
            relationship_id=relationship_id,
            held_at=held_at,
            minutes=minutes,
            mode=mode,
            logged_at=clock.now(),
            counted=True,
        )
        tx.insert(session)
        if not tx.update(
            Relationship,
            {"pk": relationship.pk, "status": domain.ACTIVE},
            inc__sessions=1,
            inc__minutes=minutes,
        ):
            current = tx.find(Relationship, pk=relationship.pk)
            raise FailedPrecondition(f"relationship_id: the relationship is {current.status}")
        return session, [convert.session_logged(session)]

    try:
        return outbox.commit(log)
    except DuplicateKeyError:  # a retry: the first call stored it (rare, so not looked up first)
        stored = Session.objects.get(organization_id=organization_id, session_id=session_id)
        _count(stored)  # a session from before sessions were counted with their logging
        return stored, [convert.session_logged(stored)]


def end_relationship(
    organization_id: str,
    relationship_id: str,
    participant_id: str,
    completed: bool,
    reason: str,
    not_a_good_fit: bool,
) -> tuple[Relationship, list[Event]]:
    """End it once, freeing both members' seats and cancelling its planned sessions, in one
    transaction with relationship-ended and their session-planned (staged in the outbox).
    Returns the relationship and its events; a retry of the same ending changes nothing and
    returns relationship-ended alone."""

    def end(tx: Transaction) -> tuple[Relationship, list[Event]]:
        relationship = tx.find(
            Relationship, organization_id=organization_id, relationship_id=relationship_id
        )
        if relationship is None:
            raise NotFound(f"relationship_id: no relationship {relationship_id!r}")
        if participant_id not in (relationship.mentor_id, relationship.mentee_id):
            raise PermissionDenied(
                "participant_id: not the mentor or the mentee of this relationship"
            )
        wanted = domain.COMPLETED if completed else domain.CLOSED_EARLY
        if not (relationship.status == wanted and relationship.end_reason == reason.strip()):
            status = domain.end_status(
                current=relationship.status,
                completed=completed,
                reason=reason,
                not_a_good_fit=not_a_good_fit,
            )
            changed = tx.update(
                Relationship,
                {"pk": relationship.pk, "status": relationship.status},
                set__status=status,
                set__end_reason=reason.strip(),
                set__ended_at=clock.now(),
            )
            if not changed:
                raise FailedPrecondition("relationship_id: the relationship is changing; try again")
            seats.release(tx, relationship)
            relationship = tx.find(Relationship, pk=relationship.pk)
            cancelled = ending.cancel_planned(tx, relationship, participant_id)
            ended = convert.relationship_ended_event(relationship, not_a_good_fit)
            return relationship, [ended, *cancelled]
        return relationship, [convert.relationship_ended_event(relationship, not_a_good_fit)]

    return outbox.commit(end)


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
) -> tuple[Relationship, list[Event]]:
    """Count a message once per message id, in one transaction with message-sent; return the
    relationship and the event (also on a repeat, with the same id: the caller may be
    retrying)."""
    relationship, side = relationship_for(organization_id, relationship_id, participant_id)

    def sent(counted: Relationship) -> list[Event]:
        return [convert.message_sent(counted, participant_id, side, message_id, sent_at)]

    try:
        domain.message_allowed(relationship.status)
    except FailedPrecondition:
        if not _received(organization_id, relationship_id, message_id):
            raise
        return relationship, sent(relationship)  # a retry of one counted before it ended

    def count(tx: Transaction) -> tuple[Relationship, list[Event]]:
        tx.insert(
            MessageReceipt(
                organization_id=organization_id,
                relationship_id=relationship_id,
                message_id=message_id,
                sender_id=participant_id,
                sent_at=sent_at,
            )
        )
        tx.update(
            Relationship, {"pk": relationship.pk}, inc__messages=1, set__last_message_at=sent_at
        )
        counted = tx.find(Relationship, pk=relationship.pk)
        return counted, sent(counted)

    try:
        return outbox.commit(count)
    except DuplicateKeyError:  # a retry: counted already (rare, so not looked up first)
        return relationship, sent(relationship)


def _received(organization_id: str, relationship_id: str, message_id: str) -> bool:
    return (
        MessageReceipt.objects(
            organization_id=organization_id,
            relationship_id=relationship_id,
            message_id=message_id,
        ).first()
        is not None
    )


# --- sessions (scheduling, moving and cancelling them: planning.py) ------------------------


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
) -> tuple[Session, str, list[Event]]:
    """Scheduled -> held, counted on the relationship once, in one transaction with
    session-logged. Returns the session, the caller's note and the event (also on an unchanged
    repeat, with the same id: the caller may be retrying)."""
    session, relationship = session_for(organization_id, session_id, participant_id)
    outcome = domain.hold(session_status=session.status, relationship_status=relationship.status)
    if outcome.changed:
        when = held_at or domain.aware(session.scheduled_at)
        length = minutes or session.minutes
        domain.validate_held(held_at=when, minutes=length, now=now)

        def hold(tx: Transaction) -> tuple[Session, list[Event]]:
            if tx.update(
                Session,
                {"pk": session.pk, "status": domain.SCHEDULED},
                set__status=domain.HELD,
                set__held_at=when,
                set__minutes=length,
                set__logged_at=clock.now(),
            ):
                tx.update(
                    Relationship, {"pk": relationship.pk}, inc__sessions=1, inc__minutes=length
                )
            held = tx.find(Session, pk=session.pk)
            if held.status != domain.HELD:
                raise FailedPrecondition(f"session_id: the session is {held.status}")
            return held, [convert.session_logged(held)]

        session, events = outbox.commit(hold)
    else:
        events = [convert.session_logged(session)]
    if note:
        set_note(organization_id, session_id, participant_id, note)
    return session, note_of(organization_id, session_id, participant_id), events


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
