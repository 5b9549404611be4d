"""Bulk runs as every matching worker sees them.

A run executes on the worker that owns the program, which may not be the one a coordinator
asked. Every worker therefore reads all of matching-run-completed (no consumer group: each
reads every partition) into its own database, so GetMatchingRun answers anywhere.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer

from services.common import clock
from services.common.api import events_pb2
from services.common.config import Settings
from services.common.events import EventDecodeError, decode_event
from services.common.storage import run_sync
from services.matching.documents import MatchingRun

log = logging.getLogger(__name__)
TOPIC = "matching-run-completed"


def record_queued(organization_id: str, program_id: str, run_id: str) -> MatchingRun:
    MatchingRun.objects(organization_id=organization_id, run_id=run_id).update_one(
        upsert=True,
        set_on_insert__program_id=program_id,
        set_on_insert__status="queued",
        set_on_insert__requested_at=clock.now(),
    )
    return MatchingRun.objects(organization_id=organization_id, run_id=run_id).get()


def record_completed(event: events_pb2.Event) -> None:
    env, result = event.envelope, event.matching_run_completed
    MatchingRun.objects(organization_id=env.organization_id, run_id=result.run_id).update_one(
        upsert=True,
        set_on_insert__program_id=env.program_id,
        set_on_insert__requested_at=env.occurred_at.ToDatetime(),
        set__status="failed" if result.error else "completed",
        set__result=result.SerializeToString(),
    )


def get_run(organization_id: str, run_id: str) -> MatchingRun | None:
    return MatchingRun.objects(organization_id=organization_id, run_id=run_id).first()


class RunResultsReader:
    """Materialises matching-run-completed into this worker's database."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = AIOKafkaConsumer(
            TOPIC,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="run-results")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _run(self) -> None:
        async for record in self._consumer:
            try:
                event = decode_event(record.value, record.topic)
            except EventDecodeError as exc:
                # The owning group dead-letters it (analytics reads this topic too); skip here.
                log.warning("skipping undecodable run result at offset %d: %s", record.offset, exc)
                continue
            await run_sync(record_completed, event)
