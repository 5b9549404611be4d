"""Sends due webhook deliveries: claims them, POSTs each signed, records the outcome, and
dead-letters those out of attempts, in the loop every channel runs (delivery_loop.py)."""

from __future__ import annotations

import time

import aiohttp

from services.common import clock
from services.common.config import WebhookSettings
from services.common.errors import InvalidArgument
from services.common.kafka import EventPublisher
from services.common.storage import run_sync
from services.notifications import (
    addresses,
    convert,
    delivery_loop,
    outcomes,
    signing,
    store,
)
from services.notifications.documents import WebhookDelivery
from services.notifications.metrics import WEBHOOK_ATTEMPT_SECONDS, count
from services.notifications.outcomes import Outcome


class WebhookSender(delivery_loop.PostingLoop[store.Claimed, WebhookDelivery]):
    """Wakes when the consumer queues deliveries (delivery_loop.DeliveryLoop)."""

    name = "webhook"
    # Undeliverable webhooks, beside the platform's other dead letters.
    dead_letter_group = "notifications-webhooks"

    def __init__(
        self,
        settings: WebhookSettings,
        publisher: EventPublisher,
        interval: float,
        grace_seconds: float = 5.0,
    ) -> None:
        super().__init__(store, settings, publisher, interval, grace_seconds)

    def _task_name(self, claimed: store.Claimed) -> str:
        return f"webhook-{claimed.delivery.pk}"

    async def _deliver(self, claimed: store.Claimed) -> None:
        attempt = await post(self.session, self._policy, self._settings.timeout_seconds, claimed)
        count("sent")
        count("delivered" if attempt.delivered else "failed")
        delivery = claimed.delivery
        following = await run_sync(
            store.record_attempt, delivery, attempt, clock.now(), self._settings
        )
        await self._settle(delivery, attempt, following, count)

    def _describe(self, row: WebhookDelivery) -> str:
        return f"webhook {row.webhook_id}: delivery {row.delivery_id} of {row.event_type}"

    def _dead_letter_reason(self, row: WebhookDelivery) -> str:
        return f"webhook {row.webhook_id} delivery {row.delivery_id}: {row.last_error}"


async def post(
    session: aiohttp.ClientSession,
    policy: addresses.NetworkPolicy,
    timeout_seconds: float,
    claimed: store.Claimed,
) -> Outcome:
    """POST a delivery's event once, signed; what came of it. `session` is egress.session's."""
    delivery = claimed.delivery
    body = convert.event_body(delivery.event)
    headers = signing.headers(claimed.secret, delivery.delivery_id, clock.now(), body)
    started = time.monotonic()
    try:
        # Checked again: the configuration may have changed since its creation. Names are
        # checked as they resolve, by the session's resolver (egress.GuardedResolver).
        addresses.target(claimed.url, policy)
        async with session.post(
            claimed.url, data=body, headers=headers, allow_redirects=False
        ) as answer:
            status = answer.status
    except InvalidArgument as exc:
        return outcomes.temporary(str(exc).removeprefix(f"{addresses.FIELD}: "))
    except TimeoutError:
        return outcomes.temporary(f"no answer within {timeout_seconds:g}s")
    except (aiohttp.ClientError, OSError) as exc:
        return outcomes.temporary(f"{type(exc).__name__}: {exc}")
    finally:
        WEBHOOK_ATTEMPT_SECONDS.observe(time.monotonic() - started)
    # Every failure is worth retrying: an endpoint's owner fixes it, and the log shows why.
    if 200 <= status < 300:
        return outcomes.delivered(status)
    if 300 <= status < 400:
        return outcomes.temporary(f"HTTP {status}: redirects are not followed", status)
    return outcomes.temporary(f"HTTP {status}", status)
