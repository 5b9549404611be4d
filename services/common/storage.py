"""The connection to a service's own MongoDB database, running its calls off the event loop,
and changes to several documents that commit together (transactions)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import mongoengine
from mongoengine.queryset import transform
from pymongo import ReturnDocument, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.errors import (
    BulkWriteError,
    ClientBulkWriteException,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from services.common.config import Settings

P = ParamSpec("P")
T = TypeVar("T")

# MongoDB's code for a write conflict between transactions.
WRITE_CONFLICT = 112
DUPLICATE_KEY = 11000

_executor: ThreadPoolExecutor | None = None
_transactions = True
# The server takes MongoDB 8.0's client-level bulkWrite (mongomock does not: see connect).
_client_bulk = True


def connect(settings: Settings, *, client_class: type[Any] | None = None) -> None:
    """Connect the default mongoengine alias to this service's database on MONGODB_URI.

    Unit tests pass mongomock's client class. mongomock does not make a conditional update
    atomic across threads, so then every call runs on one thread; a real server does that
    itself, so it gets a pool. mongomock has no transactions either: there `atomic` runs its
    work without one, which one thread makes safe; nor client-level bulk writes: there
    `Transaction.update_each` runs its updates one by one.
    """
    global _executor, _transactions, _client_bulk
    _transactions = _client_bulk = client_class is None
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


def prepare() -> None:
    """Create every collection and index of the documents this process has imported, before
    any transaction: a collection's first write inside a transaction, with another process
    creating the same collection, was lost on the server `make up` runs (a program's first
    registrations, in tests/e2e/test_matching_workers.py). Blocking; call after connect."""
    pending = list(mongoengine.Document.__subclasses__())
    while pending:
        document = pending.pop()
        pending.extend(document.__subclasses__())
        if not document._meta.get("abstract"):
            document.ensure_indexes()


DUPLICATE_KEY = 11000


def insert_new(document: Any, raws: list[dict[str, Any]]) -> set[int]:
    """Insert documents of one class, in their stored shape, in one round trip; those whose
    unique key another document holds already are left out. Their positions in `raws`."""
    if not raws:
        return set()
    try:
        document._get_collection().insert_many(raws, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details["writeErrors"]
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        return {error["index"] for error in errors}
    return set()


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

    def insert_stored(self, document: Any, raws: list[dict[str, Any]]) -> None:
        """Insert documents of one class given in their stored shape, in one round trip: for a
        bulk write whose rows its domain rules checked, where building and validating that many
        mongoengine documents would cost more than the database takes to store them."""
        if raws:
            document._get_collection().insert_many(raws, session=self._session)

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
            raise _write_conflict(exc) from exc
        return int(result.matched_count or result.upserted_id is not None)

    def rewrite(self, document: Any, filters: dict[str, Any], **update: Any) -> int:
        """`update` made by deleting the first matching document and inserting it changed
        ($set and $unset of top-level fields only); how many matched (0 or 1). The MongoDB-wire
        server `make up` runs keeps a changed field's old key in a unique index (README,
        "Storage and messaging"), so a change to such a field (an erased e-mail) is made so."""
        collection = document._get_collection()
        raw = collection.find_one(transform.query(document, **filters), session=self._session)
        if raw is None:
            return 0
        changes = transform.update(document, **update)
        if set(changes) - {"$set", "$unset"} or any(
            "." in name for op in changes.values() for name in op
        ):
            raise ValueError(f"rewrite sets and unsets top-level fields only, not {changes}")
        raw.update(changes.get("$set", {}))
        for name in changes.get("$unset", {}):
            raw.pop(name, None)
        collection.delete_one({"_id": raw["_id"]}, session=self._session)
        collection.insert_one(raw, session=self._session)
        return 1

    def find_stored(
        self, document: Any, fields: Sequence[str], **filters: Any
    ) -> list[dict[str, Any]]:
        """The documents matching the filters as stored, with only `fields` (and `_id`): for a
        read of many documents whose mongoengine documents would cost more to build than the
        database takes to send them."""
        cursor = document._get_collection().find(
            transform.query(document, **filters),
            dict.fromkeys(fields, 1),
            session=self._session,
        )
        return list(cursor)

    def update_all(self, document: Any, filters: dict[str, Any], **update: Any) -> int:
        """Update every document matching the filters, in one round trip; how many matched.
        A duplicate key as in `update`."""
        try:
            result = document._get_collection().update_many(
                transform.query(document, **filters),
                transform.update(document, **update),
                session=self._session,
            )
        except DuplicateKeyError as exc:
            if self._session is None:
                raise
            raise _write_conflict(exc) from exc
        return int(result.matched_count)

    def update_and_get(
        self, document: Any, filters: dict[str, Any], *, upsert: bool = False, **update: Any
    ) -> Any:
        """`update`, returning the document as it now is (None if nothing matched): one round
        trip where an update and a read would take two. A duplicate key as in `update`.

        For small collections only: the MongoDB-wire server `make up` runs answers
        findAndModify by scanning the collection, whatever the filter (15 ms a call at 50,000
        documents, against 0.3 ms for `update`)."""
        try:
            raw = document._get_collection().find_one_and_update(
                transform.query(document, **filters),
                transform.update(document, **update),
                upsert=upsert,
                return_document=ReturnDocument.AFTER,
                session=self._session,
            )
        except DuplicateKeyError as exc:
            if self._session is None:
                raise
            raise _write_conflict(exc) from exc
        return None if raw is None else document._from_son(raw)

    def update_each(
        self,
        document: Any,
        changes: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
        *,
        upsert: bool = False,
    ) -> list[int]:
        """Apply each (filters, update), in the keywords `update` takes, to the first document its
        filters match (or insert one, with upsert), in order and in one round trip; how many
        each matched or inserted (0 or 1), by position. A guarded update (`free_slots__gt=0`)
        that did not apply reads 0, so the caller knows which of its changes were refused.

        A duplicate key is what `update` makes of it: in a transaction, a write conflict the
        transaction runs again for; outside one, DuplicateKeyError.
        """
        if not changes:
            return []
        collection = document._get_collection()
        raw = [
            (transform.query(document, **filters), transform.update(document, **update))
            for filters, update in changes
        ]
        if not _client_bulk or len(raw) == 1:
            # One update costs the driver less as itself than as a client bulk write.
            return [self._update_raw(collection, query, update, upsert) for query, update in raw]
        namespace = collection.full_name
        models = [UpdateOne(q, u, upsert=upsert, namespace=namespace) for q, u in raw]
        try:
            written = collection.database.client.bulk_write(
                models, session=self._session, verbose_results=True
            )
        except ClientBulkWriteException as exc:
            raise self._bulk_failure(exc) from exc
        results = written.update_results
        return [
            int(results[n].matched_count or results[n].upserted_id is not None)
            for n in range(len(models))
        ]

    def _update_raw(
        self, collection: Any, query: dict[str, Any], update: dict[str, Any], upsert: bool
    ) -> int:
        try:
            result = collection.update_one(query, update, upsert=upsert, session=self._session)
        except DuplicateKeyError as exc:
            if self._session is None:
                raise
            raise _write_conflict(exc) from exc
        return int(result.matched_count or result.upserted_id is not None)

    def _bulk_failure(self, exc: ClientBulkWriteException) -> PyMongoError:
        """The error a failed bulk write raises: the command's own (a write conflict keeps
        the label that runs the transaction again), or its first write error as `update` would
        raise it."""
        if isinstance(exc.error, PyMongoError):
            return exc.error
        # The driver's annotation says WriteError; what it holds are the server's documents.
        errors: list[dict[str, Any]] = (exc.details or {}).get("writeErrors") or []
        for error in errors:
            code = error.get("code")
            if code == DUPLICATE_KEY:
                duplicate = DuplicateKeyError(error.get("errmsg", ""), code, error)
                return duplicate if self._session is None else _write_conflict(duplicate)
            if code == WRITE_CONFLICT and self._session is not None:
                return _write_conflict(exc)
        return exc


def _write_conflict(exc: Exception) -> OperationFailure:
    """Two transactions writing one document: SecantusDB sometimes reports the clash on a
    unique index as a duplicate key where MongoDB reports a write conflict, which the driver
    runs again; so does this. Two upserts of one new key clash the same way, and the one run
    again finds the other's document."""
    return OperationFailure(
        f"write conflict: {exc}",
        code=WRITE_CONFLICT,
        details={"errorLabels": ["TransientTransactionError"]},
    )


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
