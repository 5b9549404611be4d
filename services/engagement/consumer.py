"""Engagement's consumer: proposals and expiries arrive from matching."""

from __future__ import annotations

from services.common.kafka import Delivered, Rejected
from services.common.storage import run_sync
from services.engagement.store import GROUP, record_proposals

TOPICS = ("match-proposed", "match-expired")
__all__ = ["GROUP", "TOPICS", "handle_proposals"]


async def handle_proposals(batch: list[Delivered]) -> list[Rejected]:
    rejected: list[Rejected] = []
    valid = []
    for item in batch:
        kind = item.event.WhichOneof("payload")
        payload = getattr(item.event, kind or "")
        missing = [f for f in ("match_id", "mentor_id", "mentee_id") if not getattr(payload, f)]
        if missing:
            rejected.append(Rejected(item, f"{kind}.{missing[0]} is missing"))
        else:
            valid.append(item.event)
    await run_sync(record_proposals, valid)
    return rejected
