"""Sends due messages by e-mail: collects due digests, claims due messages, renders each
(mail.Renderer, with its invitation), sends it over SMTP (smtp.send), records the outcome with
the retry policy webhooks follow (domain.after_attempt), and dead-letters what is given up on,
in the loop every channel runs (delivery_loop.py). SMTP stays on the event loop (aiosmtplib);
rendering and the database run off it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from email.message import EmailMessage

from services.common import clock
from services.common.config import MailSettings
from services.common.kafka import EventPublisher
from services.common.storage import run_sync
from services.notifications import (
    branding_store,
    compose,
    delivery_loop,
    links,
    mail_store,
    notices,
    outcomes,
    smtp,
    unsubscribes,
)
from services.notifications.documents import Message
from services.notifications.mail import MissingData, Renderer, UnknownTemplate
from services.notifications.metrics import count_message


class MailSender(delivery_loop.DeliveryLoop[Message, Message]):
    """Wakes when the consumer queues messages, and every `interval` seconds also for the ends
    of quiet hours and digests that came due (delivery_loop.DeliveryLoop)."""

    name = "mail"
    dead_letter_group = "notifications-mail"

    def __init__(
        self,
        settings: MailSettings,
        publisher: EventPublisher,
        interval: float,
        grace_seconds: float = 5.0,
    ) -> None:
        super().__init__(
            mail_store,
            publisher,
            concurrency=settings.concurrency,
            timeout_seconds=settings.smtp.timeout_seconds,
            interval=interval,
            grace_seconds=grace_seconds,
        )
        self._settings = settings
        self._renderer = Renderer()
        self._tls = smtp.tls_context(settings.smtp)

    async def _prepare_round(self) -> None:
        made = await run_sync(mail_store.collect_digests, clock.now())
        if made:
            count_message("digest_made", made)

    def _task_name(self, message: Message) -> str:
        return f"mail-{message.message_id}"

    async def _deliver(self, message: Message) -> None:
        try:
            email, address = await run_sync(self._compose, message)
        except compose.Undeliverable as exc:
            outcome, address = outcomes.temporary(str(exc)), ""
        except (UnknownTemplate, MissingData, ValueError) as exc:
            outcome, address = outcomes.permanent(f"cannot render: {exc}"), ""
        else:
            outcome = await smtp.send(email, self._settings.smtp, context=self._tls)
        count_message("sent" if outcome.delivered else "failed")
        following = await run_sync(
            mail_store.record_attempt, message, outcome, address, clock.now(), self._settings
        )
        await self._settle(message, outcome, following, count_message)

    async def _delivered(self, row: Message) -> None:
        if row.template == notices.DIGEST:
            await run_sync(mail_store.finish_digested, row, clock.now())

    def _describe(self, row: Message) -> str:
        return f"message {row.message_id} ({row.template}) to {row.participant_id}"

    def _dead_letter_reason(self, row: Message) -> str:
        return (
            f"message {row.message_id} ({row.template}) to participant "
            f"{row.participant_id}: {row.last_error}"
        )

    def _compose(self, message: Message) -> tuple[EmailMessage, str]:
        """Blocking: reads the organisation's branding, the contacts (and a digest's
        messages)."""
        now = clock.now()
        branding = branding_store.get(message.organization_id)
        brand = compose.brand_of(message.organization_id, self._settings.portal_url, branding)
        items: list[Message] = []
        ids = compose.people(message)
        if message.template == notices.DIGEST:
            items = mail_store.digest_items(message)
            for item in items:
                ids += compose.people(item)
        found = mail_store.contacts(message.organization_id, ids)
        digest = [compose.digest_item(self._renderer, i, found, brand) for i in items]
        sender = self._settings.smtp.sender
        notification = compose.notification(message, found, brand, sender, now, digest)
        # Made once the recipient is known, so an undeliverable message leaves no link behind.
        unsubscribe = self._unsubscribe_url(message, items, now)
        notification = replace(notification, unsubscribe_url=unsubscribe)
        email = self._renderer.render(notification, sender=sender, now=now)
        return email, notification.recipient.email

    def _unsubscribe_url(self, message: Message, items: list[Message], now: datetime) -> str:
        """Blocking: a new one-click link for this e-mail's categories (a digest's: those of
        what it carries), its token's hash stored. Each attempt gets its own: a token cannot
        be read back from its hash."""
        if not self._settings.public_url:
            return ""
        digest = message.template == notices.DIGEST
        categories = [i.category for i in items] if digest else [message.category]
        token = links.new_token()
        unsubscribes.create(
            message.organization_id,
            message.participant_id,
            categories,
            links.token_hash(token),
            now,
        )
        return links.unsubscribe_url(self._settings.public_url, token)
