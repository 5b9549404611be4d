"""A delivery given up on, as the platform's dead-letter topic takes it: the consumed record it
came from, rebuilt from what the delivery kept (webhooks and messages alike)."""

from __future__ import annotations

from aiokafka import ConsumerRecord


def record(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes
) -> ConsumerRecord:
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key or b"",
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value),
        headers=(),
    )
