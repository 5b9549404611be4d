"""Calendar feeds and one-click unsubscribe links: tokens kept only as hashes, what a feed
lists, what a link turns off, and the HTTP pages that serve them (mongomock)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.events import new_event
from services.common.pb.mentoring.v1 import common_pb2, events_pb2
from services.notifications import (
    calendar_feeds,
    links,
    mail_store,
    notices,
    pages,
    preferences,
    unsubscribes,
)
from services.notifications.documents import CalendarFeed, UnsubscribeLink
from tests.unit import memory_db

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ORG = "acme"
SENDER = "Mentoring <no-reply@acme.example>"


@pytest.fixture
def db() -> Iterator[None]:
    memory_db.connect_fresh("notifications", "links")
    yield


def register(pid: str, name: str, time_zone: str = "Europe/Paris") -> None:
    made = events_pb2.ParticipantRegistered(
        participant_id=pid,
        role=common_pb2.ROLE_MENTOR,
        display_name=name,
        email=f"{name.lower()}@acme.example",
        profile=common_pb2.Profile(timezone=time_zone),
    )
    mail_store.save_contacts([event(made)], NOW)


def event(payload: Any, event_id: str | None = None) -> events_pb2.Event:
    return new_event(
        producer="test", organization_id=ORG, program_id="p1", payload=payload, event_id=event_id
    )


def plan(
    session_id: str,
    starts_at: datetime,
    sequence: int,
    change: events_pb2.SessionPlanChange.ValueType,
    mentor: str = "ann",
    mentee: str = "bob",
) -> None:
    at = Timestamp()
    at.FromDatetime(starts_at)
    made = event(
        events_pb2.SessionPlanned(
            session_id=session_id,
            relationship_id="r1",
            mentor_id=mentor,
            mentee_id=mentee,
            scheduled_at=at,
            minutes=45,
            mode=common_pb2.SESSION_MODE_VIRTUAL,
            topics=["goals"],
            change=change,
            sequence=sequence,
        ),
        event_id=f"{session_id}-{sequence}",
    )
    mail_store.enqueue([mail_store.Queued(made, n) for n in notices.notices(made)], NOW)


def feed_for(pid: str) -> str:
    """A new feed's token for the participant."""
    token = links.new_token()
    calendar_feeds.create(ORG, pid, links.token_hash(token), NOW)
    return token


def call(
    app: Any, method: str, path: str, body: bytes = b"", content_type: str = ""
) -> tuple[int, dict[str, str], bytes]:
    """One request to an ASGI page: status, headers, body."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"content-type", content_type.encode())] if content_type else [],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, content = sent
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, content["body"]


# --- tokens (pure) --------------------------------------------------------------------------


def test_tokens_are_random_and_only_their_path_form_is_accepted() -> None:
    token = links.new_token()
    assert token != links.new_token()
    assert len(token) == 43
    assert links.token_hash(token) == links.token_hash(token) != token
    assert len(links.token_hash(token)) == 64
    url = links.feed_url("https://m.example/", token)
    assert url == f"https://m.example/calendar/{token}.ics"
    assert links.feed_token(f"/calendar/{token}.ics") == token
    assert links.unsubscribe_token(f"/unsubscribe/{token}") == token
    for path in (
        f"/calendar/{token}",
        f"/calendar/{token}.ics/x",
        f"/calendar/{token[:-1]}.ics",
        "/calendar/../etc/passwd.ics",
        f"/unsubscribe/{token}.ics",
    ):
        assert links.feed_token(path) is None, path
        assert links.unsubscribe_token(path) is None, path


# --- feeds ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("db")
def test_a_feed_lists_each_session_at_its_latest_plan_and_only_the_hash_is_kept() -> None:
    register("ann", "Ann")
    register("bob", "Bob", time_zone="America/New_York")
    first = NOW + timedelta(days=2)
    plan("s1", first, 0, events_pb2.SESSION_PLAN_CHANGE_SCHEDULED)
    plan("s1", first + timedelta(days=1), 1, events_pb2.SESSION_PLAN_CHANGE_MOVED)
    plan("s2", first + timedelta(days=7), 0, events_pb2.SESSION_PLAN_CHANGE_SCHEDULED)
    plan("s2", first + timedelta(days=7), 1, events_pb2.SESSION_PLAN_CHANGE_CANCELLED)
    # A replayed older change does not win over the latest.
    plan("s1", first, 0, events_pb2.SESSION_PLAN_CHANGE_SCHEDULED)
    # Someone else's session is not in Ann's feed.
    plan("s3", first, 0, events_pb2.SESSION_PLAN_CHANGE_SCHEDULED, mentor="cy", mentee="di")

    token = feed_for("ann")
    stored = CalendarFeed.objects.get(participant_id="ann")
    assert stored.token_hash == links.token_hash(token)
    assert token not in str(stored.to_mongo())

    ics = calendar_feeds.calendar(links.token_hash(token), SENDER, "", NOW)
    assert ics is not None
    calendar = icalendar.Calendar.from_ical(ics)
    assert calendar["METHOD"] == "PUBLISH"
    events = {e["UID"]: e for e in calendar.walk("VEVENT")}
    assert len(events) == 2
    by_start = sorted(events.values(), key=lambda e: e.start)
    moved, cancelled = by_start
    assert (moved.sequence, str(moved["STATUS"])) == (1, "CONFIRMED")
    assert moved.start == first + timedelta(days=1)
    assert moved.start.tzinfo is not None and str(moved.start.tzinfo) == "Europe/Paris"
    assert (cancelled.sequence, str(cancelled["STATUS"])) == (1, "CANCELLED")
    assert str(moved["SUMMARY"]) == "Mentoring session: Ann and Bob"
    assert "ATTENDEE" not in moved
    assert str(moved["ORGANIZER"]) == "mailto:no-reply@acme.example"


@pytest.mark.usefixtures("db")
def test_a_new_feed_replaces_the_old_one_and_revoking_or_erasure_closes_it() -> None:
    register("ann", "Ann")
    old = feed_for("ann")
    new = feed_for("ann")
    assert calendar_feeds.owner(links.token_hash(old)) is None
    assert calendar_feeds.owner(links.token_hash(new)) == (ORG, "ann")
    assert calendar_feeds.calendar(links.token_hash(new), SENDER, "", NOW) is not None
    assert calendar_feeds.revoke(ORG, "ann") is True
    assert calendar_feeds.revoke(ORG, "ann") is False
    assert calendar_feeds.calendar(links.token_hash(new), SENDER, "", NOW) is None

    again = feed_for("ann")
    mail_store.erase_contact(ORG, "ann", NOW)
    # An erased owner's feed reads nothing even before the consumer removes it.
    assert calendar_feeds.calendar(links.token_hash(again), SENDER, "", NOW) is None
    calendar_feeds.forget(ORG, "ann")
    assert CalendarFeed.objects(participant_id="ann").count() == 0


# --- unsubscribe ----------------------------------------------------------------------------


@pytest.mark.usefixtures("db")
def test_following_a_link_turns_its_categories_off_and_keeps_other_preferences() -> None:
    register("ann", "Ann")
    rules = preferences.Rules(
        disabled=frozenset({preferences.key(preferences.MATCHES, preferences.EMAIL)}),
        daily_digest=True,
        quiet_start=60,
        quiet_end=120,
    )
    mail_store.set_preferences(ORG, "ann", rules, NOW)
    token = links.new_token()
    unsubscribes.create(ORG, "ann", ["nudges", "nudges"], links.token_hash(token), NOW)
    assert UnsubscribeLink.objects.get().categories == ["nudges"]
    assert unsubscribes.apply(links.token_hash(links.new_token()), NOW) is None

    done = unsubscribes.apply(links.token_hash(token), NOW)
    assert done == unsubscribes.Target(ORG, "ann", ("nudges",))
    assert unsubscribes.apply(links.token_hash(token), NOW) == done
    after = mail_store.rules_of(mail_store.get_preferences(ORG, "ann"))
    assert after.disabled == {"matches:email", "nudges:email"}
    assert (after.daily_digest, after.quiet_start, after.quiet_end) == (True, 60, 120)

    unsubscribes.forget(ORG, "ann")
    assert unsubscribes.target(links.token_hash(token)) is None


@pytest.mark.usefixtures("db")
def test_a_link_of_someone_never_seen_before_creates_their_preferences() -> None:
    token = links.new_token()
    unsubscribes.create(ORG, "zed", ["announcements"], links.token_hash(token), NOW)
    assert unsubscribes.apply(links.token_hash(token), NOW) is not None
    rules = mail_store.rules_of(mail_store.get_preferences(ORG, "zed"))
    assert not rules.enabled(preferences.ANNOUNCEMENTS, preferences.EMAIL)
    assert rules.enabled(preferences.NUDGES, preferences.EMAIL)


def test_the_one_click_body_is_read_as_a_form_or_multipart() -> None:
    assert pages.one_click(b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded")
    assert pages.one_click(b"List-Unsubscribe=One-Click", "")
    assert not pages.one_click(b"List-Unsubscribe=Maybe", "application/x-www-form-urlencoded")
    assert not pages.one_click(b"", "application/x-www-form-urlencoded")
    multipart = (
        b"--b\r\n"
        b'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        b"One-Click\r\n"
        b"--b--\r\n"
    )
    assert pages.one_click(multipart, "multipart/form-data; boundary=b")
    assert not pages.one_click(
        multipart.replace(b"One-Click", b"No"), "multipart/form-data; boundary=b"
    )


# --- pages ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("db")
def test_the_feed_page_serves_text_calendar_and_404_for_anything_else() -> None:
    register("ann", "Ann")
    plan("s1", NOW + timedelta(days=2), 0, events_pb2.SESSION_PLAN_CHANGE_SCHEDULED)
    token = feed_for("ann")
    app = pages.CalendarPage(SENDER, "")
    status, headers, body = call(app, "GET", f"/calendar/{token}.ics")
    assert status == 200
    assert headers["content-type"] == "text/calendar; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert len(icalendar.Calendar.from_ical(body).walk("VEVENT")) == 1
    assert call(app, "HEAD", f"/calendar/{token}.ics")[::2] == (200, b"")
    assert call(app, "GET", f"/calendar/{links.new_token()}.ics")[0] == 404
    assert call(app, "GET", f"/calendar/{token}")[0] == 404
    assert call(app, "POST", f"/calendar/{token}.ics")[0] == 405
    calendar_feeds.revoke(ORG, "ann")
    assert call(app, "GET", f"/calendar/{token}.ics")[0] == 404


@pytest.mark.usefixtures("db")
def test_the_unsubscribe_page_asks_on_get_and_acts_on_a_one_click_post() -> None:
    register("ann", "Ann")
    token = links.new_token()
    unsubscribes.create(ORG, "ann", ["sessions"], links.token_hash(token), NOW)
    app = pages.UnsubscribePage()
    path = f"/unsubscribe/{token}"

    status, headers, body = call(app, "GET", path)
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert b'name="List-Unsubscribe" value="One-Click"' in body
    assert b"session invitations" in body
    # Asking changes nothing: mail scanners open links.
    assert mail_store.get_preferences(ORG, "ann") is None

    form = "application/x-www-form-urlencoded"
    assert call(app, "POST", path, b"List-Unsubscribe=No", form)[0] == 400
    assert call(app, "POST", path, b"x" * (pages.MAX_BODY + 1), form)[0] == 413
    status, _, body = call(app, "POST", path, b"List-Unsubscribe=One-Click", form)
    assert status == 200 and b"no more e-mails" in body
    rules = mail_store.rules_of(mail_store.get_preferences(ORG, "ann"))
    assert not rules.enabled(preferences.SESSIONS, preferences.EMAIL)

    unknown = f"/unsubscribe/{links.new_token()}"
    assert call(app, "GET", unknown)[0] == 404
    assert call(app, "POST", unknown, b"List-Unsubscribe=One-Click", form)[0] == 404
    assert call(app, "GET", "/unsubscribe/short")[0] == 404
    assert call(app, "PUT", path)[0] == 405
