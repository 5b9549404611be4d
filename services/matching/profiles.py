"""Turning stored pool members into the engine's Person: profile fields resolved and typed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.common import clock
from services.common.api import common_pb2
from services.matching.documents import PoolMember
from services.matching.domain.model import Person, Slot
from services.matching.domain.taxonomy import Taxonomy

MINUTES_PER_DAY = 24 * 60


@lru_cache(maxsize=1024)
def _offset_minutes(timezone: str, day: str) -> int | None:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    offset = datetime.fromisoformat(day).replace(tzinfo=zone).utcoffset()
    return None if offset is None else int(offset.total_seconds() // 60)


def utc_offset_minutes(timezone: str, at: datetime | None = None) -> int | None:
    """The zone's current UTC offset (daylight saving included); None if unknown."""
    if not timezone:
        return None
    return _offset_minutes(timezone, (at or clock.now()).date().isoformat())


def weekly_slots(slots: list[common_pb2.AvailabilitySlot]) -> tuple[Slot, ...]:
    return tuple(
        Slot(
            (s.weekday - 1) * MINUTES_PER_DAY + s.start_minute,
            (s.weekday - 1) * MINUTES_PER_DAY + s.end_minute,
        )
        for s in slots
    )


def profile_of(member: PoolMember) -> common_pb2.Profile:
    return common_pb2.Profile.FromString(member.profile or b"")


def person(member: PoolMember, taxonomy: Taxonomy) -> Person:
    return _person(
        member.participant_id,
        member.role,
        member.skills,
        member.profile,
        member.cohort_id,
        member.free_slots,
        taxonomy,
    )


# The fields of a stored pool member a Person is made of (stored_person).
PERSON_FIELDS = ("participant_id", "role", "skills", "profile", "cohort_id", "free_slots")


def stored_person(raw: Mapping[str, Any], taxonomy: Taxonomy) -> Person:
    """`person` from a pool member as stored (PERSON_FIELDS at least): a bulk run reads a
    whole program, where building its mongoengine documents would take longer than reading."""
    return _person(
        raw["participant_id"],
        raw["role"],
        raw.get("skills") or (),
        raw.get("profile") or b"",
        raw.get("cohort_id") or "",
        raw.get("free_slots") or 0,
        taxonomy,
    )


def _person(
    participant_id: str,
    role: str,
    skills: Iterable[str],
    serialized: bytes,
    cohort_id: str,
    free_slots: int,
    taxonomy: Taxonomy,
) -> Person:
    profile = common_pb2.Profile.FromString(serialized or b"")
    demographics = profile.demographics
    return Person(
        participant_id=participant_id,
        role=role,
        skills=tuple(dict.fromkeys(taxonomy.canonical(s) for s in skills)),
        hr_person_id=profile.hr_person_id,
        manager_id=profile.manager_id,
        department=profile.department,
        location=profile.location,
        utc_offset_minutes=utc_offset_minutes(profile.timezone),
        languages=frozenset(profile.languages),
        job_level=profile.job_level,
        goals=frozenset(g.lower() for g in profile.goals),
        availability=weekly_slots(list(profile.availability)),
        gender=demographics.gender if demographics.use_for_matching else "",
        cultural_background=(
            demographics.cultural_background if demographics.use_for_matching else ""
        ),
        demographic_opt_in=demographics.use_for_matching,
        preferred_mentors=tuple(profile.preferred_mentor_ids),
        group=cohort_id,
        # Negative after a capacity cut below the live proposals: no slot either way.
        free_slots=max(0, free_slots),
    )
