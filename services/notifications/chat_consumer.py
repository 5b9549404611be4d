"""The notifications consumer of chat posts: each announcement once per channel it goes to,
whatever the number of its recipients' events, and what the daily digests count; then it
wakes the chat sender."""

from __future__ import annotations

from collections.abc import Callable

from services.common import clock
from services.common.kafka import Delivered, Rejected
from services.common.storage import run_sync
from services.notifications import chat_store
from services.notifications.metrics import count_message
from services.notifications.store import Consumed


class ChatConsumer:
    """Refuses nothing: events without a chat channel to go to are left alone."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    async def handle(self, batch: list[Delivered]) -> list[Rejected]:
        consumed = [
            Consumed(item.event, item.record.partition, item.record.offset, item.record.key or b"")
            for item in batch
        ]
        queued = await run_sync(chat_store.consume, consumed, clock.now())
        for kind, amount in queued.items():
            count_message("queued", amount, channel=kind)
        if queued:
            self._wake()
        return []
