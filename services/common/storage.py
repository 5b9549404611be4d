"""The connection to a service's own MongoDB database, and running its calls off the event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import mongoengine

from services.common.config import Settings

P = ParamSpec("P")
T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


def connect(settings: Settings, *, client_class: type[Any] | None = None) -> None:
    """Connect the default mongoengine alias to this service's database on MONGODB_URI.

    Unit tests pass mongomock's client class. mongomock does not make a conditional update
    atomic across threads, so then every call runs on one thread; a real server does that
    itself, so it gets a pool.
    """
    global _executor
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


async def run_sync(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking mongoengine code on the storage executor, never on the event loop."""
    if _executor is None:
        raise RuntimeError("storage.connect() was not called")
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, functools.partial(fn, *args, **kwargs))
