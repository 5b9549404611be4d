"""KPI arithmetic: how each event moves a program's counters. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping

from services.common.pb.mentoring.v1.common_pb2 import (
    MATCH_STATUS_ACCEPTED,
    MATCH_STATUS_DECLINED,
    ROLE_MENTEE,
    ROLE_MENTOR,
)
from services.common.pb.mentoring.v1.events_pb2 import Event

COUNTERS: tuple[str, ...] = (
    "mentors",
    "mentees",
    "matches_proposed",
    "matches_accepted",
    "matches_declined",
    "matches_expired",
    "active_relationships",
    "relationships_completed",
    "relationships_closed_early",
    "sessions",
    "session_minutes",
    "matching_runs",
    "events",
)


def empty() -> dict[str, int]:
    return dict.fromkeys(COUNTERS, 0)


def apply(kpis: Mapping[str, int], event: Event) -> dict[str, int]:
    """The program's counters after one event; unknown event types only count as events."""
    out = {**empty(), **kpis}
    out["events"] += 1
    kind = event.WhichOneof("payload")
    if kind == "participant_registered":
        role = event.participant_registered.role
        if role == ROLE_MENTOR:
            out["mentors"] += 1
        elif role == ROLE_MENTEE:
            out["mentees"] += 1
    elif kind == "match_proposed":
        out["matches_proposed"] += 1
    elif kind == "match_responded":
        status = event.match_responded.status
        if status == MATCH_STATUS_ACCEPTED:
            out["matches_accepted"] += 1
        elif status == MATCH_STATUS_DECLINED:
            out["matches_declined"] += 1
    elif kind == "relationship_started":
        out["active_relationships"] += 1
    elif kind == "session_logged":
        out["sessions"] += 1
        out["session_minutes"] += event.session_logged.minutes
    elif kind == "relationship_ended":
        out["active_relationships"] = max(0, out["active_relationships"] - 1)
        ended = (
            "relationships_completed"
            if event.relationship_ended.completed
            else "relationships_closed_early"
        )
        out[ended] += 1
    elif kind == "match_expired":
        out["matches_expired"] += 1
    elif kind == "matching_run_completed":
        out["matching_runs"] += 1
    return out
