"""The notifications service's own metrics. No organisation label: one series per
organisation would grow without bound; the delivery log has the per-endpoint detail."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WEBHOOK_DELIVERIES = Counter(
    "mentoring_webhook_deliveries_total",
    "Webhook deliveries by outcome: queued (an event for an endpoint), sent (an attempt made), "
    "delivered (answered 2xx), failed (an attempt that was not), retried (a failure with "
    "another attempt scheduled), dead_lettered (a failure with none left), cancelled (its "
    "endpoint deleted first).",
    ["outcome"],
)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "mentoring_webhook_attempt_seconds",
    "Time from sending a webhook to its answer (or the failure).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def count(outcome: str, amount: int = 1) -> None:
    WEBHOOK_DELIVERIES.labels(outcome).inc(amount)


MESSAGES = Counter(
    "mentoring_notifications_total",
    "Notifications by channel (email to a participant; slack or teams to an organisation's "
    "or program's chat channel; webhooks count in mentoring_webhook_deliveries_total) and "
    "outcome: queued (to send), suppressed (e-mail: its category off in the recipient's "
    "preferences), digest (e-mail: kept for the recipient's daily digest), digest_made "
    "(e-mail), cancelled (recipient erased, or chat channel deleted), sent (accepted by the "
    "server), failed (an attempt that was not), retried (a failure with another attempt "
    "scheduled), dead_lettered (a failure with none left).",
    ["channel", "outcome"],
)


def count_message(outcome: str, amount: int = 1, channel: str = "email") -> None:
    MESSAGES.labels(channel, outcome).inc(amount)
