"""How well a mentor fits a mentee. Pure: no I/O.

The foundation scores skill overlap only; the configurable criteria engine plugs in here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    score: float
    weight: float
    detail: str


@dataclass(frozen=True, slots=True)
class Fit:
    score: float
    breakdown: tuple[Criterion, ...]


def skill_fit(offered: Sequence[str], sought: Sequence[str]) -> Fit:
    """Share of the mentee's sought skills the mentor offers, weighted by the mentee's priority.

    Sought skills come in priority order; the first counts n times as much as the last, so a
    mentor who covers what matters most to the mentee scores higher.
    """
    if not sought:
        return Fit(0.0, (Criterion("skills", 0.0, 1.0, "mentee seeks no skills"),))
    offered_set = set(offered)
    n = len(sought)
    weights = [n - i for i in range(n)]
    covered = [skill for skill in sought if skill in offered_set]
    gained = sum(w for skill, w in zip(sought, weights, strict=True) if skill in offered_set)
    score = gained / sum(weights)
    detail = "offers " + ", ".join(covered) if covered else "offers none of the sought skills"
    return Fit(score, (Criterion("skills", score, 1.0, detail),))
