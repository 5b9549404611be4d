"""Renders one notification into an e-mail: a text and an HTML part from the Jinja2 templates in
templates/mail/<language>/, in the organisation's name and colour, with RFC 8058 one-click
unsubscribe headers and, for a session, the calendar invitation. Pure: no I/O but reading the
templates; the caller gives the clock.

A template is looked up in the recipient's language, then its base language (fr-CA, fr), then
English. HTML templates are autoescaped, text ones are not (they are not HTML).

The Message-ID comes from the notification's key, so a retried send carries the same one and a
receiver (or a person) can tell it is the same message.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2

from services.notifications.invitations import Invitation, zone

TEMPLATES_DIR = Path(__file__).parent / "templates" / "mail"
FALLBACK_LANGUAGE = "en"
DEFAULT_COLOUR = "#2f5d8a"
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{1,8})*")

# The templates there are, each with the data it cannot do without.
TEMPLATES: Mapping[str, tuple[str, ...]] = {
    # Nudges from engagement (NotificationRequested.reason).
    "no-session": ("other_name", "days"),
    "proposal-unanswered": ("other_name", "days"),
    "check-in-overdue": ("survey_point",),
    "ending-soon": ("other_name", "expected_end_at"),
    "announcement": ("message",),
    # Events that deserve a message of their own.
    "match-proposed": ("other_name",),
    "relationship-started": ("other_name",),
    "session-scheduled": ("other_name", "starts_at", "minutes"),
    "session-moved": ("other_name", "starts_at", "minutes", "previous_starts_at"),
    "session-cancelled": ("other_name", "starts_at"),
    # Several of the above in one message: data["items"], a sequence of DigestItem.
    "daily-digest": ("items",),
}


# Data any template may use, empty when not given: action_url is where the button leads, title
# an announcement's subject, reasons why a match was proposed.
OPTIONAL = ("program_name", "action_url", "topics", "reason", "reasons", "title", "due_at")


class UnknownTemplate(ValueError):
    pass


class MissingData(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Brand:
    """The organisation as its mails show it."""

    name: str
    colour: str = DEFAULT_COLOUR
    # The portal, for links; empty: none.
    portal_url: str = ""


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    email: str
    language: str = FALLBACK_LANGUAGE
    # IANA name; times in the message are shown in it.
    time_zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One line of a daily digest: what would have been a message of its own."""

    subject: str
    text: str = ""
    link: str = ""


@dataclass(frozen=True, slots=True)
class Notification:
    # Unique per message and recipient (the notification id; event id and recipient for an
    # event that mails several people): the Message-ID is made from it.
    key: str
    template: str
    recipient: Recipient
    brand: Brand
    data: Mapping[str, Any] = field(default_factory=dict)
    # https URL of the one-click unsubscribe, token included; empty: no unsubscribe headers.
    unsubscribe_url: str = ""
    invitation: Invitation | None = None


def message_id(key: str, sender: str) -> str:
    """`<hash of key@domain>`: the same for the same key, whatever the key holds."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"<{uuid.uuid5(uuid.NAMESPACE_URL, 'mentoring-mail/' + key).hex}@{domain}>"


def languages(tag: str) -> list[str]:
    """Where to look for a template, most specific first: fr-ca, fr, en."""
    tag = tag.strip().lower().replace("_", "-")
    found = []
    if _LANGUAGE.fullmatch(tag):
        parts = tag.split("-")
        found = ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]
    return [*dict.fromkeys([*found, FALLBACK_LANGUAGE])]


def colour(value: str) -> str:
    """The brand colour if it is #rrggbb, else the default: it goes into style attributes,
    where escaping does not make arbitrary text safe."""
    return value if _COLOUR.fullmatch(value) else DEFAULT_COLOUR


def text_on(background: str) -> str:
    """Black or white, whichever reads better on `background` (#rrggbb)."""
    red, green, blue = (int(background[i : i + 2], 16) / 255 for i in (1, 3, 5))
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "#000000" if luminance > 0.55 else "#ffffff"


class Renderer:
    """The template environment; make one and reuse it (templates are compiled once)."""

    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self._directory = directory

    @cached_property
    def environment(self) -> jinja2.Environment:
        environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self._directory),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        environment.filters["when"] = _when
        environment.filters["day"] = _day
        return environment

    def template(self, name: str, language: str, kind: str) -> jinja2.Template:
        """`kind` is "txt" or "html"; the first language that has the template wins."""
        if name not in TEMPLATES:
            raise UnknownTemplate(f"no e-mail template {name!r}; known: {', '.join(TEMPLATES)}")
        candidates = [f"{lang}/{name}.{kind}" for lang in languages(language)]
        return self.environment.select_template(candidates)

    def subject(self, notification: Notification) -> str:
        template = self.template(notification.template, notification.recipient.language, "txt")
        context = template.new_context(_context(notification))
        # One line: a header cannot hold a line break, and a name may.
        return " ".join("".join(template.blocks["subject"](context)).split())

    def render(self, notification: Notification, *, sender: str, now: datetime) -> EmailMessage:
        """The e-mail from `sender` (SMTP_FROM: "Name <address>" or an address; the
        organisation's name is shown as the name) to the recipient, dated `now`."""
        missing = [
            k for k in TEMPLATES.get(notification.template, ()) if k not in notification.data
        ]
        if missing:
            raise MissingData(f"template {notification.template!r} needs data {', '.join(missing)}")
        language = notification.recipient.language
        context = _context(notification)
        text_template = self.template(notification.template, language, "txt")
        text = text_template.render(context)
        html = self.template(notification.template, language, "html").render(context)

        message = EmailMessage()
        message["Subject"] = self.subject(notification)
        message["From"] = Address(notification.brand.name, addr_spec=parseaddr(sender)[1])
        message["To"] = Address(notification.recipient.name, addr_spec=notification.recipient.email)
        message["Date"] = format_datetime(now)
        message["Message-ID"] = message_id(notification.key, sender)
        # Automatic mail (RFC 3834): no vacation replies or auto-forward loops.
        message["Auto-Submitted"] = "auto-generated"
        message["X-Auto-Response-Suppress"] = "All"
        if notification.unsubscribe_url:
            message["List-Unsubscribe"] = f"<{_header_url(notification.unsubscribe_url)}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        if notification.invitation is not None:
            _attach(message, notification.invitation)
        # After the parts: set_content and add_attachment move Content-* headers down to them.
        # The language the text is really in (its template's directory).
        message["Content-Language"] = str(text_template.name).partition("/")[0]
        return message


def _context(notification: Notification) -> dict[str, Any]:
    brand = notification.brand
    background = colour(brand.colour)
    # The template's own names last, so that data cannot replace them.
    return {
        **dict.fromkeys(OPTIONAL, ""),
        **notification.data,
        "recipient_name": notification.recipient.name,
        "org_name": brand.name,
        "portal_url": brand.portal_url,
        "brand_colour": background,
        "brand_text_colour": text_on(background),
        "unsubscribe_url": notification.unsubscribe_url,
        "time_zone": notification.recipient.time_zone,
    }


def _header_url(url: str) -> str:
    if any(c.isspace() or c in "<>" for c in url):
        raise ValueError("unsubscribe_url must not contain white space or angle brackets")
    return url


def _attach(message: EmailMessage, invitation: Invitation) -> None:
    """As calendar programs expect (RFC 6047): a text/calendar alternative with the method,
    which Outlook and Gmail show as an invitation, and the same as an .ics attachment for
    the others."""
    text = invitation.ics.decode()
    message.add_alternative(text, subtype="calendar", params={"method": invitation.method.value})
    message.add_attachment(
        invitation.ics,
        maintype="application",
        subtype="ics",
        filename="invite.ics",
    )


def _parse_time(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


@jinja2.pass_context
def _when(context: jinja2.runtime.Context, value: datetime | str) -> str:
    """A moment as the recipient reads it: 2026-12-10 08:00 (America/New_York). Without
    locale data the format is the same in every language, and unambiguous in each."""
    name = str(context.get("time_zone") or "")
    local_zone = zone(name)
    label = name if local_zone is not UTC else "UTC"
    return f"{_parse_time(value).astimezone(local_zone):%Y-%m-%d %H:%M} ({label})"


@jinja2.pass_context
def _day(context: jinja2.runtime.Context, value: datetime | str) -> str:
    local_zone = zone(str(context.get("time_zone") or ""))
    return f"{_parse_time(value).astimezone(local_zone):%Y-%m-%d}"
