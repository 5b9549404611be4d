"""How well one mentor fits one mentee, criterion by criterion, with reasons. Pure: no I/O.

Implements the rules written in model.py's docstring, exactly, for one pair at a time and with
a human-readable detail per criterion; candidates.py computes the same numbers vectorised, so
the arithmetic here is kept literal (same operations, same order, plain floats).

Choices where model.py leaves room (keep candidates.py in step):
- Skills on Person are taken as already canonical; matching goes through
  Taxonomy.relatedness, which compares canonical names (and caches them), so raw names still
  score right. Ties between offered skills go to the first one offered (detail only).
- Text fields are compared exactly (goals, departments, languages, gender, cultural
  background), except location, which model.py says is case-insensitive (str.casefold).
  "Empty" means the empty string / empty collection.
- SENIORITY: the band is [min_level_gap, max_level_gap]; below it the distance is
  min_level_gap - gap, above it gap - max_level_gap (checked in that order, which only matters
  for a misconfigured band with min > max). Without allow_reverse any negative gap scores 0,
  whatever the band.
- TIMEZONE: the circular difference is taken on minutes (|a - b| mod 1440, then the shorter
  way round) and divided by 60; "passes" compares those hours with max_timezone_hours.
- AVAILABILITY: slots with end <= start are empty and ignored; a person's overlapping slots
  are merged first. With min_overlap_minutes <= 0 the requirement is always met: score 1.
- MENTEE_CHOICE: k counts the choices as given; a mentor listed twice takes the first rank.
- Same person: equal non-empty participant ids or equal non-empty HR ids. Excluded pairs are
  (mentor participant id, mentee participant id), in that direction only.
- Reporting line: a person's manager is Person.manager_id, or manager_of[hr id] when that is
  empty; the manager's manager is manager_of[manager]. Empty ids never match.
- The breakdown lists every configured criterion (weight 0 ones too, for the coordinator);
  only weight > 0 enters the mean. Weights are assumed finite (model.MAX_WEIGHT).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from services.matching.domain.model import (
    Constraints,
    CriterionResult,
    CriterionSpec,
    Evaluation,
    Kind,
    MatchingConfig,
    Person,
    ReportingRule,
    Slot,
)
from services.matching.domain.taxonomy import EMPTY_TAXONOMY, Taxonomy

UNKNOWN_SCORE = 0.5
MINUTES_PER_DAY = 24 * 60
# The default for evaluate(); never mutated (its manager_of dict is read only here).
_NO_CONSTRAINTS = Constraints()


def evaluate(
    mentor: Person,
    mentee: Person,
    config: MatchingConfig,
    taxonomy: Taxonomy = EMPTY_TAXONOMY,
    constraints: Constraints = _NO_CONSTRAINTS,
) -> Evaluation:
    """Score a pair on the program's criteria and list every reason it is not allowed."""
    breakdown = tuple(criterion_score(spec, mentor, mentee, taxonomy) for spec in config.criteria)

    weighted = 0.0
    total_weight = 0.0
    for result in breakdown:
        if result.weight > 0:
            weighted += result.weight * result.score
            total_weight += result.weight
    score = weighted / total_weight if total_weight > 0 else 1.0

    violations: list[str] = []
    if mentor.participant_id and mentor.participant_id == mentee.participant_id:
        violations.append(f"same person: participant {mentor.participant_id!r} on both sides")
    if mentor.hr_person_id and mentor.hr_person_id == mentee.hr_person_id:
        violations.append(f"same person: HR id {mentor.hr_person_id!r} on both sides")
    if (mentor.participant_id, mentee.participant_id) in constraints.excluded:
        violations.append("excluded pair: declined before or marked do not match again")
    line = reporting_line(mentor, mentee, constraints.manager_of, config.reporting_rule)
    if line is not None:
        violations.append(line)
    for spec, result in zip(config.criteria, breakdown, strict=True):
        if spec.hard and not result.passed:
            violations.append(f"{result.kind} (hard) not met: {result.detail}")
    return Evaluation(score, breakdown, tuple(violations))


def reporting_line(
    mentor: Person, mentee: Person, manager_of: Mapping[str, str], rule: ReportingRule
) -> str | None:
    """Why the two are in one reporting line (either direction, up to skip-level), or None."""
    mentor_manager, mentor_skip = managers(mentor, manager_of)
    mentee_manager, mentee_skip = managers(mentee, manager_of)
    mentor_hr, mentee_hr = mentor.hr_person_id, mentee.hr_person_id
    # The chain entries are "" when unknown, so a non-empty HR id never matches them.
    if mentor_hr:
        if mentee_manager == mentor_hr:
            return "reporting line: the mentor is the mentee's manager"
        if mentee_skip == mentor_hr:
            return "reporting line: the mentor is the mentee's manager's manager"
    if mentee_hr:
        if mentor_manager == mentee_hr:
            return "reporting line: the mentee is the mentor's manager"
        if mentor_skip == mentee_hr:
            return "reporting line: the mentee is the mentor's manager's manager"
    if (
        rule == ReportingRule.MANAGER_CHAIN_AND_PEERS
        and mentor_manager
        and mentor_manager == mentee_manager
    ):
        return f"reporting line: mentor and mentee both report to {mentor_manager!r}"
    return None


def managers(person: Person, manager_of: Mapping[str, str]) -> tuple[str, str]:
    """The person's manager and skip-level manager (HR ids; empty when unknown)."""
    manager = person.manager_id
    if not manager and person.hr_person_id:
        manager = manager_of.get(person.hr_person_id, "")
    skip = manager_of.get(manager, "") if manager else ""
    return manager, skip


def criterion_score(
    spec: CriterionSpec, mentor: Person, mentee: Person, taxonomy: Taxonomy
) -> CriterionResult:
    """One criterion's score in [0, 1], whether it passes as a hard filter, and why."""
    return _SCORERS[spec.kind](spec, mentor, mentee, taxonomy)


def availability_overlap(a: Sequence[Slot], b: Sequence[Slot]) -> int:
    """Minutes per week both are available; each side's own overlapping slots merged first."""
    left, right = merged_slots(a), merged_slots(b)
    total = 0
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if end > start:
            total += end - start
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return total


def merged_slots(slots: Sequence[Slot]) -> list[tuple[int, int]]:
    """A person's slots as sorted, disjoint [start, end) intervals."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted((s.start, s.end) for s in slots if s.end > s.start):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


# --- one function per criterion --------------------------------------------------------------

_Scorer = Callable[[CriterionSpec, Person, Person, Taxonomy], CriterionResult]


def _result(spec: CriterionSpec, score: float, passed: bool, detail: str) -> CriterionResult:
    return CriterionResult(spec.kind.value, score, spec.weight, passed, detail)


def _unknown(spec: CriterionSpec, why: str) -> CriterionResult:
    return _result(spec, UNKNOWN_SCORE, True, f"unknown: {why}")


def _skills(
    spec: CriterionSpec, mentor: Person, mentee: Person, taxonomy: Taxonomy
) -> CriterionResult:
    sought = mentee.skills
    n = len(sought)
    if n == 0:
        return _result(spec, 0.0, False, "mentee seeks no skills")
    offered = mentor.skills
    relatedness = taxonomy.relatedness
    weighted = 0.0
    total_weight = 0.0
    exact: list[str] = []
    partial: list[str] = []
    for i, skill in enumerate(sought):
        weight = float(n - i)
        best = 0.0
        best_offered = ""
        for candidate in offered:
            r = relatedness(candidate, skill)
            if r > best:
                best, best_offered = r, candidate
                if r == 1.0:
                    break
        weighted += weight * best
        total_weight += weight
        if best == 1.0:
            exact.append(skill)
        elif best > 0.0:
            how = _relation(taxonomy, best_offered, skill)
            partial.append(f"{skill!r} via {how} {best_offered!r}")
    score = weighted / total_weight
    partial_text = "; ".join(partial)
    if exact:
        detail = f"offers {', '.join(exact)} ({len(exact)} of {n} sought"
        detail += f"; {partial_text})" if partial else ")"
    elif partial:
        detail = f"offers none of the {n} sought exactly; {partial_text}"
    else:
        detail = f"offers none of the {n} sought skills"
    return _result(spec, score, score > 0, detail)


def _relation(taxonomy: Taxonomy, offered: str, sought: str) -> str:
    """How the offered skill relates to the sought one, for a partial (0 < r < 1) match."""
    offered_c, sought_c = taxonomy.canonical(offered), taxonomy.canonical(sought)
    above = taxonomy.ancestors(sought_c)
    if offered_c in above:
        return "parent" if above[0] == offered_c else "ancestor"
    below = taxonomy.ancestors(offered_c)
    if sought_c in below:
        return "child" if below[0] == sought_c else "descendant"
    return "sibling"


def _goals(
    spec: CriterionSpec, mentor: Person, mentee: Person, _taxonomy: Taxonomy
) -> CriterionResult:
    if not mentee.goals:
        return _unknown(spec, "mentee set no goals")
    if not mentor.goals:
        return _unknown(spec, "mentor listed no goals")
    shared = mentee.goals & mentor.goals
    score = len(shared) / len(mentee.goals)
    if shared:
        detail = (
            f"shares goals {', '.join(sorted(shared))} "
            f"({len(shared)} of {len(mentee.goals)} mentee goals)"
        )
    else:
        detail = f"helps with none of the mentee's {len(mentee.goals)} goals"
    return _result(spec, score, score > 0, detail)


def _seniority(
    spec: CriterionSpec, mentor: Person, mentee: Person, _taxonomy: Taxonomy
) -> CriterionResult:
    if mentor.job_level == 0 or mentee.job_level == 0:
        side = "mentor" if mentor.job_level == 0 else "mentee"
        return _unknown(spec, f"{side} job level not set")
    gap = mentor.job_level - mentee.job_level
    low, high = spec.min_level_gap, spec.max_level_gap
    band = f"{low}-{high}"
    if gap < 0 and not spec.allow_reverse:
        return _result(spec, 0.0, False, f"level gap {gap}: mentor is junior (reverse not allowed)")
    size = abs(gap) if spec.allow_reverse else gap
    shown = f"level gap {gap}" if size == gap else f"level gap {gap} (reverse, {size})"
    if low <= size <= high:
        return _result(spec, 1.0, True, f"{shown} within {band}")
    if size < low:
        distance, side = low - size, "below"
    else:
        distance, side = size - high, "above"
    score = max(0.0, 1.0 - distance / 3)
    return _result(spec, score, False, f"{shown} {side} {band} by {distance}")


def _department(
    spec: CriterionSpec, mentor: Person, mentee: Person, _taxonomy: Taxonomy
) -> CriterionResult:
    if not mentor.department or not mentee.department:
        side = "mentor" if not mentor.department else "mentee"
        return _unknown(spec, f"{side} department not set")
    same = mentor.department == mentee.department
    met = same if spec.prefer_same_department else not same
    wanted = "same" if spec.prefer_same_department else "different"
    if same:
        detail = f"both in {mentor.department!r} ({wanted} preferred)"
    else:
        detail = f"{mentor.department!r} vs {mentee.department!r} ({wanted} preferred)"
    return _result(spec, 1.0 if met else 0.0, met, detail)


def _timezone(
    spec: CriterionSpec, mentor: Person, mentee: Person, _taxonomy: Taxonomy
) -> CriterionResult:
    if mentor.utc_offset_minutes is None or mentee.utc_offset_minutes is None:
        side = "mentor" if mentor.utc_offset_minutes is None else "mentee"
        return _unknown(spec, f"{side} timezone not set")
    apart = abs(mentor.utc_offset_minutes - mentee.utc_offset_minutes) % MINUTES_PER_DAY
    diff = min(apart, MINUTES_PER_DAY - apart) / 60
    score = max(0.0, 1.0 - diff / 12)
    passed = diff <= spec.max_timezone_hours
    limit = _hours(spec.max_timezone_hours)
    detail = f"timezones {_hours(diff)}h apart ({'within ' if passed else ''}max {limit}h)"
    return _result(spec, score, passed, detail)


def _hours(value: float) -> str:
    return f"{value:.1f}" if round(value, 1) == value else f"{value:.2f}"


def _location(
    spec: CriterionSpec, mentor: Person, mentee: Person, _taxonomy: Taxonomy
) -> CriterionResult:
    if not mentor.location or not mentee.location:
        side = "mentor" if not mentor.location else "mentee"
        return _unknown(spec, f"{side} location not set")
    same = mentor.location.casefold() == mentee.location.casefold()
    detail = f"both in {mentee.location}" if same else f"{mentor.location} vs {mentee.location}"
    return _result(spec, 1.0 if same else 0.0, same, detail)


def _language(
    spec: CriterionSpec, mentor: Person, mentee: Person, _taxonomy: Taxonomy
) -> CriterionResult:
    if not mentor.languages or not mentee.languages:
        side = "mentor" if not mentor.languages else "mentee"
        return _unknown(spec, f"{side} languages not set")
    shared = mentor.languages & mentee.languages
    if shared:
        return _result(spec, 1.0, True, f"shares {', '.join(sorted(shared))}")
    detail = (
        f"no common language (mentor {', '.join(sorted(mentor.languages))}; "
        f"mentee {', '.join(sorted(mentee.languages))})"
    )
    return _result(spec, 0.0, False, detail)


def _demographics(
    spec: CriterionSpec, mentor: Person, mentee: Person, _taxonomy: Taxonomy
) -> CriterionResult:
    if not mentee.demographic_opt_in:
        return _result(spec, UNKNOWN_SCORE, True, "not applied: mentee did not opt in")
    compared: list[tuple[str, bool]] = []
    if mentor.gender and mentee.gender:
        compared.append(("gender", mentor.gender == mentee.gender))
    if mentor.cultural_background and mentee.cultural_background:
        compared.append(
            ("cultural background", mentor.cultural_background == mentee.cultural_background)
        )
    if not compared:
        return _result(spec, UNKNOWN_SCORE, True, "unknown: no attribute stated by both")
    score = sum(1.0 for _, equal in compared if equal) / len(compared)
    passed = all(equal for _, equal in compared)
    detail = ", ".join(f"{'same' if equal else 'different'} {name}" for name, equal in compared)
    return _result(spec, score, passed, detail)


def _availability(
    spec: CriterionSpec, mentor: Person, mentee: Person, _taxonomy: Taxonomy
) -> CriterionResult:
    if not mentor.availability or not mentee.availability:
        side = "mentor" if not mentor.availability else "mentee"
        return _unknown(spec, f"{side} availability not set")
    overlap = availability_overlap(mentor.availability, mentee.availability)
    need = spec.min_overlap_minutes
    # A non-positive minimum is always met; it would otherwise divide by zero.
    score = min(1.0, overlap / (2 * need)) if need > 0 else 1.0
    passed = overlap >= need
    return _result(spec, score, passed, f"overlap {overlap} min per week (min {need})")


def _mentee_choice(
    spec: CriterionSpec, mentor: Person, mentee: Person, _taxonomy: Taxonomy
) -> CriterionResult:
    choices = mentee.preferred_mentors
    if not choices:
        return _unknown(spec, "mentee ranked no mentors")
    k = len(choices)
    if mentor.participant_id not in choices:
        return _result(spec, 0.0, False, f"mentee did not choose this mentor ({k} chosen)")
    j = choices.index(mentor.participant_id)
    return _result(spec, (k - j) / k, True, f"mentee ranked this mentor {j + 1} of {k}")


_SCORERS: dict[Kind, _Scorer] = {
    Kind.SKILLS: _skills,
    Kind.GOALS: _goals,
    Kind.SENIORITY: _seniority,
    Kind.DEPARTMENT: _department,
    Kind.TIMEZONE: _timezone,
    Kind.LOCATION: _location,
    Kind.LANGUAGE: _language,
    Kind.DEMOGRAPHICS: _demographics,
    Kind.AVAILABILITY: _availability,
    Kind.MENTEE_CHOICE: _mentee_choice,
}
