"""Exact capacitated mentee -> mentor assignment.

The problem is a bipartite b-matching: every mentee takes at most one mentor, every
mentor takes at most ``capacity`` mentees, and only explicitly listed (mentee, mentor)
pairs may be used. The objective is lexicographic: first the number of matched mentees,
then the total score.

It is solved as a min-cost max-flow problem on

    source -(cap 1)-> mentee -(cap 1, cost -score)-> mentor -(cap capacity)-> sink

with OR-Tools' ``solve_max_flow_with_min_cost``, which first fixes the flow value to the
maximum flow (= maximum number of matched mentees) and only then minimises cost among
flows of that value. That gives the lexicographic objective exactly, without the big-M
weighting a single-objective formulation would need.

Precision: the solver works on integers, so every score is rounded to the nearest
multiple of ``1 / SCORE_SCALE`` (1e-6). The result is exactly optimal for the rounded
scores; measured in the original scores it is within ``matched * 1e-6`` of the true
optimum, and two scores closer than 5e-7 may be treated as equal. Scores are also
bounded in magnitude (see ``_MAX_COST_PRODUCT``); with scores in a sensible range such
as [-1000, 1000] and up to a few million nodes this never triggers.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from ortools.graph.python import min_cost_flow

__all__ = [
    "SCORE_SCALE",
    "Assignment",
    "AssignmentSolverError",
    "Pair",
    "solve_assignment",
    "solve_flow",
    "solve_numbered",
]

SCORE_SCALE: int = 10**6
"""Scores are quantised to multiples of ``1 / SCORE_SCALE`` before solving."""

# OR-Tools' cost-scaling algorithm multiplies every arc cost by (num_nodes + 1)
# internally and accumulates total costs in int64; keeping the product well below 2**63
# leaves headroom for both, instead of letting the solver fail with BAD_COST_RANGE
# (or, worse, letting the float -> int64 cast overflow silently).
_MAX_COST_PRODUCT = 2**62


@dataclass(frozen=True, slots=True)
class Pair:
    """An allowed (mentee, mentor) pairing and how good it is (higher is better)."""

    mentee_id: str
    mentor_id: str
    score: float


@dataclass(frozen=True, slots=True)
class Assignment:
    """A chosen pairing; ``score`` is the original, unrounded score of the pair."""

    mentee_id: str
    mentor_id: str
    score: float


class AssignmentSolverError(RuntimeError):
    """The flow solver did not report an optimal solution."""


def solve_assignment(pairs: Iterable[Pair], capacities: Mapping[str, int]) -> list[Assignment]:
    """Match mentees to mentors, maximising matched count first, then total score.

    Args:
        pairs: the allowed pairings. Pairs whose mentor is missing from ``capacities`` or
            has capacity <= 0 are ignored. Scores may be negative; a negative-score pair
            is still used if it increases the number of matched mentees.
        capacities: maximum number of mentees per mentor.

    Returns:
        One ``Assignment`` per matched mentee, sorted by mentee id. The result depends only
        on the set of pairs, not on their order.

    Raises:
        ValueError: a score is NaN or infinite, a (mentee, mentor) pair is listed twice,
            a score is too large in magnitude to be represented exactly, or a capacity
            is not an integer.
        AssignmentSolverError: OR-Tools did not return OPTIMAL.
    """
    pair_list = pairs if isinstance(pairs, (list, tuple)) else list(pairs)
    n_pairs = len(pair_list)
    if n_pairs == 0:
        return []

    # Column-wise extraction keeps the per-pair Python work to a few C-level loops; the
    # rest of the pipeline is vectorised.
    mentee_col = [p.mentee_id for p in pair_list]
    mentor_col = [p.mentor_id for p in pair_list]
    raw_scores = np.array([p.score for p in pair_list], dtype=np.float64)
    del pair_list

    # Sorted id -> index maps make node numbering, and hence the solver's tie-breaking,
    # independent of input order. Sorted mentee indices also mean the solution comes
    # out already ordered by mentee id.
    mentee_ids = sorted(set(mentee_col))
    mentor_ids = sorted(set(mentor_col))
    mentee_index = {m: i for i, m in enumerate(mentee_ids)}
    mentor_index = {m: i for i, m in enumerate(mentor_ids)}
    mentee_idx = np.fromiter(map(mentee_index.__getitem__, mentee_col), np.int64, n_pairs)
    mentor_idx = np.fromiter(map(mentor_index.__getitem__, mentor_col), np.int64, n_pairs)
    del mentee_col, mentor_col
    return solve_numbered(mentee_idx, mentor_idx, raw_scores, mentee_ids, mentor_ids, capacities)


def solve_numbered(
    mentee_idx: npt.NDArray[np.int64],
    mentor_idx: npt.NDArray[np.int64],
    raw_scores: npt.NDArray[np.float64],
    mentee_ids: list[str],
    mentor_ids: list[str],
    capacities: Mapping[str, int],
) -> list[Assignment]:
    """solve_assignment on pairs already numbered, for callers that read them as columns.

    Pair i is (mentee_ids[mentee_idx[i]], mentor_ids[mentor_idx[i]], raw_scores[i]). With
    both id lists sorted and holding exactly the ids that occur in the pairs (as
    solve_assignment numbers them), the result is solve_assignment's, pair for pair.
    Same errors as solve_assignment.
    """
    if mentee_idx.size == 0:
        return []
    not_finite = ~np.isfinite(raw_scores)
    if not_finite.any():
        i = int(np.flatnonzero(not_finite)[0])
        raise ValueError(
            f"score of pair (mentee {mentee_ids[mentee_idx[i]]!r}, "
            f"mentor {mentor_ids[mentor_idx[i]]!r}) is not finite: {raw_scores[i]!r}"
        )

    # One int64 key sorts several times faster than np.lexsort on two columns; it cannot
    # overflow because both counts are bounded by the number of pairs.
    order = np.argsort(mentee_idx * len(mentor_ids) + mentor_idx)
    mentee_idx = mentee_idx[order]
    mentor_idx = mentor_idx[order]
    raw_scores = raw_scores[order]

    # After sorting, duplicates are adjacent. They are rejected rather than merged
    # because two different scores for one pair means the caller has a bug upstream.
    dup = (mentee_idx[1:] == mentee_idx[:-1]) & (mentor_idx[1:] == mentor_idx[:-1])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise ValueError(
            f"duplicate pair (mentee {mentee_ids[mentee_idx[i]]!r}, "
            f"mentor {mentor_ids[mentor_idx[i]]!r})"
        )

    n_mentees = len(mentee_ids)
    n_mentors = len(mentor_ids)
    caps = _mentor_capacities(mentor_ids, capacities, n_mentees)

    usable = caps[mentor_idx] > 0
    if not usable.all():
        mentee_idx = mentee_idx[usable]
        mentor_idx = mentor_idx[usable]
        raw_scores = raw_scores[usable]
    if mentee_idx.size == 0:
        return []

    scaled = np.rint(raw_scores * SCORE_SCALE)
    _check_magnitude(
        scaled,
        n_mentees + n_mentors + 2,
        lambda i: (
            f"score of pair (mentee {mentee_ids[mentee_idx[i]]!r}, "
            f"mentor {mentor_ids[mentor_idx[i]]!r}) is too large in magnitude to solve "
            f"exactly with {n_mentees + n_mentors + 2} nodes at scale {SCORE_SCALE}: "
            f"{raw_scores[i]!r}"
        ),
    )
    chosen = np.flatnonzero(
        solve_flow(mentee_idx, mentor_idx, scaled.astype(np.int64), caps, n_mentees)
    )
    return [
        Assignment(mentee_ids[e], mentor_ids[m], s)
        for e, m, s in zip(
            mentee_idx[chosen].tolist(),
            mentor_idx[chosen].tolist(),
            raw_scores[chosen].tolist(),
            strict=True,
        )
    ]


def solve_flow(
    mentee: npt.NDArray[np.int64],
    mentor: npt.NDArray[np.int64],
    profit: npt.NDArray[np.int64],
    capacities: npt.NDArray[np.int64],
    n_mentees: int,
) -> npt.NDArray[np.bool_]:
    """The solver core on arrays: which pairs an optimal assignment uses.

    Pair i is (mentee[i], mentor[i]) with integer profit[i] (a scaled score); mentees are
    below n_mentees, mentors index `capacities`. No pair may be listed twice. Maximises the
    number of matched mentees, then the total profit (see the module docstring).
    """
    n_mentors = capacities.size
    chosen = np.zeros(mentee.size, np.bool_)
    usable = capacities[mentor] > 0
    if not usable.any():
        return chosen
    arcs_at = np.flatnonzero(usable)
    mentee, mentor, profit = mentee[arcs_at], mentor[arcs_at], profit[arcs_at]
    # Only mentees with a pair are nodes: mentees without one would only slow the solver.
    present, mentee = np.unique(mentee, return_inverse=True)
    n_mentees = present.size
    # Node layout: 0 = source, 1..n_mentees = mentees, then mentors, then the sink.
    mentee_node0 = 1
    mentor_node0 = 1 + n_mentees
    sink = mentor_node0 + n_mentors
    num_nodes = sink + 1
    if num_nodes >= 2**31:
        raise ValueError(f"instance too large: {num_nodes} flow nodes exceed int32")
    _check_magnitude(
        profit.astype(np.float64),
        num_nodes,
        lambda i: f"profit {int(profit[i])} too large in magnitude for {num_nodes} flow nodes",
    )

    solver = min_cost_flow.SimpleMinCostFlow()
    # Pair arcs go first so their arc indices are exactly 0..n_arcs-1.
    pair_arcs = solver.add_arcs_with_capacity_and_unit_cost(
        (mentee_node0 + mentee).astype(np.int32),
        (mentor_node0 + mentor).astype(np.int32),
        np.ones(mentee.size, dtype=np.int64),
        -profit,  # max profit == min cost among maximum flows
    )
    solver.add_arcs_with_capacity_and_unit_cost(
        np.zeros(n_mentees, dtype=np.int32),
        np.arange(mentee_node0, mentee_node0 + n_mentees, dtype=np.int32),
        np.ones(n_mentees, dtype=np.int64),
        np.zeros(n_mentees, dtype=np.int64),
    )
    used_mentors = np.flatnonzero(capacities > 0)
    solver.add_arcs_with_capacity_and_unit_cost(
        (mentor_node0 + used_mentors).astype(np.int32),
        np.full(used_mentors.size, sink, dtype=np.int32),
        np.minimum(capacities[used_mentors], n_mentees),
        np.zeros(used_mentors.size, dtype=np.int64),
    )
    # The supply only has to be an upper bound on the flow: solve_max_flow_with_min_cost
    # reduces it to the maximum achievable flow instead of declaring the problem
    # infeasible.
    supply = min(n_mentees, int(np.minimum(capacities, n_mentees).clip(0).sum()))
    solver.set_node_supply(0, supply)
    solver.set_node_supply(sink, -supply)

    status = solver.solve_max_flow_with_min_cost()
    if status != min_cost_flow.SimpleMinCostFlow.OPTIMAL:
        raise AssignmentSolverError(
            f"min-cost-flow solver returned {getattr(status, 'name', status)} "
            f"({n_mentees} mentees, {n_mentors} mentors, {mentee.size} pairs)"
        )
    flows = np.asarray(solver.flows(np.asarray(pair_arcs, dtype=np.int32)))
    chosen[arcs_at[flows > 0]] = True
    return chosen


def _check_magnitude(
    scaled: npt.NDArray[np.float64], num_nodes: int, message: Callable[[int], str]
) -> None:
    if scaled.size == 0:
        return
    max_magnitude = float(np.max(np.abs(scaled)))
    if (max_magnitude + 1.0) * (num_nodes + 1) >= _MAX_COST_PRODUCT:
        raise ValueError(message(int(np.argmax(np.abs(scaled)))))


def _mentor_capacities(
    mentor_ids: list[str], capacities: Mapping[str, int], n_mentees: int
) -> npt.NDArray[np.int64]:
    caps = np.zeros(len(mentor_ids), dtype=np.int64)
    for j, mentor_id in enumerate(mentor_ids):
        cap = capacities.get(mentor_id)
        if cap is None:
            continue
        try:
            value = operator.index(cap)
        except TypeError:
            raise ValueError(
                f"capacity of mentor {mentor_id!r} is not an integer: {cap!r}"
            ) from None
        # Capacities beyond the number of mentees are never binding; clamping keeps
        # arbitrarily large Python ints inside int64.
        caps[j] = max(0, min(value, n_mentees))
    return caps
