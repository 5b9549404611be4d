"""What engagement keeps of each program (program-changed): the relationship timeframe and the
expected meeting cadence. They set a new relationship's expected end, the expected sessions of
its health score, and the default no-session nudge threshold.

program-changed carries the program whole with a version that grows by one per change; the
stored terms move only to a higher version, so a redelivered or overtaken event changes
nothing. Blocking: call through storage.run_sync.
"""

from __future__ import annotations

from dataclasses import dataclass

from mongoengine.errors import NotUniqueError

from services.common import clock
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.engagement.documents import ProgramTerms


@dataclass(frozen=True, slots=True)
class Terms:
    """0 = the program does not say (engagement's defaults apply)."""

    timeframe_months: int = 0
    meeting_cadence_days: int = 0


NO_TERMS = Terms()


def check(event: Event) -> str | None:
    """Why a program-changed event cannot be applied, or None."""
    if event.program_changed.version < 1:
        return "program_changed.version must be at least 1"
    return None


def apply_program_changed(event: Event) -> None:
    """Store the program's terms unless a later (or the same) version is stored already."""
    env, changed = event.envelope, event.program_changed
    values = {
        "timeframe_months": changed.settings.timeframe_months,
        "meeting_cadence_days": changed.settings.meeting_cadence_days,
        "version": changed.version,
        "updated_at": clock.now(),
    }
    moved = ProgramTerms.objects(
        organization_id=env.organization_id,
        program_id=env.program_id,
        version__lt=changed.version,
    ).update_one(**{f"set__{name}": value for name, value in values.items()})
    if moved:
        return
    try:
        ProgramTerms(organization_id=env.organization_id, program_id=env.program_id, **values).save(
            force_insert=True
        )
    except NotUniqueError:
        pass  # this version or a later one is stored: nothing to do


def terms_of(organization_id: str, program_id: str) -> Terms:
    doc = ProgramTerms.objects(organization_id=organization_id, program_id=program_id).first()
    if doc is None:
        return NO_TERMS
    return Terms(doc.timeframe_months or 0, doc.meeting_cadence_days or 0)


def all_terms() -> dict[tuple[str, str], Terms]:
    return {
        (t.organization_id, t.program_id): Terms(
            t.timeframe_months or 0, t.meeting_cadence_days or 0
        )
        for t in ProgramTerms.objects()
    }
