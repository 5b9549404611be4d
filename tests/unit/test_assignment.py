"""Tests for the exact mentee -> mentor assignment core.

The property tests check the OR-Tools min-cost-flow result against two independent
scipy solvers on the capacity-expanded bipartite graph (every mentor copied once per
unit of capacity): a maximum bipartite matching for the matched count, and a dense
linear_sum_assignment with a big-M penalty for the lexicographic optimum.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from services.matching.domain.assignment import (
    SCORE_SCALE,
    Assignment,
    Pair,
    solve_assignment,
)

INF = float("inf")


def _total(assignments: Sequence[Assignment]) -> float:
    return math.fsum(a.score for a in assignments)


def _pairs_from_matrix(matrix: Sequence[Sequence[float]], sign: float) -> list[Pair]:
    """Rows are mentees, columns mentors; infinite entries are forbidden pairs."""
    return [
        Pair(f"e{i}", f"m{j}", sign * value)
        for i, row in enumerate(matrix)
        for j, value in enumerate(row)
        if math.isfinite(value)
    ]


def _unit_capacities(n_mentors: int) -> dict[str, int]:
    return {f"m{j}": 1 for j in range(n_mentors)}


def _check_feasible(
    result: Sequence[Assignment], pairs: Sequence[Pair], capacities: Mapping[str, int]
) -> None:
    allowed = {(p.mentee_id, p.mentor_id): p.score for p in pairs}
    mentees = [a.mentee_id for a in result]
    assert len(mentees) == len(set(mentees)), "a mentee was matched twice"
    assert mentees == sorted(mentees), "output not sorted by mentee id"
    for a in result:
        assert (a.mentee_id, a.mentor_id) in allowed, f"unlisted pair used: {a}"
        assert a.score == allowed[(a.mentee_id, a.mentor_id)]
    for mentor, load in Counter(a.mentor_id for a in result).items():
        assert load <= capacities.get(mentor, 0), f"mentor {mentor} over capacity"


# --- Known instances ---------------------------------------------------------------


def test_ortools_assignment_example() -> None:
    # https://developers.google.com/optimization/assignment/assignment_example
    costs = [
        [90, 76, 75, 70],
        [35, 85, 55, 65],
        [125, 95, 90, 105],
        [45, 110, 95, 115],
    ]
    pairs = _pairs_from_matrix(costs, sign=-1)
    result = solve_assignment(pairs, _unit_capacities(4))
    assert len(result) == 4
    assert _total(result) == -265
    assert [(a.mentee_id, a.mentor_id) for a in result] == [
        ("e0", "m3"),
        ("e1", "m2"),
        ("e2", "m1"),
        ("e3", "m0"),
    ]


# Cases from scipy/optimize/tests/test_linear_assignment.py: (cost matrix, the cost
# entries picked by the optimal minimum-cost assignment, one per row or column).
SCIPY_CASES = [
    ([[400, 150, 400], [400, 450, 600], [300, 225, 300]], [150, 400, 300]),
    ([[400, 150, 400, 1], [400, 450, 600, 2], [300, 225, 300, 3]], [150, 2, 300]),
    ([[10, 10, 8], [9, 8, 1], [9, 7, 4]], [10, 1, 7]),
    ([[10, 10, 8, 11], [9, 8, 1, 1], [9, 7, 4, 10]], [10, 1, 4]),
    ([[10, INF, INF], [INF, INF, 1], [INF, 7, INF]], [10, 1, 7]),
]


@pytest.mark.parametrize("transpose", [False, True], ids=["rows=mentees", "rows=mentors"])
@pytest.mark.parametrize(("matrix", "expected_entries"), SCIPY_CASES)
def test_scipy_linear_assignment_cases_minimise(
    matrix: list[list[float]], expected_entries: list[float], transpose: bool
) -> None:
    cost = np.array(matrix, dtype=float)
    if transpose:
        cost = cost.T
    pairs = _pairs_from_matrix(cost.tolist(), sign=-1)
    result = solve_assignment(pairs, _unit_capacities(cost.shape[1]))

    assert len(result) == min(cost.shape)
    assert _total(result) == -sum(expected_entries)
    _check_feasible(result, pairs, _unit_capacities(cost.shape[1]))


@pytest.mark.parametrize(("matrix", "_entries"), SCIPY_CASES)
def test_scipy_linear_assignment_cases_maximise(
    matrix: list[list[float]], _entries: list[float]
) -> None:
    cost = np.array(matrix, dtype=float)
    finite = np.isfinite(cost)
    # scipy's own maximise=True result is the reference; forbidden entries become a
    # very negative weight so scipy never prefers them over an allowed entry.
    weights = np.where(finite, cost, -1e9)
    rows, cols = linear_sum_assignment(weights, maximize=True)
    expected = float(weights[rows, cols].sum())

    pairs = _pairs_from_matrix(matrix, sign=1)
    result = solve_assignment(pairs, _unit_capacities(cost.shape[1]))
    assert len(result) == min(cost.shape)
    assert _total(result) == expected


def test_scipy_empty_matrix_case() -> None:
    # scipy's "n == 2, m == 0" case: mentees exist only as rows, so there are no pairs.
    assert solve_assignment([], {}) == []


# --- Lexicographic objective ------------------------------------------------------


def test_more_matches_beat_higher_score() -> None:
    # Alone, a->x is worth 100. Matching both mentees forces a->y + b->x = 1, which is
    # a far lower total score but one more match; the count must win.
    pairs = [Pair("a", "x", 100.0), Pair("a", "y", 0.0), Pair("b", "x", 1.0)]
    result = solve_assignment(pairs, {"x": 1, "y": 1})
    assert {(r.mentee_id, r.mentor_id) for r in result} == {("a", "y"), ("b", "x")}
    assert _total(result) == 1.0


def test_negative_scores_are_still_matched() -> None:
    pairs = [Pair("a", "x", -5.0), Pair("b", "x", -7.5), Pair("b", "y", -1000.0)]
    result = solve_assignment(pairs, {"x": 1, "y": 1})
    assert len(result) == 2
    assert _total(result) == -1005.0


def test_score_breaks_ties_between_maximum_matchings() -> None:
    pairs = [Pair("a", "x", 1.0), Pair("a", "y", 3.0), Pair("b", "x", 2.0), Pair("b", "y", 1.0)]
    result = solve_assignment(pairs, {"x": 1, "y": 1})
    assert [(r.mentee_id, r.mentor_id) for r in result] == [("a", "y"), ("b", "x")]


def test_resolution_of_score_scale() -> None:
    # Scores one quantum apart must still be distinguished.
    step = 1 / SCORE_SCALE
    pairs = [Pair("a", "x", 0.5), Pair("a", "y", 0.5 + step)]
    result = solve_assignment(pairs, {"x": 1, "y": 1})
    assert [(r.mentor_id, r.score) for r in result] == [("y", 0.5 + step)]


# --- Capacities and allowed pairs -------------------------------------------------


def test_capacity_is_respected_and_best_scores_kept() -> None:
    pairs = [Pair(f"e{i}", "x", float(i)) for i in range(5)]
    result = solve_assignment(pairs, {"x": 2})
    assert [(r.mentee_id, r.score) for r in result] == [("e3", 3.0), ("e4", 4.0)]


def test_capacity_above_demand_is_harmless() -> None:
    pairs = [Pair("a", "x", 1.0), Pair("b", "x", 2.0)]
    result = solve_assignment(pairs, {"x": 10**30})
    assert len(result) == 2


def test_mentors_with_zero_negative_or_missing_capacity_are_unused() -> None:
    pairs = [
        Pair("a", "zero", 100.0),
        Pair("a", "neg", 100.0),
        Pair("a", "missing", 100.0),
        Pair("a", "ok", 1.0),
        Pair("b", "zero", 100.0),
        Pair("c", "missing", 100.0),
    ]
    result = solve_assignment(pairs, {"zero": 0, "neg": -3, "ok": 1})
    assert result == [Assignment("a", "ok", 1.0)]


def test_no_usable_pairs() -> None:
    assert solve_assignment([Pair("a", "x", 1.0)], {"x": 0}) == []
    assert solve_assignment([Pair("a", "x", 1.0)], {}) == []


def test_unlisted_pairs_are_never_used() -> None:
    # Complete 3x3 minus the diagonal; the diagonal would be best if it were allowed.
    pairs = [
        Pair(f"e{i}", f"m{j}", 1.0 if i != j else 50.0)
        for i in range(3)
        for j in range(3)
        if i != j
    ]
    result = solve_assignment(pairs, _unit_capacities(3))
    assert len(result) == 3
    assert all(r.mentee_id[1:] != r.mentor_id[1:] for r in result)


def test_accepts_any_iterable_and_is_order_independent() -> None:
    pairs = [Pair(f"e{i}", f"m{j}", 1.0) for i in range(4) for j in range(3)]
    caps = {"m0": 1, "m1": 2, "m2": 1}
    expected = solve_assignment(pairs, caps)
    assert solve_assignment(iter(pairs), caps) == expected
    assert solve_assignment(tuple(reversed(pairs)), caps) == expected
    assert len(expected) == 4


# --- Input validation --------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_score_rejected(bad: float) -> None:
    pairs = [Pair("a", "x", 1.0), Pair("mentee-7", "mentor-3", bad)]
    with pytest.raises(ValueError, match=r"mentee-7.*mentor-3"):
        solve_assignment(pairs, {"x": 1, "mentor-3": 1})


def test_duplicate_pair_rejected() -> None:
    pairs = [Pair("a", "x", 1.0), Pair("b", "x", 1.0), Pair("a", "x", 2.0)]
    with pytest.raises(ValueError, match=r"duplicate pair.*'a'.*'x'"):
        solve_assignment(pairs, {"x": 1})


def test_duplicate_pair_rejected_even_for_unusable_mentor() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        solve_assignment([Pair("a", "x", 1.0), Pair("a", "x", 1.0)], {})


def test_huge_score_rejected() -> None:
    with pytest.raises(ValueError, match="too large"):
        solve_assignment([Pair("a", "x", 1e300)], {"x": 1})


def test_non_integer_capacity_rejected() -> None:
    with pytest.raises(ValueError, match="'x'"):
        solve_assignment([Pair("a", "x", 1.0)], {"x": 1.5})  # type: ignore[dict-item]


# --- Property tests against independent solvers ----------------------------------


@st.composite
def instances(draw: st.DrawFn) -> tuple[list[Pair], dict[str, int]]:
    n_mentees = draw(st.integers(1, 7))
    n_mentors = draw(st.integers(1, 5))
    candidates = list(itertools.product(range(n_mentees), range(n_mentors)))
    chosen = draw(st.sets(st.sampled_from(candidates), max_size=len(candidates)))
    # Quarter-integers are exact in binary and at SCORE_SCALE, so every sum compared
    # below is exact and float equality is meaningful.
    pairs = [Pair(f"e{i}", f"m{j}", draw(st.integers(-40, 40)) / 4) for i, j in sorted(chosen)]
    capacities = {f"m{j}": draw(st.integers(1, 3)) for j in range(n_mentors)}
    return draw(st.permutations(pairs)), capacities


def _expanded_slots(capacities: Mapping[str, int]) -> list[str]:
    """One column per unit of mentor capacity."""
    return [m for m in sorted(capacities) for _ in range(capacities[m])]


def _reference_max_matching(pairs: Sequence[Pair], capacities: Mapping[str, int]) -> int:
    mentees = sorted({p.mentee_id for p in pairs})
    slots = _expanded_slots(capacities)
    if not mentees:
        return 0
    row = {m: i for i, m in enumerate(mentees)}
    rows, cols = [], []
    for p in pairs:
        for k, mentor in enumerate(slots):
            if mentor == p.mentor_id:
                rows.append(row[p.mentee_id])
                cols.append(k)
    graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(mentees), len(slots)))
    match = maximum_bipartite_matching(graph, perm_type="column")
    return int((match >= 0).sum())


def _reference_lexicographic(
    pairs: Sequence[Pair], capacities: Mapping[str, int]
) -> tuple[int, float]:
    """(matched, total score) via scipy's dense Hungarian solver and a big-M penalty.

    Every matching in the dense matrix uses exactly r = min(rows, cols) cells; with f
    of them forbidden its cost is M*f - S, where S is the score of the allowed cells.
    Any two matchings' S differ by at most 2*r*max|score|, so with M larger than that,
    minimising cost first minimises f (= maximises matched, r - f) and only then
    maximises S. Every real matching extends to a full dense one by padding with
    forbidden cells, so nothing is lost by forcing r assignments.
    """
    mentees = sorted({p.mentee_id for p in pairs})
    slots = _expanded_slots(capacities)
    if not mentees or not slots:
        return 0, 0.0
    r = min(len(mentees), len(slots))
    max_abs = max(abs(p.score) for p in pairs)
    big_m = 2 * r * max_abs + 1
    cost = np.full((len(mentees), len(slots)), big_m)
    allowed = np.zeros_like(cost, dtype=bool)
    row = {m: i for i, m in enumerate(mentees)}
    for p in pairs:
        for k, mentor in enumerate(slots):
            if mentor == p.mentor_id:
                cost[row[p.mentee_id], k] = -p.score
                allowed[row[p.mentee_id], k] = True
    rows, cols = linear_sum_assignment(cost)
    used = allowed[rows, cols]
    return int(used.sum()), float(-cost[rows, cols][used].sum())


PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(instances())
def test_property_feasible(instance: tuple[list[Pair], dict[str, int]]) -> None:
    pairs, capacities = instance
    _check_feasible(solve_assignment(pairs, capacities), pairs, capacities)


@PROPERTY_SETTINGS
@given(instances())
def test_property_matched_count_is_maximum(instance: tuple[list[Pair], dict[str, int]]) -> None:
    pairs, capacities = instance
    result = solve_assignment(pairs, capacities)
    assert len(result) == _reference_max_matching(pairs, capacities)


@PROPERTY_SETTINGS
@given(instances())
def test_property_lexicographic_optimum(instance: tuple[list[Pair], dict[str, int]]) -> None:
    pairs, capacities = instance
    result = solve_assignment(pairs, capacities)
    expected_matched, expected_score = _reference_lexicographic(pairs, capacities)
    assert len(result) == expected_matched
    assert _total(result) == expected_score


def test_big_m_reference_matches_brute_force() -> None:
    # Guards the reference itself: on small instances it must agree with exhaustive
    # enumeration of all assignments, so a bug in the big-M derivation cannot hide a
    # bug in the solver.
    rng = np.random.default_rng(1234)
    for _ in range(60):
        n_mentees, n_mentors = int(rng.integers(1, 5)), int(rng.integers(1, 4))
        pairs = [
            Pair(f"e{i}", f"m{j}", int(rng.integers(-12, 13)) / 4)
            for i in range(n_mentees)
            for j in range(n_mentors)
            if rng.random() < 0.6
        ]
        if not pairs:
            continue
        capacities = {f"m{j}": int(rng.integers(1, 3)) for j in range(n_mentors)}
        by_mentee: dict[str, list[Pair | None]] = {}
        for p in pairs:
            by_mentee.setdefault(p.mentee_id, [None]).append(p)
        best = (-1, -math.inf)
        for combo in itertools.product(*by_mentee.values()):
            used = [p for p in combo if p is not None]
            load = Counter(p.mentor_id for p in used)
            if all(load[m] <= capacities[m] for m in load):
                best = max(best, (len(used), math.fsum(p.score for p in used)))
        assert _reference_lexicographic(pairs, capacities) == best
        result = solve_assignment(pairs, capacities)
        assert (len(result), _total(result)) == best
