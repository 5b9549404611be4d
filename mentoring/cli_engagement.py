"""`mentoring engagement …`: relationships and sessions (cli_relationships.py), goals, check-in
feedback, the training library, transcripts and announcements.

Also runnable alone: `python -m mentoring.cli_engagement --help`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from mentoring.cli_relationships import relationship_app, session_app
from mentoring.clients import Clients
from mentoring.output import console, rpc_errors
from services.common.api import common_pb2, engagement_pb2, events_pb2

T = TypeVar("T")

engagement_app = typer.Typer(
    help="Keep pairs engaged: relationships, sessions, goals, feedback, training, announcements.",
    no_args_is_help=True,
)
goals_app = typer.Typer(help="A relationship's goals.", no_args_is_help=True)
feedback_app = typer.Typer(help="Check-in feedback.", no_args_is_help=True)
training_app = typer.Typer(help="The program's training library.", no_args_is_help=True)
engagement_app.add_typer(relationship_app, name="relationship")
engagement_app.add_typer(session_app, name="session")
engagement_app.add_typer(goals_app, name="goals")
engagement_app.add_typer(feedback_app, name="feedback")
engagement_app.add_typer(training_app, name="training")

Organization = Annotated[str, typer.Option("--organization", "-o", help="Organization id.")]
Relationship = Annotated[str, typer.Option("--relationship", "-r", help="Relationship id.")]
Participant = Annotated[
    str, typer.Option("--participant", "-p", help="Who acts: the mentor or the mentee.")
]
Program = Annotated[str, typer.Option("--program", help="Program id.")]
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]
KINDS = {
    "guide": events_pb2.TRAINING_KIND_GUIDE,
    "checklist": events_pb2.TRAINING_KIND_CHECKLIST,
    "video": events_pb2.TRAINING_KIND_VIDEO,
}
AUDIENCES = {
    "mentors": events_pb2.TRAINING_AUDIENCE_MENTORS,
    "mentees": events_pb2.TRAINING_AUDIENCE_MENTEES,
    "both": events_pb2.TRAINING_AUDIENCE_BOTH,
}
GOAL_STATUS = {
    events_pb2.GOAL_STATUS_OPEN: "open",
    events_pb2.GOAL_STATUS_ACHIEVED: "achieved",
    events_pb2.GOAL_STATUS_ABANDONED: "abandoned",
}


def _choice(value: str, choices: dict[str, T], option: str) -> T:
    try:
        return choices[value.lower()]
    except KeyError:
        raise typer.BadParameter(f"one of {', '.join(choices)}", param_hint=option) from None


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@goals_app.command("list")
def goals_list(
    organization: Organization, relationship: Relationship, participant: Participant
) -> None:
    """The relationship's goals, with progress and milestones."""
    table = Table(title=f"Goals of relationship {relationship}")
    for column in ("goal", "title", "status", "progress", "target", "milestones"):
        table.add_column(column)
    token = ""
    with Clients() as clients, rpc_errors():
        while True:
            page = clients.engagement.ListGoals(
                engagement_pb2.ListGoalsRequest(
                    organization_id=organization,
                    relationship_id=relationship,
                    participant_id=participant,
                    page_token=token,
                )
            )
            for g in page.goals:
                done = sum(1 for m in g.milestones if m.done)
                table.add_row(
                    g.goal_id,
                    g.title,
                    GOAL_STATUS.get(g.status, "?"),
                    f"{g.progress}%",
                    g.target_date.ToDatetime(UTC).date().isoformat(),
                    f"{done}/{len(g.milestones)}",
                )
            token = page.next_page_token
            if not token:
                break
    console.print(table)


@goals_app.command("add")
def goals_add(
    organization: Organization,
    relationship: Relationship,
    participant: Participant,
    title: Annotated[str, typer.Option(help="What the mentee wants to achieve.")],
    target: Annotated[datetime, typer.Option(formats=DATE_FORMATS, help="Target date (UTC).")],
    description: Annotated[str, typer.Option(help="Optional details.")] = "",
    request_id: Annotated[
        str, typer.Option(help="Your id for this request: repeating it adds no second goal.")
    ] = "",
) -> None:
    """Add a goal for the relationship's mentee."""
    request = engagement_pb2.CreateGoalRequest(
        organization_id=organization,
        relationship_id=relationship,
        participant_id=participant,
        title=title,
        description=description,
        request_id=request_id,
    )
    request.target_date.FromDatetime(_utc(target))
    with Clients() as clients, rpc_errors():
        goal = clients.engagement.CreateGoal(request)
    console.print(f"goal {goal.goal_id} created for mentee {goal.mentee_id}: {goal.title}")


@feedback_app.command("submit")
def feedback_submit(
    organization: Organization,
    relationship: Relationship,
    participant: Participant,
    point: Annotated[
        str, typer.Option(help="day-30, day-60, day-90, midpoint, close or periodic.")
    ],
    rating: Annotated[int, typer.Option(help="1 (poor) to 5 (excellent).")],
    comment: Annotated[str, typer.Option(help="Optional; stays private to engagement.")] = "",
) -> None:
    """Answer a check-in survey."""
    with Clients() as clients, rpc_errors():
        answer = clients.engagement.SubmitFeedback(
            engagement_pb2.SubmitFeedbackRequest(
                organization_id=organization,
                relationship_id=relationship,
                participant_id=participant,
                survey_point=point,
                rating=max(0, rating),
                comment=comment,
            )
        )
    console.print(
        f"feedback {answer.feedback_id} recorded: {answer.survey_point} rated {answer.rating}/5"
    )


@training_app.command("add")
def training_add(
    organization: Organization,
    program: Program,
    title: Annotated[str, typer.Option()],
    url: Annotated[str, typer.Option(help="http(s) link to the resource.")],
    kind: Annotated[str, typer.Option(help="guide, checklist or video.")] = "guide",
    audience: Annotated[str, typer.Option(help="mentors, mentees or both.")] = "both",
    minutes: Annotated[int, typer.Option(help="Time it takes; counts on transcripts.")] = 0,
) -> None:
    """Add a resource to the program's training library."""
    request = engagement_pb2.AddTrainingResourceRequest(
        organization_id=organization,
        program_id=program,
        title=title,
        kind=_choice(kind, KINDS, "--kind"),
        url=url,
        audience=_choice(audience, AUDIENCES, "--audience"),
        minutes=max(0, minutes),
    )
    with Clients() as clients, rpc_errors():
        resource = clients.engagement.AddTrainingResource(request)
    console.print(f"resource {resource.resource_id} added: {resource.title}")


@training_app.command("list")
def training_list(
    organization: Organization,
    program: Program,
    audience: Annotated[str, typer.Option(help="Only for mentors, mentees (or both).")] = "",
) -> None:
    """The program's training library."""
    wanted = (
        _choice(audience, AUDIENCES, "--audience")
        if audience
        else events_pb2.TRAINING_AUDIENCE_UNSPECIFIED
    )
    names = {value: name for name, value in KINDS.items()}
    readers = {value: name for name, value in AUDIENCES.items()}
    table = Table(title=f"Training library of program {program}")
    for column in ("resource", "title", "kind", "for", "minutes", "url"):
        table.add_column(column)
    token = ""
    with Clients() as clients, rpc_errors():
        while True:
            page = clients.engagement.ListTrainingResources(
                engagement_pb2.ListTrainingResourcesRequest(
                    organization_id=organization,
                    program_id=program,
                    audience=wanted,
                    page_token=token,
                )
            )
            for r in page.resources:
                table.add_row(
                    r.resource_id,
                    r.title,
                    names.get(r.kind, "?"),
                    readers.get(r.audience, "?"),
                    str(r.minutes),
                    r.url,
                )
            token = page.next_page_token
            if not token:
                break
    console.print(table)


@training_app.command("complete")
def training_complete(
    organization: Organization,
    participant: Annotated[str, typer.Option("--participant", "-p", help="Who completed it.")],
    resource: Annotated[str, typer.Option(help="Resource id.")],
) -> None:
    """Record that a participant completed a training resource."""
    with Clients() as clients, rpc_errors():
        done = clients.engagement.CompleteTraining(
            engagement_pb2.CompleteTrainingRequest(
                organization_id=organization, resource_id=resource, participant_id=participant
            )
        )
    console.print(f"{done.participant_id} completed {done.title} ({done.minutes} min)")


@engagement_app.command("transcript")
def transcript(
    organization: Organization,
    participant: Annotated[str, typer.Option("--participant", "-p")],
    program: Annotated[str, typer.Option(help="Only this program.")] = "",
) -> None:
    """A participant's recognised training/CPD hours: held sessions and completed training."""
    with Clients() as clients, rpc_errors():
        found = clients.engagement.GetTranscript(
            engagement_pb2.GetTranscriptRequest(
                organization_id=organization, participant_id=participant, program_id=program
            )
        )
    table = Table(title=f"Transcript of {participant}")
    for column in ("date", "what", "minutes"):
        table.add_column(column)
    for s in found.sessions:
        role = "mentor" if s.role == common_pb2.ROLE_MENTOR else "mentee"
        table.add_row(
            s.held_at.ToDatetime(UTC).date().isoformat(),
            f"session as {role} ({s.relationship_id})",
            str(s.minutes),
        )
    for t in found.trainings:
        table.add_row(
            t.completed_at.ToDatetime(UTC).date().isoformat(),
            f"training: {t.title}",
            str(t.minutes),
        )
    console.print(table)
    console.print(
        f"sessions: {len(found.sessions)}, session minutes: {found.session_minutes}, "
        f"training minutes: {found.training_minutes}, "
        f"recognised hours: {found.recognised_hours:.2f}"
    )


@engagement_app.command("announce")
def announce(
    organization: Organization,
    program: Program,
    announcement_id: Annotated[
        str, typer.Option("--id", help="Your id for it: repeating the command sends nothing new.")
    ],
    message: Annotated[str, typer.Option(help="The text, 1-2000 characters.")],
    participant: Annotated[
        str, typer.Option("--participant", "-p", help="Only this participant.")
    ] = "",
    cohort: Annotated[str, typer.Option(help="Only this cohort's participants.")] = "",
    role: Annotated[str, typer.Option(help="Only mentors or only mentees.")] = "",
    unmatched: Annotated[
        bool, typer.Option(help="Only participants in no active or paused relationship.")
    ] = False,
    template: Annotated[str, typer.Option(help="Message template to render.")] = "announcement",
) -> None:
    """Announce to the program's participants (who have not withdrawn), narrowed to a cohort, a
    side or the unmatched; or to one participant."""
    sides = {"mentor": common_pb2.ROLE_MENTOR, "mentee": common_pb2.ROLE_MENTEE}
    side = _choice(role.removesuffix("s"), sides, "--role") if role else common_pb2.ROLE_UNSPECIFIED
    with Clients() as clients, rpc_errors():
        sent = clients.engagement.Announce(
            engagement_pb2.AnnounceRequest(
                organization_id=organization,
                program_id=program,
                announcement_id=announcement_id,
                participant_id=participant,
                cohort_id=cohort,
                role=side,
                unmatched=unmatched,
                template=template,
                message=message,
            )
        )
    what = "sent" if sent.created else "already sent (nothing new)"
    console.print(f"announcement {sent.announcement_id} {what} to {len(sent.recipient_ids)} people")
    for recipient in sent.recipient_ids:
        console.print(f"  {recipient}")


if __name__ == "__main__":
    engagement_app()
