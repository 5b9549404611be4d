"""The connection to a service's own MongoDB database, running its calls off the event loop,
and changes to several documents that commit together (transactions)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import mongoengine
from mongoengine.queryset import transform
from pymongo.client_session import ClientSession
from pymongo.errors import DuplicateKeyError, OperationFailure

from services.common.config import Settings

P = ParamSpec("P")
T = TypeVar("T")

# MongoDB's code for a write conflict between transactions.
WRITE_CONFLICT = 112

_executor: ThreadPoolExecutor | None = None
_transactions = True


def connect(settings: Settings, *, client_class: type[Any] | None = None) -> None:
    """Connect the default mongoengine alias to this service's database on MONGODB_URI.

    Unit tests pass mongomock's client class. mongomock does not make a conditional update
    atomic across threads, so then every call runs on one thread; a real server does that
    itself, so it gets a pool. mongomock has no transactions either: there `atomic` runs its
    work without one, which one thread makes safe.
    """
    global _executor, _transactions
    _transactions = client_class is None
    mongoengine.disconnect()
    if _executor is not None:
        _executor.shutdown(wait=True)
    options: dict[str, Any] = {"mongo_client_class": client_class} if client_class else {}
    mongoengine.connect(
        db=settings.mongodb_database,
        host=settings.mongodb_uri,
        tz_aware=True,
        uuidRepresentation="standard",
        **options,
    )
    workers = 1 if client_class else 8
    _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mongo")


def update_if(query: Any, condition: dict[str, Any], **update: Any) -> int:
    """Apply `update` to the one document `query` selects by its key, only while `condition`
    holds; returns how many documents changed (0 or 1), as `update_one` does.

    The document is found by its key, then updated by `_id` with the condition. The local
    MongoDB-wire server (SecantusDB) plans a filter from one index at a time: a condition beside
    an `(organization_id, key)` index makes it scan the organization's documents, while `_id`
    plus a condition is one lookup. MongoDB serves both shapes from an index.
    """
    found = query.only("id").first()
    if found is None:
        return 0
    return int(type(found).objects(pk=found.pk, **condition).update_one(**update))


class Transaction:
    """Reads and writes of documents that commit together or not at all.

    mongoengine's own calls cannot join a transaction, so these take a Document class and
    mongoengine's filter and update keywords, translate them as mongoengine does and run them
    on the transaction's session.
    """

    def __init__(self, session: ClientSession | None) -> None:
        self._session = session

    def find(self, document: Any, **filters: Any) -> Any:
        """The first document matching the filters, or None."""
        raw = document._get_collection().find_one(
            transform.query(document, **filters), session=self._session
        )
        return None if raw is None else document._from_son(raw)

    def find_all(self, document: Any, **filters: Any) -> list[Any]:
        cursor = document._get_collection().find(
            transform.query(document, **filters), session=self._session
        )
        return [document._from_son(raw) for raw in cursor]

    def insert(self, doc: Any) -> None:
        """Insert one document; a duplicate key raises DuplicateKeyError (insert_many's
        BulkWriteError would not say which rule it broke)."""
        doc.validate()
        inserted = doc._get_collection().insert_one(doc.to_mongo(), session=self._session)
        doc.pk = inserted.inserted_id

    def insert_many(self, docs: list[Any]) -> None:
        """Insert documents of one class in one round trip (a bulk run stores thousands)."""
        if not docs:
            return
        for doc in docs:
            doc.validate()
        collection = docs[0]._get_collection()
        inserted = collection.insert_many([d.to_mongo() for d in docs], session=self._session)
        for doc, pk in zip(docs, inserted.inserted_ids, strict=True):
            doc.pk = pk

    def update(
        self, document: Any, filters: dict[str, Any], *, upsert: bool = False, **update: Any
    ) -> int:
        """Update the first document matching the filters (or insert one, with upsert); how
        many matched or were inserted (0 or 1)."""
        try:
            result = document._get_collection().update_one(
                transform.query(document, **filters),
                transform.update(document, **update),
                upsert=upsert,
                session=self._session,
            )
        except DuplicateKeyError as exc:
            if self._session is None:
                raise
            # Two transactions writing one document: SecantusDB sometimes reports the clash on
            # a unique index as a duplicate key where MongoDB reports a write conflict, which
            # the driver runs again; so does this. Two upserts of one new key clash the same
            # way, and the one run again finds the other's document.
            raise OperationFailure(
                f"write conflict: {exc}",
                code=WRITE_CONFLICT,
                details={"errorLabels": ["TransientTransactionError"]},
            ) from exc
        return int(result.matched_count or result.upserted_id is not None)


def atomic(work: Callable[[Transaction], T]) -> T:
    """Run `work` in one transaction and return what it returns. A write conflict with a
    concurrent transaction runs it again from the start, so `work` reads through its
    Transaction and has no other side effects; an exception it raises rolls everything back."""
    if not _transactions:
        return work(Transaction(None))
    client = mongoengine.get_connection()
    with client.start_session() as session:
        return session.with_transaction(lambda s: work(Transaction(s)))


async def run_sync(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking mongoengine code on the storage executor, never on the event loop."""
    if _executor is None:
        raise RuntimeError("storage.connect() was not called")
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, functools.partial(fn, *args, **kwargs))
