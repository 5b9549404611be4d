"""`mentoring notifications list/show` on what the mail catcher kept: rendered mails with an
invitation sent over real SMTP, listed in order and shown with their calendar summary."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mentoring.cli import app
from mentoring.mailcatcher import Catcher
from mentoring.output import console
from services.common.config import SmtpSettings
from services.notifications import invitations, mail, smtp

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BRAND = mail.Brand("Acme", "#2f5d8a")
ANA = mail.Recipient("Ana [bold]Ñ[/bold]", "ana@example.org", "en", "Europe/Paris")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(console, "width", 250)
    yield


@pytest.fixture
async def mailbox(tmp_path: Path) -> Path:
    session = invitations.SessionDetails(
        "acme", "s-1", datetime(2026, 12, 10, 13, tzinfo=UTC), 45, "Mentoring: Ana and Ben"
    )
    invite = invitations.request(
        session,
        organizer=invitations.Person("Acme", "no-reply@acme.example"),
        attendees=[invitations.Person("Ana", ANA.email), invitations.Person("Ben", "b@x.org")],
        time_zone=ANA.time_zone,
        sequence=0,
        stamp=NOW,
    )
    renderer = mail.Renderer()
    notes = [
        mail.Notification(
            "n-1", "announcement", ANA, BRAND, {"message": "Welcome!", "title": "Hi"}
        ),
        mail.Notification(
            "n-2",
            "session-scheduled",
            ANA,
            BRAND,
            {"other_name": "Ben", "starts_at": session.starts_at.isoformat(), "minutes": "45"},
            "https://portal.acme.example/unsubscribe?token=t",
            invite,
        ),
    ]
    directory = tmp_path / "mail"
    async with Catcher(directory, port=0) as catcher:
        for note in notes:
            message = renderer.render(note, sender="no-reply@acme.example", now=NOW)
            outcome = await smtp.send(message, SmtpSettings(port=catcher.port))
            assert outcome.delivered, outcome
    return directory


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["notifications", *args], catch_exceptions=False)


def test_list_shows_every_message_in_order(mailbox: Path) -> None:
    result = run("list", "--dir", str(mailbox))
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "ana@example.org" in line]
    assert len(rows) == 2
    assert "Hi" in rows[0] and "2026-12-01 09:00:00" in rows[0]
    assert "Mentoring session with Ben: 2026-12-10 14:00 (Europe/Paris)" in rows[1]
    assert "calendar (REQUEST)" in rows[1] and "invite.ics" in rows[1]
    last = run("list", "--dir", str(mailbox), "--last", "1").output
    assert "Mentoring session with Ben" in last and "│ Hi" not in last


def test_show_prints_headers_text_and_the_calendar(mailbox: Path) -> None:
    result = run("show", "2", "--dir", str(mailbox))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in out
    assert "Delivered-To: ana@example.org" in out
    # Rich markup in a name is shown as written, not interpreted.
    assert "Hello Ana [bold]Ñ[/bold]," in out
    assert "method: REQUEST" in out
    assert "starts: 2026-12-10 14:00 Europe/Paris" in out
    assert "attendee: Ben <b@x.org> (NEEDS-ACTION)" in out
    assert "sequence: 0" in out


def test_show_takes_a_file_name_too(mailbox: Path) -> None:
    name = sorted(p.name for p in mailbox.glob("*.eml"))[0]
    result = run("show", name, "--dir", str(mailbox))
    assert result.exit_code == 0, result.output
    assert "Welcome!" in result.output
    assert "Calendar" not in result.output


def test_a_wrong_number_says_how_many_there_are(mailbox: Path) -> None:
    result = CliRunner().invoke(app, ["notifications", "show", "3", "--dir", str(mailbox)])
    assert result.exit_code == 2
    assert "there are 2 messages" in result.output


def test_an_empty_directory_says_so(tmp_path: Path) -> None:
    result = run("list", "--dir", str(tmp_path / "none"))
    assert result.exit_code == 0
    assert "No messages in" in result.output
