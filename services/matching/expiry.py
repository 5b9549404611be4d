"""Mentee requests a mentor leaves unanswered expire, and the mentee's next choice is asked."""

from __future__ import annotations

import logging

from services.common import clock
from services.common.kafka import EventPublisher
from services.common.storage import run_sync
from services.matching import pool
from services.matching.documents import Proposal
from services.matching.messages import expired_event
from services.matching.requests import ask_next_choice
from services.matching.worker import MatchingWorker

log = logging.getLogger(__name__)


def _expire_overdue() -> list[Proposal]:
    expired = []
    for overdue in pool.overdue_requests(clock.now()):
        released = pool.release(overdue.organization_id, overdue.match_id, "expired")
        if released is not None:  # another worker may have expired it first
            ask_next_choice(released)
            expired.append(released)
    return expired


class RequestExpiry:
    """Expires overdue mentee requests; run every SCHEDULER_INTERVAL_SECONDS by a PeriodicTask."""

    def __init__(self, publisher: EventPublisher, worker: MatchingWorker) -> None:
        self._publisher = publisher
        self._worker = worker

    async def expire_once(self) -> None:
        for p in await run_sync(_expire_overdue):
            await self._publisher.publish([expired_event(p)])
            await self._worker.publish_pending(p.organization_id, p.program_id)
