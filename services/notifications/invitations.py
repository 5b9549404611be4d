"""Calendar invitations and feeds (RFC 5545, with iTIP methods from RFC 5546), built with the
icalendar library. Pure: values in, bytes out; the caller supplies the clock (`stamp`).

A session keeps one UID for its whole life, so a calendar replaces its entry on a move (same UID,
higher SEQUENCE) and removes it on a cancellation (METHOD:CANCEL). The caller keeps the sequence:
0 when scheduled, one more for each move, and one more again for the cancellation.

Times are written in the reader's time zone, with its VTIMEZONE, so that a calendar without the
zone database still shows the right hour; UTC when the zone is unknown.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, vCalAddress, vDuration

PRODID = "-//Open e-mentoring platform//notifications//EN"
# The VTIMEZONE covers this much either side of what the calendar holds.
_ZONE_MARGIN = timedelta(days=400)
# How often a subscribed calendar client should fetch a feed again.
FEED_REFRESH = timedelta(hours=1)


class Method(StrEnum):
    REQUEST = "REQUEST"
    CANCEL = "CANCEL"
    PUBLISH = "PUBLISH"


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class SessionDetails:
    organization_id: str
    session_id: str
    # Timezone-aware.
    starts_at: datetime
    minutes: int
    summary: str
    description: str = ""
    location: str = ""
    url: str = ""

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.minutes)


@dataclass(frozen=True, slots=True)
class Invitation:
    """An iTIP message to attach to an e-mail as text/calendar; method=<method>."""

    method: Method
    ics: bytes
    uid: str
    sequence: int


@dataclass(frozen=True, slots=True)
class FeedEntry:
    session: SessionDetails
    sequence: int
    cancelled: bool = False


def session_uid(organization_id: str, session_id: str) -> str:
    """The same for a session in every invitation and feed; reveals neither id."""
    name = f"mentoring-session/{organization_id}/{session_id}"
    return f"{uuid.uuid5(uuid.NAMESPACE_URL, name)}@mentoring"


def zone(name: str) -> tzinfo:
    """The IANA zone by name; UTC for an empty or unknown one (a profile may hold anything)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def request(
    session: SessionDetails,
    *,
    organizer: Person,
    attendees: Sequence[Person],
    time_zone: str,
    sequence: int,
    stamp: datetime,
) -> Invitation:
    """The invitation to a scheduled session (sequence 0) or its update after a move."""
    event = _event(session, organizer, time_zone, sequence, stamp)
    event.attendees = [_attendee(p, invited=True) for p in attendees]
    event.status = "CONFIRMED"
    return _invitation(Method.REQUEST, event, session)


def cancel(
    session: SessionDetails,
    *,
    organizer: Person,
    attendees: Sequence[Person],
    time_zone: str,
    sequence: int,
    stamp: datetime,
) -> Invitation:
    """Withdraws the session from the attendees' calendars; `sequence` must exceed that of the
    last request they got."""
    event = _event(session, organizer, time_zone, sequence, stamp)
    event.attendees = [_attendee(p, invited=False) for p in attendees]
    event.status = "CANCELLED"
    return _invitation(Method.CANCEL, event, session)


def feed(
    entries: Sequence[FeedEntry],
    *,
    feed_id: str,
    name: str,
    organizer: Person,
    time_zone: str,
    stamp: datetime,
) -> bytes:
    """A participant's calendar to subscribe to (METHOD:PUBLISH): every session, cancelled
    ones marked so, since a client may keep an event it no longer sees. `feed_id` (the owner's
    participant id, say) keeps the calendar's UID the same from one fetch to the next."""
    calendar = Calendar.new(
        method=Method.PUBLISH.value,
        prodid=PRODID,
        name=name,
        refresh_interval=FEED_REFRESH,
        uid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"mentoring-feed/{feed_id}")),
    )
    # RFC 7986 requires the VALUE parameter; Outlook reads the older X-PUBLISHED-TTL instead
    # (Calendar.new writes X-WR-CALNAME beside NAME itself).
    calendar["REFRESH-INTERVAL"].params["VALUE"] = "DURATION"
    calendar.add("X-PUBLISHED-TTL", vDuration(FEED_REFRESH))
    if time_zone and zone(time_zone) is not UTC:
        calendar.add("X-WR-TIMEZONE", time_zone)
    for entry in sorted(entries, key=lambda e: (e.session.starts_at, e.session.session_id)):
        # PUBLISH carries no attendees (RFC 5546 3.2.1): a feed is read, not answered.
        event = _event(entry.session, organizer, time_zone, entry.sequence, stamp)
        event.status = "CANCELLED" if entry.cancelled else "CONFIRMED"
        calendar.add_component(event)
    _add_zones(calendar, [e.session for e in entries])
    return bytes(calendar.to_ical())


def _event(
    session: SessionDetails, organizer: Person, time_zone: str, sequence: int, stamp: datetime
) -> Event:
    local = zone(time_zone)
    event = Event.new(
        uid=session_uid(session.organization_id, session.session_id),
        start=session.starts_at.astimezone(local),
        end=session.ends_at.astimezone(local),
        stamp=stamp.astimezone(UTC),
        sequence=sequence,
        summary=session.summary,
        description=session.description or None,
        location=session.location or None,
        url=session.url or None,
        organizer=_address(organizer),
    )
    return event


def _invitation(method: Method, event: Event, session: SessionDetails) -> Invitation:
    calendar = Calendar.new(
        method=method.value,
        prodid=PRODID,
        uid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{event.uid}/{method}/{event.sequence}")),
        subcomponents=[event],
    )
    _add_zones(calendar, [session])
    return Invitation(method, calendar.to_ical(), str(event.uid), int(event.sequence))


def _add_zones(calendar: Calendar, sessions: Sequence[SessionDetails]) -> None:
    if not sessions:
        return
    first = min(s.starts_at for s in sessions).date()
    last = max(s.ends_at for s in sessions).date()
    calendar.add_missing_timezones(
        first_date=max(first - _ZONE_MARGIN, date(1970, 1, 1)), last_date=last + _ZONE_MARGIN
    )


def _address(person: Person) -> vCalAddress:
    address = vCalAddress(f"mailto:{person.email}")
    if person.name:
        address.params["CN"] = person.name
    return address


def _attendee(person: Person, *, invited: bool) -> vCalAddress:
    address = _address(person)
    address.params["CUTYPE"] = "INDIVIDUAL"
    address.params["ROLE"] = "REQ-PARTICIPANT"
    if invited:
        address.params["PARTSTAT"] = "NEEDS-ACTION"
        address.params["RSVP"] = "TRUE"
    return address
