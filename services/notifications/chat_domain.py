"""Chat channel rules without I/O: ids, masked URLs, which channels a program's posts go to,
what each consumed event counts for in a program's day, and the digest those counts make."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from services.common.errors import InvalidArgument
from services.common.pb.mentoring.v1 import common_pb2, events_pb2
from services.notifications import chat, notices

ANNOUNCEMENTS = "announcements"
DAILY_DIGEST = "daily_digest"
# Ticks (what an event counts for in its program's day). Nudges are "nudge:<reason>".
NUDGE = "nudge:"
RELATIONSHIP_STARTED = "relationship-started"
RELATIONSHIP_ENDED = "relationship-ended"
PROPOSED = "match-proposed"
SESSION_TICKS = {
    events_pb2.SESSION_PLAN_CHANGE_SCHEDULED: "session-scheduled",
    events_pb2.SESSION_PLAN_CHANGE_MOVED: "session-moved",
    events_pb2.SESSION_PLAN_CHANGE_CANCELLED: "session-cancelled",
}
# Digest figures in the order shown, after the nudges.
FIGURES = (
    (PROPOSED, "Proposals made"),
    (RELATIONSHIP_STARTED, "Relationships started"),
    (RELATIONSHIP_ENDED, "Relationships ended"),
    ("session-scheduled", "Sessions planned"),
    ("session-moved", "Sessions moved"),
    ("session-cancelled", "Sessions cancelled"),
)
NUDGE_LABELS = {
    "no-session": "Nudges: no session for a while",
    "proposal-unanswered": "Nudges: proposal unanswered",
    "check-in-overdue": "Nudges: check-in overdue",
    "ending-soon": "Nudges: relationship ending soon",
}
DAY = timedelta(days=1)
# Shown for the four characters at the end of a masked URL; the rest stays secret.
SHOWN = 4


def channel_id(organization_id: str, program_id: str, kind: chat.Kind) -> str:
    """One channel per organisation or program and kind: setting it again replaces it."""
    name = f"chat-channel/{organization_id}/{program_id}/{kind}"
    return f"{kind}-" + uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:16]


def mask(url: str) -> str:
    """The URL without its secret (Slack's path holds a token, a Teams workflow's query a
    signature): scheme, host and port, and the last few characters to tell two apart."""
    parts = urlsplit(url)
    rest = url[len(f"{parts.scheme}://{parts.netloc}") :]
    tail = rest[-SHOWN:] if len(rest) > 2 * SHOWN else ""
    return f"{parts.scheme}://{parts.netloc}/…{tail}"


def purposes(announcements: bool, daily_digest: bool) -> None:
    if not (announcements or daily_digest):
        raise InvalidArgument(ANNOUNCEMENTS, "set announcements, daily_digest or both")


def announcement_post_id(organization_id: str, announcement_id: str, channel: str) -> str:
    """The same for every recipient's event of one announcement: it is posted once."""
    name = f"chat-announcement/{organization_id}/{announcement_id}/{channel}"
    return uuid.uuid5(uuid.NAMESPACE_URL, name).hex


def digest_post_id(organization_id: str, channel: str, program_id: str, until: datetime) -> str:
    name = f"chat-digest/{organization_id}/{channel}/{program_id}/{until.isoformat()}"
    return uuid.uuid5(uuid.NAMESPACE_URL, name).hex


def last_digest_time(now: datetime, hour: int) -> datetime:
    """The latest daily digest time (`hour`:00 UTC) not after now: its digests cover the day
    before it."""
    today = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return today if today <= now else today - DAY


@dataclass(frozen=True, slots=True)
class Route:
    """A channel as routing sees it."""

    channel_id: str
    program_id: str
    announcements: bool
    daily_digest: bool


def route(channels: Iterable[Route], program_id: str, purpose: str) -> list[Route]:
    """The program's channels that take `purpose`, or if it has none, the organisation's."""
    taking = [c for c in channels if getattr(c, purpose)]
    own = [c for c in taking if program_id and c.program_id == program_id]
    return own or [c for c in taking if not c.program_id]


def tick(event: events_pb2.Event) -> str | None:
    """What the event counts for in its program's digest, if anything."""
    kind = event.WhichOneof("payload")
    if kind == "notification_requested":
        template = notices.requested_template(event.notification_requested)
        return None if template == notices.ANNOUNCEMENT else NUDGE + template
    if kind == "session_planned":
        return SESSION_TICKS.get(event.session_planned.change)
    return {
        "relationship_started": RELATIONSHIP_STARTED,
        "relationship_ended": RELATIONSHIP_ENDED,
        "match_proposed": PROPOSED,
    }.get(kind or "")


def proposal_change(event: events_pb2.Event) -> tuple[str, bool] | None:
    """A proposal opened (match id, True) or answered for good, expired or started (False)."""
    kind = event.WhichOneof("payload")
    if kind == "match_proposed":
        return event.match_proposed.match_id, True
    if kind == "match_responded":
        responded = event.match_responded
        if responded.status == common_pb2.MATCH_STATUS_PROPOSED:
            return None
        return responded.match_id, False
    if kind == "match_expired":
        return event.match_expired.match_id, False
    if kind == "relationship_started" and event.relationship_started.match_id:
        return event.relationship_started.match_id, False
    return None


def digest(
    ticks: Iterable[str],
    waiting: int,
    *,
    organisation: str,
    program: str,
    since: datetime,
    until: datetime,
    link: str = "",
) -> chat.Digest | None:
    """The program's digest of its ticks between since and until, with the proposals still
    waiting; None for a day without activity (waiting proposals alone make no digest: they
    would repeat every quiet day)."""
    counts = Counter(ticks)
    if not counts:
        return None
    figures = [
        (NUDGE_LABELS.get(name[len(NUDGE) :], f"Nudges: {name[len(NUDGE) :]}"), str(n))
        for name, n in sorted(counts.items())
        if name.startswith(NUDGE)
    ]
    figures += [(label, str(counts[name])) for name, label in FIGURES if counts[name]]
    figures.append(("Proposals waiting for an answer", str(waiting)))
    window = f"{since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC"
    return chat.Digest(
        organisation=organisation,
        program=program,
        title="Coordinator digest",
        figures=figures,
        lines=[f"Activity from {window}"],
        link=link,
    )


def announcement(
    data: Mapping[str, str], template: str, *, organisation: str, program: str, link: str = ""
) -> chat.Announcement:
    """A coordinator's template name ("kick-off") is its title; the default one says what it
    is."""
    title = "Announcement"
    if template and template != notices.ANNOUNCEMENT:
        title = template.replace("-", " ").replace("_", " ").capitalize()
    return chat.Announcement(
        organisation=organisation,
        program=program,
        title=title,
        message=data.get("message", ""),
        link=link,
    )
