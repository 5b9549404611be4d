"""Delivery rules without I/O: webhook event types and ids, and the retry schedule every
channel (webhooks, e-mail) follows after an attempt's outcome (outcomes.Outcome)."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common.errors import InvalidArgument
from services.common.events import PROGRAM_TOPICS
from services.notifications.outcomes import Outcome

# What an endpoint may subscribe to: the platform's event topics. hr-events are left out: they
# come from the organisation's own HR system, which has them already.
EVENT_TYPES: tuple[str, ...] = PROGRAM_TOPICS
MAX_DESCRIPTION = 500
SECRET_PREFIX = "whsec_"
# Standard Webhooks recommends 24 to 64 random bytes.
SECRET_BYTES = 32
# The most of an error message the delivery log keeps.
MAX_ERROR = 500

PENDING = "pending"
DELIVERED = "delivered"
DEAD_LETTERED = "dead_lettered"
CANCELLED = "cancelled"


def event_types(given: Sequence[str]) -> list[str]:
    """The requested event types, checked; the first bad one is named by its index."""
    if not given:
        raise InvalidArgument("event_types", f"give at least one of: {', '.join(EVENT_TYPES)}")
    seen: set[str] = set()
    for index, name in enumerate(given):
        if name not in EVENT_TYPES:
            raise InvalidArgument(
                f"event_types[{index}]",
                f"{name[:80]!r} is not an event type; one of: {', '.join(EVENT_TYPES)}",
            )
        if name in seen:
            raise InvalidArgument(f"event_types[{index}]", f"{name!r} is given twice")
        seen.add(name)
    return list(given)


def description(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_DESCRIPTION:
        raise InvalidArgument("description", f"must be at most {MAX_DESCRIPTION} characters")
    return text


def new_secret() -> str:
    """A signing secret in the Standard Webhooks format: whsec_ and the key in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_webhook_id(now: datetime) -> str:
    """Unique, and sorting by creation time: "wh-" with milliseconds and random hex."""
    return f"wh-{int(now.timestamp() * 1000):013d}-{secrets.token_hex(6)}"


def delivery_id(webhook_id: str, organization_id: str, event_id: str) -> str:
    """The same for the same event and endpoint, however often the event arrives."""
    name = f"webhook-delivery/{webhook_id}/{organization_id}/{event_id}"
    return "msg_" + uuid.uuid5(uuid.NAMESPACE_URL, name).hex


def order_key(created_at: datetime, delivery: str) -> str:
    return f"{int(created_at.timestamp() * 1000):013d}-{delivery}"


def retry_delay(failed_attempts: int, base_seconds: float, max_seconds: float) -> timedelta:
    """How long after its `failed_attempts`-th failure a delivery is tried again: the base
    delay, doubled after each further failure, at most the maximum."""
    exponent = min(max(failed_attempts - 1, 0), 62)
    return timedelta(seconds=min(base_seconds * 2.0**exponent, max_seconds))


@dataclass(frozen=True, slots=True)
class Next:
    """Where a delivery goes after an attempt: its status and, if pending, when it is due."""

    status: str
    due: datetime | None


def after_attempt(
    outcome: Outcome,
    attempts: int,
    now: datetime,
    *,
    max_attempts: int,
    base_seconds: float,
    max_seconds: float,
) -> Next:
    """`attempts` counts this one. A temporary failure is retried (no sooner than the server
    asked, never later than the maximum delay) until max_attempts, then dead-lettered; a
    permanent one is dead-lettered at once."""
    if outcome.delivered:
        return Next(DELIVERED, None)
    if outcome.permanent or attempts >= max_attempts:
        return Next(DEAD_LETTERED, None)
    delay = retry_delay(attempts, base_seconds, max_seconds)
    if outcome.retry_after is not None:
        delay = min(
            max(delay, timedelta(seconds=outcome.retry_after)), timedelta(seconds=max_seconds)
        )
    return Next(PENDING, now + delay)


def failure_text(outcome: Outcome) -> str:
    if outcome.delivered:
        return ""
    if outcome.reason:
        return outcome.reason[:MAX_ERROR]
    return f"HTTP {outcome.code}"
