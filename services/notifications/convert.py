"""Stored webhooks and deliveries as API messages, and events as the JSON deliveries carry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.errors import InvalidArgument
from services.common.pb.mentoring.v1 import notifications_pb2 as pb
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.notifications import compose, domain, mail_store, preferences
from services.notifications.documents import (
    DeliveryRow,
    Message,
    OrganizationBranding,
    Preferences,
    WebhookDelivery,
    WebhookEndpoint,
)
from services.notifications.invitations import zone

STATUS = {
    domain.PENDING: pb.WEBHOOK_DELIVERY_STATUS_PENDING,
    domain.DELIVERED: pb.WEBHOOK_DELIVERY_STATUS_DELIVERED,
    domain.DEAD_LETTERED: pb.WEBHOOK_DELIVERY_STATUS_DEAD_LETTERED,
    domain.CANCELLED: pb.WEBHOOK_DELIVERY_STATUS_CANCELLED,
}


def stamp(moment: datetime | None) -> Timestamp | None:
    """A stored time (naive UTC from the database) as a message's timestamp."""
    if moment is None:
        return None
    value = Timestamp()
    value.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return value


def webhook_message(endpoint: WebhookEndpoint) -> pb.Webhook:
    """The endpoint as callers see it: never its secret."""
    return pb.Webhook(
        organization_id=endpoint.organization_id,
        webhook_id=endpoint.webhook_id,
        url=endpoint.url,
        event_types=list(endpoint.event_types),
        description=endpoint.description,
        created_at=stamp(endpoint.created_at),
        deleted_at=stamp(endpoint.deleted_at),
    )


def delivery_message(d: WebhookDelivery) -> pb.WebhookDelivery:
    return pb.WebhookDelivery(
        delivery_id=d.delivery_id,
        webhook_id=d.webhook_id,
        event_id=d.event_id,
        event_type=d.event_type,
        program_id=d.program_id,
        status=STATUS[d.status],
        **attempts_of(d),
    )


def attempts_of(row: DeliveryRow) -> dict[str, Any]:
    """A delivery log row's attempts, as every log's API message names them."""
    return {
        "attempts": row.attempts,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "created_at": stamp(row.created_at),
        "last_attempt_at": stamp(row.last_attempt_at),
        "next_attempt_at": stamp(row.next_attempt_at) if row.status == domain.PENDING else None,
        "delivered_at": stamp(row.delivered_at),
    }


def event_body(event: bytes) -> bytes:
    """The event in protobuf's JSON mapping (camelCase, as the HTTP/JSON API answers): a portal
    reads it with the same generated types as the API's answers."""
    return json_format.MessageToJson(Event.FromString(event), indent=None).encode()


# --- messages to people -------------------------------------------------------------------

CHANNELS = {preferences.EMAIL: pb.NOTIFICATION_CHANNEL_EMAIL}
CATEGORIES = {
    preferences.NUDGES: pb.NOTIFICATION_CATEGORY_NUDGES,
    preferences.ANNOUNCEMENTS: pb.NOTIFICATION_CATEGORY_ANNOUNCEMENTS,
    preferences.MATCHES: pb.NOTIFICATION_CATEGORY_MATCHES,
    preferences.SESSIONS: pb.NOTIFICATION_CATEGORY_SESSIONS,
}
MESSAGE_STATUS = {
    mail_store.PENDING: pb.NOTIFICATION_DELIVERY_STATUS_PENDING,
    mail_store.DELIVERED: pb.NOTIFICATION_DELIVERY_STATUS_DELIVERED,
    mail_store.DEAD_LETTERED: pb.NOTIFICATION_DELIVERY_STATUS_DEAD_LETTERED,
    mail_store.SUPPRESSED: pb.NOTIFICATION_DELIVERY_STATUS_SUPPRESSED,
    mail_store.DIGEST: pb.NOTIFICATION_DELIVERY_STATUS_DIGEST,
    mail_store.DIGESTED: pb.NOTIFICATION_DELIVERY_STATUS_DIGESTED,
    mail_store.CANCELLED: pb.NOTIFICATION_DELIVERY_STATUS_CANCELLED,
}
MINUTES_PER_DAY = 24 * 60


def rules_from(request: pb.SetNotificationPreferencesRequest) -> preferences.Rules:
    """The request's preferences, checked; a bad field is named with its index."""
    by_category = {v: k for k, v in CATEGORIES.items()}
    by_channel = {v: k for k, v in CHANNELS.items()}
    disabled: set[str] = set()
    seen: set[tuple[int, int]] = set()
    for index, given in enumerate(request.categories):
        where = f"categories[{index}]"
        if given.category not in by_category:
            raise InvalidArgument(f"{where}.category", "must be a category")
        if given.channel not in by_channel:
            raise InvalidArgument(
                f"{where}.channel",
                "must be NOTIFICATION_CHANNEL_EMAIL: Slack and Teams are configured per "
                "organisation, not per participant",
            )
        if (given.category, given.channel) in seen:
            raise InvalidArgument(where, "names its category and channel a second time")
        seen.add((given.category, given.channel))
        if not given.enabled:
            disabled.add(preferences.key(by_category[given.category], by_channel[given.channel]))
    quiet = request.quiet_hours
    for name in ("start_minute", "end_minute"):
        if getattr(quiet, name) >= MINUTES_PER_DAY:
            raise InvalidArgument(f"quiet_hours.{name}", f"must be below {MINUTES_PER_DAY}")
    time_zone = request.time_zone.strip()
    if time_zone and zone(time_zone) is UTC and time_zone.upper() != "UTC":
        raise InvalidArgument("time_zone", f"{time_zone[:60]!r} is not an IANA time zone name")
    return preferences.Rules(
        disabled=frozenset(disabled),
        daily_digest=request.daily_digest,
        quiet_start=quiet.start_minute,
        quiet_end=quiet.end_minute,
        time_zone=time_zone,
    )


def preferences_message(
    organization_id: str, participant_id: str, doc: Preferences | None
) -> pb.NotificationPreferences:
    rules = mail_store.rules_of(doc)
    return pb.NotificationPreferences(
        organization_id=organization_id,
        participant_id=participant_id,
        categories=[
            pb.CategoryPreference(
                category=category, channel=channel, enabled=rules.enabled(c_name, ch_name)
            )
            for c_name, category in CATEGORIES.items()
            for ch_name, channel in CHANNELS.items()
        ],
        daily_digest=rules.daily_digest,
        quiet_hours=(
            pb.QuietHours(start_minute=rules.quiet_start, end_minute=rules.quiet_end)
            if rules.has_quiet_hours
            else None
        ),
        time_zone=rules.time_zone,
        updated_at=stamp(doc.updated_at) if doc is not None else None,
    )


def message_delivery(m: Message) -> pb.NotificationDelivery:
    return pb.NotificationDelivery(
        delivery_id=m.message_id,
        participant_id=m.participant_id,
        channel=CHANNELS.get(m.channel, pb.NOTIFICATION_CHANNEL_UNSPECIFIED),
        category=CATEGORIES.get(m.category, pb.NOTIFICATION_CATEGORY_UNSPECIFIED),
        template=m.template,
        event_id=m.event_id,
        event_type=m.event_type,
        program_id=m.program_id,
        status=MESSAGE_STATUS[m.status],
        address=m.address,
        digest_id=m.digest_id,
        **attempts_of(m),
    )


def branding_message(
    organization_id: str, doc: OrganizationBranding | None
) -> pb.OrganizationBranding:
    """What mails show: the stored branding, or the fallback compose.brand_of makes (portal
    empty: the deployment's)."""
    brand = compose.brand_of(organization_id, "", doc)
    return pb.OrganizationBranding(
        organization_id=organization_id,
        display_name=brand.name,
        brand_colour=brand.colour,
        portal_url=brand.portal_url,
        updated_at=stamp(doc.updated_at) if doc is not None else None,
    )
