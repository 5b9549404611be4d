"""Reporting lines from the organisation's HR systems (hr-events), for the reporting-line rule.

Every matching worker needs every reporting line of the organisation, whichever programs it
owns, so each reads all of hr-events into its own database.
"""

from __future__ import annotations

from services.common.config import Settings
from services.common.kafka import BroadcastReader
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import run_sync
from services.matching import pool


def apply_hr_event(event: Event) -> None:
    change = event.hr_event
    organization_id = event.envelope.organization_id
    if not change.hr_person_id:
        return
    kind = change.WhichOneof("change")
    if kind == "hired" and change.hired.manager_id:
        pool.set_manager(organization_id, change.hr_person_id, change.hired.manager_id)
    elif kind == "manager_changed" and change.manager_changed.manager_id:
        pool.set_manager(organization_id, change.hr_person_id, change.manager_changed.manager_id)


async def _apply(event: Event) -> None:
    await run_sync(apply_hr_event, event)


def hr_events_reader(settings: Settings) -> BroadcastReader:
    return BroadcastReader(settings, "hr-events", _apply, name="matching-hr")
