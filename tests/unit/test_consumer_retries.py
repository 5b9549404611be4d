"""A consumer never stalls on one message: an error is retried a few times, then the batch runs
a message at a time and the message that still fails is dead-lettered with its error; an
outage (database away) is waited out and dead-letters nothing. The broker side of aiokafka's
consumer is replaced by a list of batches; the EventConsumer is driven through start and stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import REGISTRY
from pymongo.errors import AutoReconnect

from services.common.api import events_pb2
from services.common.config import Settings
from services.common.events import new_event
from services.common.kafka import ERROR_ATTEMPTS, Delivered, EventConsumer, EventPublisher, Rejected

TOPIC = "match-proposed"
GROUP = "engagement"


class Broker:
    """The batches a consumer fetches, and the offsets it commits."""

    def __init__(self, records: list[ConsumerRecord]) -> None:
        self.pending = [{TopicPartition(TOPIC, 0): records}]
        self.committed: list[dict[TopicPartition, int]] = []


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    holder: dict[str, Broker] = {}

    async def nothing(self: Any, *args: Any, **kwargs: Any) -> None:
        return None

    async def getmany(self: Any, **kwargs: Any) -> dict[TopicPartition, list[ConsumerRecord]]:
        if holder["broker"].pending:
            return holder["broker"].pending.pop(0)
        await asyncio.sleep(0.01)
        return {}

    async def commit(self: Any, offsets: dict[TopicPartition, int]) -> None:
        holder["broker"].committed.append(offsets)

    monkeypatch.setattr(AIOKafkaConsumer, "start", nothing)
    monkeypatch.setattr(AIOKafkaConsumer, "stop", nothing)
    monkeypatch.setattr(AIOKafkaConsumer, "subscribe", lambda self, *a, **k: None)
    monkeypatch.setattr(AIOKafkaConsumer, "getmany", getmany)
    monkeypatch.setattr(AIOKafkaConsumer, "commit", commit)
    monkeypatch.setattr(AIOKafkaConsumer, "assignment", lambda self: set())
    holder["broker"] = Broker(records(["m1", "bad", "m3"]))
    yield holder["broker"]


class Letters(EventPublisher):
    """Keeps dead letters instead of publishing them."""

    def __init__(self) -> None:
        self.letters: list[tuple[int, str]] = []

    async def dead_letter(self, record: ConsumerRecord, reason: str, group: str) -> None:
        self.letters.append((record.offset, reason))


def records(match_ids: list[str]) -> list[ConsumerRecord]:
    out = []
    for offset, match_id in enumerate(match_ids):
        event = new_event(
            producer="matching",
            organization_id="acme",
            program_id="p1",
            payload=events_pb2.MatchProposed(match_id=match_id, mentor_id="a", mentee_id="b"),
        )
        value = event.SerializeToString()
        out.append(ConsumerRecord(TOPIC, 0, offset, 0, 0, b"k", value, None, 1, len(value), []))
    return out


async def consume(broker: Broker, handler: Any) -> Letters:
    letters = Letters()
    consumer = EventConsumer(
        Settings.from_env(GROUP, {}),
        topics=[TOPIC],
        group=GROUP,
        handler=handler,
        publisher=letters,
    )
    await consumer.start()
    for _ in range(500):
        if broker.committed:
            break
        await asyncio.sleep(0.02)
    await consumer.stop()
    return letters


def retried(cause: str) -> float:
    found = REGISTRY.get_sample_value(
        "mentoring_events_retried_total", {"group": GROUP, "cause": cause}
    )
    return found or 0.0


async def test_a_message_that_keeps_failing_is_dead_lettered_and_the_rest_applied(
    broker: Broker,
) -> None:
    applied: list[str] = []
    errors_before = retried("error")

    async def handler(delivered: list[Delivered]) -> list[Rejected]:
        for item in delivered:
            if item.event.match_proposed.match_id == "bad":
                raise ValueError("year 31690708 is out of range")
            applied.append(item.event.match_proposed.match_id)
        return []

    letters = await consume(broker, handler)
    assert letters.letters == [
        (1, f"failed {ERROR_ATTEMPTS} times: ValueError: year 31690708 is out of range")
    ]
    assert "m1" in applied and "m3" in applied
    assert broker.committed == [{TopicPartition(TOPIC, 0): 3}]
    assert retried("error") - errors_before == 2 * ERROR_ATTEMPTS


async def test_an_outage_is_waited_out_and_dead_letters_nothing(broker: Broker) -> None:
    applied: list[str] = []
    outages = iter([True] * (ERROR_ATTEMPTS + 1))

    async def handler(delivered: list[Delivered]) -> list[Rejected]:
        if next(outages, False):
            raise AutoReconnect("the database is away")
        applied.extend(item.event.match_proposed.match_id for item in delivered)
        return []

    letters = await consume(broker, handler)
    assert letters.letters == []
    assert applied == ["m1", "bad", "m3"]
    assert broker.committed == [{TopicPartition(TOPIC, 0): 3}]


async def test_an_undecodable_message_is_dead_lettered_once_however_often_the_batch_runs(
    broker: Broker,
) -> None:
    garbage = ConsumerRecord(TOPIC, 0, 3, 0, 0, b"k", b"\xff not protobuf", None, 1, 15, [])
    broker.pending = [{TopicPartition(TOPIC, 0): [*records(["m1", "bad", "m3"]), garbage]}]

    async def handler(delivered: list[Delivered]) -> list[Rejected]:
        if any(item.event.match_proposed.match_id == "bad" for item in delivered):
            raise ValueError("cannot apply")
        return []

    letters = await consume(broker, handler)
    assert sorted(offset for offset, _ in letters.letters) == [1, 3]
    assert broker.committed == [{TopicPartition(TOPIC, 0): 4}]
