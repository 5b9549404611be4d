"""ImportParticipants' storage: a call's rows looked up with one query, then written in one
transaction with their events (the outbox, staged together). Blocking: call through
storage.run_sync.

One call's rows are decided in order against what the program holds plus what earlier rows of
the call decided, so a person twice in a call is created once. Calls for one program take
turns in this process (a lock per program): two calls that both saw a person missing would
otherwise both register them under different e-mails. Registrations racing in from elsewhere
meet the unique e-mail index, and the call runs again on what is stored then.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.common import clock, outbox
from services.common.api import common_pb2, enrollment_pb2
from services.common.errors import DomainError, FailedPrecondition
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import Transaction
from services.enrollment import domain
from services.enrollment.convert import questions_of
from services.enrollment.documents import Cohort, Participant, Program
from services.enrollment.imports import (
    APPLIED,
    FAILED,
    REGISTERED,
    UNCHANGED,
    UPDATED,
    Candidate,
    RowResult,
    check_row,
    failed,
    merged_profile,
)
from services.enrollment.store import find_program, registration_events, update_events

# A call whose e-mails someone registered meanwhile runs again; so does one whose participant
# changed between its read and its write.
ATTEMPTS = 3
DUPLICATE_KEY = 11000

_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def _program_lock(organization_id: str, program_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((organization_id, program_id), threading.Lock())


class _Raced(Exception):
    """Someone else wrote one of the call's people between its read and its write."""


def import_rows(
    organization_id: str, program_id: str, rows: Sequence[enrollment_pb2.ImportRow]
) -> tuple[list[RowResult], list[Event]]:
    """Import a call's rows; one result per row in their order, and the events to deliver
    (staged with the changes). The program must exist and accept registrations."""
    program = find_program(organization_id, program_id)
    domain.require_accepting(program.status or domain.OPEN)
    checked: list[Candidate | RowResult] = [
        check_row(organization_id, program_id, row) for row in rows
    ]
    checked = _check_against_program(program, checked)
    candidates = [c for c in checked if isinstance(c, Candidate)]
    with _program_lock(organization_id, program_id):
        for attempt in range(ATTEMPTS):
            try:
                decided, events = _write(program, candidates, by_email=attempt > 0)
                break
            except _Raced:
                if attempt == ATTEMPTS - 1:
                    raise FailedPrecondition(
                        "rows: participants of this program changed at the same time; retry"
                    ) from None
    results = iter(decided)
    return [c if isinstance(c, RowResult) else next(results) for c in checked], events


def _check_against_program(
    program: Program, checked: list[Candidate | RowResult]
) -> list[Candidate | RowResult]:
    """Answers against the program's questions, cohorts against its cohorts (one query)."""
    questions = questions_of(program)
    wanted = {c.profile.cohort_id for c in checked if isinstance(c, Candidate)} - {""}
    cohorts = (
        set(
            Cohort.objects(
                organization_id=program.organization_id,
                program_id=program.program_id,
                cohort_id__in=sorted(wanted),
            ).scalar("cohort_id")
        )
        if wanted
        else set()
    )
    out: list[Candidate | RowResult] = []
    for c in checked:
        if isinstance(c, RowResult):
            out.append(c)
            continue
        if c.profile.cohort_id and c.profile.cohort_id not in cohorts:
            out.append(
                RowResult(
                    c.row,
                    FAILED,
                    field="profile.cohort_id",
                    reason=f"no cohort {c.profile.cohort_id!r} in this program",
                )
            )
            continue
        try:
            answers = domain.validate_answers(questions, c.answers)
        except DomainError as exc:
            out.append(failed(c.row, exc))
            continue
        out.append(
            Candidate(c.row, c.draft, c.profile, answers, c.campaign, c.digest)
            if answers != c.answers
            else c
        )
    return out


# A new participant's fields in the order mongoengine stores them (tests/unit check the two
# shapes agree).
STORED_FIELDS = (
    "organization_id",
    "program_id",
    "participant_id",
    "role",
    "display_name",
    "email",
    "skills",
    "capacity",
    "registered_at",
    "profile",
    "event_id",
    "status",
    "status_reason",
    "status_changed_at",
    "answers",
    "campaign",
    "hr_person_id",
    "import_digest",
    "update_event_id",
    "withdraw_event_id",
)


@dataclass
class NewParticipant:
    """A participant a row registers, as stored, built without mongoengine: its documents cost
    more to build and validate than the database takes to store them, and the rows passed the
    checks RegisterParticipant applies. The event builders read it as they read a Participant."""

    organization_id: str
    program_id: str
    participant_id: str
    role: str
    display_name: str
    email: str
    skills: list[str]
    capacity: int
    registered_at: datetime
    profile: bytes
    event_id: str
    status: str
    status_changed_at: datetime
    answers: dict[str, str]
    campaign: str
    hr_person_id: str
    import_digest: str
    status_reason: str = ""
    update_event_id: str = ""
    withdraw_event_id: str = ""
    leave_starts_on: datetime | None = None
    leave_ends_on: datetime | None = None

    def stored(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in STORED_FIELDS}


@dataclass
class _Update:
    """A stored participant's change: the state it was read in conditions the write."""

    doc: Participant
    condition: dict[str, Any]
    changes: dict[str, Any] = field(default_factory=dict)


# Someone a row may be: registered by an earlier row of the call, stored (as read, raw), or
# stored and being changed by the call.
_Known = NewParticipant | dict[str, Any] | Participant


def _get(known: _Known, name: str) -> Any:
    return known.get(name, "") if isinstance(known, dict) else getattr(known, name)


class _Batch:
    """One call's decisions, row by row, against the program's people as read."""

    def __init__(self, program: Program, existing: list[dict[str, Any]]) -> None:
        self._program = program
        self._by_person: dict[tuple[str, str], _Known] = {
            (d["role"], d["hr_person_id"]): d for d in existing if d.get("hr_person_id")
        }
        self._by_email: dict[tuple[str, str], _Known] = {
            (d["role"], d["email"]): d for d in existing
        }
        self._now = _millisecond(clock.now())
        self.created: list[NewParticipant] = []
        self.updates: dict[Any, _Update] = {}

    def decide(self, c: Candidate) -> RowResult:
        role, email = c.draft.role, c.draft.email
        known = self._by_person.get(c.person)
        if known is None:
            known = self._by_email.get((role, email))
            if known is not None and _get(known, "hr_person_id"):
                return RowResult(
                    c.row,
                    FAILED,
                    field="email",
                    reason=f"is already registered as {role} in this program under "
                    f"hr_person_id {_get(known, 'hr_person_id')!r} "
                    f"({_get(known, 'participant_id')})",
                )
        if known is None:
            return self._create(c)
        if _get(known, "email") != email:
            return RowResult(
                c.row,
                FAILED,
                field="profile.hr_person_id",
                reason=f"{c.hr_person_id!r} is already registered as {role} with another "
                f"e-mail ({_get(known, 'participant_id')})",
            )
        if c.digest == _get(known, "import_digest"):
            return RowResult(c.row, UNCHANGED, _get(known, "participant_id"))
        if isinstance(known, dict):
            known = Participant._from_son(known)
        return self._update(known, c)

    def _create(self, c: Candidate) -> RowResult:
        status = domain.initial_participant_status(bool(self._program.requires_approval))
        new = NewParticipant(
            organization_id=c.draft.organization_id,
            program_id=c.draft.program_id,
            participant_id=str(uuid.uuid4()),
            role=c.draft.role,
            display_name=c.draft.display_name,
            email=c.draft.email,
            skills=list(c.draft.skills),
            capacity=c.draft.capacity,
            registered_at=self._now,
            # Deterministic bytes, as RegisterParticipant stores them.
            profile=c.profile.SerializeToString(deterministic=True),
            event_id=str(uuid.uuid4()),
            status=status,
            status_changed_at=self._now,
            answers=c.answers,
            campaign=c.campaign,
            hr_person_id=c.hr_person_id,
            import_digest=c.digest,
        )
        self.created.append(new)
        self._by_person[c.person] = new
        self._by_email[(new.role, new.email)] = new
        outcome = REGISTERED if status == domain.REGISTERED else APPLIED
        return RowResult(c.row, outcome, new.participant_id)

    def _update(self, doc: NewParticipant | Participant, c: Candidate) -> RowResult:
        """Apply what the row states, as UpdateParticipantProfile would; nothing when that is
        what is stored (a row from another file, or a self-registered person's)."""
        profile = common_pb2.Profile.FromString(bytes(doc.profile or b""))
        merged = merged_profile(profile, c.profile).SerializeToString(deterministic=True)
        now = (doc.display_name, list(doc.skills), doc.capacity, bytes(doc.profile or b""))
        if now == (c.draft.display_name, list(c.draft.skills), c.draft.capacity, merged):
            return RowResult(c.row, UNCHANGED, doc.participant_id)
        try:
            domain.require_updatable(doc.status or domain.REGISTERED)
        except DomainError as exc:
            return failed(c.row, exc)
        changes: dict[str, Any] = {
            "display_name": c.draft.display_name,
            "skills": list(c.draft.skills),
            "capacity": c.draft.capacity,
            "profile": merged,
            "hr_person_id": c.hr_person_id,
            "import_digest": c.digest,
        }
        if not isinstance(doc, NewParticipant):  # stored: announced as a profile update
            update = self.updates.setdefault(
                doc.pk,
                _Update(doc, {"pk": doc.pk, "status": doc.status, "updated_at": doc.updated_at}),
            )
            changes["updated_at"] = self._now
            if doc.status == domain.REGISTERED:
                changes["update_event_id"] = update.changes.get(
                    "update_event_id", str(uuid.uuid4())
                )
            update.changes.update(changes)
        for name, value in changes.items():
            setattr(doc, name, value)
        self._by_person[c.person] = doc
        return RowResult(c.row, UPDATED, doc.participant_id)

    def events(self) -> list[Event]:
        """What the rows announce, as RegisterParticipant and UpdateParticipantProfile would."""
        out: list[Event] = []
        for new in self.created:
            out += registration_events(cast(Participant, new))  # the same attributes
        for update in self.updates.values():
            out += update_events(update.doc)
        return out


def _people(program: Program, candidates: list[Candidate], by_email: bool) -> list[dict[str, Any]]:
    """The program's participants the rows may be, as stored: by HR id (one query), and by
    e-mail when a registration raced in (the e-mail index refused the first write)."""
    org, program_id = program.organization_id, program.program_id
    hr_ids = sorted({c.hr_person_id for c in candidates})
    # By organisation and HR id alone, the index every server serves this from; a person is in
    # few programs.
    query = Participant.objects(organization_id=org, hr_person_id__in=hr_ids).as_pymongo()
    found = {d["_id"]: d for d in query if d["program_id"] == program_id}
    if by_email:
        emails = sorted({c.draft.email for c in candidates})
        for d in Participant.objects(
            organization_id=org, program_id=program_id, email__in=emails
        ).as_pymongo():
            found.setdefault(d["_id"], d)
    return list(found.values())


def _write(
    program: Program, candidates: list[Candidate], *, by_email: bool
) -> tuple[list[RowResult], list[Event]]:
    if not candidates:
        return [], []
    batch = _Batch(program, _people(program, candidates, by_email))
    results = [batch.decide(c) for c in candidates]
    events = batch.events()
    created = [new.stored() for new in batch.created]

    def write(tx: Transaction) -> tuple[None, list[Event]]:
        tx.insert_stored(Participant, created)
        for update in batch.updates.values():
            changes = {f"set__{name}": value for name, value in update.changes.items()}
            if not tx.update(Participant, update.condition, **changes):
                raise _Raced()
        return None, events

    try:
        outbox.commit(write, together=True)
    except (DuplicateKeyError, BulkWriteError) as exc:
        if not _duplicate(exc):
            raise
        raise _Raced() from exc
    return results, events


def _duplicate(exc: DuplicateKeyError | BulkWriteError) -> bool:
    if isinstance(exc, DuplicateKeyError):
        return True
    return any(e.get("code") == DUPLICATE_KEY for e in exc.details.get("writeErrors", []))


def _millisecond(moment: datetime) -> datetime:
    """As BSON stores it, so a later conditional update matches the stored value."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
