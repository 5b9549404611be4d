"""Enrollment's records as API messages and events, and the checks that turn a request's
settings and profile into what is stored. Event ids come from the stored documents, so a
retried request republishes the same ids and consumers drop the copies."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.api import common_pb2, enrollment_pb2, events_pb2
from services.common.errors import InvalidArgument
from services.common.events import new_event
from services.enrollment import domain
from services.enrollment.documents import Cohort, Participant, Program

if TYPE_CHECKING:
    from services.enrollment.imports import RowResult

ROLE_NAMES = {common_pb2.ROLE_MENTOR: domain.MENTOR, common_pb2.ROLE_MENTEE: domain.MENTEE}


ROLE_VALUES = {name: value for value, name in ROLE_NAMES.items()}


def enum_name(enum_type: Any, prefix: str, value: int) -> str | None:
    """The domain name of an enum value ("PROGRAM_STATUS_OPEN" -> "open"); None for
    UNSPECIFIED or a number this contract does not know."""
    if value == 0:
        return None
    try:
        return str(enum_type.Name(value)).removeprefix(prefix).lower()
    except ValueError:
        return None


def program_status_name(value: int) -> str | None:
    return enum_name(events_pb2.ProgramStatus, "PROGRAM_STATUS_", value)


def program_status_value(name: str) -> events_pb2.ProgramStatus.ValueType:
    if not name:
        return events_pb2.PROGRAM_STATUS_UNSPECIFIED
    return events_pb2.ProgramStatus.Value(f"PROGRAM_STATUS_{name.upper()}")


def participant_status_name(value: int) -> str | None:
    return enum_name(enrollment_pb2.ParticipantStatus, "PARTICIPANT_STATUS_", value)


def participant_status_value(name: str) -> enrollment_pb2.ParticipantStatus.ValueType:
    return enrollment_pb2.ParticipantStatus.Value(f"PARTICIPANT_STATUS_{name.upper()}")


def objective_value(name: str) -> events_pb2.ProgramObjective.ValueType:
    return events_pb2.ProgramObjective.Value(f"PROGRAM_OBJECTIVE_{name.upper()}")


def kind_value(name: str | None) -> events_pb2.QuestionKind.ValueType:
    return events_pb2.QuestionKind.Value(f"QUESTION_KIND_{(name or 'unspecified').upper()}")


def timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


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
            enum_name(events_pb2.ProgramObjective, "PROGRAM_OBJECTIVE_", o)
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
                enum_name(events_pb2.QuestionKind, "QUESTION_KIND_", q.kind),
                tuple(q.options),
                q.required,
            )
            for q in settings.application_questions
        ],
        field=field,
    )
    normalized = events_pb2.ProgramSettings(
        objectives=[objective_value(o) for o in draft.objectives],
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
                kind=kind_value(q.kind),
                options=q.options,
                required=q.required,
            )
            for q in draft.questions
        ],
        requires_approval=settings.requires_approval,
    )
    return normalized, draft


def settings_of(doc: Program) -> events_pb2.ProgramSettings:
    return events_pb2.ProgramSettings.FromString(bytes(doc.settings or b""))


def questions_of(doc: Program) -> tuple[domain.Question, ...]:
    return tuple(
        domain.Question(
            q.question_id,
            q.text,
            enum_name(events_pb2.QuestionKind, "QUESTION_KIND_", q.kind),
            tuple(q.options),
            q.required,
        )
        for q in settings_of(doc).application_questions
    )


def program_message(doc: Program) -> enrollment_pb2.Program:
    msg = enrollment_pb2.Program(
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        name=doc.name,
        objective=doc.objective,
        settings=settings_of(doc),
        status=program_status_value(doc.status),
        version=doc.version,
        updated_at=timestamp(doc.updated_at or doc.created_at),
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
            settings=settings_of(doc),
            status=program_status_value(doc.status),
            previous_status=program_status_value(doc.previous_status),
            change=doc.change,
            version=doc.version,
        ),
    )


def cohort_message(doc: Cohort) -> enrollment_pb2.Cohort:
    return enrollment_pb2.Cohort(
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        cohort_id=doc.cohort_id,
        name=doc.name,
        starts_on=timestamp(doc.starts_on),
        ends_on=timestamp(doc.ends_on),
        created_at=timestamp(doc.created_at),
    )


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
        profile=profile_of(doc),
        status=participant_status_value(doc.status or domain.REGISTERED),
        status_reason=doc.status_reason or "",
        status_changed_at=timestamp(doc.status_changed_at or doc.registered_at),
        answers=dict(doc.answers or {}),
        campaign=doc.campaign or "",
    )
    msg.registered_at.FromDatetime(doc.registered_at)
    return msg


def stored_profile(doc: Participant) -> bytes:
    # bytes(): the driver may hand back bson.Binary, which never equals plain bytes.
    return bytes(doc.profile or b"")


def profile_of(doc: Participant) -> common_pb2.Profile:
    return common_pb2.Profile.FromString(stored_profile(doc))


def shared_profile(doc: Participant) -> common_pb2.Profile:
    """The profile as other services see it: demographics only with the person's consent."""
    profile = profile_of(doc)
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
        starts_on=timestamp(doc.leave_starts_on), ends_on=timestamp(doc.leave_ends_on)
    )


def registered_event(doc: Participant) -> events_pb2.Event:
    return new_event(
        producer="enrollment",
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        event_id=doc.event_id,
        occurred_at=doc.registered_at,
        payload=events_pb2.ParticipantRegistered(**_person(doc), campaign=doc.campaign or ""),
    )


def updated_event(doc: Participant) -> events_pb2.Event:
    return new_event(
        producer="enrollment",
        organization_id=doc.organization_id,
        program_id=doc.program_id,
        event_id=doc.update_event_id,
        occurred_at=doc.updated_at,
        payload=events_pb2.ParticipantUpdated(**_person(doc)),
    )


def _person(doc: Participant) -> dict[str, Any]:
    """The participant as participant-registered and participant-updated both describe them."""
    return {
        "participant_id": doc.participant_id,
        "role": ROLE_VALUES[doc.role],
        "display_name": doc.display_name,
        # For the notification service: the one service that writes to people.
        "email": doc.email,
        "skills": doc.skills,
        "capacity": doc.capacity,
        "profile": shared_profile(doc),
        "leave": leave_message(doc),
    }


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


def import_result_message(result: RowResult) -> enrollment_pb2.ImportRowResult:
    return enrollment_pb2.ImportRowResult(
        row=result.row,
        outcome=enrollment_pb2.ImportOutcome.Value(f"IMPORT_OUTCOME_{result.outcome.upper()}"),
        participant_id=result.participant_id,
        field=result.field,
        reason=result.reason,
    )
