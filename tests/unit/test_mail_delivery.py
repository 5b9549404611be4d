"""E-mail to people in the notifications service: contacts, preference decisions, queueing
once per recipient and channel, erasure, digests and composition (mongomock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from typing import Any

import icalendar
import pytest
from google.protobuf.message import Message as Payload
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.config import MailSettings
from services.common.errors import InvalidArgument
from services.common.events import new_event
from services.common.pb.mentoring.v1 import common_pb2, events_pb2
from services.common.pb.mentoring.v1 import notifications_pb2 as pb
from services.notifications import compose, convert, mail_store, notices, outcomes, preferences
from services.notifications.documents import Contact, Message
from services.notifications.mail import Renderer
from tests.unit import memory_db

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ORG = "acme"
SETTINGS = MailSettings(max_attempts=2, retry_base_seconds=10.0, retry_max_seconds=60.0)


@pytest.fixture
def db() -> Iterator[None]:
    memory_db.connect_fresh("notifications", "mail")
    yield


def event(payload: Payload, event_id: str = "", org: str = ORG) -> events_pb2.Event:
    return new_event(
        producer="test",
        organization_id=org,
        program_id="p1",
        payload=payload,
        event_id=event_id or None,
    )


def register(
    pid: str,
    name: str,
    role: common_pb2.Role.ValueType = common_pb2.ROLE_MENTOR,
    **profile: Any,
) -> None:
    mail_store.save_contacts(
        [
            event(
                events_pb2.ParticipantRegistered(
                    participant_id=pid,
                    role=role,
                    display_name=name,
                    email=f"{name.lower()}@acme.example",
                    profile=common_pb2.Profile(**profile),
                )
            )
        ],
        NOW,
    )


def queue(made: events_pb2.Event) -> list[str]:
    return mail_store.enqueue(
        [mail_store.Queued(made, n, 1, 7, b"k") for n in notices.notices(made)], NOW
    )


def nudge(recipient: str, other: str, event_id: str = "n-1") -> events_pb2.Event:
    return event(
        events_pb2.NotificationRequested(
            notification_id=event_id,
            recipient_id=recipient,
            template="no-session",
            reason="no-session",
            data={"days": "21", "other_participant_id": other},
        ),
        event_id=event_id,
    )


# --- which events make which messages -------------------------------------------------------


def test_a_coordinators_unknown_template_is_an_announcement_and_nudges_keep_theirs() -> None:
    ask = events_pb2.NotificationRequested
    assert notices.requested_template(ask(template="reminder", reason="announcement")) == (
        "announcement"
    )
    assert notices.requested_template(ask(template="no-session", reason="announcement")) == (
        "announcement"
    )
    assert notices.requested_template(ask(template="ending-soon", reason="ending-soon")) == (
        "ending-soon"
    )
    assert notices.requested_template(ask(template="", reason="check-in-overdue")) == (
        "check-in-overdue"
    )
    assert notices.requested_template(ask(template="odd", reason="odd")) == "announcement"


def test_a_proposal_a_start_and_a_session_write_to_both_members() -> None:
    proposal = notices.notices(
        event(events_pb2.MatchProposed(match_id="m1", mentor_id="a", mentee_id="b"))
    )
    assert [(n.participant_id, n.template, n.data["other_participant_id"]) for n in proposal] == [
        ("a", "match-proposed", "b"),
        ("b", "match-proposed", "a"),
    ]
    at = Timestamp()
    at.FromDatetime(NOW)
    moved = notices.notices(
        event(
            events_pb2.SessionPlanned(
                session_id="s1",
                mentor_id="a",
                mentee_id="b",
                scheduled_at=at,
                minutes=45,
                change=events_pb2.SESSION_PLAN_CHANGE_MOVED,
                sequence=1,
            )
        )
    )
    assert {n.template for n in moved} == {"session-moved"}
    assert {n.category for n in moved} == {preferences.SESSIONS}
    assert moved[0].data["starts_at"] == NOW.isoformat() and moved[0].data["sequence"] == "1"


# --- preference decisions (pure) ------------------------------------------------------------


def test_a_category_turned_off_is_suppressed_on_that_channel_only() -> None:
    rules = preferences.Rules(disabled=frozenset({preferences.key("nudges", "email")}))
    assert (
        preferences.decide(rules, "nudges", "email", NOW, "UTC").kind is preferences.Kind.SUPPRESS
    )
    assert preferences.decide(rules, "matches", "email", NOW, "UTC") == preferences.Decision(
        preferences.Kind.SEND, NOW
    )


def test_quiet_hours_defer_to_their_end_in_the_participants_time_zone() -> None:
    # 22:00-07:00 in New York; 09:00 UTC is 04:00 there (EST): deferred to 07:00 EST = 12:00 UTC.
    rules = preferences.Rules(quiet_start=22 * 60, quiet_end=7 * 60)
    decision = preferences.decide(rules, "nudges", "email", NOW, "America/New_York")
    assert decision == preferences.Decision(preferences.Kind.SEND, NOW.replace(hour=12))
    # The same window in UTC: 09:00 is outside it.
    assert preferences.decide(rules, "nudges", "email", NOW, "UTC").at == NOW
    # The rules' own time zone wins over the contact's; before midnight waits for the morning.
    evening = preferences.Rules(quiet_start=20 * 60, quiet_end=8 * 60, time_zone="Asia/Tokyo")
    # 09:00 UTC is 18:00 in Tokyo: not quiet. 12:00 UTC is 21:00: quiet until 08:00 next day.
    assert preferences.decide(evening, "nudges", "email", NOW, "UTC").at == NOW
    later = NOW.replace(hour=12)
    assert preferences.decide(evening, "nudges", "email", later, "UTC").at == datetime(
        2026, 3, 2, 23, 0, tzinfo=UTC
    )


def test_the_digest_waits_for_the_next_morning_and_sessions_never_wait() -> None:
    rules = preferences.Rules(daily_digest=True)
    # 09:00 UTC: past today's 08:00, so tomorrow's.
    decision = preferences.decide(rules, "announcements", "email", NOW, "UTC")
    assert decision == preferences.Decision(preferences.Kind.DIGEST, NOW + timedelta(hours=23))
    # 09:00 UTC is 01:00 in Los Angeles (PST): 08:00 there the same day is 16:00 UTC.
    la = preferences.decide(rules, "nudges", "email", NOW, "America/Los_Angeles")
    assert la.at == NOW.replace(hour=16)
    assert preferences.decide(rules, "sessions", "email", NOW, "UTC").kind is preferences.Kind.SEND
    # A digest hour inside quiet hours goes at their end.
    quiet_morning = preferences.Rules(daily_digest=True, quiet_start=0, quiet_end=10 * 60)
    assert preferences.next_digest(NOW, "UTC", quiet_morning) == NOW + timedelta(hours=25)


def test_set_preferences_names_a_bad_field() -> None:
    good = pb.SetNotificationPreferencesRequest(
        organization_id=ORG,
        participant_id="a",
        categories=[
            pb.CategoryPreference(
                category=pb.NOTIFICATION_CATEGORY_NUDGES,
                channel=pb.NOTIFICATION_CHANNEL_EMAIL,
                enabled=False,
            )
        ],
        quiet_hours=pb.QuietHours(start_minute=1320, end_minute=420),
        time_zone="Europe/Paris",
    )
    rules = convert.rules_from(good)
    assert rules.disabled == {"nudges:email"} and rules.quiet_start == 1320
    for field, name, value in (
        ("categories[0].channel", "channel", pb.NOTIFICATION_CHANNEL_SLACK),
        ("categories[0].category", "category", pb.NOTIFICATION_CATEGORY_UNSPECIFIED),
    ):
        bad = pb.SetNotificationPreferencesRequest()
        bad.CopyFrom(good)
        setattr(bad.categories[0], name, value)
        with pytest.raises(InvalidArgument) as refused:
            convert.rules_from(bad)
        assert refused.value.field == field
    twice = pb.SetNotificationPreferencesRequest()
    twice.CopyFrom(good)
    twice.categories.append(good.categories[0])
    with pytest.raises(InvalidArgument) as refused:
        convert.rules_from(twice)
    assert refused.value.field == "categories[1]"
    for field, bad_value in (("quiet_hours.end_minute", 1440), ("time_zone", "Mars/Olympus")):
        bad = pb.SetNotificationPreferencesRequest()
        bad.CopyFrom(good)
        if field == "time_zone":
            bad.time_zone = str(bad_value)
        else:
            bad.quiet_hours.end_minute = int(bad_value)
        with pytest.raises(InvalidArgument) as refused:
            convert.rules_from(bad)
        assert refused.value.field == field


# --- contacts, queueing, erasure (mongomock) ------------------------------------------------


def test_a_contact_keeps_name_address_language_and_time_zone(db: None) -> None:
    register("a", "Ana", languages=["fr"], timezone="Europe/Paris", cohort_id="c1")
    register("b", "Ben")
    found = mail_store.contacts(ORG, ["a", "b", "nobody"])
    assert set(found) == {"a", "b"}
    a = found["a"]
    assert (a.name, a.email, a.language, a.time_zone, a.cohort_id, a.role) == (
        "Ana",
        "ana@acme.example",
        "fr",
        "Europe/Paris",
        "c1",
        "mentor",
    )
    assert (found["b"].language, found["b"].time_zone) == ("en", "UTC")
    # Another organisation's participant of the same id is another contact.
    assert mail_store.contacts("other", ["a"]) == {}


def test_a_notice_is_queued_once_per_recipient_and_channel(db: None) -> None:
    register("a", "Ana")
    register("b", "Ben", role=common_pb2.ROLE_MENTEE)
    proposal = event(events_pb2.MatchProposed(match_id="m1", mentor_id="a", mentee_id="b"))
    assert queue(proposal) == ["pending", "pending"]
    assert queue(proposal) == []
    assert Message.objects.count() == 2
    assert {m.message_id for m in Message.objects} == {
        notices.message_id(proposal.envelope.event_id, p, "email") for p in ("a", "b")
    }


def test_preferences_suppress_or_defer_at_queueing(db: None) -> None:
    register("a", "Ana", timezone="America/New_York")
    register("b", "Ben", role=common_pb2.ROLE_MENTEE)
    mail_store.set_preferences(
        ORG, "a", preferences.Rules(quiet_start=22 * 60, quiet_end=7 * 60), NOW
    )
    mail_store.set_preferences(
        ORG, "b", preferences.Rules(disabled=frozenset({"nudges:email"})), NOW
    )
    assert queue(nudge("a", "b", "n-a")) == ["pending"]
    assert queue(nudge("b", "a", "n-b")) == ["suppressed"]
    deferred = Message.objects(participant_id="a").get()
    assert mail_store.aware(deferred.next_attempt_at) == NOW.replace(hour=12)
    assert mail_store.claim_due(NOW, 10, timedelta(seconds=60)) == []
    suppressed = Message.objects(participant_id="b").get()
    assert suppressed.event is None and suppressed.data == {}


def test_a_batch_of_contacts_is_saved_in_order_and_leaves_the_erased_alone(db: None) -> None:
    register("gone", "Gus")
    mail_store.erase_contact(ORG, "gone", NOW)

    def person(kind: type[Any], pid: str, name: str) -> events_pb2.Event:
        return event(kind(participant_id=pid, display_name=name, email=f"{pid}@acme.example"))

    mail_store.save_contacts(
        [
            person(events_pb2.ParticipantRegistered, "a", "Ana"),
            person(events_pb2.ParticipantRegistered, "gone", "Gus"),
            person(events_pb2.ParticipantRegistered, "b", "Ben"),
            person(events_pb2.ParticipantUpdated, "a", "Ana Lima"),
        ],
        NOW,
    )
    names = {c.participant_id: (c.name, c.email) for c in Contact.objects(organization_id=ORG)}
    assert names == {
        "a": ("Ana Lima", "a@acme.example"),
        "b": ("Ben", "b@acme.example"),
        "gone": ("", ""),
    }


def test_erasure_pseudonymises_the_contact_and_its_delivery_log(db: None) -> None:
    register("a", "Ana")
    register("b", "Ben", role=common_pb2.ROLE_MENTEE)
    queue(event(events_pb2.MatchProposed(match_id="m1", mentor_id="a", mentee_id="b")))
    (claimed,) = [
        m for m in mail_store.claim_due(NOW, 10, timedelta(seconds=60)) if m.participant_id == "a"
    ]
    mail_store.record_attempt(claimed, outcomes.delivered(250), "ana@acme.example", NOW, SETTINGS)
    queue(nudge("a", "b", "n-later"))

    mail_store.erase_contact(ORG, "a", NOW)

    contact = Contact.objects(organization_id=ORG, participant_id="a").get()
    assert (contact.name, contact.email, contact.erased) == ("", "", True)
    logged = {m.template: m for m in Message.objects(participant_id="a")}
    assert set(logged) == {"match-proposed", "no-session"}
    assert logged["match-proposed"].status == "delivered"
    assert logged["no-session"].status == "cancelled"
    for m in logged.values():
        assert (m.address, m.data, m.event) == ("", {}, None)
        assert m.message_id and m.participant_id == "a"
    # A later registration event replayed does not bring the person back, nor do new messages go.
    register("a", "Ana")
    assert Contact.objects(organization_id=ORG, participant_id="a").get().email == ""
    assert queue(nudge("a", "b", "n-after")) == ["cancelled"]
    # The other member's message to come names nobody once it is composed.
    other = Message.objects(participant_id="b").get()
    note = compose.notification(
        other,
        mail_store.contacts(ORG, compose.people(other)),
        compose.brand_of(ORG, ""),
        "x@y",
        NOW,
    )
    assert note.data["other_name"] == compose.SOMEONE


def test_a_temporary_failure_is_retried_then_dead_lettered_and_a_permanent_one_at_once(
    db: None,
) -> None:
    register("a", "Ana")
    register("b", "Ben", role=common_pb2.ROLE_MENTEE)
    queue(event(events_pb2.MatchProposed(match_id="m1", mentor_id="a", mentee_id="b")))
    lease = timedelta(seconds=60)
    first, second = sorted(mail_store.claim_due(NOW, 10, lease), key=lambda m: m.participant_id)
    refused = outcomes.temporary("451 later", 451)
    following = mail_store.record_attempt(first, refused, "ana@acme.example", NOW, SETTINGS)
    assert following is not None and following.due == NOW + timedelta(seconds=10)
    gone = mail_store.record_attempt(
        second, outcomes.permanent("550 no such user", 550), "ben@acme.example", NOW, SETTINGS
    )
    assert gone is not None and gone.status == "dead_lettered"
    (again,) = mail_store.claim_due(NOW + timedelta(seconds=10), 10, lease)
    last = mail_store.record_attempt(again, refused, "ana@acme.example", NOW, SETTINGS)
    assert last is not None and last.status == "dead_lettered"
    unsent = mail_store.dead_letters_unsent(10)
    assert {m.last_error for m in unsent} == {"451 later", "550 no such user"}
    assert all(m.event for m in unsent)
    for m in unsent:
        mail_store.dead_letter_sent(m)
    assert mail_store.dead_letters_unsent(10) == []


def test_a_digest_collects_a_days_messages_into_one(db: None) -> None:
    register("a", "Ana")
    register("b", "Ben", role=common_pb2.ROLE_MENTEE)
    mail_store.set_preferences(ORG, "a", preferences.Rules(daily_digest=True), NOW)
    assert queue(nudge("a", "b", "n-1")) == ["digest"]
    assert queue(nudge("a", "b", "n-2")) == ["digest"]
    assert mail_store.collect_digests(NOW) == 0
    due = NOW + timedelta(hours=23)
    assert mail_store.collect_digests(due) == 1
    assert mail_store.collect_digests(due) == 0
    (digest,) = mail_store.claim_due(due, 10, timedelta(seconds=60))
    assert digest.template == "daily-digest" and len(digest.items) == 2
    assert {m.status for m in Message.objects(template="no-session")} == {"digested"}
    items = mail_store.digest_items(digest)
    found = mail_store.contacts(ORG, ["a", "b"])
    renderer = Renderer()
    brand = compose.brand_of(ORG, "")
    lines = [compose.digest_item(renderer, i, found, brand) for i in items]
    note = compose.notification(digest, found, brand, "x@y", due, lines)
    text = renderer.render(note, sender="Mentoring <no-reply@acme.example>", now=due)
    assert "2 updates" in str(text["Subject"])


def test_a_session_message_carries_an_invitation_in_the_recipients_zone(db: None) -> None:
    register("a", "Ana", timezone="Europe/Paris")
    register("b", "Ben", role=common_pb2.ROLE_MENTEE)
    at = Timestamp()
    at.FromDatetime(NOW + timedelta(days=2))
    for change, sequence in (
        (events_pb2.SESSION_PLAN_CHANGE_SCHEDULED, 0),
        (events_pb2.SESSION_PLAN_CHANGE_MOVED, 1),
    ):
        queue(
            event(
                events_pb2.SessionPlanned(
                    session_id="s1",
                    mentor_id="a",
                    mentee_id="b",
                    scheduled_at=at,
                    minutes=30,
                    change=change,
                    sequence=sequence,
                )
            )
        )
        at.FromDatetime(NOW + timedelta(days=3))
    moved = Message.objects(participant_id="a", template="session-moved").get()
    assert moved.data["previous_starts_at"] == (NOW + timedelta(days=2)).isoformat()
    found = mail_store.contacts(ORG, compose.people(moved))
    note = compose.notification(
        moved, found, compose.brand_of(ORG, ""), "Mentoring <no-reply@acme.example>", NOW
    )
    rendered = Renderer().render(note, sender="Mentoring <no-reply@acme.example>", now=NOW)
    parsed = BytesParser(policy=policy.default).parsebytes(bytes(rendered))
    (calendar_part,) = [p for p in parsed.walk() if p.get_content_type() == "text/calendar"]
    calendar = icalendar.Calendar.from_ical(calendar_part.get_content())
    assert calendar["METHOD"] == "REQUEST"
    (entry,) = calendar.walk("VEVENT")
    assert isinstance(entry, icalendar.Event)
    assert entry.sequence == 1
    assert entry.start == NOW + timedelta(days=3)
    assert isinstance(entry.start, datetime) and str(entry.start.tzinfo) == "Europe/Paris"
    attendees = sorted(str(a) for a in entry.attendees)
    assert attendees == ["mailto:ana@acme.example", "mailto:ben@acme.example"]
