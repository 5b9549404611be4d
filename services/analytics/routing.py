"""Where analytics keeps each event's effect: the partition of its program, or organisation.

Producers key events `org/program` (hr-events `org/`) with Kafka's default partitioner, so the
same murmur2 hash over the same partition count puts a program's state on the partition its
events come from. Participant registrations are also copied to their organisation's partition,
where retention is computed from them together with hr-events.
"""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2

from services.common.events import TOPIC_BY_PAYLOAD, partition_key

ORGANISATION_FACTS = frozenset({TOPIC_BY_PAYLOAD["participant_registered"]})


@lru_cache(maxsize=65_536)
def partition_for(key: bytes, partitions: int) -> int:
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def program_state_key(organization_id: str, program_id: str) -> str:
    return partition_key(organization_id, program_id).decode()


def organisation_state_key(organization_id: str) -> str:
    return partition_key(organization_id, "").decode()


@lru_cache(maxsize=65_536)
def destinations(topic: str, key: bytes) -> tuple[tuple[bytes, bool], ...]:
    """(state key, is the organisation copy) for each state a record must be folded into.

    Read from the record's key alone, so the ingest stage never parses an event; the agent
    checks that the envelope agrees with the key.
    """
    organisation, slash, program = key.partition(b"/")
    places = [(key, False)]
    if slash and program and topic in ORGANISATION_FACTS:
        places.append((organisation + b"/", True))
    return tuple(places)
