"""Program lifecycle, applications and screening, profile changes, cohorts and the HRIS import,
through gRPC and the CLI against the running platform, with the events read back from Kafka."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import common_pb2, enrollment_pb2, events_pb2
from services.common.events import partition_key
from tests.e2e.support import read_topic

MENTOR, MENTEE = common_pb2.ROLE_MENTOR, common_pb2.ROLE_MENTEE
DRAFT, OPEN = events_pb2.PROGRAM_STATUS_DRAFT, events_pb2.PROGRAM_STATUS_OPEN
RUNNING, CLOSED = events_pb2.PROGRAM_STATUS_RUNNING, events_pb2.PROGRAM_STATUS_CLOSED
APPLIED = enrollment_pb2.PARTICIPANT_STATUS_APPLIED
WAITLISTED = enrollment_pb2.PARTICIPANT_STATUS_WAITLISTED
REJECTED = enrollment_pb2.PARTICIPANT_STATUS_REJECTED
REGISTERED = enrollment_pb2.PARTICIPANT_STATUS_REGISTERED
WITHDRAWN = enrollment_pb2.PARTICIPANT_STATUS_WITHDRAWN
CLI = [sys.executable, "-m", "mentoring.cli_programs"]


def new_org() -> str:
    return f"org-{uuid.uuid4().hex[:8]}"


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def events_of(stack: Stack, topic: str, org: str, pid: str) -> list[events_pb2.Event]:
    key = partition_key(org, pid)
    return [
        events_pb2.Event.FromString(r.value)
        for r in read_topic(stack.ports.bootstrap, topic)
        if r.key == key
    ]


def create_program(clients: Clients, org: str, **settings: Any) -> enrollment_pb2.Program:
    return clients.enrollment.CreateProgram(
        enrollment_pb2.CreateProgramRequest(
            organization_id=org,
            name="Lifecycle",
            settings=events_pb2.ProgramSettings(**settings),
        )
    )


def register(
    clients: Clients, org: str, pid: str, name: str, role: int = MENTEE, **extra: Any
) -> enrollment_pb2.Participant:
    return clients.enrollment.RegisterParticipant(
        enrollment_pb2.RegisterParticipantRequest(
            organization_id=org,
            program_id=pid,
            role=role,
            display_name=name,
            email=f"{name.lower()}@{org}.example",
            skills=["python"],
            capacity=2 if role == MENTOR else 0,
            **extra,
        )
    )


def test_program_lifecycle_is_enforced_and_published(stack: Stack, clients: Clients) -> None:
    org = new_org()
    bad = rpc_error(lambda: create_program(clients, org, timeframe_months=99))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad.details().startswith("settings.timeframe_months:")

    program = clients.enrollment.CreateProgram(
        enrollment_pb2.CreateProgramRequest(
            organization_id=org,
            name="Leaders 2025",
            objective="Grow new managers",
            initial_status=DRAFT,
            settings=events_pb2.ProgramSettings(
                objectives=[
                    events_pb2.PROGRAM_OBJECTIVE_LEADERSHIP,
                    events_pb2.PROGRAM_OBJECTIVE_DIVERSITY,
                ],
                measurable_targets="80% promoted in 2 years",
                target_audience="first-line managers",
                mentor_source=events_pb2.MENTOR_SOURCE_INTERNAL,
                timeframe_months=6,
                meeting_cadence_days=14,
                matching_mode=events_pb2.PROGRAM_MATCHING_MODE_BOTH,
            ),
        )
    )
    pid = program.program_id
    assert (program.status, program.version) == (DRAFT, 1)

    closed_door = rpc_error(lambda: register(clients, org, pid, "Early"))
    assert closed_door.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert closed_door.details().startswith("program_id:")

    def change(status: int) -> enrollment_pb2.Program:
        return clients.enrollment.ChangeProgramStatus(
            enrollment_pb2.ChangeProgramStatusRequest(
                organization_id=org, program_id=pid, status=status
            )
        )

    skipped = rpc_error(lambda: change(RUNNING))
    assert skipped.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert skipped.details().startswith("status:")
    assert change(OPEN).status == OPEN
    assert change(OPEN).version == 2  # asking again changes nothing
    register(clients, org, pid, "Ola")

    updated = clients.enrollment.UpdateProgram(
        enrollment_pb2.UpdateProgramRequest(
            organization_id=org,
            program_id=pid,
            settings=events_pb2.ProgramSettings(timeframe_months=9, meeting_cadence_days=7),
        )
    )
    assert (updated.settings.timeframe_months, updated.settings.meeting_cadence_days) == (9, 7)
    assert updated.name == "Leaders 2025"  # kept
    assert change(RUNNING).status == RUNNING
    register(clients, org, pid, "Late")  # running programs still take people
    backwards = rpc_error(lambda: change(OPEN))
    assert backwards.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert change(CLOSED).status == CLOSED
    after = rpc_error(lambda: register(clients, org, pid, "Toolate"))
    assert after.code() == grpc.StatusCode.FAILED_PRECONDITION
    frozen = rpc_error(
        lambda: clients.enrollment.UpdateProgram(
            enrollment_pb2.UpdateProgramRequest(organization_id=org, program_id=pid, name="X")
        )
    )
    assert frozen.code() == grpc.StatusCode.FAILED_PRECONDITION

    # Scoped by organisation: another tenant does not see it.
    other = rpc_error(
        lambda: clients.enrollment.GetProgram(
            enrollment_pb2.GetProgramRequest(organization_id=new_org(), program_id=pid)
        )
    )
    assert other.code() == grpc.StatusCode.NOT_FOUND

    events = events_of(stack, "program-changed", org, pid)
    changes = [
        (
            e.program_changed.change,
            e.program_changed.status,
            e.program_changed.previous_status,
            e.program_changed.version,
            e.program_changed.settings.timeframe_months,
            e.program_changed.settings.meeting_cadence_days,
        )
        for e in events
    ]
    # The repeated OPEN request republished the same event: consumers drop it by id.
    assert len({e.envelope.event_id for e in events}) == 5
    assert sorted(set(changes), key=lambda c: c[3]) == [
        ("created", DRAFT, events_pb2.PROGRAM_STATUS_UNSPECIFIED, 1, 6, 14),
        ("status_changed", OPEN, DRAFT, 2, 6, 14),
        ("updated", OPEN, OPEN, 3, 9, 7),
        ("status_changed", RUNNING, OPEN, 4, 9, 7),
        ("status_changed", CLOSED, RUNNING, 5, 9, 7),
    ]
    created = events[0].program_changed
    assert created.name == "Leaders 2025"
    assert list(created.settings.objectives) == [
        events_pb2.PROGRAM_OBJECTIVE_LEADERSHIP,
        events_pb2.PROGRAM_OBJECTIVE_DIVERSITY,
    ]
    assert created.settings.matching_mode == events_pb2.PROGRAM_MATCHING_MODE_BOTH
    assert all(e.envelope.producer == "enrollment" for e in events)


def test_list_programs_filters_by_status_and_pages(stack: Stack, clients: Clients) -> None:
    org = new_org()
    ids = {create_program(clients, org).program_id for _ in range(3)}
    draft = clients.enrollment.CreateProgram(
        enrollment_pb2.CreateProgramRequest(organization_id=org, name="D", initial_status=DRAFT)
    )
    seen: list[str] = []
    request = enrollment_pb2.ListProgramsRequest(organization_id=org, status=OPEN, page_size=2)
    while True:
        page = clients.enrollment.ListPrograms(request)
        assert len(page.programs) <= 2
        seen += [p.program_id for p in page.programs]
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert sorted(seen) == sorted(ids)
    drafts = clients.enrollment.ListPrograms(
        enrollment_pb2.ListProgramsRequest(organization_id=org, status=DRAFT)
    )
    assert [p.program_id for p in drafts.programs] == [draft.program_id]
    bad = rpc_error(
        lambda: clients.enrollment.ListPrograms(
            enrollment_pb2.ListProgramsRequest(organization_id=org, page_token="garbage!")
        )
    )
    assert bad.details().startswith("page_token:")


QUESTIONS = [
    events_pb2.ApplicationQuestion(
        question_id="goal",
        text="What do you want from mentoring?",
        kind=events_pb2.QUESTION_KIND_TEXT,
        required=True,
    ),
    events_pb2.ApplicationQuestion(
        question_id="track",
        text="Which track?",
        kind=events_pb2.QUESTION_KIND_SINGLE_CHOICE,
        options=["Tech", "Business"],
        required=True,
    ),
    events_pb2.ApplicationQuestion(
        question_id="confidence",
        text="How confident are you as a leader?",
        kind=events_pb2.QUESTION_KIND_SCALE,
    ),
]


def test_applications_wait_for_approval_before_being_announced(
    stack: Stack, clients: Clients
) -> None:
    org = new_org()
    pid = create_program(
        clients, org, requires_approval=True, application_questions=QUESTIONS
    ).program_id
    answers = {"goal": "Lead a team", "track": "tech", "confidence": "3"}

    missing = rpc_error(lambda: register(clients, org, pid, "Ann", answers={"track": "Tech"}))
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert missing.details().startswith("answers[goal]:")
    wrong = rpc_error(
        lambda: register(clients, org, pid, "Ann", answers={**answers, "confidence": "9"})
    )
    assert wrong.details().startswith("answers[confidence]:")

    ann = register(clients, org, pid, "Ann", answers=answers, campaign="spring-newsletter")
    bea = register(clients, org, pid, "Bea", answers=answers)
    cid = register(clients, org, pid, "Cid", answers=answers)
    assert {ann.status, bea.status, cid.status} == {APPLIED}
    assert ann.answers["track"] == "Tech"  # the option's spelling
    assert register(clients, org, pid, "Ann", answers=answers, campaign="spring-newsletter") == ann
    applied = clients.enrollment.ListParticipants(
        enrollment_pb2.ListParticipantsRequest(organization_id=org, program_id=pid, status=APPLIED)
    )
    assert {p.participant_id for p in applied.participants} == {
        ann.participant_id,
        bea.participant_id,
        cid.participant_id,
    }
    assert events_of(stack, "participant-registered", org, pid) == []  # nobody announced yet

    def screen(method: str, who: enrollment_pb2.Participant, reason: str = "") -> Any:
        return getattr(clients.enrollment, method)(
            enrollment_pb2.ScreenParticipantRequest(
                organization_id=org, participant_id=who.participant_id, reason=reason
            )
        )

    approved = screen("ApproveParticipant", ann)
    assert approved.status == REGISTERED
    no_reason = rpc_error(lambda: screen("RejectParticipant", bea))
    assert no_reason.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert no_reason.details().startswith("reason:")
    rejected = screen("RejectParticipant", bea, "not in the audience")
    assert (rejected.status, rejected.status_reason) == (REJECTED, "not in the audience")
    late = rpc_error(lambda: screen("ApproveParticipant", bea))
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert screen("WaitlistParticipant", cid, "program full").status == WAITLISTED
    waiting = clients.enrollment.ListParticipants(
        enrollment_pb2.ListParticipantsRequest(
            organization_id=org, program_id=pid, status=WAITLISTED
        )
    )
    assert [p.participant_id for p in waiting.participants] == [cid.participant_id]
    # Other organisations cannot screen this program's people.
    foreign = rpc_error(
        lambda: clients.enrollment.ApproveParticipant(
            enrollment_pb2.ScreenParticipantRequest(
                organization_id=new_org(), participant_id=cid.participant_id
            )
        )
    )
    assert foreign.code() == grpc.StatusCode.NOT_FOUND

    announced = events_of(stack, "participant-registered", org, pid)
    assert [e.participant_registered.participant_id for e in announced] == [ann.participant_id]
    assert announced[0].participant_registered.campaign == "spring-newsletter"

    assert screen("ApproveParticipant", cid).status == REGISTERED  # off the waiting list
    announced = events_of(stack, "participant-registered", org, pid)
    assert {e.participant_registered.participant_id for e in announced} == {
        ann.participant_id,
        cid.participant_id,
    }


def test_without_approval_people_are_announced_at_once_with_their_campaign(
    stack: Stack, clients: Clients
) -> None:
    org = new_org()
    pid = create_program(clients, org).program_id
    dan = register(clients, org, pid, "Dan", MENTOR, campaign="intranet-banner")
    assert (dan.status, dan.campaign) == (REGISTERED, "intranet-banner")
    (event,) = events_of(stack, "participant-registered", org, pid)
    assert event.participant_registered.campaign == "intranet-banner"
    unknown = rpc_error(lambda: register(clients, org, pid, "Eve", answers={"x": "y"}))
    assert unknown.details().startswith("answers[x]:")


def test_profile_updates_and_withdrawals_are_published(stack: Stack, clients: Clients) -> None:
    org = new_org()
    pid = create_program(clients, org).program_id
    fay = register(clients, org, pid, "Fay", MENTOR)
    profile = common_pb2.Profile(
        department="Finance",
        timezone="Europe/Oslo",
        demographics=common_pb2.Demographics(gender="f", use_for_matching=False),
    )

    def update(**fields: Any) -> enrollment_pb2.Participant:
        return clients.enrollment.UpdateParticipantProfile(
            enrollment_pb2.UpdateParticipantProfileRequest(
                organization_id=org, participant_id=fay.participant_id, **fields
            )
        )

    bad = rpc_error(lambda: update(profile=common_pb2.Profile(timezone="Mars/Base")))
    assert bad.details().startswith("profile.timezone:")
    changed = update(profile=profile, capacity=3)
    assert (changed.profile.department, changed.capacity) == ("Finance", 3)
    assert changed.profile.demographics.gender == "f"  # kept, but not shared
    update(profile=profile, capacity=3)  # a retry

    updates = events_of(stack, "participant-updated", org, pid)
    assert len({e.envelope.event_id for e in updates}) == 1
    event = updates[0].participant_updated
    assert (event.participant_id, event.capacity) == (fay.participant_id, 3)
    assert event.profile.department == "Finance"
    assert not event.profile.HasField("demographics")  # no consent, not shared

    def withdraw(reason: str, who: str = fay.participant_id) -> enrollment_pb2.Participant:
        return clients.enrollment.WithdrawParticipant(
            enrollment_pb2.WithdrawParticipantRequest(
                organization_id=org, participant_id=who, reason=reason
            )
        )

    assert rpc_error(lambda: withdraw("  ")).details().startswith("reason:")
    gone = withdraw("moved to another company")
    assert gone.status == WITHDRAWN
    assert withdraw("moved to another company").status == WITHDRAWN  # a retry
    late = rpc_error(lambda: update(profile=profile))
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    withdrawn = events_of(stack, "participant-withdrawn", org, pid)
    assert len({e.envelope.event_id for e in withdrawn}) == 1
    assert withdrawn[0].participant_withdrawn.participant_id == fay.participant_id
    assert withdrawn[0].participant_withdrawn.reason == "moved to another company"
    assert withdrawn[0].participant_withdrawn.role == MENTOR
    listed = clients.enrollment.ListParticipants(
        enrollment_pb2.ListParticipantsRequest(
            organization_id=org, program_id=pid, status=WITHDRAWN
        )
    )
    assert [p.participant_id for p in listed.participants] == [fay.participant_id]

    # An applicant never announced leaves quietly; so do their profile changes.
    screened = create_program(clients, org, requires_approval=True).program_id
    gus = register(clients, org, screened, "Gus")
    clients.enrollment.UpdateParticipantProfile(
        enrollment_pb2.UpdateParticipantProfileRequest(
            organization_id=org, participant_id=gus.participant_id, profile=profile
        )
    )
    assert withdraw("changed my mind", gus.participant_id).status == WITHDRAWN
    assert events_of(stack, "participant-updated", org, screened) == []
    assert events_of(stack, "participant-withdrawn", org, screened) == []


def test_cohorts_exist_before_people_join_them(stack: Stack, clients: Clients) -> None:
    org = new_org()
    pid = create_program(clients, org).program_id
    other_pid = create_program(clients, org).program_id

    def cohort(program: str, cohort_id: str, start: int, end: int) -> enrollment_pb2.Cohort:
        request = enrollment_pb2.CreateCohortRequest(
            organization_id=org, program_id=program, cohort_id=cohort_id, name="Spring"
        )
        request.starts_on.FromDatetime(datetime(2025, start, 1, tzinfo=UTC))
        request.ends_on.FromDatetime(datetime(2025, end, 1, tzinfo=UTC))
        return clients.enrollment.CreateCohort(request)

    backwards = rpc_error(lambda: cohort(pid, "spring", 6, 3))
    assert backwards.details().startswith("ends_on:")
    spring = cohort(pid, "spring", 3, 6)
    assert cohort(pid, "spring", 3, 6) == spring  # a retry
    clash = rpc_error(lambda: cohort(pid, "spring", 3, 9))
    assert clash.code() == grpc.StatusCode.ALREADY_EXISTS
    cohort(other_pid, "autumn", 9, 12)

    unknown = rpc_error(
        lambda: register(clients, org, pid, "Hal", profile=common_pb2.Profile(cohort_id="autumn"))
    )
    assert unknown.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert unknown.details().startswith("profile.cohort_id:")
    hal = register(clients, org, pid, "Hal", profile=common_pb2.Profile(cohort_id="spring"))
    assert hal.profile.cohort_id == "spring"

    listed = clients.enrollment.ListCohorts(
        enrollment_pb2.ListCohortsRequest(organization_id=org, program_id=pid)
    )
    assert [(c.cohort_id, c.starts_on.ToDatetime().month) for c in listed.cohorts] == [
        ("spring", 3)
    ]
    foreign = rpc_error(
        lambda: clients.enrollment.ListCohorts(
            enrollment_pb2.ListCohortsRequest(organization_id=new_org(), program_id=pid)
        )
    )
    assert foreign.code() == grpc.StatusCode.NOT_FOUND


HEADER = (
    "hr_person_id,role,name,email,skills,capacity,department,location,timezone,languages,"
    "job_level,manager_id,cohort_id,campaign\n"
)


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env={**stack.client_env(), "COLUMNS": "250"},
        timeout=120,
        check=False,
    )


def test_cli_import_reports_bad_rows_and_a_second_import_changes_nothing(
    stack: Stack, clients: Clients, tmp_path: Path
) -> None:
    org = new_org()
    pid = create_program(clients, org).program_id
    clients.enrollment.CreateCohort(
        enrollment_pb2.CreateCohortRequest(
            organization_id=org, program_id=pid, cohort_id="2025-q1", name="Q1"
        )
    )
    people = tmp_path / "people.csv"
    people.write_text(
        HEADER
        + "E100,mentor,Ada Berg,ada@acme.example,python;leadership,2,R&D,Oslo,Europe/Oslo,"
        + "en;no,7,E1,2025-q1,intranet\n"
        + "E101,mentee,Bo Li,bo@acme.example,python,,R&D,Oslo,Europe/Oslo,en,3,E100,2025-q1,"
        + "intranet\n"
        + "E102,mentee,Cy Ng,cy-at-acme.example,go,,Sales,Lima,America/Lima,es,2,E7,,\n"
        + "E103,mentee,Di Ek,di@acme.example,go,,Sales,Lima,America/Lima,es,2,E7,,\n"
        + "E104,mentor,Ed Fo,ed@acme.example,sql,1,Ops,Pune,Asia/Kolkata,en,9,E2,no-such-cohort,\n"
        + "E105,mentor,Flo Gu,flo@acme.example,sql;go,3,Ops,Pune,Asia/Kolkata,en,8,E2,,\n"
    )
    first = cli(stack, "import", "-o", org, "-p", pid, "--file", str(people))
    assert first.returncode == 1, first.stdout + first.stderr
    out = first.stdout
    assert "Rows not imported (2)" in out
    assert re.search(r"│ 4 +│ E102 +│ email +│ is not an e-mail address", out), out
    assert re.search(r"│ 6 +│ E104 +│ profile\.cohort_id +│ no cohort 'no-such-cohort'", out), out
    assert (
        "6 rows: 4 registered, 0 applied (waiting for approval), 0 updated, 0 unchanged, "
        "2 rejected" in out
    )

    listed = clients.enrollment.ListParticipants(
        enrollment_pb2.ListParticipantsRequest(organization_id=org, program_id=pid)
    )
    by_hr = {p.profile.hr_person_id: p for p in listed.participants}
    assert set(by_hr) == {"E100", "E101", "E103", "E105"}
    ada = by_hr["E100"]
    assert (ada.role, ada.capacity, list(ada.skills)) == (MENTOR, 2, ["python", "leadership"])
    assert (ada.profile.cohort_id, ada.profile.job_level, ada.campaign) == (
        "2025-q1",
        7,
        "intranet",
    )
    assert list(ada.profile.languages) == ["en", "no"]
    registered = events_of(stack, "participant-registered", org, pid)
    ids = {e.envelope.event_id for e in registered}
    assert len(ids) == 4

    again = cli(stack, "import", "-o", org, "-p", pid, "--file", str(people))
    assert (
        "6 rows: 0 registered, 0 applied (waiting for approval), 0 updated, 4 unchanged, "
        "2 rejected" in again.stdout
    ), again.stdout + again.stderr
    relisted = clients.enrollment.ListParticipants(
        enrollment_pb2.ListParticipantsRequest(organization_id=org, program_id=pid)
    )
    assert relisted == listed
    # Consumers see nothing new: any republished registration carries its first event id.
    assert {
        e.envelope.event_id for e in events_of(stack, "participant-registered", org, pid)
    } == ids

    # HR moved Di to Ops: her row changes, she is updated (and announced), nobody else.
    people.write_text(
        people.read_text().replace("di@acme.example,go,,Sales", "di@acme.example,go,,Ops")
    )
    moved = cli(stack, "import", "-o", org, "-p", pid, "--file", str(people))
    assert (
        "6 rows: 0 registered, 0 applied (waiting for approval), 1 updated, 3 unchanged, "
        "2 rejected" in moved.stdout
    ), moved.stdout + moved.stderr
    di = clients.enrollment.GetParticipant(
        enrollment_pb2.GetParticipantRequest(
            organization_id=org, participant_id=by_hr["E103"].participant_id
        )
    )
    assert (di.profile.department, di.profile.location) == ("Ops", "Lima")
    updated = events_of(stack, "participant-updated", org, pid)
    assert [
        (e.participant_updated.participant_id, e.participant_updated.profile.department)
        for e in updated
    ] == [(di.participant_id, "Ops")]


def test_cli_runs_a_program_and_screens_applications(stack: Stack, clients: Clients) -> None:
    org = new_org()
    created = cli(
        stack,
        "create",
        "-o",
        org,
        "--name",
        "Reskill",
        "--objectives",
        "reskilling,other",
        "--months",
        "4",
        "--cadence-days",
        "10",
        "--matching",
        "self",
        "--approval",
        "--draft",
    )
    assert created.returncode == 0, created.stdout + created.stderr
    found = re.search(r"created program (\S+) \(draft\)", created.stdout)
    assert found, created.stdout
    pid = found.group(1)
    program = clients.enrollment.GetProgram(
        enrollment_pb2.GetProgramRequest(organization_id=org, program_id=pid)
    )
    assert program.settings.requires_approval
    assert program.settings.matching_mode == events_pb2.PROGRAM_MATCHING_MODE_SELF
    assert (program.settings.timeframe_months, program.settings.meeting_cadence_days) == (4, 10)

    skipped = cli(stack, "status", "-o", org, "-p", pid, "running")
    assert skipped.returncode == 1
    assert "FAILED_PRECONDITION: status:" in skipped.stdout
    opened = cli(stack, "status", "-o", org, "-p", pid, "open")
    assert opened.returncode == 0 and "is open" in opened.stdout
    listed = cli(stack, "list", "-o", org, "--status", "open")
    assert listed.returncode == 0 and pid in listed.stdout

    made = cli(
        stack,
        "cohort",
        "-o",
        org,
        "-p",
        pid,
        "--name",
        "Wave 1",
        "--id",
        "wave-1",
        "--starts",
        "2025-02-01",
        "--ends",
        "2025-06-30",
    )
    assert made.returncode == 0, made.stdout + made.stderr
    cohorts = cli(stack, "cohort", "-o", org, "-p", pid)
    assert "wave-1" in cohorts.stdout and "2025-02-01" in cohorts.stdout

    ivy = register(clients, org, pid, "Ivy")
    jon = register(clients, org, pid, "Jon")
    approved = cli(stack, "approve", "-o", org, "--participant", ivy.participant_id)
    assert approved.returncode == 0 and "is registered" in approved.stdout
    no_reason = cli(stack, "reject", "-o", org, "--participant", jon.participant_id)
    assert no_reason.returncode == 2  # --reason is required
    rejected = cli(
        stack, "reject", "-o", org, "--participant", jon.participant_id, "--reason", "not eligible"
    )
    assert rejected.returncode == 0 and "is rejected" in rejected.stdout
    (event,) = events_of(stack, "participant-registered", org, pid)
    assert event.participant_registered.participant_id == ivy.participant_id
