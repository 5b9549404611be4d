"""`mentoring kpis`, `mentoring analytics …` and `mentoring report`: the live KPIs as tables,
CSV and a self-contained HTML report for leadership.

Also runnable alone: `python -m mentoring.cli_analytics --help`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

import typer
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mentoring import figures
from mentoring.clients import Clients
from mentoring.output import console, error_console, rpc_errors
from services.common.api import analytics_pb2, enrollment_pb2

if TYPE_CHECKING:
    # Imported when a report is written: the charting library is not needed for tables.
    from mentoring.report import ReportData

analytics_app = typer.Typer(
    help="Program analytics: skill supply and demand, relationships at risk, retention.",
    no_args_is_help=True,
)

Organization = Annotated[
    str, typer.Option("--organization", "--org", "-o", help="Organization (tenant) id.")
]
ProgramId = Annotated[str, typer.Option("--program", "-p", help="Program id.")]
Cohort = Annotated[str, typer.Option("--cohort", help="Only this cohort of the program.")]
First = Annotated[
    datetime | None,
    typer.Option("--from", formats=["%Y-%m-%d"], help="First day counted (UTC, YYYY-MM-DD)."),
]
Last = Annotated[
    datetime | None,
    typer.Option("--to", formats=["%Y-%m-%d"], help="Last day counted, included (YYYY-MM-DD)."),
]
CsvOut = Annotated[
    Path | None,
    typer.Option(
        "--csv",
        dir_okay=False,
        help="Write the figures as CSV to this file; '-' writes only the CSV, to stdout.",
    ),
]
PAGE_SIZE = 500


def _stdout(path: Path | None) -> bool:
    return path is not None and str(path) == "-"


def _time_range(first: datetime | None, last: datetime | None) -> analytics_pb2.TimeRange | None:
    try:
        return figures.time_range(first.date() if first else None, last.date() if last else None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--to'") from None


def _export(
    path: Path | None, rows: Iterable[Sequence[figures.CsvValue]], messages: Console = console
) -> None:
    """CSV to the file (and say so), or alone on stdout for '-'."""
    if path is None:
        return
    if _stdout(path):
        figures.write_csv(sys.stdout, rows)
        return
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            figures.write_csv(handle, rows)
    except OSError as exc:
        messages.print(f"[red]error:[/] {escape(str(path))}: {escape(str(exc))}")
        raise typer.Exit(2) from None
    messages.print(f"wrote {path}", markup=False)


def _messages(to_stdout: bool) -> Console:
    """Where errors go: stderr while stdout carries CSV, else the usual console."""
    return error_console if to_stdout else console


# --- kpis ------------------------------------------------------------------------------------


def kpis(
    organization: Organization,
    program: ProgramId,
    cohort: Cohort = "",
    first: First = None,
    last: Last = None,
    csv_out: CsvOut = None,
    weekly_csv: Annotated[
        Path | None,
        typer.Option(
            "--weekly-csv", dir_okay=False, help="Also write the weekly rows, one row per week."
        ),
    ] = None,
) -> None:
    """Print a program's live KPIs (of one cohort, within --from/--to); optionally as CSV."""
    if _stdout(csv_out) and _stdout(weekly_csv):
        raise typer.BadParameter("only one of --csv and --weekly-csv can be '-'")
    request = analytics_pb2.GetProgramKpisRequest(
        organization_id=organization, program_id=program, cohort_id=cohort
    )
    if (scope := _time_range(first, last)) is not None:
        request.range.CopyFrom(scope)
    to_stdout = _stdout(csv_out) or _stdout(weekly_csv)
    with Clients() as clients, rpc_errors(_messages(to_stdout)):
        got = clients.analytics.GetProgramKpis(request)
    if not to_stdout:
        print_kpis(got)
    messages = _messages(to_stdout)
    _export(csv_out, [figures.KPI_CSV_HEADER, *figures.kpi_rows(got)], messages)
    _export(
        weekly_csv,
        figures.message_rows(got.weekly, analytics_pb2.WeeklyKpis.DESCRIPTOR),
        messages,
    )


def print_kpis(got: analytics_pb2.ProgramKpis) -> None:
    console.print(f"[bold]KPIs of {escape(figures.describe_scope(got))}[/]", highlight=False)
    for table in figures.kpi_tables(got):
        console.print(table)


# --- skills ----------------------------------------------------------------------------------


@analytics_app.command("skills")
def skills(
    organization: Organization,
    program: ProgramId,
    cohort: Cohort = "",
    limit: Annotated[int, typer.Option(min=0, help="At most this many skills; 0: all.")] = 0,
    csv_out: CsvOut = None,
) -> None:
    """What mentors offer against what mentees seek, per skill, worst shortage first."""
    with Clients() as clients, rpc_errors(_messages(_stdout(csv_out))):
        balance = clients.analytics.GetSkillBalance(
            analytics_pb2.GetSkillBalanceRequest(
                organization_id=organization, program_id=program, cohort_id=cohort, limit=limit
            )
        )
    if not _stdout(csv_out):
        if balance.skills:
            console.print(skills_table(balance.skills, f"Skill supply and demand: {program}"))
        else:
            console.print(f"No skills recorded yet in program {program}.", markup=False)
    _export(
        csv_out, figures.message_rows(balance.skills, analytics_pb2.SkillSupplyDemand.DESCRIPTOR)
    )


def skills_table(rows: Iterable[analytics_pb2.SkillSupplyDemand], title: str) -> Table:
    table = Table(title=escape(title))
    table.add_column("skill", overflow="fold")
    for column in ("mentors", "mentor places", "mentees seeking", "gap", "coverage"):
        table.add_column(column, justify="right")
    for s in rows:
        gap = f"[red]{s.gap:+d}[/]" if s.gap < 0 else f"{s.gap:+d}"
        coverage = f"{s.coverage:.0%}" if s.mentees else "-"
        table.add_row(
            Text(s.skill), str(s.mentors), str(s.mentor_capacity), str(s.mentees), gap, coverage
        )
    return table


# --- at risk ---------------------------------------------------------------------------------


class AnalyticsStub(Protocol):
    def ListAtRiskRelationships(
        self, request: analytics_pb2.ListAtRiskRelationshipsRequest
    ) -> analytics_pb2.ListAtRiskRelationshipsResponse: ...


def at_risk_relationships(
    stub: AnalyticsStub, organization: str, program: str, cohort: str = "", limit: int = 0
) -> tuple[list[analytics_pb2.AtRiskRelationship], int]:
    """Every relationship at risk (or the first `limit`), following the page tokens; and how
    many there are in all."""
    request = analytics_pb2.ListAtRiskRelationshipsRequest(
        organization_id=organization,
        program_id=program,
        cohort_id=cohort,
        page_size=min(limit, PAGE_SIZE) if limit else PAGE_SIZE,
    )
    found: list[analytics_pb2.AtRiskRelationship] = []
    seen: set[str] = set()
    total = 0
    while True:
        page = stub.ListAtRiskRelationships(request)
        found.extend(page.relationships)
        total = max(page.total, len(found))
        token = page.next_page_token
        # A token seen before would loop forever: stop rather than hang on a faulty server.
        if not token or token in seen or (limit and len(found) >= limit):
            break
        seen.add(token)
        request.page_token = token
    return (found[:limit] if limit else found), total


def _when(stamp: Timestamp, present: bool) -> str:
    return stamp.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d") if present else "never"


def at_risk_table(
    rows: Sequence[analytics_pb2.AtRiskRelationship], title: str, names: dict[str, str]
) -> Table:
    table = Table(title=escape(title))
    for column in ("relationship", "mentor", "mentee", "cohort", "started", "last session"):
        table.add_column(column, overflow="fold")
    for column in ("sessions", "days since contact", "latest rating"):
        table.add_column(column, justify="right")
    table.add_column("why", overflow="fold")
    for r in rows:
        table.add_row(
            Text(r.relationship_id),
            Text(names.get(r.mentor_id, r.mentor_id)),
            Text(names.get(r.mentee_id, r.mentee_id)),
            Text(r.cohort_id),
            _when(r.started_at, r.HasField("started_at")),
            _when(r.last_session_at, r.HasField("last_session_at")),
            str(r.sessions),
            str(r.days_since_contact),
            str(r.latest_rating or "-"),
            Text("; ".join(r.reasons)),
        )
    return table


@analytics_app.command("at-risk")
def at_risk(
    organization: Organization,
    program: ProgramId,
    cohort: Cohort = "",
    limit: Annotated[int, typer.Option(min=0, help="At most this many; 0: all of them.")] = 0,
    csv_out: CsvOut = None,
) -> None:
    """Active relationships showing warning signs, with the reasons."""
    with Clients() as clients, rpc_errors(_messages(_stdout(csv_out))):
        found, total = at_risk_relationships(
            clients.analytics, organization, program, cohort, limit
        )
    if not _stdout(csv_out):
        if found:
            console.print(at_risk_table(found, f"Relationships at risk: {program}", {}))
        console.print(f"{len(found)} of {total} relationships at risk shown.", markup=False)
    _export(csv_out, figures.message_rows(found, analytics_pb2.AtRiskRelationship.DESCRIPTOR))


# --- retention -------------------------------------------------------------------------------


@analytics_app.command("retention")
def retention(
    organization: Organization,
    program: Annotated[
        str, typer.Option("--program", "-p", help="Program id; empty: every program.")
    ] = "",
    months: Annotated[
        list[int] | None,
        typer.Option(min=1, max=240, help="A horizon in months; repeat it. Default: 6 and 12."),
    ] = None,
    csv_out: CsvOut = None,
) -> None:
    """Share of participants still employed after N months, against non-participants."""
    with Clients() as clients, rpc_errors(_messages(_stdout(csv_out))):
        got = clients.analytics.GetRetention(
            analytics_pb2.GetRetentionRequest(
                organization_id=organization, program_id=program, months=months or []
            )
        )
    if not _stdout(csv_out):
        scope = f"program {program}" if program else f"all programs of {organization}"
        if got.rows:
            console.print(retention_table(got.rows, f"Retention: {scope}"))
        else:
            console.print(f"No retention data yet for {scope}.", markup=False)
    _export(csv_out, figures.message_rows(got.rows, analytics_pb2.RetentionRow.DESCRIPTOR))


def retention_table(rows: Iterable[analytics_pb2.RetentionRow], title: str) -> Table:
    table = Table(title=escape(title))
    columns = (
        "months",
        "participants",
        "retained",
        "rate",
        "non-participants",
        "retained",
        "rate",
        "difference (points)",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r.months),
            str(r.participants),
            str(r.participants_retained),
            f"{r.participant_rate:.1%}",
            str(r.non_participants),
            str(r.non_participants_retained),
            f"{r.non_participant_rate:.1%}",
            f"{r.difference_points:+.1f}",
        )
    return table


# --- report ----------------------------------------------------------------------------------


@dataclass
class ReportInputs:
    organization: str
    program: str
    cohort: str
    scope: analytics_pb2.TimeRange | None
    top_skills: int
    at_risk_limit: int


def gather(clients: Clients, inputs: ReportInputs) -> ReportData:
    """Everything the report shows, from analytics (and the names from enrollment)."""
    from mentoring.report import ReportData

    org, pid, cohort = inputs.organization, inputs.program, inputs.cohort
    program = clients.enrollment.GetProgram(
        enrollment_pb2.GetProgramRequest(organization_id=org, program_id=pid)
    )
    request = analytics_pb2.GetProgramKpisRequest(
        organization_id=org, program_id=pid, cohort_id=cohort
    )
    if inputs.scope is not None:
        request.range.CopyFrom(inputs.scope)
    got = clients.analytics.GetProgramKpis(request)
    balance = clients.analytics.GetSkillBalance(
        analytics_pb2.GetSkillBalanceRequest(
            organization_id=org, program_id=pid, cohort_id=cohort, limit=inputs.top_skills
        )
    )
    risky, total = at_risk_relationships(clients.analytics, org, pid, cohort, inputs.at_risk_limit)
    kept = clients.analytics.GetRetention(
        analytics_pb2.GetRetentionRequest(organization_id=org, program_id=pid)
    )
    return ReportData(
        organization=org,
        program_name=program.name or pid,
        kpis=got,
        skills=list(balance.skills),
        at_risk=risky,
        at_risk_total=total,
        retention=list(kept.rows),
        names=participant_names(clients, org, pid) if risky else {},
        generated_at=datetime.now(UTC),
    )


def participant_names(clients: Clients, organization: str, program: str) -> dict[str, str]:
    request = enrollment_pb2.ListParticipantsRequest(
        organization_id=organization, program_id=program, page_size=PAGE_SIZE
    )
    names: dict[str, str] = {}
    while True:
        page = clients.enrollment.ListParticipants(request)
        names.update((p.participant_id, p.display_name) for p in page.participants)
        if not page.next_page_token:
            return names
        request.page_token = page.next_page_token


def report(
    organization: Organization,
    program: ProgramId,
    out: Annotated[
        Path, typer.Option(dir_okay=False, help="The HTML file to write (one file, no network).")
    ] = Path("report.html"),
    cohort: Cohort = "",
    first: First = None,
    last: Last = None,
    top_skills: Annotated[
        int, typer.Option(min=1, help="Skills in the supply and demand chart, worst first.")
    ] = 15,
    at_risk_limit: Annotated[
        int, typer.Option(min=0, help="At most this many relationships listed; 0: all.")
    ] = 100,
) -> None:
    """Write a self-contained HTML report for leadership: headline figures and charts."""
    try:
        from mentoring.report import render
    except ImportError as exc:
        console.print(
            f"[red]error:[/] the report needs {exc.name or 'its libraries'}: "
            "pip install 'mentoring-platform\\[report]'"
        )
        raise typer.Exit(2) from None
    inputs = ReportInputs(
        organization, program, cohort, _time_range(first, last), top_skills, at_risk_limit
    )
    with Clients() as clients, rpc_errors(), console.status("Reading the KPIs…"):
        data = gather(clients, inputs)
    page = render(data)
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        console.print(f"[red]error:[/] {escape(str(out))}: {escape(str(exc))}")
        raise typer.Exit(2) from None
    console.print(f"wrote {out}: report on {figures.describe_scope(data.kpis)}", markup=False)


if __name__ == "__main__":
    analytics_app()
