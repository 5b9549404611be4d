"""Slack and Teams channels in the notifications service: masked URLs, routing, what events
count in a program's day and the digest they make (pure); an announcement posted once per
channel however many recipients it has, digests once per day, retries and dead letters
(mongomock); the RPCs' validation naming fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.message import Message as Payload

from services.common.config import WebhookSettings
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.events import new_event
from services.common.pb.mentoring.v1 import common_pb2, events_pb2
from services.common.pb.mentoring.v1 import notifications_pb2 as pb
from services.notifications import chat, chat_domain, chat_store, domain, outcomes
from services.notifications.chat_domain import Route
from services.notifications.chat_servicer import ChatServicer
from services.notifications.documents import ChatPost, ChatTick
from services.notifications.store import Consumed
from tests.unit import memory_db

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
ORG = "acme"
SLACK_URL = "https://hooks.slack.com/services/T0001/B0002/s3cr3tT0kenXYZ9"
TEAMS_URL = "https://acme.webhook.office.com/workflows/abc/triggers/manual/paths/invoke?sig=Q1w2"
RETRIES = WebhookSettings(max_attempts=2, retry_base_seconds=10.0, retry_max_seconds=60.0)


# --- pure -----------------------------------------------------------------------------------


def test_a_masked_url_keeps_the_host_and_four_characters_and_hides_the_token() -> None:
    assert chat_domain.mask(SLACK_URL) == "https://hooks.slack.com/…XYZ9"
    assert "s3cr3t" not in chat_domain.mask(SLACK_URL)
    masked = chat_domain.mask(TEAMS_URL)
    assert masked == "https://acme.webhook.office.com/…Q1w2"
    assert "sig=" not in masked
    # A short path would be half shown by four characters: nothing of it is.
    assert chat_domain.mask("https://example.com/abc") == "https://example.com/…"


def test_a_channel_id_is_stable_per_scope_and_kind() -> None:
    slack = chat_domain.channel_id(ORG, "", chat.Kind.SLACK)
    assert slack == chat_domain.channel_id(ORG, "", chat.Kind.SLACK)
    assert slack.startswith("slack-")
    others = {
        chat_domain.channel_id(ORG, "", chat.Kind.TEAMS),
        chat_domain.channel_id(ORG, "p1", chat.Kind.SLACK),
        chat_domain.channel_id("other", "", chat.Kind.SLACK),
    }
    assert slack not in others and len(others) == 3


def test_a_program_channel_takes_its_posts_else_the_organisation_channel() -> None:
    org_wide = Route("org", "", announcements=True, daily_digest=True)
    p1_digest_only = Route("p1", "p1", announcements=False, daily_digest=True)
    routes = [org_wide, p1_digest_only]
    assert chat_domain.route(routes, "p1", chat_domain.DAILY_DIGEST) == [p1_digest_only]
    # p1's own channel takes no announcements: the organisation's does.
    assert chat_domain.route(routes, "p1", chat_domain.ANNOUNCEMENTS) == [org_wide]
    assert chat_domain.route(routes, "p2", chat_domain.DAILY_DIGEST) == [org_wide]
    assert chat_domain.route([p1_digest_only], "p2", chat_domain.DAILY_DIGEST) == []


def test_the_last_digest_time_is_today_at_the_hour_once_it_has_passed() -> None:
    assert chat_domain.last_digest_time(NOW, 8) == datetime(2026, 3, 2, 8, tzinfo=UTC)
    assert chat_domain.last_digest_time(NOW, 10) == datetime(2026, 3, 1, 10, tzinfo=UTC)
    on_the_hour = datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert chat_domain.last_digest_time(on_the_hour, 9) == on_the_hour


def event(
    payload: Payload, event_id: str = "", org: str = ORG, program: str = "p1"
) -> events_pb2.Event:
    return new_event(
        producer="test",
        organization_id=org,
        program_id=program,
        payload=payload,
        event_id=event_id or None,
        occurred_at=NOW,
    )


def nudge(recipient: str, reason: str = "no-session") -> events_pb2.Event:
    return event(
        events_pb2.NotificationRequested(
            notification_id=f"n-{recipient}-{reason}",
            recipient_id=recipient,
            template=reason,
            reason=reason,
        ),
        # Engagement's notification ids are the event ids: a repeat has the same.
        event_id=f"n-{recipient}-{reason}",
    )


def announced(
    recipient: str,
    announcement_id: str = "a1",
    program: str = "p1",
    template: str = "kick-off",
    audience: str = "program",
) -> events_pb2.Event:
    return event(
        events_pb2.NotificationRequested(
            notification_id=f"{announcement_id}-{recipient}",
            recipient_id=recipient,
            template=template,
            reason="announcement",
            announcement_id=announcement_id,
            data={"message": "Kick-off on Friday at 10:00", "audience": audience},
        ),
        program=program,
    )


def planned(change: events_pb2.SessionPlanChange.ValueType) -> events_pb2.Event:
    return event(events_pb2.SessionPlanned(session_id="s1", change=change))


def test_what_each_event_counts_for_in_its_programs_day() -> None:
    assert chat_domain.tick(nudge("mia")) == "nudge:no-session"
    assert chat_domain.tick(announced("mia")) is None
    assert chat_domain.tick(planned(events_pb2.SESSION_PLAN_CHANGE_CANCELLED)) == (
        "session-cancelled"
    )
    started = event(events_pb2.RelationshipStarted(relationship_id="r1", match_id="m1"))
    assert chat_domain.tick(started) == "relationship-started"
    assert chat_domain.proposal_change(started) == ("m1", False)
    assert chat_domain.tick(event(events_pb2.ProgramChanged(name="P"))) is None
    proposed = event(events_pb2.MatchProposed(match_id="m2"))
    assert chat_domain.proposal_change(proposed) == ("m2", True)
    half = events_pb2.MatchResponded(match_id="m2", status=common_pb2.MATCH_STATUS_PROPOSED)
    assert chat_domain.proposal_change(event(half)) is None
    declined = events_pb2.MatchResponded(match_id="m2", status=common_pb2.MATCH_STATUS_DECLINED)
    assert chat_domain.proposal_change(event(declined)) == ("m2", False)


def test_a_digest_counts_the_day_and_an_empty_day_makes_none() -> None:
    since = NOW - timedelta(days=1)
    assert chat_domain.digest([], 3, organisation=ORG, program="P", since=since, until=NOW) is None
    ticks = [
        "nudge:no-session",
        "nudge:no-session",
        "nudge:ending-soon",
        "relationship-started",
        "session-scheduled",
        "session-scheduled",
        "session-cancelled",
    ]
    made = chat_domain.digest(ticks, 2, organisation=ORG, program="P", since=since, until=NOW)
    assert made is not None
    assert dict(made.figures) == {
        "Nudges: relationship ending soon": "1",
        "Nudges: no session for a while": "2",
        "Relationships started": "1",
        "Sessions planned": "2",
        "Sessions cancelled": "1",
        "Proposals waiting for an answer": "2",
    }
    assert made.program == "P"


def test_an_announcement_takes_its_coordinators_template_as_title() -> None:
    value = chat_domain.announcement(
        {"message": "Hello"}, "kick-off", organisation=ORG, program="Women in Tech"
    )
    assert (value.title, value.message, value.program) == ("Kick off", "Hello", "Women in Tech")
    assert chat_domain.announcement({}, "announcement", organisation=ORG, program="P").title == (
        "Announcement"
    )


def test_a_channel_must_receive_something() -> None:
    with pytest.raises(InvalidArgument) as refused:
        chat_domain.purposes(False, False)
    assert refused.value.field == "announcements"


# --- stored (mongomock) ---------------------------------------------------------------------


@pytest.fixture
def db() -> Iterator[None]:
    memory_db.connect_fresh("notifications", "chat")
    yield


def consumed(*events: events_pb2.Event) -> list[Consumed]:
    return [Consumed(e, 0, i, b"k") for i, e in enumerate(events)]


def channel(program: str = "", kind: chat.Kind = chat.Kind.SLACK, **purposes: bool) -> str:
    wanted = {"announcements": True, "daily_digest": True, **purposes}
    url = SLACK_URL if kind is chat.Kind.SLACK else TEAMS_URL
    return str(chat_store.set_channel(ORG, program, kind, url, now=NOW, **wanted).channel_id)


def posts() -> list[ChatPost]:
    return list(ChatPost.objects.order_by("order_key"))


def test_an_announcement_is_posted_once_per_channel_not_once_per_recipient(db: None) -> None:
    slack = channel()
    teams = channel(kind=chat.Kind.TEAMS, daily_digest=False)
    recipients = [announced(name) for name in ("mia", "leo", "ada", "bo")]
    queued = chat_store.consume(consumed(*recipients), NOW)
    assert queued == {"slack": 1, "teams": 1}
    # The same announcement's events again (redelivered, or a late batch): nothing more.
    assert chat_store.consume(consumed(*recipients[1:]), NOW) == {}
    found = posts()
    assert sorted(p.channel_id for p in found) == sorted([slack, teams])
    by_kind = {p.kind: json.loads(p.body) for p in found}
    assert "Kick-off on Friday at 10:00" in by_kind["slack"]["text"]
    assert by_kind["teams"]["attachments"][0]["content"]["type"] == "AdaptiveCard"
    # Announcements are no digest figures.
    assert ChatTick.objects.count() == 0


def test_an_announcement_to_one_participant_never_reaches_a_channel(db: None) -> None:
    channel()
    assert chat_store.consume(consumed(announced("mia", audience="participant")), NOW) == {}
    assert chat_store.consume(consumed(announced("leo", "a2", audience="cohort")), NOW) == {
        "slack": 1
    }
    assert len(posts()) == 1


def test_a_programs_own_channel_takes_its_announcements_instead_of_the_organisations(
    db: None,
) -> None:
    chat_store.consume(consumed(event(events_pb2.ProgramChanged(name="Women in Tech"))), NOW)
    channel()
    own = channel("p1")
    chat_store.consume(consumed(announced("mia"), announced("cy", "a2", program="p2")), NOW)
    where = {p.program_id: p.channel_id for p in posts()}
    assert where["p1"] == own
    assert where["p2"] == chat_domain.channel_id(ORG, "", chat.Kind.SLACK)
    p1_post = next(p for p in posts() if p.program_id == "p1")
    assert "Women in Tech" in json.loads(p1_post.body)["text"]


def test_without_a_channel_nothing_is_kept(db: None) -> None:
    assert chat_store.consume(consumed(announced("mia"), nudge("mia")), NOW) == {}
    assert posts() == [] and ChatTick.objects.count() == 0


def test_the_daily_digest_counts_the_day_once_and_skips_quiet_programs(db: None) -> None:
    slack = channel(announcements=False)
    day = [
        nudge("mia"),
        nudge("leo"),
        nudge("leo"),  # the same event redelivered counts once
        planned(events_pb2.SESSION_PLAN_CHANGE_SCHEDULED),
        event(events_pb2.MatchProposed(match_id="m1")),
        event(events_pb2.MatchProposed(match_id="m2")),
        # Answered before (another topic), proposed after: it stays answered.
        event(events_pb2.MatchExpired(match_id="m3")),
        event(events_pb2.MatchProposed(match_id="m3")),
        event(events_pb2.RelationshipStarted(relationship_id="r1", match_id="m2")),
    ]
    chat_store.consume(consumed(*day), NOW)
    until = NOW + timedelta(hours=1)
    assert chat_store.make_daily_digests(until, until) == {"slack": 1}
    assert chat_store.make_daily_digests(until, until) == {}
    (post,) = posts()
    assert (post.channel_id, post.program_id, post.purpose) == (slack, "p1", "digest")
    fields = [f["text"] for f in json.loads(post.body)["blocks"][1]["fields"]]
    assert "*Nudges: no session for a while*\n2" in fields
    assert "*Proposals made*\n3" in fields
    assert "*Proposals waiting for an answer*\n1" in fields
    # The next day had nothing: no digest.
    assert chat_store.make_daily_digests(until + timedelta(days=1), until) == {}


def test_send_now_posts_the_last_24_hours_to_that_channel_only(db: None) -> None:
    channel()  # the organisation's Slack channel takes digests too, but was not asked
    teams = channel(kind=chat.Kind.TEAMS)
    chat_store.consume(consumed(nudge("mia")), NOW)
    kind, programs = chat_store.make_digest_now(ORG, teams, NOW + timedelta(minutes=1))
    assert (kind, programs) == ("teams", ["p1"])
    assert [p.channel_id for p in posts()] == [teams]
    only_news = chat_store.set_channel(
        ORG, "p1", chat.Kind.SLACK, SLACK_URL, True, False, NOW
    ).channel_id
    with pytest.raises(FailedPrecondition):
        chat_store.make_digest_now(ORG, only_news, NOW)
    with pytest.raises(NotFound):
        chat_store.make_digest_now(ORG, "slack-nope", NOW)


def test_a_failed_post_is_retried_then_dead_lettered_and_a_deleted_channel_cancels(
    db: None,
) -> None:
    slack = channel()
    chat_store.consume(consumed(announced("mia")), NOW)
    lease = timedelta(minutes=1)
    (first,) = chat_store.claim_due(NOW, 10, lease)
    assert first.url == SLACK_URL
    # Claimed: nobody else takes it meanwhile.
    assert chat_store.claim_due(NOW, 10, lease) == []
    busy = outcomes.temporary("slack webhook answered HTTP 503", 503)
    following = chat_store.record_attempt(first.post, busy, NOW, RETRIES)
    assert following == domain.Next(domain.PENDING, NOW + timedelta(seconds=10))
    later = NOW + timedelta(seconds=11)
    (second,) = chat_store.claim_due(later, 10, lease)
    gone = chat_store.record_attempt(second.post, busy, later, RETRIES)
    assert gone is not None and gone.status == domain.DEAD_LETTERED
    (dead,) = chat_store.dead_letters_unsent(10)
    assert dead.event_type == "notification-requested"
    assert events_pb2.Event.FromString(dead.event).notification_requested.announcement_id == "a1"
    chat_store.dead_letter_sent(dead)
    assert chat_store.dead_letters_unsent(10) == []
    (logged,) = posts()
    assert (logged.status, logged.attempts, logged.last_status_code) == ("dead_lettered", 2, 503)

    chat_store.consume(consumed(announced("mia", "a2")), NOW)
    chat_store.delete_channel(ORG, slack, NOW)
    assert chat_store.claim_due(later, 10, lease) == []
    assert {p.status for p in posts()} == {"dead_lettered", "cancelled"}
    assert chat_store.list_channels(ORG, include_deleted=False) == []
    # Set again, it is back, under the same id.
    assert channel() == slack


def test_a_delivered_post_lets_go_of_its_body(db: None) -> None:
    channel()
    chat_store.consume(consumed(announced("mia")), NOW)
    (claimed,) = chat_store.claim_due(NOW, 10, timedelta(minutes=1))
    done = chat_store.record_attempt(claimed.post, outcomes.delivered(200), NOW, RETRIES)
    assert done is not None and done.status == domain.DELIVERED
    (post,) = posts()
    assert (post.status, post.body, post.event) == ("delivered", "", None)


# --- RPCs -----------------------------------------------------------------------------------


class Context:
    """Nothing the chat RPCs read."""


def servicer() -> ChatServicer:
    return ChatServicer(WebhookSettings(), wake=lambda: None)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example.com/x", "must start with https://"),
        ("https://10.0.0.7/hooks", "10.0.0.7 is a private address"),
        ("", "is required"),
    ],
)
async def test_a_webhook_url_the_policy_refuses_is_refused_naming_webhook_url(
    db: None, url: str, problem: str
) -> None:
    request = pb.SetChatChannelRequest(
        organization_id=ORG,
        kind=pb.NOTIFICATION_CHANNEL_SLACK,
        webhook_url=url,
        announcements=True,
    )
    with pytest.raises(InvalidArgument) as refused:
        await servicer().SetChatChannel(request, Context())
    assert refused.value.field == "webhook_url"
    assert str(refused.value).startswith(f"webhook_url: {problem}")


async def test_a_channel_kind_must_be_slack_or_teams(db: None) -> None:
    request = pb.SetChatChannelRequest(
        organization_id=ORG,
        kind=pb.NOTIFICATION_CHANNEL_EMAIL,
        webhook_url=SLACK_URL,
        announcements=True,
    )
    with pytest.raises(InvalidArgument) as refused:
        await servicer().SetChatChannel(request, Context())
    assert refused.value.field == "kind"


async def test_listed_channels_show_masked_urls_only(db: None) -> None:
    channel()
    channel("p1", chat.Kind.TEAMS)
    listed = await servicer().ListChatChannels(
        pb.ListChatChannelsRequest(organization_id=ORG),
        Context(),
    )
    assert [(c.program_id, c.kind) for c in listed.channels] == [
        ("", pb.NOTIFICATION_CHANNEL_SLACK),
        ("p1", pb.NOTIFICATION_CHANNEL_TEAMS),
    ]
    text = str(listed)
    assert "s3cr3t" not in text and "sig=" not in text
    assert listed.channels[0].masked_webhook_url == "https://hooks.slack.com/…XYZ9"


async def test_a_channels_log_lists_its_posts_newest_first_and_hides_others(db: None) -> None:
    slack = channel()
    chat_store.consume(consumed(announced("mia", "a1")), NOW)
    chat_store.consume(consumed(announced("mia", "a2")), NOW + timedelta(seconds=1))
    request = pb.ListChatPostsRequest(organization_id=ORG, channel_id=slack, page_size=1)
    first = await servicer().ListChatPosts(request, Context())
    assert [(p.purpose, p.status) for p in first.posts] == [
        ("announcement", pb.WEBHOOK_DELIVERY_STATUS_PENDING)
    ]
    request.page_token = first.next_page_token
    second = await servicer().ListChatPosts(request, Context())
    assert first.posts[0].post_id != second.posts[0].post_id
    assert first.posts[0].created_at.ToDatetime() > second.posts[0].created_at.ToDatetime()
    elsewhere = pb.ListChatPostsRequest(organization_id="other", channel_id=slack)
    with pytest.raises(NotFound):
        await servicer().ListChatPosts(elsewhere, Context())
