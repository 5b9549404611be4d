"""Analytics answers as figures people read: labels, units, tables and CSV. Pure: no RPCs.

The CLI tables, the CSV exports and the HTML report all take their labels and number formats
from here, so a figure reads the same wherever it is shown.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal, TextIO

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.table import Table
from rich.text import Text

from services.common.api import analytics_pb2

Unit = Literal["count", "rate", "days", "hours", "mean", "rating", "trend"]
RATINGS = (1, 2, 3, 4, 5)


@dataclass(frozen=True, slots=True)
class Figure:
    group: str
    field: str
    label: str
    unit: Unit = "count"


def _figures(group: str, *fields: str | tuple[str, str] | tuple[str, str, Unit]) -> list[Figure]:
    out = []
    for spec in fields:
        if isinstance(spec, str):
            out.append(Figure(group, spec, spec.replace("_", " ")))
        elif len(spec) == 2:
            out.append(Figure(group, spec[0], spec[1]))
        else:
            out.append(Figure(group, *spec))
    return out


# Every scalar figure of ProgramKpis, in reading order (a unit test checks none is missing).
FIGURES: tuple[Figure, ...] = (
    *_figures(
        "enrolment",
        "applications",
        "mentor_applications",
        "mentee_applications",
        "approvals",
        "rejections",
        "waitlisted",
        "withdrawals",
        ("mentors", "mentors"),
        ("mentees", "mentees"),
    ),
    *_figures(
        "matching",
        "matching_runs",
        "matches_proposed",
        "matches_accepted",
        "matches_declined",
        "matches_expired",
        "mentees_matched",
        ("match_rate", "match rate", "rate"),
        ("median_days_to_match", "median days to match", "days"),
        ("mean_days_to_match", "mean days to match", "days"),
    ),
    *_figures(
        "relationships",
        "relationships_started",
        "active_relationships",
        "relationships_at_risk",
        "relationships_completed",
        "relationships_closed_early",
    ),
    *_figures(
        "engagement",
        "sessions",
        "session_minutes",
        ("session_hours", "session hours", "hours"),
        "messages",
        ("sessions_per_relationship", "sessions per relationship", "mean"),
        ("hours_per_relationship", "hours per relationship", "hours"),
        ("messages_per_relationship", "messages per relationship", "mean"),
        "goals_set",
        "goals_achieved",
        ("goal_completion_rate", "goal completion rate", "rate"),
    ),
    *_figures(
        "satisfaction",
        "feedback_responses",
        ("satisfaction_mean", "mean rating (1-5)", "rating"),
        ("satisfaction_trend", "rating trend (last 4 weeks)", "trend"),
    ),
    *_figures(
        "training",
        "trainings_completed",
        "participants_trained",
        ("training_completion_rate", "training completion rate", "rate"),
    ),
    Figure("stream", "events", "events counted"),
)
# ProgramKpis fields that are not figures of the table above.
NOT_FIGURES = frozenset(
    {
        "organization_id",
        "program_id",
        "cohort_id",
        "range",
        "satisfaction_distribution",
        "signups_by_campaign",
        "weekly",
    }
)


def show(value: float, unit: Unit = "count") -> str:
    """A figure as a person reads it."""
    if unit == "rate":
        return f"{value:.1%}"
    if unit in ("days", "hours", "mean"):
        return f"{value:.1f}"
    if unit == "rating":
        return f"{value:.2f}" if value else "-"
    if unit == "trend":
        return f"{value:+.2f}"
    return f"{int(value):,}"


def ratings(kpis: analytics_pb2.ProgramKpis) -> list[int]:
    """How many check-ins gave each rating 1..5 (the service may send fewer entries)."""
    counts = list(kpis.satisfaction_distribution)[: len(RATINGS)]
    return counts + [0] * (len(RATINGS) - len(counts))


# --- time ranges -----------------------------------------------------------------------------


def time_range(first: date | None, last: date | None) -> analytics_pb2.TimeRange | None:
    """The contract's half-open [start, end) from the inclusive days a person names."""
    if first is None and last is None:
        return None
    if first is not None and last is not None and last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    out = analytics_pb2.TimeRange()
    if first is not None:
        out.start.FromDatetime(datetime(first.year, first.month, first.day, tzinfo=UTC))
    if last is not None:
        end = last + timedelta(days=1)
        out.end.FromDatetime(datetime(end.year, end.month, end.day, tzinfo=UTC))
    return out


def day(stamp: Timestamp) -> date:
    return stamp.ToDatetime(tzinfo=UTC).date()


def period(kpis: analytics_pb2.ProgramKpis) -> tuple[str, str]:
    """The inclusive first and last day the KPIs cover ("" for an open bound)."""
    if not kpis.HasField("range"):
        return "", ""
    first = day(kpis.range.start).isoformat() if kpis.range.HasField("start") else ""
    last = (
        (day(kpis.range.end) - timedelta(days=1)).isoformat() if kpis.range.HasField("end") else ""
    )
    return first, last


def describe_scope(kpis: analytics_pb2.ProgramKpis) -> str:
    scope = f"program {kpis.program_id}"
    if kpis.cohort_id:
        scope += f", cohort {kpis.cohort_id}"
    first, last = period(kpis)
    if first or last:
        scope += f", {first or 'start'} to {last or 'today'}"
    return scope


# --- tables ----------------------------------------------------------------------------------


def kpi_tables(kpis: analytics_pb2.ProgramKpis) -> list[Table]:
    """The figures grouped by theme, then the weekly rows and the campaigns when there are any."""
    table = Table(title="KPIs")
    table.add_column("group", style="bold")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    group = ""
    for figure in FIGURES:
        if figure.group != group:
            if group:
                table.add_section()
            shown_group, group = figure.group, figure.group
        else:
            shown_group = ""
        table.add_row(shown_group, figure.label, show(getattr(kpis, figure.field), figure.unit))
        if figure.field == "satisfaction_trend":
            for rating, count in zip(RATINGS, ratings(kpis), strict=True):
                table.add_row("", f"rated {rating}", show(count))
    tables = [table]
    if kpis.weekly:
        tables.append(weekly_table(kpis.weekly))
    if kpis.signups_by_campaign:
        campaigns = Table(title="Sign-ups by campaign")
        for column in ("campaign", "applications", "approvals"):
            campaigns.add_column(column, justify="left" if column == "campaign" else "right")
        for row in kpis.signups_by_campaign:
            campaigns.add_row(
                Text(row.campaign or "(no campaign)"), show(row.applications), show(row.approvals)
            )
        tables.append(campaigns)
    return tables


def _is_timestamp(field: FieldDescriptor) -> bool:
    return (
        field.message_type is not None
        and field.message_type.full_name == Timestamp.DESCRIPTOR.full_name
    )


WEEKLY_COLUMNS = (
    ("mentor_applications", "mentor apps"),
    ("mentee_applications", "mentee apps"),
    ("approvals", "approvals"),
    ("relationships_started", "pairs started"),
    ("sessions", "sessions"),
    ("session_minutes", "minutes"),
    ("messages", "messages"),
    ("feedback_responses", "check-ins"),
    ("satisfaction_mean", "rating"),
    ("goals_achieved", "goals achieved"),
)


def weekly_table(weekly: Iterable[analytics_pb2.WeeklyKpis]) -> Table:
    table = Table(title="Week by week")
    table.add_column("week of")
    for _, label in WEEKLY_COLUMNS:
        table.add_column(label, justify="right")
    for week in weekly:
        table.add_row(
            day(week.week_start).isoformat(),
            *(
                show(getattr(week, name), "rating" if name == "satisfaction_mean" else "count")
                for name, _ in WEEKLY_COLUMNS
            ),
        )
    return table


# --- CSV -------------------------------------------------------------------------------------

KPI_CSV_HEADER = ("group", "figure", "key", "value")
CsvValue = str | int | float


def kpi_rows(kpis: analytics_pb2.ProgramKpis) -> Iterator[tuple[str, str, str, CsvValue]]:
    """Every figure as one (group, figure, key, value) row: long format, see the README."""
    first, last = period(kpis)
    yield "scope", "organization_id", "", kpis.organization_id
    yield "scope", "program_id", "", kpis.program_id
    yield "scope", "cohort_id", "", kpis.cohort_id
    yield "scope", "from", "", first
    yield "scope", "to", "", last
    for figure in FIGURES:
        yield figure.group, figure.field, "", getattr(kpis, figure.field)
        if figure.field == "satisfaction_trend":
            for rating, count in zip(RATINGS, ratings(kpis), strict=True):
                yield "satisfaction", "satisfaction_distribution", str(rating), count
    for campaign in kpis.signups_by_campaign:
        yield "campaigns", "applications", campaign.campaign, campaign.applications
        yield "campaigns", "approvals", campaign.campaign, campaign.approvals
    for week in kpis.weekly:
        start = day(week.week_start).isoformat()
        for field in week.DESCRIPTOR.fields:
            if field.name != "week_start":
                yield "weekly", field.name, start, getattr(week, field.name)


def csv_value(message: Message, field: FieldDescriptor) -> CsvValue:
    """A field for CSV: numbers as they are (floats round-trip), timestamps in ISO 8601 UTC."""
    value = getattr(message, field.name)
    if _is_timestamp(field):
        if not message.HasField(field.name):
            return ""
        moment: datetime = value.ToDatetime(tzinfo=UTC)
        return moment.date().isoformat() if field.name == "week_start" else moment.isoformat()
    if field.is_repeated:
        return "; ".join(str(v) for v in value)
    return value  # type: ignore[no-any-return]


def message_rows(rows: Iterable[Message], descriptor: Descriptor) -> Iterator[list[CsvValue]]:
    """A header of field names, then one row per message."""
    yield [field.name for field in descriptor.fields]
    for row in rows:
        yield [csv_value(row, field) for field in descriptor.fields]


def write_csv(handle: TextIO, rows: Iterable[Sequence[CsvValue]]) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerows(rows)
