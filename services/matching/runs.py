"""Bulk runs as every matching worker sees them.

A run executes on the worker that owns the program, which may not be the one a coordinator
asked. Every worker therefore reads all of matching-run-completed into its own database
(a BroadcastReader), so GetMatchingRun answers anywhere.
"""

from __future__ import annotations

from services.common import clock
from services.common.config import Settings
from services.common.kafka import BroadcastReader
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import run_sync
from services.matching.documents import MatchingRun


def record_queued(organization_id: str, program_id: str, run_id: str) -> MatchingRun:
    MatchingRun.objects(organization_id=organization_id, run_id=run_id).update_one(
        upsert=True,
        set_on_insert__program_id=program_id,
        set_on_insert__status="queued",
        set_on_insert__requested_at=clock.now(),
    )
    return MatchingRun.objects(organization_id=organization_id, run_id=run_id).get()


def record_completed(event: Event) -> None:
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


async def _record(event: Event) -> None:
    await run_sync(record_completed, event)


def run_results_reader(settings: Settings) -> BroadcastReader:
    return BroadcastReader(settings, "matching-run-completed", _record, name="matching-runs")
