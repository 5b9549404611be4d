"""A program's stock figures (who is enrolled, matched, active, at risk) as running tallies. Pure.

Walking every person and relationship on each KPI read made a read cost what the program's size
does: with 100,000 people, the worker spent most of its time recomputing figures that a step had
barely moved. A stored state keeps one tally per cohort (and one for all of them) that each
entity write moves by what the entity's old value counted and its new value counts; a plain
state (tests, and the whole-fold reference) is walked into the same tally. Both give exactly
the figures the walk gave: counts and sums are integers, the days-to-match are kept sorted
(median) with their exact sum (mean), and last contacts by day answer "out of touch since".
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol, runtime_checkable

from services.analytics.program_state import (
    DAY_SECONDS,
    P_ACTIVE,
    P_APPROVED_AT,
    P_COHORT,
    P_MATCHED_AT,
    P_ROLE,
    P_TRAINED,
    R_ACTIVE,
    R_COHORT,
    R_LAST_CONTACT,
    R_MESSAGES,
    R_MINUTES,
    R_RATING,
    R_SESSIONS,
    R_STARTED_AT,
)
from services.common.pb.mentoring.v1.common_pb2 import ROLE_MENTEE, ROLE_MENTOR

# A pair whose latest check-in rated this or lower is at risk whatever its contact.
LOW_RATING = 2
# The kinds of entity the tallies count.
TALLIED = frozenset({"people", "relationships"})


def days_to_match(person: list[Any]) -> float:
    return float((person[P_MATCHED_AT] - person[P_APPROVED_AT]) / DAY_SECONDS)


def low_rated(relationship: list[Any]) -> bool:
    rating = relationship[R_RATING]
    return bool(rating) and rating <= LOW_RATING


@dataclass
class Tally:
    """What the stock figures count, over active people and started relationships."""

    people: int = 0
    mentors: int = 0
    mentees: int = 0
    matched: int = 0
    trained: int = 0
    # Days to match of the matched mentees, ascending, and their exact sum.
    waits: list[float] = field(default_factory=list)
    wait_sum: Fraction = field(default_factory=Fraction)
    relationships: int = 0
    active: int = 0
    sessions: int = 0
    minutes: int = 0
    messages: int = 0
    # Active pairs rated low, and the last contact of the other active pairs, by UTC day.
    low_rated: int = 0
    contacts: dict[int, dict[float, int]] = field(default_factory=dict)
    contacts_per_day: dict[int, int] = field(default_factory=dict)

    def median_wait(self) -> float:
        waits, n = self.waits, len(self.waits)
        if not n:
            return 0.0
        # statistics.median of the same values, which are sorted already.
        middle = n // 2
        return waits[middle] if n % 2 else (waits[middle - 1] + waits[middle]) / 2

    def mean_wait(self) -> float:
        # statistics.fmean: the correctly rounded sum (math.fsum) over the count.
        return float(self.wait_sum) / len(self.waits) if self.waits else 0.0

    def at_risk(self, since: float) -> int:
        """Active pairs rated low, or whose last contact is at or before `since`."""
        day = int(since // DAY_SECONDS)
        count = self.low_rated
        for contact_day, total in self.contacts_per_day.items():
            if contact_day < day:
                count += total
            elif contact_day == day:
                count += sum(n for at, n in self.contacts[day].items() if at <= since)
        return count

    # --- moved by one entity -----------------------------------------------------------

    def person(self, person: list[Any], sign: int, *, in_order: bool = True) -> None:
        """Count the person in (sign 1) or out (-1); `in_order=False` leaves the waits for the
        caller to sort once, when counting a whole state."""
        if not person[P_ACTIVE]:
            return
        self.people += sign
        if person[P_TRAINED]:
            self.trained += sign
        role = person[P_ROLE]
        if role == ROLE_MENTOR:
            self.mentors += sign
        elif role == ROLE_MENTEE:
            self.mentees += sign
            if person[P_MATCHED_AT] is not None:
                self.matched += sign
                self._wait(days_to_match(person), sign, in_order)

    def relationship(self, relationship: list[Any], sign: int) -> None:
        if relationship[R_STARTED_AT] is None:
            return
        self.relationships += sign
        self.sessions += sign * relationship[R_SESSIONS]
        self.minutes += sign * relationship[R_MINUTES]
        self.messages += sign * relationship[R_MESSAGES]
        if not relationship[R_ACTIVE]:
            return
        self.active += sign
        if low_rated(relationship):
            self.low_rated += sign
        else:
            self._contact(float(relationship[R_LAST_CONTACT]), sign)

    def _wait(self, wait: float, sign: int, in_order: bool) -> None:
        self.wait_sum += sign * Fraction(wait)
        if sign > 0 and not in_order:
            self.waits.append(wait)
        elif sign > 0:
            bisect.insort(self.waits, wait)
        else:
            del self.waits[bisect.bisect_left(self.waits, wait)]

    def _contact(self, at: float, sign: int) -> None:
        day = int(at // DAY_SECONDS)
        contacts = self.contacts.setdefault(day, {})
        contacts[at] = contacts.get(at, 0) + sign
        self.contacts_per_day[day] = self.contacts_per_day.get(day, 0) + sign
        if not contacts[at]:
            del contacts[at]
        if not self.contacts_per_day[day]:
            del self.contacts_per_day[day], self.contacts[day]


class Tallies:
    """One program's tallies: all its cohorts together ("") and each cohort's own."""

    def __init__(self) -> None:
        self._all = Tally()
        self._cohorts: dict[str, Tally] = {}

    def of(self, cohort: str) -> Tally:
        if not cohort:
            return self._all
        return self._cohorts.get(cohort) or Tally()

    def replace(self, kind: str, old: Any, new: Any) -> None:
        """An entity's value `old` replaced by `new` (either None: not there)."""
        move: Callable[[Tally, list[Any], int], None]
        if kind == "people":
            cohort_at, move = P_COHORT, Tally.person
        elif kind == "relationships":
            cohort_at, move = R_COHORT, Tally.relationship
        else:
            return
        for value, sign in ((old, -1), (new, 1)):
            if value is not None:
                move(self._all, value, sign)
                cohort = str(value[cohort_at])
                if cohort:
                    move(self._cohorts.setdefault(cohort, Tally()), value, sign)


@runtime_checkable
class Tallied(Protocol):
    """A state that keeps its tallies as its entities change."""

    def tally(self, cohort: str) -> Tally: ...


def tally(state: Mapping[str, Any], cohort: str) -> Tally:
    """The state's tally for the cohort ("" for all): kept, or counted now."""
    if isinstance(state, Tallied):
        return state.tally(cohort)
    counted = Tally()
    for person in state["people"].values():
        if not cohort or person[P_COHORT] == cohort:
            counted.person(person, 1, in_order=False)
    counted.waits.sort()
    for relationship in state["relationships"].values():
        if not cohort or relationship[R_COHORT] == cohort:
            counted.relationship(relationship, 1)
    return counted
