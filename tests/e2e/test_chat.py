"""Chat channels on the real stack: an announcement to several people reaches the
organisation's Slack channel once, the coordinator digest counts the program's day (a local
HTTPS receiver answering as Slack's incoming webhooks do), and a Teams channel that keeps
failing gets its digest retried, then dead-lettered."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import engagement_pb2
from services.common.pb.mentoring.v1 import notifications_pb2 as pb
from tests.e2e.engine import MENTEE, MENTOR, Program
from tests.e2e.receivers import Receiver
from tests.e2e.support import DeadLetters, eventually, metric

pytestmark = pytest.mark.e2e
SLACK = pb.NOTIFICATION_CHANNEL_SLACK


@pytest.fixture
def slack() -> Iterator[Receiver]:
    # Slack answers 200 to a post it takes.
    receiver = Receiver(200).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def teams_down() -> Iterator[Receiver]:
    # A Teams workflow that keeps failing.
    receiver = Receiver(500).start()
    yield receiver
    receiver.stop()


def consumed(stack: Stack, service: str, topic: str) -> float:
    return metric(
        stack.ports.metrics[service],
        "mentoring_events_consumed_total",
        topic=topic,
        group=service,
    )


def posts(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received]


def test_an_announcement_reaches_slack_once_and_the_digest_counts_the_day(
    stack: Stack, clients: Clients, slack: Receiver, teams_down: Receiver
) -> None:
    program = Program(clients, stack)
    channel = clients.notifications.SetChatChannel(
        pb.SetChatChannelRequest(
            organization_id=program.org,
            kind=SLACK,
            webhook_url=slack.url,
            announcements=True,
            daily_digest=True,
        )
    )
    teams = clients.notifications.SetChatChannel(
        pb.SetChatChannelRequest(
            organization_id=program.org,
            kind=pb.NOTIFICATION_CHANNEL_TEAMS,
            webhook_url=teams_down.url,
            daily_digest=True,
        )
    )
    listed = clients.notifications.ListChatChannels(
        pb.ListChatChannelsRequest(organization_id=program.org)
    )
    assert [c.channel_id for c in listed.channels] == [channel.channel_id, teams.channel_id]
    assert slack.url not in str(listed) and teams_down.url not in str(listed)
    assert listed.channels[0].masked_webhook_url.endswith("/…")

    # A pair who accept their proposal, and a third participant: the day's activity.
    registered = consumed(stack, "engagement", "participant-registered")
    mentor = program.register("Mia", MENTOR, ["coaching"], capacity=1)
    mentee = program.register("Leo", MENTEE, ["coaching"])
    program.register("Ada", MENTEE, ["tax law"])
    proposal = eventually("a proposal", lambda: next(iter(program.proposals(mentee)), None))
    eventually("engagement to see the proposal", lambda: program.known(proposal.match_id))
    started = consumed(stack, "notifications", "relationship-started")
    program.respond(proposal.match_id, mentor, accept=True)
    program.respond(proposal.match_id, mentee, accept=True)
    eventually(
        "engagement to know all three",
        lambda: consumed(stack, "engagement", "participant-registered") >= registered + 3,
    )

    requested = consumed(stack, "notifications", "notification-requested")
    sent = clients.engagement.Announce(
        engagement_pb2.AnnounceRequest(
            organization_id=program.org,
            program_id=program.pid,
            announcement_id=f"kickoff-{uuid.uuid4().hex[:6]}",
            template="kick-off",
            message="Kick-off call on Friday at 10:00",
        )
    )
    assert len(sent.recipient_ids) == 3
    eventually("the announcement in Slack", lambda: slack.received or None)
    # Every recipient's event consumed, and the relationship's start counted: then the digest.
    eventually(
        "the notifications service to consume the three recipients' events",
        lambda: consumed(stack, "notifications", "notification-requested") >= requested + 3,
    )
    eventually(
        "the notifications service to see the relationship start",
        lambda: consumed(stack, "notifications", "relationship-started") >= started + 1,
    )
    queued = clients.notifications.SendChatDigestNow(
        pb.SendChatDigestNowRequest(organization_id=program.org, channel_id=channel.channel_id)
    )
    assert list(queued.program_ids) == [program.pid]
    eventually("the digest in Slack", lambda: len(slack.received) >= 2)

    # Posts are sent in the order they were queued: any second copy of the announcement,
    # queued when a later recipient's event was consumed, would have come by now.
    received = posts(slack)
    announcements = [p for p in received if "Kick-off call on Friday at 10:00" in p["text"]]
    assert len(announcements) == 1, received
    (announcement,) = announcements
    # Headed by the coordinator's template, the program (its name once announced) and the
    # organisation.
    heading = announcement["blocks"][0]["text"]["text"]
    assert heading.startswith("Kick off — ") and heading.endswith(f"({program.org})")
    (digest,) = [p for p in received if p["text"].startswith("Coordinator digest")]
    fields = {f["text"] for f in digest["blocks"][1]["fields"]}
    assert {
        "*Proposals made*\n1",
        "*Relationships started*\n1",
        "*Proposals waiting for an answer*\n0",
    } <= fields
    assert all(r.headers["Content-Type"].startswith("application/json") for r in slack.received)
    assert (
        metric(
            stack.ports.metrics["notifications"],
            "mentoring_notifications_total",
            channel="slack",
            outcome="sent",
        )
        >= 2
    )

    # The channel's log: one post per announcement and digest, each delivered at once.
    log = clients.notifications.ListChatPosts(
        pb.ListChatPostsRequest(organization_id=program.org, channel_id=channel.channel_id)
    )
    assert sorted((p.purpose, p.status, p.attempts) for p in log.posts) == [
        ("announcement", pb.WEBHOOK_DELIVERY_STATUS_DELIVERED, 1),
        ("digest", pb.WEBHOOK_DELIVERY_STATUS_DELIVERED, 1),
    ]

    # The Teams channel takes digests only, and fails: retried, then dead-lettered.
    assert teams_down.received == []
    dead_letters = DeadLetters(stack.ports.bootstrap)
    clients.notifications.SendChatDigestNow(
        pb.SendChatDigestNowRequest(organization_id=program.org, channel_id=teams.channel_id)
    )

    def given_up() -> pb.ChatPost | None:
        found = clients.notifications.ListChatPosts(
            pb.ListChatPostsRequest(organization_id=program.org, channel_id=teams.channel_id)
        ).posts
        done = [p for p in found if p.status == pb.WEBHOOK_DELIVERY_STATUS_DEAD_LETTERED]
        return done[0] if done else None

    gave_up = eventually("the Teams digest to be dead-lettered", given_up)
    assert (gave_up.attempts, gave_up.last_status_code) == (3, 500)
    assert len(teams_down.received) == 3
    card = posts(teams_down)[0]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    letter = eventually(
        "the Teams digest's dead letter",
        lambda: next((d for d in dead_letters() if gave_up.post_id in d.reason), None),
    )
    assert (letter.consumer_group, letter.source_topic) == ("notifications-chat", "chat-digest")
    assert json.loads(letter.value)["type"] == "message"

    # Deleted: a digest can no longer be asked for it.
    clients.notifications.DeleteChatChannel(
        pb.DeleteChatChannelRequest(organization_id=program.org, channel_id=channel.channel_id)
    )
    with pytest.raises(grpc.RpcError) as gone:
        clients.notifications.SendChatDigestNow(
            pb.SendChatDigestNowRequest(organization_id=program.org, channel_id=channel.channel_id)
        )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("url", ["https://10.1.2.3/services/T/B/x", "http://127.0.0.1:9/x"])
def test_a_webhook_url_on_a_private_address_or_plain_http_is_refused_naming_it(
    clients: Clients, url: str
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        clients.notifications.SetChatChannel(
            pb.SetChatChannelRequest(
                organization_id=f"org-{uuid.uuid4().hex[:8]}",
                kind=SLACK,
                webhook_url=url,
                announcements=True,
            )
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith("webhook_url: ")
