"""`mentoring programs participant …`: a coordinator's view of a program's participants — list
them, show one, update a profile, withdraw someone."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from mentoring.clients import Clients
from mentoring.output import console, rpc_errors
from services.common.api import common_pb2, enrollment_pb2

participant_app = typer.Typer(
    help="A program's participants: list, show, update, withdraw.", no_args_is_help=True
)

Org = Annotated[str, typer.Option("--organization", "-o", help="Organization (tenant) id.")]
ParticipantId = Annotated[str, typer.Option("--participant", help="Participant id.")]


class Status(StrEnum):
    applied = "applied"
    waitlisted = "waitlisted"
    rejected = "rejected"
    registered = "registered"
    withdrawn = "withdrawn"


class Side(StrEnum):
    mentor = "mentor"
    mentee = "mentee"


ROLES = {Side.mentor: common_pb2.ROLE_MENTOR, Side.mentee: common_pb2.ROLE_MENTEE}
ROLE_NAMES = {value: side.value for side, value in ROLES.items()}


def status_name(value: int) -> str:
    name: str = enrollment_pb2.ParticipantStatus.Name(value)  # type: ignore[arg-type]
    return name.removeprefix("PARTICIPANT_STATUS_").lower()


def split_list(text: str) -> list[str]:
    """Items separated by ";" or "," (as in the HRIS import)."""
    return [item.strip() for item in re.split(r"[;,]", text) if item.strip()]


@participant_app.command("list")
def list_participants(
    organization: Org,
    program: Annotated[str, typer.Option("--program", "-p", help="Program id.")],
    status: Annotated[Status | None, typer.Option(help="Only participants in this status.")] = None,
    role: Annotated[Side | None, typer.Option(help="Only mentors or only mentees.")] = None,
) -> None:
    """The program's participants, with their status and cohort."""
    request = enrollment_pb2.ListParticipantsRequest(
        organization_id=organization,
        program_id=program,
        role=ROLES[role] if role else common_pb2.ROLE_UNSPECIFIED,
        status=enrollment_pb2.ParticipantStatus.Value(f"PARTICIPANT_STATUS_{status.upper()}")
        if status
        else enrollment_pb2.PARTICIPANT_STATUS_UNSPECIFIED,
        page_size=500,
    )
    table = Table(title=f"Participants of program {program}")
    for column in ("participant", "name", "role", "status", "cohort", "department"):
        table.add_column(column, overflow="fold")
    count = 0
    with Clients() as clients, rpc_errors():
        while True:
            page = clients.enrollment.ListParticipants(request)
            for p in page.participants:
                table.add_row(
                    p.participant_id,
                    p.display_name,
                    ROLE_NAMES.get(p.role, "?"),
                    status_name(p.status),
                    p.profile.cohort_id,
                    p.profile.department,
                )
                count += 1
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
    console.print(table)
    console.print(f"{count} participants")


def _show(p: enrollment_pb2.Participant) -> None:
    table = Table(title=f"Participant {p.participant_id}", show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    profile = p.profile
    for name, value in (
        ("name", p.display_name),
        ("e-mail", p.email),
        ("program", p.program_id),
        ("role", ROLE_NAMES.get(p.role, "?")),
        ("status", status_name(p.status) + (f" ({p.status_reason})" if p.status_reason else "")),
        ("skills", "; ".join(p.skills)),
        ("capacity", str(p.capacity) if p.role == common_pb2.ROLE_MENTOR else ""),
        ("cohort", profile.cohort_id),
        ("department", profile.department),
        ("location", profile.location),
        ("timezone", profile.timezone),
        ("languages", "; ".join(profile.languages)),
        ("job level", str(profile.job_level or "")),
        ("HR id", profile.hr_person_id),
        ("manager (HR id)", profile.manager_id),
    ):
        table.add_row(name, value)
    console.print(table)


@participant_app.command("show")
def show(organization: Org, participant: ParticipantId) -> None:
    """One participant's registration and profile."""
    with Clients() as clients, rpc_errors():
        found = clients.enrollment.GetParticipant(
            enrollment_pb2.GetParticipantRequest(
                organization_id=organization, participant_id=participant
            )
        )
    _show(found)


@participant_app.command("update")
def update(
    organization: Org,
    participant: ParticipantId,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    skills: Annotated[str | None, typer.Option(help="Skills, separated by ; or ,.")] = None,
    capacity: Annotated[int | None, typer.Option(help="Mentors: mentees at once.")] = None,
    cohort: Annotated[str | None, typer.Option(help='Cohort id; "" leaves the cohort.')] = None,
    department: Annotated[str | None, typer.Option()] = None,
    location: Annotated[str | None, typer.Option()] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA name, e.g. Europe/Paris.")] = None,
    languages: Annotated[str | None, typer.Option(help="ISO 639-1 codes, ; or ,.")] = None,
    job_level: Annotated[int | None, typer.Option(help="1-20; 0 = not stated.")] = None,
    manager: Annotated[str | None, typer.Option(help="The manager's HR person id.")] = None,
) -> None:
    """Change a participant's profile: only the options given change, the rest stays. The
    change goes out on participant-updated (matching and engagement follow it)."""
    with Clients() as clients, rpc_errors():
        current = clients.enrollment.GetParticipant(
            enrollment_pb2.GetParticipantRequest(
                organization_id=organization, participant_id=participant
            )
        )
        profile = common_pb2.Profile()
        profile.CopyFrom(current.profile)
        for field, value in (
            ("cohort_id", cohort),
            ("department", department),
            ("location", location),
            ("timezone", timezone),
            ("manager_id", manager),
        ):
            if value is not None:
                setattr(profile, field, value.strip())
        if languages is not None:
            del profile.languages[:]
            profile.languages.extend(split_list(languages))
        if job_level is not None:
            profile.job_level = max(0, job_level)
        updated = clients.enrollment.UpdateParticipantProfile(
            enrollment_pb2.UpdateParticipantProfileRequest(
                organization_id=organization,
                participant_id=participant,
                profile=profile,
                skills=split_list(skills) if skills is not None else [],
                capacity=max(0, capacity) if capacity is not None else 0,
                display_name=name or "",
            )
        )
    console.print(f"participant {updated.participant_id} updated")
    _show(updated)


@participant_app.command("withdraw")
def withdraw(
    organization: Org,
    participant: ParticipantId,
    reason: Annotated[str, typer.Option(help="Why they leave (required).")],
) -> None:
    """Withdraw a participant: their open proposals expire, their relationships close early."""
    with Clients() as clients, rpc_errors():
        done = clients.enrollment.WithdrawParticipant(
            enrollment_pb2.WithdrawParticipantRequest(
                organization_id=organization, participant_id=participant, reason=reason
            )
        )
    console.print(
        f"participant {done.participant_id} ({done.display_name}) is {status_name(done.status)}: "
        f"{done.status_reason}"
    )


if __name__ == "__main__":
    participant_app()
