"""Engagement rules: how a proposed match becomes a relationship, what a valid session is,
how a relationship pauses, resumes and extends, and what goals, feedback and training accept.
Pure: no I/O. The relationship-health score is in health.py."""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied

PROPOSED, ACCEPTED, DECLINED, EXPIRED = "proposed", "accepted", "declined", "expired"
ACTIVE, COMPLETED, CLOSED_EARLY = "active", "completed", "closed_early"
PAUSED = "paused"
# A relationship that has not ended: it can still pause, resume, extend, message and be ended.
ONGOING = (ACTIVE, PAUSED)
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
    if current not in ONGOING:
        raise FailedPrecondition(f"relationship_id: the relationship is already {current}")
    if completed and not_a_good_fit:
        raise InvalidArgument("not_a_good_fit", "a completed relationship cannot be a bad fit")
    if not completed and not reason.strip():
        raise InvalidArgument("reason", "is required when closing a relationship early")
    if len(reason) > 500:
        raise InvalidArgument("reason", "must be at most 500 characters")
    return COMPLETED if completed else CLOSED_EARLY


# --- who acts ------------------------------------------------------------------------------

MENTOR, MENTEE = "mentor", "mentee"


def seat_limit(role: str, capacity: int | None) -> int:
    """How many ongoing relationships a participant may hold: a mentor their capacity (one
    while it is not known yet), a mentee one."""
    if role == MENTOR:
        return max(capacity or 1, 1)
    return 1


def side_of(*, mentor_id: str, mentee_id: str, participant_id: str) -> str:
    """The side the participant is on; anyone else may not act on the relationship."""
    if participant_id == mentor_id:
        return MENTOR
    if participant_id == mentee_id:
        return MENTEE
    raise PermissionDenied("participant_id: not the mentor or the mentee of this relationship")


def aware(moment: datetime) -> datetime:
    """A stored time as UTC (some stores hand back naive datetimes)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- relationship lifecycle ----------------------------------------------------------------

DEFAULT_TERM_MONTHS = 6
# An extension cannot push the end further than this after the start.
MAX_TERM = timedelta(days=3 * 366)
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class Transition:
    status: str
    changed: bool


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later, clamped to the month's last day (31 Aug + 6 = 28/29 Feb)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def default_expected_end(started_at: datetime) -> datetime:
    return add_months(started_at, DEFAULT_TERM_MONTHS)


def expected_end(started_at: datetime, timeframe_months: int) -> datetime:
    """The end of a relationship started now: the program's timeframe later (program-changed),
    six months when the program sets none."""
    return add_months(started_at, timeframe_months or DEFAULT_TERM_MONTHS)


def pause(current: str) -> Transition:
    """Active -> paused; pausing a paused relationship again changes nothing."""
    if current == PAUSED:
        return Transition(PAUSED, changed=False)
    if current != ACTIVE:
        raise FailedPrecondition(f"relationship_id: the relationship is {current}")
    return Transition(PAUSED, changed=True)


def resume(current: str) -> Transition:
    """Paused -> active; resuming an active relationship changes nothing."""
    if current == ACTIVE:
        return Transition(ACTIVE, changed=False)
    if current != PAUSED:
        raise FailedPrecondition(f"relationship_id: the relationship is {current}")
    return Transition(ACTIVE, changed=True)


def validate_reason(field: str, reason: str) -> str:
    text = reason.strip()
    if len(text) > MAX_REASON:
        raise InvalidArgument(field, f"must be at most {MAX_REASON} characters")
    return text


def validate_extension(
    *, status: str, started_at: datetime, current_end: datetime, new_end: datetime | None
) -> None:
    if new_end is None:
        raise InvalidArgument("expected_end_at", "is required")
    if new_end <= current_end:
        raise InvalidArgument(
            "expected_end_at", f"must be later than the current {current_end.date().isoformat()}"
        )
    if new_end > started_at + MAX_TERM:
        raise InvalidArgument("expected_end_at", "must be at most three years after the start")
    if status not in ONGOING:
        raise FailedPrecondition(f"relationship_id: the relationship is {status}")


# --- sessions ------------------------------------------------------------------------------

SCHEDULED, HELD, CANCELLED = "scheduled", "held", "cancelled"
MAX_TOPICS, MAX_TOPIC = 10, 100
MAX_NOTE = 5000


def validate_schedule(
    *,
    scheduled_at: datetime | None,
    minutes: int,
    mode_set: bool,
    topics: Sequence[str],
    now: datetime,
) -> list[str]:
    """Check a session to plan; return its topics trimmed."""
    if scheduled_at is None:
        raise InvalidArgument("scheduled_at", "is required")
    if scheduled_at <= now:
        raise InvalidArgument("scheduled_at", "must be in the future")
    if not 1 <= minutes <= MAX_SESSION_MINUTES:
        raise InvalidArgument("minutes", f"must be 1-{MAX_SESSION_MINUTES}")
    if not mode_set:
        raise InvalidArgument("mode", "must be virtual, face to face or phone")
    if len(topics) > MAX_TOPICS:
        raise InvalidArgument("topics", f"at most {MAX_TOPICS}")
    cleaned = [t.strip() for t in topics]
    if any(not t or len(t) > MAX_TOPIC for t in cleaned):
        raise InvalidArgument("topics", f"each must be 1-{MAX_TOPIC} characters")
    return cleaned


def validate_move(*, scheduled_at: datetime | None, minutes: int, now: datetime) -> None:
    """Check a new time for a planned session; a length of 0 keeps the planned one."""
    if scheduled_at is None:
        raise InvalidArgument("scheduled_at", "is required")
    if scheduled_at <= now:
        raise InvalidArgument("scheduled_at", "must be in the future")
    if minutes > MAX_SESSION_MINUTES:
        raise InvalidArgument("minutes", f"must be 1-{MAX_SESSION_MINUTES}, or 0 to keep it")


def move(*, session_status: str, relationship_status: str) -> None:
    """Only a scheduled session moves; a paused pair may still move one past their pause, an
    ended relationship's sessions stay where they are."""
    if session_status != SCHEDULED:
        raise FailedPrecondition(f"session_id: the session is {session_status}")
    if relationship_status not in ONGOING:
        raise FailedPrecondition(f"relationship_id: the relationship is {relationship_status}")


def validate_held(*, held_at: datetime, minutes: int, now: datetime) -> None:
    """A scheduled session reported as held: not in the future, a sane duration."""
    if held_at > now + CLOCK_SKEW:
        raise InvalidArgument("held_at", "is in the future")
    if not 1 <= minutes <= MAX_SESSION_MINUTES:
        raise InvalidArgument("minutes", f"must be 1-{MAX_SESSION_MINUTES}")


def validate_note(field: str, text: str) -> str:
    if len(text) > MAX_NOTE:
        raise InvalidArgument(field, f"must be at most {MAX_NOTE} characters")
    return text.strip()


def hold(*, session_status: str, relationship_status: str) -> Transition:
    """Scheduled -> held, only while the relationship is active (not paused, not ended).
    Marking a held session held again changes nothing (a retry)."""
    if session_status == HELD:
        return Transition(HELD, changed=False)
    if session_status != SCHEDULED:
        raise FailedPrecondition(f"session_id: the session is {session_status}")
    if relationship_status != ACTIVE:
        raise FailedPrecondition(f"relationship_id: the relationship is {relationship_status}")
    return Transition(HELD, changed=True)


def cancel(session_status: str) -> Transition:
    """Scheduled -> cancelled; a held session cannot be cancelled."""
    if session_status == CANCELLED:
        return Transition(CANCELLED, changed=False)
    if session_status != SCHEDULED:
        raise FailedPrecondition(f"session_id: the session is {session_status}")
    return Transition(CANCELLED, changed=True)


def recognised_hours(session_minutes: int, training_minutes: int) -> float:
    """Training/CPD hours on a transcript: every held session in full, plus each completed
    training resource's stated minutes, in hours to two decimals."""
    return round((session_minutes + training_minutes) / 60, 2)


# --- goals ---------------------------------------------------------------------------------

GOAL_OPEN, GOAL_ACHIEVED, GOAL_ABANDONED = "open", "achieved", "abandoned"
GOAL_STATUSES = (GOAL_OPEN, GOAL_ACHIEVED, GOAL_ABANDONED)
MAX_TITLE, MAX_DESCRIPTION, MAX_MILESTONES = 200, 2000, 50


@dataclass(frozen=True, slots=True)
class GoalChange:
    status: str
    progress: int
    changed: bool


def validate_goal(
    *, title: str, description: str, target_date: datetime | None, now: datetime
) -> tuple[str, str]:
    """Check a new goal; return its title and description trimmed."""
    clean_title = title.strip()
    if not clean_title:
        raise InvalidArgument("title", "is required")
    if len(clean_title) > MAX_TITLE:
        raise InvalidArgument("title", f"must be at most {MAX_TITLE} characters")
    if len(description) > MAX_DESCRIPTION:
        raise InvalidArgument("description", f"must be at most {MAX_DESCRIPTION} characters")
    if target_date is None:
        raise InvalidArgument("target_date", "is required")
    if target_date <= now:
        raise InvalidArgument("target_date", "must be in the future")
    return clean_title, description.strip()


def validate_milestone(*, title: str, existing: int) -> str:
    clean = title.strip()
    if not clean:
        raise InvalidArgument("title", "is required")
    if len(clean) > MAX_TITLE:
        raise InvalidArgument("title", f"must be at most {MAX_TITLE} characters")
    if existing >= MAX_MILESTONES:
        raise FailedPrecondition(f"goal_id: a goal has at most {MAX_MILESTONES} milestones")
    return clean


def update_goal(
    *, status: str, progress: int, new_progress: int | None, new_status: str | None
) -> GoalChange:
    """A goal's status and progress after an update.

    - progress is 0-100; unset (None) keeps it; so does an unset status.
    - achieved sets progress to 100.
    - a closed goal (achieved or abandoned) changes only by reopening it (status open);
      repeating its closing changes nothing.
    """
    if new_progress is not None and not 0 <= new_progress <= 100:
        raise InvalidArgument("progress", "must be 0-100")
    if new_status is not None and new_status not in GOAL_STATUSES:
        raise InvalidArgument("status", "must be open, achieved or abandoned")
    target_status = new_status or status
    if status != GOAL_OPEN and target_status == status:
        if new_progress is not None and new_progress != progress:
            raise FailedPrecondition(f"goal_id: the goal is {status}; reopen it first")
        return GoalChange(status, progress, changed=False)
    target_progress = progress if new_progress is None else new_progress
    if target_status == GOAL_ACHIEVED:
        target_progress = 100
    changed = (target_status, target_progress) != (status, progress)
    return GoalChange(target_status, target_progress, changed)


# --- feedback ------------------------------------------------------------------------------

PERIODIC = "periodic"
# Check-ins each author answers once per relationship.
ONCE_SURVEY_POINTS = ("day-30", "day-60", "day-90", "midpoint", "close")
SURVEY_POINTS = (*ONCE_SURVEY_POINTS, PERIODIC)
MAX_COMMENT = 2000


def validate_feedback(*, survey_point: str, rating: int, comment: str) -> tuple[str, str]:
    """Check a survey answer; return the survey point and the comment trimmed."""
    point = survey_point.strip().lower()
    if point not in SURVEY_POINTS:
        raise InvalidArgument("survey_point", f"must be one of {', '.join(SURVEY_POINTS)}")
    if not 1 <= rating <= 5:
        raise InvalidArgument("rating", "must be 1-5")
    if len(comment) > MAX_COMMENT:
        raise InvalidArgument("comment", f"must be at most {MAX_COMMENT} characters")
    return point, comment.strip()


# --- messages ------------------------------------------------------------------------------


def message_allowed(relationship_status: str) -> None:
    if relationship_status not in ONGOING:
        raise FailedPrecondition(f"relationship_id: the relationship is {relationship_status}")


# --- training ------------------------------------------------------------------------------

GUIDE, CHECKLIST, VIDEO = "guide", "checklist", "video"
MENTORS, MENTEES, BOTH = "mentors", "mentees", "both"
MAX_TRAINING_MINUTES = 600
_URL = re.compile(r"^https?://[^\s/?#]+(?:[/?#]\S*)?$")


def validate_resource(
    *, title: str, kind: str | None, url: str, audience: str | None, minutes: int
) -> tuple[str, str]:
    """Check a library resource; return its title and URL trimmed."""
    clean_title = title.strip()
    if not clean_title:
        raise InvalidArgument("title", "is required")
    if len(clean_title) > MAX_TITLE:
        raise InvalidArgument("title", f"must be at most {MAX_TITLE} characters")
    if kind is None:
        raise InvalidArgument("kind", "must be guide, checklist or video")
    clean_url = url.strip()
    if not clean_url or len(clean_url) > 2000 or not _URL.match(clean_url):
        raise InvalidArgument("url", "must be an http or https URL")
    if audience is None:
        raise InvalidArgument("audience", "must be mentors, mentees or both")
    if not 0 <= minutes <= MAX_TRAINING_MINUTES:
        raise InvalidArgument("minutes", f"must be 0-{MAX_TRAINING_MINUTES}")
    return clean_title, clean_url


def audiences_for(audience: str) -> tuple[str, ...]:
    """Resources a reader of that audience sees: their own and those for both."""
    return (audience, BOTH) if audience != BOTH else (MENTORS, MENTEES, BOTH)


def check_audience(*, audience: str, roles: set[str]) -> None:
    """A participant may complete a resource meant for their side. `roles` are the sides we
    know them on (from their matches); unknown means no check (engagement does not hold
    registrations)."""
    if audience == BOTH or not roles:
        return
    wanted = MENTOR if audience == MENTORS else MENTEE
    if wanted not in roles:
        raise FailedPrecondition(f"resource_id: this resource is for {audience}")
