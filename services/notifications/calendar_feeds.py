"""Participants' calendar feeds: the token hashes that open them, and the calendar each one
reads, from the latest plan of every session of the participant (mail_store keeps it as
session-planned events arrive). Blocking: call through storage.run_sync."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.notifications import branding_store, compose, invitations, mail_store
from services.notifications.documents import CalendarFeed, Contact, PlannedSession

# The newest sessions a feed lists: a calendar needs what is coming and some history, and a
# participant with more than this in one program is far beyond any cadence.
MAX_SESSIONS = 500
FEED_NAME = "Mentoring sessions"


def create(organization_id: str, participant_id: str, token_hash: str, now: datetime) -> None:
    """The participant's feed opens with this token only: the one before stops working."""
    CalendarFeed.objects(organization_id=organization_id, participant_id=participant_id).update_one(
        upsert=True, set__token_hash=token_hash, set__created_at=now
    )


def revoke(organization_id: str, participant_id: str) -> bool:
    """Whether there was a feed."""
    found = CalendarFeed.objects(organization_id=organization_id, participant_id=participant_id)
    return bool(found.delete())


def owner(token_hash: str) -> tuple[str, str] | None:
    """Whose feed the token opens: (organisation, participant), or None."""
    feed = CalendarFeed.objects(token_hash=token_hash).only("organization_id", "participant_id")
    found = feed.first()
    return (found.organization_id, found.participant_id) if found is not None else None


def _data(plan: PlannedSession) -> dict[str, Any]:
    """The plan in a session message's shape, as compose.session_details reads it."""
    return {
        "session_id": plan.session_id,
        "mentor_id": plan.mentor_id,
        "mentee_id": plan.mentee_id,
        "starts_at": mail_store.aware(plan.starts_at).isoformat(),
        "minutes": str(plan.minutes),
        "mode": plan.mode,
        "topics": plan.topics,
    }


def calendar(token_hash: str, sender: str, portal_url: str, now: datetime) -> bytes | None:
    """The iCalendar the token opens, or None when it opens none (unknown, replaced, revoked,
    or its owner erased)."""
    found = owner(token_hash)
    if found is None:
        return None
    organization_id, participant_id = found
    me = Contact.objects(organization_id=organization_id, participant_id=participant_id).first()
    if me is not None and me.erased:
        return None
    plans = list(
        PlannedSession.objects(organization_id=organization_id, participant_ids=participant_id)
        .order_by("-starts_at")
        .limit(MAX_SESSIONS)
    )
    ids = [participant_id, *(p for plan in plans for p in plan.participant_ids)]
    contacts = mail_store.contacts(organization_id, ids)
    brand = compose.brand_of(organization_id, portal_url, branding_store.get(organization_id))
    entries = [
        invitations.FeedEntry(
            compose.session_details(organization_id, _data(plan), contacts, brand),
            sequence=plan.sequence,
            cancelled=plan.cancelled,
        )
        for plan in plans
    ]
    return invitations.feed(
        entries,
        feed_id=f"{organization_id}/{participant_id}",
        name=FEED_NAME,
        organizer=compose.organizer(brand, sender),
        time_zone=me.time_zone if me is not None else "UTC",
        stamp=now,
    )


def forget(organization_id: str, participant_id: str) -> None:
    """On erasure: the feed stops working."""
    revoke(organization_id, participant_id)
