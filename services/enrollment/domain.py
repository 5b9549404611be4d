"""Enrollment rules: what a valid program and registration look like. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.common.errors import InvalidArgument
from services.common.validation import require_id, require_text

MENTOR, MENTEE = "mentor", "mentee"
MAX_CAPACITY = 20
MAX_SKILLS = 50

# Deliberately loose: one @, a dot in the domain, no spaces. Deliverability is not ours to judge.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SKILL = re.compile(r"^[a-z0-9][a-z0-9 +#./&-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ProgramDraft:
    organization_id: str
    name: str
    objective: str


def validate_program(organization_id: str, name: str, objective: str) -> ProgramDraft:
    return ProgramDraft(
        organization_id=require_id("organization_id", organization_id),
        name=require_text("name", name),
        objective=objective.strip()[:2000],
    )


@dataclass(frozen=True, slots=True)
class RegistrationDraft:
    organization_id: str
    program_id: str
    role: str
    display_name: str
    email: str
    skills: tuple[str, ...]
    capacity: int


def normalize_skills(skills: list[str]) -> tuple[str, ...]:
    """Lower-case, trimmed, de-duplicated in first-seen order (order is the mentee's priority)."""
    seen: dict[str, None] = {}
    for index, raw in enumerate(skills):
        skill = " ".join(raw.lower().split())
        if not _SKILL.match(skill):
            raise InvalidArgument(
                f"skills[{index}]", "must be 1-64 letters, digits, spaces or + # . / & -"
            )
        seen.setdefault(skill, None)
    if not seen:
        raise InvalidArgument("skills", "at least one skill is required")
    if len(seen) > MAX_SKILLS:
        raise InvalidArgument("skills", f"at most {MAX_SKILLS} skills")
    return tuple(seen)


def validate_registration(
    *,
    organization_id: str,
    program_id: str,
    role: str | None,
    display_name: str,
    email: str,
    skills: list[str],
    capacity: int,
) -> RegistrationDraft:
    """Check every field, naming the first one that is wrong."""
    organization_id = require_id("organization_id", organization_id)
    program_id = require_id("program_id", program_id)
    if role not in (MENTOR, MENTEE):
        raise InvalidArgument("role", "must be ROLE_MENTOR or ROLE_MENTEE")
    display_name = require_text("display_name", display_name)
    email = email.strip().lower()
    if not email:
        raise InvalidArgument("email", "is required")
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidArgument("email", f"is not an e-mail address: {email!r}")
    normalized = normalize_skills(skills)
    if role == MENTOR and not 1 <= capacity <= MAX_CAPACITY:
        raise InvalidArgument("capacity", f"a mentor takes 1-{MAX_CAPACITY} mentees")
    if role == MENTEE and capacity != 0:
        raise InvalidArgument("capacity", "must be 0 for a mentee")
    return RegistrationDraft(
        organization_id, program_id, role, display_name, email, normalized, capacity
    )


_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
MAX_JOB_LEVEL = 20
MAX_LIST = 20


def validate_profile(
    *,
    role: str,
    hr_person_id: str,
    manager_id: str,
    department: str,
    location: str,
    timezone_known: bool | None,
    languages: list[str],
    job_level: int,
    goals: list[str],
    availability: list[tuple[int, int, int]],
    preferred_mentor_ids: list[str],
    cohort_id: str,
) -> None:
    """Check the optional profile; every field may be empty. timezone_known is None when no
    time zone was given, else whether the zone database knows it."""
    for field, value in (
        ("hr_person_id", hr_person_id),
        ("manager_id", manager_id),
        ("cohort_id", cohort_id),
    ):
        if value:
            require_id(f"profile.{field}", value)
    if hr_person_id and hr_person_id == manager_id:
        raise InvalidArgument("profile.manager_id", "a person cannot be their own manager")
    for field, value in (("department", department), ("location", location)):
        if len(value) > 200:
            raise InvalidArgument(f"profile.{field}", "must be at most 200 characters")
    if timezone_known is False:
        raise InvalidArgument("profile.timezone", "is not an IANA time zone such as Europe/Paris")
    for i, language in enumerate(languages):
        if not _LANGUAGE.match(language):
            raise InvalidArgument(f"profile.languages[{i}]", "must be a language code such as en")
    if job_level > MAX_JOB_LEVEL:
        raise InvalidArgument("profile.job_level", f"must be 0 (not stated) to {MAX_JOB_LEVEL}")
    for field, items in (
        ("languages", languages),
        ("goals", goals),
        ("availability", availability),
        ("preferred_mentor_ids", preferred_mentor_ids),
    ):
        if len(items) > MAX_LIST:
            raise InvalidArgument(f"profile.{field}", f"at most {MAX_LIST} entries")
    for i, goal in enumerate(goals):
        require_text(f"profile.goals[{i}]", goal)
    for i, (weekday, start, end) in enumerate(availability):
        if not 1 <= weekday <= 7:
            raise InvalidArgument(f"profile.availability[{i}].weekday", "must be 1 (Monday) to 7")
        if not start < end <= 24 * 60:
            raise InvalidArgument(
                f"profile.availability[{i}].end_minute", "must be after start_minute, at most 1440"
            )
    if preferred_mentor_ids and role != MENTEE:
        raise InvalidArgument("profile.preferred_mentor_ids", "only a mentee chooses mentors")
    for i, mentor_id in enumerate(preferred_mentor_ids):
        require_id(f"profile.preferred_mentor_ids[{i}]", mentor_id)
