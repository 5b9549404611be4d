"""The machinery the notifications service's channels share: the delivery loop (claims for the
free slots, settles each attempt, publishes dead letters once) with a channel of its own here,
and a List RPC's page (its next token)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from aiokafka import ConsumerRecord

from services.common import pagination
from services.common.pb.mentoring.v1 import notifications_pb2 as pb
from services.notifications import domain, outcomes, paging
from services.notifications.delivery_loop import DeliveryLoop
from tests.unit import memory_db


@pytest.fixture
def db() -> Iterator[None]:
    # run_sync needs the storage executor; the fakes below touch no database.
    memory_db.connect_fresh("notifications", "loop")
    yield


@dataclass(eq=False)
class Row:
    name: str
    # How its attempt ends: domain.DELIVERED, PENDING (a retry) or DEAD_LETTERED.
    ends: str
    attempts: int = 0
    event_type: str = "matches"
    partition: int = 3
    offset: int = 7
    key: bytes | None = b"key"
    event: bytes | None = b"event"
    last_error: str = ""


class Queue:
    """A store's claim_due / dead_letters_unsent / dead_letter_sent, in memory."""

    def __init__(self, rows: list[Row]) -> None:
        self.due = list(rows)
        self.claims: list[int] = []
        self.dead: list[Row] = []
        self.sent: list[Row] = []
        # Set once a dead letter is marked sent: the last step of the round that sends it.
        self.letter_done = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Row]:
        taken, self.due = self.due[:limit], self.due[limit:]
        self.claims.append(len(taken))
        return taken

    def dead_letters_unsent(self, limit: int) -> list[Row]:
        return [r for r in self.dead if r not in self.sent][:limit]

    def dead_letter_sent(self, row: Row) -> None:
        # Called on the storage executor's thread, as a store's would be.
        self.sent.append(row)
        self._loop.call_soon_threadsafe(self.letter_done.set)


class Publisher:
    def __init__(self) -> None:
        self.letters: list[tuple[str, int, int, bytes, bytes, str, str]] = []

    async def dead_letter(self, record: ConsumerRecord, reason: str, group: str) -> None:
        self.letters.append(
            (
                record.topic,
                record.partition,
                record.offset,
                record.key,
                record.value,
                reason,
                group,
            )
        )


class FakeChannel(DeliveryLoop[Row, Row]):
    name = "test"
    dead_letter_group = "notifications-test"

    def __init__(self, queue: Queue, publisher: Publisher, concurrency: int) -> None:
        super().__init__(
            queue,
            publisher,  # type: ignore[arg-type]
            concurrency=concurrency,
            timeout_seconds=1.0,
            interval=3600.0,
            grace_seconds=5.0,
        )
        self.queue = queue
        self.counted: list[str] = []
        self.delivered: list[str] = []

    def _task_name(self, claimed: Row) -> str:
        return f"test-{claimed.name}"

    async def _deliver(self, claimed: Row) -> None:
        # As a store's record_attempt would: the row's next step, its error kept.
        outcome = outcomes.temporary("HTTP 503", 503)
        if claimed.ends == domain.DELIVERED:
            outcome = outcomes.delivered(200)
        following = domain.Next(claimed.ends, None)
        if claimed.ends == domain.DEAD_LETTERED:
            claimed.last_error = domain.failure_text(outcome)
            self.queue.dead.append(claimed)
        await self._settle(claimed, outcome, following, self.counted.append)

    async def _delivered(self, row: Row) -> None:
        self.delivered.append(row.name)

    def _describe(self, row: Row) -> str:
        return f"row {row.name}"

    def _dead_letter_reason(self, row: Row) -> str:
        return f"row {row.name} of {row.event_type}: {row.last_error}"


async def test_the_loop_settles_every_claimed_item_and_sends_each_dead_letter_once(
    db: None, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [
        Row("a", domain.DELIVERED),
        Row("b", domain.PENDING),
        Row("c", domain.DEAD_LETTERED),
    ]
    queue, publisher = Queue(rows), Publisher()
    loop = FakeChannel(queue, publisher, concurrency=2)
    with caplog.at_level(logging.WARNING, logger=__name__):
        await loop.start()
        try:
            await asyncio.wait_for(queue.letter_done.wait(), 60)
        finally:
            await loop.stop()
    # Never more claimed at once than there are slots.
    assert max(queue.claims) == 2 and sum(queue.claims) == 3
    assert loop.delivered == ["a"]
    assert sorted(loop.counted) == ["dead_lettered", "retried"]
    assert publisher.letters == [
        ("matches", 3, 7, b"key", b"event", "row c of matches: HTTP 503", "notifications-test")
    ]
    assert queue.sent == [rows[2]]
    assert "row c dead-lettered after 1 attempts: HTTP 503" in caplog.text


async def test_a_round_that_fills_every_slot_says_more_may_be_due(db: None) -> None:
    queue = Queue([Row(name, domain.PENDING) for name in "abc"])
    loop = FakeChannel(queue, Publisher(), concurrency=2)
    assert await loop.send_due() is True
    # Both slots still taken: nothing more is claimed until one frees.
    assert await loop.send_due() is True
    assert queue.claims == [2]
    await loop.stop()
    assert await loop.send_due() is False
    await loop.stop()
    assert queue.claims == [2, 1] and loop.counted == ["retried"] * 3


async def test_a_full_page_carries_the_next_pages_token_and_a_short_one_none(
    db: None,
) -> None:
    keys = ["k1", "k2", "k3"]

    def read(size: int, after: str | None) -> list[str]:
        start = keys.index(after) + 1 if after else 0
        return keys[start : start + size]

    request = pb.ListChatPostsRequest(page_size=2)
    first, token = await paging.page(request, read, str)
    assert first == ["k1", "k2"] and pagination.decode_token(token) == "k2"
    request.page_token = token
    assert await paging.page(request, read, str) == (["k3"], "")
