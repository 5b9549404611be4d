"""An organisation's employment facts, from hr-events and program sign-ups, and retention. Pure.

Retention is the headline ROI figure: of the people who joined a program, the share still
employed N months later, against people who never joined one over the same horizon.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from services.analytics.program_state import DAY_SECONDS, seconds
from services.common.pb.mentoring.v1.events_pb2 import Event

# A plain dict, or the working view of a sharded state.
State = MutableMapping[str, Any]

MONTH_SECONDS = 30.4375 * DAY_SECONDS
DEFAULT_HORIZONS = (6, 12)
# Index of each field in an employee's list.
E_STARTED_AT, E_LEFT_AT = range(2)


def new_state() -> dict[str, Any]:
    # employees: HR person id -> [employed since, left at or None]
    # joined: HR person id -> {program id: first sign-up time}
    return {"employees": {}, "joined": {}}


def apply(state: State, event: Event) -> None:
    """Fold an hr-event, or the organisation copy of a participant's registration."""
    kind = event.WhichOneof("payload")
    at = seconds(event)
    if kind == "participant_registered":
        person = event.participant_registered.profile.hr_person_id
        if person:
            programs = state["joined"].setdefault(person, {})
            programs.setdefault(event.envelope.program_id, at)
    elif kind == "hr_event":
        _hr_event(state, event, at)


def _hr_event(state: State, event: Event, at: float) -> None:
    hr = event.hr_event
    employee = state["employees"].setdefault(hr.hr_person_id, [at, None])
    change = hr.WhichOneof("change")
    if change == "hired":
        hired = hr.hired.hired_on
        employee[E_STARTED_AT] = hired.ToMilliseconds() / 1000.0 if hired.seconds else at
        employee[E_LEFT_AT] = None
    elif change == "terminated":
        effective = hr.terminated.effective_on
        employee[E_LEFT_AT] = effective.ToMilliseconds() / 1000.0 if effective.seconds else at
    else:
        employee[E_STARTED_AT] = min(employee[E_STARTED_AT], at)


@dataclass(frozen=True)
class RetentionRow:
    months: int
    participants: int
    participants_retained: int
    non_participants: int
    non_participants_retained: int

    @property
    def participant_rate(self) -> float:
        return self.participants_retained / self.participants if self.participants else 0.0

    @property
    def non_participant_rate(self) -> float:
        if not self.non_participants:
            return 0.0
        return self.non_participants_retained / self.non_participants

    @property
    def difference_points(self) -> float:
        return 100.0 * (self.participant_rate - self.non_participant_rate)


def _employed(employee: list[Any] | None, at: float) -> bool:
    # Someone known only from a program sign-up was employed when they signed up.
    if employee is None:
        return True
    left = employee[E_LEFT_AT]
    return employee[E_STARTED_AT] <= at and (left is None or left > at)


def _still_there(employee: list[Any] | None, at: float) -> bool:
    return employee is None or employee[E_LEFT_AT] is None or employee[E_LEFT_AT] > at


def retention(
    state: Mapping[str, Any], program_id: str, horizons: tuple[int, ...], now: float
) -> list[RetentionRow]:
    employees = state["employees"]
    joins: dict[str, float] = {}
    for person, programs in state["joined"].items():
        times = [t for p, t in programs.items() if not program_id or p == program_id]
        if times:
            joins[person] = min(times)
    reference = min(joins.values(), default=None)
    rows = []
    for months in horizons or DEFAULT_HORIZONS:
        span = months * MONTH_SECONDS
        participants = [
            person
            for person, joined in joins.items()
            if joined + span <= now and _employed(employees.get(person), joined)
        ]
        kept = [p for p in participants if _still_there(employees.get(p), joins[p] + span)]
        others: list[str] = []
        others_kept: list[str] = []
        if reference is not None and reference + span <= now:
            others = [
                person
                for person, employee in employees.items()
                if person not in state["joined"] and _employed(employee, reference)
            ]
            others_kept = [p for p in others if _still_there(employees[p], reference + span)]
        rows.append(
            RetentionRow(months, len(participants), len(kept), len(others), len(others_kept))
        )
    return rows
