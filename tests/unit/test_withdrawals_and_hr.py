"""Withdrawals and profile updates in matching's pool and engagement, and what an HR event
asks enrollment to do (on mongomock, a fresh database per test)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import mongoengine
import pytest

from services.common.api import common_pb2, events_pb2
from services.common.events import new_event, stable_event_id
from services.engagement import withdrawals
from services.engagement.documents import Match, Relationship
from services.enrollment import hr_consumer
from services.matching import planner, pool, releases
from services.matching.configuration import load_taxonomy
from services.matching.documents import PoolMember, Proposal
from tests.unit import memory_db

ORG, PROGRAM = "org-1", "prog-1"


@pytest.fixture(autouse=True)
def database() -> Iterator[None]:
    memory_db.connect_fresh("matching", "test_withdrawals")
    yield
    mongoengine.disconnect()


# --- matching: pool members change and leave -----------------------------------------------


def add(pid: str, role: str, capacity: int = 0, manager: str = "", hr: str = "") -> None:
    profile = common_pb2.Profile(hr_person_id=hr, manager_id=manager).SerializeToString()
    pool.add_member(ORG, PROGRAM, pid, role, pid.upper(), ["python"], capacity, profile, hr, "", "")


def update(pid: str, role: str, capacity: int = 0, **profile: str) -> None:
    p = common_pb2.Profile(**profile)
    pool.update_member(
        ORG,
        PROGRAM,
        pool.Registration(
            pid,
            role,
            f"{pid.upper()} renamed",
            ["python", "go"],
            capacity,
            p.SerializeToString(),
            p.hr_person_id,
            p.manager_id,
            p.cohort_id,
        ),
    )


def member(pid: str) -> PoolMember:
    return PoolMember.objects.get(organization_id=ORG, participant_id=pid)


def waiting() -> set[str]:
    loaded = pool.load_pool(ORG, PROGRAM, load_taxonomy(ORG))
    return {m.participant_id for m in loaded.waiting_mentees}


def test_an_update_refreshes_the_member_and_moves_free_slots_by_the_difference() -> None:
    add("m1", "mentor", capacity=1)
    add("e1", "mentee")
    add("e2", "mentee")
    assert planner.propose_continuously(ORG, PROGRAM) == 1
    assert member("m1").free_slots == 0
    update("m1", "mentor", capacity=3, department="data", hr_person_id="hr-m1", manager_id="b")
    m = member("m1")
    assert (m.capacity, m.free_slots, m.display_name) == (3, 2, "M1 renamed")
    assert list(m.skills) == ["python", "go"]
    assert common_pb2.Profile.FromString(m.profile).department == "data"
    assert planner.propose_continuously(ORG, PROGRAM) == 1  # the second mentee now fits
    update("m1", "mentor", capacity=3, department="data", hr_person_id="hr-m1", manager_id="b")
    assert member("m1").free_slots == 1  # the same capacity again: nothing moves


def test_a_cut_below_what_is_taken_is_paid_back_before_anyone_is_proposed() -> None:
    add("m1", "mentor", capacity=2)
    add("e1", "mentee")
    add("e2", "mentee")
    assert planner.propose_continuously(ORG, PROGRAM) == 2
    update("m1", "mentor", capacity=1)
    assert member("m1").free_slots == -1
    loaded = pool.load_pool(ORG, PROGRAM, load_taxonomy(ORG))
    assert [m.free_slots for m in loaded.mentors] == [0]  # the engine never sees below 0
    first = Proposal.objects(organization_id=ORG).order_by("created_at").first()
    releases.decline(ORG, first.match_id)
    assert member("m1").free_slots == 0  # one live proposal, capacity one: still full
    assert planner.propose_continuously(ORG, PROGRAM) == 0


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_an_accepted_pair_ends_the_same_whichever_order_its_events_arrive_in(
    order: tuple[int, ...],
) -> None:
    add("m1", "mentor", capacity=1)
    add("e1", "mentee")
    assert planner.propose_continuously(ORG, PROGRAM) == 1
    (proposal,) = Proposal.objects(organization_id=ORG)
    # The acceptance, the mentee's withdrawal and the relationship's end travel on three
    # topics: matching may read them in any order.
    steps = [
        lambda: pool.accept(ORG, proposal.match_id),
        lambda: releases.withdraw(ORG, PROGRAM, "e1", "mentee"),
        lambda: releases.end(ORG, proposal.match_id, exclude=""),
    ]
    for index in order:
        steps[index]()
    assert Proposal.objects.get(pk=proposal.pk).status == "ended"
    assert member("m1").free_slots == 1  # the slot went back once


def test_an_update_sets_the_reporting_line_from_the_new_profile() -> None:
    add("m1", "mentor", capacity=1, hr="boss")
    add("e1", "mentee", hr="hr-e1")
    update("e1", "mentee", hr_person_id="hr-e1", manager_id="boss")
    assert planner.propose_continuously(ORG, PROGRAM) == 0  # the mentor is the manager
    loaded = pool.load_pool(ORG, PROGRAM, load_taxonomy(ORG))
    assert loaded.constraints.manager_of == {"hr-e1": "boss"}


def test_an_update_that_overtakes_the_registration_stores_the_member() -> None:
    update("m1", "mentor", capacity=2)
    add("m1", "mentor", capacity=5)  # the late registration changes nothing
    assert (member("m1").capacity, member("m1").free_slots) == (2, 2)


def test_a_withdrawn_mentee_releases_the_slot_and_is_never_proposed_again() -> None:
    add("m1", "mentor", capacity=1)
    add("e1", "mentee")
    assert planner.propose_continuously(ORG, PROGRAM) == 1
    released = releases.withdraw(ORG, PROGRAM, "e1", "mentee").released
    assert [p.status for p in released] == ["withdrawn"]
    assert member("m1").free_slots == 1
    assert member("e1").withdrawn
    assert waiting() == set()
    assert planner.propose_continuously(ORG, PROGRAM) == 0
    assert releases.withdraw(ORG, PROGRAM, "e1", "mentee").released == []  # redelivery
    assert member("m1").free_slots == 1
    add("e2", "mentee")
    assert planner.propose_continuously(ORG, PROGRAM) == 1
    assert Proposal.objects(organization_id=ORG, status="proposed").get().mentee_id == "e2"


def test_a_withdrawn_mentor_returns_their_mentees_to_the_pool() -> None:
    add("m1", "mentor", capacity=2)
    add("e1", "mentee")
    add("e2", "mentee")
    assert planner.propose_continuously(ORG, PROGRAM) == 2
    live = Proposal.objects(organization_id=ORG, mentee_id="e1").get()
    pool.accept(ORG, live.match_id)
    released = releases.withdraw(ORG, PROGRAM, "m1", "mentor").released
    assert sorted(p.mentee_id for p in released) == ["e1", "e2"]
    assert waiting() == {"e1", "e2"}
    # The relationship-ended that follows finds the proposal released already.
    releases.end(ORG, live.match_id, exclude="")
    assert member("m1").free_slots == 2
    add("m2", "mentor", capacity=2)
    assert planner.propose_continuously(ORG, PROGRAM) == 2
    assert {p.mentor_id for p in Proposal.objects(status="proposed")} == {"m2"}


def test_a_withdrawal_that_overtakes_the_registration_keeps_them_out() -> None:
    releases.withdraw(ORG, PROGRAM, "e1", "mentee")
    add("e1", "mentee")
    add("m1", "mentor", capacity=1)
    assert member("e1").withdrawn
    assert planner.propose_continuously(ORG, PROGRAM) == 0


# --- engagement: a withdrawal ends relationships and open proposals ------------------------


def withdrawn(pid: str, reason: str) -> events_pb2.Event:
    return new_event(
        producer="enrollment",
        organization_id=ORG,
        program_id=PROGRAM,
        payload=events_pb2.ParticipantWithdrawn(
            participant_id=pid, role=common_pb2.ROLE_MENTEE, reason=reason
        ),
    )


def match(match_id: str, mentor: str, mentee: str, status: str) -> None:
    Match(
        organization_id=ORG,
        program_id=PROGRAM,
        match_id=match_id,
        mentor_id=mentor,
        mentee_id=mentee,
        status=status,
        proposed_at=datetime(2025, 1, 1, tzinfo=UTC),
    ).save()


def relationship(rid: str, mentor: str, mentee: str, status: str) -> None:
    Relationship(
        organization_id=ORG,
        program_id=PROGRAM,
        relationship_id=rid,
        match_id=f"match-{rid}",
        mentor_id=mentor,
        mentee_id=mentee,
        status=status,
        started_at=datetime(2025, 1, 1, tzinfo=UTC),
    ).save()


def test_end_reason_names_the_withdrawal_within_the_limit() -> None:
    assert withdrawals.end_reason(" moved abroad ") == "withdrawn: moved abroad"
    assert withdrawals.end_reason("") == "withdrawn"
    assert len(withdrawals.end_reason("x" * 600)) == 500


def test_a_withdrawal_closes_ongoing_relationships_and_expires_open_proposals() -> None:
    relationship("r1", "m1", "e1", "active")
    relationship("r2", "m2", "e1", "paused")
    relationship("r3", "m3", "e1", "completed")
    relationship("r4", "m1", "e2", "active")
    match("p1", "m4", "e1", "proposed")
    match("p2", "m4", "e2", "proposed")
    ended = withdrawals.apply_withdrawal(withdrawn("e1", "moved abroad"))
    assert [e.relationship_ended.relationship_id for e in ended] == ["r1", "r2"]
    for event in ended:
        assert event.relationship_ended.reason == "withdrawn: moved abroad"
        assert not event.relationship_ended.completed
        assert event.envelope.event_id == stable_event_id(
            "relationship-ended", ORG, event.relationship_ended.relationship_id
        )
    statuses = {r.relationship_id: r.status for r in Relationship.objects}
    assert statuses == {
        "r1": "closed_early",
        "r2": "closed_early",
        "r3": "completed",
        "r4": "active",
    }
    assert {m.match_id: m.status for m in Match.objects} == {"p1": "expired", "p2": "proposed"}
    # Redelivered after a crash before publishing: the same events, nothing else changes.
    again = withdrawals.apply_withdrawal(withdrawn("e1", "moved abroad"))
    assert [e.envelope.event_id for e in again] == [e.envelope.event_id for e in ended]


# --- enrollment: what an HR event asks for -------------------------------------------------


def hr(**change: object) -> events_pb2.Event:
    return new_event(
        producer="hris",
        organization_id=ORG,
        program_id="",
        payload=events_pb2.HrEvent(**change),  # type: ignore[arg-type]
    )


def stamp(day: int) -> object:
    from google.protobuf.timestamp_pb2 import Timestamp

    ts = Timestamp()
    ts.FromDatetime(datetime(2025, 1, day, tzinfo=UTC))
    return ts


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"terminated": events_pb2.Terminated()}, "hr_person_id is missing"),
        ({"hr_person_id": "p1"}, "no change set"),
        ({"hr_person_id": "p1", "transferred": events_pb2.Transferred()}, "neither department"),
        (
            {"hr_person_id": "p1", "manager_changed": events_pb2.ManagerChanged()},
            "manager_id is missing",
        ),
        (
            {"hr_person_id": "p1", "leave_of_absence": events_pb2.LeaveOfAbsence()},
            "starts_on is missing",
        ),
        (
            {
                "hr_person_id": "p1",
                "leave_of_absence": events_pb2.LeaveOfAbsence(
                    starts_on=stamp(10),  # type: ignore[arg-type]
                    ends_on=stamp(2),  # type: ignore[arg-type]
                ),
            },
            "before starts_on",
        ),
    ],
)
def test_malformed_hr_events_say_why(change: dict[str, object], reason: str) -> None:
    found = hr_consumer.check(hr(**change))
    assert found is not None
    assert reason in found


@pytest.mark.parametrize(
    "change",
    [
        {"terminated": events_pb2.Terminated(reason="left")},
        {"hired": events_pb2.Hired()},
        {"transferred": events_pb2.Transferred(location="Lyon")},
        {"manager_changed": events_pb2.ManagerChanged(manager_id="boss")},
        {"leave_of_absence": events_pb2.LeaveOfAbsence(starts_on=stamp(1))},  # type: ignore[arg-type]
    ],
)
def test_well_formed_hr_events_pass(change: dict[str, object]) -> None:
    assert hr_consumer.check(hr(hr_person_id="p1", **change)) is None


def test_profile_changes_set_only_what_the_event_says() -> None:
    hired = hr(hr_person_id="p1", hired=events_pb2.Hired(manager_id="b", department="ops"))
    change = hr_consumer.profile_change(hired.hr_event)
    assert change == hr_consumer.ProfileChange(department="ops", manager_id="b")
    profile = common_pb2.Profile(department="data", location="Paris", timezone="Europe/Paris")
    updated = change.applied_to(profile)
    assert (updated.department, updated.location, updated.manager_id) == ("ops", "Paris", "b")
    assert profile.department == "data"  # the original is left alone
    moved = hr(hr_person_id="p1", transferred=events_pb2.Transferred(location="Lyon"))
    assert hr_consumer.profile_change(moved.hr_event) == hr_consumer.ProfileChange(location="Lyon")
    assert not hr_consumer.profile_change(hr(hr_person_id="p1", hired=events_pb2.Hired()).hr_event)


def test_a_termination_reason_names_it() -> None:
    assert hr_consumer.termination_reason(events_pb2.Terminated(reason="redundancy")) == (
        "terminated: redundancy"
    )
    assert hr_consumer.termination_reason(events_pb2.Terminated()) == "terminated"
