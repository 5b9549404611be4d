"""`mentoring kpis --csv`, `mentoring analytics …` and `mentoring report` against the real
analytics service, after a small program has signed up, matched and met."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import analytics_pb2, common_pb2, engagement_pb2, enrollment_pb2
from tests.e2e.support import eventually

MENTOR, MENTEE = common_pb2.ROLE_MENTOR, common_pb2.ROLE_MENTEE
ACCEPT = common_pb2.MATCH_DECISION_ACCEPT
# Escaped in the report: names and skills come from users.
SKILL = "c++ & c#"


def _register(
    clients: Clients, org: str, pid: str, name: str, role: int, skills: list[str], **more: object
) -> str:
    return clients.enrollment.RegisterParticipant(
        enrollment_pb2.RegisterParticipantRequest(
            organization_id=org,
            program_id=pid,
            role=role,
            display_name=name,
            email=f"{uuid.uuid4().hex[:6]}@{org}.example",
            skills=skills,
            **more,  # type: ignore[arg-type]
        )
    ).participant_id


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mentoring.cli", *args],
        capture_output=True,
        text=True,
        env={**stack.client_env(), "COLUMNS": "200"},
        timeout=120,
        check=False,
    )


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.links += [v for k, v in attrs if k in ("src", "href", "xlink:href") and v]


def test_kpis_csv_and_report_from_the_live_service(
    stack: Stack, clients: Clients, tmp_path: Path
) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    pid = clients.enrollment.CreateProgram(
        enrollment_pb2.CreateProgramRequest(organization_id=org, name="Reporting <pilot>")
    ).program_id
    ada = _register(clients, org, pid, "Ada", MENTOR, [SKILL], capacity=2, campaign="intranet")
    _register(clients, org, pid, "Cai", MENTEE, [SKILL], campaign="intranet")
    dee = _register(clients, org, pid, "Dee", MENTEE, [SKILL, "python"])

    def two_proposals() -> list[engagement_pb2.Match] | None:
        found = clients.engagement.ListMatches(
            engagement_pb2.ListMatchesRequest(organization_id=org, program_id=pid)
        ).matches
        return list(found) if len(found) == 2 else None

    sessions = 0
    for match in eventually("two proposals", two_proposals):
        for who in (ada, match.mentee_id):
            answered = clients.engagement.RespondToMatch(
                engagement_pb2.RespondToMatchRequest(
                    organization_id=org,
                    match_id=match.match_id,
                    participant_id=who,
                    decision=ACCEPT,
                )
            )
        assert answered.relationship_id
        for days_ago in (1, 8) if match.mentee_id == dee else (1,):
            request = engagement_pb2.LogSessionRequest(
                organization_id=org,
                relationship_id=answered.relationship_id,
                minutes=45,
                mode=common_pb2.SESSION_MODE_VIRTUAL,
            )
            request.held_at.FromDatetime(datetime.now(UTC) - timedelta(days=days_ago))
            clients.engagement.LogSession(request)
            sessions += 1

    def counted() -> analytics_pb2.ProgramKpis | None:
        got = clients.analytics.GetProgramKpis(
            analytics_pb2.GetProgramKpisRequest(organization_id=org, program_id=pid)
        )
        return got if got.sessions == sessions and got.active_relationships == 2 else None

    eventually("analytics to count the sessions", counted, timeout=60)

    # kpis --csv -: the numbers the service holds, one figure per row.
    exported = _cli(stack, "kpis", "-o", org, "-p", pid, "--csv", "-")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    value = {(r["group"], r["figure"], r["key"]): r["value"] for r in rows}
    assert value[("enrolment", "mentors", "")] == "1"
    assert value[("enrolment", "mentees", "")] == "2"
    assert value[("enrolment", "applications", "")] == "3"
    assert value[("engagement", "sessions", "")] == str(sessions)
    assert value[("engagement", "session_minutes", "")] == str(45 * sessions)
    assert value[("relationships", "active_relationships", "")] == "2"
    assert value[("matching", "mentees_matched", "")] == "2"
    assert float(value[("matching", "match_rate", "")]) == 1.0
    assert value[("campaigns", "applications", "intranet")] == "2"
    weekly_sessions = sum(
        int(r["value"]) for r in rows if (r["group"], r["figure"]) == ("weekly", "sessions")
    )
    assert weekly_sessions == sessions

    # The tables, and a time range that leaves the sessions out.
    table = _cli(stack, "kpis", "-o", org, "-p", pid, "--from", "2000-01-01", "--to", "2000-01-31")
    assert table.returncode == 0, table.stdout + table.stderr
    assert re.search(r"│ sessions\s+│\s+0 │", table.stdout), table.stdout
    skills = _cli(stack, "analytics", "skills", "-o", org, "-p", pid, "--csv", "-")
    assert skills.returncode == 0, skills.stdout + skills.stderr
    balance = {r["skill"]: r for r in csv.DictReader(io.StringIO(skills.stdout))}
    assert (balance[SKILL]["mentor_capacity"], balance[SKILL]["mentees"]) == ("2", "2")
    assert (balance["python"]["mentees"], balance["python"]["gap"]) == ("1", "-1")
    at_risk = _cli(stack, "analytics", "at-risk", "-o", org, "-p", pid)
    assert at_risk.returncode == 0, at_risk.stdout + at_risk.stderr
    assert "0 of 0 relationships at risk shown" in at_risk.stdout  # they met yesterday

    # The report: one file, charts inline, nothing fetched, user text escaped.
    out = tmp_path / "report.html"
    report = _cli(stack, "report", "-o", org, "-p", pid, "--out", str(out))
    assert report.returncode == 0, report.stdout + report.stderr
    html = out.read_text(encoding="utf-8")
    page = Links()
    page.feed(html)
    for chart in ("signups", "sessions", "skills"):
        assert f'id="chart-{chart}"' in html
    assert all(link.startswith("#") for link in page.links), page.links
    assert "script" not in page.tags
    assert "Reporting &lt;pilot&gt;" in html and "Reporting <pilot>" not in html
    assert "c++ &amp; c#" in html and SKILL not in html
    assert "100.0%" in html  # the match rate
