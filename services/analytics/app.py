"""The analytics Faust app: ingest batches folded into per-program and per-organisation state.

State lives in Faust tables backed by changelog topics, so it survives a restart and moves with
its partitions when a second worker joins. Every table is written while handling a message of
the same `analytics-ingest` partition, so a key's changelog partition is the one its events
arrive on. A state is sharded (sharded.py): a small summary per program and organisation, and
one value per entity, so no value grows with a program.
"""

from __future__ import annotations

import gc
import logging
import tempfile
import time
from collections import Counter, defaultdict, deque
from typing import Any

import faust
from mode.utils.objects import cached_property
from prometheus_client import Gauge

from services.analytics import journal, kpis, sharded
from services.analytics.fold_step import FoldStep, Write
from services.analytics.ingest import INGEST_TOPIC
from services.analytics.routing import (
    organisation_state_key,
    partition_for,
    program_state_key,
)
from services.common import metrics
from services.common.config import Settings
from services.common.events import DEAD_LETTER_TOPIC, EventDecodeError, dead_letter, scoped_id
from services.common.hr_signatures import KEY_ID_HEADER, SIGNATURE_HEADER, HrProducers
from services.common.idempotency import PROCESSED_EVENT_DAYS
from services.common.pb.mentoring.v1.analytics_pb2 import IngestBatch, IngestedEvent

log = logging.getLogger(__name__)

GROUP = "analytics"
# Ingest messages folded per step (up to 500 events each): a value an event changes is written
# once per step, and a step lasts at most a quarter of a second, well inside the freshness
# target. Bounded, so that catching up on a backlog folds it in steps of the same size.
TAKE_MESSAGES = 20
TAKE_WITHIN_SECONDS = 0.25
# Event ids are remembered to drop an event published twice (an outbox relay republishes within
# seconds): as long as every other consumer remembers them, and no more of them than this.
DEDUPE_WINDOW_SECONDS = PROCESSED_EVENT_DAYS * 86_400
DEDUPE_MAX_IDS = 2_000_000
TABLE = "state"
GAUGE_EVERY_SECONDS = 1.0
FULL_REFRESH_SECONDS = 30.0

PROGRAM_KPI = Gauge(
    "mentoring_program_kpi",
    "Live KPI of a mentoring program (participants, matches, relationships, sessions...).",
    ["organization", "program", "kpi"],
)


def _headers(item: IngestedEvent) -> tuple[tuple[str, bytes], ...]:
    """The signature headers of the record the ingest stage packed."""
    return ((KEY_ID_HEADER, item.producer_key_id), (SIGNATURE_HEADER, item.producer_signature))


class AnalyticsApp:
    """The Faust app and its tables, built from settings (tests run several side by side)."""

    def __init__(self, settings: Settings, canonical_url: str) -> None:
        self.settings = settings
        self._hr_producers = HrProducers(settings.hr_producer_keys_file)
        # Faust makes a data directory even with in-memory tables: a private temporary one
        # instead of "analytics-data" in whatever directory the worker was started from.
        self._datadir = tempfile.TemporaryDirectory(prefix="mentoring-analytics-")
        app = faust.App(
            GROUP,
            broker=f"kafka://{settings.kafka_bootstrap_servers}",
            store="memory://",
            datadir=self._datadir.name,
            topic_partitions=settings.topic_partitions,
            web_enabled=False,
            # Shared with the other workers through the group's assignment: where to forward a
            # gRPC request for a partition held elsewhere.
            canonical_url=canonical_url,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            # No standby copies: on Apache Kafka, faust-streaming 0.15 never finishes promoting
            # a standby partition to active after its owner dies ("No event received for active
            # tp … since recovery start"), so the survivor stalled. Without standbys it
            # restores the partition from its compacted changelog, from the start.
            table_standby_replicas=0,
            # A worker that dies is noticed, and its partitions handed on, after the session
            # timeout; Faust's 60 s defaults would leave its programs unanswered for a minute.
            broker_session_timeout=10.0,
            broker_rebalance_timeout=10.0,
            broker_heartbeat_interval=3.0,
            # A step writes thousands of small values to one changelog partition. aiokafka
            # waits for a partition's batch to be acknowledged before starting the next one once
            # it is full, so a 16 KB batch would send them a few dozen per round trip.
            producer_max_batch_size=1_000_000,
            producer_max_request_size=1_000_000,
            # Uncompressed: aiokafka compresses gzip at level 9, a tenth of the worker's time
            # while it folds, to save loopback and disk bytes of values of a few dozen bytes.
            producer_linger=0.005,
        )
        self.app = app
        # One table, so that a step's writes are one changelog partition's ordered records
        # (journal.py): the summary of each program ("org/program") and organisation ("org/"),
        # each of their entities ("org/program|people|p-1"), the steps' journals and the ids of
        # the events folded ("~seen:<partition>:<offset>:<chunk>" -> [newest time, [ids]]).
        self.state = app.Table(TABLE, key_type=str, help="Analytics state, sharded.")
        # What folds load and readers scan: the summaries and entities held here.
        self.index = sharded.Index()
        # Per ingest partition, the last offset folded in; later ones only are folded.
        self._applied: dict[int, int] = {}
        # Per ingest partition, a committed journal found when loading, to write again before
        # the partition's next step overwrites it.
        self._replay: dict[int, list[Write]] = {}
        self.source = app.topic(
            INGEST_TOPIC, key_type=bytes, value_type=bytes, value_serializer="raw"
        )
        self.dead_letters = app.topic(
            DEAD_LETTER_TOPIC, value_serializer="raw", key_serializer="raw"
        )
        app.agent(self.source, name="fold-events")(self._fold)
        app.timer(GAUGE_EVERY_SECONDS, name="refresh-gauges")(self._refresh_gauges)
        self._seen_ids: set[str] = set()
        self._expiry: dict[int, deque[tuple[float, str]]] = defaultdict(deque)
        self._indexed_generation: int | None = None
        self._remembered = 0
        # Programs exported as gauges, and those changed since their last export.
        self._gauged: set[str] = set()
        self._dirty: set[str] = set()
        self._full_refresh_at = 0.0
        # The group generation of the last full refresh: a rebalance may have moved programs.
        self._gauged_generation: int | None = None
        # Bumped on every write of a program's state: readers cache figures against it.
        self.versions: Counter[str] = Counter()

    # --- reading, for the servicer ------------------------------------------------------

    def changelog_topics(self) -> list[str]:
        return [self.state_topic]

    @cached_property
    def state_topic(self) -> str:
        return str(self.state.changelog_topic.get_topic_name())

    def partition_of(self, key: str) -> int:
        return partition_for(key.encode(), self.settings.topic_partitions)

    def settled(self) -> bool:
        # While the group rebalances or tables recover from their changelogs, the local
        # tables are not yet the truth for any partition.
        return not (self.app.rebalancing or self.app.in_recovery)

    def holds(self, key: str) -> bool:
        """Whether this worker is the active owner of the key's state, with it loaded."""
        tp = faust.types.TP(self.state_topic, self.partition_of(key))
        return self.settled() and tp in self.app.assignor.assigned_actives()

    def owner_of(self, key: str) -> str | None:
        """The canonical URL of the worker holding the key's partition, if the group knows it."""
        if not self.settled():
            return None
        partition = self.partition_of(key)
        for url, topics in self.app.router.table_metadata(TABLE).items():
            if partition in topics.get(self.state_topic, ()):
                return str(url)
        return None

    def program(self, key: str) -> kpis.State:
        return self._stored(key, False)

    def organisation(self, key: str) -> kpis.State:
        return self._stored(key, True)

    def _stored(self, key: str, for_organisation: bool) -> sharded.StoredState:
        self._index_if_assignment_changed()
        return self.index.stored(key, for_organisation)

    # --- folding ---------------------------------------------------------------------

    async def _fold(self, stream: Any) -> None:
        async for step in stream.take_events(TAKE_MESSAGES, within=TAKE_WITHIN_SECONDS):
            self._index_if_assignment_changed()
            by_partition: dict[int, list[Any]] = defaultdict(list)
            for message in step:
                by_partition[message.message.partition].append(message)
            for partition, messages in by_partition.items():
                await self._fold_partition(stream, partition, messages)

    async def _fold_partition(self, stream: Any, partition: int, messages: list[Any]) -> None:
        step = FoldStep(self.index.summary, self.index.entity)
        folded: list[str] = []
        consumed: Counter[str] = Counter()
        duplicates: Counter[str] = Counter()
        newest = 0.0
        applied = self._applied.get(partition, -1)
        # A step delivered again after a crash: what it committed is in the state already.
        messages = [message for message in messages if message.message.offset > applied]
        if not messages:
            return
        for message in messages:
            for item in IngestBatch.FromString(message.value).events:
                try:
                    event = self._hr_producers.decode(item.topic, item.value, _headers(item))
                except EventDecodeError as exc:
                    await self._dead_letter(item, str(exc), folded)
                    continue
                env = event.envelope
                for_organisation = item.organisation_copy or not env.program_id
                key = (
                    organisation_state_key(env.organization_id)
                    if for_organisation
                    else program_state_key(env.organization_id, env.program_id)
                )
                if self.partition_of(key) != partition:
                    await self._dead_letter(
                        item, f"key {item.key!r} does not match {key!r}", folded
                    )
                    continue
                # Scoped by organisation, as every consumer's handled events are: an id another
                # organisation's producer reuses never hides this one's event.
                dedupe_id = ("org:" if item.organisation_copy else "") + scoped_id(event)
                if dedupe_id in self._seen_ids:
                    if not item.organisation_copy:
                        duplicates[item.topic] += 1
                    continue
                try:
                    step.apply(key, for_organisation, event)
                except Exception as exc:
                    await self._dead_letter(
                        item, f"cannot be applied: {type(exc).__name__}: {exc}", folded
                    )
                    continue
                self._seen_ids.add(dedupe_id)
                folded.append(dedupe_id)
                newest = max(newest, env.occurred_at.seconds)
                if not item.organisation_copy:
                    consumed[item.topic] += 1
        last = messages[-1].message.offset
        # Table writes go to the changelog partition of the current event: this partition.
        # Then the stream's own current event comes back: take_events' buffer reads it for the
        # message it is adding, which may be waiting for this step to end; left pointing at
        # an old message, it would put that one in the next step instead (a step lost).
        previous = stream.current_event
        stream._set_current_event(messages[-1])
        try:
            records = journal.step_records(
                partition,
                (messages[0].message.offset, last),
                (newest, folded),
                list(step.writes()),
                self._replay.pop(partition, []),
            )
            for key, value in records:
                self._store(key, value)
            self._applied[partition] = last
            self._expire()
        finally:
            stream._set_current_event(previous)
        changed = step.changed(for_organisation=False)
        for key in changed:
            self.versions[key] += 1
        self._dirty.update(changed)
        for topic, count in consumed.items():
            metrics.EVENTS_CONSUMED.labels(topic, GROUP).inc(count)
        for topic, count in duplicates.items():
            metrics.EVENTS_DUPLICATE.labels(topic, GROUP).inc(count)

    def _store(self, key: str, value: Any) -> None:
        if value is not None:
            self.state[key] = value
        elif key in self.state:
            del self.state[key]
        if not journal.is_bookkeeping(key):
            self.index.put(key, value)
        elif key.startswith(journal.SEEN):
            self._expiry[journal.seen_partition(key)].append((value[0], key))
            self._remembered += len(value[1])

    def _index_if_assignment_changed(self) -> None:
        # After a rebalance the tables may hold partitions recovered from their changelogs.
        generation = self.app.consumer_generation_id
        if generation == self._indexed_generation or not self.settled():
            return
        self._indexed_generation = generation
        loaded = journal.load(self.state.items())
        self.index.clear()
        for key, value in loaded.values.items():
            self.index.put(key, value)
        self._seen_ids.clear()
        self._expiry.clear()
        self._remembered = 0
        for newest, seen_key, ids in loaded.seen:
            self._seen_ids.update(ids)
            self._remembered += len(ids)
            self._expiry[journal.seen_partition(seen_key)].append((newest, seen_key))
        self._applied = {p: step.last_offset for p, step in loaded.committed.items()}
        self._replay = {p: step.writes for p, step in loaded.committed.items()}
        # The state just loaded lives until the next rebalance and holds no reference cycle:
        # out of the collector's generations (garbage collected first, not kept for good), a
        # full collection no longer walks all of it, which was 15 % of the worker's time.
        gc.collect()
        gc.freeze()

    def _expire(self) -> None:
        """Forget event ids past the window, and the oldest beyond the count."""
        horizon = time.time() - DEDUPE_WINDOW_SECONDS
        while True:
            heads = [(queue[0][0], partition) for partition, queue in self._expiry.items() if queue]
            if not heads:
                return
            newest, partition = min(heads)
            if newest >= horizon and self._remembered <= DEDUPE_MAX_IDS:
                return
            _, seen_key = self._expiry[partition].popleft()
            entry = self.state.pop(seen_key, None)
            if entry is not None:
                self._seen_ids.difference_update(entry[1])
                self._remembered -= len(entry[1])

    async def _dead_letter(self, item: IngestedEvent, reason: str, folded: list[str]) -> None:
        # Remembered as the step's folded events are, so a redelivered step sends it once.
        letter_id = f"dead:{item.topic}:{item.partition}:{item.offset}"
        if letter_id in self._seen_ids:
            return
        self._seen_ids.add(letter_id)
        folded.append(letter_id)
        value = dead_letter(
            topic=item.topic,
            partition=item.partition,
            offset=item.offset,
            key=item.key,
            value=item.value,
            reason=reason,
            group=GROUP,
        )
        await self.dead_letters.send(key=item.key, value=value)
        metrics.EVENTS_DEAD_LETTERED.labels(item.topic, GROUP).inc()
        log.warning("dead-lettered %s[%d]@%d: %s", item.topic, item.partition, item.offset, reason)

    # --- gauges ----------------------------------------------------------------------

    def _export(self, key: str) -> None:
        organization, _, program = key.partition("/")
        figures = kpis.figures(self.program(key), "", kpis.DayRange(), time.time())
        for name, value in figures.scalars.items():
            PROGRAM_KPI.labels(organization, program, name).set(value)
        self._gauged.add(key)

    async def _refresh_gauges(self) -> None:
        # Changed programs at most once a second, whatever the event rate, and programs not
        # exported yet: a partition taken over in a rebalance brings its programs' state from
        # the changelog, with no event to mark them changed. Every program now and then:
        # at-risk figures move with the clock, and a program whose partition moved to another
        # worker must stop being exported here.
        programs = (key for key in self.index.summaries if not key.endswith("/"))
        due = self._dirty | {key for key in programs if key not in self._gauged}
        self._dirty = set()
        generation = self.app.consumer_generation_id
        if time.monotonic() >= self._full_refresh_at or generation != self._gauged_generation:
            self._gauged_generation = generation
            self._full_refresh_at = time.monotonic() + FULL_REFRESH_SECONDS
            due = due | self._gauged
        for key in due:
            if self.holds(key):
                self._export(key)
            elif key in self._gauged:
                self._gauged.discard(key)
                organization, _, program = key.partition("/")
                for name in kpis.GAUGED:
                    try:
                        PROGRAM_KPI.remove(organization, program, name)
                    except KeyError:
                        pass
