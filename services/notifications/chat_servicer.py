"""NotificationService's chat channel RPCs (Slack and Teams incoming webhooks), beside the
rest of the service's in servicer.py."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from grpc import aio

from services.common import clock
from services.common.config import WebhookSettings
from services.common.errors import InvalidArgument
from services.common.pb.mentoring.v1 import notifications_pb2 as pb
from services.common.storage import run_sync
from services.common.validation import require_id
from services.notifications import (
    addresses,
    chat_convert,
    chat_domain,
    chat_store,
    egress,
    paging,
)
from services.notifications.metrics import count_message
from services.notifications.servicer import NotificationServicer

URL_FIELD = "webhook_url"


def _program_id(value: str) -> str:
    return require_id("program_id", value) if value else ""


class ChatServicer(NotificationServicer):
    """NotificationService whole: its other RPCs, and the chat channels'. `wake` tells the
    chat sender that posts were queued."""

    def __init__(
        self, settings: WebhookSettings, *args: Any, wake: Callable[[], None], **kwargs: Any
    ) -> None:
        super().__init__(settings, *args, **kwargs)
        self._chat_policy = addresses.NetworkPolicy.of(settings)
        self._wake_chat = wake

    async def _checked_url(self, url: str) -> str:
        """The webhooks' address policy, naming this request's field."""
        try:
            addresses.target(url, self._chat_policy)
            return (await egress.checked_target(url, self._chat_policy)).url
        except InvalidArgument as exc:
            problem = str(exc).removeprefix(f"{exc.field}: ")
            raise InvalidArgument(URL_FIELD, problem) from None

    async def SetChatChannel(
        self, request: pb.SetChatChannelRequest, context: aio.ServicerContext
    ) -> pb.ChatChannel:
        organization_id = require_id("organization_id", request.organization_id)
        program_id = _program_id(request.program_id)
        kind = chat_convert.kind_of(request.kind)
        chat_domain.purposes(request.announcements, request.daily_digest)
        url = await self._checked_url(request.webhook_url)
        found = await run_sync(
            chat_store.set_channel,
            organization_id,
            program_id,
            kind,
            url,
            request.announcements,
            request.daily_digest,
            clock.now(),
        )
        return chat_convert.channel_message(found)

    async def ListChatChannels(
        self, request: pb.ListChatChannelsRequest, context: aio.ServicerContext
    ) -> pb.ListChatChannelsResponse:
        organization_id = require_id("organization_id", request.organization_id)
        found = await run_sync(chat_store.list_channels, organization_id, request.include_deleted)
        return pb.ListChatChannelsResponse(
            channels=[chat_convert.channel_message(c) for c in found]
        )

    async def DeleteChatChannel(
        self, request: pb.DeleteChatChannelRequest, context: aio.ServicerContext
    ) -> pb.ChatChannel:
        organization_id = require_id("organization_id", request.organization_id)
        channel_id = require_id("channel_id", request.channel_id)
        found, cancelled = await run_sync(
            chat_store.delete_channel, organization_id, channel_id, clock.now()
        )
        if cancelled:
            count_message("cancelled", cancelled, channel=found.kind)
        return chat_convert.channel_message(found)

    async def SendChatDigestNow(
        self, request: pb.SendChatDigestNowRequest, context: aio.ServicerContext
    ) -> pb.SendChatDigestNowResponse:
        organization_id = require_id("organization_id", request.organization_id)
        channel_id = require_id("channel_id", request.channel_id)
        kind, programs = await run_sync(
            chat_store.make_digest_now, organization_id, channel_id, clock.now()
        )
        if programs:
            count_message("queued", len(programs), channel=kind)
            self._wake_chat()
        return pb.SendChatDigestNowResponse(program_ids=programs)

    async def ListChatPosts(
        self, request: pb.ListChatPostsRequest, context: aio.ServicerContext
    ) -> pb.ListChatPostsResponse:
        organization_id = require_id("organization_id", request.organization_id)
        channel_id = require_id("channel_id", request.channel_id)
        read = partial(chat_store.list_posts, organization_id, channel_id)
        found, token = await paging.page(request, read, paging.order_key)
        return pb.ListChatPostsResponse(
            posts=[chat_convert.post_message(p) for p in found], next_page_token=token
        )
