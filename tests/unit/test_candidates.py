"""The vectorised candidate index against the pair-by-pair rules in criteria.py.

The property test is what holds the two implementations together: for random small
populations, configs (every Kind, hard and soft, weights 0-10, min_score) and taxonomies,
CandidateIndex.top(mentee, k=len(mentors)) must return exactly the pairs evaluate() allows with
score >= min_score, with the same scores, in score-then-id order. Some examples shrink the
search seed to a single pair so that the pruning cascade (not just the full scan) is checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.matching.domain import candidates as candidates_module
from services.matching.domain.assignment import solve_assignment
from services.matching.domain.candidates import CandidateIndex, generate_pairs
from services.matching.domain.criteria import evaluate
from services.matching.domain.model import (
    MENTEE,
    MENTOR,
    Constraints,
    CriterionSpec,
    Kind,
    MatchingConfig,
    Person,
    ReportingRule,
    Slot,
)
from services.matching.domain.taxonomy import EMPTY_TAXONOMY, Taxonomy

SKILLS = ("a", "b", "c", "d", "e", "f", "g")
# Raw spellings the taxonomy canonicalises (case, whitespace, synonyms) and unknown skills.
RAW_SKILLS = (*SKILLS, "A", " b ", "syn-c", "syn-d", "zz")
HR = ("h0", "h1", "h2", "h3", "h4", "h5")
TOLERANCE = 1e-9


@st.composite
def taxonomies(draw: st.DrawFn) -> Taxonomy:
    order = draw(st.permutations(SKILLS))
    parents: dict[str, str | None] = {}
    for i, skill in enumerate(order):
        # A parent drawn from earlier in the order keeps the tree acyclic.
        parents[skill] = order[draw(st.integers(0, i - 1))] if i and draw(st.booleans()) else None
    synonyms = {f"syn-{s}": s for s in draw(st.sets(st.sampled_from(("c", "d")), max_size=2))}
    return Taxonomy(parents, synonyms)


slots = st.builds(Slot, start=st.integers(0, 10080), end=st.integers(0, 10080)) | st.builds(
    lambda day, hour, length: Slot(day * 1440 + hour * 60, day * 1440 + hour * 60 + length),
    st.integers(0, 6),
    st.integers(0, 22),
    st.sampled_from((30, 60, 90, 120)),
)


@st.composite
def people(draw: st.DrawFn, role: str, ids: Sequence[str], mentor_ids: Sequence[str]) -> Person:
    return Person(
        participant_id=draw(st.sampled_from(ids)),
        role=role,
        skills=tuple(draw(st.lists(st.sampled_from(RAW_SKILLS), max_size=3))),
        hr_person_id=draw(st.sampled_from(("", *HR))),
        manager_id=draw(st.sampled_from(("", *HR))),
        department=draw(st.sampled_from(("", "eng", "ops"))),
        location=draw(st.sampled_from(("", "Paris", "paris", "Oslo"))),
        utc_offset_minutes=draw(st.sampled_from((None, 0, 60, -300, 330, 720, -720, 840))),
        languages=frozenset(draw(st.sets(st.sampled_from(("en", "fr", "de")), max_size=2))),
        job_level=draw(st.integers(0, 6)),
        goals=frozenset(draw(st.sets(st.sampled_from(("g1", "g2", "g3")), max_size=3))),
        availability=tuple(draw(st.lists(slots, max_size=3))),
        gender=draw(st.sampled_from(("", "f", "m"))),
        cultural_background=draw(st.sampled_from(("", "x", "y"))),
        demographic_opt_in=draw(st.booleans()),
        preferred_mentors=tuple(
            draw(st.lists(st.sampled_from((*mentor_ids, "ghost")), max_size=3))
        ),
        free_slots=draw(st.integers(0, 2)),
    )


specs = st.builds(
    CriterionSpec,
    kind=st.sampled_from(list(Kind)),
    weight=st.sampled_from((0.0, 0.5, 1.0, 2.5, 10.0)) | st.floats(0, 10),
    hard=st.booleans(),
    min_level_gap=st.integers(-1, 2),
    max_level_gap=st.integers(0, 4),
    allow_reverse=st.booleans(),
    prefer_same_department=st.booleans(),
    max_timezone_hours=st.sampled_from((0.0, 1.0, 2.5, 6.0, 12.0)) | st.floats(0, 12),
    min_overlap_minutes=st.sampled_from((0, 30, 60, 120)),
)
configs = st.builds(
    MatchingConfig,
    criteria=st.lists(specs, max_size=5).map(tuple),
    min_score=st.sampled_from((0.0, 0.25, 0.5, 0.75, 1.0)) | st.floats(0, 1),
    reporting_rule=st.sampled_from(list(ReportingRule)),
    candidates_per_mentee=st.integers(1, 4),
)


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[list[Person], list[Person], MatchingConfig, Taxonomy, Constraints]:
    n_mentors = draw(st.integers(0, 9))
    mentor_ids = [f"p{i}" for i in range(n_mentors)]
    mentors = [draw(people(MENTOR, [mid], mentor_ids)) for mid in mentor_ids]
    # Mentee ids overlap the mentors' now and then: the same person on both sides.
    mentee_ids = ["q0", "q1", "q2", *mentor_ids[:2]]
    mentees = [draw(people(MENTEE, mentee_ids, mentor_ids)) for _ in range(draw(st.integers(1, 3)))]
    excluded = draw(
        st.sets(st.tuples(st.sampled_from(mentor_ids or ["none"]), st.sampled_from(mentee_ids)))
    )
    manager_of = draw(st.dictionaries(st.sampled_from(HR), st.sampled_from(HR), max_size=5))
    return (
        mentors,
        mentees,
        draw(configs),
        draw(taxonomies()),
        Constraints(excluded=frozenset(excluded), manager_of=manager_of),
    )


def expected_top(
    mentee: Person,
    mentors: Sequence[Person],
    config: MatchingConfig,
    taxonomy: Taxonomy,
    constraints: Constraints,
) -> list[tuple[str, float]]:
    """The reference: evaluate() on every pair, filtered and sorted as top() promises."""
    rows = []
    for mentor in mentors:
        if mentor.free_slots <= 0:
            continue
        ev = evaluate(mentor, mentee, config, taxonomy, constraints)
        if ev.allowed and ev.score >= config.min_score:
            rows.append((mentor.participant_id, ev.score))
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def assert_same(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> None:
    assert [mentor for mentor, _ in got] == [mentor for mentor, _ in want]
    for (_, g), (_, w) in zip(got, want, strict=True):
        assert abs(g - w) <= TOLERANCE


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.booleans(), st.integers(1, 10))
def test_top_equals_pairwise_evaluation(
    scenario: tuple[list[Person], list[Person], MatchingConfig, Taxonomy, Constraints],
    tiny_seed: bool,
    k: int,
) -> None:
    mentors, mentees, config, taxonomy, constraints = scenario
    seed = 1 if tiny_seed else candidates_module._SEED_MIN
    with (
        mock.patch.object(candidates_module, "_SEED_MIN", seed),
        mock.patch.object(candidates_module, "_SEED_PER_K", 1 if tiny_seed else 8),
    ):
        index = CandidateIndex(mentors, config, taxonomy, constraints)
        for mentee in mentees:
            want = expected_top(mentee, mentors, config, taxonomy, constraints)
            assert_same(index.top(mentee, k=len(mentors)), want)
            assert_same(index.top(mentee, k=k), want[:k])
            score, eligible = index.scores(mentee)
            by_id = dict(want)
            for mentor_id, s, ok in zip(index.mentor_ids, score, eligible, strict=True):
                assert bool(ok) == (mentor_id in by_id)
                if ok:
                    assert abs(s - by_id[mentor_id]) <= TOLERANCE
        pairs = generate_pairs(mentees, mentors, config, taxonomy, constraints)
    firsts = list({m.participant_id: m for m in reversed(mentees)}.values())
    for mentee in firsts:
        want = expected_top(mentee, mentors, config, taxonomy, constraints)
        got = [(p.mentor_id, p.score) for p in pairs if p.mentee_id == mentee.participant_id]
        assert_same(got, want[: config.candidates_per_mentee])


# --- ordering, capacity and the always-hard rules ---------------------------------------------


def mentor(pid: str, **fields: object) -> Person:
    return Person(pid, MENTOR, free_slots=fields.pop("free_slots", 1), **fields)  # type: ignore[arg-type]


def mentee(pid: str, **fields: object) -> Person:
    return Person(pid, MENTEE, **fields)  # type: ignore[arg-type]


# Hard: with soft SKILLS and min_score 0 an unrelated mentor is allowed with score 0.
SKILLS_ONLY = MatchingConfig(criteria=(CriterionSpec(Kind.SKILLS, weight=1.0, hard=True),))


def test_top_k_sorted_by_score_then_mentor_id() -> None:
    mentors = [
        mentor("m3", skills=("python",)),
        mentor("m1", skills=("python", "sql")),
        mentor("m2", skills=("python",)),
        mentor("m0", skills=("sql",)),
        mentor("m4", skills=("go",)),
    ]
    index = CandidateIndex(mentors, SKILLS_ONLY)
    seeker = mentee("e", skills=("python", "sql"))
    # python weighs 2, sql 1: m1 has both; m2 and m3 tie on python; m0 has sql only.
    assert index.top(seeker, k=10) == [
        ("m1", 1.0),
        ("m2", 2 / 3),
        ("m3", 2 / 3),
        ("m0", 1 / 3),
    ]
    assert index.top(seeker, k=2) == [("m1", 1.0), ("m2", 2 / 3)]
    assert index.top(seeker, k=0) == []
    assert len(index.top(seeker)) == 4  # candidates_per_mentee = 20


def test_ties_at_the_cut_go_to_the_smallest_mentor_ids() -> None:
    mentors = [mentor(f"m{i:02d}", skills=("python",)) for i in range(40, 0, -1)]
    index = CandidateIndex(mentors, SKILLS_ONLY)
    got = index.top(mentee("e", skills=("python",)), k=5)
    assert got == [(f"m{i:02d}", 1.0) for i in range(1, 6)]


def test_mentors_without_free_slots_are_not_candidates() -> None:
    mentors = [
        mentor("full", skills=("python",), free_slots=0),
        mentor("negative", skills=("python",), free_slots=-1),
        mentor("free", skills=("python",), free_slots=2),
    ]
    index = CandidateIndex(mentors, SKILLS_ONLY)
    assert index.mentor_ids == ("free",)
    assert index.top(mentee("e", skills=("python",))) == [("free", 1.0)]
    pairs = generate_pairs([mentee("e", skills=("python",))], mentors, SKILLS_ONLY)
    assert [p.mentor_id for p in pairs] == ["free"]


@pytest.mark.parametrize("rule", list(ReportingRule))
def test_exclusions_and_reporting_lines_are_never_returned(rule: ReportingRule) -> None:
    # hr chain: boss <- manager <- mentee; manager <- peer; mentee <- report <- report2
    manager_of = {
        "hr-mentee": "hr-manager",
        "hr-manager": "hr-boss",
        "hr-report2": "hr-report",
        "hr-report": "hr-mentee",
    }
    mentors = [
        mentor("manager", hr_person_id="hr-manager", manager_id="hr-boss"),
        mentor("boss", hr_person_id="hr-boss"),
        mentor("report", hr_person_id="hr-report", manager_id="hr-mentee"),
        mentor("report2", hr_person_id="hr-report2"),  # manager only in manager_of
        mentor("peer", hr_person_id="hr-peer", manager_id="hr-manager"),
        mentor("declined", hr_person_id="hr-declined"),
        mentor("twin", hr_person_id="hr-mentee"),  # same HR id: the same person
        mentor("e"),  # same participant id
        mentor("stranger", hr_person_id="hr-stranger", manager_id="hr-elsewhere"),
    ]
    config = MatchingConfig(criteria=(), reporting_rule=rule)
    constraints = Constraints(
        excluded=frozenset({("declined", "e"), ("stranger", "someone-else")}),
        manager_of=manager_of,
    )
    seeker = mentee("e", hr_person_id="hr-mentee")  # manager only known from manager_of
    allowed = {"stranger"} | ({"peer"} if rule is ReportingRule.MANAGER_CHAIN else set())
    index = CandidateIndex(mentors, config, EMPTY_TAXONOMY, constraints)
    assert {mentor_id for mentor_id, _ in index.top(seeker, k=100)} == allowed
    pairs = generate_pairs([seeker], mentors, config, EMPTY_TAXONOMY, constraints)
    assert {p.mentor_id for p in pairs} == allowed
    for m in mentors:  # and the scalar rules agree
        assert evaluate(m, seeker, config, EMPTY_TAXONOMY, constraints).allowed == (
            m.participant_id in allowed
        )


def test_zero_skill_mentors_are_found_when_skills_are_soft() -> None:
    # Skills soft and light: a mentor with no related skill but a perfect timezone and
    # language fit beats a skilled mentor who fits nothing else.
    config = MatchingConfig(
        criteria=(
            CriterionSpec(Kind.SKILLS, weight=1.0),
            CriterionSpec(Kind.TIMEZONE, weight=5.0),
            CriterionSpec(Kind.LANGUAGE, weight=5.0),
        ),
        candidates_per_mentee=1,
    )
    mentors = [
        mentor("skilled", skills=("python",), utc_offset_minutes=720, languages=frozenset("x")),
        mentor("fit", skills=("cooking",), utc_offset_minutes=0, languages=frozenset({"en"})),
    ]
    seeker = mentee("e", skills=("python",), utc_offset_minutes=0, languages=frozenset({"en"}))
    index = CandidateIndex(mentors, config)
    assert index.top(seeker) == [("fit", 10 / 11)]


def test_chunked_bulk_search_matches_pairwise_evaluation() -> None:
    """Many mentees in several chunks, with pruning: the same as the reference."""
    from bench.synthetic import organisation

    org = organisation(160, seed=5)
    config = MatchingConfig(criteria=org.config.criteria, min_score=0.3, candidates_per_mentee=3)
    with (
        mock.patch.object(candidates_module, "_CHUNK_CELLS", 7 * len(org.mentors)),
        mock.patch.object(candidates_module, "_SEED_MIN", 2),
        mock.patch.object(candidates_module, "_SEED_PER_K", 1),
    ):
        pairs = generate_pairs(org.mentees, org.mentors, config, org.taxonomy, org.constraints)
    got: dict[str, list[tuple[str, float]]] = {}
    for p in pairs:
        got.setdefault(p.mentee_id, []).append((p.mentor_id, p.score))
    for e in org.mentees:
        want = expected_top(e, org.mentors, config, org.taxonomy, org.constraints)
        assert_same(got.get(e.participant_id, []), want[:3])


@settings(max_examples=40, deadline=None)
@given(scenarios())
def test_generate_pairs_then_solve_never_exceeds_capacity(
    scenario: tuple[list[Person], list[Person], MatchingConfig, Taxonomy, Constraints],
) -> None:
    mentors, mentees, config, taxonomy, constraints = scenario
    pairs = generate_pairs(mentees, mentors, config, taxonomy, constraints)
    capacities = {m.participant_id: m.free_slots for m in mentors}
    result = solve_assignment(pairs, capacities)
    load = Counter(a.mentor_id for a in result)
    assert all(load[m] <= capacities[m] for m in load)
    assert len({a.mentee_id for a in result}) == len(result)
    listed = {(p.mentee_id, p.mentor_id) for p in pairs}
    assert all((a.mentee_id, a.mentor_id) in listed for a in result)


def test_parallel_workers_give_the_same_pairs() -> None:
    from bench.synthetic import organisation

    org = organisation(120, seed=3)
    with mock.patch.object(candidates_module, "_CHUNK_CELLS", 11 * len(org.mentors)):
        one = generate_pairs(org.mentees, org.mentors, org.config, org.taxonomy, org.constraints)
        two = generate_pairs(
            org.mentees, org.mentors, org.config, org.taxonomy, org.constraints, workers=2
        )
    assert one == two and one
