"""`mentoring notifications list/show`: the e-mails the local mail catcher kept (`mentoring up`
runs it; see mentoring/mailcatcher.py), as the participants would get them.

Works on the catcher's directory only: no service needs to be running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.table import Table

from mentoring.mailcatcher import messages
from mentoring.output import console

# Where `mentoring up` has the catcher keep its mail, beside .run/logs and .run/data.
DEFAULT_MAIL_DIR = Path(".run/mail")
MAIL_DIR_ENV = "MENTORING_MAIL_DIR"
# Shown for a message, in this order, when present.
HEADERS = (
    "Date",
    "From",
    "To",
    "Delivered-To",
    "Subject",
    "Message-ID",
    "Content-Language",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)

notifications_app = typer.Typer(
    help="The e-mails the local mail catcher kept (mentoring up runs it).",
    no_args_is_help=True,
)

MailDir = Annotated[
    Path,
    typer.Option(
        "--dir",
        envvar=MAIL_DIR_ENV,
        help="The mail catcher's directory.",
        file_okay=False,
    ),
]


@dataclass(frozen=True, slots=True)
class Summary:
    path: Path
    sent_at: datetime | None
    to: str
    subject: str
    attachments: list[str]


def read(path: Path) -> EmailMessage:
    with path.open("rb") as source:
        return BytesParser(policy=policy.default).parse(source)


def attachments(message: EmailMessage) -> list[str]:
    """Attached files by name, and calendar parts with their iTIP method."""
    found = []
    for part in message.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        if part.get_content_type() == "text/calendar" and not filename:
            found.append(f"calendar ({part.get_param('method') or 'no method'})")
        elif filename:
            found.append(str(filename))
    return found


def summary(path: Path) -> Summary:
    message = read(path)
    try:
        sent_at: datetime | None = parsedate_to_datetime(str(message["Date"]))
    except (TypeError, ValueError):
        sent_at = None
    return Summary(
        path=path,
        sent_at=sent_at,
        to=str(message.get("To", "")),
        subject=str(message.get("Subject", "")),
        attachments=attachments(message),
    )


def calendar_lines(message: EmailMessage) -> list[str]:
    """What the first calendar part says, one fact a line; empty when there is none."""
    from icalendar import Calendar  # only `show` needs it

    part = next((p for p in message.walk() if p.get_content_type() == "text/calendar"), None)
    if part is None:
        return []
    calendar = Calendar.from_ical(cast(Any, part).get_content())
    lines = [f"method: {calendar.get('METHOD', '')}"]
    for event in calendar.events:
        lines += [
            f"summary: {event.get('SUMMARY', '')}",
            f"status: {event.get('STATUS', '')}",
            f"starts: {_moment(event.start)}",
            f"ends: {_moment(event.end)}",
            f"uid: {event.uid}  sequence: {event.sequence}",
            f"organizer: {_who(event.get('ORGANIZER'))}",
        ]
        lines += [f"attendee: {_who(a)} ({a.params.get('PARTSTAT', '-')})" for a in event.attendees]
    return lines


def _moment(value: Any) -> str:
    zone = getattr(getattr(value, "tzinfo", None), "key", None) or getattr(value, "tzinfo", "")
    return f"{value:%Y-%m-%d %H:%M} {zone}".strip()


def _who(address: Any) -> str:
    if address is None:
        return ""
    email = str(address).removeprefix("mailto:").removeprefix("MAILTO:")
    name = address.params.get("CN", "")
    return f"{name} <{email}>" if name else email


def resolve(directory: Path, which: str) -> Path:
    """A message by its number in `list` (1 is the oldest) or by file name or path."""
    if which.isdigit():
        found = messages(directory)
        number = int(which)
        if not 1 <= number <= len(found):
            raise typer.BadParameter(
                f"there are {len(found)} messages in {directory}; give 1 to {len(found)}"
                if found
                else f"there are no messages in {directory}"
            )
        return found[number - 1]
    for candidate in (Path(which), directory / which):
        if candidate.is_file():
            return candidate
    raise typer.BadParameter(f"no message {which!r} (a number from `list`, or an .eml file)")


@notifications_app.command("list")
def list_messages(
    directory: MailDir = DEFAULT_MAIL_DIR,
    last: Annotated[int, typer.Option(min=0, help="Only the last N messages; 0: all.")] = 0,
) -> None:
    """Every message the catcher kept, oldest first."""
    found = messages(directory)
    if not found:
        console.print(f"No messages in {directory}.")
        return
    first = max(len(found) - last, 0) if last else 0
    table = Table(title=f"{len(found)} messages in {directory}")
    for column in ("#", "time", "to", "subject", "attachments"):
        table.add_column(column, overflow="fold")
    for number, path in enumerate(found[first:], start=first + 1):
        item = summary(path)
        when = f"{item.sent_at:%Y-%m-%d %H:%M:%S}" if item.sent_at else ""
        table.add_row(str(number), when, item.to, item.subject, ", ".join(item.attachments))
    console.print(table)


@notifications_app.command()
def show(
    which: Annotated[str, typer.Argument(help="Its number in `list`, or an .eml file.")],
    directory: MailDir = DEFAULT_MAIL_DIR,
) -> None:
    """One message: its headers, its text and the calendar invitation it carries."""
    path = resolve(directory, which)
    message = read(path)
    console.print(f"[bold]{path}[/]")
    for name in HEADERS:
        for value in message.get_all(name, []):
            console.print(f"{name}: {value}", markup=False, highlight=False)
    attached = attachments(message)
    if attached:
        console.print(f"Attachments: {', '.join(attached)}", markup=False, highlight=False)
    body = message.get_body(("plain",))
    console.print()
    if body is not None:
        console.print(cast(Any, body).get_content().rstrip(), markup=False, highlight=False)
    else:
        console.print("(no text part)")
    lines = calendar_lines(message)
    if lines:
        console.print("\n[bold]Calendar[/]")
        for line in lines:
            console.print("  " + line, markup=False, highlight=False)


if __name__ == "__main__":
    notifications_app()
