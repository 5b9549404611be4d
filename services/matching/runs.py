"""Bulk runs as every matching worker sees them.

A run executes on the worker that owns the program, which may not be the one a coordinator
asked. Every worker therefore reads all of matching-run-completed into its own database
(a BroadcastReader), so GetMatchingRun answers anywhere.
"""

from __future__ import annotations

from services.common import clock, outbox, storage
from services.common.config import Settings
from services.common.kafka import BroadcastReader
from services.common.pb.mentoring.v1.events_pb2 import (
    Event,
    MatchingRunCompleted,
    MatchingRunRequested,
)
from services.common.storage import Transaction, run_sync
from services.matching.documents import MatchingRun
from services.matching.messages import run_completed_event, run_requested_event


def queue(
    organization_id: str, program_id: str, request: MatchingRunRequested
) -> tuple[MatchingRun, Event]:
    """Record a run as queued and stage its request (matching-run-requested, which the worker
    owning the program reads), in one transaction: a run is never queued with no request on
    its way. Returns the run and the event to deliver."""
    event = run_requested_event(organization_id, program_id, request)
    keys = {"organization_id": organization_id, "run_id": request.run_id}

    def work(tx: Transaction) -> MatchingRun:
        tx.update(
            MatchingRun,
            keys,
            upsert=True,
            set_on_insert__program_id=program_id,
            set_on_insert__status="queued",
            set_on_insert__requested_at=clock.now(),
        )
        outbox.stage(tx, [event])
        queued: MatchingRun = tx.find(MatchingRun, **keys)
        return queued

    return storage.atomic(work), event


def finish(organization_id: str, program_id: str, result: MatchingRunCompleted) -> Event:
    """Record a run's result and stage matching-run-completed, in one transaction; returns the
    event to deliver. A run retried after it got this far (its worker died before recording the
    request as handled) reports what its first attempt recorded, under the same event id."""
    keys = {"organization_id": organization_id, "run_id": result.run_id}

    def work(tx: Transaction) -> Event:
        run = tx.find(MatchingRun, **keys)
        reported = result
        if run is not None and run.status != "queued" and run.result:
            reported = MatchingRunCompleted.FromString(run.result)
        else:
            tx.update(
                MatchingRun,
                keys,
                upsert=True,
                set_on_insert__program_id=program_id,
                set_on_insert__requested_at=clock.now(),
                set__status="failed" if result.error else "completed",
                set__result=result.SerializeToString(),
            )
        event = run_completed_event(organization_id, program_id, reported)
        outbox.stage(tx, [event])
        return event

    return storage.atomic(work)


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
