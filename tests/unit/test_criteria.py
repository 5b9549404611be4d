"""Criterion scores, the weighted mean and the always-hard rules (criteria.py, model.py rules)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.matching.domain.criteria import (
    availability_overlap,
    criterion_score,
    evaluate,
    reporting_line,
)
from services.matching.domain.model import (
    MENTEE,
    MENTOR,
    Constraints,
    CriterionResult,
    CriterionSpec,
    Kind,
    MatchingConfig,
    Person,
    ReportingRule,
    Slot,
)
from services.matching.domain.taxonomy import EMPTY_TAXONOMY, Taxonomy

TAXONOMY = Taxonomy(
    parents={
        "analytics": None,
        "data analysis": "analytics",
        "statistics": "analytics",
        "programming": None,
        "python": "programming",
        "pandas": "python",
        "sql": "programming",
    }
)

HOUR = 60


def mentor(**fields: Any) -> Person:
    return Person(**{"participant_id": "m1", "role": MENTOR, **fields})


def mentee(**fields: Any) -> Person:
    return Person(**{"participant_id": "e1", "role": MENTEE, **fields})


def score(
    kind: Kind,
    mentor_person: Person,
    mentee_person: Person,
    taxonomy: Taxonomy = EMPTY_TAXONOMY,
    **spec: Any,
) -> CriterionResult:
    result = criterion_score(CriterionSpec(kind, **spec), mentor_person, mentee_person, taxonomy)
    assert result.kind == kind.value
    return result


def assert_unknown(result: CriterionResult) -> None:
    assert result.score == 0.5
    assert result.passed
    assert result.detail.startswith("unknown")


# --- SKILLS -------------------------------------------------------------------------------------


def test_skills_weight_sought_skills_by_priority() -> None:
    sought = mentee(skills=("python", "sql", "go"))
    first = score(Kind.SKILLS, mentor(skills=("python",)), sought)
    last = score(Kind.SKILLS, mentor(skills=("go", "rust")), sought)
    assert first.score == 3 / 6
    assert last.score == 1 / 6
    assert first.passed and last.passed
    assert first.detail == "offers python (1 of 3 sought)"


def test_skills_partial_credit_from_the_taxonomy_with_its_reason() -> None:
    result = score(
        Kind.SKILLS,
        mentor(skills=("sql", "python", "analytics")),
        mentee(skills=("python", "sql", "data analysis")),
        TAXONOMY,
    )
    assert result.score == (3 * 1.0 + 2 * 1.0 + 1 * 0.5) / 6
    assert (
        result.detail
        == "offers python, sql (2 of 3 sought; 'data analysis' via parent 'analytics')"
    )


def test_skills_take_the_best_related_offered_skill() -> None:
    # pandas is python's child (0.5) and sql its sibling (0.25): the best counts.
    result = score(
        Kind.SKILLS, mentor(skills=("sql", "pandas")), mentee(skills=("python",)), TAXONOMY
    )
    assert result.score == 0.5
    assert result.detail == "offers none of the 1 sought exactly; 'python' via child 'pandas'"
    sibling = score(
        Kind.SKILLS, mentor(skills=("statistics",)), mentee(skills=("data analysis",)), TAXONOMY
    )
    assert sibling.score == 0.25
    assert "via sibling 'statistics'" in sibling.detail
    deep = score(Kind.SKILLS, mentor(skills=("programming",)), mentee(skills=("pandas",)), TAXONOMY)
    assert deep.score == 0.5
    assert "via ancestor 'programming'" in deep.detail


def test_skills_without_overlap_score_zero_and_fail() -> None:
    result = score(Kind.SKILLS, mentor(skills=("java",)), mentee(skills=("python", "go")))
    assert (result.score, result.passed) == (0.0, False)
    assert result.detail == "offers none of the 2 sought skills"
    no_offer = score(Kind.SKILLS, mentor(), mentee(skills=("python",)))
    assert (no_offer.score, no_offer.passed) == (0.0, False)


def test_skills_when_the_mentee_seeks_nothing_score_zero_not_unknown() -> None:
    result = score(Kind.SKILLS, mentor(skills=("python",)), mentee())
    assert (result.score, result.passed) == (0.0, False)
    assert result.detail == "mentee seeks no skills"


def test_skills_score_one_when_all_covered() -> None:
    result = score(
        Kind.SKILLS, mentor(skills=("go", "python", "rust")), mentee(skills=("python", "go"))
    )
    assert result.score == 1.0


# --- GOALS --------------------------------------------------------------------------------------


def test_goals_score_the_share_of_mentee_goals() -> None:
    result = score(
        Kind.GOALS,
        mentor(goals=frozenset({"leadership", "career", "public speaking"})),
        mentee(goals=frozenset({"career", "leadership", "negotiation"})),
    )
    assert result.score == 2 / 3
    assert result.passed
    assert result.detail == "shares goals career, leadership (2 of 3 mentee goals)"


def test_goals_without_overlap_fail() -> None:
    result = score(Kind.GOALS, mentor(goals=frozenset({"a"})), mentee(goals=frozenset({"b"})))
    assert (result.score, result.passed) == (0.0, False)


def test_goals_unknown_when_either_side_is_empty() -> None:
    assert_unknown(score(Kind.GOALS, mentor(), mentee(goals=frozenset({"career"}))))
    assert_unknown(score(Kind.GOALS, mentor(goals=frozenset({"career"})), mentee()))


# --- SENIORITY ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mentor_level", "mentee_level", "spec", "expected", "passed"),
    [
        (5, 4, {}, 1.0, True),  # gap 1 == min_level_gap
        (8, 4, {}, 1.0, True),  # gap 4 == max_level_gap
        (7, 4, {}, 1.0, True),
        (4, 4, {}, 1 - 1 / 3, False),  # one below the band
        (9, 4, {}, 1 - 1 / 3, False),  # one above the band
        (10, 4, {}, 1 - 2 / 3, False),
        (11, 4, {}, 0.0, False),  # three outside
        (14, 4, {}, 0.0, False),  # never below 0
        (3, 4, {}, 0.0, False),  # mentor junior, reverse not allowed
        (4, 6, {"min_level_gap": -5}, 0.0, False),  # negative gap fails whatever the band
        (3, 5, {"allow_reverse": True}, 1.0, True),  # |gap| 2 in the band
        (1, 7, {"allow_reverse": True}, 1 - 2 / 3, False),  # |gap| 6
        (6, 4, {"min_level_gap": 2, "max_level_gap": 2}, 1.0, True),
        (6, 4, {"min_level_gap": 3, "max_level_gap": 5}, 1 - 1 / 3, False),
    ],
)
def test_seniority(
    mentor_level: int, mentee_level: int, spec: dict[str, Any], expected: float, passed: bool
) -> None:
    result = score(
        Kind.SENIORITY, mentor(job_level=mentor_level), mentee(job_level=mentee_level), **spec
    )
    assert result.score == expected
    assert result.passed is passed


def test_seniority_details() -> None:
    inside = score(Kind.SENIORITY, mentor(job_level=7), mentee(job_level=4))
    assert inside.detail == "level gap 3 within 1-4"
    above = score(Kind.SENIORITY, mentor(job_level=10), mentee(job_level=4))
    assert above.detail == "level gap 6 above 1-4 by 2"
    junior = score(Kind.SENIORITY, mentor(job_level=2), mentee(job_level=4))
    assert "mentor is junior" in junior.detail


def test_seniority_unknown_when_a_level_is_zero() -> None:
    assert_unknown(score(Kind.SENIORITY, mentor(job_level=0), mentee(job_level=3)))
    assert_unknown(score(Kind.SENIORITY, mentor(job_level=5), mentee(job_level=0)))


# --- DEPARTMENT ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mentor_dept", "mentee_dept", "prefer_same", "expected"),
    [
        ("eng", "eng", False, 0.0),
        ("eng", "sales", False, 1.0),
        ("eng", "eng", True, 1.0),
        ("eng", "sales", True, 0.0),
    ],
)
def test_department(mentor_dept: str, mentee_dept: str, prefer_same: bool, expected: float) -> None:
    result = score(
        Kind.DEPARTMENT,
        mentor(department=mentor_dept),
        mentee(department=mentee_dept),
        prefer_same_department=prefer_same,
    )
    assert result.score == expected
    assert result.passed is (expected == 1.0)


def test_department_unknown_when_either_is_empty() -> None:
    assert_unknown(score(Kind.DEPARTMENT, mentor(), mentee(department="eng")))
    assert_unknown(score(Kind.DEPARTMENT, mentor(department="eng"), mentee()))


# --- TIMEZONE -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "diff_hours", "passed"),
    [
        (0, 0, 0.0, True),  # UTC is a known offset, not unknown
        (60, 180, 2.0, True),
        (0, 3 * HOUR, 3.0, True),  # exactly max_timezone_hours
        (0, 3 * HOUR + 15, 3.25, False),
        (-2 * HOUR, 3 * HOUR, 5.0, False),
        (11 * HOUR, -11 * HOUR, 2.0, True),  # circular: across the date line
        (14 * HOUR, -12 * HOUR, 2.0, True),
        (12 * HOUR, 0, 12.0, False),
        (330, 345, 0.25, True),  # India vs Nepal
    ],
)
def test_timezone(a: int, b: int, diff_hours: float, passed: bool) -> None:
    result = score(Kind.TIMEZONE, mentor(utc_offset_minutes=a), mentee(utc_offset_minutes=b))
    assert result.score == max(0.0, 1.0 - diff_hours / 12)
    assert result.passed is passed


def test_timezone_details_and_a_wider_limit() -> None:
    far = score(Kind.TIMEZONE, mentor(utc_offset_minutes=-120), mentee(utc_offset_minutes=180))
    assert far.detail == "timezones 5.0h apart (max 3.0h)"
    wide = score(
        Kind.TIMEZONE,
        mentor(utc_offset_minutes=-120),
        mentee(utc_offset_minutes=180),
        max_timezone_hours=5.0,
    )
    assert wide.passed
    assert wide.detail == "timezones 5.0h apart (within max 5.0h)"


def test_timezone_unknown_when_an_offset_is_missing() -> None:
    assert_unknown(score(Kind.TIMEZONE, mentor(), mentee(utc_offset_minutes=0)))
    assert_unknown(score(Kind.TIMEZONE, mentor(utc_offset_minutes=0), mentee()))


# --- LOCATION -----------------------------------------------------------------------------------


def test_location_equal_ignoring_case() -> None:
    result = score(Kind.LOCATION, mentor(location="Berlin"), mentee(location="berlin"))
    assert (result.score, result.passed) == (1.0, True)
    other = score(Kind.LOCATION, mentor(location="Berlin"), mentee(location="Paris"))
    assert (other.score, other.passed) == (0.0, False)
    assert other.detail == "Berlin vs Paris"


def test_location_unknown_when_either_is_empty() -> None:
    assert_unknown(score(Kind.LOCATION, mentor(location="Berlin"), mentee()))
    assert_unknown(score(Kind.LOCATION, mentor(), mentee(location="Berlin")))


# --- LANGUAGE -----------------------------------------------------------------------------------


def test_language_shared() -> None:
    result = score(
        Kind.LANGUAGE,
        mentor(languages=frozenset({"english", "german"})),
        mentee(languages=frozenset({"english", "french"})),
    )
    assert (result.score, result.passed) == (1.0, True)
    assert result.detail == "shares english"


def test_language_not_shared_fails() -> None:
    result = score(
        Kind.LANGUAGE,
        mentor(languages=frozenset({"german"})),
        mentee(languages=frozenset({"french"})),
    )
    assert (result.score, result.passed) == (0.0, False)
    assert "no common language" in result.detail


def test_language_unknown_when_either_has_none() -> None:
    assert_unknown(score(Kind.LANGUAGE, mentor(), mentee(languages=frozenset({"english"}))))
    assert_unknown(score(Kind.LANGUAGE, mentor(languages=frozenset({"english"})), mentee()))


# --- DEMOGRAPHICS -------------------------------------------------------------------------------


def test_demographics_ignored_unless_the_mentee_opted_in() -> None:
    result = score(
        Kind.DEMOGRAPHICS,
        mentor(gender="m", demographic_opt_in=True),
        mentee(gender="f", demographic_opt_in=False),
    )
    assert (result.score, result.passed) == (0.5, True)
    assert "did not opt in" in result.detail


@pytest.mark.parametrize(
    ("mentor_fields", "mentee_fields", "expected", "passed"),
    [
        (
            {"gender": "f", "cultural_background": "x"},
            {"gender": "f", "cultural_background": "x"},
            1.0,
            True,
        ),
        (
            {"gender": "f", "cultural_background": "y"},
            {"gender": "f", "cultural_background": "x"},
            0.5,
            False,
        ),
        (
            {"gender": "m", "cultural_background": "y"},
            {"gender": "f", "cultural_background": "x"},
            0.0,
            False,
        ),
        (
            {"gender": "f"},
            {"gender": "f", "cultural_background": "x"},
            1.0,
            True,
        ),  # only gender both stated
        ({"cultural_background": "y"}, {"gender": "f", "cultural_background": "x"}, 0.0, False),
        ({}, {"gender": "f", "cultural_background": "x"}, 0.5, True),  # nothing stated by both
    ],
)
def test_demographics_when_opted_in(
    mentor_fields: dict[str, str], mentee_fields: dict[str, str], expected: float, passed: bool
) -> None:
    result = score(
        Kind.DEMOGRAPHICS, mentor(**mentor_fields), mentee(demographic_opt_in=True, **mentee_fields)
    )
    assert result.score == expected
    assert result.passed is passed


def test_demographics_detail_names_each_attribute() -> None:
    result = score(
        Kind.DEMOGRAPHICS,
        mentor(gender="f", cultural_background="y"),
        mentee(gender="f", cultural_background="x", demographic_opt_in=True),
    )
    assert result.detail == "same gender, different cultural background"


# --- AVAILABILITY -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overlap", "expected", "passed"),
    [
        (59, 59 / 120, False),
        (60, 0.5, True),  # exactly min_overlap_minutes
        (90, 0.75, True),
        (120, 1.0, True),
        (300, 1.0, True),
    ],
)
def test_availability(overlap: int, expected: float, passed: bool) -> None:
    result = score(
        Kind.AVAILABILITY,
        mentor(availability=(Slot(1000, 1000 + overlap),)),
        mentee(availability=(Slot(0, 2000),)),
    )
    assert result.score == expected
    assert result.passed is passed
    assert result.detail == f"overlap {overlap} min per week (min 60)"


def test_availability_merges_a_persons_overlapping_slots() -> None:
    result = score(
        Kind.AVAILABILITY,
        mentor(availability=(Slot(0, 60), Slot(30, 90), Slot(45, 75))),
        mentee(availability=(Slot(0, 200),)),
    )
    # 90 minutes, not 60 + 60 + 30.
    assert result.score == 90 / 120
    assert "overlap 90 min" in result.detail


def test_availability_unknown_when_either_is_empty() -> None:
    assert_unknown(score(Kind.AVAILABILITY, mentor(), mentee(availability=(Slot(0, 60),))))
    assert_unknown(score(Kind.AVAILABILITY, mentor(availability=(Slot(0, 60),)), mentee()))


def test_availability_with_no_minimum_is_always_met() -> None:
    result = score(
        Kind.AVAILABILITY,
        mentor(availability=(Slot(0, 60),)),
        mentee(availability=(Slot(60, 120),)),
        min_overlap_minutes=0,
    )
    assert (result.score, result.passed) == (1.0, True)


@pytest.mark.parametrize(
    ("a", "b", "minutes"),
    [
        ([Slot(0, 60)], [Slot(60, 120)], 0),  # touching, half-open
        ([Slot(0, 60)], [Slot(30, 90)], 30),
        ([Slot(0, 60), Slot(120, 180)], [Slot(30, 150)], 60),
        ([Slot(120, 180), Slot(0, 60)], [Slot(30, 150), Slot(160, 170)], 70),  # unsorted
        ([Slot(0, 100), Slot(50, 150)], [Slot(0, 150), Slot(10, 20)], 150),  # merged on both sides
        ([Slot(100, 50), Slot(10, 10)], [Slot(0, 200)], 0),  # empty slots ignored
        ([], [Slot(0, 10)], 0),
    ],
)
def test_availability_overlap(a: list[Slot], b: list[Slot], minutes: int) -> None:
    assert availability_overlap(a, b) == minutes
    assert availability_overlap(b, a) == minutes


SLOTS = st.lists(st.builds(Slot, st.integers(0, 300), st.integers(0, 300)), max_size=6)


@settings(max_examples=200, deadline=None)
@given(SLOTS, SLOTS)
def test_availability_overlap_counts_shared_minutes(a: list[Slot], b: list[Slot]) -> None:
    def minutes(slots: list[Slot]) -> set[int]:
        return {m for s in slots for m in range(s.start, s.end)}

    assert availability_overlap(a, b) == len(minutes(a) & minutes(b))


# --- MENTEE_CHOICE ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rank", "expected"),
    [(0, 1.0), (1, 2 / 3), (2, 1 / 3)],
)
def test_mentee_choice_by_rank(rank: int, expected: float) -> None:
    choices = ["x", "y", "z"]
    choices[rank] = "m1"
    result = score(Kind.MENTEE_CHOICE, mentor(), mentee(preferred_mentors=tuple(choices)))
    assert (result.score, result.passed) == (expected, True)
    assert result.detail == f"mentee ranked this mentor {rank + 1} of 3"


def test_mentee_choice_not_chosen_fails() -> None:
    result = score(Kind.MENTEE_CHOICE, mentor(), mentee(preferred_mentors=("x", "y")))
    assert (result.score, result.passed) == (0.0, False)


def test_mentee_choice_unknown_without_choices() -> None:
    assert_unknown(score(Kind.MENTEE_CHOICE, mentor(), mentee()))


# --- weighted mean ------------------------------------------------------------------------------

# Known scores: SKILLS 1/6 (go is last of 3), LANGUAGE 1.0, LOCATION 0.0.
PAIR_MENTOR = mentor(skills=("go",), languages=frozenset({"en"}), location="Berlin")
PAIR_MENTEE = mentee(skills=("python", "sql", "go"), languages=frozenset({"en"}), location="Oslo")


def test_score_is_the_weighted_mean() -> None:
    config = MatchingConfig(
        criteria=(
            CriterionSpec(Kind.SKILLS, weight=3.0),
            CriterionSpec(Kind.LANGUAGE, weight=1.0),
            CriterionSpec(Kind.LOCATION, weight=2.0),
        )
    )
    evaluation = evaluate(PAIR_MENTOR, PAIR_MENTEE, config)
    assert evaluation.score == pytest.approx((3.0 * (1 / 6) + 1.0 * 1.0 + 2.0 * 0.0) / 6.0)
    assert [r.kind for r in evaluation.breakdown] == ["skills", "language", "location"]
    assert [r.weight for r in evaluation.breakdown] == [3.0, 1.0, 2.0]
    assert evaluation.allowed  # nothing hard


def test_weight_zero_criteria_do_not_count() -> None:
    base = MatchingConfig(criteria=(CriterionSpec(Kind.LANGUAGE, weight=2.0),))
    with_zero = MatchingConfig(
        criteria=(
            CriterionSpec(Kind.LANGUAGE, weight=2.0),
            CriterionSpec(Kind.LOCATION, weight=0.0),
        )
    )
    assert evaluate(PAIR_MENTOR, PAIR_MENTEE, base).score == 1.0
    evaluation = evaluate(PAIR_MENTOR, PAIR_MENTEE, with_zero)
    assert evaluation.score == 1.0
    assert len(evaluation.breakdown) == 2  # still explained
    assert evaluation.allowed


def test_hard_weight_zero_filters_without_scoring() -> None:
    config = MatchingConfig(
        criteria=(
            CriterionSpec(Kind.LANGUAGE, weight=1.0),
            CriterionSpec(Kind.LOCATION, weight=0.0, hard=True),
        )
    )
    evaluation = evaluate(PAIR_MENTOR, PAIR_MENTEE, config)
    assert evaluation.score == 1.0
    assert evaluation.violations == ("location (hard) not met: Berlin vs Oslo",)
    assert not evaluation.allowed


def test_hard_criterion_with_weight_counts_in_the_mean() -> None:
    config = MatchingConfig(
        criteria=(
            CriterionSpec(Kind.LANGUAGE, weight=1.0),
            CriterionSpec(Kind.LOCATION, weight=1.0, hard=True),
        )
    )
    evaluation = evaluate(PAIR_MENTOR, PAIR_MENTEE, config)
    assert evaluation.score == 0.5
    assert not evaluation.allowed


def test_no_weighted_criteria_score_one() -> None:
    assert evaluate(PAIR_MENTOR, PAIR_MENTEE, MatchingConfig(criteria=())).score == 1.0
    only_zero = MatchingConfig(criteria=(CriterionSpec(Kind.LOCATION, weight=0.0),))
    assert evaluate(PAIR_MENTOR, PAIR_MENTEE, only_zero).score == 1.0


def test_a_passing_hard_criterion_adds_no_violation() -> None:
    config = MatchingConfig(criteria=(CriterionSpec(Kind.LANGUAGE, hard=True),))
    assert evaluate(PAIR_MENTOR, PAIR_MENTEE, config).violations == ()


def test_unknown_hard_criterion_passes() -> None:
    config = MatchingConfig(criteria=(CriterionSpec(Kind.TIMEZONE, hard=True),))
    evaluation = evaluate(PAIR_MENTOR, PAIR_MENTEE, config)
    assert evaluation.allowed
    assert evaluation.score == 0.5


def test_every_failed_hard_criterion_is_named() -> None:
    config = MatchingConfig(
        criteria=(
            CriterionSpec(Kind.TIMEZONE, hard=True),
            CriterionSpec(Kind.LOCATION, hard=True),
            CriterionSpec(Kind.SKILLS, hard=True),
        )
    )
    evaluation = evaluate(
        mentor(utc_offset_minutes=-120, location="Berlin", skills=("go",)),
        mentee(utc_offset_minutes=180, location="Oslo", skills=("go",)),
        config,
    )
    assert evaluation.violations == (
        "timezone (hard) not met: timezones 5.0h apart (max 3.0h)",
        "location (hard) not met: Berlin vs Oslo",
    )


# --- always-hard rules --------------------------------------------------------------------------

ANY = MatchingConfig(criteria=())
PEERS = MatchingConfig(criteria=(), reporting_rule=ReportingRule.MANAGER_CHAIN_AND_PEERS)


def violations(
    mentor_person: Person,
    mentee_person: Person,
    config: MatchingConfig = ANY,
    constraints: Constraints | None = None,
) -> tuple[str, ...]:
    evaluation = evaluate(
        mentor_person, mentee_person, config, EMPTY_TAXONOMY, constraints or Constraints()
    )
    assert evaluation.allowed is (not evaluation.violations)
    return evaluation.violations


def test_same_participant_is_never_allowed() -> None:
    (reason,) = violations(mentor(participant_id="p1"), mentee(participant_id="p1"))
    assert reason.startswith("same person") and "p1" in reason


def test_same_hr_person_is_never_allowed() -> None:
    (reason,) = violations(mentor(hr_person_id="h1"), mentee(hr_person_id="h1"))
    assert reason.startswith("same person") and "h1" in reason


def test_empty_hr_ids_do_not_match() -> None:
    assert violations(mentor(hr_person_id=""), mentee(hr_person_id="")) == ()


def test_excluded_pair_is_never_allowed() -> None:
    constraints = Constraints(excluded=frozenset({("m1", "e1")}))
    (reason,) = violations(mentor(), mentee(), constraints=constraints)
    assert reason.startswith("excluded")
    # Exclusions are (mentor, mentee): the same two people the other way round are another pair.
    assert (
        violations(
            mentor(participant_id="e1"), mentee(participant_id="m1"), constraints=constraints
        )
        == ()
    )


def test_mentor_managing_the_mentee_is_never_allowed() -> None:
    (reason,) = violations(
        mentor(hr_person_id="boss"), mentee(hr_person_id="h2", manager_id="boss")
    )
    assert reason == "reporting line: the mentor is the mentee's manager"


def test_manager_found_through_manager_of_when_manager_id_is_empty() -> None:
    constraints = Constraints(manager_of={"h2": "boss"})
    (reason,) = violations(
        mentor(hr_person_id="boss"), mentee(hr_person_id="h2"), constraints=constraints
    )
    assert reason == "reporting line: the mentor is the mentee's manager"


def test_skip_level_manager_is_never_allowed() -> None:
    constraints = Constraints(manager_of={"lead": "director"})
    (reason,) = violations(
        mentor(hr_person_id="director"),
        mentee(hr_person_id="h2", manager_id="lead"),
        constraints=constraints,
    )
    assert reason == "reporting line: the mentor is the mentee's manager's manager"


def test_three_levels_up_is_allowed() -> None:
    constraints = Constraints(manager_of={"lead": "director", "director": "vp"})
    assert (
        violations(
            mentor(hr_person_id="vp"),
            mentee(hr_person_id="h2", manager_id="lead"),
            constraints=constraints,
        )
        == ()
    )


def test_reverse_direction_mentee_manages_mentor() -> None:
    (direct,) = violations(
        mentor(hr_person_id="h1", manager_id="boss"), mentee(hr_person_id="boss")
    )
    assert direct == "reporting line: the mentee is the mentor's manager"
    constraints = Constraints(manager_of={"lead": "boss"})
    (skip,) = violations(
        mentor(hr_person_id="h1", manager_id="lead"),
        mentee(hr_person_id="boss"),
        constraints=constraints,
    )
    assert skip == "reporting line: the mentee is the mentor's manager's manager"


def test_peers_only_under_manager_chain_and_peers() -> None:
    a = mentor(hr_person_id="h1", manager_id="boss")
    b = mentee(hr_person_id="h2", manager_id="boss")
    assert violations(a, b) == ()
    (reason,) = violations(a, b, PEERS)
    assert reason == "reporting line: mentor and mentee both report to 'boss'"
    # Peers found through manager_of too.
    constraints = Constraints(manager_of={"h1": "boss", "h2": "boss"})
    assert violations(mentor(hr_person_id="h1"), mentee(hr_person_id="h2"), PEERS, constraints)


def test_no_manager_on_either_side_is_not_peers() -> None:
    assert violations(mentor(hr_person_id="h1"), mentee(hr_person_id="h2"), PEERS) == ()


def test_unrelated_managers_are_allowed() -> None:
    constraints = Constraints(manager_of={"lead1": "dir1", "lead2": "dir2"})
    assert (
        violations(
            mentor(hr_person_id="h1", manager_id="lead1"),
            mentee(hr_person_id="h2", manager_id="lead2"),
            PEERS,
            constraints,
        )
        == ()
    )


def test_reporting_line_needs_hr_ids() -> None:
    # Without HR ids nobody can be anyone's manager, even with empty manager fields around.
    constraints = Constraints(manager_of={"": ""})
    assert (
        reporting_line(
            mentor(), mentee(), constraints.manager_of, ReportingRule.MANAGER_CHAIN_AND_PEERS
        )
        is None
    )


def test_all_violations_are_listed() -> None:
    config = MatchingConfig(criteria=(CriterionSpec(Kind.LOCATION, hard=True),))
    found = violations(
        mentor(participant_id="p", hr_person_id="h", location="Berlin"),
        mentee(participant_id="p", hr_person_id="h", location="Oslo"),
        config,
        Constraints(excluded=frozenset({("p", "p")})),
    )
    assert len(found) == 4
    assert [v.split(":")[0] for v in found] == [
        "same person",
        "same person",
        "excluded pair",
        "location (hard) not met",
    ]


# --- properties ---------------------------------------------------------------------------------

IDS = st.sampled_from(["", "a", "b", "c"])
SKILL = st.sampled_from(
    ["python", "pandas", "sql", "analytics", "data analysis", "statistics", "go"]
)
TEXT = st.sampled_from(["", "x", "y", "X"])

PEOPLE = st.builds(
    Person,
    participant_id=IDS,
    role=st.sampled_from([MENTOR, MENTEE]),
    skills=st.lists(SKILL, max_size=5).map(tuple),
    hr_person_id=IDS,
    manager_id=IDS,
    department=TEXT,
    location=TEXT,
    utc_offset_minutes=st.none() | st.integers(-100_000, 100_000),
    languages=st.frozensets(TEXT, max_size=3),
    job_level=st.integers(-5, 30),
    goals=st.frozensets(TEXT, max_size=3),
    availability=st.lists(
        st.builds(Slot, st.integers(-100, 10_200), st.integers(-100, 10_200)), max_size=4
    ).map(tuple),
    gender=TEXT,
    cultural_background=TEXT,
    demographic_opt_in=st.booleans(),
    preferred_mentors=st.lists(IDS, max_size=4).map(tuple),
)

SPECS = st.builds(
    CriterionSpec,
    kind=st.sampled_from(list(Kind)),
    weight=st.floats(0.0, 10.0),
    hard=st.booleans(),
    min_level_gap=st.integers(-3, 5),
    max_level_gap=st.integers(-3, 8),
    allow_reverse=st.booleans(),
    prefer_same_department=st.booleans(),
    max_timezone_hours=st.floats(0.0, 12.0),
    min_overlap_minutes=st.integers(-10, 600),
)

CONFIGS = st.builds(
    MatchingConfig,
    criteria=st.lists(SPECS, max_size=6).map(tuple),
    reporting_rule=st.sampled_from(list(ReportingRule)),
)

CONSTRAINTS = st.builds(
    Constraints,
    excluded=st.frozensets(st.tuples(IDS, IDS), max_size=3),
    manager_of=st.dictionaries(IDS, IDS, max_size=4),
)


@settings(max_examples=150, deadline=None)
@given(PEOPLE, PEOPLE, CONFIGS, CONSTRAINTS)
def test_evaluate_never_raises_and_stays_in_range(
    a: Person, b: Person, config: MatchingConfig, constraints: Constraints
) -> None:
    evaluation = evaluate(a, b, config, TAXONOMY, constraints)
    assert 0.0 <= evaluation.score <= 1.0
    assert len(evaluation.breakdown) == len(config.criteria)
    for result in evaluation.breakdown:
        assert 0.0 <= result.score <= 1.0
        assert result.detail
    # allowed is exactly "no always-hard reason and every hard criterion passed".
    always_hard = (
        (a.participant_id != "" and a.participant_id == b.participant_id)
        or (a.hr_person_id != "" and a.hr_person_id == b.hr_person_id)
        or (a.participant_id, b.participant_id) in constraints.excluded
        or reporting_line(a, b, constraints.manager_of, config.reporting_rule) is not None
    )
    hard_failed = [
        r
        for spec, r in zip(config.criteria, evaluation.breakdown, strict=True)
        if spec.hard and not r.passed
    ]
    assert evaluation.allowed == (not evaluation.violations)
    assert evaluation.allowed == (not always_hard and not hard_failed)
    assert len(evaluation.violations) >= len(hard_failed)
    # The weighted mean over weight > 0 (1.0 when there is none).
    weighted = [(r.weight, r.score) for r in evaluation.breakdown if r.weight > 0]
    if weighted:
        expected = sum(w * s for w, s in weighted) / sum(w for w, _ in weighted)
        assert evaluation.score == pytest.approx(expected)
    else:
        assert evaluation.score == 1.0


@settings(max_examples=100, deadline=None)
@given(PEOPLE, PEOPLE)
def test_skills_score_is_the_literal_formula(a: Person, b: Person) -> None:
    # The contract with the vectorised candidates.py: sum(w_i * r_i) / sum(w_i), in order.
    result = criterion_score(CriterionSpec(Kind.SKILLS), a, b, TAXONOMY)
    n = len(b.skills)
    if n == 0:
        assert (result.score, result.passed) == (0.0, False)
        return
    numerator = 0.0
    denominator = 0.0
    for i, sought in enumerate(b.skills):
        r = max((TAXONOMY.relatedness(offered, sought) for offered in a.skills), default=0.0)
        numerator += float(n - i) * r
        denominator += float(n - i)
    assert result.score == numerator / denominator
    assert result.passed == (result.score > 0)


@settings(max_examples=100, deadline=None)
@given(PEOPLE, PEOPLE, st.sampled_from(list(ReportingRule)), st.dictionaries(IDS, IDS, max_size=4))
def test_reporting_line_is_symmetric_in_its_verdict(
    a: Person, b: Person, rule: ReportingRule, manager_of: dict[str, str]
) -> None:
    assert (reporting_line(a, b, manager_of, rule) is None) == (
        reporting_line(b, a, manager_of, rule) is None
    )
