"""Enrollment's storage operations: programs, cohorts and participants. Blocking: call
through storage.run_sync. A change and the events that report it commit together (the outbox,
services/common/outbox.py); each change returns its events for the caller to deliver."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mongoengine.errors import NotUniqueError

from services.common import clock, outbox
from services.common.api import common_pb2, events_pb2
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import Transaction
from services.common.validation import require_text
from services.enrollment import domain
from services.enrollment.application_events import (
    application_screened_event,
    application_submitted_event,
)
from services.enrollment.convert import (
    profile_of,
    program_changed_event,
    questions_of,
    registered_event,
    stored_profile,
    updated_event,
    validate_profile,
    withdrawn_event,
)
from services.enrollment.documents import Cohort, Participant, Program


def find_program(organization_id: str, program_id: str) -> Program:
    program = Program.objects(organization_id=organization_id, program_id=program_id).first()
    if program is None:
        raise NotFound(f"program_id: no program {program_id!r} in organization {organization_id!r}")
    return program


def create_program(
    draft: domain.ProgramDraft, settings: events_pb2.ProgramSettings, status: str, announce: bool
) -> tuple[Program, list[Event]]:
    """Store a new program; with `announce`, with its program-changed (outbox)."""
    now = clock.now()
    doc = Program(
        organization_id=draft.organization_id,
        program_id=str(uuid.uuid4()),
        name=draft.name,
        objective=draft.objective,
        created_at=now,
        settings=settings.SerializeToString(deterministic=True),
        requires_approval=settings.requires_approval,
        status=status,
        version=1,
        updated_at=now,
        previous_status="",
        change="created",
        event_id=str(uuid.uuid4()),
    )
    events = [program_changed_event(doc)] if announce else []
    outbox.insert(doc, events)
    return doc, events


def _save_change(doc: Program, change: str, **changes: Any) -> tuple[Program, list[Event]]:
    """Apply a change unless someone changed the program since it was read, with the
    program-changed that reports it (outbox).

    A conditional update on the version read, not findAndModify: the update wins only on
    exactly `doc`, so `doc` plus the changes is what is stored now.
    """
    changes = {
        "version": doc.version + 1,
        "updated_at": clock.now(),
        "previous_status": doc.status,
        "change": change,
        "event_id": str(uuid.uuid4()),
        **changes,
    }
    events = _apply_if_unchanged(
        {"pk": doc.pk, "version": doc.version},
        doc,
        changes,
        "program_id: the program changed at the same time; try again",
        lambda changed: [program_changed_event(changed)],
    )
    return doc, events


def _apply_if_unchanged(
    filters: dict[str, Any],
    doc: Any,
    changes: dict[str, Any],
    conflict: str,
    events_of: Callable[[Any], list[Event]],
) -> list[Event]:
    """Set `changes` on the one document of doc's class the filters select, and on `doc`, in
    one transaction with the events `events_of` builds from the changed `doc` (outbox); none
    selected (someone changed it since it was read) is a FailedPrecondition with the
    `conflict` message. Returns the events.

    Times are cut to the millisecond BSON stores, so `doc` equals the stored document and can
    condition the next change.
    """
    changes = {
        name: value.replace(microsecond=value.microsecond // 1000 * 1000)
        if isinstance(value, datetime)
        else value
        for name, value in changes.items()
    }

    def write(tx: Transaction) -> tuple[None, list[Event]]:
        update = {f"set__{name}": value for name, value in changes.items()}
        if not tx.update(type(doc), filters, **update):
            raise FailedPrecondition(conflict)
        for name, value in changes.items():
            setattr(doc, name, value)
        return None, events_of(doc)

    return outbox.commit(write)[1]


def update_program(
    organization_id: str,
    program_id: str,
    name: str | None,
    objective: str | None,
    settings: events_pb2.ProgramSettings | None,
) -> tuple[Program, list[Event]]:
    """Apply what changed; returns the program and its program-changed (also when nothing
    changed: a retry of a change whose event was lost republishes it under its id)."""
    doc = find_program(organization_id, program_id)
    domain.require_editable(doc.status)
    changes: dict[str, Any] = {}
    if name is not None and name != doc.name:
        changes["name"] = name
    if objective is not None and objective != doc.objective:
        changes["objective"] = objective
    if settings is not None:
        stored = settings.SerializeToString(deterministic=True)
        if stored != bytes(doc.settings or b""):
            changes["settings"] = stored
            changes["requires_approval"] = settings.requires_approval
    if not changes:
        return doc, [program_changed_event(doc)]
    return _save_change(doc, "updated", **changes)


def change_status(
    organization_id: str, program_id: str, target: str | None
) -> tuple[Program, list[Event]]:
    """Move the program to `target`; returns it and its program-changed (also when it was
    there already: a retry)."""
    doc = find_program(organization_id, program_id)
    if not domain.program_transition(doc.status, target):
        return doc, [program_changed_event(doc)]
    return _save_change(doc, "status_changed", status=target)


def list_programs(
    organization_id: str, status: str | None, size: int, after: str | None
) -> list[Program]:
    query = Program.objects(organization_id=organization_id)
    if status:
        query = query.filter(status=status)
    if after:
        query = query.filter(program_id__gt=after)
    return list(query.order_by("program_id").limit(size))


def same_moment(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.replace(tzinfo=a.tzinfo or UTC) == b.replace(tzinfo=b.tzinfo or UTC)


def create_cohort(
    organization_id: str,
    program_id: str,
    draft: domain.CohortDraft,
    starts_on: datetime | None,
    ends_on: datetime | None,
) -> Cohort:
    program = find_program(organization_id, program_id)
    domain.require_editable(program.status)
    doc = Cohort(
        organization_id=organization_id,
        program_id=program_id,
        cohort_id=draft.cohort_id or str(uuid.uuid4()),
        name=draft.name,
        starts_on=starts_on,
        ends_on=ends_on,
        created_at=clock.now(),
    )
    try:
        return doc.save(force_insert=True)
    except NotUniqueError:
        existing = Cohort.objects(
            organization_id=organization_id, program_id=program_id, cohort_id=doc.cohort_id
        ).get()
        if (
            existing.name == draft.name
            and same_moment(existing.starts_on, starts_on)
            and same_moment(existing.ends_on, ends_on)
        ):
            return existing  # a retry
        raise AlreadyExists(f"cohort_id: {doc.cohort_id!r} exists in this program") from None


def list_cohorts(
    organization_id: str, program_id: str, size: int, after: str | None
) -> list[Cohort]:
    find_program(organization_id, program_id)
    query = Cohort.objects(organization_id=organization_id, program_id=program_id)
    if after:
        query = query.filter(cohort_id__gt=after)
    return list(query.order_by("cohort_id").limit(size))


def _require_cohort(organization_id: str, program_id: str, cohort_id: str) -> None:
    if not Cohort.objects(
        organization_id=organization_id, program_id=program_id, cohort_id=cohort_id
    ).first():
        raise InvalidArgument("profile.cohort_id", f"no cohort {cohort_id!r} in this program")


def _require_hr_id_free(
    organization_id: str, program_id: str, role: str, hr_person_id: str, email: str
) -> None:
    """One participant per HR person and role in a program."""
    # By organisation and HR id, the index the lookup has; the person's other registrations
    # are filtered here.
    registrations = Participant.objects(organization_id=organization_id, hr_person_id=hr_person_id)
    other = next(
        (
            r
            for r in registrations
            if r.program_id == program_id and r.role == role and r.email != email
        ),
        None,
    )
    if other is not None:
        raise AlreadyExists(
            f"profile.hr_person_id: {hr_person_id!r} is already registered as {role} "
            f"with another e-mail ({other.participant_id})"
        )


def register(
    draft: domain.RegistrationDraft,
    profile: bytes,
    answers: dict[str, str] | None = None,
    campaign: str = "",
) -> tuple[Participant, list[Event]]:
    """Store the participant once, with application-submitted and, unless the application
    waits for approval, participant-registered (outbox). A retry of the same registration
    returns the stored one and its events (same ids)."""
    program = find_program(draft.organization_id, draft.program_id)
    domain.require_accepting(program.status or domain.OPEN)
    normalized = domain.validate_answers(questions_of(program), answers or {})
    parsed = common_pb2.Profile.FromString(profile)
    if parsed.cohort_id:
        _require_cohort(draft.organization_id, draft.program_id, parsed.cohort_id)
    if parsed.hr_person_id:
        _require_hr_id_free(
            draft.organization_id, draft.program_id, draft.role, parsed.hr_person_id, draft.email
        )
    now = clock.now()
    doc = Participant(
        organization_id=draft.organization_id,
        program_id=draft.program_id,
        participant_id=str(uuid.uuid4()),
        role=draft.role,
        display_name=draft.display_name,
        email=draft.email,
        skills=list(draft.skills),
        capacity=draft.capacity,
        profile=profile,
        registered_at=now,
        event_id=str(uuid.uuid4()),
        status=domain.initial_participant_status(bool(program.requires_approval)),
        status_changed_at=now,
        answers=normalized,
        campaign=campaign,
        hr_person_id=parsed.hr_person_id,
    )
    if outbox.insert(doc, registration_events(doc)):
        return doc, registration_events(doc)
    existing = Participant.objects(
        organization_id=draft.organization_id,
        program_id=draft.program_id,
        email=draft.email,
        role=draft.role,
    ).get()
    same = (
        existing.display_name,
        tuple(existing.skills),
        existing.capacity,
        stored_profile(existing),
        dict(existing.answers or {}),
        existing.campaign or "",
    ) == (draft.display_name, draft.skills, draft.capacity, profile, normalized, campaign)
    if not same:
        raise AlreadyExists(
            f"email: {draft.email} is already registered as {draft.role} in this program"
        )
    return existing, registration_events(existing)


def registration_events(doc: Participant) -> list[Event]:
    # An application waiting for approval is announced only once approved.
    events = [application_submitted_event(doc)]
    if (doc.status or domain.REGISTERED) == domain.REGISTERED:
        events.append(registered_event(doc))
    return events


def get_participant(organization_id: str, participant_id: str) -> Participant:
    doc = Participant.objects(
        organization_id=organization_id, participant_id=participant_id
    ).first()
    if doc is None:
        raise NotFound(f"participant_id: no participant {participant_id!r}")
    return doc


def list_participants(
    organization_id: str,
    program_id: str,
    role: str | None,
    size: int,
    after: str | None,
    status: str | None = None,
) -> list[Participant]:
    query = Participant.objects(organization_id=organization_id, program_id=program_id)
    if role:
        query = query.filter(role=role)
    if status:
        query = query.filter(status=status)
    if after:
        query = query.filter(participant_id__gt=after)
    return list(query.order_by("participant_id").limit(size))


def set_participant(
    doc: Participant, events_of: Callable[[Participant], list[Event]], **changes: Any
) -> tuple[Participant, list[Event]]:
    """Apply a change unless the participant's status moved since it was read, with the
    events `events_of` builds from the changed participant (outbox)."""
    events = _apply_if_unchanged(
        {"pk": doc.pk, "status": doc.status, "updated_at": doc.updated_at},
        doc,
        changes,
        "participant_id: the participant changed at the same time; retry",
        events_of,
    )
    return doc, events


def update_events(doc: Participant) -> list[Event]:
    """participant-updated, for an announced participant."""
    if doc.status == domain.REGISTERED and doc.update_event_id:
        return [updated_event(doc)]
    return []


def screen(
    organization_id: str, participant_id: str, action: str, reason: str
) -> tuple[Participant, list[Event]]:
    """Approve, reject, waitlist or withdraw, with the events that report it (outbox):
    application-screened, participant-registered on approval, participant-withdrawn for an
    announced participant. A retry (the participant is there already) returns its events
    again, under the same ids."""
    doc = get_participant(organization_id, participant_id)
    target = domain.participant_transition(doc.status or domain.REGISTERED, action)
    if target is None:
        return doc, _screening_events(doc, action)  # there already: a retry
    if action == domain.APPROVE:
        program = find_program(doc.organization_id, doc.program_id)
        domain.require_accepting(program.status or domain.OPEN)
    changes: dict[str, Any] = {
        "status": target,
        "status_reason": reason,
        "status_changed_at": clock.now(),
    }
    if action == domain.WITHDRAW and doc.status == domain.REGISTERED:
        # Only an announced participant's withdrawal concerns the other services.
        changes["withdraw_event_id"] = str(uuid.uuid4())
    return set_participant(doc, lambda changed: _screening_events(changed, action), **changes)


def _screening_events(doc: Participant, action: str) -> list[Event]:
    events = [e for e in (application_screened_event(doc),) if e is not None]
    if action == domain.APPROVE:
        events.append(registered_event(doc))
    if action == domain.WITHDRAW and doc.withdraw_event_id:
        events.append(withdrawn_event(doc))
    return events


def update_profile(
    organization_id: str,
    participant_id: str,
    profile: common_pb2.Profile,
    skills: list[str],
    capacity: int,
    display_name: str,
    keep_identity: bool = False,
) -> tuple[Participant, list[Event]]:
    """Apply a profile update, with participant-updated for an announced participant (outbox;
    also on a repeat that changes nothing, under the same id). With keep_identity (the
    participant's own update) the HR identifiers stay as stored: only HR, imports and
    coordinators set or clear them."""
    doc = get_participant(organization_id, participant_id)
    domain.require_updatable(doc.status or domain.REGISTERED)
    if keep_identity:
        profile = _with_identity_of(profile, profile_of(doc))
    name = require_text("display_name", display_name) if display_name else doc.display_name
    new_skills = list(domain.normalize_skills(skills)) if skills else list(doc.skills)
    new_capacity = domain.validate_capacity(doc.role, capacity) if capacity else doc.capacity
    validate_profile(doc.role, profile)
    if profile.cohort_id:
        _require_cohort(doc.organization_id, doc.program_id, profile.cohort_id)
    if profile.hr_person_id:
        _require_hr_id_free(
            doc.organization_id, doc.program_id, doc.role, profile.hr_person_id, doc.email
        )
    stored = profile.SerializeToString(deterministic=True)
    current = (doc.display_name, list(doc.skills), doc.capacity, stored_profile(doc))
    if current == (name, new_skills, new_capacity, stored):
        return doc, update_events(doc)  # nothing new: a retry
    changes: dict[str, Any] = {
        "display_name": name,
        "skills": new_skills,
        "capacity": new_capacity,
        "profile": stored,
        "hr_person_id": profile.hr_person_id,
        "updated_at": clock.now(),
    }
    if doc.status == domain.REGISTERED:
        changes["update_event_id"] = str(uuid.uuid4())
    return set_participant(doc, update_events, **changes)


def _with_identity_of(
    profile: common_pb2.Profile, stored: common_pb2.Profile
) -> common_pb2.Profile:
    kept = common_pb2.Profile()
    kept.CopyFrom(profile)
    kept.hr_person_id, kept.manager_id = stored.hr_person_id, stored.manager_id
    return kept
