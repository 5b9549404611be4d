"""Matching's bulk writes on mongomock: a batch of pairs reserved with a few bulk updates, each
refused pair told apart and left untaken; registrations stored a program's batch at a time, with
one revision for the batch."""

from __future__ import annotations

from collections.abc import Iterator

import mongoengine
import pytest
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from services.common import storage
from services.common.api import common_pb2, events_pb2, matching_pb2
from services.common.events import new_event
from services.common.storage import Transaction
from services.matching import configuration, messages, planner, pool, worker
from services.matching.documents import PoolMember, Proposal, ReportingLine
from services.matching.domain.model import CriterionResult, Evaluation
from tests.unit import memory_db

ORG = "org-1"
PROGRAM = "prog-1"
EVALUATION = Evaluation(score=0.5, breakdown=(), violations=())


@pytest.fixture(autouse=True)
def database() -> Iterator[str]:
    yield memory_db.connect_fresh("matching", "test_matching_bulk")
    mongoengine.disconnect()


def registration(pid: str, role: str, capacity: int = 0, **profile: str) -> pool.Registration:
    return pool.Registration(
        pid,
        role,
        pid.upper(),
        ["python"],
        capacity,
        b"",
        profile.get("hr", ""),
        profile.get("manager", ""),
        "",
    )


def member(pid: str) -> PoolMember:
    found: PoolMember = PoolMember.objects.get(organization_id=ORG, participant_id=pid)
    return found


def key(pid: str) -> object:
    return member(pid).pk


def live_proposals(mentor_id: str) -> int:
    return int(
        Proposal.objects(organization_id=ORG, mentor_id=mentor_id, status="proposed").count()
    )


# --- Transaction.update_each ---------------------------------------------------------------------


def test_update_each_reports_which_guarded_updates_applied_by_position() -> None:
    pool.add_members(
        ORG, PROGRAM, [registration("m1", "mentor", 1), registration("m2", "mentor", 2)]
    )
    guarded = {"free_slots__gt": 0}
    take = {"dec__free_slots": 1}
    results = storage.atomic(
        lambda tx: tx.update_each(
            PoolMember,
            [
                ({"pk": key("m1"), **guarded}, take),
                ({"pk": key("m1"), **guarded}, take),  # its one slot went to the first
                ({"pk": key("m2"), **guarded}, take),
                ({"pk": ObjectId(), **guarded}, take),  # nobody
            ],
        )
    )
    assert results == [1, 0, 1, 0]
    assert (member("m1").free_slots, member("m2").free_slots) == (0, 1)


def test_update_each_upserts_and_reports_each_insert() -> None:
    results = storage.atomic(
        lambda tx: tx.update_each(
            ReportingLine,
            [
                ({"organization_id": ORG, "hr_person_id": "hr-1"}, {"set__manager_id": "hr-9"}),
                ({"organization_id": ORG, "hr_person_id": "hr-1"}, {"set__manager_id": "hr-8"}),
            ],
            upsert=True,
        )
    )
    assert results == [1, 1]
    lines = list(ReportingLine.objects(organization_id=ORG))
    assert [(line.hr_person_id, line.manager_id) for line in lines] == [("hr-1", "hr-8")]


def test_update_each_of_nothing_writes_nothing() -> None:
    assert storage.atomic(lambda tx: tx.update_each(PoolMember, [])) == []


def test_update_each_outside_a_transaction_raises_a_duplicate_key() -> None:
    pool.add_members(
        ORG, PROGRAM, [registration("m1", "mentor", 1), registration("m2", "mentor", 1)]
    )
    with pytest.raises(DuplicateKeyError):
        Transaction(None).update_each(
            PoolMember, [({"pk": key("m2")}, {"set__participant_id": "m1"})]
        )


# --- reserve_all -------------------------------------------------------------------------------


def test_reserve_all_refuses_a_full_mentor_and_a_taken_mentee_and_gives_the_slot_back() -> None:
    pool.add_members(
        ORG,
        PROGRAM,
        [
            registration("m1", "mentor", 1),
            registration("m2", "mentor", 3),
            registration("m3", "mentor", 1),
            registration("e1", "mentee"),
            registration("e2", "mentee"),
            registration("e3", "mentee"),
        ],
    )
    PoolMember.objects(pk=key("e3")).update_one(set__matched=True)  # taken meanwhile
    PoolMember.objects(pk=key("m3")).update_one(set__withdrawn=True)
    pairs = [
        (key("m1"), key("e1")),
        (key("m1"), key("e2")),  # m1's one slot is e1's
        (key("m2"), key("e3")),  # e3 is taken: m2's slot comes back
        (key("m2"), key("e1")),  # e1 is taken by the first pair
        (key("m3"), key("e2")),  # m3 left
        # m2's slots held for pairs 2 and 3 come back only once the batch is done: a third.
        (key("m2"), key("e2")),
    ]
    reserved = storage.atomic(lambda tx: pool.reserve_all(tx, pairs, 7))
    assert reserved == [True, False, False, False, False, True]
    assert (member("m1").free_slots, member("m2").free_slots, member("m3").free_slots) == (0, 2, 1)
    assert (member("e1").matched, member("e2").matched) == (True, True)
    assert (member("m1").revision, member("m2").revision, member("m3").revision) == (7, 7, 1)


def test_reserve_all_takes_several_slots_of_a_mentor_up_to_what_it_has() -> None:
    pool.add_members(
        ORG,
        PROGRAM,
        [registration("m1", "mentor", 2), *(registration(f"e{n}", "mentee") for n in range(3))],
    )
    pairs = [(key("m1"), key(f"e{n}")) for n in range(3)]
    reserved = storage.atomic(lambda tx: pool.reserve_all(tx, pairs, 3))
    assert reserved == [True, True, False]
    assert member("m1").free_slots == 0 and member("m1").revision == 3
    assert [member(f"e{n}").matched for n in range(3)] == [True, True, False]


def test_propose_stores_what_a_proposal_document_would() -> None:
    pool.add_members(ORG, PROGRAM, [registration("m1", "mentor", 1), registration("e1", "mentee")])
    evaluation = Evaluation(
        score=0.75,
        breakdown=(CriterionResult("skills", 0.75, 5.0, True, "python"),),
        violations=(),
    )
    keys = {"m1": key("m1"), "e1": key("e1")}
    (stored,) = pool.propose(ORG, PROGRAM, keys, [pool.Pair("m1", "e1", evaluation)], "run-1")
    read = Proposal.objects.get(pk=stored.pk)
    read.validate()
    made = pool.new_proposal(ORG, PROGRAM, "m1", "e1", evaluation, run_id="run-1")
    varying = {"_id", "match_id", "event_id", "created_at"}
    assert {k: v for k, v in read.to_mongo().items() if k not in varying} == {
        k: v for k, v in made.to_mongo().items() if k not in varying
    }
    assert (read.match_id, read.event_id) == (stored.match_id, stored.event_id)
    assert messages.proposed_event(stored) == messages.proposed_event(read)


def continuous_program_started() -> None:
    """A CONTINUOUS program whose first batch (the full solve) is behind it."""
    configuration.save_config(
        matching_pb2.MatchingConfig(
            organization_id=ORG,
            program_id=PROGRAM,
            mode=matching_pb2.MATCHING_MODE_CONTINUOUS,
            criteria=[
                matching_pb2.Criterion(kind=matching_pb2.CRITERION_KIND_SKILLS, weight=1),
            ],
            candidates_per_mentee=5,
        )
    )
    pool.add_members(ORG, PROGRAM, [registration("m1", "mentor", 1), registration("e0", "mentee")])
    assert planner.propose_continuously(ORG, PROGRAM) == 1


def test_a_batch_planned_but_never_stored_is_planned_again() -> None:
    continuous_program_started()
    pool.add_members(ORG, PROGRAM, [registration("m2", "mentor", 1), registration("e1", "mentee")])
    lost = planner.plan_continuously(ORG, PROGRAM)  # the worker died before storing it
    assert [(p.mentor_id, p.mentee_id) for p in lost.pairs] == [("m2", "e1")]
    assert member("e1").unplanned is True
    assert planner.propose_continuously(ORG, PROGRAM) == 1
    assert (member("e1").matched, member("e1").unplanned) == (True, False)


def test_propose_stores_only_the_reserved_pairs_and_settle_requeues_the_refused() -> None:
    continuous_program_started()
    pool.add_members(
        ORG,
        PROGRAM,
        [
            registration("m2", "mentor", 2),
            registration("e1", "mentee"),
            registration("e2", "mentee"),
        ],
    )
    plan = planner.plan_continuously(ORG, PROGRAM)
    assert sorted(p.mentee_id for p in plan.pairs) == ["e1", "e2"]
    # Behind the plan's back, one of m2's slots goes elsewhere.
    PoolMember.objects(pk=key("m2")).update_one(dec__free_slots=1)
    stored = planner.store(ORG, PROGRAM, plan)
    planner.settle(plan, stored)
    assert len(stored) == 1
    assert member("m2").free_slots == 0  # never below what is taken
    assert live_proposals("m2") == 1
    refused = ({"e1", "e2"} - {p.mentee_id for p in stored}).pop()
    assert member(refused).matched is False
    assert member(refused).unplanned is True  # the next batch considers them again


# --- add_members and the worker's batches ------------------------------------------------------


def test_add_members_takes_one_revision_for_a_batch_of_mentors() -> None:
    pool.add_members(
        ORG,
        PROGRAM,
        [
            registration("m1", "mentor", 2),
            registration("m2", "mentor", 3),
            registration("e1", "mentee", hr="hr-e1", manager="hr-m1"),
        ],
    )
    assert pool.current_revision(ORG, PROGRAM) == 1
    assert (member("m1").revision, member("m2").revision) == (1, 1)
    assert (member("m1").free_slots, member("m2").free_slots) == (2, 3)
    assert member("e1").unplanned is True
    line = ReportingLine.objects.get(organization_id=ORG, hr_person_id="hr-e1")
    assert line.manager_id == "hr-m1"


def test_a_redelivered_batch_does_not_give_taken_slots_back() -> None:
    batch = [registration("m1", "mentor", 2), registration("e1", "mentee")]
    pool.add_members(ORG, PROGRAM, batch)
    pool.propose(
        ORG, PROGRAM, {"m1": key("m1"), "e1": key("e1")}, [pool.Pair("m1", "e1", EVALUATION)]
    )
    pool.add_members(ORG, PROGRAM, batch)
    assert member("m1").free_slots == 1
    assert member("e1").matched is True
    assert PoolMember.objects(organization_id=ORG).count() == 2


def _registered(
    pid: str, role: common_pb2.Role.ValueType, program: str = PROGRAM
) -> events_pb2.Event:
    return new_event(
        producer="enrollment",
        organization_id=ORG,
        program_id=program,
        payload=events_pb2.ParticipantRegistered(
            participant_id=pid, role=role, display_name=pid, skills=["python"], capacity=1
        ),
    )


def test_the_worker_stores_registrations_before_a_later_event_about_them() -> None:
    mentor, mentee = common_pb2.ROLE_MENTOR, common_pb2.ROLE_MENTEE
    withdrawn = new_event(
        producer="enrollment",
        organization_id=ORG,
        program_id=PROGRAM,
        payload=events_pb2.ParticipantWithdrawn(participant_id="e1", role=mentee),
    )
    applied = worker._apply(
        [
            _registered("m1", mentor),
            _registered("e1", mentee),
            withdrawn,
            _registered("e2", mentee),
            _registered("x1", mentor, program="prog-2"),
        ]
    )
    assert applied.touched == {(ORG, PROGRAM), (ORG, "prog-2")}
    assert member("e1").withdrawn is True
    assert member("e1").role == "mentee"
    assert member("e1").display_name == "e1"  # registered before it was withdrawn
    assert (member("e2").unplanned, member("m1").free_slots) == (True, 1)
    assert member("x1").program_id == "prog-2"
    assert pool.current_revision(ORG, "prog-2") == 1
