"""The warm-started exact solver (augment.repair) against OR-Tools' min-cost flow.

From ANY starting prices and ANY previous assignment (pairs that are not listed, not tight or
over capacity included), repair must reach the same number of matched mentees and the same
total profit as solve_flow, within capacities, and return LP duals that prove it: feasible on
every pair, tight on the chosen ones, zero for unmatched mentees and mentors with a free place.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.matching.domain.assignment import SCORE_SCALE, solve_flow
from services.matching.domain.augment import Repaired, opening_prices, repair

I64 = npt.NDArray[np.int64]
Instance = tuple[I64, I64, I64, I64, int]  # mentee, mentor, w, capacities, mentees


@st.composite
def instances(draw: st.DrawFn, most: int = 9) -> Instance:
    n_e = draw(st.integers(1, most))
    n_m = draw(st.integers(1, max(1, most // 2)))
    cells = list(itertools.product(range(n_e), range(n_m)))
    chosen = sorted(draw(st.sets(st.sampled_from(cells), max_size=len(cells))))
    # Coarse scores make ties, where a wrong dual step would show.
    w = [draw(st.integers(-2, 8)) * SCORE_SCALE // 4 for _ in chosen]
    caps = [draw(st.integers(0, 3)) for _ in range(n_m)]
    mentee = np.array([e for e, _ in chosen], np.int64)
    mentor = np.array([m for _, m in chosen], np.int64)
    return mentee, mentor, np.array(w, np.int64), np.array(caps, np.int64), n_e


def check_optimal(done: Repaired, instance: Instance) -> None:
    mentee, mentor, w, caps, n_e = instance
    big = (n_e + 1) * SCORE_SCALE
    profit = big + w
    expected = solve_flow(mentee, mentor, w, caps, n_e)
    assert done.chosen.sum() == expected.sum(), "not the most mentees matched"
    assert profit[done.chosen].sum() == profit[expected].sum(), "not the best total"
    assert np.bincount(mentee[done.chosen], minlength=n_e).max(initial=0) <= 1
    load = np.bincount(mentor[done.chosen], minlength=caps.size)
    assert (load <= caps).all(), "over capacity"
    p, u = done.p, done.u
    assert (p >= 0).all() and (u >= 0).all()
    reduced = u[mentee] + p[mentor] - profit
    assert (reduced >= 0).all(), "duals infeasible"
    assert (reduced[done.chosen] == 0).all(), "a chosen pair is not tight"
    matched = np.zeros(n_e, np.bool_)
    matched[mentee[done.chosen]] = True
    assert (u[~matched] == 0).all()
    assert (p[(load < caps)] == 0).all()
    assert u.sum() + (caps * p).sum() == profit[done.chosen].sum(), "no proof of optimality"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.data())
def test_repair_is_optimal_from_any_prices_and_any_previous_assignment(
    instance: Instance, data: st.DataObject
) -> None:
    mentee, mentor, w, caps, n_e = instance
    n_m = caps.size
    big = (n_e + 1) * SCORE_SCALE
    prices = np.array(data.draw(st.lists(st.integers(0, 3 * big), min_size=n_m, max_size=n_m)))
    mate = np.array(data.draw(st.lists(st.integers(-1, n_m - 1), min_size=n_e, max_size=n_e)))
    done = repair(mentee, mentor, big + w, caps, prices, mate)
    check_optimal(done, instance)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(most=40))
def test_repair_from_opening_prices_and_again_from_its_own_result(instance: Instance) -> None:
    mentee, mentor, w, caps, n_e = instance
    profit = (n_e + 1) * SCORE_SCALE + w
    nobody = np.full(n_e, -1, np.int64)
    first = repair(mentee, mentor, profit, caps, opening_prices(mentor, profit, caps), nobody)
    check_optimal(first, instance)
    mate = nobody.copy()
    mate[mentee[first.chosen]] = mentor[first.chosen]
    # An optimal start is kept as it is: nothing to repair.
    again = repair(mentee, mentor, profit, caps, first.p, mate)
    assert (again.chosen == first.chosen).all()
    assert (again.p == first.p).all() and (again.u == first.u).all()


def test_ortools_assignment_example() -> None:
    # https://developers.google.com/optimization/assignment/assignment_example: cost 265.
    costs = np.array([[90, 76, 75, 70], [35, 85, 55, 65], [125, 95, 90, 105], [45, 110, 95, 115]])
    mentee, mentor = (a.ravel().astype(np.int64) for a in np.indices(costs.shape))
    profit = 1000 - costs.ravel().astype(np.int64)
    done = repair(
        mentee, mentor, profit, np.ones(4, np.int64), np.zeros(4, np.int64), -np.ones(4, np.int64)
    )
    assert costs.ravel()[done.chosen].sum() == 265
    assert mentor[done.chosen].tolist() == [3, 2, 1, 0]


def test_opening_prices_are_what_the_first_mentee_turned_away_would_pay() -> None:
    # mentor 0 (1 place): profits 9, 7, 5 -> 7; mentor 1 (2 places): 8, 6 -> room for both: 0;
    # mentor 2 (no place): its best, 4.
    mentor = np.array([0, 1, 0, 2, 1, 0], np.int64)
    profit = np.array([5, 8, 9, 4, 6, 7], np.int64)
    assert opening_prices(mentor, profit, np.array([1, 2, 0], np.int64)).tolist() == [7, 0, 4]
    # A negative capacity counts as none.
    assert opening_prices(mentor, profit, np.array([1, 2, -1], np.int64)).tolist() == [7, 0, 4]
