"""KPI arithmetic: each event moves exactly its counters, and `events` always by one."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import pytest
from google.protobuf.message import Message

from services.analytics.kpis import COUNTERS, apply, empty
from services.common.api import common_pb2, events_pb2
from services.common.events import new_event


def event_of(payload: Message) -> events_pb2.Event:
    return new_event(
        producer="tests", organization_id="org-1", program_id="prog-1", payload=payload
    )


# A non-zero starting point, different per counter, so a reset or a wrong counter shows.
START: dict[str, int] = {name: 10 * (i + 1) for i, name in enumerate(COUNTERS)}


def moved(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    assert set(after) == set(before) | set(COUNTERS)
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


CASES = [
    pytest.param(
        events_pb2.ParticipantRegistered(participant_id="p", role=common_pb2.ROLE_MENTOR),
        {"mentors": 1, "events": 1},
        id="mentor-registered",
    ),
    pytest.param(
        events_pb2.ParticipantRegistered(participant_id="p", role=common_pb2.ROLE_MENTEE),
        {"mentees": 1, "events": 1},
        id="mentee-registered",
    ),
    pytest.param(
        events_pb2.ParticipantRegistered(participant_id="p", role=common_pb2.ROLE_UNSPECIFIED),
        {"events": 1},
        id="unspecified-role-registered",
    ),
    pytest.param(
        events_pb2.MatchProposed(match_id="m", mentor_id="a", mentee_id="b", score=0.5),
        {"matches_proposed": 1, "events": 1},
        id="match-proposed",
    ),
    pytest.param(
        events_pb2.MatchResponded(match_id="m", status=common_pb2.MATCH_STATUS_ACCEPTED),
        {"matches_accepted": 1, "events": 1},
        id="responded-accepted",
    ),
    pytest.param(
        events_pb2.MatchResponded(match_id="m", status=common_pb2.MATCH_STATUS_DECLINED),
        {"matches_declined": 1, "events": 1},
        id="responded-declined",
    ),
    pytest.param(
        events_pb2.MatchResponded(
            match_id="m",
            decision=common_pb2.MATCH_DECISION_ACCEPT,
            status=common_pb2.MATCH_STATUS_PROPOSED,
        ),
        {"events": 1},
        id="responded-still-proposed",
    ),
    pytest.param(
        events_pb2.RelationshipStarted(relationship_id="r", match_id="m"),
        {"active_relationships": 1, "events": 1},
        id="relationship-started",
    ),
    pytest.param(
        events_pb2.SessionLogged(session_id="s", relationship_id="r", minutes=45),
        {"sessions": 1, "session_minutes": 45, "events": 1},
        id="session-logged",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), CASES)
def test_apply_moves_exactly_the_right_counters(payload: Message, expected: dict[str, int]) -> None:
    assert moved(START, apply(START, event_of(payload))) == expected


@pytest.mark.parametrize(("payload", "expected"), CASES)
def test_apply_from_nothing(payload: Message, expected: dict[str, int]) -> None:
    after = apply({}, event_of(payload))
    assert after == {**empty(), **expected}


@pytest.mark.parametrize(("payload", "expected"), CASES)
def test_apply_never_mutates_its_input(payload: Message, expected: dict[str, int]) -> None:
    before = dict(START)
    snapshot = dict(before)
    after = apply(before, event_of(payload))
    assert before == snapshot
    assert after is not before
    # A read-only mapping works too: apply only reads its input.
    frozen = MappingProxyType(dict(START))
    assert apply(frozen, event_of(payload)) == after
    assert dict(frozen) == START


def test_an_event_without_payload_only_counts_as_an_event() -> None:
    event = events_pb2.Event(envelope=event_of(events_pb2.MatchProposed()).envelope)
    assert event.WhichOneof("payload") is None
    assert moved(START, apply(START, event)) == {"events": 1}


def test_session_minutes_accumulate_over_events() -> None:
    kpis = empty()
    for minutes in (30, 45, 1440):
        kpis = apply(kpis, event_of(events_pb2.SessionLogged(session_id="s", minutes=minutes)))
    assert kpis["sessions"] == 3
    assert kpis["session_minutes"] == 30 + 45 + 1440
    assert kpis["events"] == 3


def test_events_counter_counts_every_event() -> None:
    kpis = empty()
    for param in CASES:
        kpis = apply(kpis, event_of(param.values[0]))  # type: ignore[arg-type]
    assert kpis["events"] == len(CASES)
    assert kpis["mentors"] == 1
    assert kpis["mentees"] == 1
    assert kpis["matches_proposed"] == 1
    assert kpis["matches_accepted"] == 1
    assert kpis["matches_declined"] == 1
    assert kpis["active_relationships"] == 1


def test_empty_has_every_counter_at_zero() -> None:
    assert empty() == dict.fromkeys(COUNTERS, 0)
    assert empty() is not empty()
