"""`mentoring people …`: a person's personal data — export it, erase it (GDPR-style requests).

Each service owns its data, so the export asks each for its part: enrollment finds the person's
registrations (by e-mail, HR id or one participant id), then matching and engagement give what
they hold about those participant ids. The erasure goes through enrollment, which tells the
other services on `participant-erased`.

Also runnable alone: `python -m mentoring.cli_people --help`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
from google.protobuf import json_format
from google.protobuf.message import Message
from rich.table import Table

from mentoring.clients import Clients
from mentoring.output import console, rpc_errors
from services.common.api import common_pb2, engagement_pb2, enrollment_pb2, matching_pb2

people_app = typer.Typer(
    help="A person's personal data: export it, erase it (pseudonymise it everywhere).",
    no_args_is_help=True,
)

Organization = Annotated[
    str, typer.Option("--organization", "--org", "-o", help="Organization (tenant) id.")
]
Person = Annotated[
    str,
    typer.Option("--person", help="An e-mail address, an HR person id or a participant id."),
]


class By(StrEnum):
    auto = "auto"
    email = "email"
    hr_id = "hr-id"
    participant = "participant"


ByOption = Annotated[
    By,
    typer.Option(
        help="What --person is. auto: an e-mail if it has an @, else a participant id if one "
        "exists, else an HR person id."
    ),
]


def person_ref(
    clients: Clients, organization: str, person: str, by: By
) -> enrollment_pb2.PersonRef:
    if by is By.email or (by is By.auto and "@" in person):
        return enrollment_pb2.PersonRef(email=person)
    if by is By.hr_id:
        return enrollment_pb2.PersonRef(hr_person_id=person)
    if by is By.participant:
        return enrollment_pb2.PersonRef(participant_id=person)
    try:
        clients.enrollment.GetParticipant(
            enrollment_pb2.GetParticipantRequest(
                organization_id=organization, participant_id=person
            )
        )
    except grpc.RpcError as exc:
        if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            raise
        return enrollment_pb2.PersonRef(hr_person_id=person)
    return enrollment_pb2.PersonRef(participant_id=person)


def _json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def gather(clients: Clients, organization: str, ref: enrollment_pb2.PersonRef) -> dict[str, Any]:
    """The person's data from the three services that hold personal data, as one document.
    (Analytics holds counts per program only.)"""
    enrollment = clients.enrollment.ExportPersonalData(
        enrollment_pb2.ExportPersonalDataRequest(organization_id=organization, person=ref)
    )
    ids = [r.participant.participant_id for r in enrollment.registrations]
    matching = clients.matching.ExportPersonalData(
        matching_pb2.ExportMatchingPersonalDataRequest(
            organization_id=organization, participant_ids=ids
        )
    )
    engagement = clients.engagement.ExportPersonalData(
        engagement_pb2.ExportEngagementPersonalDataRequest(
            organization_id=organization, participant_ids=ids
        )
    )
    return {
        "organization_id": organization,
        "person": _json(ref),
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "participant_ids": ids,
        "enrollment": _json(enrollment),
        "matching": _json(matching),
        "engagement": _json(engagement),
    }


def _summary(document: dict[str, Any]) -> Table:
    table = Table(title="Exported")
    for column in ("service", "records"):
        table.add_column(column)
    for service in ("enrollment", "matching", "engagement"):
        part = document[service]
        counts = [
            f"{len(v)} {k.replace('_', ' ')}"
            for k, v in sorted(part.items())
            if isinstance(v, list)
        ]
        table.add_row(service, ", ".join(counts) or "nothing")
    return table


@people_app.command("export")
def export(
    organization: Organization,
    person: Person,
    out: Annotated[Path, typer.Option("--out", help="Where to write the JSON document.")],
    by: ByOption = By.auto,
) -> None:
    """Everything the platform holds about a person, from every service, as one JSON file."""
    with Clients() as clients, rpc_errors():
        document = gather(clients, organization, person_ref(clients, organization, person, by))
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    console.print(_summary(document))
    console.print(f"Written to {out}")


@people_app.command("erase")
def erase(
    organization: Organization,
    person: Person,
    reason: Annotated[
        str, typer.Option(help="Why, e.g. the request's reference; kept: no personal data.")
    ],
    requested_by: Annotated[
        str,
        typer.Option(help="Who asks for it; default: your user name (with a token: its subject)."),
    ] = "",
    by: ByOption = By.auto,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase (pseudonymise) a person everywhere, for good: ids and counts stay, the rest goes.

    Their registrations are withdrawn; names, contact details, profiles and free text go.
    """
    with Clients() as clients, rpc_errors():
        ref = person_ref(clients, organization, person, by)
        if not yes:
            typer.confirm(
                f"Erase {person} in {organization} everywhere? This cannot be undone", abort=True
            )
        erasure = clients.enrollment.ErasePerson(
            enrollment_pb2.ErasePersonRequest(
                organization_id=organization,
                person=ref,
                reason=reason,
                requested_by=clients.actor(requested_by),
            )
        )
    table = Table(title=f"Erasure {erasure.erasure_id}")
    for column in ("participant", "program", "role"):
        table.add_column(column)
    for r in erasure.registrations:
        role = "mentor" if r.role == common_pb2.ROLE_MENTOR else "mentee"
        table.add_row(r.participant_id, r.program_id, role)
    console.print(table)
    console.print(
        f"Erased {len(erasure.registrations)} registration(s); matching and engagement follow "
        "on participant-erased."
    )


@people_app.command("erasures")
def erasures(organization: Organization) -> None:
    """The organisation's erasure records: who asked, when and why."""
    table = Table(title=f"Erasures in {organization}")
    for column in ("erasure", "requested at", "by", "reason", "registrations"):
        table.add_column(column)
    token = ""
    with Clients() as clients, rpc_errors():
        while True:
            page = clients.enrollment.ListErasures(
                enrollment_pb2.ListErasuresRequest(organization_id=organization, page_token=token)
            )
            for e in page.erasures:
                table.add_row(
                    e.erasure_id,
                    e.requested_at.ToDatetime(UTC).isoformat(timespec="seconds"),
                    e.requested_by,
                    e.reason,
                    str(len(e.registrations)),
                )
            token = page.next_page_token
            if not token:
                break
    console.print(table)


if __name__ == "__main__":
    people_app()
