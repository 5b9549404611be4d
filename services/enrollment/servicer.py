"""EnrollmentService over gRPC."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio
from mongoengine.errors import NotUniqueError

from services.common import clock, pagination
from services.common.api import common_pb2, enrollment_pb2, enrollment_pb2_grpc, events_pb2
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.common.events import new_event
from services.common.kafka import EventPublisher
from services.common.storage import run_sync
from services.common.validation import require_id, require_text
from services.enrollment import domain
from services.enrollment.application_events import (
    application_screened_event,
    application_submitted_event,
)
from services.enrollment.documents import Cohort, Participant, Program

ROLE_NAMES = {common_pb2.ROLE_MENTOR: domain.MENTOR, common_pb2.ROLE_MENTEE: domain.MENTEE}
ROLE_VALUES = {name: value for value, name in ROLE_NAMES.items()}


def _enum_name(enum_type: Any, prefix: str, value: int) -> str | None:
    """The domain name of an enum value ("PROGRAM_STATUS_OPEN" -> "open"); None for
    UNSPECIFIED or a number this contract does not know."""
    if value == 0:
        return None
    try:
        return str(enum_type.Name(value)).removeprefix(prefix).lower()
    except ValueError:
        return None


def program_status_name(value: int) -> str | None:
    return _enum_name(events_pb2.ProgramStatus, "PROGRAM_STATUS_", value)


def program_status_value(name: str) -> events_pb2.ProgramStatus.ValueType:
    if not name:
        return events_pb2.PROGRAM_STATUS_UNSPECIFIED
    return events_pb2.ProgramStatus.Value(f"PROGRAM_STATUS_{name.upper()}")


def participant_status_name(value: int) -> str | None:
    return _enum_name(enrollment_pb2.ParticipantStatus, "PARTICIPANT_STATUS_", value)


def participant_status_value(name: str) -> enrollment_pb2.ParticipantStatus.ValueType:
    return enrollment_pb2.ParticipantStatus.Value(f"PARTICIPANT_STATUS_{name.upper()}")


def _objective_value(name: str) -> events_pb2.ProgramObjective.ValueType:
    return events_pb2.ProgramObjective.Value(f"PROGRAM_OBJECTIVE_{name.upper()}")


def _kind_value(name: str | None) -> events_pb2.QuestionKind.ValueType:
    return events_pb2.QuestionKind.Value(f"QUESTION_KIND_{(name or 'unspecified').upper()}")


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _datetime(message: Any, field: str) -> datetime | None:
    """A Timestamp field as a datetime at the millisecond precision the database keeps."""
    if not message.HasField(field):
        return None
    moment = getattr(message, field).ToDatetime(tzinfo=UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# --- programs ------------------------------------------------------------------------------


def validate_settings(
    settings: events_pb2.ProgramSettings, field: str = "settings"
) -> tuple[events_pb2.ProgramSettings, domain.ProgramSettingsDraft]:
    """Check a program's settings; return them normalised, as they are stored."""
    for name, enum_type in (
        ("mentor_source", events_pb2.MentorSource),
        ("matching_mode", events_pb2.ProgramMatchingMode),
    ):
        value = getattr(settings, name)
        if value not in enum_type.values():
            raise InvalidArgument(f"{field}.{name}", f"unknown value {value}")
    draft = domain.validate_settings(
        objectives=[
            _enum_name(events_pb2.ProgramObjective, "PROGRAM_OBJECTIVE_", o)
            for o in settings.objectives
        ],
        measurable_targets=settings.measurable_targets,
        target_audience=settings.target_audience,
        timeframe_months=settings.timeframe_months,
        meeting_cadence_days=settings.meeting_cadence_days,
        questions=[
            domain.Question(
                q.question_id,
                q.text,
                _enum_name(events_pb2.QuestionKind, "QUESTION_KIND_", q.kind),
                tuple(q.options),
                q.required,
            )
            for q in settings.application_questions
        ],
        field=field,
    )
    normalized = events_pb2.ProgramSettings(
        objectives=[_objective_value(o) for o in draft.objectives],
        measurable_targets=draft.measurable_targets,
        target_audience=draft.target_audience,
        mentor_source=settings.mentor_source,
        timeframe_months=draft.timeframe_months,
        meeting_cadence_days=draft.meeting_cadence_days,
        matching_mode=settings.matching_mode,
        application_questions=[
            events_pb2.ApplicationQuestion(
                question_id=q.question_id,
                text=q.text,
                kind=_kind_value(q.kind),
                options=q.options,
                required=q.required,
            )
            for q in draft.questions
        ],
        requires_approval=settings.requires_approval,
    )
    return normalized, draft


def _settings(doc: Program) -> events_pb2.ProgramSettings:
    return events_pb2.ProgramSettings.FromString(bytes(doc.settings or b""))


def _questions(doc: Program) -> tuple[domain.Question, ...]:
    return tuple(
        domain.Question(
            q.question_id,
            q.text,
            _enum_name(events_pb2.QuestionKind, "QUESTION_KIND_", q.kind),
            tuple(q.options),
            q.required,
        )
        for q in _settings(doc).application_questions
    )


def program_message(doc: Program) -> enrollment_pb2.Program:
    msg = enrollment_pb2.Program(
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        name=doc.name,
        objective=doc.objective,
        settings=_settings(doc),
        status=program_status_value(doc.status),
        version=doc.version,
        updated_at=_timestamp(doc.updated_at or doc.created_at),
    )
    msg.created_at.FromDatetime(doc.created_at)
    return msg


def program_changed_event(doc: Program) -> events_pb2.Event:
    """The program as it is, under the id of the change that made it so: a retry republishes
    the same event and consumers drop the duplicate."""
    return new_event(
        producer="enrollment",
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        event_id=doc.event_id,
        occurred_at=doc.updated_at or doc.created_at,
        payload=events_pb2.ProgramChanged(
            name=doc.name,
            objective=doc.objective,
            settings=_settings(doc),
            status=program_status_value(doc.status),
            previous_status=program_status_value(doc.previous_status),
            change=doc.change,
            version=doc.version,
        ),
    )


def _find_program(organization_id: str, program_id: str) -> Program:
    program = Program.objects(organization_id=organization_id, program_id=program_id).first()
    if program is None:
        raise NotFound(f"program_id: no program {program_id!r} in organization {organization_id!r}")
    return program


def _create_program(
    draft: domain.ProgramDraft, settings: events_pb2.ProgramSettings, status: str
) -> Program:
    now = clock.now()
    return Program(
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
    ).save()


def _save_change(doc: Program, change: str, **changes: Any) -> Program:
    """Apply a change unless someone changed the program since it was read.

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
    _apply_if_unchanged(
        Program.objects(pk=doc.pk, version=doc.version),
        doc,
        changes,
        "program_id: the program changed at the same time; try again",
    )
    return doc


def _apply_if_unchanged(query: Any, doc: Any, changes: dict[str, Any], conflict: str) -> None:
    """Set `changes` on the one document `query` selects, and on `doc`; none selected (someone
    changed it since it was read) is a FailedPrecondition with the `conflict` message.

    Times are cut to the millisecond BSON stores, so `doc` equals the stored document and can
    condition the next change.
    """
    changes = {
        name: value.replace(microsecond=value.microsecond // 1000 * 1000)
        if isinstance(value, datetime)
        else value
        for name, value in changes.items()
    }
    if not query.update_one(**{f"set__{name}": value for name, value in changes.items()}):
        raise FailedPrecondition(conflict)
    for name, value in changes.items():
        setattr(doc, name, value)


def _update_program(
    organization_id: str,
    program_id: str,
    name: str | None,
    objective: str | None,
    settings: events_pb2.ProgramSettings | None,
) -> tuple[Program, bool]:
    doc = _find_program(organization_id, program_id)
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
        return doc, False
    return _save_change(doc, "updated", **changes), True


def _change_status(organization_id: str, program_id: str, target: str | None) -> Program:
    doc = _find_program(organization_id, program_id)
    if not domain.program_transition(doc.status, target):
        return doc
    return _save_change(doc, "status_changed", status=target)


def _list_programs(
    organization_id: str, status: str | None, size: int, after: str | None
) -> list[Program]:
    query = Program.objects(organization_id=organization_id)
    if status:
        query = query.filter(status=status)
    if after:
        query = query.filter(program_id__gt=after)
    return list(query.order_by("program_id").limit(size))


# --- cohorts -------------------------------------------------------------------------------


def cohort_message(doc: Cohort) -> enrollment_pb2.Cohort:
    return enrollment_pb2.Cohort(
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        cohort_id=doc.cohort_id,
        name=doc.name,
        starts_on=_timestamp(doc.starts_on),
        ends_on=_timestamp(doc.ends_on),
        created_at=_timestamp(doc.created_at),
    )


def _same_moment(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.replace(tzinfo=a.tzinfo or UTC) == b.replace(tzinfo=b.tzinfo or UTC)


def _create_cohort(
    organization_id: str,
    program_id: str,
    draft: domain.CohortDraft,
    starts_on: datetime | None,
    ends_on: datetime | None,
) -> Cohort:
    program = _find_program(organization_id, program_id)
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
            and _same_moment(existing.starts_on, starts_on)
            and _same_moment(existing.ends_on, ends_on)
        ):
            return existing  # a retry
        raise AlreadyExists(f"cohort_id: {doc.cohort_id!r} exists in this program") from None


def _list_cohorts(
    organization_id: str, program_id: str, size: int, after: str | None
) -> list[Cohort]:
    _find_program(organization_id, program_id)
    query = Cohort.objects(organization_id=organization_id, program_id=program_id)
    if after:
        query = query.filter(cohort_id__gt=after)
    return list(query.order_by("cohort_id").limit(size))


def _require_cohort(organization_id: str, program_id: str, cohort_id: str) -> None:
    if not Cohort.objects(
        organization_id=organization_id, program_id=program_id, cohort_id=cohort_id
    ).first():
        raise InvalidArgument("profile.cohort_id", f"no cohort {cohort_id!r} in this program")


# --- participants --------------------------------------------------------------------------


def participant_message(doc: Participant) -> enrollment_pb2.Participant:
    msg = enrollment_pb2.Participant(
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        participant_id=doc.participant_id,
        role=ROLE_VALUES[doc.role],
        display_name=doc.display_name,
        email=doc.email,
        skills=doc.skills,
        capacity=doc.capacity,
        profile=_profile(doc),
        status=participant_status_value(doc.status or domain.REGISTERED),
        status_reason=doc.status_reason or "",
        status_changed_at=_timestamp(doc.status_changed_at or doc.registered_at),
        answers=dict(doc.answers or {}),
        campaign=doc.campaign or "",
    )
    msg.registered_at.FromDatetime(doc.registered_at)
    return msg


def _stored_profile(doc: Participant) -> bytes:
    # bytes(): the driver may hand back bson.Binary, which never equals plain bytes.
    return bytes(doc.profile or b"")


def _profile(doc: Participant) -> common_pb2.Profile:
    return common_pb2.Profile.FromString(_stored_profile(doc))


def shared_profile(doc: Participant) -> common_pb2.Profile:
    """The profile as other services see it: demographics only with the person's consent."""
    profile = _profile(doc)
    if not profile.demographics.use_for_matching:
        profile.ClearField("demographics")
    return profile


def _timezone_known(name: str) -> bool | None:
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def validate_profile(role: str, profile: common_pb2.Profile) -> None:
    domain.validate_profile(
        role=role,
        hr_person_id=profile.hr_person_id,
        manager_id=profile.manager_id,
        department=profile.department,
        location=profile.location,
        timezone_known=_timezone_known(profile.timezone),
        languages=list(profile.languages),
        job_level=profile.job_level,
        goals=list(profile.goals),
        availability=[(a.weekday, a.start_minute, a.end_minute) for a in profile.availability],
        preferred_mentor_ids=list(profile.preferred_mentor_ids),
        cohort_id=profile.cohort_id,
    )


def leave_message(doc: Participant) -> events_pb2.LeaveOfAbsence | None:
    """The leave of absence HR reported for the participant, if any (hr-events)."""
    if doc.leave_starts_on is None:
        return None
    return events_pb2.LeaveOfAbsence(
        starts_on=_timestamp(doc.leave_starts_on), ends_on=_timestamp(doc.leave_ends_on)
    )


def registered_event(doc: Participant) -> events_pb2.Event:
    return new_event(
        producer="enrollment",
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        event_id=doc.event_id,
        occurred_at=doc.registered_at,
        payload=events_pb2.ParticipantRegistered(
            participant_id=doc.participant_id,
            role=ROLE_VALUES[doc.role],
            display_name=doc.display_name,
            skills=doc.skills,
            capacity=doc.capacity,
            profile=shared_profile(doc),
            campaign=doc.campaign or "",
            leave=leave_message(doc),
        ),
    )


def updated_event(doc: Participant) -> events_pb2.Event:
    return new_event(
        producer="enrollment",
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        event_id=doc.update_event_id,
        occurred_at=doc.updated_at,
        payload=events_pb2.ParticipantUpdated(
            participant_id=doc.participant_id,
            role=ROLE_VALUES[doc.role],
            display_name=doc.display_name,
            skills=doc.skills,
            capacity=doc.capacity,
            profile=shared_profile(doc),
            leave=leave_message(doc),
        ),
    )


def withdrawn_event(doc: Participant) -> events_pb2.Event:
    return new_event(
        producer="enrollment",
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        event_id=doc.withdraw_event_id,
        occurred_at=doc.status_changed_at,
        payload=events_pb2.ParticipantWithdrawn(
            participant_id=doc.participant_id,
            role=ROLE_VALUES[doc.role],
            reason=doc.status_reason,
        ),
    )


def _require_hr_id_free(
    organization_id: str, program_id: str, role: str, hr_person_id: str, email: str
) -> None:
    """One participant per HR person and role in a program."""
    other = Participant.objects(
        organization_id=organization_id,
        program_id=program_id,
        role=role,
        hr_person_id=hr_person_id,
        email__ne=email,
    ).first()
    if other is not None:
        raise AlreadyExists(
            f"profile.hr_person_id: {hr_person_id!r} is already registered as {role} "
            f"with another e-mail ({other.participant_id})"
        )


def _register(
    draft: domain.RegistrationDraft,
    profile: bytes,
    answers: dict[str, str] | None = None,
    campaign: str = "",
) -> Participant:
    """Store the participant once; a retry of the same registration returns the stored one."""
    program = _find_program(draft.organization_id, draft.program_id)
    domain.require_accepting(program.status or domain.OPEN)
    normalized = domain.validate_answers(_questions(program), answers or {})
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
    try:
        return doc.save(force_insert=True)
    except NotUniqueError:
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
            _stored_profile(existing),
            dict(existing.answers or {}),
            existing.campaign or "",
        ) == (draft.display_name, draft.skills, draft.capacity, profile, normalized, campaign)
        if not same:
            raise AlreadyExists(
                f"email: {draft.email} is already registered as {draft.role} in this program"
            ) from None
        return existing


def _get_participant(organization_id: str, participant_id: str) -> Participant:
    doc = Participant.objects(
        organization_id=organization_id, participant_id=participant_id
    ).first()
    if doc is None:
        raise NotFound(f"participant_id: no participant {participant_id!r}")
    return doc


def _list_participants(
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


def _set_participant(doc: Participant, **changes: Any) -> Participant:
    """Apply a change unless the participant's status moved since it was read."""
    _apply_if_unchanged(
        Participant.objects(pk=doc.pk, status=doc.status, updated_at=doc.updated_at),
        doc,
        changes,
        "participant_id: the participant changed at the same time; retry",
    )
    return doc


def _screen(organization_id: str, participant_id: str, action: str, reason: str) -> Participant:
    doc = _get_participant(organization_id, participant_id)
    target = domain.participant_transition(doc.status or domain.REGISTERED, action)
    if target is None:
        return doc  # there already: a retry
    if action == domain.APPROVE:
        program = _find_program(doc.organization_id, doc.program_id)
        domain.require_accepting(program.status or domain.OPEN)
    changes: dict[str, Any] = {
        "status": target,
        "status_reason": reason,
        "status_changed_at": clock.now(),
    }
    if action == domain.WITHDRAW and doc.status == domain.REGISTERED:
        # Only an announced participant's withdrawal concerns the other services.
        changes["withdraw_event_id"] = str(uuid.uuid4())
    return _set_participant(doc, **changes)


def _update_profile(
    organization_id: str,
    participant_id: str,
    profile: common_pb2.Profile,
    skills: list[str],
    capacity: int,
    display_name: str,
) -> Participant:
    doc = _get_participant(organization_id, participant_id)
    domain.require_updatable(doc.status or domain.REGISTERED)
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
    current = (doc.display_name, list(doc.skills), doc.capacity, _stored_profile(doc))
    if current == (name, new_skills, new_capacity, stored):
        return doc  # nothing new: a retry
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
    return _set_participant(doc, **changes)


class EnrollmentServicer(enrollment_pb2_grpc.EnrollmentServiceServicer):
    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    # --- programs ---

    async def CreateProgram(
        self, request: enrollment_pb2.CreateProgramRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Program:
        draft = domain.validate_program(request.organization_id, request.name, request.objective)
        status = domain.initial_status(program_status_name(request.initial_status))
        settings, _ = validate_settings(request.settings)
        doc = await run_sync(_create_program, draft, settings, status)
        # A request in the shape from before program settings existed creates the program
        # exactly as it did then, quietly; one that uses them announces it.
        if request.HasField("settings") or request.initial_status:
            await self._publisher.publish([program_changed_event(doc)])
        return program_message(doc)

    async def GetProgram(
        self, request: enrollment_pb2.GetProgramRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Program:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        return program_message(await run_sync(_find_program, org, program_id))

    async def UpdateProgram(
        self, request: enrollment_pb2.UpdateProgramRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Program:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        name = require_text("name", request.name) if request.name else None
        objective = request.objective.strip()[:2000] if request.HasField("objective") else None
        settings = validate_settings(request.settings)[0] if request.HasField("settings") else None
        doc, _ = await run_sync(_update_program, org, program_id, name, objective, settings)
        # Republished when nothing changed too: the retry of a change whose event was lost.
        await self._publisher.publish([program_changed_event(doc)])
        return program_message(doc)

    async def ListPrograms(
        self, request: enrollment_pb2.ListProgramsRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.ListProgramsResponse:
        org = require_id("organization_id", request.organization_id)
        status = program_status_name(request.status)
        if request.status and status is None:
            raise InvalidArgument("status", f"unknown value {request.status}")
        size = pagination.page_size(request.page_size)
        after = pagination.decode_token(request.page_token)
        docs = await run_sync(_list_programs, org, status, size, after)
        token = pagination.encode_token(docs[-1].program_id) if len(docs) == size else ""
        return enrollment_pb2.ListProgramsResponse(
            programs=[program_message(d) for d in docs], next_page_token=token
        )

    async def ChangeProgramStatus(
        self, request: enrollment_pb2.ChangeProgramStatusRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Program:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        target = program_status_name(request.status)
        if target is None:
            raise InvalidArgument("status", "must be DRAFT, OPEN, RUNNING or CLOSED")
        doc = await run_sync(_change_status, org, program_id, target)
        await self._publisher.publish([program_changed_event(doc)])
        return program_message(doc)

    # --- cohorts ---

    async def CreateCohort(
        self, request: enrollment_pb2.CreateCohortRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Cohort:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        starts_on, ends_on = _datetime(request, "starts_on"), _datetime(request, "ends_on")
        draft = domain.validate_cohort(request.cohort_id, request.name, starts_on, ends_on)
        doc = await run_sync(_create_cohort, org, program_id, draft, starts_on, ends_on)
        return cohort_message(doc)

    async def ListCohorts(
        self, request: enrollment_pb2.ListCohortsRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.ListCohortsResponse:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        size = pagination.page_size(request.page_size)
        after = pagination.decode_token(request.page_token)
        docs = await run_sync(_list_cohorts, org, program_id, size, after)
        token = pagination.encode_token(docs[-1].cohort_id) if len(docs) == size else ""
        return enrollment_pb2.ListCohortsResponse(
            cohorts=[cohort_message(d) for d in docs], next_page_token=token
        )

    # --- participants ---

    async def RegisterParticipant(
        self, request: enrollment_pb2.RegisterParticipantRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Participant:
        draft = domain.validate_registration(
            organization_id=request.organization_id,
            program_id=request.program_id,
            role=ROLE_NAMES.get(request.role),
            display_name=request.display_name,
            email=request.email,
            skills=list(request.skills),
            capacity=request.capacity,
        )
        validate_profile(draft.role, request.profile)
        campaign = domain.validate_campaign(request.campaign)
        # Deterministic bytes, so a retry's profile compares equal to the stored one.
        profile = request.profile.SerializeToString(deterministic=True)
        doc = await run_sync(_register, draft, profile, dict(request.answers), campaign)
        # Published on every call, retries included, with the stored event id: a caller that
        # saw an error retries, and consumers drop the duplicate if the first send got through.
        # An application waiting for approval is not announced until it is approved.
        events = [application_submitted_event(doc)]
        if (doc.status or domain.REGISTERED) == domain.REGISTERED:
            events.append(registered_event(doc))
        await self._publisher.publish(events)
        return participant_message(doc)

    async def GetParticipant(
        self, request: enrollment_pb2.GetParticipantRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Participant:
        org = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        return participant_message(await run_sync(_get_participant, org, participant_id))

    async def ListParticipants(
        self, request: enrollment_pb2.ListParticipantsRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.ListParticipantsResponse:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        status = participant_status_name(request.status)
        if request.status and status is None:
            raise InvalidArgument("status", f"unknown value {request.status}")
        size = pagination.page_size(request.page_size)
        after = pagination.decode_token(request.page_token)
        docs = await run_sync(
            _list_participants, org, program_id, ROLE_NAMES.get(request.role), size, after, status
        )
        token = pagination.encode_token(docs[-1].participant_id) if len(docs) == size else ""
        return enrollment_pb2.ListParticipantsResponse(
            participants=[participant_message(d) for d in docs], next_page_token=token
        )

    async def _screen(
        self, request: enrollment_pb2.ScreenParticipantRequest, action: str
    ) -> Participant:
        org = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        reason = domain.require_reason(request.reason, action)
        doc = await run_sync(_screen, org, participant_id, action, reason)
        screened = application_screened_event(doc)
        if screened is not None:
            await self._publisher.publish([screened])
        return doc

    async def ApproveParticipant(
        self, request: enrollment_pb2.ScreenParticipantRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Participant:
        doc = await self._screen(request, domain.APPROVE)
        # Announced now, under the id kept since the application; a retry republishes it.
        await self._publisher.publish([registered_event(doc)])
        return participant_message(doc)

    async def RejectParticipant(
        self, request: enrollment_pb2.ScreenParticipantRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Participant:
        return participant_message(await self._screen(request, domain.REJECT))

    async def WaitlistParticipant(
        self, request: enrollment_pb2.ScreenParticipantRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Participant:
        return participant_message(await self._screen(request, domain.WAITLIST))

    async def UpdateParticipantProfile(
        self, request: enrollment_pb2.UpdateParticipantProfileRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Participant:
        org = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        doc = await run_sync(
            _update_profile,
            org,
            participant_id,
            request.profile,
            list(request.skills),
            request.capacity,
            request.display_name,
        )
        if doc.status == domain.REGISTERED and doc.update_event_id:
            await self._publisher.publish([updated_event(doc)])
        return participant_message(doc)

    async def WithdrawParticipant(
        self, request: enrollment_pb2.WithdrawParticipantRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Participant:
        org = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        reason = domain.require_reason(request.reason, domain.WITHDRAW)
        doc = await run_sync(_screen, org, participant_id, domain.WITHDRAW, reason)
        if doc.withdraw_event_id:
            await self._publisher.publish([withdrawn_event(doc)])
        return participant_message(doc)
