"""Planned sessions and their session-planned events, on mongomock (a fresh database per test):
what each event carries, its sequence, and that a retry stages and rebuilds the same event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import mongoengine
import pytest

from services.analytics import program_state
from services.common.api import common_pb2, events_pb2
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.events import new_event, scoped_id, stable_event_id, topic_of
from services.common.outbox import OutboxEntry
from services.engagement import convert, domain, planning, store, withdrawals
from services.engagement.documents import Relationship, Session
from tests.unit import memory_db

ORG, PROGRAM = "org-1", "prog-1"
MENTOR, MENTEE = "mentor-1", "mentee-1"
SOON = datetime(2031, 5, 6, 9, 30, tzinfo=UTC)
LATER = SOON + timedelta(days=2, hours=1)
EVEN_LATER = SOON + timedelta(days=7)


@pytest.fixture(autouse=True)
def database() -> Iterator[None]:
    memory_db.connect_fresh("engagement", "test_planning")
    yield
    mongoengine.disconnect()


def pair() -> Relationship:
    """An active relationship, as two accepted answers leave it."""
    store.record_proposals(
        [
            new_event(
                producer="tests",
                organization_id=ORG,
                program_id=PROGRAM,
                payload=events_pb2.MatchProposed(
                    match_id="m-1", mentor_id=MENTOR, mentee_id=MENTEE
                ),
            )
        ]
    )
    store.respond(ORG, "m-1", MENTOR, domain.ACCEPT)
    accepted, _ = store.respond(ORG, "m-1", MENTEE, domain.ACCEPT)
    return store.get_relationship(ORG, accepted.relationship_id)


def schedule(
    r: Relationship, request: store.ClientRequest = store.NO_REQUEST_ID
) -> tuple[Session, list[events_pb2.Event]]:
    return planning.schedule_session(
        ORG, r.relationship_id, MENTEE, SOON, 45, "virtual", ["career", "feedback"], request
    )


def staged() -> dict[str, events_pb2.Event]:
    """The session-planned events staged in the outbox, by key."""
    found = {e.key: events_pb2.Event.FromString(e.value) for e in OutboxEntry.objects()}
    return {key: e for key, e in found.items() if e.HasField("session_planned")}


def planned(events: list[events_pb2.Event]) -> events_pb2.SessionPlanned:
    [event] = events
    assert topic_of(event) == "session-planned"
    assert (event.envelope.organization_id, event.envelope.program_id) == (ORG, PROGRAM)
    assert event.envelope.producer == "engagement"
    return event.session_planned


def test_scheduling_stages_sequence_0_with_the_pair_and_the_plan() -> None:
    r = pair()
    session, events = schedule(r)
    payload = planned(events)
    assert payload.session_id == session.session_id
    assert (payload.relationship_id, payload.mentor_id, payload.mentee_id) == (
        r.relationship_id,
        MENTOR,
        MENTEE,
    )
    assert payload.scheduled_at.ToDatetime(UTC) == SOON
    assert (payload.minutes, payload.mode) == (45, common_pb2.SESSION_MODE_VIRTUAL)
    assert list(payload.topics) == ["career", "feedback"]
    assert (payload.change, payload.sequence) == (events_pb2.SESSION_PLAN_CHANGE_SCHEDULED, 0)
    assert (payload.changed_by, payload.cancel_reason) == (MENTEE, "")
    assert events[0].envelope.event_id == stable_event_id(
        "session-planned", ORG, session.session_id, "0"
    )
    # Committed with the session, in the outbox.
    assert staged() == {scoped_id(events[0]): events[0]}


def test_a_retried_schedule_returns_the_same_session_and_the_same_event() -> None:
    r = pair()
    request = store.ClientRequest("req-1", "digest-1")
    first, events = schedule(r, request)
    again, events_again = schedule(r, request)
    assert again.session_id == first.session_id
    assert events_again == events
    assert Session.objects.count() == 1
    assert len(staged()) == 1
    # Once the event went out, a retry publishes nothing again.
    OutboxEntry.objects.update(set__sent=True)
    assert schedule(r, request) == (first, [])
    other, other_events = schedule(r)  # no request id: a new session
    assert other.session_id != first.session_id
    assert other_events[0].envelope.event_id != events[0].envelope.event_id


def test_each_move_and_the_cancellation_is_one_sequence_up() -> None:
    r = pair()
    session, scheduled = schedule(r)
    moved, move_events = planning.reschedule_session(
        ORG, session.session_id, MENTOR, LATER, 60, store.ClientRequest("mv-1", "d-1")
    )
    first_move = planned(move_events)
    assert (first_move.change, first_move.sequence) == (events_pb2.SESSION_PLAN_CHANGE_MOVED, 1)
    assert (first_move.scheduled_at.ToDatetime(UTC), first_move.minutes) == (LATER, 60)
    assert first_move.changed_by == MENTOR
    assert first_move.topics == ["career", "feedback"]  # a move keeps what it is about
    assert (domain.aware(moved.scheduled_at), moved.minutes, moved.plan_sequence) == (LATER, 60, 1)

    # Minutes 0 keeps the length; the second move is sequence 2.
    _, second = planning.reschedule_session(ORG, session.session_id, MENTEE, EVEN_LATER, 0)
    assert (planned(second).sequence, planned(second).minutes) == (2, 60)
    assert planned(second).scheduled_at.ToDatetime(UTC) == EVEN_LATER

    cancelled, cancel_events = planning.cancel_session(
        ORG, session.session_id, MENTOR, "Clash with a workshop"
    )
    cancel = planned(cancel_events)
    assert (cancel.change, cancel.sequence) == (events_pb2.SESSION_PLAN_CHANGE_CANCELLED, 3)
    assert cancel.cancel_reason == "Clash with a workshop"
    assert cancel.scheduled_at.ToDatetime(UTC) == EVEN_LATER
    assert cancelled.status == domain.CANCELLED

    # One staged event per sequence, each under its own stable id.
    all_events = [scheduled[0], move_events[0], second[0], cancel_events[0]]
    assert staged() == {scoped_id(e): e for e in all_events}
    assert [e.envelope.event_id for e in all_events] == [
        stable_event_id("session-planned", ORG, session.session_id, str(n)) for n in range(4)
    ]


def test_a_retried_move_moves_nothing_and_rebuilds_the_same_event() -> None:
    r = pair()
    session, _ = schedule(r)
    request = store.ClientRequest("mv-1", "d-1")
    _, first = planning.reschedule_session(ORG, session.session_id, MENTOR, LATER, 0, request)
    _, retried = planning.reschedule_session(ORG, session.session_id, MENTOR, LATER, 0, request)
    assert retried == first  # unsent yet (its publish failed): delivered by the retry
    assert Session.objects.get(session_id=session.session_id).plan_sequence == 1
    # After a later move, the first move's retry still moves nothing back.
    planning.reschedule_session(ORG, session.session_id, MENTOR, EVEN_LATER, 0)
    back, _ = planning.reschedule_session(ORG, session.session_id, MENTOR, LATER, 0, request)
    assert (domain.aware(back.scheduled_at), back.plan_sequence) == (EVEN_LATER, 2)
    # Without a request id, a move to the time and length it has changes nothing either.
    same, again = planning.reschedule_session(ORG, session.session_id, MENTOR, EVEN_LATER, 45)
    assert same.plan_sequence == 2
    assert planned(again).sequence == 2
    assert len(staged()) == 3
    OutboxEntry.objects.update(set__sent=True)
    assert planning.reschedule_session(ORG, session.session_id, MENTOR, LATER, 0, request)[1] == []


def test_a_cancelled_or_held_session_cannot_move_and_cancelling_again_changes_nothing() -> None:
    r = pair()
    session, _ = schedule(r)
    _, cancelled = planning.cancel_session(ORG, session.session_id, MENTEE, "")
    repeat, again = planning.cancel_session(ORG, session.session_id, MENTOR, "other reason")
    assert again == cancelled
    assert planned(again).changed_by == MENTEE  # the first cancellation's
    assert (repeat.cancel_reason, repeat.plan_sequence) == ("", 1)
    with pytest.raises(FailedPrecondition, match=r"^session_id: the session is cancelled"):
        planning.reschedule_session(ORG, session.session_id, MENTEE, LATER, 0)

    other, _ = schedule(r)
    held, _, _ = store.mark_held(
        ORG, other.session_id, MENTOR, SOON, 0, "", SOON + timedelta(hours=1)
    )
    assert held.status == domain.HELD
    with pytest.raises(FailedPrecondition, match=r"^session_id: the session is held"):
        planning.reschedule_session(ORG, other.session_id, MENTEE, LATER, 0)
    with pytest.raises(FailedPrecondition, match=r"^session_id: the session is held"):
        planning.cancel_session(ORG, other.session_id, MENTEE, "")
    assert len(staged()) == 3  # two scheduled, one cancelled


def test_only_the_pair_moves_a_session_and_a_coordinator_is_recorded_as_the_changer() -> None:
    r = pair()
    session, _ = schedule(r)
    with pytest.raises(PermissionDenied, match=r"^participant_id"):
        planning.reschedule_session(ORG, session.session_id, "stranger", LATER, 0)
    _, events = planning.reschedule_session(
        ORG, session.session_id, MENTEE, LATER, 0, changed_by="coordinator-7"
    )
    assert planned(events).changed_by == "coordinator-7"


def test_an_ended_relationships_session_stays_put_a_paused_ones_may_move() -> None:
    r = pair()
    session, _ = schedule(r)
    store.pause_relationship(ORG, r.relationship_id, MENTOR, "")
    moved, _ = planning.reschedule_session(ORG, session.session_id, MENTOR, LATER, 0)
    assert moved.plan_sequence == 1
    store.end_relationship(ORG, r.relationship_id, MENTOR, False, "moved on", False)
    # The ending cancelled it.
    with pytest.raises(FailedPrecondition, match=r"^session_id: the session is cancelled"):
        planning.reschedule_session(ORG, session.session_id, MENTOR, EVEN_LATER, 0)


def test_a_session_scheduled_before_sequences_moves_to_sequence_1() -> None:
    r = pair()
    session, _ = schedule(r)
    Session.objects(pk=session.pk).update_one(unset__plan_sequence=True, unset__changed_by=True)
    assert "plan_sequence" not in Session._get_collection().find_one({"_id": session.pk})
    _, events = planning.reschedule_session(ORG, session.session_id, MENTOR, LATER, 0)
    assert (planned(events).sequence, planned(events).changed_by) == (1, MENTOR)


def test_the_change_is_read_from_the_sessions_state() -> None:
    s = Session(status=domain.SCHEDULED, plan_sequence=0)
    assert convert.plan_change(s) == events_pb2.SESSION_PLAN_CHANGE_SCHEDULED
    s.plan_sequence = 3
    assert convert.plan_change(s) == events_pb2.SESSION_PLAN_CHANGE_MOVED
    s.status = domain.CANCELLED
    assert convert.plan_change(s) == events_pb2.SESSION_PLAN_CHANGE_CANCELLED


def test_a_move_is_checked_before_anything_is_read() -> None:
    now = SOON - timedelta(days=1)
    with pytest.raises(InvalidArgument, match=r"^scheduled_at: is required"):
        domain.validate_move(scheduled_at=None, minutes=0, now=now)
    with pytest.raises(InvalidArgument, match=r"^scheduled_at: must be in the future"):
        domain.validate_move(scheduled_at=now - timedelta(minutes=1), minutes=0, now=now)
    with pytest.raises(InvalidArgument, match=r"^minutes"):
        domain.validate_move(scheduled_at=SOON, minutes=domain.MAX_SESSION_MINUTES + 1, now=now)
    domain.validate_move(scheduled_at=SOON, minutes=0, now=now)
    domain.validate_move(scheduled_at=SOON, minutes=domain.MAX_SESSION_MINUTES, now=now)


def test_analytics_counts_a_session_planned_and_folds_nothing_else() -> None:
    r = pair()
    _, events = schedule(r)
    state = program_state.new_state()
    program_state.apply(state, events[0])
    assert state == {**program_state.new_state(), "events": 1}


def test_ending_a_relationship_cancels_its_planned_sessions_in_the_same_stroke() -> None:
    r = pair()
    first, _ = schedule(r)
    dropped, _ = planning.schedule_session(
        ORG, r.relationship_id, MENTOR, LATER, 30, "virtual", [], store.NO_REQUEST_ID
    )
    planning.cancel_session(ORG, dropped.session_id, MENTOR, "clash")

    _, events = store.end_relationship(ORG, r.relationship_id, MENTEE, False, "moving on", False)

    assert [topic_of(e) for e in events] == ["relationship-ended", "session-planned"]
    cancelled = events[1].session_planned
    assert (cancelled.session_id, cancelled.sequence) == (first.session_id, 1)
    assert cancelled.change == events_pb2.SESSION_PLAN_CHANGE_CANCELLED
    assert (cancelled.cancel_reason, cancelled.changed_by) == ("the relationship ended", MENTEE)
    kept = Session.objects.get(session_id=dropped.session_id)
    assert (kept.cancel_reason, kept.plan_sequence) == ("clash", 1)  # cancelled before: as it was
    # Staged with the ending; a retry of the ending cancels nothing more.
    assert events[1].envelope.event_id in {e.envelope.event_id for e in staged().values()}
    _, again = store.end_relationship(ORG, r.relationship_id, MENTEE, False, "moving on", False)
    assert [topic_of(e) for e in again] == ["relationship-ended"]


def test_a_withdrawal_cancels_the_planned_sessions_and_republishes_them_on_redelivery() -> None:
    r = pair()
    session, _ = schedule(r)
    first = withdrawals.leave(ORG, MENTOR, "withdrawn: moved abroad")
    again = withdrawals.leave(ORG, MENTOR, "withdrawn: moved abroad")
    assert [topic_of(e) for e in first] == ["relationship-ended", "session-planned"]
    assert [e.envelope.event_id for e in again] == [e.envelope.event_id for e in first]
    payload = first[1].session_planned
    assert (payload.session_id, payload.sequence, payload.changed_by) == (
        session.session_id,
        1,
        MENTOR,
    )
