"""The notifications consumer: every platform event, queued for the webhooks that want it."""

from __future__ import annotations

from collections.abc import Callable

from services.common import clock
from services.common.kafka import Delivered, Rejected
from services.common.storage import run_sync
from services.notifications import domain, store
from services.notifications.metrics import count

GROUP = "notifications"
TOPICS = domain.EVENT_TYPES
__all__ = ["GROUP", "TOPICS", "WebhookConsumer"]


class WebhookConsumer:
    """Queues a delivery per event and subscribed endpoint of its organisation, then wakes the
    sender. The pipeline has checked each event; none is refused here."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    async def handle(self, batch: list[Delivered]) -> list[Rejected]:
        consumed = [
            store.Consumed(
                item.event, item.record.partition, item.record.offset, item.record.key or b""
            )
            for item in batch
        ]
        queued = await run_sync(store.enqueue, consumed, clock.now())
        if queued:
            count("queued", queued)
            self._wake()
        return []
