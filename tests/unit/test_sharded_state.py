"""Sharded analytics state: folding in steps over small stored values gives exactly the figures
of folding the same events into one whole state, however the events are split into steps and
messages, and whichever of a step's writes were stored before a crash redelivered it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.analytics import journal, kpis, org_state, program_state, sharded
from services.analytics.fold_step import FoldStep
from services.common.api import common_pb2, events_pb2
from services.common.events import new_event

ORG, PROGRAM = "org-1", "prog-1"
KEY = f"{ORG}/{PROGRAM}"
ORG_KEY = f"{ORG}/"
START = 1_772_438_400.0  # 2026-03-02, a Monday
MENTOR, MENTEE = common_pb2.ROLE_MENTOR, common_pb2.ROLE_MENTEE


class Tables:
    """The state table as the app stores it (values through a JSON round trip), and what a
    worker loads from it when it starts."""

    def __init__(self) -> None:
        self.table: dict[str, Any] = {}
        self.restart()

    def restart(self) -> None:
        loaded = journal.load(self.table.items())
        self.index = sharded.Index()
        for key, value in loaded.values.items():
            self.index.put(key, value)
        self.applied = {p: step.last_offset for p, step in loaded.committed.items()}
        self.replay = {p: step.writes for p, step in loaded.committed.items()}

    def records(self, messages: Sequence[tuple[int, Sequence[events_pb2.Event]]]) -> list[Any]:
        """What folding these messages (one step of partition 0) stores, in order."""
        messages = [m for m in messages if m[0] > self.applied.get(0, -1)]
        if not messages:
            return []
        step = FoldStep(self.index.summary, self.index.entity)
        for _, events in messages:
            for event in events:
                step.apply(KEY, False, event)
                if event.WhichOneof("payload") == "participant_registered":
                    step.apply(ORG_KEY, True, event)
        offsets = (messages[0][0], messages[-1][0])
        ids = [e.envelope.event_id for _, events in messages for e in events]
        return list(
            journal.step_records(
                0, offsets, (0.0, ids), list(step.writes()), self.replay.pop(0, [])
            )
        )

    def store(self, records: list[Any], last_offset: int) -> None:
        for key, value in records:
            if value is None:
                self.table.pop(key, None)
            else:
                self.table[key] = json.loads(json.dumps(value))
            if not journal.is_bookkeeping(key):
                self.index.put(key, self.table.get(key))
        self.applied[0] = last_offset

    def fold(self, messages: Sequence[tuple[int, Sequence[events_pb2.Event]]]) -> None:
        self.store(self.records(messages), messages[-1][0])

    def stored(self, key: str, for_organisation: bool) -> sharded.StoredState:
        return self.index.stored(key, for_organisation)


def event(payload: Any, at: float) -> events_pb2.Event:
    return new_event(
        producer="tests",
        organization_id=ORG,
        program_id=PROGRAM,
        payload=payload,
        occurred_at=_datetime(at),
    )


def _datetime(at: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(at, tz=UTC)


def registered(pid: str, role: int = MENTEE, cohort: str = "", at: float = START) -> Any:
    return event(
        events_pb2.ParticipantRegistered(
            participant_id=pid,
            role=role,  # type: ignore[arg-type]
            skills=["python"] if role == MENTOR else ["python", "sql"],
            capacity=2 if role == MENTOR else 0,
            profile=common_pb2.Profile(cohort_id=cohort, hr_person_id=f"hr-{pid}"),
        ),
        at,
    )


# --- a program's events, drawn ----------------------------------------------------------

PEOPLE = [f"p{i}" for i in range(6)]
RELATIONSHIPS = [f"r{i}" for i in range(4)]


def _payload(draw: Callable[..., Any]) -> Any:
    kind = draw(st.sampled_from(range(14)))
    person = draw(st.sampled_from(PEOPLE))
    other = draw(st.sampled_from(PEOPLE))
    relationship = draw(st.sampled_from(RELATIONSHIPS))
    if kind == 0:
        return events_pb2.ParticipantRegistered(
            participant_id=person,
            role=draw(st.sampled_from([MENTOR, MENTEE])),
            skills=draw(st.lists(st.sampled_from(["python", "sql", "go"]), max_size=2)),
            capacity=draw(st.integers(0, 3)),
            profile=common_pb2.Profile(
                cohort_id=draw(st.sampled_from(["", "pilot"])), hr_person_id=f"hr-{person}"
            ),
        )
    if kind == 1:
        return events_pb2.ParticipantUpdated(
            participant_id=person,
            skills=["go"],
            capacity=1,
            # A move to another cohort moves the person's counts with them.
            profile=common_pb2.Profile(cohort_id=draw(st.sampled_from(["", "pilot", "autumn"]))),
        )
    if kind == 2:
        return events_pb2.ParticipantWithdrawn(participant_id=person)
    if kind == 3:
        return events_pb2.MatchProposed(match_id=f"m-{person}", mentor_id=other, mentee_id=person)
    if kind == 4:
        return events_pb2.MatchResponded(
            match_id=f"m-{person}",
            mentee_id=person,
            status=draw(
                st.sampled_from(
                    [common_pb2.MATCH_STATUS_ACCEPTED, common_pb2.MATCH_STATUS_DECLINED]
                )
            ),
        )
    if kind == 5:
        return events_pb2.RelationshipStarted(
            relationship_id=relationship, mentor_id=other, mentee_id=person
        )
    if kind == 6:
        return events_pb2.RelationshipEnded(
            relationship_id=relationship, completed=draw(st.booleans())
        )
    if kind == 7:
        return events_pb2.SessionLogged(
            session_id=f"s-{relationship}", relationship_id=relationship, minutes=45
        )
    if kind == 8:
        return events_pb2.MessageSent(relationship_id=relationship)
    if kind == 9:
        return events_pb2.FeedbackSubmitted(
            relationship_id=relationship, rating=draw(st.integers(1, 5))
        )
    if kind == 10:
        return events_pb2.GoalUpdated(
            goal_id=f"g-{relationship}",
            relationship_id=relationship,
            mentee_id=person,
            status=draw(
                st.sampled_from([events_pb2.GOAL_STATUS_ACHIEVED, events_pb2.GOAL_STATUS_OPEN])
            ),
        )
    if kind == 11:
        return events_pb2.TrainingCompleted(participant_id=person)
    if kind == 12:
        return events_pb2.ApplicationSubmitted(
            participant_id=person, role=MENTEE, cohort_id="pilot", campaign="email"
        )
    return events_pb2.ProgramChanged(settings=events_pb2.ProgramSettings(meeting_cadence_days=7))


@st.composite
def programs(draw: Callable[..., Any]) -> list[events_pb2.Event]:
    count = draw(st.integers(1, 60))
    events = []
    at = START
    for _ in range(count):
        at += draw(st.sampled_from([0.0, 3_600.0, 86_400.0, 5 * 86_400.0]))
        events.append(event(_payload(draw), at))
    return events


@st.composite
def deliveries(draw: Callable[..., Any]) -> tuple[list[events_pb2.Event], list[list[int]], Any]:
    """Events, their split into steps of messages (sizes), and crashes to replay."""
    events = draw(programs())
    steps: list[list[int]] = []
    left = len(events)
    while left:
        step: list[int] = []
        for _ in range(draw(st.integers(1, 3))):
            if not left:
                break
            size = draw(st.integers(1, left))
            step.append(size)
            left -= size
        steps.append(step)
    return events, steps, draw(st.randoms(use_true_random=False))


def whole_fold(events: Sequence[events_pb2.Event]) -> tuple[dict[str, Any], dict[str, Any]]:
    program, organisation = program_state.new_state(), org_state.new_state()
    for e in events:
        program_state.apply(program, e)
        if e.WhichOneof("payload") == "participant_registered":
            org_state.apply(organisation, e)
    return program, organisation


def readings(program: kpis.State, organisation: Any, now: float) -> Any:
    figures = kpis.figures(program, "", kpis.DayRange(), now)
    pilot = kpis.figures(program, "pilot", kpis.DayRange(), now)
    return (
        figures.scalars,
        figures.weekly,
        figures.campaigns,
        figures.satisfaction_distribution,
        pilot.scalars,
        kpis.skill_balance(program, ""),
        kpis.at_risk(program, "", now),
        org_state.retention(organisation, PROGRAM, (1,), now),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries())
def test_any_split_into_steps_and_any_crash_gives_the_whole_fold_figures(
    delivery: tuple[list[events_pb2.Event], list[list[int]], Any],
) -> None:
    events, steps, rng = delivery
    tables = Tables()
    offset = 0
    position = 0
    for sizes in steps:
        messages = []
        for size in sizes:
            messages.append((offset, events[position : position + size]))
            offset += 1
            position += size
        if rng.random() < 0.4:
            # A crash: a prefix of the step's records was stored (records of one changelog
            # partition are written in order); the worker restarts from the table, and the
            # step, and sometimes the one before, is delivered again.
            records = tables.records(messages)
            tables.store(records[: rng.randint(0, len(records))], -1)
            tables.restart()
        tables.fold(messages)

    now = START + 90 * 86_400.0
    program, organisation = whole_fold(events)
    expected = readings(program, organisation, now)
    assert readings(tables.stored(KEY, False), tables.stored(ORG_KEY, True), now) == expected
    tables.restart()
    assert readings(tables.stored(KEY, False), tables.stored(ORG_KEY, True), now) == expected


def test_no_stored_value_grows_with_the_program() -> None:
    tables = Tables()
    people = [registered(f"p{i}", MENTOR if i % 5 == 0 else MENTEE) for i in range(5_000)]
    for offset in range(0, len(people), 500):
        tables.fold([(offset, people[offset : offset + 500])])
    largest = max(len(json.dumps(value)) for value in tables.table.values() if value)
    assert largest < journal.CHUNK_BYTES + 10_000
    entities = [k for k in tables.table if not journal.is_bookkeeping(k) and "|" in k]
    assert max(len(json.dumps(tables.table[k])) for k in entities) < 1_000
    assert len(json.dumps(tables.table[KEY])) < 1_000
    assert tables.index.size(KEY) == 5_000 + 1  # people, and the day of their counters
    figures = kpis.figures(tables.stored(KEY, False), "", kpis.DayRange(), START)
    assert (figures.scalars["mentors"], figures.scalars["mentees"]) == (1_000, 4_000)


def test_a_step_changes_copies_and_writes_only_what_changed() -> None:
    tables = Tables()
    tables.fold([(0, [registered("p-0")])])
    before = copy.deepcopy(tables.table)
    records = tables.records([(1, [registered("p-1")])])
    assert tables.table == before
    written = {key for key, _ in records}
    assert sharded.entity_key(KEY, "people", "p-1") in written
    assert sharded.entity_key(KEY, "people", "p-0") not in written


def test_an_event_whose_fold_raises_leaves_the_state_as_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fold = program_state.apply

    def half_then_raise(state: Any, event: events_pb2.Event) -> None:
        if event.participant_registered.participant_id == "bad":
            state["people"]["bad"] = ["half-written"]
            state["events"] += 1
            raise ValueError("cannot fold this one")
        fold(state, event)

    monkeypatch.setattr(program_state, "apply", half_then_raise)
    tables = Tables()
    step = FoldStep(tables.index.summary, tables.index.entity)
    step.apply(KEY, False, registered("p-1"))
    with pytest.raises(ValueError, match="cannot fold this one"):
        step.apply(KEY, False, registered("bad"))
    step.apply(KEY, False, registered("p-2", at=START + 86_400))
    tables.store(list(journal.step_records(0, (0, 0), (0.0, []), list(step.writes()), [])), 0)

    monkeypatch.setattr(program_state, "apply", fold)
    program, _ = whole_fold([registered("p-1"), registered("p-2", at=START + 86_400)])
    stored = tables.stored(KEY, False)
    assert set(stored["people"]) == {"p-1", "p-2"}
    assert stored["events"] == program["events"] == 2
    assert readings(stored, org_state.new_state(), START) == readings(
        program, org_state.new_state(), START
    )
