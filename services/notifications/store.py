"""Webhook endpoints and their delivery log. Blocking: call through storage.run_sync.

Every query names the organisation, or works on deliveries that the organisation's own events
created for the organisation's own endpoints (enqueue matches the two by organisation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.common import storage
from services.common.config import WebhookSettings
from services.common.errors import NotFound
from services.common.events import TOPIC_BY_PAYLOAD
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.notifications import delivery_log, domain
from services.notifications.documents import WebhookDelivery, WebhookEndpoint
from services.notifications.outcomes import Outcome

# A final delivery lets go of the event: the log keeps no personal data the event carried.
LOG = delivery_log.DeliveryLog(WebhookDelivery, released={"unset__event": True, "unset__key": True})


def create_webhook(
    organization_id: str,
    url: str,
    event_types: list[str],
    description: str,
    secret: str,
    now: datetime,
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        organization_id=organization_id,
        webhook_id=domain.new_webhook_id(now),
        url=url,
        event_types=event_types,
        description=description,
        secret=secret,
        created_at=now,
    )
    endpoint.save(force_insert=True)
    return endpoint


def list_webhooks(
    organization_id: str, size: int, after: str | None, include_deleted: bool
) -> list[WebhookEndpoint]:
    query = WebhookEndpoint.objects(organization_id=organization_id)
    if not include_deleted:
        query = query.filter(deleted_at=None)
    if after:
        query = query.filter(webhook_id__gt=after)
    return list(query.order_by("webhook_id").limit(size))


def _endpoint(organization_id: str, webhook_id: str) -> WebhookEndpoint:
    found = WebhookEndpoint.objects(organization_id=organization_id, webhook_id=webhook_id).first()
    if found is None:
        raise NotFound(f"webhook_id: no webhook {webhook_id!r}")
    return found


def delete_webhook(
    organization_id: str, webhook_id: str, now: datetime
) -> tuple[WebhookEndpoint, int]:
    """Mark it deleted, then cancel its pending deliveries; the endpoint and how many were
    cancelled. Repeating it finishes what a crash in between left; the sender also cancels
    what it finds due for a deleted endpoint."""
    endpoint = _endpoint(organization_id, webhook_id)
    if endpoint.deleted_at is None:
        WebhookEndpoint.objects(pk=endpoint.pk, deleted_at=None).update_one(set__deleted_at=now)
        endpoint.reload()
    cancelled = _cancel(
        WebhookDelivery.objects(
            organization_id=organization_id, webhook_id=webhook_id, status=domain.PENDING
        )
    )
    return endpoint, cancelled


def _cancel(query: Any) -> int:
    return int(
        query.update(set__status=domain.CANCELLED, unset__next_attempt_at=True, unset__event=True)
    )


def list_deliveries(
    organization_id: str, webhook_id: str, size: int, before: str | None
) -> list[WebhookDelivery]:
    """An endpoint's log, newest first; NOT_FOUND for an endpoint the organisation has not."""
    _endpoint(organization_id, webhook_id)
    query = WebhookDelivery.objects(organization_id=organization_id, webhook_id=webhook_id)
    if before:
        query = query.filter(order_key__lt=before)
    return list(query.order_by("-order_key").exclude("event", "key").limit(size))


@dataclass(frozen=True, slots=True)
class Consumed:
    """An event and where it was consumed (its dead letter names the place)."""

    event: Event
    partition: int
    offset: int
    key: bytes


def enqueue(items: Sequence[Consumed], now: datetime) -> int:
    """A pending delivery, due now, for each event and each live endpoint of the event's
    organisation subscribed to its type; an event queued before adds nothing. How many were
    added."""
    if not items:
        return 0
    organizations = {item.event.envelope.organization_id for item in items}
    types = {TOPIC_BY_PAYLOAD[item.event.envelope.event_type] for item in items}
    endpoints = WebhookEndpoint.objects(
        organization_id__in=sorted(organizations), event_types__in=sorted(types), deleted_at=None
    ).only("organization_id", "webhook_id", "event_types")
    by_subscription: dict[tuple[str, str], list[str]] = {}
    for endpoint in endpoints:
        for event_type in endpoint.event_types:
            key = (endpoint.organization_id, event_type)
            by_subscription.setdefault(key, []).append(endpoint.webhook_id)
    raws = []
    for item in items:
        env = item.event.envelope
        event_type = TOPIC_BY_PAYLOAD[env.event_type]
        for webhook_id in by_subscription.get((env.organization_id, event_type), []):
            delivery = domain.delivery_id(webhook_id, env.organization_id, env.event_id)
            document = WebhookDelivery(
                organization_id=env.organization_id,
                webhook_id=webhook_id,
                delivery_id=delivery,
                event_id=env.event_id,
                event_type=event_type,
                program_id=env.program_id,
                order_key=domain.order_key(now, delivery),
                status=domain.PENDING,
                created_at=now,
                next_attempt_at=now,
                event=item.event.SerializeToString(),
                partition=item.partition,
                offset=item.offset,
                key=item.key,
            )
            document.validate()
            raws.append(document.to_mongo().to_dict())
    return len(raws) - len(storage.insert_new(WebhookDelivery, raws))


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this process attempts now, with where it goes and the key to sign it."""

    delivery: WebhookDelivery
    url: str
    secret: str


def claim_due(now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
    """Up to `limit` deliveries due by now, each moved to `now + lease` so that no other
    process claims it meanwhile. Those of deleted endpoints are cancelled instead."""
    return LOG.claim_due(now, limit, lease, _claims, _cancel)


def _claims(due: list[WebhookDelivery]) -> list[Claimed | None]:
    endpoints = {
        (e.organization_id, e.webhook_id): e
        for e in WebhookEndpoint.objects(webhook_id__in=sorted({d.webhook_id for d in due}))
    }
    claims: list[Claimed | None] = []
    for delivery in due:
        endpoint = endpoints.get((delivery.organization_id, delivery.webhook_id))
        if endpoint is None or endpoint.deleted_at is not None:
            claims.append(None)
        else:
            claims.append(Claimed(delivery, endpoint.url, endpoint.secret))
    return claims


def record_attempt(
    delivery: WebhookDelivery, attempt: Outcome, now: datetime, settings: WebhookSettings
) -> domain.Next | None:
    """Store an attempt of a claimed delivery and where the delivery goes next (None when it
    was cancelled meanwhile: it stays cancelled, with the attempt logged). A dead-lettered
    delivery keeps its event until its dead letter is sent (dead_letters_unsent)."""
    return LOG.record_attempt(delivery, attempt, now, settings, log_if_cancelled=True)


def dead_letters_unsent(limit: int) -> list[WebhookDelivery]:
    """Dead-lettered deliveries whose dead letter is not yet published (they keep the event)."""
    return LOG.dead_letters_unsent(limit)


def dead_letter_sent(delivery: WebhookDelivery) -> None:
    LOG.dead_letter_sent(delivery)
