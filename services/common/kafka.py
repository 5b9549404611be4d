"""Publishing and consuming platform events on Kafka, with dead-lettering and committed offsets."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    TopicAlreadyExistsError,
)
from pymongo.errors import ConnectionFailure

from services.common import idempotency, metrics
from services.common.config import Settings
from services.common.events import (
    ALL_TOPICS,
    DEAD_LETTER_TOPIC,
    MAX_MESSAGE_BYTES,
    EventDecodeError,
    dead_letter,
    partition_key,
    topic_of,
)
from services.common.hr_signatures import HrProducers
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import run_sync

log = logging.getLogger(__name__)

# The database or the broker is away: nothing is wrong with the messages, so they wait for it.
OUTAGES: tuple[type[BaseException], ...] = (ConnectionFailure, KafkaError, asyncio.TimeoutError)
# Any other failure is retried this many times, then the batch runs a message at a time and the
# message that still fails goes to the dead-letter topic, so one bad event never stalls the rest.
ERROR_ATTEMPTS = 3
# How long a topic just created may take to show in the broker's metadata.
TOPICS_LISTED_SECONDS = 30.0


class _Stopping(Exception):
    """The consumer stopped in the middle of a batch."""


async def _retry(
    name: str,
    errors_allowed: int | None,
    step: Callable[..., Awaitable[Any]],
    *args: Any,
    stopping: asyncio.Event | None = None,
) -> Exception | None:
    """Run a step until it succeeds (None), waiting out outages; after `errors_allowed` other
    errors (None: no limit), return the last one. Retries count under `name` (a consumer group
    or reader); a step that fails once `stopping` is set raises _Stopping."""
    delay, errors = 0.2, 0
    while True:
        try:
            await step(*args)
            return None
        except (CommitFailedError, IllegalStateError):
            raise
        except Exception as exc:
            if stopping is not None and stopping.is_set():
                raise _Stopping from exc
            outage = isinstance(exc, OUTAGES)
            errors += not outage
            metrics.EVENTS_RETRIED.labels(name, "outage" if outage else "error").inc()
            if errors_allowed is not None and errors >= errors_allowed:
                return exc
            log.exception("%s: %s failed; retrying in %.1fs", name, step.__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def ensure_topics(
    bootstrap_servers: str,
    partitions: int,
    topics: Iterable[str] = ALL_TOPICS,
    config: Mapping[str, str] | None = None,
) -> None:
    """Create the platform's topics (with this topic config); existing ones are left as they
    are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(t, partitions, 1, topic_configs=dict(config or {}))
            for t in topics
            if t not in existing
        ]
        if missing:
            response = await admin.create_topics(missing)
            for topic, code, message in response.topic_errors:
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise RuntimeError(f"cannot create topic {topic}: {message} ({code})")
            await _until_listed(admin, {t.name for t in missing})
    finally:
        await admin.close()


async def _until_listed(admin: AIOKafkaAdminClient, topics: set[str]) -> None:
    """Wait until the broker lists new topics. The controller acknowledges a creation before
    the broker's metadata has it, and a client that asks in between (Faust assigning its
    partitions at start) sees no such topic and takes no partitions of it."""
    deadline = asyncio.get_running_loop().time() + TOPICS_LISTED_SECONDS
    while not topics <= set(await admin.list_topics()):
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"topics {sorted(topics)} not listed by the broker in time")
        await asyncio.sleep(0.05)


class EventPublisher:
    """Sends events keyed by program, waiting for the broker's acknowledgement."""

    def __init__(self, settings: Settings) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=settings.service,
            acks="all",
            linger_ms=2,
            max_request_size=MAX_MESSAGE_BYTES,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        # stop() flushes what is still buffered before closing.
        await self._producer.stop()

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish events and return once all are acknowledged; raises if any is not."""
        futures = []
        for event in events:
            topic = topic_of(event)
            env = event.envelope
            futures.append(
                await self._producer.send(
                    topic,
                    event.SerializeToString(),
                    key=partition_key(env.organization_id, env.program_id),
                )
            )
            metrics.EVENTS_PRODUCED.labels(topic).inc()
        await asyncio.gather(*futures)

    async def dead_letter(self, record: ConsumerRecord, reason: str, group: str) -> None:
        value = dead_letter(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            reason=reason,
            group=group,
        )
        await self._producer.send_and_wait(DEAD_LETTER_TOPIC, value, key=record.key)
        metrics.EVENTS_DEAD_LETTERED.labels(record.topic, group).inc()
        log.warning(
            "dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason
        )


@dataclass(frozen=True, slots=True)
class Delivered:
    """A decoded event and the record it came in."""

    event: Event
    record: ConsumerRecord


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event its handler cannot act on, ever; it goes to the dead-letter topic."""

    delivered: Delivered
    reason: str


BatchHandler = Callable[[list[Delivered]], Awaitable[list[Rejected]]]
# A handler of undecoded records, for a stage that only forwards them; it validates nothing.
RawBatchHandler = Callable[[list[ConsumerRecord]], Awaitable[None]]


class _AssignmentListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, group: str) -> None:
        self.group = group

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        for tp in revoked:
            metrics.ASSIGNED_PARTITIONS.labels(tp.topic, self.group).dec()
            try:
                metrics.CONSUMER_LAG.remove(tp.topic, str(tp.partition), self.group)
            except KeyError:
                pass  # no lag was exported for it yet

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        for tp in assigned:
            metrics.ASSIGNED_PARTITIONS.labels(tp.topic, self.group).inc()
        log.info("%s owns %s", self.group, sorted((tp.topic, tp.partition) for tp in assigned))


class EventConsumer:
    """A consumer-group member that hands decoded batches to a handler: the one pipeline of
    every service's consumer (decode and check → skip what was handled → apply → dead-letter
    what cannot be applied → record as handled → commit).

    Offsets are committed only after the handler and any dead-lettering succeeded, so a crash
    redelivers rather than loses; handlers are therefore written to be idempotent (a crash
    after applying and before recording replays the batch). Handlers see each event once per
    organisation and event id (idempotency.py, for PROCESSED_EVENT_DAYS). Handlers
    never see an undecodable event, nor an hr-event its organisation's HR producer did not sign
    (hr_signatures.py): those are dead-lettered with the reason. A batch that fails during an
    outage (OUTAGES) runs again after a pause until it passes; one that fails otherwise runs
    again up to ERROR_ATTEMPTS times, then a message at a time, and a message that still fails
    is dead-lettered with the error, so the partition goes on.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        topics: Sequence[str],
        group: str,
        handler: BatchHandler | None = None,
        raw_handler: RawBatchHandler | None = None,
        publisher: EventPublisher | None = None,
        max_records: int = 500,
    ) -> None:
        if (handler is None) == (raw_handler is None):
            raise ValueError("give exactly one of handler and raw_handler")
        if handler is not None and publisher is None:
            raise ValueError("a decoding consumer needs a publisher for its dead letters")
        self.group = group
        self._topics = topics
        self._handler = handler
        self._raw_handler = raw_handler
        self._publisher = publisher
        self._hr_producers = HrProducers(settings.hr_producer_keys_file)
        self._max_records = max_records
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=group,
            client_id=f"{settings.service}-{group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            fetch_min_bytes=settings.fetch_min_bytes,
            # Range assignment gives one member the same partition number of every topic, and
            # all topics are keyed by program: so a member sees all of a program's events.
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe(list(self._topics), listener=_AssignmentListener(self.group))
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.group}")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
        await self._consumer.stop()

    async def _run(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            try:
                batches = await self._consumer.getmany(
                    timeout_ms=200, max_records=self._max_records
                )
            except KafkaError:
                # The broker is away: keep trying rather than let the task die unnoticed.
                log.exception("fetch failed; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.2
            records = [r for part in batches.values() for r in part]
            if records:
                await self._handle_until_done(records, batches)
            await self._export_lag()

    async def _handle_until_done(
        self, records: list[ConsumerRecord], batches: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        try:
            if self._raw_handler is not None:
                await self._attempt(None, self._handle_raw, records)
            else:
                delivered = await self._decoded(records)
                failed_whole = delivered and await self._attempt(
                    ERROR_ATTEMPTS, self._handle, delivered
                )
                if failed_whole:
                    for item in delivered:
                        failure = await self._attempt(ERROR_ATTEMPTS, self._handle, [item])
                        if failure is not None:
                            await self._attempt(None, self._give_up, item.record, failure)
            offsets = {tp: part[-1].offset + 1 for tp, part in batches.items()}
            await self._attempt(None, self._consumer.commit, offsets)
        except (CommitFailedError, IllegalStateError):
            # A rebalance gave these partitions to another member, which redelivers the
            # batch; handlers are idempotent, so dropping it here loses nothing.
            log.warning("partitions moved during the batch; the new owner redelivers it")
        except _Stopping:
            # Uncommitted: the next owner of these partitions handles them again.
            log.warning("batch left unfinished while stopping; it will be redelivered")

    async def _attempt(
        self, errors_allowed: int | None, step: Callable[..., Awaitable[Any]], *args: Any
    ) -> Exception | None:
        return await _retry(self.group, errors_allowed, step, *args, stopping=self._stopping)

    async def _give_up(self, record: ConsumerRecord, failure: Exception) -> None:
        assert self._publisher is not None
        reason = f"failed {ERROR_ATTEMPTS} times: {type(failure).__name__}: {failure}"
        await self._publisher.dead_letter(record, reason, self.group)

    async def _decoded(self, records: list[ConsumerRecord]) -> list[Delivered]:
        """The records as events; one that is not a valid event is dead-lettered, once."""
        assert self._publisher is not None
        delivered: list[Delivered] = []
        for record in records:
            try:
                event = self._hr_producers.decode(record.topic, record.value, record.headers)
                delivered.append(Delivered(event, record))
            except EventDecodeError as exc:
                await self._attempt(None, self._publisher.dead_letter, record, str(exc), self.group)
        return delivered

    async def _handle(self, delivered: list[Delivered]) -> None:
        """Skip what the group handled before, apply the rest, dead-letter what the handler
        rejects, then record the others as handled. A rejected event stays unrecorded, so
        replaying it from the dead-letter topic once its cause is fixed applies it."""
        assert self._handler is not None and self._publisher is not None
        fresh = {
            id(event)
            for event in await run_sync(
                idempotency.unprocessed, [item.event for item in delivered], self.group
            )
        }
        todo = [item for item in delivered if id(item.event) in fresh]
        rejections = await self._handler(todo) if todo else []
        for rejection in rejections:
            await self._publisher.dead_letter(
                rejection.delivered.record, rejection.reason, self.group
            )
        refused = {id(rejection.delivered.event) for rejection in rejections}
        handled = [item.event for item in todo if id(item.event) not in refused]
        await run_sync(idempotency.mark_processed, handled, self.group)
        self._count_consumed([item.record for item in delivered])

    async def _handle_raw(self, records: list[ConsumerRecord]) -> None:
        assert self._raw_handler is not None
        await self._raw_handler(records)
        self._count_consumed(records)

    def _count_consumed(self, records: list[ConsumerRecord]) -> None:
        # Once per topic and batch: a labelled counter costs microseconds per call.
        for topic, count in Counter(record.topic for record in records).items():
            metrics.EVENTS_CONSUMED.labels(topic, self.group).inc(count)

    async def _export_lag(self) -> None:
        for tp in self._consumer.assignment():
            end = self._consumer.highwater(tp)
            if end is not None:
                position = await self._consumer.position(tp)
                lag = metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition), self.group)
                lag.set(max(end - position, 0))


class BroadcastReader:
    """Reads every partition of a topic, outside any consumer group, into a local read model.

    For facts every replica of a service needs whatever programs it owns (run results, HR
    changes). The handler must be idempotent: a restart reads the topic again from the start.
    Undecodable messages, and hr-events their organisation's HR producer did not sign, are
    skipped here; the topic's consumer groups dead-letter them.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        handler: Callable[[Event], Awaitable[None]],
        name: str,
    ) -> None:
        self.name = name
        self._handler = handler
        self._hr_producers = HrProducers(settings.hr_producer_keys_file)
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=None,
            client_id=f"{settings.service}-{name}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            fetch_min_bytes=settings.fetch_min_bytes,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _run(self) -> None:
        async for record in self._consumer:
            try:
                event = self._hr_producers.decode(record.topic, record.value, record.headers)
            except EventDecodeError as exc:
                log.warning("%s skips %s@%d: %s", self.name, record.topic, record.offset, exc)
                continue
            await self._handle_until_done(event)
            metrics.EVENTS_CONSUMED.labels(record.topic, self.name).inc()

    async def _handle_until_done(self, event: Event) -> None:
        """Apply the event, waiting out outages; after ERROR_ATTEMPTS other errors it is
        skipped (logged): the topic's consumer groups dead-letter what they cannot apply."""
        failure = await _retry(self.name, ERROR_ATTEMPTS, self._handler, event)
        if failure is not None:
            log.error("%s skips %s: %r", self.name, event.envelope.event_id, failure)
