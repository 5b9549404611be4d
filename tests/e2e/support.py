"""Helpers for end-to-end tests: waiting, reading topics back, scraping /metrics."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from mentoring.clients import TOKEN_ENV
from mentoring.stack import Managed, Stack, free_port
from services.common.api import events_pb2
from services.common.events import DEAD_LETTER_TOPIC, new_event, partition_key
from services.common.hr_signatures import HR_EVENTS_TOPIC, KEYS_FILE_ENV, ProducerKey

T = TypeVar("T")


def without_auth(env: Mapping[str, str]) -> dict[str, str]:
    """The shared stack runs with authentication off (tests/e2e/test_auth.py runs its own with
    it on), and trusts HR producer keys of its own (Stack.hr_producer), whatever the
    developer's shell exports."""
    dropped = {TOKEN_ENV, KEYS_FILE_ENV}
    return {k: v for k, v in env.items() if not k.startswith("AUTH_") and k not in dropped}


def eventually(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll probe until it returns something other than None (or False)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last is not None and last is not False:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


async def _read(
    bootstrap: str, topic: str, settle: float, since: Mapping[int, int] | None
) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        for tp in partitions:
            if since and tp.partition in since:
                consumer.seek(tp, since[tp.partition])
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            for part in batch.values():
                records.extend(part)
            positions = {tp: await consumer.position(tp) for tp in partitions}
            if all(positions[tp] >= ends[tp] for tp in partitions):
                break
        return records
    finally:
        await consumer.stop()


def read_topic(
    bootstrap: str, topic: str, settle: float = 10.0, since: Mapping[int, int] | None = None
) -> list[ConsumerRecord]:
    """Every record on the topic right now, read from the beginning, or from the offsets
    `since` (partition -> offset, see topic_ends) so that a probe repeated while the topic
    grows reads only what is new since then."""
    return asyncio.run(_read(bootstrap, topic, settle, since))


class DeadLetters:
    """The dead-letter topic from where it ended when this was made: a probe repeated while
    other tests keep adding letters reads only the new ones."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.since = topic_ends(bootstrap, DEAD_LETTER_TOPIC)

    def __call__(self) -> list[events_pb2.DeadLetter]:
        records = read_topic(self.bootstrap, DEAD_LETTER_TOPIC, since=self.since)
        return [events_pb2.DeadLetter.FromString(record.value) for record in records]


def topic_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """The topic's end offset per partition right now."""
    return asyncio.run(_ends(bootstrap, topic))


async def _ends(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        ends = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    return partitions


async def _produce(
    bootstrap: str, messages: list[tuple[str, bytes, bytes]], signer: ProducerKey | None
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, key, value in messages:
            headers = signer.headers(value) if signer else None
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


def produce(
    bootstrap: str,
    messages: list[tuple[str, bytes, bytes]],
    *,
    signed_with: ProducerKey | None = None,
) -> None:
    """Send raw (topic, key, value) messages, as another system publishing into ours would;
    each signed with the HR producer key `signed_with`, if given."""
    asyncio.run(_produce(bootstrap, messages, signed_with))


def hr_record(event: events_pb2.Event) -> tuple[str, bytes, bytes]:
    """An HR event as a (topic, key, value) message, keyed as README's "For HR systems" says."""
    key = partition_key(event.envelope.organization_id, "")
    return HR_EVENTS_TOPIC, key, event.SerializeToString()


def publish_hr(stack: Stack, org: str, change: events_pb2.HrEvent) -> events_pb2.Event:
    """Publish as an HR system does (README, "For HR systems"), signed with the organisation's
    HR producer key."""
    event = new_event(producer="hris", organization_id=org, program_id="", payload=change)
    produce(stack.ports.bootstrap, [hr_record(event)], signed_with=stack.hr_producer(org))
    return event


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A process's /metrics as {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric(port: int, name: str, **labels: str) -> float:
    return scrape(port).get((name, tuple(sorted(labels.items()))), 0.0)


def start_workers(
    stack: Stack, service: str, names: Sequence[str]
) -> list[tuple[Managed, int, int]]:
    """Several processes of one service, each on ports of its own and serving: (process, gRPC
    port, metrics port) for each name."""
    started = []
    for name in names:
        grpc_port, metrics_port = free_port(), free_port()
        process = stack.start_service(
            service, name=name, grpc_port=grpc_port, metrics_port=metrics_port
        )
        stack.wait_serving(process, f"127.0.0.1:{grpc_port}")
        started.append((process, grpc_port, metrics_port))
    return started
