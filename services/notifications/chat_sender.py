"""Posts to chat channels: makes each day's digests when their hour comes, claims due posts,
POSTs each (chat.post, through the webhooks' checked egress), records the outcome with the
webhooks' retry policy, and dead-letters what is given up on, in the loop every channel runs
(delivery_loop.py)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from functools import partial

import aiohttp

from services.common import clock
from services.common.config import ChatSettings, WebhookSettings
from services.common.errors import InvalidArgument
from services.common.kafka import EventPublisher
from services.common.storage import run_sync
from services.notifications import (
    addresses,
    chat,
    chat_domain,
    chat_store,
    delivery_loop,
    outcomes,
)
from services.notifications.documents import ChatPost
from services.notifications.metrics import count_message
from services.notifications.outcomes import Outcome

log = logging.getLogger(__name__)


class ChatSender(delivery_loop.PostingLoop[chat_store.Claimed, ChatPost]):
    """Wakes when posts are queued, and every `interval` seconds also for the daily digest
    hour (delivery_loop.DeliveryLoop)."""

    name = "chat"
    noun = "post"
    dead_letter_group = "notifications-chat"

    def __init__(
        self,
        settings: WebhookSettings,
        chat_settings: ChatSettings,
        publisher: EventPublisher,
        interval: float,
        grace_seconds: float = 5.0,
    ) -> None:
        super().__init__(chat_store, settings, publisher, interval, grace_seconds)
        self._hour = chat_settings.digest_hour_utc
        # The digest time this process has made digests for: once a day, not every round
        # (making them again would add nothing, at the cost of reading the day's ticks).
        self._digested: datetime | None = None

    async def _prepare_round(self) -> None:
        now = clock.now()
        until = chat_domain.last_digest_time(now, self._hour)
        if until == self._digested:
            return
        made = await run_sync(chat_store.make_daily_digests, until, now)
        await run_sync(chat_store.forget_old, now)
        self._digested = until
        for kind, amount in made.items():
            count_message("queued", amount, channel=kind)
        if made:
            log.info("chat digests until %s queued: %s", until.isoformat(), dict(made))

    def _task_name(self, claimed: chat_store.Claimed) -> str:
        return f"chat-{claimed.post.post_id}"

    async def _deliver(self, claimed: chat_store.Claimed) -> None:
        post = claimed.post
        outcome = await attempt(self.session, self._policy, self._settings, claimed)
        kind = post.kind
        count_message("sent" if outcome.delivered else "failed", channel=kind)
        following = await run_sync(
            chat_store.record_attempt, post, outcome, clock.now(), self._settings
        )
        log.info(
            "chat %s %s to %s channel %s (%s): attempt %d %s%s",
            post.purpose,
            post.post_id,
            kind,
            post.channel_id,
            chat_domain.mask(claimed.url),
            post.attempts + 1,
            outcome.verdict,
            f": {outcome.reason}" if outcome.reason else "",
        )
        await self._settle(post, outcome, following, partial(count_message, channel=kind))

    def _describe(self, row: ChatPost) -> str:
        return f"chat {row.purpose} {row.post_id} to channel {row.channel_id}"

    def _dead_letter_reason(self, row: ChatPost) -> str:
        return (
            f"chat {row.purpose} {row.post_id} to {row.kind} channel {row.channel_id}: "
            f"{row.last_error}"
        )


async def attempt(
    session: aiohttp.ClientSession,
    policy: addresses.NetworkPolicy,
    settings: WebhookSettings,
    claimed: chat_store.Claimed,
) -> Outcome:
    """One POST of a claimed post. The URL is checked again (the deployment's policy may have
    changed since it was set); names are checked as they resolve (egress.GuardedResolver)."""
    try:
        addresses.target(claimed.url, policy)
    except InvalidArgument as exc:
        return outcomes.temporary(str(exc).removeprefix(f"{addresses.FIELD}: "))
    message = chat.ChatMessage(chat.Kind(claimed.post.kind), json.loads(claimed.post.body))
    return await chat.post(session, claimed.url, message, timeout_seconds=settings.timeout_seconds)
