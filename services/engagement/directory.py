"""Engagement's directory of each program's participants, from enrollment's events
(participant-registered, participant-updated, participant-withdrawn): their side, their cohort,
whether they withdrew; and, apart, the leaves of absence HR reported. Announcements choose
their recipients here (also people with no match yet), and leaves pause relationships
(leaves.py).

The three topics are not ordered together, so each event writes only what it knows for sure: a
registration fills a new entry but never overwrites one (an update may have overtaken it), an
update sets the person as they are now, a withdrawal marks them withdrawn for good. Applying
an event twice changes nothing. No names or contact details are kept. Blocking: call through
storage.run_sync.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.common import clock
from services.common.api import common_pb2, events_pb2
from services.common.storage import insert_new
from services.engagement import domain
from services.engagement.documents import ParticipantLeave, ProgramParticipant

ROLES = {common_pb2.ROLE_MENTOR: domain.MENTOR, common_pb2.ROLE_MENTEE: domain.MENTEE}
KINDS = ("participant_registered", "participant_updated", "participant_withdrawn")


def check(event: events_pb2.Event) -> str | None:
    """Why a participant event cannot be applied, or None."""
    kind = event.WhichOneof("payload")
    person = getattr(event, kind or "")
    if not person.participant_id:
        return f"{kind}.participant_id is missing"
    if person.role not in ROLES:
        return f"{kind}.role must be mentor or mentee"
    return None


Person = events_pb2.ParticipantRegistered | events_pb2.ParticipantUpdated
LEAVE_FIELDS = ("starts_on", "ends_on")


def _leave(person: Person) -> dict[str, datetime]:
    """The leave an event reports, as ParticipantLeave fields (none when it reports none)."""
    if not person.HasField("leave"):
        return {}
    leave, found = person.leave, {}
    if leave.HasField("starts_on"):
        found["starts_on"] = leave.starts_on.ToDatetime(UTC)
    if leave.HasField("ends_on"):
        found["ends_on"] = leave.ends_on.ToDatetime(UTC)
    return found


def _record_leave(event: events_pb2.Event, participant_id: str, leave: dict[str, datetime]) -> None:
    """Keep the leave a participant-updated reports; clear one reported before if it reports
    none (then a leave in force ends at the next round of leaves.py)."""
    env = event.envelope
    found = ParticipantLeave.objects(
        organization_id=env.organization_id, participant_id=participant_id
    )
    if not leave:
        found.update_one(unset__starts_on=True, unset__ends_on=True, set__updated_at=clock.now())
        return
    changes: dict[str, Any] = {
        f"set__{name}" if name in leave else f"unset__{name}": leave.get(name, True)
        for name in LEAVE_FIELDS
    }
    found.update_one(
        upsert=True,
        set_on_insert__program_id=env.program_id,
        set__updated_at=clock.now(),
        **changes,
    )


def apply(event: events_pb2.Event) -> None:
    """Apply one (checked) participant event."""
    env = event.envelope
    kind = event.WhichOneof("payload")
    participant_id = getattr(event, kind or "").participant_id
    entry = ProgramParticipant.objects(
        organization_id=env.organization_id, participant_id=participant_id
    )
    now = clock.now()
    if kind == "participant_withdrawn":
        gone = event.participant_withdrawn
        entry.update_one(
            upsert=True,
            set__withdrawn=True,
            set__updated_at=now,
            set_on_insert__program_id=env.program_id,
            set_on_insert__role=ROLES[gone.role],
        )
    elif kind == "participant_updated":
        person = event.participant_updated
        entry.update_one(
            upsert=True,
            set__role=ROLES[person.role],
            set__cohort_id=person.profile.cohort_id,
            set__capacity=person.capacity,
            set__updated_at=now,
            set_on_insert__program_id=env.program_id,
        )
        _record_leave(event, participant_id, _leave(person))
    else:
        # Insert-only: an update that overtook the registration is newer.
        registered = event.participant_registered
        entry.update_one(
            upsert=True,
            set_on_insert__program_id=env.program_id,
            set_on_insert__role=ROLES[registered.role],
            set_on_insert__cohort_id=registered.profile.cohort_id,
            set_on_insert__updated_at=now,
        )
        # Also into an entry an accept made before the registration came (seats.py).
        entry.filter(capacity=None).update_one(set__capacity=registered.capacity)
        if leave := _leave(registered):
            ParticipantLeave.objects(
                organization_id=env.organization_id, participant_id=participant_id
            ).update_one(
                upsert=True,
                set_on_insert__program_id=env.program_id,
                set_on_insert__updated_at=now,
                **{f"set_on_insert__{name}": value for name, value in leave.items()},
            )


def apply_all(events: list[events_pb2.Event]) -> None:
    """Apply checked participant events, in order. New people's registrations (nearly all of a
    bulk import) are stored together, in two round trips; the rest as `apply` does."""
    new = _new_registrations(events)
    for event in events:
        if id(event) not in new:
            apply(event)


def _new_registrations(events: list[events_pb2.Event]) -> set[int]:
    """Insert the entries of registrations of people the directory does not know yet; the
    ids of the events that did so. Anyone already there (an update or an accept came first)
    is left to `apply`."""
    plain = {
        (e.envelope.organization_id, e.participant_registered.participant_id): e
        for e in events
        if e.WhichOneof("payload") == "participant_registered"
        and not e.participant_registered.HasField("leave")
    }
    if not plain:
        return set()
    known: set[tuple[str, str]] = set()
    for organization_id in {org for org, _ in plain}:
        ids = [pid for org, pid in plain if org == organization_id]
        found = ProgramParticipant.objects(
            organization_id=organization_id, participant_id__in=ids
        ).scalar("participant_id")
        known.update((organization_id, pid) for pid in found)
    now = clock.now()
    places = [place for place in plain if place not in known]
    entries = [
        {
            "organization_id": org,
            "participant_id": pid,
            "program_id": plain[(org, pid)].envelope.program_id,
            "role": ROLES[plain[(org, pid)].participant_registered.role],
            "cohort_id": plain[(org, pid)].participant_registered.profile.cohort_id,
            "updated_at": now,
            "capacity": plain[(org, pid)].participant_registered.capacity,
        }
        for org, pid in places
    ]
    # Entries made meanwhile (an accept): those registrations go through `apply`.
    refused = insert_new(ProgramParticipant, entries)
    places = [place for n, place in enumerate(places) if n not in refused]
    return {id(plain[place]) for place in places}


def leave_of(organization_id: str, participant_id: str) -> ParticipantLeave | None:
    found: ParticipantLeave | None = ParticipantLeave.objects(
        organization_id=organization_id, participant_id=participant_id
    ).first()
    return found


def get(organization_id: str, participant_id: str) -> ProgramParticipant | None:
    entry: ProgramParticipant | None = ProgramParticipant.objects(
        organization_id=organization_id, participant_id=participant_id
    ).first()
    return entry


def members(organization_id: str, program_id: str) -> list[ProgramParticipant]:
    """Everyone the directory knows in the program, withdrawn or not, in id order."""
    return list(
        ProgramParticipant.objects(organization_id=organization_id, program_id=program_id).order_by(
            "participant_id"
        )
    )
