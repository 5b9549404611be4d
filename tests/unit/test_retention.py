"""Retention from hr-events and program sign-ups: participants against everyone else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.message import Message

from services.analytics import org_state
from services.common.api import common_pb2, events_pb2
from services.common.events import new_event

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def hr(person: str, day: float, **change: Message) -> events_pb2.Event:
    return new_event(
        producer="hris",
        organization_id="org-1",
        program_id="",
        payload=events_pb2.HrEvent(hr_person_id=person, **change),  # type: ignore[arg-type]
        occurred_at=at(day),
    )


def hired(person: str, day: float) -> events_pb2.Event:
    hired_on = events_pb2.Hired()
    hired_on.hired_on.FromDatetime(at(day))
    return hr(person, day, hired=hired_on)


def left(person: str, day: float) -> events_pb2.Event:
    terminated = events_pb2.Terminated(reason="resigned")
    terminated.effective_on.FromDatetime(at(day))
    return hr(person, day, terminated=terminated)


def joined(person: str, program: str, day: float) -> events_pb2.Event:
    return new_event(
        producer="enrollment",
        organization_id="org-1",
        program_id=program,
        payload=events_pb2.ParticipantRegistered(
            participant_id=f"p-{person}-{program}",
            role=common_pb2.ROLE_MENTEE,
            profile=common_pb2.Profile(hr_person_id=person),
        ),
        occurred_at=at(day),
    )


def fold(*events: events_pb2.Event) -> org_state.State:
    state = org_state.new_state()
    for event in events:
        org_state.apply(state, event)
    return state


def test_participants_against_non_participants_at_6_and_12_months() -> None:
    people = [f"e{i}" for i in range(10)]
    state = fold(
        *(hired(p, -400) for p in people),
        # e0..e3 join the program on day 0; e0 leaves after 100 days, e1 after 300.
        *(joined(p, "prog-1", 0) for p in people[:4]),
        left("e0", 100),
        left("e1", 300),
        # Non-participants: e4 leaves at day 50, e5 at 250, e6 left before the program began.
        left("e4", 50),
        left("e5", 250),
        left("e6", -10),
    )
    rows = org_state.retention(state, "", (6, 12), now=at(400).timestamp())
    six, twelve = rows
    assert (six.months, six.participants, six.participants_retained) == (6, 4, 3)
    # e6 had left before the reference date: not a comparable employee.
    assert (six.non_participants, six.non_participants_retained) == (5, 4)
    assert (twelve.participants, twelve.participants_retained) == (4, 2)
    assert (twelve.non_participants, twelve.non_participants_retained) == (5, 3)
    assert six.difference_points == 100 * (3 / 4 - 4 / 5)


def test_horizons_not_reached_yet_count_nobody() -> None:
    state = fold(hired("a", -10), hired("b", -10), joined("a", "prog-1", 0))
    (row,) = org_state.retention(state, "", (6,), now=at(100).timestamp())
    assert (row.participants, row.non_participants, row.participant_rate) == (0, 0, 0.0)


def test_program_scope_and_duplicate_sign_ups() -> None:
    state = fold(
        hired("a", -10),
        hired("b", -10),
        hired("c", -10),
        joined("a", "prog-1", 0),
        joined("a", "prog-1", 5),
        joined("b", "prog-2", 0),
        left("b", 30),
    )
    (row,) = org_state.retention(state, "prog-2", (6,), now=at(365).timestamp())
    assert (row.participants, row.participants_retained) == (1, 0)
    # a joined another program: a participant, so not in the comparison group.
    assert (row.non_participants, row.non_participants_retained) == (1, 1)
    assert state["joined"]["a"] == {"prog-1": at(0).timestamp()}
