"""Mentee requests a mentor leaves unanswered expire, and the mentee's next choice is asked."""

from __future__ import annotations

import logging

from services.common import clock
from services.common.storage import run_sync
from services.matching import pool, releases
from services.matching.publication import Publication

log = logging.getLogger(__name__)


class RequestExpiry:
    """Expires overdue mentee requests; run every SCHEDULER_INTERVAL_SECONDS by a PeriodicTask.

    Each expiry is one transaction (releases.expire: the slot back, match-expired staged, the
    next choice proposed), delivered right after its commit; another worker that expired it
    first leaves this one nothing to do."""

    def __init__(self, publication: Publication) -> None:
        self._publication = publication

    async def expire_once(self) -> None:
        for overdue in await run_sync(pool.overdue_requests, clock.now()):
            committed = await run_sync(releases.expire, overdue.organization_id, overdue.match_id)
            await self._publication.deliver(committed)
