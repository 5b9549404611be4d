"""`mentoring engagement relationship …` and `mentoring engagement session …`: a relationship's
lifecycle (show, pause, resume, extend, end) and its sessions (schedule, reschedule, held,
cancel, list).
Every command that acts is run for one of the pair (`--participant`)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer
from google.protobuf.timestamp_pb2 import Timestamp
from rich.table import Table

from mentoring.clients import Clients
from mentoring.output import console, rpc_errors
from services.common.api import common_pb2, engagement_pb2

E = engagement_pb2
relationship_app = typer.Typer(
    help="A relationship: show, pause, resume, extend, end.", no_args_is_help=True
)
session_app = typer.Typer(
    help="A relationship's sessions: schedule, reschedule, held, cancel, list.",
    no_args_is_help=True,
)

Organization = Annotated[str, typer.Option("--organization", "-o", help="Organization id.")]
Relationship = Annotated[str, typer.Option("--relationship", "-r", help="Relationship id.")]
Participant = Annotated[
    str, typer.Option("--participant", "-p", help="Who acts: the mentor or the mentee.")
]
SessionId = Annotated[str, typer.Option("--session", "-s", help="Session id.")]
RequestId = Annotated[
    str,
    typer.Option(help="Your id for this request: repeating the command returns the same result."),
]
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]

STATUS = {
    E.RELATIONSHIP_STATUS_ACTIVE: "active",
    E.RELATIONSHIP_STATUS_PAUSED: "paused",
    E.RELATIONSHIP_STATUS_COMPLETED: "completed",
    E.RELATIONSHIP_STATUS_CLOSED_EARLY: "closed early",
}
SESSION_STATUS = {
    E.SESSION_STATUS_SCHEDULED: "scheduled",
    E.SESSION_STATUS_HELD: "held",
    E.SESSION_STATUS_CANCELLED: "cancelled",
}


class Mode(StrEnum):
    virtual = "virtual"
    face_to_face = "face-to-face"
    phone = "phone"


MODES = {
    Mode.virtual: common_pb2.SESSION_MODE_VIRTUAL,
    Mode.face_to_face: common_pb2.SESSION_MODE_FACE_TO_FACE,
    Mode.phone: common_pb2.SESSION_MODE_PHONE,
}
MODE_NAMES = {value: mode.value for mode, value in MODES.items()}


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))
    return stamp


def _when(stamp: Timestamp) -> str:
    return stamp.ToDatetime(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(stamp: Timestamp) -> str:
    return stamp.ToDatetime(UTC).date().isoformat()


def _print(r: engagement_pb2.Relationship) -> None:
    status = STATUS.get(r.status, "?")
    if r.pause_reason:
        status += f" ({r.pause_reason})"
    if r.end_reason:
        status += f": {r.end_reason}"
    console.print(
        f"relationship {r.relationship_id}: mentor {r.mentor_id}, mentee {r.mentee_id}, {status}; "
        f"started {_day(r.started_at)}, expected end {_day(r.expected_end_at)}; "
        f"{r.sessions} sessions, {r.minutes} minutes"
    )


# --- relationships -------------------------------------------------------------------------


@relationship_app.command("show")
def show(organization: Organization, relationship: Relationship) -> None:
    """A relationship with its health score."""
    with Clients() as clients, rpc_errors():
        r = clients.engagement.GetRelationship(
            E.GetRelationshipRequest(organization_id=organization, relationship_id=relationship)
        )
    _print(r)
    h = r.health
    console.print(
        f"health {h.score}/100: cadence {h.cadence:.2f} "
        f"({r.sessions} held of {h.expected_sessions:.1f} expected)"
        + (f", goals {h.goals:.2f}" if h.HasField("goals") else "")
        + (f", ratings {h.ratings:.2f}" if h.HasField("ratings") else "")
    )


@relationship_app.command("pause")
def pause(
    organization: Organization,
    relationship: Relationship,
    participant: Participant,
    reason: Annotated[str, typer.Option(help="Optional, at most 500 characters.")] = "",
) -> None:
    """Put an active relationship on hold: no sessions, no nudges."""
    with Clients() as clients, rpc_errors():
        r = clients.engagement.PauseRelationship(
            E.PauseRelationshipRequest(
                organization_id=organization,
                relationship_id=relationship,
                participant_id=participant,
                reason=reason,
            )
        )
    _print(r)


@relationship_app.command("resume")
def resume(
    organization: Organization, relationship: Relationship, participant: Participant
) -> None:
    """Make a paused relationship active again."""
    with Clients() as clients, rpc_errors():
        r = clients.engagement.ResumeRelationship(
            E.ResumeRelationshipRequest(
                organization_id=organization,
                relationship_id=relationship,
                participant_id=participant,
            )
        )
    _print(r)


@relationship_app.command("extend")
def extend(
    organization: Organization,
    relationship: Relationship,
    participant: Participant,
    until: Annotated[datetime, typer.Option(formats=DATE_FORMATS, help="New expected end (UTC).")],
) -> None:
    """Move the expected end later."""
    with Clients() as clients, rpc_errors():
        r = clients.engagement.ExtendRelationship(
            E.ExtendRelationshipRequest(
                organization_id=organization,
                relationship_id=relationship,
                participant_id=participant,
                expected_end_at=_stamp(until),
            )
        )
    _print(r)


@relationship_app.command("end")
def end(
    organization: Organization,
    relationship: Relationship,
    participant: Participant,
    completed: Annotated[
        bool, typer.Option("--completed/--early", help="Reached its goals, or closed early.")
    ] = True,
    reason: Annotated[str, typer.Option(help="Why it closes early (required then).")] = "",
    not_a_good_fit: Annotated[
        bool, typer.Option(help="Closed early because the pair did not fit: rematch the mentee.")
    ] = False,
) -> None:
    """Complete a relationship, or close it early with a reason."""
    with Clients() as clients, rpc_errors():
        r = clients.engagement.EndRelationship(
            E.EndRelationshipRequest(
                organization_id=organization,
                relationship_id=relationship,
                participant_id=participant,
                completed=completed,
                reason=reason,
                not_a_good_fit=not_a_good_fit,
            )
        )
    _print(r)


# --- sessions ------------------------------------------------------------------------------


def _print_session(s: engagement_pb2.Session, verb: str) -> None:
    when = _when(s.held_at) if s.HasField("held_at") else _when(s.scheduled_at)
    console.print(
        f"session {s.session_id} {verb}: {when}, {s.minutes} min, "
        f"{MODE_NAMES.get(s.mode, '?')} ({SESSION_STATUS.get(s.status, '?')})"
    )


@session_app.command("schedule")
def schedule(
    organization: Organization,
    relationship: Relationship,
    participant: Participant,
    at: Annotated[datetime, typer.Option(formats=DATE_FORMATS, help="When, in the future (UTC).")],
    minutes: Annotated[int, typer.Option(help="Planned duration, 1-1440.")] = 60,
    mode: Annotated[Mode, typer.Option(help="How they meet.")] = Mode.virtual,
    topic: Annotated[list[str] | None, typer.Option(help="A topic; repeat for several.")] = None,
    request_id: RequestId = "",
) -> None:
    """Plan a session of the pair."""
    with Clients() as clients, rpc_errors():
        s = clients.engagement.ScheduleSession(
            E.ScheduleSessionRequest(
                organization_id=organization,
                relationship_id=relationship,
                participant_id=participant,
                scheduled_at=_stamp(at),
                minutes=max(0, minutes),
                mode=MODES[mode],
                topics=topic or [],
                request_id=request_id,
            )
        )
    _print_session(s, "scheduled")


@session_app.command("reschedule")
def reschedule(
    organization: Organization,
    session: SessionId,
    participant: Participant,
    at: Annotated[
        datetime, typer.Option(formats=DATE_FORMATS, help="The new time, in the future (UTC).")
    ],
    minutes: Annotated[int, typer.Option(help="The new duration, 1-1440; 0 = unchanged.")] = 0,
    request_id: RequestId = "",
) -> None:
    """Move a scheduled session to a new time (and length)."""
    with Clients() as clients, rpc_errors():
        s = clients.engagement.RescheduleSession(
            E.RescheduleSessionRequest(
                organization_id=organization,
                session_id=session,
                participant_id=participant,
                scheduled_at=_stamp(at),
                minutes=max(0, minutes),
                request_id=request_id,
            )
        )
    _print_session(s, "moved")


@session_app.command("held")
def held(
    organization: Organization,
    session: SessionId,
    participant: Participant,
    at: Annotated[
        datetime | None,
        typer.Option(formats=DATE_FORMATS, help="When it took place (UTC); default as planned."),
    ] = None,
    minutes: Annotated[int, typer.Option(help="How long it really took; 0 = as planned.")] = 0,
    note: Annotated[str, typer.Option(help="Your private note; never shared.")] = "",
) -> None:
    """Report that a scheduled session took place."""
    request = E.MarkSessionHeldRequest(
        organization_id=organization,
        session_id=session,
        participant_id=participant,
        minutes=max(0, minutes),
        private_note=note,
    )
    if at is not None:
        request.held_at.CopyFrom(_stamp(at))
    with Clients() as clients, rpc_errors():
        s = clients.engagement.MarkSessionHeld(request)
    _print_session(s, "held")


@session_app.command("cancel")
def cancel(
    organization: Organization,
    session: SessionId,
    participant: Participant,
    reason: Annotated[str, typer.Option(help="Optional.")] = "",
) -> None:
    """Cancel a scheduled session."""
    with Clients() as clients, rpc_errors():
        s = clients.engagement.CancelSession(
            E.CancelSessionRequest(
                organization_id=organization,
                session_id=session,
                participant_id=participant,
                reason=reason,
            )
        )
    _print_session(s, "cancelled")


@session_app.command("list")
def list_sessions(
    organization: Organization, relationship: Relationship, participant: Participant
) -> None:
    """The relationship's sessions, with your own private notes."""
    table = Table(title=f"Sessions of relationship {relationship}")
    for column in ("session", "when", "minutes", "mode", "status", "topics", "your note"):
        table.add_column(column, overflow="fold")
    request = E.ListSessionsRequest(
        organization_id=organization,
        relationship_id=relationship,
        participant_id=participant,
        page_size=500,
    )
    with Clients() as clients, rpc_errors():
        while True:
            page = clients.engagement.ListSessions(request)
            for s in page.sessions:
                table.add_row(
                    s.session_id,
                    _when(s.held_at) if s.HasField("held_at") else _when(s.scheduled_at),
                    str(s.minutes),
                    MODE_NAMES.get(s.mode, "?"),
                    SESSION_STATUS.get(s.status, "?"),
                    "; ".join(s.topics),
                    s.private_note,
                )
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
    console.print(table)


if __name__ == "__main__":
    relationship_app()
