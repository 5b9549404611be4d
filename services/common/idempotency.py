"""Which events a consumer has already handled, so a redelivery changes nothing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mongoengine import DateTimeField, Document, StringField

from services.common import clock, metrics
from services.common.events import topic_of
from services.common.pb.mentoring.v1.events_pb2 import Event


class ProcessedEvent(Document):
    # The event id is the primary key: two workers racing to record it cannot both succeed.
    event_id = StringField(primary_key=True)
    consumer = StringField(required=True)
    processed_at = DateTimeField(required=True)
    meta = {"collection": "processed_events"}


def unprocessed(events: Sequence[Event], group: str) -> list[Event]:
    """The events not handled before, each once; duplicates are counted and dropped."""
    ids = [e.envelope.event_id for e in events]
    seen = set(ProcessedEvent.objects(event_id__in=ids).scalar("event_id")) if ids else set()
    fresh: list[Event] = []
    for event in events:
        if event.envelope.event_id in seen:
            metrics.EVENTS_DUPLICATE.labels(topic_of(event), group).inc()
            continue
        seen.add(event.envelope.event_id)
        fresh.append(event)
    return fresh


def mark_processed(events: Iterable[Event], group: str) -> None:
    """Record events as handled. Call after applying them: handlers must tolerate a replay
    of what they applied just before a crash, and they do by using conditional updates."""
    now = clock.now()
    for event in events:
        ProcessedEvent.objects(event_id=event.envelope.event_id).update_one(
            upsert=True, set_on_insert__consumer=group, set_on_insert__processed_at=now
        )
