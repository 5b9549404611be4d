"""Routing and packing in the analytics ingest stage: every event lands where its state lives."""

from __future__ import annotations

import dataclasses

from aiokafka import ConsumerRecord
from aiokafka.partitioner import DefaultPartitioner

from services.analytics.ingest import EVENTS_PER_MESSAGE, pack
from services.analytics.routing import destinations, partition_for
from services.common.api import events_pb2
from services.common.events import new_event, partition_key
from services.common.hr_signatures import KEY_ID_HEADER, SIGNATURE_HEADER

PARTITIONS = 6


def delivered(event: events_pb2.Event, offset: int) -> ConsumerRecord:
    env = event.envelope
    key = partition_key(env.organization_id, env.program_id)
    return ConsumerRecord(
        topic="session-logged",
        partition=0,
        offset=offset,
        timestamp=env.occurred_at.ToMilliseconds(),
        timestamp_type=0,
        key=key,
        value=event.SerializeToString(),
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=0,
        headers=(),
    )


def test_partition_matches_the_producers_default_partitioner() -> None:
    for n in range(200):
        key = partition_key(f"org-{n}", f"program-{n * 7}")
        expected = DefaultPartitioner()(key, list(range(PARTITIONS)), list(range(PARTITIONS)))
        assert partition_for(key, PARTITIONS) == expected


def test_registrations_are_copied_to_their_organisation() -> None:
    assert destinations("participant-registered", b"o/p") == ((b"o/p", False), (b"o/", True))
    assert destinations("session-logged", b"o/p") == ((b"o/p", False),)
    assert destinations("hr-events", b"o/") == ((b"o/", False),)


def test_pack_splits_large_batches_and_keeps_time_order() -> None:
    events = []
    for i in range(EVENTS_PER_MESSAGE + 10):
        e = new_event(
            producer="t",
            organization_id="o",
            program_id="p",
            payload=events_pb2.SessionLogged(session_id=f"s{i}", relationship_id="r", minutes=1),
        )
        e.envelope.occurred_at.FromSeconds(10_000 - i)  # newest first
        events.append(delivered(e, i))
    packed = pack(events, PARTITIONS)
    (partition,) = packed
    assert partition == partition_for(b"o/p", PARTITIONS)
    sizes = [len(batch.events) for batch in packed[partition]]
    assert sizes == [EVENTS_PER_MESSAGE, 10]
    offsets = [item.offset for batch in packed[partition] for item in batch.events]
    assert offsets == sorted(offsets, reverse=True)


def test_pack_carries_the_hr_producer_signature_headers() -> None:
    event = new_event(
        producer="hris",
        organization_id="o",
        program_id="",
        payload=events_pb2.HrEvent(hr_person_id="h1", terminated=events_pb2.Terminated()),
    )
    record = dataclasses.replace(
        delivered(event, 0),
        topic="hr-events",
        key=b"o/",
        headers=((KEY_ID_HEADER, b"k1"), ("trace", b"x"), (SIGNATURE_HEADER, b"sig")),
    )
    (batches,) = pack([record, delivered(event, 1)], PARTITIONS).values()
    signed, unsigned = batches[0].events
    assert (signed.producer_key_id, signed.producer_signature) == (b"k1", b"sig")
    assert (unsigned.producer_key_id, unsigned.producer_signature) == (b"", b"")
