"""Where analytics keeps each event's effect: the partition of its program, or organisation.

Producers key events `org/program` (hr-events `org/`) with Kafka's default partitioner, so the
same murmur2 hash over the same partition count puts a program's state on the partition its
events come from. Participant registrations are also copied to their organisation's partition,
where retention is computed from them together with hr-events.
"""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2

from services.common.events import partition_key
from services.common.pb.mentoring.v1.events_pb2 import Event

ORGANISATION_FACTS = frozenset({"participant_registered"})


@lru_cache(maxsize=65_536)
def partition_for(key: bytes, partitions: int) -> int:
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def program_state_key(organization_id: str, program_id: str) -> str:
    return partition_key(organization_id, program_id).decode()


def organisation_state_key(organization_id: str) -> str:
    return partition_key(organization_id, "").decode()


def destinations(event: Event) -> list[tuple[str, bool]]:
    """(state key, is the organisation copy) for each place the event must be folded into."""
    env = event.envelope
    if not env.program_id:
        return [(organisation_state_key(env.organization_id), False)]
    places = [(program_state_key(env.organization_id, env.program_id), False)]
    if event.WhichOneof("payload") in ORGANISATION_FACTS:
        places.append((organisation_state_key(env.organization_id), True))
    return places
