"""Tests for preference-based stable matching (mentee-proposing hospital-resident).

Worked examples come with their published answers: the HR examples from the `matching`
library's README and test suite, the two examples in its docs (stable marriage with
suitor- and reviewer-optimal answers), the "Pride and Prejudice" example, the Rosetta
Code 10x10 stable marriage task, and Example 1 of Gale & Shapley (1962).

Random instances are checked for stability, capacity and acceptability, and for
mentee-optimality against two independent references: the `matching` package's
resident-optimal HospitalResident solver, and brute-force enumeration of every stable
matching of tiny instances.
"""

from __future__ import annotations

import random
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matching.games import HospitalResident  # the reference solver, a dev dependency

from services.matching.domain.stable import blocking_pairs, stable_match

Prefs = Mapping[str, Sequence[str]]


def _unit(prefs: Prefs) -> dict[str, int]:
    return dict.fromkeys(prefs, 1)


# --- published worked examples -------------------------------------------------------


def test_matching_readme_hospital_resident_example() -> None:
    # `matching` README / docs "hospital_resident/example": residents Ada, Sam, Dani, Jo,
    # Luc; hospitals Mercy, City, General with two places each. Known answer
    # {M: [L, S], C: [D, A], G: [J]}, both resident- and hospital-optimal.
    residents = {
        "A": ["C"],
        "S": ["C", "M"],
        "D": ["C", "M", "G"],
        "J": ["C", "G", "M"],
        "L": ["M", "C", "G"],
    }
    hospitals = {
        "M": ["D", "L", "S", "J"],
        "C": ["D", "A", "S", "L", "J"],
        "G": ["D", "J", "L"],
    }
    capacities = dict.fromkeys(hospitals, 2)

    result = stable_match(residents, hospitals, capacities)

    assert result == {"A": "C", "D": "C", "J": "G", "L": "M", "S": "M"}
    assert blocking_pairs(result, residents, hospitals, capacities) == []
    # Being both resident- and hospital-optimal, it is the only stable matching.
    stable = _all_stable_matchings(residents, hospitals, capacities)
    assert stable == [result]


def test_matching_issue_67_example() -> None:
    # `matching` test suite, example from its issue #67: unlisted topics stay empty.
    groups = {
        "Group 1": ["Intellectual property", "Privacy"],
        "Group 2": ["Privacy", "Fairness in AI"],
        "Group 3": ["Privacy", "Social media"],
    }
    topics = {
        "Fairness in AI": ["Group 2"],
        "Intellectual property": ["Group 1"],
        "Privacy": ["Group 3", "Group 2", "Group 1"],
        "Social media": ["Group 3"],
    }
    result = stable_match(groups, topics, dict.fromkeys(topics, 2))
    assert result == {
        "Group 1": "Intellectual property",
        "Group 2": "Privacy",
        "Group 3": "Privacy",
    }


def test_matching_resident_loses_all_preferences_example() -> None:
    # `matching` test suite: A is displaced from X and has nowhere else to go.
    residents = {"A": ["X"], "B": ["X", "Y"]}
    hospitals = {"X": ["B", "A"], "Y": ["B"]}
    assert stable_match(residents, hospitals, {"X": 1, "Y": 1}) == {"B": "X"}


def test_matching_readme_stable_marriage_example() -> None:
    suitors = {"A": ["D", "E", "F"], "B": ["D", "F", "E"], "C": ["F", "D", "E"]}
    reviewers = {"D": ["B", "C", "A"], "E": ["A", "C", "B"], "F": ["C", "B", "A"]}
    assert stable_match(suitors, reviewers, _unit(reviewers)) == {"A": "E", "B": "D", "C": "F"}


def test_matching_docs_choose_optimality_example() -> None:
    # `matching` how-to "Choose party-optimality": suitor-optimal {A: X, B: Z, C: Y},
    # reviewer-optimal {A: Y, B: Z, C: X}. One-to-one, so swapping the roles gives the
    # reviewer-optimal matching.
    suitors = {"A": ["X", "Y", "Z"], "B": ["Y", "Z", "X"], "C": ["Y", "X", "Z"]}
    reviewers = {"X": ["B", "C", "A"], "Y": ["A", "C", "B"], "Z": ["A", "B", "C"]}

    assert stable_match(suitors, reviewers, _unit(reviewers)) == {"A": "X", "B": "Z", "C": "Y"}
    reviewer_optimal = stable_match(reviewers, suitors, _unit(suitors))
    assert _invert(reviewer_optimal) == {"A": "Y", "B": "Z", "C": "X"}


def test_pride_and_prejudice_example() -> None:
    # `matching` docs "stable_marriage/example" and test suite: suitor-optimal answer.
    suitors = {
        "Bingley": ["Jane", "Elizabeth", "Lydia", "Charlotte"],
        "Collins": ["Jane", "Elizabeth", "Lydia", "Charlotte"],
        "Darcy": ["Elizabeth", "Jane", "Charlotte", "Lydia"],
        "Wickham": ["Lydia", "Jane", "Elizabeth", "Charlotte"],
    }
    reviewers = {
        "Charlotte": ["Bingley", "Darcy", "Collins", "Wickham"],
        "Elizabeth": ["Wickham", "Darcy", "Bingley", "Collins"],
        "Jane": ["Bingley", "Wickham", "Darcy", "Collins"],
        "Lydia": ["Bingley", "Wickham", "Darcy", "Collins"],
    }
    assert stable_match(suitors, reviewers, _unit(reviewers)) == {
        "Bingley": "Jane",
        "Collins": "Charlotte",
        "Darcy": "Elizabeth",
        "Wickham": "Lydia",
    }


# Rosetta Code "Stable marriage problem": the published man-optimal answer.
ROSETTA_MEN = {
    "abe": ["abi", "eve", "cath", "ivy", "jan", "dee", "fay", "bea", "hope", "gay"],
    "bob": ["cath", "hope", "abi", "dee", "eve", "fay", "bea", "jan", "ivy", "gay"],
    "col": ["hope", "eve", "abi", "dee", "bea", "fay", "ivy", "gay", "cath", "jan"],
    "dan": ["ivy", "fay", "dee", "gay", "hope", "eve", "jan", "bea", "cath", "abi"],
    "ed": ["jan", "dee", "bea", "cath", "fay", "eve", "abi", "ivy", "hope", "gay"],
    "fred": ["bea", "abi", "dee", "gay", "eve", "ivy", "cath", "jan", "hope", "fay"],
    "gav": ["gay", "eve", "ivy", "bea", "cath", "abi", "dee", "hope", "jan", "fay"],
    "hal": ["abi", "eve", "hope", "fay", "ivy", "cath", "jan", "bea", "gay", "dee"],
    "ian": ["hope", "cath", "dee", "gay", "bea", "abi", "fay", "ivy", "jan", "eve"],
    "jon": ["abi", "fay", "jan", "gay", "eve", "bea", "dee", "cath", "ivy", "hope"],
}
ROSETTA_WOMEN = {
    "abi": ["bob", "fred", "jon", "gav", "ian", "abe", "dan", "ed", "col", "hal"],
    "bea": ["bob", "abe", "col", "fred", "gav", "dan", "ian", "ed", "jon", "hal"],
    "cath": ["fred", "bob", "ed", "gav", "hal", "col", "ian", "abe", "dan", "jon"],
    "dee": ["fred", "jon", "col", "abe", "ian", "hal", "gav", "dan", "bob", "ed"],
    "eve": ["jon", "hal", "fred", "dan", "abe", "gav", "col", "ed", "ian", "bob"],
    "fay": ["bob", "abe", "ed", "ian", "jon", "dan", "fred", "gav", "col", "hal"],
    "gay": ["jon", "gav", "hal", "fred", "bob", "abe", "col", "ed", "dan", "ian"],
    "hope": ["gav", "jon", "bob", "abe", "ian", "dan", "hal", "ed", "col", "fred"],
    "ivy": ["ian", "col", "hal", "gav", "fred", "bob", "abe", "ed", "jon", "dan"],
    "jan": ["ed", "hal", "gav", "abe", "bob", "jon", "col", "ian", "fred", "dan"],
}


def test_rosetta_code_stable_marriage() -> None:
    result = stable_match(ROSETTA_MEN, ROSETTA_WOMEN, _unit(ROSETTA_WOMEN))
    assert _invert(result) == {
        "abi": "jon",
        "bea": "fred",
        "cath": "bob",
        "dee": "col",
        "eve": "hal",
        "fay": "dan",
        "gay": "gav",
        "hope": "ian",
        "ivy": "abe",
        "jan": "ed",
    }
    assert blocking_pairs(result, ROSETTA_MEN, ROSETTA_WOMEN, _unit(ROSETTA_WOMEN)) == []
    # The Rosetta task's perturbation: swap two wives and the matching becomes unstable.
    swapped = dict(result)
    swapped["abe"], swapped["bob"] = result["bob"], result["abe"]
    assert blocking_pairs(swapped, ROSETTA_MEN, ROSETTA_WOMEN, _unit(ROSETTA_WOMEN))


# Gale & Shapley (1962), Example 1. Ranking matrix (man's rank of woman, woman's rank of
# man):      A    B    C
#       a  1,3  2,2  3,1
#       b  3,1  1,3  2,2
#       c  2,2  3,1  1,3
# There are exactly three stable sets: every man gets his first choice, every woman gets
# her first choice, or everyone gets their second choice.
GS_MEN = {"a": ["A", "B", "C"], "b": ["B", "C", "A"], "c": ["C", "A", "B"]}
GS_WOMEN = {"A": ["b", "c", "a"], "B": ["c", "a", "b"], "C": ["a", "b", "c"]}


def test_gale_shapley_1962_example_1() -> None:
    men_first = {"a": "A", "b": "B", "c": "C"}
    women_first = {"a": "C", "b": "A", "c": "B"}
    second = {"a": "B", "b": "C", "c": "A"}

    assert stable_match(GS_MEN, GS_WOMEN, _unit(GS_WOMEN)) == men_first
    assert _invert(stable_match(GS_WOMEN, GS_MEN, _unit(GS_MEN))) == women_first
    for matching in (men_first, women_first, second):
        assert blocking_pairs(matching, GS_MEN, GS_WOMEN, _unit(GS_WOMEN)) == []
    assert sorted(map(_key, _all_stable_matchings(GS_MEN, GS_WOMEN, _unit(GS_WOMEN)))) == sorted(
        map(_key, (men_first, women_first, second))
    )


# --- blocking pairs -----------------------------------------------------------------


def test_blocking_pairs_finds_planted_pair_with_free_place() -> None:
    # The README instance with Luc sent to General: Luc prefers Mercy, and Mercy (two
    # places, only Sam) would take him - the docs' "(L, M)" blocking pair.
    residents = {
        "A": ["C"],
        "S": ["C", "M"],
        "D": ["C", "M", "G"],
        "J": ["C", "G", "M"],
        "L": ["M", "C", "G"],
    }
    hospitals = {
        "M": ["D", "L", "S", "J"],
        "C": ["D", "A", "S", "L", "J"],
        "G": ["D", "J", "L"],
    }
    capacities = dict.fromkeys(hospitals, 2)
    planted = {"A": "C", "D": "C", "J": "G", "L": "G", "S": "M"}
    assert blocking_pairs(planted, residents, hospitals, capacities) == [("L", "M")]


def test_blocking_pairs_finds_planted_pair_at_full_mentor() -> None:
    mentees = {"e1": ["m1", "m2"], "e2": ["m1", "m2"], "e3": ["m1"]}
    mentors = {"m1": ["e3", "e1", "e2"], "m2": ["e1", "e2"]}
    capacities = {"m1": 2, "m2": 1}
    # m1 is full with e1, e2 but prefers the unmatched e3 to e2.
    planted = {"e1": "m1", "e2": "m1"}
    assert blocking_pairs(planted, mentees, mentors, capacities) == [("e3", "m1")]
    # Stable: m1 keeps its two favourites, e2 goes to m2.
    assert stable_match(mentees, mentors, capacities) == {"e1": "m1", "e2": "m2", "e3": "m1"}


def test_blocking_pairs_ignores_unacceptable_and_zero_capacity() -> None:
    mentees = {"e1": ["m1", "m2", "m3"]}
    mentors = {"m1": [], "m2": ["e1"], "m3": ["e1"]}
    # m1 does not list e1; m2 takes nobody; so e1 at m3 is stable.
    assert blocking_pairs({"e1": "m3"}, mentees, mentors, {"m2": 0, "m3": 1}) == []
    assert blocking_pairs({}, mentees, mentors, {"m2": 0, "m3": 1}) == [("e1", "m3")]


def test_blocking_pairs_rejects_invalid_matching() -> None:
    mentees = {"e1": ["m1"], "e2": ["m1"], "e3": []}
    mentors = {"m1": ["e1", "e2", "e3"]}
    with pytest.raises(ValueError, match=r"'e3'.*'m1'.*not mutually acceptable"):
        blocking_pairs({"e3": "m1"}, mentees, mentors, {"m1": 1})
    with pytest.raises(ValueError, match=r"'m1'.*over its capacity 1"):
        blocking_pairs({"e1": "m1", "e2": "m1"}, mentees, mentors, {"m1": 1})


# --- validation and edge cases ------------------------------------------------------


def test_duplicate_preferences_rejected_naming_participant() -> None:
    with pytest.raises(ValueError, match=r"mentee 'e1' lists mentor 'm1' more than once"):
        stable_match({"e1": ["m1", "m2", "m1"]}, {"m1": ["e1"]}, {"m1": 1})
    with pytest.raises(ValueError, match=r"mentor 'm1' lists mentee 'e2' more than once"):
        stable_match({"e1": ["m1"]}, {"m1": ["e2", "e1", "e2"]}, {"m1": 1})
    with pytest.raises(ValueError, match=r"mentee 'e1'"):
        blocking_pairs({}, {"e1": ["m1", "m1"]}, {"m1": ["e1"]}, {"m1": 1})
    with pytest.raises(ValueError, match=r"mentee 'e1' are a string"):
        stable_match({"e1": "m1"}, {"m1": ["e1"]}, {"m1": 1})
    with pytest.raises(ValueError, match=r"mentor 'm1' are a string"):
        stable_match({"e1": ["m1"]}, {"m1": "e1"}, {"m1": 1})


def test_bad_capacity_rejected_naming_mentor() -> None:
    with pytest.raises(ValueError, match=r"capacity of mentor 'm1' is negative"):
        stable_match({"e1": ["m1"]}, {"m1": ["e1"]}, {"m1": -1})
    with pytest.raises(ValueError, match=r"capacity of mentor 'm1' is not an integer"):
        stable_match({"e1": ["m1"]}, {"m1": ["e1"]}, {"m1": 1.5})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"capacity of mentor 'm2' is negative"):
        blocking_pairs({}, {}, {}, {"m2": -3})


def test_only_mutually_acceptable_pairs_and_missing_capacity() -> None:
    mentees = {"e1": ["m1", "m2", "ghost"], "e2": ["m3"], "e3": []}
    mentors = {"m1": ["e2"], "m2": ["e1"], "m3": ["e2"], "m4": ["e3"]}
    # m1 does not list e1; m3 has no capacity entry (takes nobody); ghost is no mentor.
    assert stable_match(mentees, mentors, {"m1": 1, "m2": 1}) == {"e1": "m2"}
    assert stable_match({}, {}, {}) == {}


def test_deterministic_regardless_of_input_order() -> None:
    rng = random.Random(7)
    mentees, mentors, capacities = _random_instance(rng, 40, 12)
    expected = stable_match(mentees, mentors, capacities)
    for _ in range(5):
        shuffled_mentees = dict(rng.sample(sorted(mentees.items()), len(mentees)))
        shuffled_mentors = dict(rng.sample(sorted(mentors.items()), len(mentors)))
        result = stable_match(shuffled_mentees, shuffled_mentors, capacities)
        assert list(result.items()) == list(expected.items())
    assert list(expected) == sorted(expected)


def test_larger_instance_is_stable() -> None:
    rng = random.Random(2024)
    mentees, mentors, capacities = _random_instance(rng, 3000, 300, list_len=15)
    result = stable_match(mentees, mentors, capacities)
    assert blocking_pairs(result, mentees, mentors, capacities) == []
    _check_valid(result, mentees, mentors, capacities)


# --- properties on random instances -------------------------------------------------


@st.composite
def instances(
    draw: st.DrawFn, max_mentees: int = 7, max_mentors: int = 5, keep: float = 0.7
) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, int]]:
    """Incomplete, not necessarily reciprocated lists; capacities 0-3, some missing.

    Both sides are non-empty: empty instances are covered by an example test. The choices
    are made by a Random seeded from Hypothesis: Hypothesis' own draws lean heavily towards
    their bounds (empty lists, capacity 0), which left most instances with nothing to match.
    """
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    n_mentees = rnd.randint(1, max_mentees)
    n_mentors = rnd.randint(1, max_mentors)
    mentee_ids = [f"e{i}" for i in range(n_mentees)]
    mentor_ids = [f"m{j}" for j in range(n_mentors)]
    # Mentees may also list someone who is not a mentor at all.
    listable = [*mentor_ids, "ghost"]
    mentee_prefs = {e: _ordered_subset(rnd, listable, keep) for e in mentee_ids}
    # Mentors mostly list mentees who listed them (else few pairs would be mutually
    # acceptable), but may list others, and may leave some out.
    mentor_prefs = {}
    for m in mentor_ids:
        wanted_by = [e for e in mentee_ids if m in mentee_prefs[e]]
        others = [e for e in mentee_ids if m not in mentee_prefs[e]]
        listed = _ordered_subset(rnd, wanted_by, (1 + keep) / 2)
        listed += _ordered_subset(rnd, others, 0.2)
        mentor_prefs[m] = rnd.sample(listed, len(listed))
    capacities = {m: rnd.randint(0, 3) for m in mentor_ids if rnd.random() < 0.9}
    return mentee_prefs, mentor_prefs, capacities


@st.composite
def balanced_instances(
    draw: st.DrawFn,
) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, int]]:
    """Tight markets (places ~ mentees, near-complete lists): where several stable
    matchings exist, so that mentee-optimality is actually put to the test."""
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    keep = rnd.choice((1.0, 1.0, 0.85))
    mentor_ids = [f"m{j}" for j in range(rnd.randint(2, 4))]
    capacities = {m: rnd.choice((1, 1, 2)) for m in mentor_ids}
    mentee_ids = [f"e{i}" for i in range(min(5, sum(capacities.values())))]
    mentee_prefs = {e: _ordered_subset(rnd, mentor_ids, keep) for e in mentee_ids}
    mentor_prefs = {m: _ordered_subset(rnd, mentee_ids, keep) for m in mentor_ids}
    return mentee_prefs, mentor_prefs, capacities


def _ordered_subset(rnd: random.Random, items: list[str], keep: float) -> list[str]:
    """A random subset of ``items`` in random order, each kept with probability ``keep``."""
    return [x for x in rnd.sample(items, len(items)) if rnd.random() < keep]


@settings(max_examples=500, deadline=None)
@given(instances())
def test_random_instances_stable_valid_and_deterministic(
    instance: tuple[dict[str, list[str]], dict[str, list[str]], dict[str, int]],
) -> None:
    mentees, mentors, capacities = instance
    result = stable_match(mentees, mentors, capacities)
    _check_valid(result, mentees, mentors, capacities)
    assert blocking_pairs(result, mentees, mentors, capacities) == []
    assert _naive_blocking_pairs(result, mentees, mentors, capacities) == []
    reversed_input = stable_match(
        dict(reversed(list(mentees.items()))), dict(reversed(list(mentors.items()))), capacities
    )
    assert reversed_input == result


@settings(max_examples=500, deadline=None)
@given(st.one_of(instances(max_mentees=9, max_mentors=5), balanced_instances()))
def test_random_instances_match_reference_library(
    instance: tuple[dict[str, list[str]], dict[str, list[str]], dict[str, int]],
) -> None:
    mentees, mentors, capacities = instance
    assert stable_match(mentees, mentors, capacities) == _reference_resident_optimal(
        mentees, mentors, capacities
    )


@settings(max_examples=400, deadline=None)
@given(st.one_of(instances(max_mentees=5, max_mentors=3), balanced_instances()))
def test_random_instances_mentee_optimal_by_brute_force(
    instance: tuple[dict[str, list[str]], dict[str, list[str]], dict[str, int]],
) -> None:
    mentees, mentors, capacities = instance
    result = stable_match(mentees, mentors, capacities)
    every_stable = _all_stable_matchings(mentees, mentors, capacities)
    assert _key(result) in {_key(m) for m in every_stable}
    for other in every_stable:
        for mentee, prefs in mentees.items():
            assert _rank(prefs, result.get(mentee)) <= _rank(prefs, other.get(mentee))


@settings(max_examples=300, deadline=None)
@given(instances(), st.randoms(use_true_random=False))
def test_blocking_pairs_agrees_with_naive_check_on_arbitrary_matchings(
    instance: tuple[dict[str, list[str]], dict[str, list[str]], dict[str, int]],
    rnd: random.Random,
) -> None:
    mentees, mentors, capacities = instance
    matching = _random_valid_matching(rnd, mentees, mentors, capacities)
    assert blocking_pairs(matching, mentees, mentors, capacities) == _naive_blocking_pairs(
        matching, mentees, mentors, capacities
    )


# --- helpers --------------------------------------------------------------------------


def _invert(matching: Mapping[str, str]) -> dict[str, str]:
    inverted = {mentor: mentee for mentee, mentor in matching.items()}
    assert len(inverted) == len(matching)
    return dict(sorted(inverted.items()))


def _key(matching: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(matching.items()))


def _rank(prefs: Sequence[str], mentor: str | None) -> int:
    """Position of ``mentor`` in ``prefs``; unmatched ranks below everything."""
    return len(prefs) if mentor is None else list(prefs).index(mentor)


def _acceptable(
    mentees: Prefs, mentors: Prefs, capacities: Mapping[str, int]
) -> set[tuple[str, str]]:
    return {
        (e, m)
        for e, prefs in mentees.items()
        for m in prefs
        if e in mentors.get(m, ()) and capacities.get(m, 0) > 0
    }


def _check_valid(
    result: Mapping[str, str], mentees: Prefs, mentors: Prefs, capacities: Mapping[str, int]
) -> None:
    for mentee, mentor in result.items():
        assert mentor in mentees[mentee], f"{mentee} did not list {mentor}"
        assert mentee in mentors[mentor], f"{mentor} did not list {mentee}"
    for mentor, load in Counter(result.values()).items():
        assert load <= capacities.get(mentor, 0), f"{mentor} over capacity"


def _naive_blocking_pairs(
    matching: Mapping[str, str], mentees: Prefs, mentors: Prefs, capacities: Mapping[str, int]
) -> list[tuple[str, str]]:
    """The definition, checked pair by pair (independent of the module under test)."""
    return _blocking_checker(mentees, mentors, capacities)(matching)


def _blocking_checker(
    mentees: Prefs, mentors: Prefs, capacities: Mapping[str, int]
) -> Callable[[Mapping[str, str]], list[tuple[str, str]]]:
    acceptable = sorted(_acceptable(mentees, mentors, capacities))
    mentee_rank = {e: {m: i for i, m in enumerate(prefs)} for e, prefs in mentees.items()}
    mentor_rank = {m: {e: i for i, e in enumerate(prefs)} for m, prefs in mentors.items()}

    def check(matching: Mapping[str, str]) -> list[tuple[str, str]]:
        held: dict[str, list[str]] = {}
        for mentee, mentor in matching.items():
            held.setdefault(mentor, []).append(mentee)
        found = []
        for mentee, mentor in acceptable:
            ranks = mentee_rank[mentee]
            current = matching.get(mentee)
            if current is not None and ranks[current] <= ranks[mentor]:
                continue  # the mentee is at least as happy where it is
            mine = held.get(mentor, [])
            theirs = mentor_rank[mentor]
            if len(mine) < capacities[mentor] or any(
                theirs[mentee] < theirs[other] for other in mine
            ):
                found.append((mentee, mentor))
        return found

    return check


def _all_stable_matchings(
    mentees: Prefs, mentors: Prefs, capacities: Mapping[str, int]
) -> list[dict[str, str]]:
    """Every stable matching, by enumerating every valid matching and checking it.

    Valid: each mentee unmatched or at a mutually acceptable mentor, within capacity.
    """
    is_blocked = _blocking_checker(mentees, mentors, capacities)
    acceptable = _acceptable(mentees, mentors, capacities)
    names = sorted(mentees)
    options = [[m for m in mentees[e] if (e, m) in acceptable] for e in names]
    load: Counter[str] = Counter()
    current: dict[str, str] = {}
    found: list[dict[str, str]] = []

    def extend(i: int) -> None:
        if i == len(names):
            if not is_blocked(current):
                found.append(dict(current))
            return
        extend(i + 1)  # names[i] unmatched
        for mentor in options[i]:
            if load[mentor] < capacities[mentor]:
                load[mentor] += 1
                current[names[i]] = mentor
                extend(i + 1)
                del current[names[i]]
                load[mentor] -= 1

    extend(0)
    return found


def _random_valid_matching(
    rnd: random.Random, mentees: Prefs, mentors: Prefs, capacities: Mapping[str, int]
) -> dict[str, str]:
    acceptable = sorted(_acceptable(mentees, mentors, capacities))
    rnd.shuffle(acceptable)
    matching: dict[str, str] = {}
    load: Counter[str] = Counter()
    for mentee, mentor in acceptable:
        if mentee not in matching and load[mentor] < capacities[mentor] and rnd.random() < 0.6:
            matching[mentee] = mentor
            load[mentor] += 1
    return matching


def _random_instance(
    rng: random.Random, n_mentees: int, n_mentors: int, list_len: int = 6
) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, int]]:
    mentor_ids = [f"m{j}" for j in range(n_mentors)]
    mentees = {
        f"e{i}": rng.sample(mentor_ids, rng.randint(0, min(list_len, n_mentors)))
        for i in range(n_mentees)
    }
    listed_by: dict[str, list[str]] = {m: [] for m in mentor_ids}
    for e, prefs in mentees.items():
        for m in prefs:
            if rng.random() < 0.9:
                listed_by[m].append(e)
    mentors = {m: rng.sample(es, len(es)) for m, es in listed_by.items()}
    capacities = {m: rng.randint(0, 4) for m in mentor_ids}
    return mentees, mentors, capacities


def _reference_resident_optimal(
    mentees: Prefs, mentors: Prefs, capacities: Mapping[str, int]
) -> dict[str, str]:
    """The `matching` package's resident-optimal HR solution.

    The package expects a clean instance (every list reciprocated, non-empty lists,
    capacities >= 1), so the instance is reduced to its mutually acceptable pairs first;
    that does not change the set of stable matchings.
    """
    acceptable = _acceptable(mentees, mentors, capacities)
    residents = {e: [m for m in ms if (e, m) in acceptable] for e, ms in mentees.items()}
    hospitals = {m: [e for e in es if (e, m) in acceptable] for m, es in mentors.items()}
    residents = {e: ms for e, ms in residents.items() if ms}
    hospitals = {m: es for m, es in hospitals.items() if es}
    if not residents:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        game = HospitalResident.create_from_dictionaries(
            residents, hospitals, {m: capacities[m] for m in hospitals}
        )
        solution: Any = game.solve(optimal="resident")
    return dict(sorted((r.name, h.name) for h, matched in solution.items() for r in matched))
