"""The coordinator's and the pair's commands, driving the real `mentoring` CLI against the
running platform: participants (list, show, update, withdraw), a relationship's lifecycle
(show, pause, resume, extend, end), sessions (schedule, list, held, cancel) and announcements
to a program, a cohort, the unmatched or one person."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import engagement_pb2, enrollment_pb2
from services.common.api import matching_pb2 as K
from tests.e2e.engine import MENTEE, MENTOR, Program
from tests.e2e.support import eventually
from tests.e2e.test_engagement_lifecycle import SKILLS, engagement_consumed, pair_up
from tests.e2e.test_withdrawals_and_hr import participant, relationship

E = engagement_pb2


def mentoring(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mentoring.cli", *args],
        capture_output=True,
        text=True,
        env={**stack.client_env(), "COLUMNS": "250"},
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stdout, result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_participant_commands(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    mentor = program.register("Kim", MENTOR, ["go"], capacity=1, department="ops", location="Oslo")
    mentee = program.register("Lou", MENTEE, ["go"])
    org = ["-o", program.org]

    listed = ok(mentoring(stack, "programs", "participant", "list", *org, "-p", program.pid))
    assert mentor in listed and mentee in listed and "2 participants" in listed
    mentors = ok(
        mentoring(
            stack, "programs", "participant", "list", *org, "-p", program.pid, "--role", "mentor"
        )
    )
    assert mentor in mentors and mentee not in mentors

    out = ok(
        mentoring(
            stack, "programs", "participant", "update", *org, "--participant", mentor,
            "--capacity", "3", "--skills", "go; rust", "--department", "platform",
        )
    )  # fmt: skip
    assert f"participant {mentor} updated" in out
    updated = participant(program, mentor)
    assert (updated.capacity, list(updated.skills)) == (3, ["go", "rust"])
    # Only what was given changed.
    assert (updated.profile.department, updated.profile.location) == ("platform", "Oslo")
    shown = ok(mentoring(stack, "programs", "participant", "show", *org, "--participant", mentor))
    assert "platform" in shown and "Oslo" in shown and "go; rust" in shown

    refused(
        mentoring(
            stack, "programs", "participant", "update", *org, "--participant", mentor,
            "--timezone", "Mars/Olympus",
        ),
        "INVALID_ARGUMENT: profile.timezone",
    )  # fmt: skip
    refused(
        mentoring(stack, "programs", "participant", "withdraw", *org, "--participant", mentee,
                  "--reason", " "),
        "INVALID_ARGUMENT: reason",
    )  # fmt: skip
    out = ok(
        mentoring(stack, "programs", "participant", "withdraw", *org, "--participant", mentee,
                  "--reason", "moved abroad")
    )  # fmt: skip
    assert "withdrawn: moved abroad" in out
    assert participant(program, mentee).status == enrollment_pb2.PARTICIPANT_STATUS_WITHDRAWN


def test_relationship_and_session_commands(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    program.configure(mode=K.MATCHING_MODE_BULK, criteria=[SKILLS])
    mentor = program.register("Max", MENTOR, ["sql"], capacity=1)
    mentee = program.register("Noa", MENTEE, ["sql"])
    program.wait_pool()
    rid = pair_up(program, mentor, mentee)
    who = ["-o", program.org, "-r", rid, "-p", mentee]

    out = ok(mentoring(stack, "engagement", "relationship", "show", "-o", program.org, "-r", rid))
    assert f"mentor {mentor}, mentee {mentee}, active" in out and "health 100/100" in out

    out = ok(mentoring(stack, "engagement", "relationship", "pause", *who, "--reason", "travel"))
    assert "paused (travel)" in out
    refused(
        mentoring(
            stack, "engagement", "session", "schedule", *who, "--at", "2031-05-04T10:00",
        ),
        "FAILED_PRECONDITION: relationship_id: the relationship is paused",
    )  # fmt: skip
    assert "active" in ok(mentoring(stack, "engagement", "relationship", "resume", *who))

    at = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    plan = [*who, "--at", at, "--minutes", "45", "--mode", "face-to-face", "--topic", "careers",
            "--topic", "writing", "--request-id", f"plan-{rid}"]  # fmt: skip
    first = ok(mentoring(stack, "engagement", "session", "schedule", *plan))
    scheduled = re.search(r"session (\S+) scheduled", first)
    assert scheduled, first
    again = ok(mentoring(stack, "engagement", "session", "schedule", *plan))
    assert f"session {scheduled.group(1)} scheduled" in again  # a retry: the same session
    second = ok(mentoring(stack, "engagement", "session", "schedule", *who, "--at", at))
    other = re.search(r"session (\S+) scheduled", second)
    assert other and other.group(1) != scheduled.group(1)

    s = ["-o", program.org, "-p", mentee]
    held_at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    out = ok(
        mentoring(stack, "engagement", "session", "held", *s, "-s", scheduled.group(1),
                  "--at", held_at, "--minutes", "50", "--note", "my own note")
    )  # fmt: skip
    assert "50 min" in out and "(held)" in out
    out = ok(
        mentoring(stack, "engagement", "session", "cancel", *s, "-s", other.group(1),
                  "--reason", "clash")
    )  # fmt: skip
    assert "(cancelled)" in out
    listed = ok(mentoring(stack, "engagement", "session", "list", *who))
    assert "my own note" in listed and "careers; writing" in listed and "cancelled" in listed
    as_mentor = ok(mentoring(stack, "engagement", "session", "list", "-o", program.org, "-r", rid,
                             "-p", mentor))  # fmt: skip
    assert "my own note" not in as_mentor  # private to its author
    assert relationship(program, rid).sessions == 1

    current_end = relationship(program, rid).expected_end_at.ToDatetime(UTC)
    later = (current_end + timedelta(days=30)).date().isoformat()
    out = ok(mentoring(stack, "engagement", "relationship", "extend", *who, "--until", later))
    assert f"expected end {later}" in out
    refused(
        mentoring(stack, "engagement", "relationship", "end", *who, "--early"),
        "INVALID_ARGUMENT: reason",
    )
    out = ok(
        mentoring(stack, "engagement", "relationship", "end", *who, "--early", "--reason",
                  "different goals", "--not-a-good-fit")
    )  # fmt: skip
    assert "closed early: different goals" in out
    assert relationship(program, rid).status == E.RELATIONSHIP_STATUS_CLOSED_EARLY


def test_announce_command_targets(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    program.configure(mode=K.MATCHING_MODE_BULK, criteria=[SKILLS])
    clients.enrollment.CreateCohort(
        enrollment_pb2.CreateCohortRequest(
            organization_id=program.org, program_id=program.pid, cohort_id="pilot", name="Pilot"
        )
    )
    before = engagement_consumed(stack, "participant-registered")
    mentor = program.register("Oz", MENTOR, ["qa"], capacity=1, cohort_id="pilot")
    matched = program.register("Pia", MENTEE, ["qa"], cohort_id="pilot")
    waiting = program.register("Quy", MENTEE, ["qa"])
    eventually(
        "engagement to know the three",
        lambda: engagement_consumed(stack, "participant-registered") >= before + 3,
    )
    program.wait_pool()
    pair_up(program, mentor, matched)
    base = ["engagement", "announce", "-o", program.org, "--program", program.pid]

    def recipients(out: str) -> set[str]:
        return {line.strip() for line in out.splitlines() if line.startswith("  ")}

    out = ok(mentoring(stack, *base, "--id", "all", "--message", "Hello all"))
    assert "sent to 3 people" in out and recipients(out) == {mentor, matched, waiting}
    out = ok(mentoring(stack, *base, "--id", "pilot", "--message", "Pilot", "--cohort", "pilot"))
    assert recipients(out) == {mentor, matched}
    out = ok(mentoring(stack, *base, "--id", "open", "--message", "Soon", "--unmatched"))
    assert recipients(out) == {waiting}
    out = ok(mentoring(stack, *base, "--id", "mentors", "--message", "Hi", "--role", "mentors"))
    assert recipients(out) == {mentor}
    out = ok(mentoring(stack, *base, "--id", "one", "--message", "Hi", "-p", matched))
    assert recipients(out) == {matched}
    again = ok(mentoring(stack, *base, "--id", "one", "--message", "Hi", "-p", matched))
    assert "already sent (nothing new)" in again
    refused(
        mentoring(stack, *base, "--id", "x", "--message", "Hi", "-p", matched, "--cohort", "pilot"),
        "INVALID_ARGUMENT: participant_id",
    )
