"""The ingest stage: reads the platform's topics in bulk and hands the analytics agent batches.

A Faust agent pays a few hundred microseconds per Kafka message however little it does with
it, which caps a worker near 2k events/s. This stage is a plain consumer group (fetching
thousands of records per call, committing only after its batches are acknowledged) that packs
the records, unparsed, into one `IngestBatch` per destination partition of `analytics-ingest`;
the agent then pays its per-message cost once per batch, and checks and folds the events.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from aiokafka import AIOKafkaProducer, ConsumerRecord

from services.analytics.routing import destinations, partition_for
from services.common.config import Settings
from services.common.events import EVENT_TOPICS, MAX_MESSAGE_BYTES
from services.common.hr_signatures import signature_headers
from services.common.kafka import EventConsumer
from services.common.pb.mentoring.v1.analytics_pb2 import IngestBatch, IngestedEvent

INGEST_TOPIC = "analytics-ingest"
# Renamed with the sharded state (its table is new): a worker upgraded from the one-value-per-
# program state reads every event the topics still hold again, into the new table.
INGEST_GROUP = "analytics-ingest-sharded"
# Well under Kafka's default 1 MB message limit with events of a few hundred bytes.
EVENTS_PER_MESSAGE = 500


def pack(records: list[ConsumerRecord], partitions: int) -> dict[int, list[IngestBatch]]:
    """Each record, and its organisation copy, on the partition of the state it moves."""
    by_partition: dict[int, list[IngestedEvent]] = defaultdict(list)
    # One fetch interleaves topics arbitrarily; in time order, a registration comes before the
    # relationship that follows it whenever both arrive in the same fetch.
    for record in sorted(records, key=lambda r: r.timestamp):
        # Carried for the agent, which verifies an hr-event's producer before folding it.
        key_id, signature = signature_headers(record.headers or ())
        for key, organisation_copy in destinations(record.topic, record.key or b""):
            by_partition[partition_for(key, partitions)].append(
                IngestedEvent(
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key or b"",
                    value=record.value or b"",
                    organisation_copy=organisation_copy,
                    producer_key_id=key_id,
                    producer_signature=signature,
                )
            )
    return {
        partition: [
            IngestBatch(events=events[i : i + EVENTS_PER_MESSAGE])
            for i in range(0, len(events), EVENTS_PER_MESSAGE)
        ]
        for partition, events in by_partition.items()
    }


class IngestStage:
    def __init__(self, settings: Settings) -> None:
        self._partitions = settings.topic_partitions
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=f"{settings.service}-ingest",
            acks="all",
            linger_ms=2,
            # A batch holding one of the largest events is as large.
            max_request_size=MAX_MESSAGE_BYTES,
        )
        self._consumer = EventConsumer(
            settings,
            topics=EVENT_TOPICS,
            group=INGEST_GROUP,
            raw_handler=self._forward,
            max_records=5000,
        )

    async def start(self) -> None:
        await self._producer.start()
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()
        await self._producer.stop()

    async def _forward(self, records: list[ConsumerRecord]) -> None:
        sends = [
            await self._producer.send(INGEST_TOPIC, batch.SerializeToString(), partition=partition)
            for partition, batches in pack(records, self._partitions).items()
            for batch in batches
        ]
        # The consumer commits the source offsets only once every batch is on the broker.
        await asyncio.gather(*sends)
