"""The outbox's writers deliver at once: one update marks many writers' events sent, and none is
left unsent (which the relay would publish a second time) or marked before it was published."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import mongoengine
import pytest

from services.common import outbox
from services.common.api import events_pb2
from services.common.events import new_event, scoped_id
from services.common.outbox import OutboxEntry, OutboxRelay
from services.common.storage import Transaction
from tests.unit import memory_db


@pytest.fixture(autouse=True)
def database() -> Iterator[str]:
    yield memory_db.connect_fresh("engagement", "test_outbox_delivery")
    mongoengine.disconnect()


class SlowBroker:
    """Acknowledges after yielding, so writers' deliveries overlap; fails while `down`."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.down = False

    async def publish(self, events: Sequence[events_pb2.Event]) -> None:
        await asyncio.sleep(0)
        if self.down:
            raise ConnectionError("the broker is away")
        self.sent += [scoped_id(e) for e in events]


def committed(n: int) -> list[events_pb2.Event]:
    """A writer's change: `n` events staged in its transaction."""
    events = [
        new_event(
            producer="engagement",
            organization_id="org-1",
            program_id="prog-1",
            payload=events_pb2.MessageSent(relationship_id=f"r-{i}", message_id=f"m-{i}"),
        )
        for i in range(n)
    ]

    def write(tx: Transaction) -> tuple[None, list[events_pb2.Event]]:
        return None, events

    outbox.commit(write)
    return events


def unsent() -> set[str]:
    return {entry.key for entry in OutboxEntry.objects(sent=False)}


def test_overlapping_deliveries_mark_every_published_event_sent() -> None:
    broker = SlowBroker()
    relay = OutboxRelay(broker)  # type: ignore[arg-type]
    writers = [committed(1 + w % 3) for w in range(40)]
    assert len(unsent()) == sum(len(events) for events in writers)

    async def deliver_all() -> None:
        await asyncio.gather(*(relay.deliver(events) for events in writers))

    asyncio.run(deliver_all())
    assert unsent() == set()
    assert sorted(broker.sent) == sorted(scoped_id(e) for events in writers for e in events)


def test_events_whose_publication_failed_stay_unsent_beside_delivered_ones() -> None:
    broker = SlowBroker()
    relay = OutboxRelay(broker)  # type: ignore[arg-type]
    delivered, failed = committed(2), committed(2)

    async def both() -> None:
        await relay.deliver(delivered)
        broker.down = True
        with pytest.raises(ConnectionError):
            await relay.deliver(failed)

    asyncio.run(both())
    assert unsent() == {scoped_id(e) for e in failed}
