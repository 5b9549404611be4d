"""Publishing what matching committed: every change's events reach Kafka once it is stored,
whatever crashes in between, and keep their ids however often they are sent.

Matching has two kinds of outbox rows. A proposal is its own: it is stored unpublished in the
transaction that reserves its pair (`Proposal.published`), and match-proposed is built from it.
Every other event (match-expired, matching-run-requested, matching-run-completed) is staged in
the shared outbox (services.common.outbox) in the transaction of the change it reports.

The writer publishes both right after its commit (`Publication.deliver`). A writer that dies
first leaves them, and the relay publishes them: every proposal left unpublished when a worker
starts (`relay_all`), and, every few seconds in every worker, whatever was left longer than
its writer needs (`relay_once`). Consumers drop a second copy by its event id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import Counter

from services.common import clock, metrics, outbox
from services.common.kafka import EventPublisher
from services.common.outbox import OutboxRelay
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import run_sync
from services.matching import pool
from services.matching.documents import Proposal
from services.matching.messages import proposed_event
from services.matching.proposed import Proposed

log = logging.getLogger(__name__)

PROPOSALS = Counter("matching_proposals_total", "Match proposals published.", ["origin"])

# A proposal unpublished for longer than this was left by its writer: the relay publishes it.
# Longer than the shared outbox's SETTLE_SECONDS, since a bulk run's writer stores a few
# hundred proposals in a transaction before it publishes them.
PROPOSAL_SETTLE_SECONDS = 30.0
RELAY_BATCH = 500


@dataclass
class Committed:
    """What committed changes left to publish: events staged in the outbox, and proposals."""

    events: list[Event] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)

    def add(self, other: Committed) -> None:
        self.events += other.events
        self.proposals += other.proposals


class Publication:
    """Publishes committed changes: the writer's right after its commit, and what writers left."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher
        self._outbox = OutboxRelay(publisher)

    async def deliver(self, committed: Committed) -> None:
        """Publish what a change just committed, and mark it sent. If this fails (or the
        process dies) it stays unsent and the relay publishes it."""
        await self._outbox.deliver(committed.events)
        await self.deliver_proposals(committed.proposals)

    async def deliver_proposals(self, proposals: Sequence[Proposal | Proposed]) -> None:
        if not proposals:
            return
        outbox.crash_point("outbox-committed")
        await self._publisher.publish([proposed_event(p) for p in proposals])
        outbox.crash_point("outbox-published")
        await self._published(proposals)

    async def relay_all(self) -> None:
        """Publish every proposal left unpublished: at start, for what this worker stored just
        before it died."""
        for organization_id, program_id in await run_sync(pool.programs_with_unpublished):
            pending = await run_sync(pool.unpublished, organization_id, program_id)
            if pending:
                await self._relay(pending)

    async def relay_once(self) -> None:
        """Publish what writers left unsent, events and proposals; a periodic task calls this."""
        await self._outbox.relay_once()
        settled = clock.now() - timedelta(seconds=PROPOSAL_SETTLE_SECONDS)
        while pending := await run_sync(pool.unpublished_since, settled, RELAY_BATCH):
            await self._relay(pending)
            if len(pending) < RELAY_BATCH:
                return

    async def _relay(self, proposals: Sequence[Proposal | Proposed]) -> None:
        await self._publisher.publish([proposed_event(p) for p in proposals])
        await self._published(proposals)
        metrics.OUTBOX_RELAYED.labels("match-proposed").inc(len(proposals))
        log.warning("relayed %d proposals their writer left unpublished", len(proposals))

    async def _published(self, proposals: Sequence[Proposal | Proposed]) -> None:
        await run_sync(pool.mark_published, [p.pk for p in proposals])
        for p in proposals:
            PROPOSALS.labels(p.origin).inc()
