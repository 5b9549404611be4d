"""Engagement's consumer: proposals and expiries arrive from matching, withdrawals and erasures
from enrollment."""

from __future__ import annotations

from services.common import idempotency
from services.common.kafka import Delivered, EventPublisher, Rejected
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import run_sync
from services.engagement.privacy import erase_participant
from services.engagement.store import GROUP, record_proposals
from services.engagement.withdrawals import apply_withdrawal

TOPICS = ("match-proposed", "match-expired", "participant-withdrawn", "participant-erased")
__all__ = ["GROUP", "TOPICS", "EngagementConsumer"]


def _check(event: Event) -> str | None:
    """Why the event cannot be applied, or None."""
    kind = event.WhichOneof("payload")
    if kind == "participant_withdrawn":
        if not event.participant_withdrawn.participant_id:
            return "participant_withdrawn.participant_id is missing"
        return None
    if kind == "participant_erased":
        if not event.participant_erased.participant_id:
            return "participant_erased.participant_id is missing"
        return None
    payload = getattr(event, kind or "")
    missing = [f for f in ("match_id", "mentor_id", "mentee_id") if not getattr(payload, f)]
    return f"{kind}.{missing[0]} is missing" if missing else None


def _apply_withdrawals(events: list[Event]) -> tuple[list[Event], list[Event]]:
    """The fresh withdrawals, and the relationship-ended events they call for."""
    fresh = idempotency.unprocessed(events, GROUP)
    return fresh, [ended for event in fresh for ended in apply_withdrawal(event)]


def _apply_erasures(events: list[Event]) -> tuple[list[Event], list[Event]]:
    """The fresh erasures, and the relationship-ended events they call for."""
    fresh = idempotency.unprocessed(events, GROUP)
    return fresh, [
        ended
        for event in fresh
        for ended in erase_participant(
            event.envelope.organization_id, event.participant_erased.participant_id
        )
    ]


class EngagementConsumer:
    """Handles a batch: proposals and expiries are stored; withdrawals end relationships and
    publish relationship-ended before they count as handled."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def handle(self, batch: list[Delivered]) -> list[Rejected]:
        rejected: list[Rejected] = []
        proposals: list[Event] = []
        withdrawals: list[Event] = []
        erasures: list[Event] = []
        for item in batch:
            reason = _check(item.event)
            if reason:
                rejected.append(Rejected(item, reason))
            elif item.event.HasField("participant_withdrawn"):
                withdrawals.append(item.event)
            elif item.event.HasField("participant_erased"):
                erasures.append(item.event)
            else:
                proposals.append(item.event)
        # Proposals first: a withdrawal or an erasure in the same batch then expires them too.
        await run_sync(record_proposals, proposals)
        for leaving, apply in ((withdrawals, _apply_withdrawals), (erasures, _apply_erasures)):
            if leaving:
                fresh, ended = await run_sync(apply, leaving)
                if ended:
                    await self._publisher.publish(ended)
                await run_sync(idempotency.mark_processed, fresh, GROUP)
        return rejected
