"""A fold step's working states: an event whose fold raises leaves nothing half-applied."""

from __future__ import annotations

import copy

import pytest

from services.analytics import fold_step, program_state
from services.analytics.fold_step import FoldStep
from services.analytics.program_state import State
from services.common.api import common_pb2, events_pb2
from services.common.events import new_event

KEY = "org-1/prog-1"


def registered(participant_id: str) -> events_pb2.Event:
    return new_event(
        producer="tests",
        organization_id="org-1",
        program_id="prog-1",
        payload=events_pb2.ParticipantRegistered(
            participant_id=participant_id, role=common_pb2.ROLE_MENTEE, display_name="A"
        ),
    )


def stored_state() -> State:
    state = program_state.new_state()
    program_state.apply(state, registered("p-0"))
    return state


def test_a_step_changes_copies_and_never_the_stored_state() -> None:
    stored = stored_state()
    before = copy.deepcopy(stored)
    step = FoldStep(lambda key: stored, lambda key: pytest.fail("no organisation event"))
    step.apply(KEY, False, registered("p-1"))
    assert stored == before
    assert set(step.programs[KEY]["people"]) == {"p-0", "p-1"}


def test_an_event_whose_fold_raises_leaves_the_state_as_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = stored_state()
    before = copy.deepcopy(stored)
    fold = program_state.apply

    def half_then_raise(state: State, event: events_pb2.Event) -> None:
        if event.participant_registered.participant_id == "bad":
            state["people"]["bad"] = ["half-written"]
            state["events"] += 1
            raise ValueError("cannot fold this one")
        fold(state, event)

    monkeypatch.setattr(fold_step.program_state, "apply", half_then_raise)
    first, second = registered("p-1"), registered("p-2")
    step = FoldStep(lambda key: stored, lambda key: pytest.fail("no organisation event"))
    step.apply(KEY, False, first)
    with pytest.raises(ValueError, match="cannot fold this one"):
        step.apply(KEY, False, registered("bad"))
    step.apply(KEY, False, second)

    expected = copy.deepcopy(before)
    for event in (first, second):
        fold(expected, event)
    assert step.programs[KEY] == expected
    assert "bad" not in step.programs[KEY]["people"]
    assert stored == before
