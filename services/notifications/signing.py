"""The Standard Webhooks signature of a delivery, made by the reference library."""

from __future__ import annotations

from datetime import datetime

from standardwebhooks.webhooks import Webhook


def headers(secret: str, delivery_id: str, sent_at: datetime, body: bytes) -> dict[str, str]:
    """The headers of one attempt. The id stays the same on every attempt of a delivery, so a
    receiver can drop a repeat; the timestamp is the attempt's, which the signature covers."""
    return {
        "content-type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(delivery_id, sent_at, body),
    }
