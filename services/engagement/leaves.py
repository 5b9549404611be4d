"""Leaves of absence: a participant's leave (reported by HR on hr-events, passed on by
enrollment in participant-updated, kept by directory.py) pauses their active relationships
when it starts, with the reason "leave of absence", and their return resumes those it paused —
only those: a relationship the pair had paused themselves stays paused, and one the pair
resumed during the leave is theirs again.

A timer (every SCHEDULER_INTERVAL_SECONDS) compares each leave with the clock, so a leave
announced ahead of time starts on its day. Each relationship paused for leave records whose
leave holds it (`leave_holds`): when both members are away it resumes when the last one is
back. Every step is a conditional update and is safe to repeat, so a crash part-way is
finished by the next round. Blocking functions run through storage.run_sync.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from services.common import clock
from services.common.storage import run_sync
from services.engagement import directory, domain
from services.engagement.documents import ParticipantLeave, Relationship

log = logging.getLogger(__name__)
LEAVE_REASON = "leave of absence"


def on_leave(starts_on: datetime | None, ends_on: datetime | None, now: datetime) -> bool:
    """Whether a leave is in force at `now`: from its start until its end (none: open-ended).
    Pure."""
    if starts_on is None:
        return False
    return domain.aware(starts_on) <= now and (ends_on is None or now < domain.aware(ends_on))


def _involving(participant_id: str) -> dict[str, object]:
    return {"$or": [{"mentor_id": participant_id}, {"mentee_id": participant_id}]}


def start_leave(organization_id: str, participant_id: str, now: datetime) -> int:
    """Pause the participant's active relationships for their leave; join the holds of those
    already paused for another member's leave. Returns how many this call paused."""
    paused = 0
    for r in Relationship.objects(organization_id=organization_id, status=domain.ACTIVE).filter(
        __raw__=_involving(participant_id)
    ):
        paused += Relationship.objects(pk=r.pk, status=domain.ACTIVE).update_one(
            set__status=domain.PAUSED,
            set__paused_at=now,
            set__pause_reason=LEAVE_REASON,
            set__leave_paused=True,
            set__leave_holds=[participant_id],
        )
    Relationship.objects(
        organization_id=organization_id, status=domain.PAUSED, leave_paused=True
    ).filter(__raw__=_involving(participant_id)).update(add_to_set__leave_holds=participant_id)
    return paused


def end_leave(organization_id: str, participant_id: str, now: datetime) -> int:
    """The participant is back: release their holds and resume what no other leave holds.
    Returns how many this call resumed."""
    Relationship.objects(organization_id=organization_id, leave_holds=participant_id).update(
        pull__leave_holds=participant_id
    )
    resumed = 0
    for r in Relationship.objects(
        organization_id=organization_id,
        status=domain.PAUSED,
        leave_paused=True,
        leave_holds__size=0,
    ).filter(__raw__=_involving(participant_id)):
        paused_at = domain.aware(r.paused_at) if r.paused_at is not None else now
        resumed += Relationship.objects(
            pk=r.pk, status=domain.PAUSED, leave_paused=True, leave_holds__size=0
        ).update_one(
            set__status=domain.ACTIVE,
            unset__paused_at=True,
            set__pause_reason="",
            set__leave_paused=False,
            set__resumed_at=now,
            inc__paused_seconds=max(0.0, (now - paused_at).total_seconds()),
        )
    return resumed


@dataclass(frozen=True, slots=True)
class LeaveChange:
    organization_id: str
    participant_id: str
    started: bool
    relationships: int


def _withdrawn(organization_id: str, participant_id: str) -> bool:
    entry = directory.get(organization_id, participant_id)
    return entry is not None and bool(entry.withdrawn)


def apply_due(now: datetime) -> list[LeaveChange]:
    """Start the leaves that are in force and not applied yet; end the applied ones that are
    over, cleared, or whose person withdrew."""
    changes = []
    for leave in ParticipantLeave.objects():
        org, pid = leave.organization_id, leave.participant_id
        wanted = on_leave(leave.starts_on, leave.ends_on, now)
        if wanted or leave.on_leave:  # only people away, or just back, are looked up
            wanted = wanted and not _withdrawn(org, pid)
        if wanted == bool(leave.on_leave):
            continue
        count = start_leave(org, pid, now) if wanted else end_leave(org, pid, now)
        ParticipantLeave.objects(pk=leave.pk).update_one(set__on_leave=wanted)
        changes.append(LeaveChange(org, pid, wanted, count))
    return changes


def away(now: datetime) -> set[tuple[str, str]]:
    """(organization, participant) of everyone on leave at `now`, by their dates: the nudges
    leave them alone even before this round's leaves are applied."""
    return {
        (leave.organization_id, leave.participant_id)
        for leave in ParticipantLeave.objects(starts_on__ne=None)
        if on_leave(leave.starts_on, leave.ends_on, now)
    }


class LeaveScheduler:
    """Applies due leave starts and returns; run every SCHEDULER_INTERVAL_SECONDS by a
    PeriodicTask. `now` is injectable."""

    def __init__(self, now: Callable[[], datetime] = clock.now) -> None:
        self._now = now

    async def apply_once(self) -> list[LeaveChange]:
        changes = await run_sync(apply_due, self._now())
        for c in changes:
            log.info(
                "%s/%s %s leave: %d relationships %s",
                c.organization_id,
                c.participant_id,
                "started" if c.started else "returned from",
                c.relationships,
                "paused" if c.started else "resumed",
            )
        return changes
