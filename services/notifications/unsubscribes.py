"""One-click unsubscribe (RFC 8058): each e-mail's link, and what following it does (turns the
mail's categories off on e-mail in the recipient's preferences). Blocking: call through
storage.run_sync.

A link per e-mail rather than per person: only the token's hash is stored, so a token cannot be
handed out twice, and a new random one costs one small row per message sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.notifications import preferences
from services.notifications.documents import Contact, Preferences, UnsubscribeLink


@dataclass(frozen=True, slots=True)
class Target:
    """Whom a link unsubscribes, and from what."""

    organization_id: str
    participant_id: str
    categories: tuple[str, ...]


def create(
    organization_id: str,
    participant_id: str,
    categories: Sequence[str],
    token_hash: str,
    now: datetime,
) -> None:
    UnsubscribeLink(
        organization_id=organization_id,
        participant_id=participant_id,
        categories=sorted(set(categories)),
        token_hash=token_hash,
        created_at=now,
    ).save(force_insert=True)


def target(token_hash: str) -> Target | None:
    """What the token unsubscribes from, or None when it is unknown or its owner was erased."""
    link = UnsubscribeLink.objects(token_hash=token_hash).first()
    if link is None:
        return None
    erased = Contact.objects(
        organization_id=link.organization_id, participant_id=link.participant_id, erased=True
    ).first()
    if erased is not None:
        return None
    return Target(link.organization_id, link.participant_id, tuple(link.categories))


def apply(token_hash: str, now: datetime) -> Target | None:
    """Turn the link's categories off on e-mail, keeping every other preference; None when
    the token opens nothing. Following a link again changes nothing more."""
    found = target(token_hash)
    if found is None:
        return None
    keys = [preferences.key(c, preferences.EMAIL) for c in found.categories]
    Preferences.objects(
        organization_id=found.organization_id, participant_id=found.participant_id
    ).update_one(upsert=True, add_to_set__disabled=keys, set__updated_at=now)
    return found


def forget(organization_id: str, participant_id: str) -> None:
    """On erasure: the person's links stop working."""
    UnsubscribeLink.objects(organization_id=organization_id, participant_id=participant_id).delete()
