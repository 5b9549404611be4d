"""Contacts, preferences and the messages to people. Blocking: call through storage.run_sync.

Every query names the organisation, or works on messages the organisation's own events queued
for its own participants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common import storage
from services.common.config import MailSettings
from services.common.pb.mentoring.v1 import common_pb2
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.notifications import delivery_log, domain, notices, preferences
from services.notifications.documents import Contact, Message, PlannedSession, Preferences
from services.notifications.outcomes import Outcome

PENDING = domain.PENDING
DELIVERED = domain.DELIVERED
DEAD_LETTERED = domain.DEAD_LETTERED
SUPPRESSED = "suppressed"
DIGEST = "digest"
DIGESTED = "digested"
CANCELLED = domain.CANCELLED
ROLES = {common_pb2.ROLE_MENTOR: "mentor", common_pb2.ROLE_MENTEE: "mentee"}
# A final message lets go of the values and the event it was made from.
LOG = delivery_log.DeliveryLog(
    Message, released={"set__data": {}, "unset__event": True, "unset__key": True}
)


def aware(moment: datetime) -> datetime:
    """The database hands back naive UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- contacts -------------------------------------------------------------------------------


def save_contacts(events: Sequence[Event], now: datetime) -> None:
    """From participant-registered and participant-updated, in order, in one round trip (an
    import brings thousands at once); an erased contact stays erased."""

    def work(tx: storage.Transaction) -> None:
        people = [
            (e.envelope.organization_id, getattr(e, e.WhichOneof("payload") or "")) for e in events
        ]
        erased = set()
        for org in {org for org, _ in people}:
            ids = sorted({p.participant_id for o, p in people if o == org})
            found = tx.find_all(Contact, organization_id=org, participant_id__in=ids, erased=True)
            erased |= {(org, c.participant_id) for c in found}
        changes = [
            (
                {"organization_id": org, "participant_id": person.participant_id},
                _contact_fields(event.envelope.program_id, person, now),
            )
            for event, (org, person) in zip(events, people, strict=True)
            if (org, person.participant_id) not in erased
        ]
        tx.update_each(Contact, changes, upsert=True)

    if events:
        storage.atomic(work)


def _contact_fields(program_id: str, person: Any, now: datetime) -> dict[str, Any]:
    profile = person.profile
    return {
        "set__program_id": program_id,
        "set__role": ROLES.get(person.role, ""),
        "set__name": person.display_name,
        "set__email": person.email,
        "set__cohort_id": profile.cohort_id,
        "set__language": (profile.languages[0] if profile.languages else "en"),
        "set__time_zone": profile.timezone or "UTC",
        "set__updated_at": now,
    }


def erase_contact(organization_id: str, participant_id: str, now: datetime) -> int:
    """Pseudonymise the contact and the person's delivery log: no name, address, values or
    server answer (which may quote the address) stays; ids, templates and statuses do. What
    was still to be sent is cancelled. How many messages were touched."""
    Contact.objects(organization_id=organization_id, participant_id=participant_id).update_one(
        upsert=True,
        set__name="",
        set__email="",
        set__erased=True,
        set__updated_at=now,
    )
    mine = Message.objects(organization_id=organization_id, participant_id=participant_id)
    mine.filter(status__in=[PENDING, DIGEST]).update(
        set__status=CANCELLED,
        set__last_error="the participant was erased",
        unset__next_attempt_at=True,
        unset__digest_due=True,
    )
    return int(
        mine.update(
            set__address="",
            set__data={},
            unset__event=True,
            unset__key=True,
            set__last_error="",
        )
    )


def contacts(organization_id: str, ids: Sequence[str]) -> dict[str, Contact]:
    found = Contact.objects(organization_id=organization_id, participant_id__in=sorted(set(ids)))
    return {c.participant_id: c for c in found}


# --- preferences ----------------------------------------------------------------------------


def rules_of(doc: Preferences | None) -> preferences.Rules:
    if doc is None:
        return preferences.Rules()
    return preferences.Rules(
        disabled=frozenset(doc.disabled),
        daily_digest=doc.daily_digest,
        quiet_start=doc.quiet_start,
        quiet_end=doc.quiet_end,
        time_zone=doc.time_zone,
    )


def get_preferences(organization_id: str, participant_id: str) -> Preferences | None:
    found: Preferences | None = Preferences.objects(
        organization_id=organization_id, participant_id=participant_id
    ).first()
    return found


def set_preferences(
    organization_id: str, participant_id: str, rules: preferences.Rules, now: datetime
) -> Preferences:
    Preferences.objects(organization_id=organization_id, participant_id=participant_id).update_one(
        upsert=True,
        set__disabled=sorted(rules.disabled),
        set__daily_digest=rules.daily_digest,
        set__quiet_start=rules.quiet_start,
        set__quiet_end=rules.quiet_end,
        set__time_zone=rules.time_zone,
        set__updated_at=now,
    )
    found = get_preferences(organization_id, participant_id)
    assert found is not None
    return found


# --- queueing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Queued:
    """A notice of a consumed event, and where the event was consumed (for its dead letter)."""

    event: Event
    notice: notices.Notice
    partition: int = 0
    offset: int = 0
    key: bytes = b""


def _plan(data: dict[str, str], cancelled: bool) -> dict[str, Any]:
    """The rest of a session's plan, for its members' calendar feeds (calendar_feeds.py)."""
    members = [data.get("mentor_id", ""), data.get("mentee_id", "")]
    return {
        "mentor_id": members[0],
        "mentee_id": members[1],
        "participant_ids": [m for m in members if m],
        "minutes": int(data.get("minutes") or 0),
        "mode": data.get("mode", ""),
        "topics": data.get("topics", ""),
        "cancelled": cancelled,
    }


def _previous_start(organization_id: str, data: dict[str, str], cancelled: bool = False) -> str:
    """Record a session's plan; the start it had before this change ("" if none known). A
    replayed change finds its own plan stored and answers the same."""
    sequence = int(data.get("sequence") or 0)
    starts_at = datetime.fromisoformat(data["starts_at"])
    found = PlannedSession._get_collection().find_one(
        {"organization_id": organization_id, "session_id": data["session_id"]}
    )
    if found is not None and found.get("sequence", 0) >= sequence:
        return str(found.get("previous", "")) if found.get("sequence") == sequence else ""
    previous = aware(found["starts_at"]).isoformat() if found is not None else ""
    PlannedSession._get_collection().update_one(
        {"organization_id": organization_id, "session_id": data["session_id"]},
        {
            "$set": {
                "starts_at": starts_at,
                "sequence": sequence,
                "previous": previous,
                **_plan(data, cancelled),
            }
        },
        upsert=True,
    )
    return previous


def enqueue(items: Sequence[Queued], now: datetime, channel: str = preferences.EMAIL) -> list[str]:
    """A message per notice, decided by its recipient's preferences: pending (due now or at the
    end of their quiet hours), waiting for their digest, suppressed, or cancelled for an erased
    recipient. A notice queued before adds nothing. The statuses of those added."""
    if not items:
        return []
    raws = []
    for item in items:
        env = item.event.envelope
        notice = item.notice
        org = env.organization_id
        contact = contacts(org, [notice.participant_id]).get(notice.participant_id)
        rules = rules_of(get_preferences(org, notice.participant_id))
        data = dict(notice.data)
        if "session_id" in data and notice.template == "session-moved":
            data["previous_starts_at"] = _previous_start(org, data) or data["starts_at"]
        elif "session_id" in data:
            _previous_start(org, data, cancelled=notice.template == "session-cancelled")
        decision = preferences.decide(
            rules, notice.category, channel, now, contact.time_zone if contact else "UTC"
        )
        message_id = notices.message_id(env.event_id, notice.participant_id, channel)
        fields: dict[str, Any] = {}
        if contact is not None and contact.erased:
            fields = {"status": CANCELLED, "last_error": "the participant was erased"}
        elif decision.kind is preferences.Kind.SUPPRESS:
            fields = {"status": SUPPRESSED}
        elif decision.kind is preferences.Kind.DIGEST:
            fields = {"status": DIGEST, "digest_due": decision.at, "data": data}
        else:
            fields = {"status": PENDING, "next_attempt_at": decision.at, "data": data}
        if fields["status"] in (PENDING, DIGEST):
            fields.update(
                event=item.event.SerializeToString(),
                partition=item.partition,
                offset=item.offset,
                key=item.key,
            )
        document = Message(
            organization_id=org,
            program_id=env.program_id,
            participant_id=notice.participant_id,
            channel=channel,
            category=notice.category,
            template=notice.template,
            message_id=message_id,
            event_id=env.event_id,
            event_type=env.event_type.replace("_", "-"),
            order_key=domain.order_key(now, message_id),
            created_at=now,
            **fields,
        )
        document.validate()
        raws.append(document.to_mongo().to_dict())
    skipped = storage.insert_new(Message, raws)
    return [raw["status"] for index, raw in enumerate(raws) if index not in skipped]


# --- digests --------------------------------------------------------------------------------


def collect_digests(now: datetime, limit: int = 100) -> int:
    """Each recipient's messages waiting for a digest due by now become one pending
    daily-digest message. The digest's id comes from the recipient and due time, so a crash
    halfway makes the same digest again; a message that arrived for a digest already made
    waits for the next day's. How many digests were made."""
    waiting = list(
        Message.objects(status=DIGEST, digest_due__lte=now)
        .only("organization_id", "program_id", "participant_id", "message_id", "digest_due")
        .order_by("digest_due")
        .limit(limit * 20)
    )
    groups: dict[tuple[str, str, datetime], list[Message]] = {}
    for message in waiting:
        due = aware(message.digest_due)
        groups.setdefault((message.organization_id, message.participant_id, due), []).append(
            message
        )
    made = 0
    for (org, participant_id, due), members in list(groups.items())[:limit]:
        digest_id = notices.digest_id(org, participant_id, due.isoformat())
        document = Message(
            organization_id=org,
            program_id=members[0].program_id,
            participant_id=participant_id,
            channel=preferences.EMAIL,
            category="digest",
            template=notices.DIGEST,
            message_id=digest_id,
            order_key=domain.order_key(now, digest_id),
            status=PENDING,
            created_at=now,
            next_attempt_at=now,
            items=[m.message_id for m in members],
        )
        if not storage.insert_new(Message, [document.to_mongo().to_dict()]):
            made += 1
        stored = Message.objects(message_id=digest_id).only("items").first()
        carried = list(stored.items) if stored is not None else []
        Message.objects(message_id__in=carried, status=DIGEST).update(
            set__status=DIGESTED, set__digest_id=digest_id, unset__digest_due=True
        )
        late = [m.message_id for m in members if m.message_id not in carried]
        if late:
            Message.objects(message_id__in=late, status=DIGEST).update(
                set__digest_due=due + timedelta(days=1)
            )
    return made


def digest_items(digest: Message) -> list[Message]:
    return list(
        Message.objects(
            organization_id=digest.organization_id, message_id__in=list(digest.items)
        ).order_by("order_key")
    )


def finish_digested(digest: Message, now: datetime) -> None:
    """The digest is sent: its messages let go of their values."""
    Message.objects(
        organization_id=digest.organization_id, message_id__in=list(digest.items)
    ).update(set__data={}, unset__event=True, unset__key=True, set__delivered_at=now)


# --- sending --------------------------------------------------------------------------------


def claim_due(now: datetime, limit: int, lease: timedelta) -> list[Message]:
    """Up to `limit` messages due by now, each moved to `now + lease` so no other process
    claims it meanwhile (as webhooks' store.claim_due)."""
    return LOG.claim_due(now, limit, lease)


def record_attempt(
    message: Message, outcome: Outcome, address: str, now: datetime, settings: MailSettings
) -> domain.Next | None:
    """Store an attempt of a claimed message and where it goes next (None: it was cancelled
    meanwhile, by an erasure). A dead-lettered message keeps its event until its dead letter is
    sent (dead_letters_unsent)."""
    return LOG.record_attempt(message, outcome, now, settings, {"set__address": address})


def dead_letters_unsent(limit: int) -> list[Message]:
    return LOG.dead_letters_unsent(limit)


def dead_letter_sent(message: Message) -> None:
    LOG.dead_letter_sent(message)


def list_messages(
    organization_id: str, participant_id: str, size: int, before: str | None
) -> list[Message]:
    """A participant's log, newest first."""
    query = Message.objects(organization_id=organization_id, participant_id=participant_id)
    if before:
        query = query.filter(order_key__lt=before)
    return list(query.order_by("-order_key").exclude("event", "key", "data").limit(size))
