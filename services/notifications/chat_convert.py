"""Stored chat channels as API messages: their webhook URLs masked, never whole."""

from __future__ import annotations

from services.common.errors import InvalidArgument
from services.common.pb.mentoring.v1 import notifications_pb2 as pb
from services.notifications import chat, chat_domain, convert
from services.notifications.documents import ChatChannel, ChatPost

KINDS = {
    pb.NOTIFICATION_CHANNEL_SLACK: chat.Kind.SLACK,
    pb.NOTIFICATION_CHANNEL_TEAMS: chat.Kind.TEAMS,
}
CHANNELS = {kind: channel for channel, kind in KINDS.items()}


def kind_of(channel: pb.NotificationChannel.ValueType) -> chat.Kind:
    if channel not in KINDS:
        raise InvalidArgument(
            "kind", "must be NOTIFICATION_CHANNEL_SLACK or NOTIFICATION_CHANNEL_TEAMS"
        )
    return KINDS[channel]


def channel_message(c: ChatChannel) -> pb.ChatChannel:
    return pb.ChatChannel(
        organization_id=c.organization_id,
        channel_id=c.channel_id,
        program_id=c.program_id,
        kind=CHANNELS[chat.Kind(c.kind)],
        masked_webhook_url=chat_domain.mask(c.webhook_url),
        announcements=c.announcements,
        daily_digest=c.daily_digest,
        created_at=convert.stamp(c.created_at),
        updated_at=convert.stamp(c.updated_at),
        deleted_at=convert.stamp(c.deleted_at),
    )


def post_message(p: ChatPost) -> pb.ChatPost:
    return pb.ChatPost(
        post_id=p.post_id,
        channel_id=p.channel_id,
        program_id=p.program_id,
        purpose=p.purpose,
        status=convert.STATUS[p.status],
        **convert.attempts_of(p),
    )
