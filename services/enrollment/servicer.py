"""EnrollmentService over gRPC: the RPCs; storage is store.py, messages and events
convert.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from grpc import aio

from services.common import auth, pagination
from services.common.access import Principal
from services.common.api import enrollment_pb2, enrollment_pb2_grpc
from services.common.errors import InvalidArgument
from services.common.kafka import EventPublisher
from services.common.outbox import OutboxRelay
from services.common.storage import run_sync
from services.common.validation import require_id, require_text
from services.enrollment import domain
from services.enrollment.convert import (
    ROLE_NAMES,
    cohort_message,
    import_result_message,
    participant_message,
    participant_status_name,
    program_message,
    program_status_name,
    validate_profile,
    validate_settings,
)
from services.enrollment.import_store import import_rows
from services.enrollment.imports import MAX_ROWS
from services.enrollment.store import (
    change_status,
    create_cohort,
    create_program,
    find_program,
    get_participant,
    list_cohorts,
    list_participants,
    list_programs,
    register,
    screen,
    update_profile,
    update_program,
)


def _datetime(message: Any, field: str) -> datetime | None:
    """A Timestamp field as a datetime at the millisecond precision the database keeps."""
    if not message.HasField(field):
        return None
    moment = getattr(message, field).ToDatetime(tzinfo=UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _is_participant(principal: Principal | None) -> bool:
    """A verified caller acting as a participant, not staff (None: authentication is off)."""
    return principal is not None and not principal.is_staff


class EnrollmentServicer(enrollment_pb2_grpc.EnrollmentServiceServicer):
    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher
        # Every change commits with its events and publishes them through the outbox.
        self._outbox = OutboxRelay(publisher)

    # --- programs ---

    async def CreateProgram(
        self, request: enrollment_pb2.CreateProgramRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Program:
        draft = domain.validate_program(request.organization_id, request.name, request.objective)
        status = domain.initial_status(program_status_name(request.initial_status))
        settings, _ = validate_settings(request.settings)
        # A request in the shape from before program settings existed creates the program
        # exactly as it did then, quietly; one that uses them announces it.
        announce = request.HasField("settings") or bool(request.initial_status)
        doc, events = await run_sync(create_program, draft, settings, status, announce)
        await self._outbox.deliver(events)
        return program_message(doc)

    async def GetProgram(
        self, request: enrollment_pb2.GetProgramRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Program:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        return program_message(await run_sync(find_program, org, program_id))

    async def UpdateProgram(
        self, request: enrollment_pb2.UpdateProgramRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Program:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        name = require_text("name", request.name) if request.name else None
        objective = request.objective.strip()[:2000] if request.HasField("objective") else None
        settings = validate_settings(request.settings)[0] if request.HasField("settings") else None
        doc, events = await run_sync(update_program, org, program_id, name, objective, settings)
        await self._outbox.deliver(events)
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
        docs = await run_sync(list_programs, org, status, size, after)
        token = pagination.next_token(docs, size, lambda d: d.program_id)
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
        doc, events = await run_sync(change_status, org, program_id, target)
        await self._outbox.deliver(events)
        return program_message(doc)

    # --- cohorts ---

    async def CreateCohort(
        self, request: enrollment_pb2.CreateCohortRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Cohort:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        starts_on, ends_on = _datetime(request, "starts_on"), _datetime(request, "ends_on")
        draft = domain.validate_cohort(request.cohort_id, request.name, starts_on, ends_on)
        doc = await run_sync(create_cohort, org, program_id, draft, starts_on, ends_on)
        return cohort_message(doc)

    async def ListCohorts(
        self, request: enrollment_pb2.ListCohortsRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.ListCohortsResponse:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        size = pagination.page_size(request.page_size)
        after = pagination.decode_token(request.page_token)
        docs = await run_sync(list_cohorts, org, program_id, size, after)
        token = pagination.next_token(docs, size, lambda d: d.cohort_id)
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
        doc, events = await run_sync(register, draft, profile, dict(request.answers), campaign)
        await self._outbox.deliver(events)
        return participant_message(doc)

    async def GetParticipant(
        self, request: enrollment_pb2.GetParticipantRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Participant:
        org = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        return participant_message(await run_sync(get_participant, org, participant_id))

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
            list_participants, org, program_id, ROLE_NAMES.get(request.role), size, after, status
        )
        token = pagination.next_token(docs, size, lambda d: d.participant_id)
        return enrollment_pb2.ListParticipantsResponse(
            participants=[participant_message(d) for d in docs], next_page_token=token
        )

    async def _screen(
        self, request: enrollment_pb2.ScreenParticipantRequest, action: str
    ) -> enrollment_pb2.Participant:
        org = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        reason = domain.require_reason(request.reason, action)
        doc, events = await run_sync(screen, org, participant_id, action, reason)
        await self._outbox.deliver(events)
        return participant_message(doc)

    async def ApproveParticipant(
        self, request: enrollment_pb2.ScreenParticipantRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Participant:
        return await self._screen(request, domain.APPROVE)

    async def RejectParticipant(
        self, request: enrollment_pb2.ScreenParticipantRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Participant:
        return await self._screen(request, domain.REJECT)

    async def WaitlistParticipant(
        self, request: enrollment_pb2.ScreenParticipantRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Participant:
        return await self._screen(request, domain.WAITLIST)

    async def UpdateParticipantProfile(
        self, request: enrollment_pb2.UpdateParticipantProfileRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Participant:
        org = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        doc, events = await run_sync(
            update_profile,
            org,
            participant_id,
            request.profile,
            list(request.skills),
            request.capacity,
            request.display_name,
            _is_participant(auth.current()),
        )
        await self._outbox.deliver(events)
        return participant_message(doc)

    async def WithdrawParticipant(
        self, request: enrollment_pb2.WithdrawParticipantRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.Participant:
        org = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        reason = domain.require_reason(request.reason, domain.WITHDRAW)
        doc, events = await run_sync(screen, org, participant_id, domain.WITHDRAW, reason)
        await self._outbox.deliver(events)
        return participant_message(doc)

    async def ImportParticipants(
        self, request: enrollment_pb2.ImportParticipantsRequest, context: aio.ServicerContext
    ) -> enrollment_pb2.ImportParticipantsResponse:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        if not 1 <= len(request.rows) <= MAX_ROWS:
            raise InvalidArgument("rows", f"1-{MAX_ROWS:,} rows per call, got {len(request.rows)}")
        results, events = await run_sync(import_rows, org, program_id, request.rows)
        await self._outbox.deliver(events)
        return enrollment_pb2.ImportParticipantsResponse(
            results=[import_result_message(r) for r in results]
        )
