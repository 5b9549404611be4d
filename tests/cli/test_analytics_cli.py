"""`mentoring kpis`, `mentoring analytics …` and `mentoring report` against an in-process fake
AnalyticsService over real gRPC: tables, CSV that parses back to the served numbers, and a
self-contained, escaped HTML report."""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import mentoring
from mentoring import figures
from mentoring.cli import app
from mentoring.output import console
from services.common.api import analytics_pb2
from tests.cli.analytics_fakes import (
    HOSTILE_CAMPAIGN,
    HOSTILE_NAME,
    HOSTILE_SKILL,
    MONEY_SKILL,
    NEW_PROGRAM,
    ORG,
    PROGRAM,
    PROGRAM_NAME,
    SKILLS,
    FakeAnalytics,
    at_risk,
    program_kpis,
    retention_row,
    serve,
    weekly,
)

IDS = ["--organization", ORG, "--program", PROGRAM]
Invoke = Callable[..., Result]


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, FakeAnalytics]]:
    with serve() as running:
        yield running


@pytest.fixture
def cli(fake: tuple[str, FakeAnalytics], monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    address, analytics = fake
    analytics.requests.clear()
    # Wide enough that no table cell wraps (the console is created at import time).
    monkeypatch.setattr(console, "width", 200)
    runner = CliRunner()

    def call(*args: str) -> Result:
        return runner.invoke(
            app, list(args), env={"ANALYTICS_ADDR": address, "ENROLLMENT_ADDR": address}
        )

    yield call


def _row(out: str, label: str) -> str:
    """The value cell of a table row by its label."""
    match = re.search(rf"│ {re.escape(label)}\s+│\s+(\S+) │", out)
    assert match, f"no row {label!r} in\n{out}"
    return match.group(1)


# --- kpis ------------------------------------------------------------------------------------


def test_kpis_table_shows_every_figure_grouped(cli: Invoke) -> None:
    result = cli("kpis", *IDS)
    assert result.exit_code == 0, result.output
    out = result.output
    for group in ("enrolment", "matching", "relationships", "engagement", "satisfaction"):
        assert f"│ {group} " in out
    assert _row(out, "mentors") == "14"
    assert _row(out, "mentees") == "36"
    assert _row(out, "matches proposed") == "40"
    assert _row(out, "match rate") == "72.2%"
    assert _row(out, "median days to match") == "3.5"
    assert _row(out, "relationships at risk") == "3"
    assert _row(out, "session minutes") == "2,745"
    assert _row(out, "goal completion rate") == "30.0%"
    assert _row(out, "mean rating (1-5)") == "4.12"
    assert _row(out, "rating trend (last 4 weeks)") == "+0.25"
    assert [_row(out, f"rated {r}") for r in range(1, 6)] == ["1", "1", "3", "9", "11"]
    assert _row(out, "training completion rate") == "44.0%"
    # Weekly rows and campaigns as their own tables.
    assert "Week by week" in out and "2025-02-10" in out
    assert re.search(r"│ 2025-01-27 │\s+0 │\s+2 │\s+0 │\s+4 │\s+18 │\s+810 │", out), out
    assert "Sign-ups by campaign" in out and HOSTILE_CAMPAIGN in out and "(no campaign)" in out


def test_kpis_csv_parses_back_to_the_served_numbers(
    cli: Invoke, fake: tuple[str, FakeAnalytics], tmp_path: Path
) -> None:
    out, weekly_out = tmp_path / "kpis.csv", tmp_path / "weekly.csv"
    result = cli(
        "kpis",
        *IDS,
        "--cohort",
        "spring",
        "--from",
        "2025-01-01",
        "--to",
        "2025-03-31",
        "--csv",
        str(out),
        "--weekly-csv",
        str(weekly_out),
    )
    assert result.exit_code == 0, result.output
    assert "KPIs of program women-in-tech, cohort spring, 2025-01-01 to 2025-03-31" in result.output

    # The request: the cohort, and the inclusive days as the contract's half-open range.
    (request,) = fake[1].requests
    assert isinstance(request, analytics_pb2.GetProgramKpisRequest)
    assert request.cohort_id == "spring"
    assert request.range.start.ToDatetime(tzinfo=UTC) == datetime(2025, 1, 1, tzinfo=UTC)
    assert request.range.end.ToDatetime(tzinfo=UTC) == datetime(2025, 4, 1, tzinfo=UTC)

    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["group", "figure", "key", "value"]
    served = program_kpis()
    groups = {f.group for f in figures.FIGURES}
    scalars = {r["figure"]: r for r in rows if r["group"] in groups and r["key"] == ""}
    assert set(scalars) == {f.field for f in figures.FIGURES}
    for figure in figures.FIGURES:
        row = scalars[figure.field]
        assert row["group"] == figure.group
        assert type(getattr(served, figure.field))(row["value"]) == getattr(served, figure.field)
    scope = {r["figure"]: r["value"] for r in rows if r["group"] == "scope"}
    assert scope == {
        "organization_id": ORG,
        "program_id": PROGRAM,
        "cohort_id": "spring",
        "from": "2025-01-01",
        "to": "2025-03-31",
    }
    ratings = [int(r["value"]) for r in rows if r["figure"] == "satisfaction_distribution"]
    assert ratings == list(served.satisfaction_distribution)
    campaigns = {
        (r["key"], r["figure"]): int(r["value"]) for r in rows if r["group"] == "campaigns"
    }
    assert campaigns == {
        (HOSTILE_CAMPAIGN, "applications"): 30,
        (HOSTILE_CAMPAIGN, "approvals"): 27,
        ("", "applications"): 28,
        ("", "approvals"): 23,
    }
    long_weekly = {(r["key"], r["figure"]): r["value"] for r in rows if r["group"] == "weekly"}
    assert long_weekly[("2025-01-20", "session_minutes")] == "675"
    assert float(long_weekly[("2025-02-03", "satisfaction_mean")]) == 4.5

    with weekly_out.open(newline="", encoding="utf-8") as handle:
        weeks = list(csv.DictReader(handle))
    assert [w["week_start"] for w in weeks] == [
        "2025-01-06",
        "2025-01-13",
        "2025-01-20",
        "2025-01-27",
        "2025-02-03",
        "2025-02-10",
    ]
    for parsed, sent in zip(weeks, weekly(), strict=True):
        assert int(parsed["sessions"]) == sent.sessions
        assert int(parsed["mentee_applications"]) == sent.mentee_applications
        assert float(parsed["satisfaction_mean"]) == sent.satisfaction_mean


def test_kpis_csv_to_stdout_is_only_csv(cli: Invoke) -> None:
    result = cli("kpis", *IDS, "--csv", "-")
    assert result.exit_code == 0, result.output
    assert "│" not in result.stdout
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["group", "figure", "key", "value"]
    assert ["matching", "match_rate", "", repr(26 / 36)] in rows


def test_kpis_refuses_bad_dates_and_options(cli: Invoke) -> None:
    bad_day = cli("kpis", *IDS, "--from", "2025-13-01")
    assert bad_day.exit_code == 2
    assert "--from" in bad_day.output and "2025-13-01" in bad_day.output
    backwards = cli("kpis", *IDS, "--from", "2025-03-01", "--to", "2025-02-01")
    assert backwards.exit_code == 2
    assert "before" in backwards.output
    both = cli("kpis", *IDS, "--csv", "-", "--weekly-csv", "-")
    assert both.exit_code == 2
    missing = cli("kpis", "--organization", ORG)
    assert missing.exit_code == 2 and "--program" in missing.output


def test_rpc_errors_are_one_line_and_off_stdout_when_it_carries_csv(cli: Invoke) -> None:
    table = cli("kpis", "--organization", "bad org", "--program", PROGRAM)
    assert table.exit_code == 1
    assert "error: INVALID_ARGUMENT: organization_id: is not an id" in table.output
    piped = cli("kpis", "--organization", "bad org", "--program", PROGRAM, "--csv", "-")
    assert piped.exit_code == 1
    assert piped.stdout == ""
    assert "INVALID_ARGUMENT: organization_id" in piped.stderr
    assert table.exception is None or isinstance(table.exception, SystemExit)


def test_an_unreachable_service_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 200)
    result = CliRunner().invoke(
        app, ["analytics", "skills", *IDS], env={"ANALYTICS_ADDR": "127.0.0.1:1"}
    )
    assert result.exit_code == 1
    assert "error: UNAVAILABLE" in result.output
    assert "Traceback" not in result.output


# --- analytics skills / at-risk / retention --------------------------------------------------


def test_skills_table_and_csv(cli: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "skills.csv"
    result = cli("analytics", "skills", *IDS, "--csv", str(out))
    assert result.exit_code == 0, result.output
    assert re.search(r"│ kubernetes\s+│\s+1 │\s+2 │\s+9 │\s+-7 │\s+22% │", result.output)
    assert HOSTILE_SKILL in result.output
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["skill"] for r in rows] == [s.skill for s in SKILLS]
    for parsed, sent in zip(rows, SKILLS, strict=True):
        assert int(parsed["gap"]) == sent.gap
        assert int(parsed["mentor_capacity"]) == sent.mentor_capacity
        assert float(parsed["coverage"]) == sent.coverage

    limited = cli("analytics", "skills", *IDS, "--limit", "1", "--csv", "-")
    assert [r[0] for r in csv.reader(io.StringIO(limited.stdout))] == ["skill", "kubernetes"]
    assert cli("analytics", "skills", *IDS, "--limit", "-1").exit_code == 2

    empty = cli("analytics", "skills", "-o", ORG, "-p", NEW_PROGRAM)
    assert empty.exit_code == 0 and "No skills recorded yet" in empty.output


def test_at_risk_follows_the_pages_or_stops_at_the_limit(
    cli: Invoke, fake: tuple[str, FakeAnalytics], tmp_path: Path
) -> None:
    out = tmp_path / "at-risk.csv"
    result = cli("analytics", "at-risk", "--org", ORG, "-p", PROGRAM, "--csv", str(out))
    assert result.exit_code == 0, result.output
    # The fake serves two per page: five relationships take three requests.
    assert len(fake[1].requests) == 3
    assert "5 of 5 relationships at risk shown" in result.output
    assert "no contact for 48 days" in result.output
    assert "[bold]low rating (2)" in result.output  # user text is never rich markup
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    sent = at_risk()
    assert [r["relationship_id"] for r in rows] == [r.relationship_id for r in sent]
    assert rows[1]["reasons"] == "no contact for 27 days; [bold]low rating (2)"
    assert rows[0]["last_session_at"] == ""
    assert rows[1]["last_session_at"] == "2025-01-21T00:00:00+00:00"
    assert [int(r["days_since_contact"]) for r in rows] == [r.days_since_contact for r in sent]

    fake[1].requests.clear()
    limited = cli("analytics", "at-risk", *IDS, "--limit", "3")
    assert limited.exit_code == 0, limited.output
    assert "3 of 5 relationships at risk shown" in limited.output
    assert "r3" not in limited.output
    assert len(fake[1].requests) == 2


def test_retention_with_chosen_horizons(
    cli: Invoke, fake: tuple[str, FakeAnalytics], tmp_path: Path
) -> None:
    out = tmp_path / "retention.csv"
    result = cli(
        "analytics", "retention", *IDS, "--months", "6", "--months", "24", "--csv", str(out)
    )
    assert result.exit_code == 0, result.output
    (request,) = fake[1].requests
    assert list(request.months) == [6, 24]  # type: ignore[attr-defined]
    six = r"│\s+6 │\s+40 │\s+37 │\s+92.5% │\s+400 │\s+340 │\s+85.0% │\s+\+7.5 │"
    assert re.search(six, result.output), result.output
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["months"]) for r in rows] == [6, 24]
    assert float(rows[1]["difference_points"]) == retention_row(24).difference_points

    defaults = cli("analytics", "retention", "-o", ORG, "--csv", "-")
    assert [r[0] for r in csv.reader(io.StringIO(defaults.stdout))] == ["months", "6", "12"]
    assert cli("analytics", "retention", "-o", ORG, "--months", "0").exit_code == 2


# --- report ----------------------------------------------------------------------------------


class Page(HTMLParser):
    """Collects what a browser would fetch or run."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "action", "data") and value:
                self.links.append(value)
            if name == "style" and value and "url(" in value:
                self.links.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path: Path) -> tuple[str, Page]:
    html = path.read_text(encoding="utf-8")
    page = Page()
    page.feed(html)
    page.close()
    return html, page


def test_report_is_one_self_contained_escaped_file(cli: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = cli("report", *IDS, "--out", str(out), "--from", "2025-01-01")
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert list(tmp_path.iterdir()) == [out]
    html, page = _parse(out)

    # Five charts inline, nothing fetched from anywhere, nothing to run.
    assert page.tags.count("svg") == 5
    for chart in ("signups", "sessions", "skills", "satisfaction", "retention"):
        assert f'id="chart-{chart}"' in html
    assert all(link.startswith("#") for link in page.links), page.links
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    assert "url(http" not in html and "@import" not in html
    assert not {"script", "link", "iframe", "img", "object", "embed"} & set(page.tags)

    # User-supplied text is escaped everywhere, tables and charts alike.
    assert HOSTILE_NAME not in html and "<Rust>" not in html and "<b>spring" not in html
    assert "&lt;img src=" in html
    text = "".join(page.text)
    assert HOSTILE_NAME in text  # …and reads back as the name itself
    assert HOSTILE_SKILL in text and HOSTILE_CAMPAIGN in text
    # In the chart too, as plain text (not a formula).
    skills_chart = html[html.index('id="chart-skills"') :]
    assert "C++ &amp; &lt;Rust&gt;" in skills_chart[: skills_chart.index("</svg>")]
    assert MONEY_SKILL in text
    assert f"Mentoring report: {PROGRAM_NAME}" in text

    # Headline figures and the at-risk list with names.
    for figure in ("72.2%", "3.5 days", "26 of 36 mentees matched", "30.0%", "44.0%", "4.12"):
        assert figure in text, figure
    assert "Ada Lovelace" in text and "no contact for 48 days" in text
    assert "from 2025-01-01 to today" in text
    assert "No data yet" not in text


def test_report_of_a_new_program_says_no_data_yet(cli: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "new.html"
    result = cli("report", "-o", ORG, "-p", NEW_PROGRAM, "--out", str(out))
    assert result.exit_code == 0, result.output
    _, page = _parse(out)
    text = " ".join(" ".join(page.text).split())
    assert "svg" not in page.tags
    assert "No data yet" in text
    for empty in (
        "No sign-ups yet.",
        "No sessions held yet.",
        "No skills recorded yet.",
        "No check-in feedback yet.",
        "No retention data yet",
        "No relationship at risk.",
    ):
        assert empty in text, empty


def test_report_of_an_unknown_program_is_a_clear_error(cli: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "none.html"
    result = cli("report", "-o", ORG, "-p", "nope", "--out", str(out))
    assert result.exit_code == 1
    assert "error: NOT_FOUND: program nope not found" in result.output
    assert not out.exists()


def test_report_without_its_libraries_says_what_to_install(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in the services' image, installed without the `report` extra.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for module in ("report", "charts"):
        monkeypatch.delitem(sys.modules, f"mentoring.{module}", raising=False)
        monkeypatch.delattr(mentoring, module, raising=False)
    result = cli("report", *IDS, "--out", str(tmp_path / "r.html"))
    assert result.exit_code == 2
    assert "needs matplotlib: pip install 'mentoring-platform[report]'" in result.output
