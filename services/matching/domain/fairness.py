"""Fairness report for a bulk matching run: is some group of mentees systematically worse off?

For each dimension (a text attribute of ``Person`` such as department, location or gender)
the mentees are split into groups by that attribute, and each group gets its size, how many
of its mentees were matched, its match rate, and the distribution of the match scores of
its matched mentees. A row for the whole cohort (dimension ``"overall"``, group ``"all"``)
comes first, then each dimension in the order asked for.

Groups:

- A mentee's group is its attribute value with surrounding whitespace removed. An empty
  value goes to ``"unknown"``; for self-described attributes (gender, cultural
  background) it goes to ``"not stated"`` instead, so only mentees who stated a value
  count towards a named group.
- Privacy: every group with fewer than ``min_group_size`` mentees (including "unknown" /
  "not stated") is merged into a single group ``"other (fewer than N)"`` for that
  dimension, so a rare value cannot single anyone out. The merged group is reported even
  if it is itself still small: it hides *which* rare value each of its mentees has, not
  that such mentees exist (their count can be derived from the other rows anyway).
- Rows within a dimension: named groups in alphabetical order, then "unknown" / "not
  stated", then the merged group.

Statistics:

- ``match_rate`` = matched / mentees (0.0 for an empty cohort).
- Score statistics are over the scores of the group's matched mentees, 0.0 when none was
  matched. ``mean_score`` is the arithmetic mean. Percentiles use the *nearest-rank*
  method: with the n scores sorted ascending as x_1 <= ... <= x_n, the p-th percentile is
  x_k with k = ceil(p * n / 100) (and k = 1 when that is 0). It is always one of the
  observed scores; for an even n the median is the lower of the two middle scores.
- ``flagged`` applies the four-fifths rule (US EEOC adverse-impact guideline): a group is
  flagged when its match rate is *strictly* below 0.8 x the overall match rate, and only
  when the overall rate is > 0. The comparison is done exactly in integers
  (5 * matched_g * N < 4 * M * n_g), so a group at exactly 0.8 x overall is never flagged
  because of rounding.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.matching.domain.model import Person

__all__ = [
    "ALL",
    "NOT_STATED",
    "OVERALL",
    "UNKNOWN",
    "GroupStats",
    "fairness_report",
    "other_group_label",
]

OVERALL = "overall"
ALL = "all"
UNKNOWN = "unknown"
NOT_STATED = "not stated"
# Attributes a person describes themself by: an empty value means they chose not to say.
_SELF_DESCRIBED = frozenset({"gender", "cultural_background"})
# Person's text attributes: the only ones that can be grouped by.
_TEXT_FIELDS = frozenset(f.name for f in dataclasses.fields(Person) if f.type in ("str", str))


@dataclass(frozen=True, slots=True)
class GroupStats:
    dimension: str
    group: str
    mentees: int
    matched: int
    match_rate: float
    mean_score: float
    p10_score: float
    median_score: float
    p90_score: float
    flagged: bool


def other_group_label(min_group_size: int) -> str:
    """The name of the merged group of small groups."""
    return f"other (fewer than {min_group_size})"


def fairness_report(
    mentees: Sequence[Person],
    scores: Mapping[str, float],
    dimensions: Sequence[str] = ("department", "location", "gender"),
    min_group_size: int = 5,
) -> list[GroupStats]:
    """Per-group match rates and score distributions for one matching run.

    Args:
        mentees: every mentee the run considered, matched or not.
        scores: match score of each *matched* mentee, by participant id; unmatched mentees
            are absent. Ids of people not in ``mentees`` are ignored.
        dimensions: ``Person`` text attributes to group by.
        min_group_size: groups smaller than this are merged (see the module docstring).

    Returns:
        The "overall" row, then the rows of each dimension in order.

    Raises:
        ValueError: a dimension is not a text attribute of ``Person`` or is repeated,
            ``min_group_size`` < 1, two mentees share a participant id, or a score of a
            listed mentee is not finite.
    """
    if min_group_size < 1:
        raise ValueError(f"min_group_size must be at least 1, got {min_group_size}")
    for i, dim in enumerate(dimensions):
        if dim not in _TEXT_FIELDS:
            raise ValueError(
                f"cannot group by {dim!r}: not a text attribute of Person "
                f"(one of {', '.join(sorted(_TEXT_FIELDS))})"
            )
        if dim in dimensions[:i]:
            raise ValueError(f"dimension {dim!r} is listed twice")

    seen: set[str] = set()
    for person in mentees:
        pid = person.participant_id
        if pid in seen:
            raise ValueError(f"mentee {pid!r} is listed twice")
        seen.add(pid)
        score = scores.get(pid)
        if score is not None and not math.isfinite(score):
            raise ValueError(f"score of mentee {pid!r} is not finite: {score!r}")

    total = len(mentees)
    total_matched = sum(1 for p in mentees if p.participant_id in scores)

    def stats(dimension: str, group: str, members: Sequence[Person]) -> GroupStats:
        n = len(members)
        group_scores = sorted(
            scores[p.participant_id] for p in members if p.participant_id in scores
        )
        matched = len(group_scores)
        # Four-fifths rule, exactly: matched/n < 0.8 * total_matched/total.
        flagged = total_matched > 0 and 5 * matched * total < 4 * total_matched * n
        return GroupStats(
            dimension=dimension,
            group=group,
            mentees=n,
            matched=matched,
            match_rate=matched / n if n else 0.0,
            mean_score=math.fsum(group_scores) / matched if matched else 0.0,
            p10_score=nearest_rank(group_scores, 10),
            median_score=nearest_rank(group_scores, 50),
            p90_score=nearest_rank(group_scores, 90),
            flagged=flagged,
        )

    report = [stats(OVERALL, ALL, mentees)]
    other = other_group_label(min_group_size)
    for dim in dimensions:
        missing = NOT_STATED if dim in _SELF_DESCRIBED else UNKNOWN
        groups: dict[str, list[Person]] = {}
        for person in mentees:
            value = str(getattr(person, dim)).strip()
            groups.setdefault(value or missing, []).append(person)

        named = sorted(g for g in groups if g != missing and len(groups[g]) >= min_group_size)
        rows = [(g, groups[g]) for g in named]
        if missing in groups and len(groups[missing]) >= min_group_size:
            rows.append((missing, groups[missing]))
        small = [
            p for g, members in groups.items() if len(members) < min_group_size for p in members
        ]
        if small:
            rows.append((other, small))
        report.extend(stats(dim, g, members) for g, members in rows)
    return report


def nearest_rank(sorted_values: Sequence[float], percentile: int) -> float:
    """Nearest-rank percentile of ascending values; 0.0 for no values."""
    n = len(sorted_values)
    if n == 0:
        return 0.0
    k = max(1, -(-percentile * n // 100))  # ceil(p * n / 100) in integers
    return sorted_values[k - 1]
