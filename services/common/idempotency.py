"""Which events a consumer has already handled, so a redelivery changes nothing; and which
client requests an RPC has already served, so a retried call changes nothing either."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta

from google.protobuf.message import Message
from mongoengine import DateTimeField, Document, StringField
from mongoengine.errors import NotUniqueError

from services.common import clock, metrics
from services.common.errors import AlreadyExists
from services.common.events import scoped_id, topic_of
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import insert_new

# How long a handled event is remembered: a redelivery comes within minutes (a rebalance, a
# restart); a week covers a consumer group rewound by an operator as well.
PROCESSED_EVENT_DAYS = 7


class ProcessedEvent(Document):
    # Keyed by organisation and event id: an event id that one organisation's producer reuses
    # (or guesses) can never mark another organisation's event as handled. The key is the
    # primary key, so two workers racing to record it cannot both succeed.
    key = StringField(primary_key=True)
    organization_id = StringField(required=True)
    event_id = StringField(required=True)
    consumer = StringField(required=True)
    processed_at = DateTimeField(required=True)
    # Removed by the server once past (a TTL index), so the collection stays a week deep.
    expires_at = DateTimeField(required=True)
    meta = {
        "collection": "processed_events",
        "indexes": [{"fields": ["expires_at"], "expireAfterSeconds": 0}],
    }


def unprocessed(events: Sequence[Event], group: str) -> list[Event]:
    """The events not handled before, each once; duplicates are counted and dropped."""
    keys = [scoped_id(e) for e in events]
    seen = set(ProcessedEvent.objects(key__in=keys).scalar("key")) if keys else set()
    fresh: list[Event] = []
    for event in events:
        key = scoped_id(event)
        if key in seen:
            metrics.EVENTS_DUPLICATE.labels(topic_of(event), group).inc()
            continue
        seen.add(key)
        fresh.append(event)
    return fresh


def mark_processed(events: Iterable[Event], group: str) -> None:
    """Record events as handled, in one round trip. Call after applying them: handlers must
    tolerate a replay of what they applied just before a crash, and they do by using
    conditional updates."""
    now = clock.now()
    expires = now + timedelta(days=PROCESSED_EVENT_DAYS)
    records = [
        {
            "_id": scoped_id(event),
            "organization_id": event.envelope.organization_id,
            "event_id": event.envelope.event_id,
            "consumer": group,
            "processed_at": now,
            "expires_at": expires,
        }
        for event in events
    ]
    # Recorded before (a replayed batch), or by another worker at the same moment: left out.
    insert_new(ProcessedEvent, records)


# --- client request ids (idempotency keys) -------------------------------------------------


class ClientRequest(Document):
    """A request id a client sent, scoped by organisation, and the id of what its first call
    created. The unique key makes two concurrent first calls agree on one result."""

    organization_id = StringField(required=True)
    request_id = StringField(required=True)
    # The RPC, e.g. "ScheduleSession": a request id names one request, not one per RPC.
    operation = StringField(required=True)
    # sha256 of the request as sent: a retry sends the same bytes.
    fingerprint = StringField(required=True)
    result_id = StringField(required=True)
    created_at = DateTimeField(required=True)
    meta = {
        "collection": "client_requests",
        "indexes": [{"fields": ["organization_id", "request_id"], "unique": True}],
    }


def fingerprint(request: Message) -> str:
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


def claim_request(organization_id: str, request_id: str, operation: str, digest: str) -> str:
    """The id the request's result gets: a new one on the first call, the first call's on a
    retry. The caller creates the result under that id unless it exists already (a retry after
    a crash between the two writes then finishes the job). A request id used before for a
    different request is refused (ALREADY_EXISTS naming request_id)."""
    candidate = str(uuid.uuid4())
    try:
        ClientRequest(
            organization_id=organization_id,
            request_id=request_id,
            operation=operation,
            fingerprint=digest,
            result_id=candidate,
            created_at=clock.now(),
        ).save(force_insert=True)
        return candidate
    except NotUniqueError:
        stored = ClientRequest.objects.get(organization_id=organization_id, request_id=request_id)
    if (stored.operation, stored.fingerprint) != (operation, digest):
        raise AlreadyExists("request_id: used already for a different request")
    return str(stored.result_id)


def result_id(organization_id: str, request_id: str, operation: str, digest: str) -> str:
    """The id for what a request creates: claimed under its request id when it has one (see
    claim_request), otherwise a new one."""
    if not request_id:
        return str(uuid.uuid4())
    return claim_request(organization_id, request_id, operation, digest)
