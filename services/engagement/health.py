"""Relationship health: one 0-100 number a coordinator can sort by. Pure: no I/O.

The formula
-----------
Three parts, each between 0 and 1:

- **cadence** — sessions held against the sessions expected so far. A pair is expected to meet
  once every ``cadence_days`` of *active* time — the program's meeting cadence
  (program-changed), ``DEFAULT_CADENCE_DAYS`` (twice a month) when the program sets none.
  Active time is the days from the start to now (or to the end, for an ended relationship),
  minus the time spent paused (a paused relationship's clock stops when it paused).
  ``expected = active_days / cadence_days``. While fewer than one session is expected yet
  (the first 15 days, by default) cadence is 1: a new pair is not behind. Afterwards
  ``cadence = min(1, held / expected)``.
- **goals** — the mean progress of the goals that are not abandoned, as a fraction
  (``progress / 100``; an achieved goal counts 1). No such goal: the part is left out.
- **ratings** — the mean check-in rating mapped from 1..5 to 0..1: ``(mean - 1) / 4``.
  No rating yet: the part is left out.

``score = round(100 * Σ weight·part / Σ weight)`` over the parts present, with weights
cadence 50, goals 25, ratings 25. So a pair with only sessions is scored on cadence alone, and
a left-out part never drags the score down.

Example: 60 active days (4 sessions expected), 3 held → cadence 0.75; goals at 40% and
achieved → goals 0.7; ratings 4 and 5 → (4.5 - 1) / 4 = 0.875.
``(50·0.75 + 25·0.7 + 25·0.875) / 100 = 0.76875`` → score 77.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

# Twice every 30 days, when the program states no meeting cadence.
DEFAULT_CADENCE_DAYS = 15.0
WEIGHTS = {"cadence": 50.0, "goals": 25.0, "ratings": 25.0}
ACHIEVED, ABANDONED = "achieved", "abandoned"


@dataclass(frozen=True, slots=True)
class Health:
    score: int
    cadence: float
    goals: float | None
    ratings: float | None
    expected_sessions: float


def active_days(
    *,
    started_at: datetime,
    until: datetime,
    paused_seconds: float = 0.0,
    paused_at: datetime | None = None,
) -> float:
    """Days the relationship has been running: start to `until` (now, or when it ended),
    minus completed pauses and, while paused, the current pause."""
    end = min(until, paused_at) if paused_at is not None else until
    seconds = (end - started_at).total_seconds() - paused_seconds
    return max(0.0, seconds / 86400)


def expected_sessions(days: float, cadence_days: float = 0) -> float:
    """Sessions expected in `days` of active time, one per `cadence_days` (0 = the default)."""
    return days / (cadence_days or DEFAULT_CADENCE_DAYS)


def cadence_part(held: int, days: float, cadence_days: float = 0) -> float:
    expected = expected_sessions(days, cadence_days)
    if expected < 1:
        return 1.0
    return min(1.0, held / expected)


def goals_part(goals: Sequence[tuple[str, int]]) -> float | None:
    """Mean progress of (status, progress) goals that are not abandoned."""
    counted = [
        1.0 if status == ACHIEVED else progress / 100
        for status, progress in goals
        if status != ABANDONED
    ]
    return sum(counted) / len(counted) if counted else None


def ratings_part(ratings: Sequence[int]) -> float | None:
    if not ratings:
        return None
    return (sum(ratings) / len(ratings) - 1) / 4


def health(
    *,
    held: int,
    days: float,
    goals: Sequence[tuple[str, int]],
    ratings: Sequence[int],
    cadence_days: float = 0,
) -> Health:
    parts = {
        "cadence": cadence_part(held, days, cadence_days),
        "goals": goals_part(goals),
        "ratings": ratings_part(ratings),
    }
    present = {name: value for name, value in parts.items() if value is not None}
    total_weight = sum(WEIGHTS[name] for name in present)
    weighted = sum(WEIGHTS[name] * value for name, value in present.items())
    return Health(
        score=round(100 * weighted / total_weight),
        cadence=parts["cadence"] or 0.0,
        goals=parts["goals"],
        ratings=parts["ratings"],
        expected_sessions=round(expected_sessions(days, cadence_days), 2),
    )
