"""Engagement rules: the match response state machine and session validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.errors import FailedPrecondition, InvalidArgument
from services.engagement.domain import (
    ACCEPT,
    ACCEPTED,
    CLOCK_SKEW,
    DECLINE,
    DECLINED,
    MAX_SESSION_MINUTES,
    NONE,
    PROPOSED,
    Response,
    respond,
    status_after,
    validate_session,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def answer(previous: Response | None, side: str, decision: str) -> Response:
    state = previous or Response(NONE, NONE, PROPOSED, changed=False)
    return respond(
        status=state.status,
        mentor_decision=state.mentor_decision,
        mentee_decision=state.mentee_decision,
        side=side,
        decision=decision,
    )


# --- respond -------------------------------------------------------------------------------


def test_mentor_accepts_then_mentee_accepts() -> None:
    first = answer(None, "mentor", ACCEPT)
    assert first == Response(ACCEPT, NONE, PROPOSED, changed=True)
    second = answer(first, "mentee", ACCEPT)
    assert second == Response(ACCEPT, ACCEPT, ACCEPTED, changed=True)


def test_mentee_accepts_then_mentor_accepts() -> None:
    first = answer(None, "mentee", ACCEPT)
    assert first == Response(NONE, ACCEPT, PROPOSED, changed=True)
    assert answer(first, "mentor", ACCEPT) == Response(ACCEPT, ACCEPT, ACCEPTED, changed=True)


@pytest.mark.parametrize("side", ["mentor", "mentee"])
def test_a_first_decline_declines(side: str) -> None:
    result = answer(None, side, DECLINE)
    assert result.status == DECLINED
    assert result.changed is True
    decided = result.mentor_decision if side == "mentor" else result.mentee_decision
    other = result.mentee_decision if side == "mentor" else result.mentor_decision
    assert (decided, other) == (DECLINE, NONE)


@pytest.mark.parametrize(("first", "second"), [("mentor", "mentee"), ("mentee", "mentor")])
def test_a_decline_after_the_other_side_accepted_declines(first: str, second: str) -> None:
    accepted = answer(None, first, ACCEPT)
    result = answer(accepted, second, DECLINE)
    assert result.status == DECLINED
    assert result.changed is True


@pytest.mark.parametrize("side", ["mentor", "mentee"])
@pytest.mark.parametrize("decision", [ACCEPT, DECLINE])
def test_repeating_the_same_answer_changes_nothing(side: str, decision: str) -> None:
    once = answer(None, side, decision)
    twice = answer(once, side, decision)
    assert twice.changed is False
    assert (twice.mentor_decision, twice.mentee_decision, twice.status) == (
        once.mentor_decision,
        once.mentee_decision,
        once.status,
    )


def test_repeating_an_accept_on_an_accepted_match_changes_nothing() -> None:
    accepted = answer(answer(None, "mentor", ACCEPT), "mentee", ACCEPT)
    again = answer(accepted, "mentee", ACCEPT)
    assert again == Response(ACCEPT, ACCEPT, ACCEPTED, changed=False)


@pytest.mark.parametrize("side", ["mentor", "mentee"])
def test_changing_accept_to_decline_fails(side: str) -> None:
    accepted = answer(None, side, ACCEPT)
    with pytest.raises(FailedPrecondition, match=f"the {side} already answered accept"):
        answer(accepted, side, DECLINE)


@pytest.mark.parametrize("side", ["mentor", "mentee"])
def test_changing_decline_to_accept_fails(side: str) -> None:
    declined = answer(None, side, DECLINE)
    with pytest.raises(FailedPrecondition, match=f"the {side} already answered decline"):
        answer(declined, side, ACCEPT)


@pytest.mark.parametrize("decision", [ACCEPT, DECLINE])
def test_answering_a_declined_match_fails(decision: str) -> None:
    declined = answer(None, "mentor", DECLINE)
    with pytest.raises(FailedPrecondition, match="already declined"):
        answer(declined, "mentee", decision)


@pytest.mark.parametrize("side", ["mentor", "mentee"])
def test_answering_a_decided_match_the_other_side_never_saw_fails(side: str) -> None:
    # A match decided elsewhere (e.g. withdrawn) while this side has not answered.
    with pytest.raises(FailedPrecondition, match="match_id"):
        respond(
            status=ACCEPTED,
            mentor_decision=NONE,
            mentee_decision=NONE,
            side=side,
            decision=ACCEPT,
        )


@pytest.mark.parametrize("decision", ["", NONE, "ACCEPT", "maybe"])
def test_a_bad_decision_is_an_invalid_argument(decision: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        answer(None, "mentor", decision)
    assert caught.value.field == "decision"


def test_status_after() -> None:
    assert status_after(NONE, NONE) == PROPOSED
    assert status_after(ACCEPT, NONE) == PROPOSED
    assert status_after(NONE, ACCEPT) == PROPOSED
    assert status_after(ACCEPT, ACCEPT) == ACCEPTED
    assert status_after(DECLINE, ACCEPT) == DECLINED
    assert status_after(ACCEPT, DECLINE) == DECLINED
    assert status_after(NONE, DECLINE) == DECLINED


# --- validate_session ----------------------------------------------------------------------


def session_error(
    *,
    minutes: int = 60,
    mode_set: bool = True,
    held_at: datetime | None = NOW - timedelta(days=1),
) -> str | None:
    try:
        validate_session(minutes=minutes, mode_set=mode_set, held_at=held_at, now=NOW)
    except InvalidArgument as exc:
        return exc.field
    return None


@pytest.mark.parametrize("minutes", [1, 60, MAX_SESSION_MINUTES])
def test_session_minutes_in_range_pass(minutes: int) -> None:
    assert MAX_SESSION_MINUTES == 1440
    assert session_error(minutes=minutes) is None


@pytest.mark.parametrize("minutes", [0, -5, MAX_SESSION_MINUTES + 1])
def test_session_minutes_out_of_range(minutes: int) -> None:
    assert session_error(minutes=minutes) == "minutes"


def test_session_mode_is_required() -> None:
    assert session_error(mode_set=False) == "mode"


def test_session_held_at_is_required() -> None:
    assert session_error(held_at=None) == "held_at"


def test_session_held_far_in_the_future_is_rejected() -> None:
    assert session_error(held_at=NOW + timedelta(days=30)) == "held_at"
    assert session_error(held_at=NOW + CLOCK_SKEW + timedelta(seconds=1)) == "held_at"


def test_session_held_slightly_in_the_future_is_clock_skew() -> None:
    assert session_error(held_at=NOW + timedelta(hours=1)) is None
    assert session_error(held_at=NOW + CLOCK_SKEW) is None


def test_session_held_long_ago_is_fine() -> None:
    assert session_error(held_at=NOW - timedelta(days=3650)) is None
