"""Matching rules: skill fit scoring and planning which mentor to propose to which mentee."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.matching.domain.proposals import Candidate, PlannedMatch, plan_matches
from services.matching.domain.scoring import skill_fit

# --- skill_fit -----------------------------------------------------------------------------


def test_covering_the_first_sought_skill_beats_covering_the_last() -> None:
    sought = ["python", "sql", "go"]
    first = skill_fit(["python"], sought)
    last = skill_fit(["go"], sought)
    assert first.score > last.score
    # Weights 3, 2, 1 out of 6.
    assert first.score == pytest.approx(3 / 6)
    assert last.score == pytest.approx(1 / 6)
    assert skill_fit(["sql"], sought).score == pytest.approx(2 / 6)


def test_skill_fit_is_zero_when_disjoint() -> None:
    fit = skill_fit(["java", "kotlin"], ["python", "go"])
    assert fit.score == 0.0
    assert "none" in fit.breakdown[0].detail


def test_skill_fit_is_one_when_all_covered() -> None:
    assert skill_fit(["go", "python"], ["python", "go"]).score == pytest.approx(1.0)
    # Offering more than sought does not push the score above 1.
    assert skill_fit(["go", "python", "rust", "sql"], ["python", "go"]).score == pytest.approx(1.0)


def test_skill_fit_is_zero_when_nothing_is_sought() -> None:
    assert skill_fit(["python"], []).score == 0.0
    assert skill_fit([], ["python"]).score == 0.0


def test_skill_fit_score_is_in_unit_interval_and_order_of_offer_does_not_matter() -> None:
    sought = ["a", "b", "c", "d"]
    for offered in (["a", "c"], ["c", "a"]):
        fit = skill_fit(offered, sought)
        assert 0.0 < fit.score < 1.0
    assert skill_fit(["a", "c"], sought) == skill_fit(["c", "a"], sought)


def test_skill_fit_breakdown_names_covered_skills() -> None:
    fit = skill_fit(["go", "python", "rust"], ["python", "sql", "go"])
    (criterion,) = fit.breakdown
    assert criterion.name == "skills"
    assert criterion.score == fit.score
    assert criterion.weight == 1.0
    assert "python" in criterion.detail
    assert "go" in criterion.detail
    assert "sql" not in criterion.detail
    # Only skills the mentee seeks are explained, not everything the mentor offers.
    assert "rust" not in criterion.detail


# --- plan_matches --------------------------------------------------------------------------


def mentee(pid: str, *skills: str) -> Candidate:
    return Candidate(pid, tuple(skills))


def mentor(pid: str, free_slots: int, *skills: str) -> Candidate:
    return Candidate(pid, tuple(skills), free_slots)


def as_pairs(planned: list[PlannedMatch]) -> set[tuple[str, str]]:
    return {(p.mentor_id, p.mentee_id) for p in planned}


def test_plan_respects_mentor_free_slots() -> None:
    mentees = [mentee(f"e{i}", "python") for i in range(5)]
    planned = plan_matches(mentees, [mentor("m1", 2, "python")])
    assert len(planned) == 2
    assert {p.mentor_id for p in planned} == {"m1"}
    assert len({p.mentee_id for p in planned}) == 2


def test_plan_ignores_mentors_without_free_slots() -> None:
    mentees = [mentee("e1", "python")]
    assert plan_matches(mentees, [mentor("m1", 0, "python")]) == []
    planned = plan_matches(mentees, [mentor("m1", 0, "python"), mentor("m2", 1, "python")])
    assert as_pairs(planned) == {("m2", "e1")}


def test_plan_fills_several_mentors_up_to_their_slots() -> None:
    mentees = [mentee(f"e{i}", "python") for i in range(6)]
    mentors = [mentor("m1", 1, "python"), mentor("m2", 3, "python")]
    planned = plan_matches(mentees, mentors)
    per_mentor = Counter(p.mentor_id for p in planned)
    assert per_mentor == {"m1": 1, "m2": 3}


def test_plan_never_proposes_an_excluded_pair() -> None:
    mentees = [mentee("e1", "python", "go")]
    best = mentor("m1", 1, "python", "go")
    second = mentor("m2", 1, "go")
    assert as_pairs(plan_matches(mentees, [best, second])) == {("m1", "e1")}

    planned = plan_matches(mentees, [best, second], excluded=[("m1", "e1")])
    assert as_pairs(planned) == {("m2", "e1")}

    assert plan_matches(mentees, [best, second], excluded=[("m1", "e1"), ("m2", "e1")]) == []


def test_exclusions_are_mentor_mentee_ordered() -> None:
    mentees = [mentee("e1", "python")]
    mentors = [mentor("m1", 1, "python")]
    # (mentee, mentor) is not the exclusion format; it must not block the pair.
    assert as_pairs(plan_matches(mentees, mentors, excluded=[("e1", "m1")])) == {("m1", "e1")}


def test_plan_never_proposes_a_mentee_twice() -> None:
    mentees = [mentee("e1", "python")]
    mentors = [mentor(f"m{i}", 3, "python") for i in range(4)]
    planned = plan_matches(mentees, mentors)
    assert len(planned) == 1
    assert planned[0].mentee_id == "e1"


def test_plan_leaves_a_mentee_without_a_positive_fit_unmatched() -> None:
    mentees = [mentee("e1", "rust"), mentee("e2", "python")]
    mentors = [mentor("m1", 5, "python", "go")]
    planned = plan_matches(mentees, mentors)
    assert as_pairs(planned) == {("m1", "e2")}


def test_plan_min_score_filters_weak_pairs() -> None:
    mentees = [mentee("e1", "a", "b", "c")]
    mentors = [mentor("m1", 1, "c")]  # covers the last of three: 1/6
    assert len(plan_matches(mentees, mentors)) == 1
    assert plan_matches(mentees, mentors, min_score=0.5) == []


def test_plan_prefers_more_matched_mentees_over_a_higher_total_score() -> None:
    # e1 fits m1 at 2/3 and m2 at 1/3; e2 fits only m1, at 1/10.
    # Best single pair: (m1, e1) = 0.667. Both mentees: (m2, e1) + (m1, e2) = 0.433.
    mentees = [mentee("e1", "p", "z"), mentee("e2", "r", "s", "t", "q")]
    mentors = [mentor("m1", 1, "p", "q"), mentor("m2", 1, "z")]
    assert skill_fit(("p", "q"), ("p", "z")).score > (
        skill_fit(("z",), ("p", "z")).score + skill_fit(("p", "q"), ("r", "s", "t", "q")).score
    )
    planned = plan_matches(mentees, mentors)
    assert as_pairs(planned) == {("m2", "e1"), ("m1", "e2")}


def test_plan_maximises_total_fit_among_equally_many_matches() -> None:
    # Greedy (best single pair first) takes (m1, e1) = 0.6 and leaves e2 with m2 = 1/15:
    # 0.667 in all. The optimum swaps them: (m2, e1) = 0.4 + (m1, e2) = 1/3 = 0.733.
    mentees = [mentee("e1", "a", "b", "c", "d"), mentee("e2", "c", "x", "y", "z", "b")]
    mentors = [mentor("m1", 1, "a", "c"), mentor("m2", 1, "b", "d")]
    greedy = (
        skill_fit(("a", "c"), mentees[0].skills).score
        + skill_fit(("b", "d"), mentees[1].skills).score
    )
    best = (
        skill_fit(("b", "d"), mentees[0].skills).score
        + skill_fit(("a", "c"), mentees[1].skills).score
    )
    assert best > greedy
    planned = plan_matches(mentees, mentors)
    assert as_pairs(planned) == {("m2", "e1"), ("m1", "e2")}
    assert sum(p.fit.score for p in planned) == pytest.approx(best)


def test_plan_never_pairs_a_participant_with_themself() -> None:
    same = "p1"
    mentees = [mentee(same, "python")]
    mentors = [mentor(same, 1, "python"), mentor("m2", 1, "python", "go")]
    planned = plan_matches(mentees, mentors)
    assert as_pairs(planned) == {("m2", same)}
    assert plan_matches(mentees, [mentor(same, 1, "python")]) == []


def test_planned_match_carries_the_fit_of_the_pair() -> None:
    planned = plan_matches([mentee("e1", "python", "go")], [mentor("m1", 1, "go")])
    (match,) = planned
    assert match.fit == skill_fit(("go",), ("python", "go"))


SKILLS = ["a", "b", "c", "d", "e"]


@st.composite
def instances(draw: st.DrawFn) -> tuple[list[Candidate], list[Candidate], set[tuple[str, str]]]:
    n_mentees = draw(st.integers(0, 6))
    n_mentors = draw(st.integers(0, 4))
    skill_lists = st.lists(st.sampled_from(SKILLS), min_size=0, max_size=4, unique=True)
    mentees = [Candidate(f"p{i}", tuple(draw(skill_lists))) for i in range(n_mentees)]
    # Mentor ids overlap mentee ids on purpose: the same person may be on both lists.
    mentor_ids = draw(
        st.lists(st.sampled_from([f"p{i}" for i in range(8)]), max_size=n_mentors, unique=True)
    )
    mentors = [
        Candidate(pid, tuple(draw(skill_lists)), draw(st.integers(-1, 3))) for pid in mentor_ids
    ]
    all_pairs = [(m.participant_id, e.participant_id) for m in mentors for e in mentees]
    excluded = set(draw(st.lists(st.sampled_from(all_pairs), unique=True))) if all_pairs else set()
    return mentees, mentors, excluded


@settings(max_examples=150, deadline=None)
@given(instances())
def test_plan_invariants_hold_on_random_instances(
    instance: tuple[list[Candidate], list[Candidate], set[tuple[str, str]]],
) -> None:
    mentees, mentors, excluded = instance
    planned = plan_matches(mentees, mentors, excluded)

    slots = {m.participant_id: m.free_slots for m in mentors}
    mentor_skills = {m.participant_id: m.skills for m in mentors}
    mentee_skills = {e.participant_id: e.skills for e in mentees}
    per_mentor = Counter(p.mentor_id for p in planned)
    per_mentee = Counter(p.mentee_id for p in planned)

    assert all(count <= max(slots[m], 0) for m, count in per_mentor.items())
    assert all(count == 1 for count in per_mentee.values())
    for p in planned:
        assert (p.mentor_id, p.mentee_id) not in excluded
        assert p.mentor_id != p.mentee_id
        assert p.mentee_id in mentee_skills
        assert p.fit == skill_fit(mentor_skills[p.mentor_id], mentee_skills[p.mentee_id])
        assert p.fit.score > 0
