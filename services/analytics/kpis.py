"""KPI arithmetic over a program's state: figures, skill balance, relationships at risk. Pure.

Flow figures (applications, sessions, ratings...) are sums of daily counters, so a time range is
answered to the day. Stock figures (who is enrolled, active, at risk) describe the program now.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.analytics import stocks
from services.analytics.program_state import (
    DAY_SECONDS,
    P_ACTIVE,
    P_CAPACITY,
    P_COHORT,
    P_MATCHED_AT,
    P_ROLE,
    P_SKILLS,
    R_ACTIVE,
    R_COHORT,
    R_LAST_CONTACT,
    R_LAST_SESSION,
    R_MENTEE,
    R_MENTOR,
    R_RATING,
    R_SESSIONS,
    R_STARTED_AT,
    new_state,
    split_day_key,
)
from services.common.pb.mentoring.v1.common_pb2 import ROLE_MENTEE, ROLE_MENTOR

FLOW_COUNTERS: tuple[str, ...] = (
    "applications",
    "mentor_applications",
    "mentee_applications",
    "approvals",
    "rejections",
    "waitlisted",
    "withdrawals",
    "matches_proposed",
    "matches_accepted",
    "matches_declined",
    "matches_expired",
    "relationships_started",
    "relationships_completed",
    "relationships_closed_early",
    "sessions",
    "session_minutes",
    "messages",
    "feedback_responses",
    "goals_set",
    "goals_achieved",
    "trainings_completed",
    "matching_runs",
)
WEEKLY_COUNTERS: tuple[str, ...] = (
    "mentor_applications",
    "mentee_applications",
    "approvals",
    "relationships_started",
    "sessions",
    "session_minutes",
    "messages",
    "feedback_responses",
    "goals_achieved",
)
# A program's state as read: a plain dict, or a stored sharded state.
State = Mapping[str, Any]
RATINGS = range(1, 6)
TREND_WEEKS = 4
# A pair is at risk when it has not been in touch for this many expected meeting intervals.
MISSED_MEETINGS_AT_RISK = 2


@dataclass(frozen=True)
class DayRange:
    """Half-open [first, last) in days since the epoch; None is open."""

    first: int | None = None
    last: int | None = None

    def __contains__(self, day: int) -> bool:
        return (self.first is None or day >= self.first) and (self.last is None or day < self.last)

    def holds(self, at: float) -> bool:
        return int(at // DAY_SECONDS) in self


@dataclass
class Figures:
    """ProgramKpis' fields, minus identity."""

    scalars: dict[str, float] = field(default_factory=dict)
    satisfaction_distribution: list[int] = field(default_factory=list)
    weekly: list[dict[str, Any]] = field(default_factory=list)
    campaigns: list[tuple[str, int, int]] = field(default_factory=list)


def _days(state: State, cohort: str) -> Iterator[tuple[int, dict[str, int]]]:
    for key, counters in state["days"].items():
        name, day = split_day_key(key)
        if not cohort or name == cohort:
            yield day, counters


def _people(state: State, cohort: str) -> Iterator[list[Any]]:
    for person in state["people"].values():
        if person[P_ACTIVE] and (not cohort or person[P_COHORT] == cohort):
            yield person


def _relationships(state: State, cohort: str) -> Iterator[tuple[str, list[Any]]]:
    """Started relationships (not placeholders for events read before their start)."""
    for relationship_id, relationship in state["relationships"].items():
        if relationship[R_STARTED_AT] is None:
            continue
        if not cohort or relationship[R_COHORT] == cohort:
            yield relationship_id, relationship


def week_of(day: int) -> int:
    # Day 0 (1970-01-01) was a Thursday: step back to that week's Monday.
    return day - (day + 3) % 7


def figures(state: State, cohort: str, days: DayRange, now: float) -> Figures:
    out = Figures()
    totals: dict[str, int] = defaultdict(int)
    weeks: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day, counters in _days(state, cohort):
        if day not in days:
            continue
        week = weeks[week_of(day)]
        for name, value in counters.items():
            totals[name] += value
            week[name] += value
    scalars = out.scalars
    for name in FLOW_COUNTERS:
        scalars[name] = totals[name]
    scalars["session_hours"] = totals["session_minutes"] / 60.0
    scalars["events"] = state["events"]

    stock = stocks.tally(state, cohort)
    scalars["mentors"] = stock.mentors
    scalars["mentees"] = stock.mentees
    scalars["mentees_matched"] = stock.matched
    scalars["match_rate"] = _share(stock.matched, stock.mentees)
    if days.first is None and days.last is None:
        scalars["median_days_to_match"] = stock.median_wait()
        scalars["mean_days_to_match"] = stock.mean_wait()
    else:
        # Matched within a range: rarely asked, so counted from the mentees themselves.
        waits = [
            stocks.days_to_match(p)
            for p in _people(state, cohort)
            if p[P_ROLE] == ROLE_MENTEE
            and p[P_MATCHED_AT] is not None
            and days.holds(p[P_MATCHED_AT])
        ]
        scalars["median_days_to_match"] = statistics.median(waits) if waits else 0.0
        scalars["mean_days_to_match"] = statistics.fmean(waits) if waits else 0.0
    scalars["participants_trained"] = stock.trained
    scalars["training_completion_rate"] = _share(stock.trained, stock.people)

    scalars["active_relationships"] = stock.active
    pairs = stock.relationships
    scalars["sessions_per_relationship"] = _share(stock.sessions, pairs)
    scalars["hours_per_relationship"] = _share(stock.minutes, pairs) / 60
    scalars["messages_per_relationship"] = _share(stock.messages, pairs)
    scalars["relationships_at_risk"] = stock.at_risk(_out_of_touch_since(state, now))
    scalars["goal_completion_rate"] = _share(totals["goals_achieved"], totals["goals_set"])

    out.satisfaction_distribution = [totals[f"rating_{r}"] for r in RATINGS]
    scalars["satisfaction_mean"] = _mean_rating(totals)
    scalars["satisfaction_trend"] = _trend(weeks)
    out.weekly = [
        {
            "week_start_day": week,
            **{name: counters[name] for name in WEEKLY_COUNTERS},
            "satisfaction_mean": _mean_rating(counters),
        }
        for week, counters in sorted(weeks.items())
    ]
    out.campaigns = sorted(
        (campaign, counts[0], counts[1])
        for name, campaigns in state["campaigns"].items()
        if not cohort or name == cohort
        for campaign, counts in campaigns.items()
    )
    return out


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _mean_rating(counters: dict[str, int]) -> float:
    return _share(counters.get("rating_sum", 0), counters.get("feedback_responses", 0))


def _trend(weeks: dict[int, dict[str, int]]) -> float:
    rated = [weeks[w] for w in sorted(weeks) if weeks[w].get("feedback_responses")]
    if len(rated) < 2:
        return 0.0
    # The last four weeks against the four before; with fewer than eight, halves.
    split = max(len(rated) - TREND_WEEKS, len(rated) // 2)
    before, recent = rated[max(0, split - TREND_WEEKS) : split], rated[split:]
    return _mean_rating(_sum(recent)) - _mean_rating(_sum(before))


def _sum(weeks: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = defaultdict(int)
    for week in weeks:
        for name, value in week.items():
            total[name] += value
    return total


@dataclass(frozen=True)
class RiskRow:
    relationship_id: str
    mentor_id: str
    mentee_id: str
    cohort_id: str
    started_at: float
    last_session_at: float | None
    sessions: int
    days_since_contact: int
    latest_rating: int
    reasons: tuple[str, ...]


def _out_of_touch_since(state: State, now: float) -> float:
    """A pair whose last contact is at or before this moment is out of touch."""
    return now - (MISSED_MEETINGS_AT_RISK * int(state["cadence_days"]) + 1) * DAY_SECONDS


def count_at_risk(state: State, cohort: str, now: float) -> int:
    """How many pairs `at_risk` lists, without listing them (a figure of every KPI read)."""
    return stocks.tally(state, cohort).at_risk(_out_of_touch_since(state, now))


def at_risk(state: State, cohort: str, now: float) -> list[RiskRow]:
    """Active pairs out of touch for two meeting intervals, or whose last check-in was poor."""
    limit_days = MISSED_MEETINGS_AT_RISK * int(state["cadence_days"])
    rows = []
    for relationship_id, r in _relationships(state, cohort):
        if not r[R_ACTIVE]:
            continue
        quiet = int(max(0.0, now - r[R_LAST_CONTACT]) // DAY_SECONDS)
        reasons = []
        if quiet > limit_days:
            if r[R_SESSIONS]:
                reasons.append(f"no contact for {quiet} days")
            else:
                reasons.append(f"no session in the {quiet} days since the start")
        if stocks.low_rated(r):
            reasons.append(f"latest check-in rating {r[R_RATING]}/5")
        if reasons:
            rows.append(
                RiskRow(
                    relationship_id=relationship_id,
                    mentor_id=r[R_MENTOR],
                    mentee_id=r[R_MENTEE],
                    cohort_id=r[R_COHORT],
                    started_at=r[R_STARTED_AT],
                    last_session_at=r[R_LAST_SESSION],
                    sessions=r[R_SESSIONS],
                    days_since_contact=quiet,
                    latest_rating=r[R_RATING],
                    reasons=tuple(reasons),
                )
            )
    rows.sort(key=lambda row: (-len(row.reasons), -row.days_since_contact, row.relationship_id))
    return rows


@dataclass(frozen=True)
class SkillRow:
    skill: str
    mentors: int
    mentor_capacity: int
    mentees: int

    @property
    def gap(self) -> int:
        return self.mentor_capacity - self.mentees

    @property
    def coverage(self) -> float:
        return _share(self.mentor_capacity, self.mentees)


def skill_balance(state: State, cohort: str, limit: int = 0) -> list[SkillRow]:
    """Supply (mentors and their places) against demand (mentees), shortages first."""
    mentors: dict[str, int] = defaultdict(int)
    capacity: dict[str, int] = defaultdict(int)
    mentees: dict[str, int] = defaultdict(int)
    for person in _people(state, cohort):
        for skill in person[P_SKILLS]:
            if person[P_ROLE] == ROLE_MENTOR:
                mentors[skill] += 1
                capacity[skill] += max(1, person[P_CAPACITY])
            elif person[P_ROLE] == ROLE_MENTEE:
                mentees[skill] += 1
    rows = [
        SkillRow(skill, mentors[skill], capacity[skill], mentees[skill])
        for skill in set(mentors) | set(mentees)
    ]
    rows.sort(key=lambda row: (row.gap, -row.mentees, row.skill))
    return rows[:limit] if limit else rows


# The figures exported as Prometheus gauges: every scalar of a program's figures.
GAUGED: tuple[str, ...] = tuple(figures(new_state(), "", DayRange(), 0.0).scalars)
