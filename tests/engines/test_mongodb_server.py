"""The guarantees the services rely on, checked on the MongoDB-wire server they run on.

Every service writes through conditional updates (a slot taken only while capacity is left, a
proposal answered only while it is live) and unique indexes (one participant per person and
program). These tests hold the server to that from several processes at once, to keeping
documents and indexes across a restart, and to removing what a TTL index says has expired
(handled-event records). Speed at 100,000 documents is bench/mongo_wire.py's.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path

import mongoengine
import pymongo
import pytest
from pymongo.errors import DuplicateKeyError

from mentoring.stack import Managed, Stack
from services.common import storage
from services.common.storage import update_if
from tests.engines.conftest import connect_fresh

PROCESSES = 4
ATTEMPTS = 25  # per process: 100 in all
CAPACITY = 37


@pytest.fixture(scope="module")
def stack(mongodb: Stack) -> Stack:
    return mongodb  # conftest.py: the one server of tests/engines


@pytest.fixture
def collection(stack: Stack, request: pytest.FixtureRequest) -> pymongo.collection.Collection:
    client: pymongo.MongoClient = pymongo.MongoClient(stack.mongodb.uri)
    request.addfinalizer(client.close)
    name = f"guarantees_{uuid.uuid4().hex}"
    return client[name]["slots"]


def _wait_until(start_at: float) -> None:
    # Every process starts its burst at the same moment, so the attempts really overlap.
    time.sleep(max(0.0, start_at - time.time()))


def decrement_with_find_and_modify(uri: str, db: str, start_at: float) -> int:
    with pymongo.MongoClient(uri) as client:
        slots = client[db]["slots"]
        _wait_until(start_at)
        won = 0
        for _ in range(ATTEMPTS):
            taken = slots.find_one_and_update(
                {"_id": "mentor-1", "capacity": {"$gt": 0}}, {"$inc": {"capacity": -1}}
            )
            won += taken is not None
        return won


def decrement_with_update_one(uri: str, db: str, start_at: float) -> int:
    with pymongo.MongoClient(uri) as client:
        slots = client[db]["slots"]
        _wait_until(start_at)
        return sum(
            slots.update_one(
                {"_id": "mentor-1", "capacity": {"$gt": 0}}, {"$inc": {"capacity": -1}}
            ).modified_count
            for _ in range(ATTEMPTS)
        )


class Slot(mongoengine.Document):
    id = mongoengine.StringField(primary_key=True)
    mentor_id = mongoengine.StringField()
    capacity = mongoengine.IntField()
    meta = {"collection": "slots"}


def decrement_with_update_if(uri: str, db: str, start_at: float) -> int:
    # The services' guarded change by key: the _id by mentor_id, then the update by _id.
    with mongoengine.connect(db=db, host=uri, alias="default"):
        _wait_until(start_at)
        won = sum(
            update_if(Slot.objects(mentor_id="m1"), {"capacity__gt": 0}, dec__capacity=1)
            for _ in range(ATTEMPTS)
        )
    mongoengine.disconnect()
    return won


def insert_people(uri: str, db: str, start_at: float) -> int:
    with pymongo.MongoClient(uri) as client:
        people = client[db]["people"]
        _wait_until(start_at)
        inserted = 0
        for n in range(ATTEMPTS):
            try:
                people.insert_one({"organization_id": "acme", "email": f"p{n}@acme.example"})
                inserted += 1
            except DuplicateKeyError:
                pass
        return inserted


def in_processes(task: object, uri: str, db: str) -> list[int]:
    with ProcessPoolExecutor(PROCESSES, mp_context=get_context("spawn")) as pool:
        start_at = time.time() + 3.0  # past the time spawn takes to import pymongo
        futures = [pool.submit(task, uri, db, start_at) for _ in range(PROCESSES)]  # type: ignore[arg-type]
        return [future.result(timeout=120) for future in futures]


@pytest.mark.parametrize(
    "task", [decrement_with_find_and_modify, decrement_with_update_one, decrement_with_update_if]
)
def test_conditional_decrements_never_go_below_zero(
    stack: Stack, collection: pymongo.collection.Collection, task: object
) -> None:
    collection.insert_one({"_id": "mentor-1", "mentor_id": "m1", "capacity": CAPACITY})
    wins = in_processes(task, stack.mongodb.uri, collection.database.name)
    assert sum(wins) == CAPACITY, wins
    assert collection.find_one({"_id": "mentor-1"}) == {
        "_id": "mentor-1",
        "mentor_id": "m1",
        "capacity": 0,
    }


def test_a_unique_index_refuses_duplicates_inserted_at_once(
    stack: Stack, collection: pymongo.collection.Collection
) -> None:
    people = collection.database["people"]
    people.create_index([("organization_id", 1), ("email", 1)], unique=True)
    inserted = in_processes(insert_people, stack.mongodb.uri, collection.database.name)
    assert sum(inserted) == ATTEMPTS, inserted
    assert people.count_documents({}) == ATTEMPTS


def _restart(stack: Stack) -> Managed:
    [server] = [m for m in stack.processes if m.name == "mongodb"]
    stack.stop_process(server)
    assert server.stopped_cleanly(), stack.tail(server)
    return stack.start_mongodb()


def test_documents_and_indexes_survive_a_restart(
    stack: Stack, collection: pymongo.collection.Collection
) -> None:
    db = collection.database.name
    collection.create_index("email", unique=True)
    collection.insert_many([{"_id": n, "email": f"p{n}@acme.example"} for n in range(500)])
    collection.database.client.close()
    _restart(stack)
    with pymongo.MongoClient(stack.mongodb.uri) as client:
        again = client[db]["slots"]
        assert again.count_documents({}) == 500
        assert again.find_one({"email": "p321@acme.example"}) == {
            "_id": 321,
            "email": "p321@acme.example",
        }
        assert "email_1" in again.index_information()
        with pytest.raises(DuplicateKeyError):
            again.insert_one({"_id": 999, "email": "p7@acme.example"})


def test_the_data_lives_in_the_data_directory(stack: Stack) -> None:
    assert any(Path(stack.mongodb.data_dir).iterdir())


def test_a_ttl_index_removes_expired_documents(collection: pymongo.collection.Collection) -> None:
    collection.create_index("expires_at", expireAfterSeconds=0)
    now = datetime.now(UTC)
    collection.insert_many(
        [
            {"_id": "expired", "expires_at": now - timedelta(seconds=1)},
            {"_id": "kept", "expires_at": now + timedelta(days=7)},
        ]
    )
    # The server sweeps once a minute, as MongoDB does.
    deadline = time.monotonic() + 150
    while collection.count_documents({"_id": "expired"}) and time.monotonic() < deadline:
        time.sleep(1)
    assert [d["_id"] for d in collection.find()] == ["kept"]


class Person(mongoengine.Document):
    email = mongoengine.StringField()
    meta = {"collection": "people_rewritten", "indexes": [{"fields": ["email"], "unique": True}]}


def test_a_rewritten_unique_key_is_free_for_someone_else(stack: Stack) -> None:
    # This server keeps a changed field's old key in a unique index (an update_one from
    # "ada@…" to "erased@…" would leave "ada@…" refused forever), so the services change such a
    # field with Transaction.rewrite: after an erasure, the person may register again.
    connect_fresh(stack, "enrollment")
    Person.ensure_indexes()
    Person(email="ada@acme.example").save()
    matched = storage.atomic(
        lambda tx: tx.rewrite(Person, {"email": "ada@acme.example"}, set__email="x@erased.invalid")
    )
    assert matched == 1
    Person(email="ada@acme.example").save()
    assert sorted(p.email for p in Person.objects) == ["ada@acme.example", "x@erased.invalid"]
    with pytest.raises(mongoengine.NotUniqueError):
        Person(email="x@erased.invalid").save()
