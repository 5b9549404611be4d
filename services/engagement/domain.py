"""Engagement rules: how a proposed match becomes a relationship, what a valid session is.
Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common.errors import FailedPrecondition, InvalidArgument

PROPOSED, ACCEPTED, DECLINED, EXPIRED = "proposed", "accepted", "declined", "expired"
ACTIVE, COMPLETED, CLOSED_EARLY = "active", "completed", "closed_early"
NONE, ACCEPT, DECLINE = "none", "accept", "decline"
MAX_SESSION_MINUTES = 24 * 60
# Clocks differ between a portal and us; a session "held" a little in the future is fine.
CLOCK_SKEW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Response:
    """The state a match moves to when one side answers."""

    mentor_decision: str
    mentee_decision: str
    status: str
    changed: bool


def status_after(mentor_decision: str, mentee_decision: str) -> str:
    if DECLINE in (mentor_decision, mentee_decision):
        return DECLINED
    if mentor_decision == mentee_decision == ACCEPT:
        return ACCEPTED
    return PROPOSED


def respond(
    *, status: str, mentor_decision: str, mentee_decision: str, side: str, decision: str
) -> Response:
    """Apply one side's decision. Repeating the same answer changes nothing; changing it does
    not work, nor does answering a match that is already decided."""
    if side not in ("mentor", "mentee"):
        raise ValueError(f"side must be mentor or mentee, not {side!r}")
    if decision not in (ACCEPT, DECLINE):
        raise InvalidArgument("decision", "must be MATCH_DECISION_ACCEPT or MATCH_DECISION_DECLINE")
    current = mentor_decision if side == "mentor" else mentee_decision
    if current == decision:
        return Response(mentor_decision, mentee_decision, status, changed=False)
    if current != NONE:
        raise FailedPrecondition(f"decision: the {side} already answered {current}")
    if status != PROPOSED:
        raise FailedPrecondition(f"match_id: the match is already {status}")
    if side == "mentor":
        mentor_decision = decision
    else:
        mentee_decision = decision
    return Response(
        mentor_decision, mentee_decision, status_after(mentor_decision, mentee_decision), True
    )


def validate_session(
    *, minutes: int, mode_set: bool, held_at: datetime | None, now: datetime
) -> None:
    if held_at is None:
        raise InvalidArgument("held_at", "is required")
    if held_at > now + CLOCK_SKEW:
        raise InvalidArgument("held_at", "is in the future")
    if not 1 <= minutes <= MAX_SESSION_MINUTES:
        raise InvalidArgument("minutes", f"must be 1-{MAX_SESSION_MINUTES}")
    if not mode_set:
        raise InvalidArgument("mode", "must be virtual, face to face or phone")


def end_status(*, current: str, completed: bool, reason: str, not_a_good_fit: bool) -> str:
    """The status a relationship moves to when one of the pair ends it."""
    if current != ACTIVE:
        raise FailedPrecondition(f"relationship_id: the relationship is already {current}")
    if completed and not_a_good_fit:
        raise InvalidArgument("not_a_good_fit", "a completed relationship cannot be a bad fit")
    if not completed and not reason.strip():
        raise InvalidArgument("reason", "is required when closing a relationship early")
    if len(reason) > 500:
        raise InvalidArgument("reason", "must be at most 500 characters")
    return COMPLETED if completed else CLOSED_EARLY
