"""A participant's calendar feed and an e-mail's one-click unsubscribe, through the gateway on
the real stack: the URLs the notifications service hands out are fetched as Outlook, Google or
a mail provider would, with no credential but the token in them."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import common_pb2, engagement_pb2
from services.common.pb.mentoring.v1 import notifications_pb2 as pb
from tests.e2e.engine import MENTEE, Program
from tests.e2e.support import eventually
from tests.e2e.test_mail import accept, address, mails, pair, templates

pytestmark = pytest.mark.e2e
E = engagement_pb2


def fetch(url: str, body: bytes | None = None, content_type: str = "") -> tuple[int, str, bytes]:
    """Status, content type and body of a GET (or a POST with `body`)."""
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers["Content-Type"], refused.read()


def at(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def new_feed(clients: Clients, program: Program, participant_id: str) -> str:
    return clients.notifications.CreateCalendarFeed(
        pb.CreateCalendarFeedRequest(organization_id=program.org, participant_id=participant_id)
    ).url


def test_a_feed_serves_the_latest_plan_of_each_session_until_revoked(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    kim, lou, match_id = pair(program, "Kim", "Lou", "audit")
    relationship_id = accept(program, kim, lou, match_id)
    url = new_feed(clients, program, lou)
    assert url.startswith(f"http://{stack.gateway.address}/calendar/") and url.endswith(".ics")

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    sessions = [
        clients.engagement.ScheduleSession(
            E.ScheduleSessionRequest(
                organization_id=program.org,
                relationship_id=relationship_id,
                participant_id=kim,
                scheduled_at=at(start + timedelta(days=days)),
                minutes=30,
                mode=common_pb2.SESSION_MODE_VIRTUAL,
            )
        )
        for days in (0, 7)
    ]
    moved = start + timedelta(days=1, hours=2)
    clients.engagement.RescheduleSession(
        E.RescheduleSessionRequest(
            organization_id=program.org,
            session_id=sessions[0].session_id,
            participant_id=lou,
            scheduled_at=at(moved),
        )
    )
    clients.engagement.CancelSession(
        E.CancelSessionRequest(
            organization_id=program.org,
            session_id=sessions[1].session_id,
            participant_id=kim,
            reason="holiday",
        )
    )

    def settled() -> list[icalendar.Event] | None:
        status, content_type, body = fetch(url)
        assert (status, content_type) == (200, "text/calendar; charset=utf-8"), body
        entries = icalendar.Calendar.from_ical(body).walk("VEVENT")
        latest = len(entries) == 2 and all(e.sequence == 1 for e in entries)
        return sorted(entries, key=lambda e: e.start) if latest else None

    first, second = eventually("the feed to show both sessions' last changes", settled)
    assert (first.start, first.end) == (moved, moved + timedelta(minutes=30))
    assert str(first["STATUS"]) == "CONFIRMED"
    assert first.start == moved and str(second["STATUS"]) == "CANCELLED"
    assert str(first["SUMMARY"]) == "Mentoring session: Kim and Lou"

    # The feed's events are the invitations' events: same UID, so calendars merge them. The
    # mails travel on their own (the sender's queue): wait for them.
    def invited() -> set[str] | None:
        uids = {
            entry.uid
            for mail in mails(stack, address(program, "Lou"))
            for part in mail.walk()
            if part.get_content_type() == "text/calendar"
            for entry in icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
        }
        return uids if {first.uid, second.uid} <= uids else None

    eventually("Lou's invitations for both sessions", invited)

    # A new URL replaces the old; revoking closes the new one.
    renewed = new_feed(clients, program, lou)
    assert renewed != url
    assert fetch(url)[0] == 404
    assert fetch(renewed)[0] == 200
    revoked = clients.notifications.RevokeCalendarFeed(
        pb.RevokeCalendarFeedRequest(organization_id=program.org, participant_id=lou)
    )
    assert revoked.revoked
    assert fetch(renewed)[0] == 404


def test_a_one_click_unsubscribe_turns_the_category_off(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    mo = program.register("Mo", MENTEE, ["tax"])

    def announce(announcement_id: str) -> None:
        clients.engagement.Announce(
            E.AnnounceRequest(
                organization_id=program.org,
                program_id=program.pid,
                announcement_id=announcement_id,
                participant_id=mo,
                message=f"News {announcement_id}",
            )
        )

    # Until the notifications service knows Mo, the announcement waits for his address.
    announce("first")
    (mail,) = eventually(
        "the first announcement", lambda: mails(stack, address(program, "Mo")) or None
    )
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = str(mail["List-Unsubscribe"]).strip("<>")
    assert link.startswith(f"http://{stack.gateway.address}/unsubscribe/")

    status, content_type, page = fetch(link)
    assert (status, content_type) == (200, "text/html; charset=utf-8")
    assert b'value="One-Click"' in page
    form = "application/x-www-form-urlencoded"
    status, _, done = fetch(link, b"List-Unsubscribe=One-Click", form)
    assert status == 200, done
    prefs = clients.notifications.GetNotificationPreferences(
        pb.GetNotificationPreferencesRequest(organization_id=program.org, participant_id=mo)
    )
    off = [c.category for c in prefs.categories if not c.enabled]
    assert off == [pb.NOTIFICATION_CATEGORY_ANNOUNCEMENTS]

    announce("second")

    def second() -> pb.NotificationDelivery | None:
        found = [
            d
            for d in clients.notifications.ListDeliveries(
                pb.ListDeliveriesRequest(organization_id=program.org, participant_id=mo)
            ).deliveries
            if d.template == "announcement"
        ]
        return found[0] if len(found) == 2 else None

    newest = eventually("the second announcement's delivery", second)
    assert newest.status == pb.NOTIFICATION_DELIVERY_STATUS_SUPPRESSED
    assert templates(clients, program, mo).keys() == {"announcement"}
    assert len(mails(stack, address(program, "Mo"))) == 1
