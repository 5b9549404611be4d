"""`mentoring demo`: a sample program walked through the whole journey over gRPC."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.progress import track

from mentoring.cli_notifications import DEFAULT_MAIL_DIR, MAIL_DIR_ENV
from mentoring.clients import Clients
from mentoring.mailcatcher import messages
from mentoring.people import sample_people
from services.common.api import analytics_pb2, common_pb2, engagement_pb2, enrollment_pb2

T = TypeVar("T")
ROLES = {"mentor": common_pb2.ROLE_MENTOR, "mentee": common_pb2.ROLE_MENTEE}
# Pairs that plan their next session (the first then moves it): each member gets a calendar
# invitation, and an update for the move.
PLANNING_PAIRS = 3
# How long the demo waits, at most, for those invitations to reach the local mail catcher.
MAIL_WAIT_SECONDS = 30.0


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result is not None:
            return result
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def _matches(clients: Clients, org: str, program_id: str) -> list[engagement_pb2.Match]:
    found, token = [], ""
    while True:
        page = clients.engagement.ListMatches(
            engagement_pb2.ListMatchesRequest(
                organization_id=org, program_id=program_id, page_size=500, page_token=token
            )
        )
        found.extend(page.matches)
        token = page.next_page_token
        if not token:
            return found


def _settled_proposals(
    clients: Clients, org: str, program_id: str, known: int, allow_none: bool
) -> Callable[[], list[engagement_pb2.Match] | None]:
    """A probe returning the open proposals once no new one arrived for a second; with
    allow_none, also after three quiet seconds with none at all (nobody left to match)."""
    state = {"count": known, "since": time.monotonic()}

    def probe() -> list[engagement_pb2.Match] | None:
        matches = _matches(clients, org, program_id)
        if len(matches) != state["count"]:
            state["count"], state["since"] = len(matches), time.monotonic()
            return None
        quiet = time.monotonic() - state["since"]
        if (len(matches) > known and quiet > 1.0) or (allow_none and quiet > 3.0):
            return [m for m in matches if m.status == common_pb2.MATCH_STATUS_PROPOSED]
        return None

    return probe


def run_demo(
    clients: Clients, console: Console, organization: str, seed: int = 7
) -> analytics_pb2.ProgramKpis:
    """Create a program, register 50 people, answer the proposals, log sessions, plan a few
    (calendar invitations by e-mail); return the program's KPIs once analytics has counted
    everything."""
    mail = MailCount(mail_dir(), organization)
    before = mail.count()
    program = clients.enrollment.CreateProgram(
        enrollment_pb2.CreateProgramRequest(
            organization_id=organization,
            name=f"Demo mentoring program {datetime.now(UTC):%Y-%m-%d %H:%M:%S}",
            objective="Knowledge transfer and career growth",
        )
    )
    pid = program.program_id
    console.print(f"Program [bold]{program.name}[/] ({pid}) in organization {organization}")
    people = sample_people(mentors=14, mentees=36, seed=seed)
    for person in track(people, description="Registering 50 participants", console=console):
        clients.enrollment.RegisterParticipant(
            enrollment_pb2.RegisterParticipantRequest(
                organization_id=organization,
                program_id=pid,
                role=ROLES[person.role],
                display_name=person.display_name,
                email=person.email,
                skills=person.skills,
                capacity=person.capacity,
            )
        )
    relationships: list[str] = []
    mentors: dict[str, str] = {}
    declined = known = 0
    for round_ in (1, 2):
        open_matches = wait_for(
            "match proposals",
            _settled_proposals(clients, organization, pid, known, allow_none=round_ > 1),
        )
        known = len(_matches(clients, organization, pid))
        console.print(f"Round {round_}: matching proposed {len(open_matches)} pairs")
        for index, match in enumerate(open_matches):
            # In the first round every fifth mentee says no, so matching proposes again.
            mentee_says = (
                common_pb2.MATCH_DECISION_DECLINE
                if round_ == 1 and index % 5 == 4
                else common_pb2.MATCH_DECISION_ACCEPT
            )
            for participant, decision in (
                (match.mentor_id, common_pb2.MATCH_DECISION_ACCEPT),
                (match.mentee_id, mentee_says),
            ):
                answered = clients.engagement.RespondToMatch(
                    engagement_pb2.RespondToMatchRequest(
                        organization_id=organization,
                        match_id=match.match_id,
                        participant_id=participant,
                        decision=decision,
                    )
                )
                if answered.status == common_pb2.MATCH_STATUS_DECLINED:
                    declined += 1
                    break
            if answered.relationship_id:
                relationships.append(answered.relationship_id)
                mentors[answered.relationship_id] = match.mentor_id
        if not declined:
            break
    console.print(f"{len(relationships)} relationships active, {declined} proposals declined")
    sessions = 0
    now = datetime.now(UTC)
    for index, relationship_id in enumerate(
        track(relationships, description="Logging sessions", console=console)
    ):
        for week in range(1 + index % 3):
            request = engagement_pb2.LogSessionRequest(
                organization_id=organization,
                relationship_id=relationship_id,
                minutes=30 + 15 * (week % 3),
                mode=common_pb2.SESSION_MODE_VIRTUAL,
            )
            request.held_at.FromDatetime(now - timedelta(weeks=week))
            clients.engagement.LogSession(request)
            sessions += 1

    planning = [(r, mentors[r]) for r in relationships[:PLANNING_PAIRS]]
    planned = schedule_sessions(clients, organization, planning, now)
    console.print(f"{planned} upcoming sessions scheduled and one moved: calendar invitations sent")

    def kpis_caught_up() -> analytics_pb2.ProgramKpis | None:
        kpis = clients.analytics.GetProgramKpis(
            analytics_pb2.GetProgramKpisRequest(organization_id=organization, program_id=pid)
        )
        return kpis if kpis.sessions == sessions and kpis.mentees == 36 else None

    kpis = wait_for("the KPIs to catch up", kpis_caught_up)
    report_mail(console, mail, before, expected=2 * planned + 2)
    return kpis


def schedule_sessions(
    clients: Clients, organization: str, pairs: list[tuple[str, str]], now: datetime
) -> int:
    """Each pair (relationship, mentor) plans a session on a day of next week, and the first
    moves theirs by a day: invitations, then an update (SEQUENCE 1). How many were planned."""
    start = (now + timedelta(days=7)).replace(hour=15, minute=0, second=0, microsecond=0)
    planned = []
    for index, (relationship_id, mentor_id) in enumerate(pairs):
        request = engagement_pb2.ScheduleSessionRequest(
            organization_id=organization,
            relationship_id=relationship_id,
            participant_id=mentor_id,
            minutes=45,
            mode=common_pb2.SESSION_MODE_VIRTUAL,
            topics=["next steps"],
        )
        request.scheduled_at.FromDatetime(start + timedelta(days=index))
        planned.append(clients.engagement.ScheduleSession(request))
    if planned:
        move = engagement_pb2.RescheduleSessionRequest(
            organization_id=organization,
            session_id=planned[0].session_id,
            participant_id=pairs[0][1],
        )
        move.scheduled_at.FromDatetime(start + timedelta(days=1, hours=1))
        clients.engagement.RescheduleSession(move)
    return len(planned)


class MailCount:
    """The local mail catcher's messages from one organisation (its name is their sender's),
    and how many carry a calendar invitation. Reads each file once."""

    def __init__(self, directory: Path, organization: str) -> None:
        self.directory = directory
        self._organization = organization
        self._seen: dict[Path, bool | None] = {}

    def count(self) -> tuple[int, int]:
        for path in messages(self.directory):
            if path not in self._seen:
                self._seen[path] = self._invitation(path)
        ours = [calendar for calendar in self._seen.values() if calendar is not None]
        return len(ours), sum(ours)

    def _invitation(self, path: Path) -> bool | None:
        """Whether the message carries an invitation; None when another organisation sent it."""
        with path.open("rb") as source:
            message = BytesParser(policy=policy.default).parse(source)
        sender = message["From"]
        if sender is None or sender.addresses[0].display_name != self._organization:
            return None
        return any(part.get_content_type() == "text/calendar" for part in message.walk())


def mail_dir() -> Path:
    return Path(os.environ.get(MAIL_DIR_ENV, "").strip() or DEFAULT_MAIL_DIR)


def report_mail(console: Console, mail: MailCount, before: tuple[int, int], expected: int) -> None:
    """Waits a little for this run's invitations to reach the local catcher, then says what
    came. Silent when there is no catcher (a real SMTP server takes the mail)."""
    if not mail.directory.is_dir():
        return
    deadline = time.monotonic() + MAIL_WAIT_SECONDS
    total, invitations = mail.count()
    while invitations - before[1] < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        total, invitations = mail.count()
    console.print(
        f"The local mail catcher got {total - before[0]} e-mails for the participants, "
        f"{invitations - before[1]} with calendar invitations: see "
        "[bold].venv/bin/mentoring notifications list[/]"
    )
