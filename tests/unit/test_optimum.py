"""Optimal bulk matching over all allowed pairs (optimum.match) against a dense reference.

The reference scores every (mentee, mentor) pair (evaluate() on small random instances; the
exact vectorised index, itself held to evaluate() by test_candidates.py, on larger synthetic
organisations) and solves the whole problem with solve_assignment. match() must reach the same
number of matched mentees and the same total score, use only eligible pairs with their exact
scores, respect capacities, and say it proved the result optimal. The certificate's moving
parts (column generation rounds, rescans of drifting rows and columns, pricing again, pooled
blocks with per-cell hard checks, forked workers) are forced by patching its parameters.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.synthetic import organisation
from services.matching.domain import dense, optimum
from services.matching.domain.assignment import SCORE_SCALE, Assignment, Pair, solve_assignment
from services.matching.domain.candidates import CandidateIndex
from services.matching.domain.criteria import evaluate
from services.matching.domain.model import (
    Constraints,
    CriterionSpec,
    Kind,
    MatchingConfig,
    Person,
)
from services.matching.domain.taxonomy import Taxonomy
from tests.unit.test_candidates import mentee, mentor, scenarios

Scenario = tuple[list[Person], list[Person], MatchingConfig, Taxonomy, Constraints]


def reference_pairs(
    mentees: Sequence[Person],
    mentors: Sequence[Person],
    config: MatchingConfig,
    taxonomy: Taxonomy,
    constraints: Constraints,
    positive: bool = False,
) -> list[Pair]:
    """Every eligible pair, scored pair by pair (first occurrence of a repeated mentee)."""
    firsts = list({m.participant_id: m for m in reversed(mentees)}.values())
    pairs = []
    for e in firsts:
        for m in mentors:
            if m.free_slots <= 0:
                continue
            ev = evaluate(m, e, config, taxonomy, constraints)
            if ev.allowed and ev.score >= config.min_score and (ev.score > 0 or not positive):
                pairs.append(Pair(e.participant_id, m.participant_id, ev.score))
    return pairs


def index_pairs(
    mentees: Sequence[Person],
    mentors: Sequence[Person],
    config: MatchingConfig,
    taxonomy: Taxonomy,
    constraints: Constraints,
) -> list[Pair]:
    """The same from the exact vectorised index (faster on larger organisations)."""
    index = CandidateIndex(mentors, config, taxonomy, constraints)
    return [
        Pair(e.participant_id, mentor_id, score)
        for e in mentees
        for mentor_id, score in index.top(e, k=index.n_mentors)
    ]


def check(
    result: optimum.MatchResult,
    pairs: Sequence[Pair],
    mentors: Sequence[Person],
    *,
    proved: bool = True,
) -> None:
    """result is feasible, uses exact scores of eligible pairs, and is optimal (when proved)."""
    capacities = {m.participant_id: m.free_slots for m in mentors}
    allowed = {(p.mentee_id, p.mentor_id): p.score for p in pairs}
    got = result.assignments
    assert len({a.mentee_id for a in got}) == len(got)
    load = Counter(a.mentor_id for a in got)
    assert all(load[m] <= capacities[m] for m in load)
    for a in got:
        assert (a.mentee_id, a.mentor_id) in allowed
        assert a.score == allowed[(a.mentee_id, a.mentor_id)]  # bit-identical
    want = solve_assignment(pairs, capacities)
    total = math.fsum(a.score for a in got)
    best = math.fsum(a.score for a in want)
    slack = 1e-6 * max(1, len(want))  # the solver's score quantisation
    # The bound holds for every feasible assignment matching as many mentees.
    if len(want) == len(got):
        assert result.bound.upper >= best - slack
    if proved:
        assert result.bound.optimal
        assert result.bound.max_matched
        assert len(got) == len(want)
        assert abs(total - best) <= slack
        assert abs(result.bound.upper - total) <= slack
    else:
        assert len(got) <= len(want)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.booleans(), st.sampled_from((0.0, 1e-4, 0.04)), st.booleans())
def test_optimum_equals_dense_optimum_on_random_instances(
    scenario: Scenario, positive: bool, margin: float, tiny_blocks: bool
) -> None:
    mentors, mentees, config, taxonomy, constraints = scenario
    pairs = reference_pairs(mentees, mentors, config, taxonomy, constraints, positive)
    with (
        mock.patch.object(optimum, "START_K", 1),
        mock.patch.object(optimum, "START_PER_MENTOR", 1),
        mock.patch.object(dense, "BLOCK_CELLS", 4 if tiny_blocks else dense.BLOCK_CELLS),
    ):
        result = optimum.match(
            mentees, mentors, config, taxonomy, constraints, positive=positive, margin=margin
        )
    check(result, pairs, mentors)


@pytest.mark.parametrize(
    ("size", "seed", "margin", "share", "cache"),
    [
        (160, 1, optimum.MARGIN, 0.05, optimum._CACHE_BYTES),
        # nothing kept beyond the pairs that must be: many rescans; no block kept either
        (240, 2, 0.0, 0.05, 0),
        (240, 3, 0.005, 1.0, optimum._CACHE_BYTES),  # rescans whatever the drift
        (200, 4, 0.005, 0.0, 200_000),  # price again on any drift; some blocks kept
    ],
)
def test_optimum_equals_dense_optimum_on_synthetic_organisations(
    size: int, seed: int, margin: float, share: float, cache: int
) -> None:
    org = organisation(size, seed)
    config = MatchingConfig(criteria=org.config.criteria, min_score=0.3)
    pairs = index_pairs(org.mentees, org.mentors, config, org.taxonomy, org.constraints)
    with (
        mock.patch.object(optimum, "START_K", 1),
        mock.patch.object(optimum, "START_PER_MENTOR", 1),
        mock.patch.object(optimum, "_RESCAN_SHARE", share),
        mock.patch.object(optimum, "_CACHE_BYTES", cache),
        mock.patch.object(dense, "BLOCK_CELLS", 600),
    ):
        result = optimum.match(
            org.mentees, org.mentors, config, org.taxonomy, org.constraints, margin=margin
        )
    assert result.rounds >= 2
    check(result, pairs, org.mentors)


def test_forked_workers_give_the_same_optimum() -> None:
    org = organisation(300, 11)
    pairs = index_pairs(org.mentees, org.mentors, org.config, org.taxonomy, org.constraints)
    with mock.patch.object(dense, "BLOCK_CELLS", 2000):
        one = optimum.match(org.mentees, org.mentors, org.config, org.taxonomy, org.constraints)
        two = optimum.match(
            org.mentees, org.mentors, org.config, org.taxonomy, org.constraints, workers=2
        )
    check(one, pairs, org.mentors)
    check(two, pairs, org.mentors)
    assert two.bound.upper == one.bound.upper


def test_stopped_early_the_result_is_feasible_and_the_bound_still_holds() -> None:
    org = organisation(240, 5)
    pairs = index_pairs(org.mentees, org.mentors, org.config, org.taxonomy, org.constraints)
    with (
        mock.patch.object(optimum, "START_K", 1),
        mock.patch.object(optimum, "START_PER_MENTOR", 1),
    ):
        result = optimum.match(
            org.mentees, org.mentors, org.config, org.taxonomy, org.constraints, max_rounds=1
        )
    assert result.rounds == 2  # the start, then the pool after pricing
    check(result, pairs, org.mentors, proved=False)
    want = solve_assignment(pairs, {m.participant_id: m.free_slots for m in org.mentors})
    if len(want) == len(result.assignments):
        assert result.bound.upper >= math.fsum(a.score for a in want) - 1e-6 * len(want)
    assert result.bound.ratio <= 1.0 + 1e-9


@pytest.mark.parametrize(
    ("gap", "share"),
    [
        (0.05, 0.05),  # rescans as usual; stops once within 5 %
        (0.05, 0.0),  # every round's rescans would cost a pricing pass: bounded, not priced
        (1e-12, 0.0),  # bounded, not close enough: prices again until proved
    ],
)
def test_stops_once_proved_within_the_gap(gap: float, share: float) -> None:
    # Large enough that the exact solve takes a few rounds more than proving it within 5 %.
    org = organisation(600, 2)
    pairs = index_pairs(org.mentees, org.mentors, org.config, org.taxonomy, org.constraints)
    capacities = {m.participant_id: m.free_slots for m in org.mentors}
    best = math.fsum(a.score for a in solve_assignment(pairs, capacities))
    run = lambda gap: optimum.match(  # noqa: E731
        org.mentees, org.mentors, org.config, org.taxonomy, org.constraints, gap=gap
    )
    with (
        mock.patch.object(optimum, "START_K", 1),
        mock.patch.object(optimum, "START_PER_MENTOR", 1),
        mock.patch.object(optimum, "_RESCAN_SHARE", share),
        mock.patch.object(optimum, "_BOUND_SHARE", 1.0),
    ):
        exact, result = run(0.0), run(gap)
    check(exact, pairs, org.mentors)
    check(result, pairs, org.mentors, proved=False)
    bound = result.bound
    assert bound.within(gap)
    assert bound.max_matched and len(result.assignments) == len(exact.assignments)
    # what is proved holds: the optimum is at most the bound, the result within the gap of it
    assert best <= bound.upper + 1e-6 * len(result.assignments)
    assert bound.achieved == pytest.approx(math.fsum(a.score for a in result.assignments))
    assert bound.achieved >= (1 - gap) * best - 1e-6 * len(result.assignments)
    if gap >= 0.05:
        assert result.rounds < exact.rounds  # it saved solves
    else:
        assert bound.optimal and result.rounds == exact.rounds


def crowded_program(size: int, seed: int) -> tuple[list[Person], list[Person], MatchingConfig]:
    """A program like bench/scale.py's: four mentees per mentor with 1-4 places (more mentees
    than places), skills drawn from a few popular ones and a department: scores take few
    values, so hundreds of pairs tie with the assignment's, and a start of a few pairs per
    mentee leaves mentors free that the optimum fills."""
    rng = np.random.default_rng(seed)
    skills = [f"s{n}" for n in range(8)]
    weights = np.array([1 / (1 + n) ** 0.7 for n in range(len(skills))])
    weights /= weights.sum()

    def drawn() -> tuple[str, ...]:
        return tuple(sorted(set(rng.choice(skills, size=int(rng.integers(2, 4)), p=weights))))

    departments = ("eng", "ops", "sales")
    mentors = [
        mentor(
            f"m{n}",
            skills=drawn(),
            department=str(rng.choice(departments)),
            free_slots=int(rng.integers(1, 5)),
        )
        for n in range(size // 5)
    ]
    mentees = [
        mentee(f"e{n}", skills=drawn(), department=str(rng.choice(departments)))
        for n in range(size - size // 5)
    ]
    config = MatchingConfig(
        criteria=(CriterionSpec(Kind.SKILLS, weight=5.0), CriterionSpec(Kind.DEPARTMENT))
    )
    return mentees, mentors, config


@pytest.mark.parametrize(("size", "seed", "per_mentee", "cover"), [(500, 1, 16, 4), (600, 2, 2, 1)])
def test_optimum_over_ties_and_a_start_that_leaves_mentors_free(
    size: int, seed: int, per_mentee: int, cover: int
) -> None:
    # Few pairs per mentee and mentor in the pool: pricing cuts mentees short (their pairs
    # left out are accounted for by raising the reference utilities), and a mentor whose
    # places the start leaves free draws every mentee without one (the flood it caps).
    mentees, mentors, config = crowded_program(size, seed)
    pairs = reference_pairs(mentees, mentors, config, Taxonomy(), Constraints(), positive=True)
    with (
        mock.patch.object(optimum, "START_K", 1),
        mock.patch.object(optimum, "START_PER_MENTOR", 1),
        mock.patch.object(optimum, "_POOL_PER_MENTEE", per_mentee),
        mock.patch.object(optimum, "_COVER", cover),
        mock.patch.object(dense, "BLOCK_CELLS", 2000),
    ):
        result = optimum.match(mentees, mentors, config, positive=True)
    assert result.rounds >= 2
    check(result, pairs, mentors)


@pytest.mark.parametrize("duals", ["zero", "random", "ties"])
def test_capped_pricing_returns_or_bounds_every_pair(duals: str) -> None:
    # What the certificate rests on: at any duals, a pair pricing leaves out is below -margin,
    # or below the bound it gives for its mentee when it cut that mentee short. At zero duals
    # every pair would improve (cut before scoring); with every mentor priced at a perfect
    # score, the best pairs tie at 0 (cut once scored).
    mentees, mentors, config = crowded_program(300, 4)
    index = CandidateIndex(mentors, config)
    specs = dense.plan_blocks(index, mentees, block_cells=1500)
    worker = optimum._Worker(index, mentees, specs, positive=True)
    rng = np.random.default_rng(5)
    n_e, n_m = len(mentees), index.n_mentors
    big = (n_e + 1) * SCORE_SCALE
    p = np.zeros(n_m, np.int64)
    u = np.zeros(n_e, np.int64)
    if duals == "random":
        p = big + rng.integers(-SCORE_SCALE, SCORE_SCALE, n_m)
        u = rng.integers(0, SCORE_SCALE // 2, n_e)
    elif duals == "ties":
        p = np.full(n_m, big + SCORE_SCALE, np.int64)
    margin, limit = 0.04, 3
    pe, pm, score, short, left = worker.capped(p, u, big, margin, limit, 2)
    position = {m.participant_id: e for e, m in enumerate(mentees)}
    column = {mentor_id: m for m, mentor_id in enumerate(index.mentor_ids)}
    exact = {
        (position[pair.mentee_id], column[pair.mentor_id]): pair.score
        for pair in reference_pairs(mentees, mentors, config, Taxonomy(), Constraints(), True)
    }
    returned = set(zip(pe.tolist(), pm.tolist(), strict=True))
    scored = zip(pe.tolist(), pm.tolist(), score.tolist(), strict=True)
    assert all(exact[(e, m)] == s for e, m, s in scored)
    bound = dict(zip(short.tolist(), left.tolist(), strict=True))
    cut_short = 0
    for (e, m), s in exact.items():
        gain = big + round(s * SCORE_SCALE) - int(p[m]) - int(u[e])
        if (e, m) in returned or gain < -margin * SCORE_SCALE:
            continue
        assert gain <= bound[e]  # so e was cut short
        cut_short += 1
    assert cut_short > 0  # the case the test is about happened


def test_pricing_cuts_a_crowded_row_short_and_bounds_what_it_leaves_out() -> None:
    rng = np.random.default_rng(3)
    diff = rng.choice([0.5, 0.75, 1.0], size=(40, 3))  # columns x rows: 40 mentors, 3 mentees
    diff[:, 2] = -1.0  # the third mentee has nothing above its line
    hit = diff >= 0.0
    line = np.array([0.2, 0.9, 0.0])
    original = hit.copy()
    cut, bound = dense._cap(diff, hit, line, limit=4, err=0.01)
    # Rows 0 and 1 have more than 4 cells surely above their lines; row 2 none.
    assert cut.tolist() == [0, 1]
    for row, most in zip(cut.tolist(), bound.tolist(), strict=True):
        kept, dropped = diff[hit[:, row], row], diff[original[:, row] & ~hit[:, row], row]
        best = np.sort(diff[original[:, row], row])[-4:]
        assert np.array_equal(np.sort(kept)[-4:], best)  # its best 4 stay (and their ties)
        assert dropped.size == 0 or dropped.max() <= most
        # cells on or under the line are never left out
        assert hit[original[:, row] & (diff[:, row] <= line[row] + 0.01), row].all()


def test_more_matches_beat_higher_scores_and_zero_scores_are_optional() -> None:
    # m1 (one slot) suits e0 fully and e1 for 2/3; m0 fits neither (allowed at score 0).
    config = MatchingConfig(criteria=(CriterionSpec(Kind.SKILLS, weight=1.0),))
    mentors = [mentor("m0", skills=("cooking",)), mentor("m1", skills=("python",))]
    mentees = [mentee("e0", skills=("python",)), mentee("e1", skills=("python", "sql"))]
    result = optimum.match(mentees, mentors, config)
    assert {(a.mentee_id, a.mentor_id) for a in result.assignments} == {
        ("e0", "m1"),
        ("e1", "m0"),
    }
    assert result.bound.optimal and result.bound.max_matched
    # Without zero-score pairs only one mentee can be matched: the better fit.
    positive = optimum.match(mentees, mentors, config, positive=True)
    assert positive.assignments == [Assignment("e0", "m1", 1.0)]
    assert positive.bound.optimal


def test_nothing_to_match() -> None:
    config = MatchingConfig()
    assert optimum.match([], [mentor("m0", skills=("x",))], config).assignments == []
    assert optimum.match([mentee("e0", skills=("x",))], [], config).assignments == []
    result = optimum.match([mentee("e0", skills=("x",))], [mentor("m0", skills=("y",))], config)
    assert result.assignments == [Assignment("e0", "m0", 0.0)]  # allowed at score 0
    assert result.bound.optimal


# --- the dense blocks' promise: |approximate - exact| < EPS on every allowed cell -------------


# Found by this test: a hard skill criterion whose weight is a tiny share of the total had its
# float32 skill coefficients underflow to 0, which the block read as "no related skill".
NEGLIGIBLE_HARD_SKILLS = (
    [mentor("p0", skills=("a",))],
    [mentee("q0", skills=("a",))],
    MatchingConfig(
        criteria=(
            CriterionSpec(Kind.SKILLS, weight=3.3e-166, hard=True),
            CriterionSpec(Kind.GOALS, weight=0.5),
        )
    ),
    Taxonomy(),
    Constraints(),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.booleans())
@example(NEGLIGIBLE_HARD_SKILLS, False)
def test_dense_blocks_are_within_eps_of_the_exact_scores(
    scenario: Scenario, tiny_blocks: bool
) -> None:
    mentors, mentees, config, taxonomy, constraints = scenario
    index = CandidateIndex(mentors, config, taxonomy, constraints)
    people = list({m.participant_id: m for m in reversed(mentees)}.values())
    specs = dense.plan_blocks(index, people, block_cells=2 if tiny_blocks else dense.BLOCK_CELLS)
    covered: set[tuple[int, int]] = set()
    rows = dense.SkillRows(index)
    for spec in specs:
        block = dense.Block(index, people, spec, rows)
        approx = block.approx()
        for r in range(spec.rows.size):
            e = int(spec.rows[r])
            for q in range(spec.cols.size):
                j = int(block.cols[q])
                covered.add((e, j))
                ev = evaluate(index.mentors[j], people[e], config, taxonomy, constraints)
                value = float(approx[r, q]) + float(
                    block.avail_cells(np.array([r]), np.array([q]))[0]
                )
                if any("(hard) not met" in v for v in ev.violations):
                    assert value == -np.inf
                else:
                    assert abs(value - ev.score) < dense.EPS
    # A cell no block covers fails a hard criterion for its mentee.
    for e, person in enumerate(people):
        for j, m in enumerate(index.mentors):
            if (e, j) not in covered:
                ev = evaluate(m, person, config, taxonomy, constraints)
                assert any("(hard) not met" in v for v in ev.violations)
