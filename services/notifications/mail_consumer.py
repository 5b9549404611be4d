"""The notifications consumer of messages to people: contacts from the participant topics, and
a message per recipient of each event that deserves one (notices.py), queued by the recipient's
preferences; then it wakes the mail sender."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from services.common import clock
from services.common.kafka import Delivered, Rejected
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import run_sync
from services.notifications import calendar_feeds, mail_store, notices, unsubscribes
from services.notifications.metrics import count_message

# What it reads of the events the service's one consumer group hands it (__main__.both).
CONTACT_TOPICS = ("participant-registered", "participant-updated", "participant-erased")
TOPICS = (*CONTACT_TOPICS, *notices.TOPICS)
# Metric outcomes of what enqueue decided.
_QUEUED = {
    mail_store.PENDING: "queued",
    mail_store.SUPPRESSED: "suppressed",
    mail_store.DIGEST: "digest",
    mail_store.CANCELLED: "cancelled",
}


class MailConsumer:
    """Ignores the events that are neither contacts nor reasons to write (notices.notices)."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    async def handle(self, batch: list[Delivered]) -> list[Rejected]:
        # Contacts first: a batch holds several topics' partitions in no particular order, and
        # a participant registered in it is the recipient, or the partner named, of its
        # messages. (One who arrives later still gets them: the sender retries.)
        saved: list[Event] = []
        for item in batch:
            kind = item.event.WhichOneof("payload")
            if kind in ("participant_registered", "participant_updated"):
                saved.append(item.event)
            elif kind == "participant_erased":
                await run_sync(mail_store.save_contacts, saved, clock.now())
                saved = []
                await self._erase(item.event)
        await run_sync(mail_store.save_contacts, saved, clock.now())
        queued = [
            mail_store.Queued(
                item.event,
                notice,
                item.record.partition,
                item.record.offset,
                item.record.key or b"",
            )
            for item in batch
            for notice in notices.notices(item.event)
        ]
        await self._flush(queued)
        return []

    async def _erase(self, event: Event) -> None:
        org = event.envelope.organization_id
        erased = event.participant_erased.participant_id
        await run_sync(mail_store.erase_contact, org, erased, clock.now())
        # Their calendar feed and unsubscribe links stop working.
        await run_sync(calendar_feeds.forget, org, erased)
        await run_sync(unsubscribes.forget, org, erased)

    async def _flush(self, run: list[mail_store.Queued]) -> None:
        if not run:
            return
        statuses = await run_sync(mail_store.enqueue, run, clock.now())
        for status, amount in Counter(statuses).items():
            count_message(_QUEUED[status], amount)
        if mail_store.PENDING in statuses:
            self._wake()
