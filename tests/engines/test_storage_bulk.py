"""Transaction.update_each on the MongoDB-wire server the services run on (client-level
bulkWrite): each update's result by position, a refused guarded update told apart, and a
duplicate key raised as `Transaction.update` raises it."""

from __future__ import annotations

import mongoengine
import pytest
from pymongo.errors import DuplicateKeyError, OperationFailure

from mentoring.stack import Stack
from services.common import storage
from services.common.storage import Transaction
from services.matching import pool
from services.matching.documents import PoolMember, Proposal
from services.matching.domain.model import Evaluation
from tests.engines.conftest import connect_fresh

ORG = "org-bulk"
PROGRAM = "program-1"
EVALUATION = Evaluation(score=0.5, breakdown=(), violations=())


@pytest.fixture(autouse=True)
def database(mongodb: Stack) -> None:
    connect_fresh(mongodb, "matching")


def _register(pid: str, role: str, capacity: int = 0) -> object:
    pool.add_member(ORG, PROGRAM, pid, role, pid, ["python"], capacity, b"", "", "", "")
    return PoolMember.objects.get(organization_id=ORG, participant_id=pid).pk


def test_each_guarded_update_reports_whether_it_applied() -> None:
    m1, m2 = _register("m1", "mentor", 1), _register("m2", "mentor", 2)
    take = {"dec__free_slots": 1}
    results = storage.atomic(
        lambda tx: tx.update_each(
            PoolMember,
            [
                ({"pk": m1, "free_slots__gt": 0}, take),
                ({"pk": m1, "free_slots__gt": 0}, take),
                ({"pk": m2, "free_slots__gt": 0}, take),
            ],
        )
    )
    assert results == [1, 0, 1]
    slots = {m.participant_id: m.free_slots for m in PoolMember.objects(organization_id=ORG)}
    assert slots == {"m1": 0, "m2": 1}


def test_a_duplicate_key_is_a_write_conflict_in_a_transaction_and_an_error_outside() -> None:
    _register("m1", "mentor", 1)
    m2 = _register("m2", "mentor", 1)
    clash = [({"pk": m2}, {"set__participant_id": "m1"})]
    with pytest.raises(DuplicateKeyError):
        Transaction(None).update_each(PoolMember, clash)
    with mongoengine.get_connection().start_session() as session:
        session.start_transaction()
        with pytest.raises(OperationFailure) as raised:
            Transaction(session).update_each(PoolMember, clash)
        assert raised.value.has_error_label("TransientTransactionError")
        session.abort_transaction()
    assert PoolMember.objects.get(pk=m2).participant_id == "m2"


def test_propose_leaves_out_the_pairs_refused_and_takes_no_slot_for_them() -> None:
    keys = {pid: _register(pid, "mentor", 1) for pid in ("m1", "m2")}
    keys.update((pid, _register(pid, "mentee")) for pid in ("e1", "e2", "e3"))
    PoolMember.objects(pk=keys["e3"]).update_one(set__matched=True)
    pairs = [
        pool.Pair("m1", "e1", EVALUATION),
        pool.Pair("m1", "e2", EVALUATION),  # m1's one slot went to e1
        pool.Pair("m2", "e3", EVALUATION),  # e3 is taken: m2's slot comes back
    ]
    stored = pool.propose(ORG, PROGRAM, keys, pairs)
    assert [(p.mentor_id, p.mentee_id) for p in stored] == [("m1", "e1")]
    assert Proposal.objects(organization_id=ORG).count() == 1
    members = {m.participant_id: m for m in PoolMember.objects(organization_id=ORG)}
    assert (members["m1"].free_slots, members["m2"].free_slots) == (0, 1)
    assert (members["e1"].matched, members["e2"].matched) == (True, False)
