"""Chat channels, their posts, and the day's ticks digests are made from. Blocking: call
through storage.run_sync.

Every query names the organisation, or works on posts the organisation's own events or
digests queued for its own channels."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common import storage
from services.common.config import WebhookSettings
from services.common.errors import FailedPrecondition, NotFound
from services.notifications import chat, chat_domain, delivery_log, domain, notices
from services.notifications.documents import (
    ChatChannel,
    ChatPost,
    ChatProgram,
    ChatProposal,
    ChatTick,
)
from services.notifications.outcomes import Outcome
from services.notifications.store import Consumed

ANNOUNCEMENT = "announcement"
DIGEST = "digest"
# The source a digest's dead letter names: it comes from no topic, and carries the digest's
# JSON as its value.
DIGEST_TOPIC = "chat-digest"
# How long ticks and answered proposals are kept: past any digest that could still need them.
KEEP_TICKS = timedelta(days=8)
KEEP_ANSWERED = timedelta(days=30)
# A final post lets go of what it was sent from.
LOG = delivery_log.DeliveryLog(
    ChatPost, released={"set__body": "", "unset__event": True, "unset__key": True}
)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- channels -------------------------------------------------------------------------------


def set_channel(
    organization_id: str,
    program_id: str,
    kind: chat.Kind,
    url: str,
    announcements: bool,
    daily_digest: bool,
    now: datetime,
) -> ChatChannel:
    """Create or replace the scope's channel of this kind; a deleted one comes back."""
    channel_id = chat_domain.channel_id(organization_id, program_id, kind)
    ChatChannel.objects(organization_id=organization_id, channel_id=channel_id).update_one(
        upsert=True,
        set__program_id=program_id,
        set__kind=str(kind),
        set__webhook_url=url,
        set__announcements=announcements,
        set__daily_digest=daily_digest,
        set__updated_at=now,
        set_on_insert__created_at=now,
        unset__deleted_at=True,
    )
    return channel(organization_id, channel_id)


def channel(organization_id: str, channel_id: str) -> ChatChannel:
    found: ChatChannel | None = ChatChannel.objects(
        organization_id=organization_id, channel_id=channel_id
    ).first()
    if found is None:
        raise NotFound(f"channel_id: no chat channel {channel_id!r}")
    return found


def list_channels(organization_id: str, include_deleted: bool) -> list[ChatChannel]:
    query = ChatChannel.objects(organization_id=organization_id)
    if not include_deleted:
        query = query.filter(deleted_at=None)
    return sorted(query, key=lambda c: (c.program_id, c.kind))


def delete_channel(organization_id: str, channel_id: str, now: datetime) -> tuple[ChatChannel, int]:
    """Mark it deleted and cancel its pending posts; the channel and how many were cancelled."""
    found = channel(organization_id, channel_id)
    if found.deleted_at is None:
        ChatChannel.objects(pk=found.pk, deleted_at=None).update_one(set__deleted_at=now)
        found.reload()
    pending = ChatPost.objects(
        organization_id=organization_id, channel_id=channel_id, status=domain.PENDING
    )
    return found, _cancel(pending)


def list_posts(
    organization_id: str, channel_id: str, size: int, before: str | None
) -> list[ChatPost]:
    """A channel's log, newest first; NOT_FOUND for a channel the organisation has not."""
    channel(organization_id, channel_id)
    query = ChatPost.objects(organization_id=organization_id, channel_id=channel_id)
    if before:
        query = query.filter(order_key__lt=before)
    return list(query.order_by("-order_key").exclude("body", "event", "key").limit(size))


def _cancel(query: Any) -> int:
    return int(
        query.update(
            set__status=domain.CANCELLED,
            unset__next_attempt_at=True,
            set__body="",
            unset__event=True,
            unset__key=True,
        )
    )


def _routes(channels: Iterable[ChatChannel]) -> dict[str, list[chat_domain.Route]]:
    by_org: dict[str, list[chat_domain.Route]] = {}
    for c in channels:
        by_org.setdefault(c.organization_id, []).append(
            chat_domain.Route(c.channel_id, c.program_id, c.announcements, c.daily_digest)
        )
    return by_org


def _program_names(organization_id: str, program_ids: Iterable[str]) -> dict[str, str]:
    found = ChatProgram.objects(
        organization_id=organization_id, program_id__in=sorted(set(program_ids))
    )
    return {p.program_id: p.name for p in found if p.name}


# --- consuming ------------------------------------------------------------------------------


def consume(items: Sequence[Consumed], now: datetime) -> Counter[str]:
    """Program names; for organisations with channels, a post per announcement and channel it
    goes to (the same for each of its recipients' events), and the ticks and proposals their
    digests count. How many posts were queued, by kind."""
    for item in items:
        if item.event.WhichOneof("payload") == "program_changed":
            _save_program(item)
    organizations = sorted({item.event.envelope.organization_id for item in items})
    channels = list(ChatChannel.objects(organization_id__in=organizations, deleted_at=None))
    if not channels:
        return Counter()
    routes = _routes(channels)
    kinds = {c.channel_id: c.kind for c in channels}
    posts = []
    # An announcement's recipients' events come together: the first makes its posts.
    seen: set[tuple[str, str]] = set()
    for item in items:
        org = item.event.envelope.organization_id
        announcement_id = item.event.notification_requested.announcement_id
        if org not in routes or (org, announcement_id) in seen:
            continue
        made = _announcement_posts(item, routes[org], kinds, now)
        if made:
            seen.add((org, announcement_id))
            posts += made
    skipped = storage.insert_new(ChatPost, posts)
    queued = Counter(raw["kind"] for i, raw in enumerate(posts) if i not in skipped)
    digesting = {org for org, found in routes.items() if any(r.daily_digest for r in found)}
    _count([item for item in items if item.event.envelope.organization_id in digesting], now)
    return queued


def _save_program(item: Consumed) -> None:
    env = item.event.envelope
    ChatProgram.objects(organization_id=env.organization_id, program_id=env.program_id).update_one(
        upsert=True, set__name=item.event.program_changed.name
    )


def _announcement_posts(
    item: Consumed, routes: list[chat_domain.Route], kinds: dict[str, str], now: datetime
) -> list[dict[str, Any]]:
    event = item.event
    if event.WhichOneof("payload") != "notification_requested":
        return []
    requested = event.notification_requested
    # Without its id, one announcement's recipient events cannot be told to be one post.
    if requested.reason != notices.ANNOUNCEMENT or not requested.announcement_id:
        return []
    # A message to one person is theirs, not the team channel's.
    if requested.data.get("audience") == "participant":
        return []
    env = event.envelope
    targets = chat_domain.route(routes, env.program_id, chat_domain.ANNOUNCEMENTS)
    if not targets:
        return []
    names = _program_names(env.organization_id, [env.program_id])
    value = chat_domain.announcement(
        dict(requested.data),
        requested.template,
        organisation=env.organization_id,
        program=names.get(env.program_id, env.program_id),
    )
    raws = []
    for target in targets:
        kind = chat.Kind(kinds[target.channel_id])
        post_id = chat_domain.announcement_post_id(
            env.organization_id, requested.announcement_id, target.channel_id
        )
        raws.append(
            _post(
                env.organization_id,
                env.program_id,
                target.channel_id,
                kind,
                post_id,
                ANNOUNCEMENT,
                chat.announcement(kind, value),
                now,
                event_type=env.event_type.replace("_", "-"),
                event=event.SerializeToString(),
                partition=item.partition,
                offset=item.offset,
                key=item.key,
            )
        )
    return raws


def _post(
    organization_id: str,
    program_id: str,
    channel_id: str,
    kind: chat.Kind,
    post_id: str,
    purpose: str,
    message: chat.ChatMessage,
    now: datetime,
    **dead_letter: Any,
) -> dict[str, Any]:
    document = ChatPost(
        organization_id=organization_id,
        program_id=program_id,
        channel_id=channel_id,
        kind=str(kind),
        post_id=post_id,
        purpose=purpose,
        order_key=domain.order_key(now, post_id),
        status=domain.PENDING,
        created_at=now,
        next_attempt_at=now,
        body=json.dumps(dict(message.body)),
        **dead_letter,
    )
    document.validate()
    raw: dict[str, Any] = document.to_mongo().to_dict()
    return raw


def _count(items: Sequence[Consumed], now: datetime) -> None:
    ticks = []
    for item in items:
        env = item.event.envelope
        if (name := chat_domain.tick(item.event)) is not None:
            occurred = (
                env.occurred_at.ToDatetime(tzinfo=UTC) if env.HasField("occurred_at") else now
            )
            ticks.append(
                ChatTick(
                    organization_id=env.organization_id,
                    program_id=env.program_id,
                    event_id=env.event_id,
                    tick=name,
                    occurred_at=occurred,
                )
                .to_mongo()
                .to_dict()
            )
        if (change := chat_domain.proposal_change(item.event)) is not None:
            _proposal(env.organization_id, env.program_id, *change, now)
    storage.insert_new(ChatTick, ticks)


def _proposal(
    organization_id: str, program_id: str, match_id: str, opened: bool, now: datetime
) -> None:
    if opened:
        # Only if unknown: an answer consumed before it has closed it already.
        storage.insert_new(
            ChatProposal,
            [
                ChatProposal(
                    organization_id=organization_id,
                    program_id=program_id,
                    match_id=match_id,
                    open=True,
                    updated_at=now,
                )
                .to_mongo()
                .to_dict()
            ],
        )
        return
    ChatProposal.objects(organization_id=organization_id, match_id=match_id).update_one(
        upsert=True, set__open=False, set__updated_at=now, set_on_insert__program_id=program_id
    )


# --- digests --------------------------------------------------------------------------------


def make_daily_digests(until: datetime, now: datetime) -> Counter[str]:
    """The digests of the day before `until` for every digest channel, each once however often
    this runs (its id names the channel, program and time). How many were queued, by kind."""
    channels = list(ChatChannel.objects(daily_digest=True, deleted_at=None))
    routes = _routes(channels)
    kinds = {c.channel_id: c.kind for c in channels}
    raws: list[dict[str, Any]] = []
    for organization_id, found in routes.items():
        raws += _digest_posts(organization_id, found, kinds, until - chat_domain.DAY, until, now)[0]
    skipped = storage.insert_new(ChatPost, raws)
    return Counter(raw["kind"] for i, raw in enumerate(raws) if i not in skipped)


def make_digest_now(organization_id: str, channel_id: str, now: datetime) -> tuple[str, list[str]]:
    """The digest of the last 24 hours, for one channel: its kind and the programs it was
    queued for."""
    wanted = channel(organization_id, channel_id)
    if wanted.deleted_at is not None:
        raise NotFound(f"channel_id: chat channel {channel_id!r} was deleted")
    if not wanted.daily_digest:
        raise FailedPrecondition("channel_id: the channel does not take the daily digest")
    channels = list(
        ChatChannel.objects(organization_id=organization_id, daily_digest=True, deleted_at=None)
    )
    kinds = {c.channel_id: c.kind for c in channels}
    routes = _routes(channels).get(organization_id, [])
    raws, programs = _digest_posts(
        organization_id, routes, kinds, now - chat_domain.DAY, now, now, only=channel_id
    )
    storage.insert_new(ChatPost, raws)
    return wanted.kind, programs


def _digest_posts(
    organization_id: str,
    routes: list[chat_domain.Route],
    kinds: dict[str, str],
    since: datetime,
    until: datetime,
    now: datetime,
    only: str = "",
) -> tuple[list[dict[str, Any]], list[str]]:
    by_program: dict[str, list[str]] = {}
    for t in ChatTick.objects(
        organization_id=organization_id, occurred_at__gte=since, occurred_at__lt=until
    ).only("program_id", "tick"):
        by_program.setdefault(t.program_id, []).append(t.tick)
    names = _program_names(organization_id, by_program)
    raws = []
    programs = []
    for program_id, ticks in sorted(by_program.items()):
        targets = [
            r
            for r in chat_domain.route(routes, program_id, chat_domain.DAILY_DIGEST)
            if not only or r.channel_id == only
        ]
        if not targets:
            continue
        waiting = ChatProposal.objects(
            organization_id=organization_id, program_id=program_id, open=True
        ).count()
        value = chat_domain.digest(
            ticks,
            waiting,
            organisation=organization_id,
            program=names.get(program_id, program_id),
            since=since,
            until=until,
        )
        if value is None:
            continue
        programs.append(program_id)
        for target in targets:
            kind = chat.Kind(kinds[target.channel_id])
            post_id = chat_domain.digest_post_id(
                organization_id, target.channel_id, program_id, until
            )
            message = chat.digest(kind, value)
            raws.append(
                _post(
                    organization_id,
                    program_id,
                    target.channel_id,
                    kind,
                    post_id,
                    DIGEST,
                    message,
                    now,
                    event_type=DIGEST_TOPIC,
                    event=json.dumps(dict(message.body)).encode(),
                    key=target.channel_id.encode(),
                )
            )
    return raws, programs


def forget_old(now: datetime) -> None:
    """Ticks no digest needs any more, and proposals answered long ago."""
    ChatTick.objects(occurred_at__lt=now - KEEP_TICKS).delete()
    ChatProposal.objects(open=False, updated_at__lt=now - KEEP_ANSWERED).delete()


# --- sending --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    post: ChatPost
    url: str


def claim_due(now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
    """Up to `limit` posts due by now, each moved to `now + lease` so no other process claims
    it meanwhile; those of deleted channels are cancelled instead."""
    return LOG.claim_due(now, limit, lease, _claims, _cancel)


def _claims(due: list[ChatPost]) -> list[Claimed | None]:
    channels = {
        (c.organization_id, c.channel_id): c
        for c in ChatChannel.objects(channel_id__in=sorted({p.channel_id for p in due}))
    }
    claims: list[Claimed | None] = []
    for post in due:
        found = channels.get((post.organization_id, post.channel_id))
        if found is None or found.deleted_at is not None:
            claims.append(None)
        else:
            claims.append(Claimed(post, found.webhook_url))
    return claims


def record_attempt(
    post: ChatPost, outcome: Outcome, now: datetime, settings: WebhookSettings
) -> domain.Next | None:
    """Store an attempt of a claimed post and where it goes next, by the webhooks' retry
    policy (None: it was cancelled meanwhile). A dead-lettered post keeps its event until its
    dead letter is sent."""
    return LOG.record_attempt(post, outcome, now, settings)


def dead_letters_unsent(limit: int) -> list[ChatPost]:
    return LOG.dead_letters_unsent(limit)


def dead_letter_sent(post: ChatPost) -> None:
    LOG.dead_letter_sent(post)
