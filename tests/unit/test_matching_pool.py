"""The matching pool's storage operations, on mongomock (a fresh database per test)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import mongoengine
import pytest

from services.common.events import stable_event_id
from services.matching import planner, pool, releases
from services.matching.documents import Exclusion, PoolMember, Proposal
from tests.unit import memory_db

ORG = "org-1"
PROGRAM = "prog-1"


@pytest.fixture(autouse=True)
def database() -> Iterator[str]:
    yield memory_db.connect_fresh("matching", "test_matching")
    mongoengine.disconnect()


def add_mentor(pid: str, capacity: int, *skills: str, program: str = PROGRAM) -> None:
    pool.add_member(
        ORG, program, pid, "mentor", pid.upper(), list(skills), capacity, b"", "", "", ""
    )


def add_mentee(pid: str, *skills: str, program: str = PROGRAM) -> None:
    pool.add_member(ORG, program, pid, "mentee", pid.upper(), list(skills), 0, b"", "", "", "")


def member(pid: str) -> PoolMember:
    return PoolMember.objects.get(organization_id=ORG, participant_id=pid)


def proposals(**filters: str) -> list[Proposal]:
    return list(Proposal.objects(organization_id=ORG, **filters))


def test_the_fixture_gives_each_test_an_empty_database() -> None:
    assert PoolMember.objects.count() == 0
    assert Proposal.objects.count() == 0
    assert Exclusion.objects.count() == 0


# --- add_member ----------------------------------------------------------------------------


def test_add_member_stores_a_mentor_with_free_slots() -> None:
    add_mentor("m1", 3, "python")
    m = member("m1")
    assert (m.program_id, m.role, m.capacity, m.free_slots, m.matched) == (
        PROGRAM,
        "mentor",
        3,
        3,
        False,
    )
    assert list(m.skills) == ["python"]
    add_mentee("e1", "python")
    assert (member("e1").free_slots, member("e1").matched) == (0, False)


def test_add_member_twice_is_a_redelivery_and_changes_nothing() -> None:
    add_mentor("m1", 2, "python")
    add_mentee("e1", "python")
    assert planner.propose_continuously(ORG, PROGRAM) == 1
    assert member("m1").free_slots == 1

    # The same registration arrives again: the taken slot must not come back.
    add_mentor("m1", 2, "python")
    add_mentee("e1", "python")
    assert member("m1").free_slots == 1
    assert member("e1").matched is True
    assert PoolMember.objects(organization_id=ORG).count() == 2


def test_add_member_redelivery_with_other_data_keeps_the_first() -> None:
    add_mentor("m1", 2, "python")
    add_mentor("m1", 5, "go")
    m = member("m1")
    assert (m.capacity, m.free_slots, list(m.skills)) == (2, 2, ["python"])


# --- propose -------------------------------------------------------------------------------


def test_propose_never_exceeds_a_mentors_capacity() -> None:
    add_mentor("m1", 2, "python")
    add_mentor("m2", 1, "python", "go")
    for i in range(6):
        add_mentee(f"e{i}", "python", "go")

    assert planner.propose_continuously(ORG, PROGRAM) == 3
    stored = proposals()
    assert len(stored) == 3
    assert Counter(p.mentor_id for p in stored) == {"m1": 2, "m2": 1}
    assert len({p.mentee_id for p in stored}) == 3
    assert member("m1").free_slots == 0
    assert member("m2").free_slots == 0

    matched = {m.participant_id for m in PoolMember.objects(role="mentee", matched=True)}
    assert matched == {p.mentee_id for p in stored}

    # Nothing is free any more: a second round proposes nothing.
    assert planner.propose_continuously(ORG, PROGRAM) == 0
    assert len(proposals()) == 3


def test_propose_stores_unpublished_explained_proposals() -> None:
    add_mentor("m1", 1, "python")
    add_mentee("e1", "go", "python")
    assert planner.propose_continuously(ORG, PROGRAM) == 1
    (p,) = proposals()
    assert (p.program_id, p.mentor_id, p.mentee_id, p.status) == (PROGRAM, "m1", "e1", "proposed")
    assert p.published is False
    assert p.score == pytest.approx(1 / 3)
    assert [c.criterion for c in p.breakdown] == ["skills"]
    assert "python" in p.breakdown[0].detail
    assert p.event_id == stable_event_id("match-proposed", ORG, p.match_id)
    assert [q.match_id for q in pool.unpublished(ORG, PROGRAM)] == [p.match_id]
    assert pool.programs_with_unpublished() == {(ORG, PROGRAM)}

    pool.mark_published([p.pk])
    assert pool.unpublished(ORG, PROGRAM) == []
    assert pool.programs_with_unpublished() == set()


def test_propose_only_uses_members_of_the_program() -> None:
    add_mentor("m1", 1, "python", program="other")
    add_mentee("e1", "python")
    assert planner.propose_continuously(ORG, PROGRAM) == 0
    assert proposals() == []
    assert member("m1").free_slots == 1


def test_propose_leaves_a_mentee_without_a_fitting_mentor_waiting() -> None:
    add_mentor("m1", 3, "python")
    add_mentee("e1", "rust")
    add_mentee("e2", "python")
    assert planner.propose_continuously(ORG, PROGRAM) == 1
    assert member("e1").matched is False
    assert member("e2").matched is True
    assert member("m1").free_slots == 2


# --- decline -------------------------------------------------------------------------------


def test_decline_frees_the_slot_returns_the_mentee_and_excludes_the_pair() -> None:
    add_mentor("m1", 1, "python")
    add_mentee("e1", "python")
    assert planner.propose_continuously(ORG, PROGRAM) == 1
    (p,) = proposals()
    assert member("m1").free_slots == 0
    assert member("e1").matched is True

    releases.decline(ORG, p.match_id)

    assert proposals(match_id=p.match_id)[0].status == "declined"
    assert member("m1").free_slots == 1
    assert member("e1").matched is False
    exclusions = [(e.mentor_id, e.mentee_id, e.reason) for e in Exclusion.objects()]
    assert exclusions == [("m1", "e1", "declined")]


def test_a_second_decline_of_the_same_match_changes_nothing() -> None:
    add_mentor("m1", 2, "python")
    add_mentee("e1", "python")
    add_mentee("e2", "python")
    assert planner.propose_continuously(ORG, PROGRAM) == 2
    declined, kept = proposals()
    releases.decline(ORG, declined.match_id)
    state = (member("m1").free_slots, member(declined.mentee_id).matched)
    assert state == (1, False)

    releases.decline(ORG, declined.match_id)

    assert (member("m1").free_slots, member(declined.mentee_id).matched) == state
    assert member(kept.mentee_id).matched is True
    assert Exclusion.objects.count() == 1


def test_declining_an_unknown_match_changes_nothing() -> None:
    add_mentor("m1", 1, "python")
    add_mentee("e1", "python")
    planner.propose_continuously(ORG, PROGRAM)
    releases.decline(ORG, "no-such-match")
    assert member("m1").free_slots == 0
    assert member("e1").matched is True
    assert Exclusion.objects.count() == 0


def test_declining_an_accepted_match_changes_nothing() -> None:
    add_mentor("m1", 1, "python")
    add_mentee("e1", "python")
    planner.propose_continuously(ORG, PROGRAM)
    (p,) = proposals()
    pool.accept(ORG, p.match_id)
    releases.decline(ORG, p.match_id)
    assert proposals()[0].status == "accepted"
    assert member("m1").free_slots == 0
    assert member("e1").matched is True
    assert Exclusion.objects.count() == 0


def test_after_a_decline_the_pair_is_never_proposed_again() -> None:
    add_mentor("m1", 1, "python", "go")
    add_mentee("e1", "python", "go")
    assert planner.propose_continuously(ORG, PROGRAM) == 1
    (first,) = proposals()
    assert first.mentor_id == "m1"
    releases.decline(ORG, first.match_id)

    # The only possible pair is excluded: nothing to propose, the slot stays free.
    assert planner.propose_continuously(ORG, PROGRAM) == 0
    assert member("m1").free_slots == 1
    assert member("e1").matched is False

    # A weaker mentor joins: the mentee goes to them, never back to m1.
    add_mentor("m2", 1, "go")
    assert planner.propose_continuously(ORG, PROGRAM) == 1
    live = proposals(status="proposed")
    assert [(p.mentor_id, p.mentee_id) for p in live] == [("m2", "e1")]
    assert member("m1").free_slots == 1

    # And m1's freed slot goes to another mentee.
    add_mentee("e2", "python")
    assert planner.propose_continuously(ORG, PROGRAM) == 1
    pairs = {(p.mentor_id, p.mentee_id) for p in proposals(status="proposed")}
    assert pairs == {("m2", "e1"), ("m1", "e2")}
    assert all((p.mentor_id, p.mentee_id) != ("m1", "e1") for p in proposals(status="proposed"))
