"""Enrollment reads the HR systems' `hr-events` (consumer group "enrollment") and keeps the
participants of the organisation in step: a termination withdraws them, a transfer or a new
manager updates their profiles, a leave of absence is recorded (and carried by
participant-updated: engagement pauses their relationships for it); each announced change goes
out as WithdrawParticipant and UpdateParticipantProfile publish it.

An event about nobody enrolled, or that says nothing applicable, is dead-lettered with the
reason, and so is one the organisation's HR producer did not sign (by the EventConsumer, before
this handler sees it: services/common/hr_signatures.py). A redelivered event changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.common import clock
from services.common.api import common_pb2, events_pb2
from services.common.errors import DomainError, FailedPrecondition
from services.common.kafka import Delivered, EventPublisher, Rejected
from services.common.outbox import OutboxRelay
from services.common.storage import run_sync
from services.enrollment import domain
from services.enrollment.convert import profile_of
from services.enrollment.documents import Participant
from services.enrollment.store import (
    same_moment,
    screen,
    set_participant,
    update_events,
    update_profile,
)

log = logging.getLogger(__name__)

GROUP = "enrollment"
TOPICS = ("hr-events",)
MAX_REASON = 500


# --- pure: what an HR event asks for -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """Profile fields an HR event sets; empty strings leave a field as it is."""

    department: str = ""
    location: str = ""
    manager_id: str = ""

    def __bool__(self) -> bool:
        return bool(self.department or self.location or self.manager_id)

    def applied_to(self, profile: common_pb2.Profile) -> common_pb2.Profile:
        changed = common_pb2.Profile()
        changed.CopyFrom(profile)
        for field in ("department", "location", "manager_id"):
            if value := getattr(self, field):
                setattr(changed, field, value)
        return changed


def check(event: events_pb2.Event) -> str | None:
    """Why the HR event can never be applied, or None."""
    change = event.hr_event
    if not change.hr_person_id.strip():
        return "hr_event.hr_person_id is missing"
    kind = change.WhichOneof("change")
    if kind is None:
        return "hr_event has no change set (hired, transferred, manager_changed, ...)"
    if kind == "transferred" and not (change.transferred.department or change.transferred.location):
        return "hr_event.transferred sets neither department nor location"
    if kind == "manager_changed" and not change.manager_changed.manager_id:
        return "hr_event.manager_changed.manager_id is missing"
    if kind == "leave_of_absence":
        leave = change.leave_of_absence
        if not leave.HasField("starts_on"):
            return "hr_event.leave_of_absence.starts_on is missing"
        if leave.HasField("ends_on") and leave.ends_on.ToDatetime() < leave.starts_on.ToDatetime():
            return "hr_event.leave_of_absence.ends_on is before starts_on"
    return None


def profile_change(change: events_pb2.HrEvent) -> ProfileChange:
    """The profile fields a hire, transfer or manager change sets."""
    kind = change.WhichOneof("change")
    if kind == "hired":
        hired = change.hired
        return ProfileChange(hired.department, hired.location, hired.manager_id)
    if kind == "transferred":
        return ProfileChange(change.transferred.department, change.transferred.location)
    if kind == "manager_changed":
        return ProfileChange(manager_id=change.manager_changed.manager_id)
    return ProfileChange()


def termination_reason(terminated: events_pb2.Terminated) -> str:
    reason = terminated.reason.strip()
    return (f"terminated: {reason}" if reason else "terminated")[:MAX_REASON]


# --- applying it (blocking: storage) -------------------------------------------------------


def _withdraw(doc: Any, reason: str) -> list[events_pb2.Event]:
    """Withdraw as WithdrawParticipant does; its event if the participant was announced."""
    if doc.status in (domain.REJECTED,):
        return []
    if doc.status == domain.WITHDRAWN and doc.status_reason != reason:
        return []  # withdrawn before, for another reason: nothing to announce
    # Staged with the change (outbox); returned again on a redelivery, under the same id.
    _, events = screen(doc.organization_id, doc.participant_id, domain.WITHDRAW, reason)
    return events


def _update(doc: Any, change: ProfileChange) -> list[events_pb2.Event]:
    """Update the profile as UpdateParticipantProfile does; its event if announced."""
    profile = change.applied_to(profile_of(doc))
    _, events = update_profile(
        doc.organization_id,
        doc.participant_id,
        profile,
        list(doc.skills),
        doc.capacity,
        doc.display_name,
    )
    return events


def _as_datetime(stamp: Any, present: bool) -> datetime | None:
    return stamp.ToDatetime(UTC) if present else None


def _record_leave(doc: Any, leave: events_pb2.LeaveOfAbsence) -> list[events_pb2.Event]:
    starts = _as_datetime(leave.starts_on, leave.HasField("starts_on"))
    ends = _as_datetime(leave.ends_on, leave.HasField("ends_on"))
    if not (same_moment(doc.leave_starts_on, starts) and same_moment(doc.leave_ends_on, ends)):
        changes: dict[str, Any] = {
            "leave_starts_on": starts,
            "leave_ends_on": ends,
            "updated_at": clock.now(),
        }
        if doc.status == domain.REGISTERED:
            changes["update_event_id"] = str(uuid.uuid4())
        return set_participant(doc, update_events, **changes)[1]
    return update_events(doc)


def apply_hr_event(event: events_pb2.Event) -> tuple[list[events_pb2.Event], str]:
    """Apply one (checked) HR event to every participant record of the person in the
    organisation. Returns the events to publish and, if some record could not take the
    change, why (empty when all did)."""
    org = event.envelope.organization_id
    change = event.hr_event
    kind = change.WhichOneof("change")
    people = list(
        Participant.objects(organization_id=org, hr_person_id=change.hr_person_id).order_by(
            "program_id", "participant_id"
        )
    )
    if not people:
        if kind == "hired":
            return [], ""  # a new hire who has not enrolled: nothing to do
        return [], (
            f"no participant with hr_person_id {change.hr_person_id!r} in organisation {org!r}"
        )
    out: list[events_pb2.Event] = []
    problems: list[str] = []
    for doc in people:
        try:
            if kind == "terminated":
                done = _withdraw(doc, termination_reason(change.terminated))
            elif doc.status not in domain.UPDATABLE:
                continue  # withdrawn or rejected: their profile no longer changes
            elif kind == "leave_of_absence":
                done = _record_leave(doc, change.leave_of_absence)
            elif updates := profile_change(change):
                done = _update(doc, updates)
            else:
                continue
        except FailedPrecondition as exc:
            if "at the same time" in str(exc):
                raise  # a concurrent RPC changed the participant: the batch runs again
            problems.append(f"{doc.participant_id}: {exc}")
            continue
        except DomainError as exc:
            problems.append(f"{doc.participant_id}: {exc}")
            continue
        out += done
    reason = f"cannot apply hr_event {kind} to " + "; ".join(problems) if problems else ""
    return out, reason[:1000]


class HrEventsConsumer:
    """The batch handler for hr-events in the consumer group "enrollment"."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._outbox = OutboxRelay(publisher)

    async def handle(self, batch: list[Delivered]) -> list[Rejected]:
        rejected: list[Rejected] = []
        valid: list[Delivered] = []
        for item in batch:
            reason = check(item.event)
            if reason:
                rejected.append(Rejected(item, reason))
            else:
                valid.append(item)
        for item in valid:  # in order: a person's HR events arrive on one partition
            event = item.event
            published, problem = await run_sync(apply_hr_event, event)
            await self._outbox.deliver(published)
            if problem:
                # Dead-lettered, and not recorded as handled: replayed from the dead-letter
                # topic it applies what it can again (a no-op that republishes the same ids).
                rejected.append(Rejected(item, problem))
                continue
            log.info(
                "hr_event %s for %s: %d events published",
                event.hr_event.WhichOneof("change"),
                event.hr_event.hr_person_id,
                len(published),
            )
        return rejected
