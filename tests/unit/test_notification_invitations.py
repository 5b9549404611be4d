"""Calendar invitations and feeds, parsed back with the icalendar library: times in the
reader's zone with its VTIMEZONE, organiser and attendees, one UID per session, SEQUENCE on a
move, METHOD:CANCEL on a cancellation, METHOD:PUBLISH for a feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from services.notifications import invitations
from services.notifications.invitations import Person, SessionDetails

STAMP = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ORGANIZER = Person('Acme, "Mentoring"', "no-reply@acme.example")
ANA = Person("Ana Ñúñez", "ana@example.org")
BEN = Person("Ben", "ben@example.org")
SESSION = SessionDetails(
    organization_id="acme",
    session_id="s-1",
    starts_at=datetime(2026, 12, 10, 13, 0, tzinfo=UTC),
    minutes=45,
    summary="Mentoring: Ana and Ben",
    description="Topics: careers, networking; more\nSecond line",
    location="Room 4",
    url="https://portal.acme.example/sessions/s-1",
)


def parse(ics: bytes) -> tuple[Calendar, Event]:
    calendar = Calendar.from_ical(ics)
    assert len(calendar.events) == 1
    return calendar, calendar.events[0]


def invite(
    sequence: int = 0, session: SessionDetails = SESSION, zone: str = "Europe/Paris"
) -> invitations.Invitation:
    return invitations.request(
        session,
        organizer=ORGANIZER,
        attendees=[ANA, BEN],
        time_zone=zone,
        sequence=sequence,
        stamp=STAMP,
    )


def test_a_scheduled_session_is_a_request_in_the_readers_time_zone() -> None:
    invitation = invite()
    calendar, event = parse(invitation.ics)
    assert invitation.method is invitations.Method.REQUEST
    assert str(calendar["METHOD"]) == "REQUEST"
    assert event.start == datetime(2026, 12, 10, 14, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert event.end - event.start == timedelta(minutes=45)
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    assert [tz.tz_name for tz in calendar.timezones] == ["Europe/Paris"]
    assert event.sequence == 0
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["SUMMARY"]) == SESSION.summary
    assert str(event["DESCRIPTION"]) == SESSION.description
    assert str(event["LOCATION"]) == "Room 4"
    assert str(event["URL"]) == SESSION.url
    assert event.stamp == STAMP


def test_the_invitation_names_the_organiser_and_both_members_as_attendees() -> None:
    _, event = parse(invite().ics)
    organizer = event["ORGANIZER"]
    assert str(organizer) == "mailto:no-reply@acme.example"
    assert organizer.params["CN"] == 'Acme, "Mentoring"'
    attendees = {str(a): a.params for a in event.attendees}
    assert set(attendees) == {"mailto:ana@example.org", "mailto:ben@example.org"}
    ana = attendees["mailto:ana@example.org"]
    assert ana["CN"] == "Ana Ñúñez"
    assert ana["PARTSTAT"] == "NEEDS-ACTION"
    assert ana["RSVP"] == "TRUE"
    assert ana["ROLE"] == "REQ-PARTICIPANT"


def test_the_same_session_keeps_its_uid_and_a_move_raises_the_sequence() -> None:
    first = invite()
    moved_session = SessionDetails(
        SESSION.organization_id,
        SESSION.session_id,
        SESSION.starts_at + timedelta(days=1, hours=2),
        60,
        SESSION.summary,
    )
    moved = invite(sequence=1, session=moved_session)
    _, before = parse(first.ics)
    _, after = parse(moved.ics)
    assert before.uid == after.uid == first.uid == moved.uid
    assert (before.sequence, after.sequence) == (0, 1)
    assert after.start == datetime(2026, 12, 11, 16, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert after.end - after.start == timedelta(hours=1)
    other = invitations.session_uid("acme", "s-2")
    other_org = invitations.session_uid("other", "s-1")
    assert len({first.uid, other, other_org}) == 3


def test_a_cancellation_is_method_cancel_with_status_cancelled() -> None:
    cancellation = invitations.cancel(
        SESSION,
        organizer=ORGANIZER,
        attendees=[ANA, BEN],
        time_zone="Europe/Paris",
        sequence=2,
        stamp=STAMP,
    )
    calendar, event = parse(cancellation.ics)
    assert cancellation.method is invitations.Method.CANCEL
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(event["STATUS"]) == "CANCELLED"
    assert event.sequence == 2
    assert event.uid == invite().uid
    assert {str(a) for a in event.attendees} == {"mailto:ana@example.org", "mailto:ben@example.org"}
    assert all("RSVP" not in a.params for a in event.attendees)


def test_an_unknown_or_empty_time_zone_writes_utc_without_a_vtimezone() -> None:
    for zone in ("", "Mars/Olympus_Mons"):
        calendar, event = parse(invite(zone=zone).ics)
        assert event.start == SESSION.starts_at
        assert event.start.utcoffset() == timedelta(0)
        assert calendar.timezones == []


def test_each_reader_gets_their_own_zone_for_the_same_moment() -> None:
    _, in_new_york = parse(invite(zone="America/New_York").ics)
    _, in_paris = parse(invite(zone="Europe/Paris").ics)
    assert in_new_york.start == in_paris.start == SESSION.starts_at
    assert in_new_york.start.hour == 8 and in_paris.start.hour == 14


def test_a_feed_publishes_every_session_and_marks_cancelled_ones() -> None:
    later = SessionDetails("acme", "s-2", SESSION.starts_at + timedelta(days=14), 30, "Second")
    ics = invitations.feed(
        [
            invitations.FeedEntry(later, sequence=0, cancelled=True),
            invitations.FeedEntry(SESSION, sequence=3),
        ],
        feed_id="p-ana",
        name="Ana's mentoring",
        organizer=ORGANIZER,
        time_zone="Europe/Paris",
        stamp=STAMP,
    )
    calendar = Calendar.from_ical(ics)
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert calendar.calendar_name == "Ana's mentoring"
    assert calendar["REFRESH-INTERVAL"].params["VALUE"] == "DURATION"
    events = calendar.events
    assert [e.uid for e in events] == [
        invitations.session_uid("acme", "s-1"),
        invitations.session_uid("acme", "s-2"),
    ]
    assert [str(e["STATUS"]) for e in events] == ["CONFIRMED", "CANCELLED"]
    assert events[0].sequence == 3
    assert events[0].start.tzinfo == ZoneInfo("Europe/Paris")
    # A feed is read, not answered: no attendees to RSVP.
    assert all(not e.attendees for e in events)
    again = invitations.feed(
        [],
        feed_id="p-ana",
        name="Ana's mentoring",
        organizer=ORGANIZER,
        time_zone="",
        stamp=STAMP,
    )
    assert Calendar.from_ical(again).uid == calendar.uid
    assert Calendar.from_ical(again).events == []
