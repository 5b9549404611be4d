"""`mentoring programs …`: create and run programs, screen applications, import people from HR."""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Annotated, Protocol

import typer
from google.protobuf import json_format
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from mentoring.cli_participants import participant_app
from mentoring.clients import Clients
from mentoring.output import console, rpc_errors
from services.common.api import common_pb2, enrollment_pb2, events_pb2
from services.enrollment.hris_csv import CsvFormatError, ImportRow, RowError, count_rows, read_rows

programs_app = typer.Typer(
    help="Programs: create and run them, screen applications, import people.",
    no_args_is_help=True,
)
programs_app.add_typer(participant_app, name="participant")

Org = Annotated[str, typer.Option("--organization", "-o", help="Organization (tenant) id.")]
ProgramId = Annotated[str, typer.Option("--program", "-p", help="Program id.")]
ParticipantId = Annotated[str, typer.Option("--participant", help="Participant id.")]


class Status(StrEnum):
    draft = "draft"
    open = "open"
    running = "running"
    closed = "closed"


class Mentors(StrEnum):
    internal = "internal"
    external = "external"
    both = "both"


class Matching(StrEnum):
    bulk = "bulk"
    self = "self"
    both = "both"


OBJECTIVES = ("leadership", "onboarding", "knowledge_transfer", "diversity", "reskilling", "other")


def _status_value(status: Status) -> events_pb2.ProgramStatus.ValueType:
    return events_pb2.ProgramStatus.Value(f"PROGRAM_STATUS_{status.value.upper()}")


def _status_name(value: int) -> str:
    return events_pb2.ProgramStatus.Name(value).removeprefix("PROGRAM_STATUS_").lower()  # type: ignore[arg-type]


def _print_programs(programs: Iterable[enrollment_pb2.Program], title: str) -> None:
    table = Table(title=title)
    for column in ("program", "name", "status", "months", "cadence (days)", "approval"):
        table.add_column(column)
    for p in programs:
        table.add_row(
            p.program_id,
            p.name,
            _status_name(p.status),
            str(p.settings.timeframe_months or ""),
            str(p.settings.meeting_cadence_days or ""),
            "yes" if p.settings.requires_approval else "no",
        )
    console.print(table)


@programs_app.command("create")
def create(
    organization: Org,
    name: Annotated[str, typer.Option(help="The program's name.")],
    objective: Annotated[str, typer.Option(help="The objective, in words.")] = "",
    objectives: Annotated[
        str, typer.Option(help=f"Comma-separated, of: {', '.join(OBJECTIVES)}.")
    ] = "",
    targets: Annotated[str, typer.Option(help="Measurable targets, as text.")] = "",
    audience: Annotated[str, typer.Option(help="Target audience.")] = "",
    mentors: Annotated[Mentors | None, typer.Option(help="Where mentors come from.")] = None,
    months: Annotated[int, typer.Option(help="Relationship timeframe in months.")] = 0,
    cadence_days: Annotated[int, typer.Option(help="Expected days between meetings.")] = 0,
    matching: Annotated[Matching | None, typer.Option(help="How people are matched.")] = None,
    approval: Annotated[
        bool, typer.Option("--approval/--no-approval", help="Applications need approval.")
    ] = False,
    settings_file: Annotated[
        Path | None,
        typer.Option("--settings", help="ProgramSettings as proto JSON (e.g. the questions)."),
    ] = None,
    draft: Annotated[bool, typer.Option(help="Start as a draft instead of open.")] = False,
) -> None:
    """Create a program; prints its id."""
    settings = events_pb2.ProgramSettings()
    if settings_file is not None:
        try:
            json_format.Parse(settings_file.read_text(), settings)
        except (OSError, json_format.ParseError) as exc:
            console.print(f"[red]error:[/] {settings_file}: {exc}")
            raise typer.Exit(2) from None
    for raw in filter(None, (o.strip().lower() for o in objectives.split(","))):
        if raw not in OBJECTIVES:
            console.print(f"[red]error:[/] --objectives: {raw!r} is not one of {OBJECTIVES}")
            raise typer.Exit(2)
        settings.objectives.append(
            events_pb2.ProgramObjective.Value(f"PROGRAM_OBJECTIVE_{raw.upper()}")
        )
    if targets:
        settings.measurable_targets = targets
    if audience:
        settings.target_audience = audience
    if mentors is not None:
        settings.mentor_source = events_pb2.MentorSource.Value(
            f"MENTOR_SOURCE_{mentors.value.upper()}"
        )
    if months:
        settings.timeframe_months = months
    if cadence_days:
        settings.meeting_cadence_days = cadence_days
    if matching is not None:
        settings.matching_mode = events_pb2.ProgramMatchingMode.Value(
            f"PROGRAM_MATCHING_MODE_{matching.value.upper()}"
        )
    if approval:
        settings.requires_approval = True
    request = enrollment_pb2.CreateProgramRequest(
        organization_id=organization,
        name=name,
        objective=objective,
        settings=settings,
        initial_status=_status_value(Status.draft if draft else Status.open),
    )
    with Clients() as clients, rpc_errors():
        program = clients.enrollment.CreateProgram(request)
    console.print(f"created program {program.program_id} ({_status_name(program.status)})")


@programs_app.command("list")
def list_programs(
    organization: Org,
    status: Annotated[Status | None, typer.Option(help="Only programs in this status.")] = None,
) -> None:
    """List the organisation's programs."""
    found: list[enrollment_pb2.Program] = []
    request = enrollment_pb2.ListProgramsRequest(
        organization_id=organization,
        status=_status_value(status) if status else events_pb2.PROGRAM_STATUS_UNSPECIFIED,
        page_size=500,
    )
    with Clients() as clients, rpc_errors():
        while True:
            page = clients.enrollment.ListPrograms(request)
            found.extend(page.programs)
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
    _print_programs(found, f"Programs of {organization}")


@programs_app.command("status")
def change_status(
    organization: Org,
    program: ProgramId,
    status: Annotated[Status, typer.Argument(help="draft → open → running → closed")],
) -> None:
    """Move a program to its next status."""
    with Clients() as clients, rpc_errors():
        changed = clients.enrollment.ChangeProgramStatus(
            enrollment_pb2.ChangeProgramStatusRequest(
                organization_id=organization, program_id=program, status=_status_value(status)
            )
        )
    console.print(f"program {changed.program_id} is {_status_name(changed.status)}")


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=moment.tzinfo or UTC) if moment else None


@programs_app.command("cohort")
def cohort(
    organization: Org,
    program: ProgramId,
    name: Annotated[str, typer.Option(help="Create a cohort of this name; without, list.")] = "",
    cohort_id: Annotated[str, typer.Option("--id", help="Its id (default: generated).")] = "",
    starts: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First day (UTC).")
    ] = None,
    ends: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last day (UTC).")
    ] = None,
) -> None:
    """Create a cohort in a program, or list the program's cohorts."""
    with Clients() as clients, rpc_errors():
        if name:
            request = enrollment_pb2.CreateCohortRequest(
                organization_id=organization, program_id=program, cohort_id=cohort_id, name=name
            )
            if (start := _utc(starts)) is not None:
                request.starts_on.FromDatetime(start)
            if (end := _utc(ends)) is not None:
                request.ends_on.FromDatetime(end)
            created = clients.enrollment.CreateCohort(request)
            console.print(f"created cohort {created.cohort_id} in program {program}")
            return
        listed = enrollment_pb2.ListCohortsRequest(
            organization_id=organization, program_id=program, page_size=500
        )
        cohorts: list[enrollment_pb2.Cohort] = []
        while True:
            page = clients.enrollment.ListCohorts(listed)
            cohorts.extend(page.cohorts)
            if not page.next_page_token:
                break
            listed.page_token = page.next_page_token
    table = Table(title=f"Cohorts of program {program}")
    for column in ("cohort", "name", "starts", "ends"):
        table.add_column(column)
    for c in cohorts:
        table.add_row(
            c.cohort_id,
            c.name,
            c.starts_on.ToDatetime().date().isoformat() if c.HasField("starts_on") else "",
            c.ends_on.ToDatetime().date().isoformat() if c.HasField("ends_on") else "",
        )
    console.print(table)


def _screen(organization: str, participant: str, reason: str, method: str) -> None:
    request = enrollment_pb2.ScreenParticipantRequest(
        organization_id=organization, participant_id=participant, reason=reason
    )
    with Clients() as clients, rpc_errors():
        done = getattr(clients.enrollment, method)(request)
    status = enrollment_pb2.ParticipantStatus.Name(done.status).removeprefix("PARTICIPANT_STATUS_")
    console.print(f"participant {done.participant_id} ({done.display_name}) is {status.lower()}")


@programs_app.command("approve")
def approve(
    organization: Org,
    participant: ParticipantId,
    reason: Annotated[str, typer.Option(help="Optional note.")] = "",
) -> None:
    """Approve an application: the participant is announced and can be matched."""
    _screen(organization, participant, reason, "ApproveParticipant")


@programs_app.command("reject")
def reject(
    organization: Org,
    participant: ParticipantId,
    reason: Annotated[str, typer.Option(help="Why (required).")],
) -> None:
    """Reject an application."""
    _screen(organization, participant, reason, "RejectParticipant")


@programs_app.command("waitlist")
def waitlist(
    organization: Org,
    participant: ParticipantId,
    reason: Annotated[str, typer.Option(help="Optional note.")] = "",
) -> None:
    """Put an application on the waiting list."""
    _screen(organization, participant, reason, "WaitlistParticipant")


# --- import ----------------------------------------------------------------------------------


class EnrollmentStub(Protocol):
    def ImportParticipants(
        self, request: enrollment_pb2.ImportParticipantsRequest
    ) -> enrollment_pb2.ImportParticipantsResponse: ...


# Rows per ImportParticipants call: the service commits each call in one transaction.
BATCH_ROWS = 500
# Calls outstanding at once: the service checks and publishes one while it writes another.
IN_FLIGHT = 2

OUTCOMES = enrollment_pb2.ImportOutcome
Parsed = ImportRow | RowError


@dataclass
class ImportReport:
    registered: int = 0
    applied: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[RowError] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.registered + self.applied + self.updated + self.unchanged + len(self.problems)

    def add(self, result: enrollment_pb2.ImportRowResult, hr_person_id: str) -> None:
        if result.outcome == OUTCOMES.IMPORT_OUTCOME_REGISTERED:
            self.registered += 1
        elif result.outcome == OUTCOMES.IMPORT_OUTCOME_APPLIED:
            self.applied += 1
        elif result.outcome == OUTCOMES.IMPORT_OUTCOME_UPDATED:
            self.updated += 1
        elif result.outcome == OUTCOMES.IMPORT_OUTCOME_UNCHANGED:
            self.unchanged += 1
        else:
            self.problems.append(RowError(result.row, hr_person_id, result.field, result.reason))


def batched(
    rows: Iterable[ImportRow | RowError], size: int
) -> Iterator[list[ImportRow | RowError]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def import_row(row: ImportRow) -> enrollment_pb2.ImportRow:
    role = common_pb2.ROLE_MENTOR if row.role == "mentor" else common_pb2.ROLE_MENTEE
    return enrollment_pb2.ImportRow(
        row=row.row,
        role=role,
        display_name=row.name,
        email=row.email,
        skills=list(row.skills),
        capacity=row.capacity,
        profile=common_pb2.Profile(
            hr_person_id=row.hr_person_id,
            manager_id=row.manager_id,
            department=row.department,
            location=row.location,
            timezone=row.timezone,
            languages=list(row.languages),
            job_level=row.job_level,
            cohort_id=row.cohort_id,
        ),
        answers=row.answers,
        campaign=row.campaign,
    )


def import_rows(
    stub: EnrollmentStub,
    organization: str,
    program: str,
    rows: Iterable[ImportRow | RowError],
    advance: Callable[[int], None] = lambda rows: None,
    *,
    batch_rows: int = BATCH_ROWS,
    in_flight: int = IN_FLIGHT,
) -> ImportReport:
    """Send the rows in calls of `batch_rows`, reading the next while earlier ones are served:
    memory holds a few calls' rows, whatever the file's size. Import is idempotent on the HR
    person id, so a second run reports the people as unchanged. A row the service refuses is a
    problem of that row; a failed call (the service down, an unknown program) stops the import
    and raises its grpc.RpcError."""
    report = ImportReport()
    pending: deque[tuple[Future[enrollment_pb2.ImportParticipantsResponse], dict[int, str]]]
    pending = deque()

    def settle() -> None:
        call, hr_ids = pending.popleft()
        for result in call.result().results:
            report.add(result, hr_ids.get(result.row, ""))
        advance(len(hr_ids))

    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="import") as calls:
        try:
            for batch in batched(rows, batch_rows):
                request = enrollment_pb2.ImportParticipantsRequest(
                    organization_id=organization, program_id=program
                )
                for row in batch:
                    if isinstance(row, RowError):
                        report.problems.append(row)
                        advance(1)
                    else:
                        request.rows.append(import_row(row))
                if not request.rows:
                    continue
                hr_ids = {r.row: r.profile.hr_person_id for r in request.rows}
                pending.append((calls.submit(stub.ImportParticipants, request), hr_ids))
                if len(pending) >= in_flight:
                    settle()
            while pending:
                settle()
        finally:
            for call, _ in pending:
                call.cancel()
    return report


@programs_app.command("import")
def import_people(
    organization: Org,
    program: ProgramId,
    file: Annotated[Path, typer.Option(help="HRIS CSV export (see the README for columns).")],
) -> None:
    """Register everyone in an HRIS CSV export; safe to run again with the same file (people
    already imported are unchanged, or updated where their row changed)."""
    with ExitStack() as opened:
        try:
            with file.open(newline="", encoding="utf-8-sig") as counting:
                total = count_rows(counting)
            handle = opened.enter_context(file.open(newline="", encoding="utf-8-sig"))
            rows = read_rows(handle)
        except (CsvFormatError, OSError, UnicodeDecodeError, csv.Error) as exc:
            console.print(f"[red]error:[/] {file}: {exc}")
            raise typer.Exit(2) from None
        progress = Progress(
            TextColumn("[bold]Importing[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        with Clients() as clients, rpc_errors(), progress:
            task = progress.add_task("import", total=total)
            try:
                report = import_rows(
                    clients.enrollment,
                    organization,
                    program,
                    rows,
                    advance=lambda done: progress.advance(task, done),
                )
            except (UnicodeDecodeError, csv.Error) as exc:
                progress.stop()
                console.print(f"[red]error:[/] {file}: {exc} (rows before it are imported)")
                raise typer.Exit(2) from None
    if report.problems:
        table = Table(title=f"Rows not imported ({len(report.problems)})")
        for column in ("row", "hr_person_id", "field", "problem"):
            table.add_column(column, overflow="fold")
        for problem in sorted(report.problems, key=lambda p: p.row):
            table.add_row(str(problem.row), problem.hr_person_id, problem.field, problem.problem)
        console.print(table)
    console.print(
        f"{report.rows} rows: {report.registered} registered, {report.applied} applied "
        f"(waiting for approval), {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.problems)} rejected"
    )
    if report.problems:
        raise typer.Exit(1)


if __name__ == "__main__":
    # Runnable on its own (`python -m mentoring.cli_programs import …`) as well as under
    # `mentoring programs`.
    programs_app()
