"""Enrollment rules: what a valid program and registration look like. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from services.common.errors import FailedPrecondition, InvalidArgument
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


# --- program lifecycle ---------------------------------------------------------------------

DRAFT, OPEN, RUNNING, CLOSED = "draft", "open", "running", "closed"
PROGRAM_STATUSES = (DRAFT, OPEN, RUNNING, CLOSED)
# One step at a time, never back: a closed program stays closed.
_NEXT_STATUS = {DRAFT: OPEN, OPEN: RUNNING, RUNNING: CLOSED}
ACCEPTING = frozenset({OPEN, RUNNING})

OBJECTIVES = ("leadership", "onboarding", "knowledge_transfer", "diversity", "reskilling", "other")
SINGLE_CHOICE, MULTI_CHOICE, TEXT, SCALE = "single_choice", "multi_choice", "text", "scale"
QUESTION_KINDS = (SINGLE_CHOICE, MULTI_CHOICE, TEXT, SCALE)
MAX_QUESTIONS = 50
MAX_OPTIONS = 50
MAX_TEXT_ANSWER = 2000
MAX_TIMEFRAME_MONTHS = 60
MAX_CADENCE_DAYS = 365
SCALE_VALUES = ("1", "2", "3", "4", "5")


def initial_status(requested: str | None) -> str:
    """A new program starts OPEN (as programs always did) unless it is asked to be a DRAFT."""
    if requested is None:
        return OPEN
    if requested not in (DRAFT, OPEN):
        raise InvalidArgument("initial_status", "a new program is PROGRAM_STATUS_DRAFT or _OPEN")
    return requested


def program_transition(current: str, target: str | None) -> bool:
    """Whether moving current -> target changes anything; raises if the move is not allowed."""
    if target not in PROGRAM_STATUSES:
        raise InvalidArgument("status", "must be DRAFT, OPEN, RUNNING or CLOSED")
    if target == current:
        return False
    allowed = _NEXT_STATUS.get(current)
    if allowed != target:
        after = f"can only become {allowed}" if allowed else "cannot change any more"
        raise FailedPrecondition(f"status: a {current} program {after}, not {target}")
    return True


def require_accepting(status: str) -> None:
    if status not in ACCEPTING:
        raise FailedPrecondition(
            f"program_id: the program is {status}; people register only while it is open or running"
        )


def require_editable(status: str) -> None:
    if status == CLOSED:
        raise FailedPrecondition("program_id: a closed program cannot change")


@dataclass(frozen=True, slots=True)
class Question:
    question_id: str
    text: str
    kind: str | None
    options: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True, slots=True)
class ProgramSettingsDraft:
    objectives: tuple[str, ...]
    measurable_targets: str
    target_audience: str
    timeframe_months: int
    meeting_cadence_days: int
    questions: tuple[Question, ...]


def _validate_question(field: str, question: Question) -> Question:
    question_id = require_id(f"{field}.question_id", question.question_id)
    text = require_text(f"{field}.text", question.text, 500)
    if question.kind not in QUESTION_KINDS:
        raise InvalidArgument(f"{field}.kind", "must be single choice, multi choice, text or scale")
    options: dict[str, None] = {}
    if question.kind in (SINGLE_CHOICE, MULTI_CHOICE):
        for i, raw in enumerate(question.options):
            option = require_text(f"{field}.options[{i}]", raw)
            if ";" in option:
                raise InvalidArgument(f"{field}.options[{i}]", "must not contain ';'")
            if option.lower() in (o.lower() for o in options):
                raise InvalidArgument(f"{field}.options[{i}]", f"repeats {option!r}")
            options[option] = None
        if not 2 <= len(options) <= MAX_OPTIONS:
            raise InvalidArgument(f"{field}.options", f"a choice needs 2-{MAX_OPTIONS} options")
    elif question.options:
        raise InvalidArgument(f"{field}.options", f"a {question.kind} question has no options")
    return Question(question_id, text, question.kind, tuple(options), question.required)


def validate_settings(
    *,
    objectives: list[str | None],
    measurable_targets: str,
    target_audience: str,
    timeframe_months: int,
    meeting_cadence_days: int,
    questions: list[Question],
    field: str = "settings",
) -> ProgramSettingsDraft:
    """Check a program's settings, naming the first bad field; None stands for an unknown enum."""
    seen: dict[str, None] = {}
    for i, objective in enumerate(objectives):
        if objective not in OBJECTIVES:
            raise InvalidArgument(f"{field}.objectives[{i}]", f"must be one of {OBJECTIVES}")
        seen.setdefault(objective, None)
    for name, text in (
        ("measurable_targets", measurable_targets),
        ("target_audience", target_audience),
    ):
        if len(text.strip()) > 2000:
            raise InvalidArgument(f"{field}.{name}", "must be at most 2000 characters")
    if timeframe_months > MAX_TIMEFRAME_MONTHS:
        raise InvalidArgument(
            f"{field}.timeframe_months", f"must be 0 (not set) to {MAX_TIMEFRAME_MONTHS}"
        )
    if meeting_cadence_days > MAX_CADENCE_DAYS:
        raise InvalidArgument(
            f"{field}.meeting_cadence_days", f"must be 0 (not set) to {MAX_CADENCE_DAYS}"
        )
    if len(questions) > MAX_QUESTIONS:
        raise InvalidArgument(f"{field}.application_questions", f"at most {MAX_QUESTIONS}")
    checked: list[Question] = []
    for i, question in enumerate(questions):
        good = _validate_question(f"{field}.application_questions[{i}]", question)
        if any(q.question_id == good.question_id for q in checked):
            raise InvalidArgument(
                f"{field}.application_questions[{i}].question_id", f"repeats {good.question_id!r}"
            )
        checked.append(good)
    return ProgramSettingsDraft(
        objectives=tuple(seen),
        measurable_targets=measurable_targets.strip(),
        target_audience=target_audience.strip(),
        timeframe_months=timeframe_months,
        meeting_cadence_days=meeting_cadence_days,
        questions=tuple(checked),
    )


def _choice(field: str, question: Question, raw: str) -> str:
    for option in question.options:
        if option.lower() == raw.lower():
            return option
    raise InvalidArgument(field, f"{raw!r} is not one of the options {list(question.options)}")


def validate_answers(questions: tuple[Question, ...], answers: dict[str, str]) -> dict[str, str]:
    """The answers, normalised: choices spelled as the options, multi choice joined by ';'.
    Names the bad answer as answers[<question id>]."""
    by_id = {q.question_id: q for q in questions}
    for question_id in sorted(answers):
        if question_id not in by_id:
            raise InvalidArgument(f"answers[{question_id}]", "is not a question of this program")
    normalized: dict[str, str] = {}
    for question in questions:
        field = f"answers[{question.question_id}]"
        raw = answers.get(question.question_id, "").strip()
        if not raw:
            if question.required:
                raise InvalidArgument(field, "is required")
            continue
        if question.kind == SINGLE_CHOICE:
            normalized[question.question_id] = _choice(field, question, raw)
        elif question.kind == MULTI_CHOICE:
            picked: dict[str, None] = {}
            for part in raw.split(";"):
                if part.strip():
                    picked.setdefault(_choice(field, question, part.strip()), None)
            if not picked and question.required:
                raise InvalidArgument(field, "is required")
            normalized[question.question_id] = ";".join(picked)
        elif question.kind == SCALE:
            if raw not in SCALE_VALUES:
                raise InvalidArgument(field, "must be a whole number from 1 to 5")
            normalized[question.question_id] = raw
        else:
            if len(raw) > MAX_TEXT_ANSWER:
                raise InvalidArgument(field, f"must be at most {MAX_TEXT_ANSWER} characters")
            normalized[question.question_id] = raw
    return normalized


def validate_campaign(campaign: str) -> str:
    campaign = campaign.strip()
    if len(campaign) > 100:
        raise InvalidArgument("campaign", "must be at most 100 characters")
    return campaign


@dataclass(frozen=True, slots=True)
class CohortDraft:
    cohort_id: str | None
    name: str


def validate_cohort(
    cohort_id: str, name: str, starts_on: datetime | None, ends_on: datetime | None
) -> CohortDraft:
    if cohort_id:
        require_id("cohort_id", cohort_id)
    name = require_text("name", name)
    if starts_on is not None and ends_on is not None and ends_on <= starts_on:
        raise InvalidArgument("ends_on", "must be after starts_on")
    return CohortDraft(cohort_id or None, name)


# --- participant screening -----------------------------------------------------------------

APPLIED, WAITLISTED, REJECTED, REGISTERED, WITHDRAWN = (
    "applied",
    "waitlisted",
    "rejected",
    "registered",
    "withdrawn",
)
PARTICIPANT_STATUSES = (APPLIED, WAITLISTED, REJECTED, REGISTERED, WITHDRAWN)
APPROVE, REJECT, WAITLIST, WITHDRAW = "approve", "reject", "waitlist", "withdraw"
# action -> (statuses it applies to, status it leads to)
_SCREENING: dict[str, tuple[frozenset[str], str]] = {
    APPROVE: (frozenset({APPLIED, WAITLISTED}), REGISTERED),
    REJECT: (frozenset({APPLIED, WAITLISTED}), REJECTED),
    WAITLIST: (frozenset({APPLIED}), WAITLISTED),
    WITHDRAW: (frozenset({APPLIED, WAITLISTED, REGISTERED}), WITHDRAWN),
}
# Whose profile may still change.
UPDATABLE = frozenset({APPLIED, WAITLISTED, REGISTERED})


def initial_participant_status(requires_approval: bool) -> str:
    return APPLIED if requires_approval else REGISTERED


def participant_transition(current: str, action: str) -> str | None:
    """The status after action, or None when the participant is there already (a retry)."""
    sources, target = _SCREENING[action]
    if current == target:
        return None
    if current not in sources:
        raise FailedPrecondition(f"participant_id: cannot {action} a participant who is {current}")
    return target


def require_reason(reason: str, action: str) -> str:
    if action in (REJECT, WITHDRAW):
        return require_text("reason", reason, 500)
    if len(reason.strip()) > 500:
        raise InvalidArgument("reason", "must be at most 500 characters")
    return reason.strip()


def require_updatable(status: str) -> None:
    if status not in UPDATABLE:
        raise FailedPrecondition(f"participant_id: the participant is {status}")


def validate_capacity(role: str, capacity: int) -> int:
    if role == MENTOR and not 1 <= capacity <= MAX_CAPACITY:
        raise InvalidArgument("capacity", f"a mentor takes 1-{MAX_CAPACITY} mentees")
    if role == MENTEE and capacity != 0:
        raise InvalidArgument("capacity", "must be 0 for a mentee")
    return capacity
