"""Nudges: which participants are due a reminder, and when. Pure: no I/O, no clock; the caller
passes `now` and the records as plain values, so the rules are testable with fixed times.

Four rules, each per program (NudgePolicy; thresholds in seconds, production defaults in days):

- no-session: an active relationship whose last held session (or its start, or its last
  resumption after a pause, whichever is latest) is `no_session` old nudges both members.
  Unless the coordinator set it, `no_session` follows the program's meeting cadence: one and a
  half times the days between meetings (21 days for a 14-day cadence, the default).
- proposal-unanswered: a match still proposed `unanswered_proposal` after it was proposed
  nudges whichever side has not answered.
- check-in-overdue: a once-only check-in (day-30, day-60, day-90, midpoint) that fell due more
  than `check_in_grace` ago and that a member has not answered nudges that member, for the
  latest such check-in only (earlier ones are not chased once a later one is due).
- ending-soon: an active relationship within `ending_soon` of its expected end nudges both.

A paused relationship nudges nobody (its pair agreed to a break, or one of them is on leave),
and nobody on leave of absence is nudged at all: what is still due when they are back goes
then.

Each nudge carries a stable id over (recipient, reason, subject, due day): the scheduler sends
it once and records it, so later rounds and restarts never resend it. A new stretch of silence
after a session, or an extension of the expected end, has a new due day and nudges again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from services.common.errors import InvalidArgument
from services.common.events import stable_event_id

DAY = 86_400
# Thresholds are 1 second (for tests and demos) to a little over a year.
MAX_THRESHOLD_SECONDS = 366 * DAY

NO_SESSION = "no-session"
PROPOSAL_UNANSWERED = "proposal-unanswered"
CHECK_IN_OVERDUE = "check-in-overdue"
ENDING_SOON = "ending-soon"
ANNOUNCEMENT = "announcement"
REASONS = (NO_SESSION, PROPOSAL_UNANSWERED, CHECK_IN_OVERDUE, ENDING_SOON)

MENTOR, MENTEE = "mentor", "mentee"
ACTIVE, PAUSED, PROPOSED = "active", "paused", "proposed"
NONE = "none"

# The once-only check-ins with a fixed day after the start; "midpoint" is halfway to the
# expected end; "close" is answered when ending and is not chased.
CHECK_IN_DAYS = {"day-30": 30, "day-60": 60, "day-90": 90}
MIDPOINT = "midpoint"


@dataclass(frozen=True, slots=True)
class NudgePolicy:
    no_session_seconds: int = 21 * DAY
    unanswered_proposal_seconds: int = 7 * DAY
    check_in_grace_seconds: int = 7 * DAY
    ending_soon_seconds: int = 14 * DAY
    disabled: bool = False


DEFAULT_POLICY = NudgePolicy()
THRESHOLDS = (
    "no_session_seconds",
    "unanswered_proposal_seconds",
    "check_in_grace_seconds",
    "ending_soon_seconds",
)


def no_session_for_cadence(cadence_days: int) -> int:
    """The no-session threshold for a program that expects a meeting every `cadence_days`:
    one and a half gaps, so one missed meeting is not chased at once (21 days for 14)."""
    return min(MAX_THRESHOLD_SECONDS, cadence_days * DAY * 3 // 2)


def with_cadence(policy: NudgePolicy, cadence_days: int) -> NudgePolicy:
    """The policy with its no-session threshold from the program's cadence (0 = none stated:
    unchanged). For policies whose threshold the coordinator left to the default."""
    if not cadence_days:
        return policy
    return replace(policy, no_session_seconds=no_session_for_cadence(cadence_days))


def policy_from(values: Mapping[str, int], *, disabled: bool = False) -> NudgePolicy:
    """A policy from requested thresholds (0 = the default); INVALID_ARGUMENT names the field."""
    chosen: dict[str, int] = {}
    for name in THRESHOLDS:
        value = values.get(name, 0)
        if value == 0:
            chosen[name] = getattr(DEFAULT_POLICY, name)
        elif not 1 <= value <= MAX_THRESHOLD_SECONDS:
            raise InvalidArgument(
                f"policy.{name}",
                f"must be 1-{MAX_THRESHOLD_SECONDS} seconds (366 days), or 0 for the default",
            )
        else:
            chosen[name] = value
    unknown = set(values) - set(THRESHOLDS)
    if unknown:
        raise ValueError(f"unknown thresholds {sorted(unknown)}")
    return NudgePolicy(disabled=disabled, **chosen)


# --- what the rules read -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelationshipFacts:
    organization_id: str
    program_id: str
    relationship_id: str
    mentor_id: str
    mentee_id: str
    status: str
    started_at: datetime
    expected_end_at: datetime
    last_held_at: datetime | None = None
    # When it was last resumed after a pause; the silence counts from then at the earliest.
    resumed_at: datetime | None = None
    # (author id, survey point) of the once-only check-ins answered so far.
    answered: frozenset[tuple[str, str]] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class MatchFacts:
    organization_id: str
    program_id: str
    match_id: str
    mentor_id: str
    mentee_id: str
    status: str
    mentor_decision: str
    mentee_decision: str
    proposed_at: datetime


@dataclass(frozen=True, slots=True)
class Nudge:
    organization_id: str
    program_id: str
    recipient_id: str
    recipient_side: str
    reason: str
    # What it is about: the relationship id or the match id.
    subject: str
    # When it fell due; its day is part of the nudge's identity.
    due_at: datetime
    relationship_id: str = ""
    match_id: str = ""
    data: tuple[tuple[str, str], ...] = ()

    @property
    def nudge_id(self) -> str:
        return nudge_id(
            self.organization_id, self.recipient_id, self.reason, self.subject, self.due_at
        )


def nudge_id(
    organization_id: str, recipient_id: str, reason: str, subject: str, due_at: datetime
) -> str:
    return stable_event_id(
        "notification-requested",
        organization_id,
        recipient_id,
        reason,
        subject,
        due_at.date().isoformat(),
    )


def _pair(r: RelationshipFacts) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """(recipient, side, the other member) for both members."""
    return (r.mentor_id, MENTOR, r.mentee_id), (r.mentee_id, MENTEE, r.mentor_id)


def _duration(seconds: int) -> str:
    return str(seconds // DAY) if seconds >= DAY else f"{seconds / DAY:.2f}"


# --- the rules -----------------------------------------------------------------------------


def no_session(r: RelationshipFacts, policy: NudgePolicy, now: datetime) -> list[Nudge]:
    if policy.disabled or r.status != ACTIVE:
        return []
    since = max(m for m in (r.started_at, r.last_held_at, r.resumed_at) if m is not None)
    due_at = since + timedelta(seconds=policy.no_session_seconds)
    if now < due_at:
        return []
    return [
        Nudge(
            r.organization_id,
            r.program_id,
            recipient,
            side,
            NO_SESSION,
            r.relationship_id,
            due_at,
            relationship_id=r.relationship_id,
            data=(
                ("days", _duration(policy.no_session_seconds)),
                ("since", since.isoformat()),
                ("other_participant_id", other),
            ),
        )
        for recipient, side, other in _pair(r)
    ]


def proposal_unanswered(m: MatchFacts, policy: NudgePolicy, now: datetime) -> list[Nudge]:
    if policy.disabled or m.status != PROPOSED:
        return []
    due_at = m.proposed_at + timedelta(seconds=policy.unanswered_proposal_seconds)
    if now < due_at:
        return []
    silent = [
        (recipient, side, other)
        for recipient, side, other, decision in (
            (m.mentor_id, MENTOR, m.mentee_id, m.mentor_decision),
            (m.mentee_id, MENTEE, m.mentor_id, m.mentee_decision),
        )
        if decision == NONE
    ]
    return [
        Nudge(
            m.organization_id,
            m.program_id,
            recipient,
            side,
            PROPOSAL_UNANSWERED,
            m.match_id,
            due_at,
            match_id=m.match_id,
            data=(
                ("days", _duration(policy.unanswered_proposal_seconds)),
                ("proposed_at", m.proposed_at.isoformat()),
                ("other_participant_id", other),
            ),
        )
        for recipient, side, other in silent
    ]


def check_in_points(r: RelationshipFacts) -> list[tuple[str, datetime]]:
    """The once-only check-ins and when each falls due, earliest first."""
    points = [(name, r.started_at + timedelta(days=d)) for name, d in CHECK_IN_DAYS.items()]
    points.append((MIDPOINT, r.started_at + (r.expected_end_at - r.started_at) / 2))
    return sorted(points, key=lambda p: (p[1], p[0]))


def check_in_overdue(r: RelationshipFacts, policy: NudgePolicy, now: datetime) -> list[Nudge]:
    if policy.disabled or r.status != ACTIVE:
        return []
    grace = timedelta(seconds=policy.check_in_grace_seconds)
    overdue = [
        (name, at) for name, at in check_in_points(r) if at + grace <= now < r.expected_end_at
    ]
    if not overdue:
        return []
    point, falls_due = overdue[-1]
    return [
        Nudge(
            r.organization_id,
            r.program_id,
            recipient,
            side,
            CHECK_IN_OVERDUE,
            f"{r.relationship_id}/{point}",
            falls_due + grace,
            relationship_id=r.relationship_id,
            data=(("survey_point", point), ("due_at", falls_due.isoformat())),
        )
        for recipient, side, _ in _pair(r)
        if (recipient, point) not in r.answered
    ]


def ending_soon(r: RelationshipFacts, policy: NudgePolicy, now: datetime) -> list[Nudge]:
    if policy.disabled or r.status != ACTIVE:
        return []
    due_at = r.expected_end_at - timedelta(seconds=policy.ending_soon_seconds)
    if not due_at <= now < r.expected_end_at:
        return []
    return [
        Nudge(
            r.organization_id,
            r.program_id,
            recipient,
            side,
            ENDING_SOON,
            r.relationship_id,
            # The end, not the start of the window: an extension moves it and nudges again.
            r.expected_end_at,
            relationship_id=r.relationship_id,
            data=(
                ("expected_end_at", r.expected_end_at.isoformat()),
                ("other_participant_id", other),
            ),
        )
        for recipient, side, other in _pair(r)
    ]


def due(
    *,
    relationships: Iterable[RelationshipFacts],
    matches: Iterable[MatchFacts],
    policies: Mapping[tuple[str, str], NudgePolicy],
    now: datetime,
    away: Collection[tuple[str, str]] = frozenset(),
) -> list[Nudge]:
    """Every nudge due now; policies by (organization, program), the default for others.
    Nobody `away` (organization, participant: on leave of absence) is nudged, nor is a
    relationship with a member away. Nudges already sent are the caller's to drop (by
    nudge_id)."""
    found: list[Nudge] = []
    away = frozenset(away)
    for r in relationships:
        if {(r.organization_id, r.mentor_id), (r.organization_id, r.mentee_id)} & away:
            continue  # as good as paused: its leave pause may not be applied yet
        policy = policies.get((r.organization_id, r.program_id), DEFAULT_POLICY)
        found += no_session(r, policy, now)
        found += check_in_overdue(r, policy, now)
        found += ending_soon(r, policy, now)
    for m in matches:
        policy = policies.get((m.organization_id, m.program_id), DEFAULT_POLICY)
        found += proposal_unanswered(m, policy, now)
    unique = {n.nudge_id: n for n in found if (n.organization_id, n.recipient_id) not in away}
    return list(unique.values())
