"""Tests for the per-group fairness report of a bulk matching run."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.matching.domain.fairness import GroupStats, fairness_report
from services.matching.domain.model import MENTEE, Person


def _mentee(pid: str, department: str = "", location: str = "", gender: str = "") -> Person:
    return Person(pid, MENTEE, department=department, location=location, gender=gender)


def _rows(report: list[GroupStats], dimension: str) -> dict[str, GroupStats]:
    return {row.group: row for row in report if row.dimension == dimension}


def _approx_row(row: GroupStats, **expected: float | int | bool | str) -> None:
    for name, value in expected.items():
        actual = getattr(row, name)
        if isinstance(value, float):
            assert actual == pytest.approx(value), name
        else:
            assert actual == value, name


# A hand-made cohort of 14 mentees.
#   Eng    (6): e1..e5 matched 0.9 0.8 0.7 0.6 0.5, e6 unmatched      -> 5/6
#   Sales  (5): s1 0.4, s2 0.2 matched; s3..s5 unmatched              -> 2/5
#   HR     (2): h1 0.3 matched, h2 unmatched                         -> small
#   ""     (1): u1 1.0 matched                                       -> small ("unknown")
# Overall 9/14 matched.
COHORT = [
    _mentee("e1", "Eng", "London", "woman"),
    _mentee("e2", "Eng", "London", "man"),
    _mentee("e3", "Eng", "London", "woman"),
    _mentee("e4", "Eng", "Paris", "man"),
    _mentee("e5", "Eng", "Paris", "woman"),
    _mentee("e6", "Eng", "Paris", ""),
    _mentee("s1", "Sales", "London", "man"),
    _mentee("s2", "Sales", "London", "woman"),
    _mentee("s3", "Sales", "London", "man"),
    _mentee("s4", "Sales", "Paris", "woman"),
    _mentee("s5", "Sales", "", "man"),
    _mentee("h1", "HR", "", "non-binary"),
    _mentee("h2", "HR", "Paris", ""),
    _mentee("u1", "", "Paris", "woman"),
]
SCORES = {"e1": 0.9, "e2": 0.8, "e3": 0.7, "e4": 0.6, "e5": 0.5, "s1": 0.4, "s2": 0.2}
SCORES |= {"h1": 0.3, "u1": 1.0}


def test_overall_row_first_with_whole_cohort_stats() -> None:
    report = fairness_report(COHORT, SCORES)
    overall = report[0]
    # 9 scores sorted: 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0
    # nearest rank: p10 -> ceil(0.9) = 1st, median -> ceil(4.5) = 5th, p90 -> ceil(8.1) = 9th.
    assert overall == GroupStats(
        dimension="overall",
        group="all",
        mentees=14,
        matched=9,
        match_rate=9 / 14,
        mean_score=pytest.approx(5.4 / 9),  # type: ignore[arg-type]
        p10_score=0.2,
        median_score=0.6,
        p90_score=1.0,
        flagged=False,
    )
    assert [r.dimension for r in report if r.dimension == "overall"] == ["overall"]


def test_department_groups_arithmetic_and_small_group_merging() -> None:
    report = fairness_report(COHORT, SCORES, dimensions=["department"])
    rows = [r for r in report if r.dimension == "department"]
    # Named groups alphabetically, then the merged small groups (HR and the unknown).
    assert [r.group for r in rows] == ["Eng", "Sales", "other (fewer than 5)"]
    eng, sales, other = rows

    _approx_row(eng, mentees=6, matched=5, match_rate=5 / 6, mean_score=0.7)
    # 5 scores 0.5 .. 0.9: p10 -> 1st, median -> 3rd, p90 -> ceil(4.5) = 5th.
    _approx_row(eng, p10_score=0.5, median_score=0.7, p90_score=0.9, flagged=False)

    # Overall 9/14 ~ 0.643; 0.8 x that ~ 0.514; Sales 2/5 = 0.4 is below: flagged.
    _approx_row(sales, mentees=5, matched=2, match_rate=0.4, mean_score=0.3, flagged=True)
    # 2 scores 0.2 0.4: p10 -> 1st, median -> ceil(1.0) = 1st (the lower middle), p90 -> 2nd.
    _approx_row(sales, p10_score=0.2, median_score=0.2, p90_score=0.4)

    # HR (h1 0.3, h2 -) and the unknown department (u1 1.0) merged.
    _approx_row(other, mentees=3, matched=2, match_rate=2 / 3, mean_score=0.65, flagged=False)
    _approx_row(other, p10_score=0.3, median_score=0.3, p90_score=1.0)
    assert not any(r.group in ("HR", "unknown") for r in report)


def test_default_dimensions_and_row_order() -> None:
    report = fairness_report(COHORT, SCORES)
    assert [(r.dimension, r.group) for r in report] == [
        ("overall", "all"),
        ("department", "Eng"),
        ("department", "Sales"),
        ("department", "other (fewer than 5)"),
        ("location", "London"),  # e1 e2 e3 s1 s2 s3
        ("location", "Paris"),  # e4 e5 e6 s4 h2 u1
        ("location", "other (fewer than 5)"),  # s5, h1: no location
        ("gender", "man"),  # e2 e4 s1 s3 s5
        ("gender", "woman"),  # e1 e3 e5 s2 s4 u1
        ("gender", "other (fewer than 5)"),  # h1 non-binary; e6, h2 not stated
    ]
    for dimension in ("department", "location", "gender"):
        rows = [r for r in report if r.dimension == dimension]
        assert sum(r.mentees for r in rows) == len(COHORT)
        assert sum(r.matched for r in rows) == len(SCORES)


def test_unknown_and_not_stated_groups() -> None:
    report = fairness_report(COHORT, SCORES, dimensions=["department", "gender"], min_group_size=1)
    departments = [r.group for r in report if r.dimension == "department"]
    genders = [r.group for r in report if r.dimension == "gender"]
    # No merging at min_group_size=1; missing values come after the named groups.
    assert departments == ["Eng", "HR", "Sales", "unknown"]
    assert genders == ["man", "non-binary", "woman", "not stated"]

    unknown = next(r for r in report if r.group == "unknown")
    _approx_row(unknown, mentees=1, matched=1, mean_score=1.0, median_score=1.0)
    not_stated = next(r for r in report if r.group == "not stated")  # e6, h2
    _approx_row(not_stated, mentees=2, matched=0, match_rate=0.0, mean_score=0.0)
    _approx_row(not_stated, p10_score=0.0, median_score=0.0, p90_score=0.0, flagged=True)
    # Only mentees who stated a gender count towards a named gender group.
    assert (
        sum(r.mentees for r in report if r.dimension == "gender" and r.group != "not stated") == 12
    )


def test_whitespace_only_value_is_missing_and_values_are_stripped() -> None:
    cohort = [_mentee("a", " Eng "), _mentee("b", "Eng"), _mentee("c", "   ")]
    report = fairness_report(cohort, {}, dimensions=["department"], min_group_size=1)
    assert [(r.group, r.mentees) for r in report[1:]] == [("Eng", 2), ("unknown", 1)]


def test_other_dimensions_and_self_described_background() -> None:
    cohort = [
        Person("a", MENTEE, cultural_background="x", group="2024"),
        Person("b", MENTEE, group="2024"),
    ]
    report = fairness_report(cohort, {"a": 0.5}, ["cultural_background", "group"], 1)
    assert [(r.dimension, r.group) for r in report[1:]] == [
        ("cultural_background", "x"),
        ("cultural_background", "not stated"),
        ("group", "2024"),
    ]


def test_merged_group_reported_even_if_still_small() -> None:
    cohort = [_mentee(f"a{i}", "A") for i in range(5)] + [_mentee("b0", "B")]
    report = fairness_report(cohort, {}, dimensions=["department"])
    assert [(r.group, r.mentees) for r in report[1:]] == [("A", 5), ("other (fewer than 5)", 1)]


def test_no_other_row_without_small_groups() -> None:
    cohort = [_mentee(f"a{i}", "A") for i in range(3)] + [_mentee(f"b{i}", "B") for i in range(3)]
    report = fairness_report(cohort, {"a0": 1.0}, dimensions=["department"], min_group_size=3)
    assert [r.group for r in report[1:]] == ["A", "B"]


# --- four-fifths rule --------------------------------------------------------------


def _cohort_with_rates(groups: dict[str, tuple[int, int]]) -> tuple[list[Person], dict[str, float]]:
    """groups: name -> (mentees, matched); every matched mentee scores 0.5."""
    mentees, scores = [], {}
    for name, (size, matched) in groups.items():
        for i in range(size):
            pid = f"{name}{i}"
            mentees.append(_mentee(pid, name))
            if i < matched:
                scores[pid] = 0.5
    return mentees, scores


def test_group_at_exactly_four_fifths_of_overall_is_not_flagged() -> None:
    # Overall 10/20 = 0.5; B at 4/10 = 0.4 = 0.8 x 0.5 exactly.
    mentees, scores = _cohort_with_rates({"A": (10, 6), "B": (10, 4)})
    rows = _rows(fairness_report(mentees, scores, ["department"]), "department")
    assert rows["B"].match_rate == pytest.approx(0.4)
    assert not rows["B"].flagged
    assert not rows["A"].flagged


def test_exact_four_fifths_comparison_is_not_fooled_by_rounding() -> None:
    # Overall 9/12 = 0.75; B at 3/5 = 0.6 = 0.8 x 0.75 exactly, but in floating point
    # 3 / 5 < 0.8 * (9 / 12): a float comparison would wrongly flag B.
    assert 3 / 5 < 0.8 * (9 / 12)
    mentees, scores = _cohort_with_rates({"A": (7, 6), "B": (5, 3)})
    rows = _rows(fairness_report(mentees, scores, ["department"]), "department")
    assert not rows["B"].flagged


def test_group_just_below_four_fifths_is_flagged() -> None:
    # Overall 13/25 = 0.52, 0.8 x = 0.416; B at 4/10 = 0.4 < 0.416.
    mentees, scores = _cohort_with_rates({"A": (15, 9), "B": (10, 4)})
    rows = _rows(fairness_report(mentees, scores, ["department"]), "department")
    assert rows["B"].flagged
    assert not rows["A"].flagged
    assert not fairness_report(mentees, scores, ["department"])[0].flagged


def test_nothing_flagged_when_nobody_matched() -> None:
    mentees, scores = _cohort_with_rates({"A": (5, 0), "B": (5, 0)})
    report = fairness_report(mentees, scores, ["department"])
    assert all(r.match_rate == 0.0 and not r.flagged for r in report)


# --- percentiles -------------------------------------------------------------------


def test_nearest_rank_percentiles_use_exact_ranks() -> None:
    # 30 scores 1..30: p10 -> ceil(3) = 3rd, median -> 15th, p90 -> ceil(27) = 27th.
    # (0.1 * 30 is 3.0000000000000004 in floating point; a float ceil would pick 4th.)
    mentees = [_mentee(f"m{i}", "A") for i in range(30)]
    scores = {f"m{i}": float(i + 1) for i in range(30)}
    overall = fairness_report(mentees, scores, ())[0]
    assert (overall.p10_score, overall.median_score, overall.p90_score) == (3.0, 15.0, 27.0)
    assert overall.mean_score == pytest.approx(15.5)


def test_single_score_is_every_percentile() -> None:
    overall = fairness_report([_mentee("a"), _mentee("b")], {"a": 0.42}, ())[0]
    assert (overall.p10_score, overall.median_score, overall.p90_score) == (0.42, 0.42, 0.42)
    assert overall.match_rate == 0.5


# --- edge cases and validation -----------------------------------------------------


def test_empty_input() -> None:
    assert fairness_report([], {}) == [
        GroupStats("overall", "all", 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, False)
    ]


def test_scores_of_unknown_people_are_ignored() -> None:
    report = fairness_report([_mentee("a", "A")], {"a": 0.5, "stranger": 0.9}, ["department"], 1)
    assert [(r.mentees, r.matched, r.mean_score) for r in report] == [(1, 1, 0.5), (1, 1, 0.5)]


@pytest.mark.parametrize("dimension", ["skills", "job_level", "nope", "overall"])
def test_unknown_or_non_text_dimension_rejected(dimension: str) -> None:
    with pytest.raises(ValueError, match=repr(dimension)):
        fairness_report([_mentee("a")], {}, [dimension])


def test_other_invalid_input_rejected() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        fairness_report([_mentee("a")], {}, ["department", "department"])
    with pytest.raises(ValueError, match="mentee 'a' is listed twice"):
        fairness_report([_mentee("a"), _mentee("a")], {})
    with pytest.raises(ValueError, match="min_group_size"):
        fairness_report([_mentee("a")], {}, min_group_size=0)
    with pytest.raises(ValueError, match="score of mentee 'a' is not finite"):
        fairness_report([_mentee("a")], {"a": math.nan})


# --- properties --------------------------------------------------------------------

_values = st.sampled_from(["", "A", "B", "C", "D"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(_values, _values, st.none() | st.floats(0, 1)), max_size=40),
    st.integers(1, 8),
)
def test_rows_partition_the_cohort_and_hide_small_groups(
    people: list[tuple[str, str, float | None]], min_group_size: int
) -> None:
    mentees = [_mentee(f"p{i}", d, gender=g) for i, (d, g, _) in enumerate(people)]
    scores = {f"p{i}": s for i, (_, _, s) in enumerate(people) if s is not None}
    report = fairness_report(mentees, scores, ["department", "gender"], min_group_size)
    other = f"other (fewer than {min_group_size})"
    for dimension in ("department", "gender"):
        rows = [r for r in report if r.dimension == dimension]
        assert sum(r.mentees for r in rows) == len(mentees)
        assert sum(r.matched for r in rows) == len(scores)
        assert len({r.group for r in rows}) == len(rows)
        for r in rows:
            assert r.group == other or r.mentees >= min_group_size
            assert r.p10_score <= r.median_score <= r.p90_score
            assert r.match_rate == (r.matched / r.mentees if r.mentees else 0.0)
