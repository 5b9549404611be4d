"""The matching worker: consumes registrations and responses, publishes match proposals.

Workers form one consumer group; since every topic is keyed by program, each worker owns
whole programs, and adding a worker splits the programs between them.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Histogram

from services.common import idempotency
from services.common.api import common_pb2, events_pb2
from services.common.events import new_event
from services.common.kafka import Delivered, EventPublisher, Rejected
from services.common.storage import run_sync
from services.matching import pool
from services.matching.documents import Proposal

log = logging.getLogger(__name__)

GROUP = "matching"
TOPICS = ("participant-registered", "match-responded")

PROPOSALS = Counter("matching_proposals_total", "Match proposals published.")
RUN_SECONDS = Histogram(
    "matching_run_seconds", "Time to plan and store proposals for one program after new events."
)

_ROLES = {common_pb2.ROLE_MENTOR: "mentor", common_pb2.ROLE_MENTEE: "mentee"}


def proposed_event(p: Proposal) -> events_pb2.Event:
    return new_event(
        producer="matching",
        organization_id=p.organization_id,
        program_id=p.program_id,
        event_id=p.event_id,
        occurred_at=p.created_at,
        payload=events_pb2.MatchProposed(
            match_id=p.match_id,
            mentor_id=p.mentor_id,
            mentee_id=p.mentee_id,
            score=p.score,
            breakdown=[
                common_pb2.CriterionScore(
                    criterion=c.criterion, score=c.score, weight=c.weight, detail=c.detail
                )
                for c in p.breakdown
            ],
        ),
    )


def _check(event: events_pb2.Event) -> str | None:
    """Why the event cannot be applied, or None."""
    if event.HasField("participant_registered"):
        reg = event.participant_registered
        if not reg.participant_id:
            return "participant_registered.participant_id is missing"
        if reg.role not in _ROLES:
            return "participant_registered.role must be mentor or mentee"
        if reg.role == common_pb2.ROLE_MENTOR and reg.capacity == 0:
            return "participant_registered.capacity must be at least 1 for a mentor"
    elif event.HasField("match_responded") and not event.match_responded.match_id:
        return "match_responded.match_id is missing"
    return None


def _apply(events: list[events_pb2.Event]) -> set[tuple[str, str]]:
    """Apply events to the pools; return the programs whose pool changed."""
    fresh = idempotency.unprocessed(events, GROUP)
    touched: set[tuple[str, str]] = set()
    for event in fresh:
        env = event.envelope
        program = (env.organization_id, env.program_id)
        if event.HasField("participant_registered"):
            reg = event.participant_registered
            pool.add_member(
                env.organization_id,
                env.program_id,
                reg.participant_id,
                _ROLES[reg.role],
                reg.display_name,
                list(reg.skills),
                reg.capacity,
            )
            touched.add(program)
        elif event.HasField("match_responded"):
            response = event.match_responded
            if response.status == common_pb2.MATCH_STATUS_DECLINED:
                pool.decline(env.organization_id, env.program_id, response.match_id)
                touched.add(program)
            elif response.status == common_pb2.MATCH_STATUS_ACCEPTED:
                pool.accept(env.organization_id, response.match_id)
    idempotency.mark_processed(fresh, GROUP)
    return touched


class MatchingWorker:
    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def start(self) -> None:
        # Proposals stored just before a crash were never published: publish them now.
        for organization_id, program_id in await run_sync(pool.programs_with_unpublished):
            await self._publish_pending(organization_id, program_id)

    async def stop(self) -> None:
        pass

    async def handle(self, batch: list[Delivered]) -> list[Rejected]:
        rejected: list[Rejected] = []
        valid: list[events_pb2.Event] = []
        for item in batch:
            reason = _check(item.event)
            if reason:
                rejected.append(Rejected(item, reason))
            else:
                valid.append(item.event)
        touched = await run_sync(_apply, valid)
        for organization_id, program_id in sorted(touched):
            started = time.perf_counter()
            await run_sync(pool.propose, organization_id, program_id)
            RUN_SECONDS.observe(time.perf_counter() - started)
            await self._publish_pending(organization_id, program_id)
        return rejected

    async def _publish_pending(self, organization_id: str, program_id: str) -> None:
        pending = await run_sync(pool.unpublished, organization_id, program_id)
        if pending:
            await self._publisher.publish([proposed_event(p) for p in pending])
            await run_sync(pool.mark_published, [p.pk for p in pending])
            PROPOSALS.inc(len(pending))
            log.info("proposed %d matches in %s/%s", len(pending), organization_id, program_id)
