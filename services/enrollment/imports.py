"""ImportParticipants' rules: what a row asks for, checked as RegisterParticipant checks a
registration, and what it does to someone already in the program. Pure: no I/O."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from services.common.api import common_pb2, enrollment_pb2
from services.common.errors import DomainError, InvalidArgument
from services.enrollment import domain
from services.enrollment.convert import ROLE_NAMES, validate_profile

# Rows per call: a few hundred commit in one transaction; more would hold the program's import
# lock (and the client's memory) longer without being faster.
MAX_ROWS = 1000

REGISTERED, APPLIED = "registered", "applied"
UPDATED, UNCHANGED, FAILED = "updated", "unchanged", "failed"


@dataclass(frozen=True, slots=True)
class RowResult:
    row: int
    outcome: str
    participant_id: str = ""
    field: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A row whose fields are valid on their own; the program decides the rest."""

    row: int
    draft: domain.RegistrationDraft
    profile: common_pb2.Profile
    answers: dict[str, str]
    campaign: str
    digest: str

    @property
    def hr_person_id(self) -> str:
        return self.profile.hr_person_id

    @property
    def person(self) -> tuple[str, str]:
        """Who the row is in the program: one HR person in one role."""
        return self.draft.role, self.profile.hr_person_id


def failed(row: int, error: DomainError) -> RowResult:
    """The row's result for an error raised as "field: problem" (every check in the service)."""
    if isinstance(error, InvalidArgument):
        field = error.field
        return RowResult(row, FAILED, field=field, reason=str(error).removeprefix(f"{field}: "))
    name, sep, problem = str(error).partition(": ")
    if not sep or " " in name:
        return RowResult(row, FAILED, reason=str(error))
    return RowResult(row, FAILED, field=name, reason=problem)


def digest(row: enrollment_pb2.ImportRow) -> str:
    """The row's content without its number: the same person's same row in any file."""
    content = enrollment_pb2.ImportRow()
    content.CopyFrom(row)
    content.row = 0
    return hashlib.sha256(content.SerializeToString(deterministic=True)).hexdigest()[:32]


def check_row(
    organization_id: str, program_id: str, row: enrollment_pb2.ImportRow
) -> Candidate | RowResult:
    """The row as a candidate registration, or why it cannot be one (its first bad field)."""
    try:
        draft = domain.validate_registration(
            organization_id=organization_id,
            program_id=program_id,
            role=ROLE_NAMES.get(row.role),
            display_name=row.display_name,
            email=row.email,
            skills=list(row.skills),
            capacity=row.capacity,
        )
        if not row.profile.hr_person_id:
            raise InvalidArgument(
                "profile.hr_person_id", "is required to import (it makes import repeatable)"
            )
        validate_profile(draft.role, row.profile)
        campaign = domain.validate_campaign(row.campaign)
    except InvalidArgument as exc:
        return failed(row.row, exc)
    return Candidate(row.row, draft, row.profile, dict(row.answers), campaign, digest(row))


def merged_profile(stored: common_pb2.Profile, given: common_pb2.Profile) -> common_pb2.Profile:
    """The stored profile with every field the row sets replaced: what HR states wins, and what
    the person added themselves (goals, availability, …) stays."""
    merged = common_pb2.Profile()
    merged.CopyFrom(stored)
    for field, _ in given.ListFields():
        if field.is_repeated:
            del getattr(merged, field.name)[:]  # replaced, not appended to
    merged.MergeFrom(given)
    return merged
