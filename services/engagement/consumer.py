"""Engagement's consumer: proposals and expiries arrive from matching; programs, participants,
withdrawals and erasures from enrollment."""

from __future__ import annotations

from services.common.kafka import Delivered, EventPublisher, Rejected
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import run_sync
from services.engagement import directory, programs
from services.engagement.privacy import erase_participant
from services.engagement.store import GROUP, record_proposals
from services.engagement.withdrawals import apply_withdrawal

TOPICS = (
    "match-proposed",
    "match-expired",
    "participant-withdrawn",
    "participant-erased",
    "participant-registered",
    "participant-updated",
    "program-changed",
)
__all__ = ["GROUP", "TOPICS", "EngagementConsumer"]
PROPOSALS = ("match_proposed", "match_expired")


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
    if kind in directory.KINDS:
        return directory.check(event)
    if kind == "program_changed":
        return programs.check(event)
    payload = getattr(event, kind or "")
    missing = [f for f in ("match_id", "mentor_id", "mentee_id") if not getattr(payload, f)]
    return f"{kind}.{missing[0]} is missing" if missing else None


def _apply_state(events: list[Event]) -> None:
    """Programs' terms and the participant directory."""
    for event in events:
        if event.HasField("program_changed"):
            programs.apply_program_changed(event)
    directory.apply_all([e for e in events if not e.HasField("program_changed")])


def _apply_withdrawals(events: list[Event]) -> list[Event]:
    """The relationship-ended events withdrawals call for. Each marks the person withdrawn in
    the directory too (unless it names no side: then their matches are all engagement knows
    of them, and those expire)."""
    ended = []
    for event in events:
        if directory.check(event) is None:
            directory.apply(event)
        ended += apply_withdrawal(event)
    return ended


def _apply_erasures(events: list[Event]) -> list[Event]:
    """The relationship-ended events erasures call for."""
    return [
        ended
        for event in events
        for ended in erase_participant(
            event.envelope.organization_id, event.participant_erased.participant_id
        )
    ]


class EngagementConsumer:
    """Handles a batch: proposals, expiries, programs and participants are stored; withdrawals
    end relationships and publish relationship-ended before they count as handled."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def handle(self, batch: list[Delivered]) -> list[Rejected]:
        rejected: list[Rejected] = []
        proposals: list[Event] = []
        withdrawals: list[Event] = []
        erasures: list[Event] = []
        state: list[Event] = []
        for item in batch:
            reason = _check(item.event)
            kind = item.event.WhichOneof("payload")
            if reason:
                rejected.append(Rejected(item, reason))
            elif kind == "participant_withdrawn":
                withdrawals.append(item.event)
            elif kind == "participant_erased":
                erasures.append(item.event)
            elif kind in PROPOSALS:
                proposals.append(item.event)
            else:
                state.append(item.event)
        # Proposals first: a withdrawal or an erasure in the same batch then expires them too.
        await run_sync(record_proposals, proposals)
        if state:
            await run_sync(_apply_state, state)
        # Published before the batch counts as handled: a crash in between replays the batch,
        # which finds the relationships closed and returns their events again, same ids.
        for leaving, apply in ((withdrawals, _apply_withdrawals), (erasures, _apply_erasures)):
            if leaving and (ended := await run_sync(apply, leaving)):
                await self._publisher.publish(ended)
        return rejected
