"""NotificationService over gRPC (and HTTP/JSON): webhooks, preferences, the delivery log, calendar
feeds and the organisation's branding."""

from __future__ import annotations

from functools import partial

from grpc import aio

from services.common import clock
from services.common.config import WebhookSettings
from services.common.errors import FailedPrecondition
from services.common.pb.mentoring.v1 import notifications_pb2 as pb
from services.common.pb.mentoring.v1 import notifications_pb2_grpc
from services.common.storage import run_sync
from services.common.validation import require_id
from services.notifications import (
    addresses,
    branding,
    branding_store,
    calendar_feeds,
    convert,
    domain,
    egress,
    links,
    mail_store,
    paging,
    store,
)
from services.notifications.metrics import count


class NotificationServicer(notifications_pb2_grpc.NotificationServiceServicer):
    def __init__(self, settings: WebhookSettings, public_url: str = "") -> None:
        """`public_url`: where the service's pages are reached (calendar feed URLs)."""
        self._policy = addresses.NetworkPolicy.of(settings)
        self._public_url = public_url

    async def CreateWebhook(
        self, request: pb.CreateWebhookRequest, context: aio.ServicerContext
    ) -> pb.CreateWebhookResponse:
        organization_id = require_id("organization_id", request.organization_id)
        # The fields in order, the one that needs DNS last.
        addresses.target(request.url, self._policy)
        event_types = domain.event_types(request.event_types)
        description = domain.description(request.description)
        target = await egress.checked_target(request.url, self._policy)
        secret = domain.new_secret()
        endpoint = await run_sync(
            store.create_webhook,
            organization_id,
            target.url,
            event_types,
            description,
            secret,
            clock.now(),
        )
        return pb.CreateWebhookResponse(webhook=convert.webhook_message(endpoint), secret=secret)

    async def ListWebhooks(
        self, request: pb.ListWebhooksRequest, context: aio.ServicerContext
    ) -> pb.ListWebhooksResponse:
        organization_id = require_id("organization_id", request.organization_id)
        read = partial(
            store.list_webhooks, organization_id, include_deleted=request.include_deleted
        )
        found, token = await paging.page(request, read, lambda e: str(e.webhook_id))
        return pb.ListWebhooksResponse(
            webhooks=[convert.webhook_message(e) for e in found], next_page_token=token
        )

    async def DeleteWebhook(
        self, request: pb.DeleteWebhookRequest, context: aio.ServicerContext
    ) -> pb.Webhook:
        organization_id = require_id("organization_id", request.organization_id)
        webhook_id = require_id("webhook_id", request.webhook_id)
        endpoint, cancelled = await run_sync(
            store.delete_webhook, organization_id, webhook_id, clock.now()
        )
        if cancelled:
            count("cancelled", cancelled)
        return convert.webhook_message(endpoint)

    async def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: aio.ServicerContext
    ) -> pb.ListWebhookDeliveriesResponse:
        organization_id = require_id("organization_id", request.organization_id)
        webhook_id = require_id("webhook_id", request.webhook_id)
        read = partial(store.list_deliveries, organization_id, webhook_id)
        found, token = await paging.page(request, read, paging.order_key)
        return pb.ListWebhookDeliveriesResponse(
            deliveries=[convert.delivery_message(d) for d in found], next_page_token=token
        )

    async def GetNotificationPreferences(
        self, request: pb.GetNotificationPreferencesRequest, context: aio.ServicerContext
    ) -> pb.NotificationPreferences:
        organization_id = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        doc = await run_sync(mail_store.get_preferences, organization_id, participant_id)
        return convert.preferences_message(organization_id, participant_id, doc)

    async def SetNotificationPreferences(
        self, request: pb.SetNotificationPreferencesRequest, context: aio.ServicerContext
    ) -> pb.NotificationPreferences:
        organization_id = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        rules = convert.rules_from(request)
        doc = await run_sync(
            mail_store.set_preferences, organization_id, participant_id, rules, clock.now()
        )
        return convert.preferences_message(organization_id, participant_id, doc)

    async def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: aio.ServicerContext
    ) -> pb.ListDeliveriesResponse:
        organization_id = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        read = partial(mail_store.list_messages, organization_id, participant_id)
        found, token = await paging.page(request, read, paging.order_key)
        return pb.ListDeliveriesResponse(
            deliveries=[convert.message_delivery(m) for m in found], next_page_token=token
        )

    async def CreateCalendarFeed(
        self, request: pb.CreateCalendarFeedRequest, context: aio.ServicerContext
    ) -> pb.CreateCalendarFeedResponse:
        organization_id = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        if not self._public_url:
            raise FailedPrecondition("calendar feeds need NOTIFICATIONS_PUBLIC_URL")
        token = links.new_token()
        now = clock.now()
        await run_sync(
            calendar_feeds.create, organization_id, participant_id, links.token_hash(token), now
        )
        response = pb.CreateCalendarFeedResponse(url=links.feed_url(self._public_url, token))
        response.created_at.FromDatetime(now)
        return response

    async def RevokeCalendarFeed(
        self, request: pb.RevokeCalendarFeedRequest, context: aio.ServicerContext
    ) -> pb.RevokeCalendarFeedResponse:
        organization_id = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        revoked = await run_sync(calendar_feeds.revoke, organization_id, participant_id)
        return pb.RevokeCalendarFeedResponse(revoked=revoked)

    async def SetOrganizationBranding(
        self, request: pb.SetOrganizationBrandingRequest, context: aio.ServicerContext
    ) -> pb.OrganizationBranding:
        organization_id = require_id("organization_id", request.organization_id)
        given = branding.checked(request.display_name, request.brand_colour, request.portal_url)
        doc = await run_sync(branding_store.put, organization_id, given, clock.now())
        return convert.branding_message(organization_id, doc)

    async def GetOrganizationBranding(
        self, request: pb.GetOrganizationBrandingRequest, context: aio.ServicerContext
    ) -> pb.OrganizationBranding:
        organization_id = require_id("organization_id", request.organization_id)
        doc = await run_sync(branding_store.get, organization_id)
        return convert.branding_message(organization_id, doc)
