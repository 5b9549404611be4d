"""EnrollmentService over gRPC."""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from grpc import aio
from mongoengine.errors import NotUniqueError

from services.common import clock, pagination
from services.common.api import common_pb2, enrollment_pb2, enrollment_pb2_grpc, events_pb2
from services.common.errors import AlreadyExists, NotFound
from services.common.events import new_event
from services.common.kafka import EventPublisher
from services.common.storage import run_sync
from services.common.validation import require_id
from services.enrollment import domain
from services.enrollment.documents import Participant, Program

ROLE_NAMES = {common_pb2.ROLE_MENTOR: domain.MENTOR, common_pb2.ROLE_MENTEE: domain.MENTEE}
ROLE_VALUES = {name: value for value, name in ROLE_NAMES.items()}


def program_message(doc: Program) -> enrollment_pb2.Program:
    msg = enrollment_pb2.Program(
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        name=doc.name,
        objective=doc.objective,
    )
    msg.created_at.FromDatetime(doc.created_at)
    return msg


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
    )
    msg.registered_at.FromDatetime(doc.registered_at)
    return msg


def _profile(doc: Participant) -> common_pb2.Profile:
    return common_pb2.Profile.FromString(doc.profile or b"")


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
        ),
    )


def _find_program(organization_id: str, program_id: str) -> Program:
    program = Program.objects(organization_id=organization_id, program_id=program_id).first()
    if program is None:
        raise NotFound(f"program_id: no program {program_id!r} in organization {organization_id!r}")
    return program


def _create_program(draft: domain.ProgramDraft) -> Program:
    return Program(
        organization_id=draft.organization_id,
        program_id=str(uuid.uuid4()),
        name=draft.name,
        objective=draft.objective,
        created_at=clock.now(),
    ).save()


def _register(draft: domain.RegistrationDraft, profile: bytes) -> Participant:
    """Store the participant once; a retry of the same registration returns the stored one."""
    _find_program(draft.organization_id, draft.program_id)
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
        registered_at=clock.now(),
        event_id=str(uuid.uuid4()),
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
            existing.profile or b"",
        ) == (draft.display_name, draft.skills, draft.capacity, profile)
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
    organization_id: str, program_id: str, role: str | None, size: int, after: str | None
) -> list[Participant]:
    query = Participant.objects(organization_id=organization_id, program_id=program_id)
    if role:
        query = query.filter(role=role)
    if after:
        query = query.filter(participant_id__gt=after)
    return list(query.order_by("participant_id").limit(size))


class EnrollmentServicer(enrollment_pb2_grpc.EnrollmentServiceServicer):
    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def CreateProgram(
        self, request: enrollment_pb2.CreateProgramRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Program:
        draft = domain.validate_program(request.organization_id, request.name, request.objective)
        return program_message(await run_sync(_create_program, draft))

    async def GetProgram(
        self, request: enrollment_pb2.GetProgramRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Program:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        return program_message(await run_sync(_find_program, org, program_id))

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
        # Deterministic bytes, so a retry's profile compares equal to the stored one.
        profile = request.profile.SerializeToString(deterministic=True)
        doc = await run_sync(_register, draft, profile)
        # Published on every call, retries included, with the stored event id: a caller that
        # saw an error retries, and consumers drop the duplicate if the first send got through.
        await self._publisher.publish([registered_event(doc)])
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
        size = pagination.page_size(request.page_size)
        after = pagination.decode_token(request.page_token)
        docs = await run_sync(
            _list_participants, org, program_id, ROLE_NAMES.get(request.role), size, after
        )
        token = pagination.encode_token(docs[-1].participant_id) if len(docs) == size else ""
        return enrollment_pb2.ListParticipantsResponse(
            participants=[participant_message(d) for d in docs], next_page_token=token
        )
