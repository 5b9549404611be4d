"""The transactional outbox: a change and the events that report it commit together.

A store stages the events in the transaction that makes the change (`stage`); right after the
commit the writer publishes them and marks them sent (`OutboxRelay.deliver`). A writer that dies
between the commit and the broker's acknowledgement leaves them unsent, and the relay, which
looks for unsent events every few seconds in every replica, publishes them. An event keeps its id
however often it is published, so a consumer drops the second copy: never lost, never two
different events for one change.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from mongoengine import (
    BinaryField,
    BooleanField,
    DateTimeField,
    Document,
    ListField,
    StringField,
)
from pymongo.errors import DuplicateKeyError

from services.common import clock, metrics
from services.common.events import scoped_id, topic_of
from services.common.kafka import EventPublisher
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import Transaction, atomic, run_sync

log = logging.getLogger(__name__)
T = TypeVar("T")

# An unsent event younger than this is its writer's to deliver: the relay leaves it alone, so
# the two rarely publish the same event twice.
SETTLE_SECONDS = 5.0
# How often each replica's relay looks for what writers left unsent.
RELAY_INTERVAL_SECONDS = 2.0
RELAY_BATCH = 500
# A bulk write stages its events in entries of about this many bytes (stage_together): one
# document per event would cost the database as many index writes as the rows it reports.
TOGETHER_BYTES = 1 << 20
# Sent events are kept this long (then a TTL index removes them), to see what went out.
SENT_KEPT_DAYS = 7

# Test-only: the process exits at this named step, as a crash would (tests/e2e/test_outbox.py).
CRASH_AT_ENV = "MENTORING_TEST_CRASH_AT"
CRASH_EXIT_CODE = 86
_CRASH_AT = os.environ.get(CRASH_AT_ENV, "")


class OutboxEntry(Document):
    # Keyed by organisation and event id: a retried request stages its event once.
    key = StringField(primary_key=True)
    value = BinaryField(required=True)
    created_at = DateTimeField(required=True)
    sent = BooleanField(default=False)
    sent_at = DateTimeField()
    # Events staged with `value` by one bulk write (stage_together), published after it.
    more = ListField(BinaryField())
    meta = {
        "collection": "outbox",
        "indexes": [
            ["sent", "created_at"],
            {"fields": ["sent_at"], "expireAfterSeconds": SENT_KEPT_DAYS * 86_400},
        ],
    }


def crash_point(step: str) -> None:
    """Exit here, as a crash would, when a test asks for it (MENTORING_TEST_CRASH_AT)."""
    if step == _CRASH_AT:
        log.warning("crashing at %s, as %s asks", step, CRASH_AT_ENV)
        os._exit(CRASH_EXIT_CODE)


def stage(tx: Transaction, events: Iterable[Event]) -> None:
    """Store events to publish, in the transaction of the change they report."""
    now = clock.now()
    tx.update_each(
        OutboxEntry,
        [
            (
                {"key": scoped_id(event)},
                {
                    "set_on_insert__value": event.SerializeToString(),
                    "set_on_insert__created_at": now,
                    "set_on_insert__sent": False,
                },
            )
            for event in events
        ],
        upsert=True,
    )


def stage_together(tx: Transaction, events: Sequence[Event]) -> None:
    """Stage new events (ids never staged before) as few entries of about TOGETHER_BYTES, each
    under its first event's key: a bulk write's. The relay and `deliver` treat them as the
    events they hold; marking the events sent marks their entries."""
    now = clock.now()
    entries: list[OutboxEntry] = []
    group: list[tuple[str, bytes]] = []
    size = 0
    for event in events:
        data = event.SerializeToString()
        if group and size + len(data) > TOGETHER_BYTES:
            entries.append(_together(group, now))
            group, size = [], 0
        group.append((scoped_id(event), data))
        size += len(data)
    if group:
        entries.append(_together(group, now))
    tx.insert_many(entries)


def _together(group: list[tuple[str, bytes]], now: datetime) -> OutboxEntry:
    (key, first), rest = group[0], group[1:]
    return OutboxEntry(
        key=key, value=first, more=[data for _, data in rest], created_at=now, sent=False
    )


def commit(
    work: Callable[[Transaction], tuple[T, list[Event]]], *, together: bool = False
) -> tuple[T, list[Event]]:
    """Run `work` in one transaction (storage.atomic) and stage the events it returns in it:
    the change and its events commit together. Returns what `work` returns; the caller then
    delivers the events (OutboxRelay.deliver). `together`: the events are new and many (a bulk
    write's), staged by stage_together."""

    def staged(tx: Transaction) -> tuple[T, list[Event]]:
        result, events = work(tx)
        if together:
            stage_together(tx, events)
        else:
            stage(tx, events)
        return result, events

    return atomic(staged)


def insert(doc: Any, events: list[Event]) -> bool:
    """Insert a document and stage the events that announce it, in one transaction. False,
    with nothing written, when a document with the same unique key exists already (a retry)."""

    def write(tx: Transaction) -> tuple[None, list[Event]]:
        tx.insert(doc)
        return None, events

    try:
        commit(write)
    except DuplicateKeyError:
        return False
    return True


def _mark_sent(keys: Sequence[str]) -> None:
    OutboxEntry.objects(key__in=list(keys)).update(set__sent=True, set__sent_at=clock.now())


def _due(limit: int) -> list[Event]:
    settled = clock.now() - timedelta(seconds=SETTLE_SECONDS)
    entries = (
        OutboxEntry.objects(sent=False, created_at__lte=settled)
        .order_by("created_at")
        .only("value", "more")
        .limit(limit)
    )
    return [Event.FromString(value) for entry in entries for value in (entry.value, *entry.more)]


class OutboxRelay:
    """Publishes staged events: a writer's right after its commit, and any left unsent."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher
        # Keys published and not yet marked sent, marked by one update for every writer that
        # delivered meanwhile: under load that is one round trip for many requests, not one each.
        self._unmarked: list[str] = []
        self._marking = asyncio.Lock()

    async def deliver(self, events: Sequence[Event]) -> None:
        """Publish events just committed with their change, and mark them sent. If this fails
        (or the process dies) they stay unsent and the relay publishes them."""
        if not events:
            return
        crash_point("outbox-committed")
        await self._publisher.publish(events)
        crash_point("outbox-published")
        self._unmarked.extend(scoped_id(e) for e in events)
        async with self._marking:
            # Empty when the writer before us marked ours with its own.
            if self._unmarked:
                keys, self._unmarked = self._unmarked, []
                await run_sync(_mark_sent, keys)

    async def relay_once(self) -> None:
        """Publish what writers left unsent, oldest first; a periodic task calls this."""
        while events := await run_sync(_due, RELAY_BATCH):
            await self._publisher.publish(events)
            await run_sync(_mark_sent, [scoped_id(e) for e in events])
            for event in events:
                metrics.OUTBOX_RELAYED.labels(topic_of(event)).inc()
            log.warning("relayed %d events their writer left unsent", len(events))
            if len(events) < RELAY_BATCH:
                return
