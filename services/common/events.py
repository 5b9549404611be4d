"""The event envelope: building, keying, routing and decoding platform events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.common import clock
from services.common.pb.mentoring.v1 import bounds_pb2
from services.common.pb.mentoring.v1.common_pb2 import EventEnvelope
from services.common.pb.mentoring.v1.events_pb2 import DeadLetter, Event
from services.common.validation import ID_PATTERN

# The largest message the platform sends: an event on Kafka, or a reply to a client. An event
# may hold up to 100,000 list items (a bulk run's unmatched mentees: 2.9 MB for 30,000 of them),
# past Kafka's 1 MB default, which left such a run's completion unpublishable, and past gRPC
# clients' 4 MB default for GetMatchingRun. The broker takes as much (message.max.bytes, set by
# mentoring/engines/kafka.py and docker-compose.yml; tests/deploy checks they agree), and the
# CLI's channels receive as much (mentoring/clients.py).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

SCHEMA_VERSION = 1
DEAD_LETTER_TOPIC = "dead-letter"

# Events about the whole organisation rather than one program: their program_id is empty.
ORGANISATION_WIDE: frozenset[str] = frozenset({"hr_event"})
# Payload field of Event -> the topic its events travel on: the name with hyphens, except
# for the HR systems' topic, named for what it carries.
TOPIC_BY_PAYLOAD: dict[str, str] = {
    field.name: {"hr_event": "hr-events"}.get(field.name, field.name.replace("_", "-"))
    for field in Event.DESCRIPTOR.oneofs_by_name["payload"].fields
}
EVENT_TOPICS: tuple[str, ...] = tuple(TOPIC_BY_PAYLOAD.values())
PROGRAM_TOPICS: tuple[str, ...] = tuple(
    topic for payload, topic in TOPIC_BY_PAYLOAD.items() if payload not in ORGANISATION_WIDE
)
ALL_TOPICS: tuple[str, ...] = (*EVENT_TOPICS, DEAD_LETTER_TOPIC)

_PAYLOAD_BY_MESSAGE: dict[str, str] = {
    field.message_type.full_name: field.name
    for field in Event.DESCRIPTOR.oneofs_by_name["payload"].fields
    if field.message_type is not None
}


# Bounds of a field without its own in bounds.proto: the longest free text an API takes is a
# 5,000-character note; lists are tens of items (skills, questions, choices).
MAX_LENGTH = 10_000
MAX_ITEMS = 1_000

# What datetime can hold: a Timestamp outside it decodes, then fails every handler that reads it.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_SECONDS = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(seconds=1)
_MAX_SECONDS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(seconds=1)


class EventDecodeError(ValueError):
    """A message that is not a valid platform event; the reason goes to the dead-letter topic."""


def new_event(
    *,
    producer: str,
    organization_id: str,
    program_id: str,
    payload: Message,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """Wrap a payload in the envelope. Pass a stable event_id when a retry must not duplicate."""
    event_type = _PAYLOAD_BY_MESSAGE[payload.DESCRIPTOR.full_name]
    envelope = EventEnvelope(
        event_id=event_id or str(uuid.uuid4()),
        event_type=event_type,
        organization_id=organization_id,
        program_id=program_id,
        producer=producer,
        schema_version=SCHEMA_VERSION,
    )
    envelope.occurred_at.FromDatetime(occurred_at or clock.now())
    event = Event(envelope=envelope)
    getattr(event, event_type).CopyFrom(payload)
    return event


def stable_event_id(*parts: str) -> str:
    """An event id derived from what the event is about, so a retried request reuses it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def partition_key(organization_id: str, program_id: str) -> bytes:
    # One key per program keeps every program's events in order on one partition, and lets
    # consumer-group members own whole programs.
    return f"{organization_id}/{program_id}".encode()


def scoped_id(event: Event) -> str:
    """The event's id within its organisation, `organization_id/event_id`: what handled events,
    the outbox and analytics key on, so an id one organisation's producer reuses (or guesses)
    never stands for another organisation's event."""
    return f"{event.envelope.organization_id}/{event.envelope.event_id}"


def topic_of(event: Event) -> str:
    return TOPIC_BY_PAYLOAD[event.envelope.event_type]


def decode_event(value: bytes | None, topic: str | None = None) -> Event:
    """Parse and check an event; raise EventDecodeError saying what is wrong with it."""
    if not value:
        raise EventDecodeError("empty message value")
    try:
        event = Event.FromString(value)
    except DecodeError as exc:
        raise EventDecodeError(f"not a protobuf mentoring.v1.Event: {exc}") from None
    env = event.envelope
    for field in ("event_id", "organization_id", "event_type"):
        if not getattr(env, field):
            raise EventDecodeError(f"envelope.{field} is missing")
    if not env.program_id and env.event_type not in ORGANISATION_WIDE:
        raise EventDecodeError("envelope.program_id is missing")
    if env.schema_version != SCHEMA_VERSION:
        raise EventDecodeError(f"unsupported envelope.schema_version {env.schema_version}")
    payload = event.WhichOneof("payload")
    if payload is None:
        raise EventDecodeError("no payload set")
    if payload != env.event_type:
        raise EventDecodeError(f"envelope.event_type {env.event_type!r} but payload is {payload!r}")
    if topic is not None and TOPIC_BY_PAYLOAD[payload] != topic:
        raise EventDecodeError(f"a {payload} event does not belong on topic {topic!r}")
    for field in ("event_id", "organization_id", "program_id"):
        given: str = getattr(env, field)
        if given and not ID_PATTERN.match(given):
            raise EventDecodeError(f"envelope.{field} is not an id (1-64 letters, digits, . _ : -)")
    _check_fields(event, "")
    return event


_SCALAR, _MESSAGE, _TIMESTAMP = range(3)


@cache
def _rules(field: Any) -> tuple[int, int, int, bool, bool]:
    """A field's bounds and shape, read once: every event checks every field it sets."""
    options = field.GetOptions()
    message_type = field.message_type
    is_map = message_type is not None and message_type.GetOptions().map_entry
    if is_map:
        kind = _SCALAR if message_type.fields_by_name["value"].message_type is None else _MESSAGE
    elif message_type is None:
        kind = _SCALAR
    else:
        kind = _TIMESTAMP if message_type.full_name == Timestamp.DESCRIPTOR.full_name else _MESSAGE
    return (
        _bound(options, bounds_pb2.max_length, MAX_LENGTH),
        _bound(options, bounds_pb2.max_items, MAX_ITEMS),
        kind,
        bool(field.is_repeated),
        bool(is_map),
    )


def _check_fields(message: Message, path: str) -> None:
    """Every field of the message, however deep, within its bounds (bounds.proto), and every
    Timestamp within what a datetime holds; the first one past names itself."""
    for field, value in message.ListFields():
        max_length, max_items, kind, repeated, is_map = _rules(field)
        name = field.name
        if repeated and len(value) > max_items:
            raise EventDecodeError(f"{path}{name} has {len(value)} items, more than {max_items}")
        if is_map:
            _check_length(f"{path}{name}", list(value), max_length)
            places: Any = ((f"[{str(k)[:40]!r}]", v) for k, v in value.items())
        elif repeated:
            places = ((f"[{i}]", v) for i, v in enumerate(value))
        else:
            places = (("", value),)
        for where, item in places:
            if kind == _SCALAR:
                if isinstance(item, str | bytes) and len(item) > max_length:
                    raise EventDecodeError(
                        f"{path}{name}{where} is longer than {max_length} characters"
                    )
            elif kind == _TIMESTAMP:
                if not (_MIN_SECONDS <= item.seconds <= _MAX_SECONDS and 0 <= item.nanos < 10**9):
                    raise EventDecodeError(
                        f"{path}{name}{where} is out of range "
                        f"(seconds={item.seconds}, nanos={item.nanos})"
                    )
            else:
                _check_fields(item, f"{path}{name}{where}.")


def _check_length(where: str, values: list[Any], limit: int) -> None:
    for value in values:
        if isinstance(value, str | bytes) and len(value) > limit:
            raise EventDecodeError(f"{where} is longer than {limit} characters")


def _bound(options: Any, extension: Any, default: int) -> int:
    return int(options.Extensions[extension]) if options.HasExtension(extension) else default


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    group: str,
) -> bytes:
    """The dead-letter record for a message a consumer gave up on: the message whole, and why."""
    letter = DeadLetter(
        source_topic=topic,
        partition=partition,
        offset=offset,
        key=key or b"",
        value=value or b"",
        reason=reason,
        consumer_group=group,
    )
    letter.failed_at.FromDatetime(datetime.now(UTC))
    return letter.SerializeToString()
