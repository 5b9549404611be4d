"""Run the notifications service: `python -m services.notifications`."""

from __future__ import annotations

from services.common import grpc_server, storage
from services.common.config import Settings
from services.common.kafka import (
    BatchHandler,
    Delivered,
    EventConsumer,
    EventPublisher,
    Rejected,
)
from services.common.pb.mentoring.v1 import notifications_pb2, notifications_pb2_grpc
from services.notifications import pages
from services.notifications.chat_consumer import ChatConsumer
from services.notifications.chat_sender import ChatSender
from services.notifications.chat_servicer import ChatServicer
from services.notifications.consumer import GROUP, TOPICS, WebhookConsumer
from services.notifications.mail_consumer import MailConsumer
from services.notifications.mailer import MailSender
from services.notifications.sender import WebhookSender


def both(*handlers: BatchHandler) -> BatchHandler:
    """Each handler sees the whole batch, in turn; their rejections together."""

    async def handle(batch: list[Delivered]) -> list[Rejected]:
        rejected: list[Rejected] = []
        for handler in handlers:
            rejected += await handler(batch)
        return rejected

    return handle


async def serve(settings: Settings) -> None:
    storage.connect(settings)
    await storage.run_sync(storage.prepare)
    # Publishes only dead letters: undeliverable webhooks and messages, and events the
    # consumer cannot read.
    publisher = EventPublisher(settings)
    # Retries come due between events: each sender looks for them every scheduler interval.
    sender = WebhookSender(
        settings.webhooks,
        publisher,
        settings.scheduler_interval_seconds,
        settings.shutdown_grace_seconds,
    )
    mailer = MailSender(
        settings.mail,
        publisher,
        settings.scheduler_interval_seconds,
        settings.shutdown_grace_seconds,
    )
    # Slack and Teams posts travel like webhooks (their address policy, TLS and retries).
    chat = ChatSender(
        settings.webhooks,
        settings.chat,
        publisher,
        settings.scheduler_interval_seconds,
        settings.shutdown_grace_seconds,
    )
    # One consumer group for webhooks, e-mail and chat: the handled-event records
    # (idempotency.py) are per service database, not per group, so a second group here would
    # skip the events the first had handled. Each handler is idempotent: a batch run again adds
    # nothing.
    consumer = EventConsumer(
        settings,
        topics=TOPICS,
        group=GROUP,
        handler=both(
            WebhookConsumer(sender.wake).handle,
            MailConsumer(mailer.wake).handle,
            ChatConsumer(chat.wake).handle,
        ),
        publisher=publisher,
    )
    binding = grpc_server.ServiceBinding.of(
        notifications_pb2.DESCRIPTOR,
        ChatServicer(settings.webhooks, settings.mail.public_url, wake=chat.wake),
        notifications_pb2_grpc.add_NotificationServiceServicer_to_server,
    )
    # Stopped in reverse: the consumer commits, then the senders finish their attempts, then
    # the publisher flushes their dead letters.
    await grpc_server.run_service(
        settings,
        [binding],
        [publisher, sender, mailer, chat, consumer],
        # Calendar feeds and unsubscribe links, on the HTTP port beside the RPCs.
        pages=pages.pages(settings.mail),
    )


def main() -> None:
    grpc_server.main("notifications", serve)


if __name__ == "__main__":
    main()
