"""Which mentor to propose to which waiting mentee. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.matching.domain.assignment import Pair, solve_assignment
from services.matching.domain.scoring import Fit, skill_fit


@dataclass(frozen=True, slots=True)
class Candidate:
    participant_id: str
    skills: tuple[str, ...]
    # Free mentee slots for a mentor; unused for a mentee.
    free_slots: int = 0


@dataclass(frozen=True, slots=True)
class PlannedMatch:
    mentor_id: str
    mentee_id: str
    fit: Fit


def plan_matches(
    mentees: Sequence[Candidate],
    mentors: Sequence[Candidate],
    excluded: Iterable[tuple[str, str]] = (),
    min_score: float = 0.0,
) -> list[PlannedMatch]:
    """Match as many waiting mentees as possible, then maximise the total fit.

    A pair is a candidate only if its fit is above min_score and it is not excluded
    ((mentor_id, mentee_id) pairs, e.g. declined before): no match beats a bad one.
    """
    banned = set(excluded)
    fits: dict[tuple[str, str], Fit] = {}
    pairs: list[Pair] = []
    for mentee in mentees:
        for mentor in mentors:
            if mentor.free_slots <= 0 or mentor.participant_id == mentee.participant_id:
                continue
            if (mentor.participant_id, mentee.participant_id) in banned:
                continue
            fit = skill_fit(mentor.skills, mentee.skills)
            if fit.score > min_score:
                fits[(mentor.participant_id, mentee.participant_id)] = fit
                pairs.append(Pair(mentee.participant_id, mentor.participant_id, fit.score))
    capacities = {m.participant_id: m.free_slots for m in mentors}
    return [
        PlannedMatch(a.mentor_id, a.mentee_id, fits[(a.mentor_id, a.mentee_id)])
        for a in solve_assignment(pairs, capacities)
    ]
