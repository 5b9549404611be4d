"""A program's analytics state, and how each event moves it. Pure: no I/O.

The state is a mapping of JSON-friendly values (stored sharded, see sharded.py):
- `days`: per `<cohort>|<UTC day>`, the flow counters (what happened that day);
- `people` and `relationships`: the little per-entity memory that stock figures need (who is
  enrolled and matched, skills, last contact, latest rating);
- `goals` and `applicants`: enough to count each goal and application once;
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from services.common.pb.mentoring.v1.common_pb2 import (
    MATCH_STATUS_ACCEPTED,
    MATCH_STATUS_DECLINED,
    ROLE_MENTEE,
    ROLE_MENTOR,
)
from services.common.pb.mentoring.v1.events_pb2 import (
    GOAL_STATUS_ACHIEVED,
    SCREENING_DECISION_REJECTED,
    SCREENING_DECISION_WAITLISTED,
    Event,
)

# A plain dict, or the working view of a sharded state.
State = MutableMapping[str, Any]

DAY_SECONDS = 86_400
DEFAULT_CADENCE_DAYS = 14
# Index of each field in a person's and a relationship's list (lists keep the state small).
P_ROLE, P_COHORT, P_APPROVED_AT, P_ACTIVE, P_MATCHED_AT, P_TRAINED, P_SKILLS, P_CAPACITY = range(8)
(
    R_MENTOR,
    R_MENTEE,
    R_COHORT,
    R_STARTED_AT,
    R_ACTIVE,
    R_LAST_CONTACT,
    R_SESSIONS,
    R_MINUTES,
    R_MESSAGES,
    R_RATING,
    R_LAST_SESSION,
) = range(11)


def new_state() -> dict[str, Any]:
    return {
        "events": 0,
        "cadence_days": DEFAULT_CADENCE_DAYS,
        "days": {},
        "people": {},
        "relationships": {},
        "goals": {},
        "applicants": {},
        "campaigns": {},
        "unregistered_mentees": {},
    }


def seconds(event: Event) -> float:
    # Not Timestamp.ToMilliseconds(): written in Python, it costs more than the whole fold.
    occurred = event.envelope.occurred_at
    return occurred.seconds + occurred.nanos // 1_000_000 / 1000.0


def bump(state: State, cohort: str, at: float, counter: str, by: int = 1) -> None:
    counters = state["days"].setdefault(day_key(cohort, int(at // DAY_SECONDS)), {})
    counters[counter] = counters.get(counter, 0) + by


def day_key(cohort: str, day: int) -> str:
    return f"{cohort}|{day}"


def split_day_key(key: str) -> tuple[str, int]:
    cohort, _, day = key.rpartition("|")
    return cohort, int(day)


def cohort_of(state: State, participant_id: str) -> str:
    person = state["people"].get(participant_id)
    return str(person[P_COHORT]) if person else ""


def relationship_cohort(state: State, relationship_id: str) -> str:
    relationship = state["relationships"].get(relationship_id)
    return str(relationship[R_COHORT]) if relationship else ""


def apply(state: State, event: Event) -> None:
    """Fold one event into the program's state, in place."""
    state["events"] += 1
    kind = event.WhichOneof("payload")
    handler = _HANDLERS.get(kind or "")
    if handler is not None:
        handler(state, event, seconds(event))


def _application_submitted(state: State, event: Event, at: float) -> None:
    payload = event.application_submitted
    if payload.participant_id in state["applicants"]:
        return
    state["applicants"][payload.participant_id] = [payload.cohort_id, payload.campaign]
    role = {ROLE_MENTOR: "mentor_applications", ROLE_MENTEE: "mentee_applications"}
    if payload.role in role:
        bump(state, payload.cohort_id, at, role[payload.role])
    bump(state, payload.cohort_id, at, "applications")
    _campaign(state, payload.cohort_id, payload.campaign, 0)


def _application_screened(state: State, event: Event, at: float) -> None:
    payload = event.application_screened
    cohort = state["applicants"].get(payload.participant_id, [""])[0]
    if payload.decision == SCREENING_DECISION_REJECTED:
        bump(state, cohort, at, "rejections")
    elif payload.decision == SCREENING_DECISION_WAITLISTED:
        bump(state, cohort, at, "waitlisted")


def _campaign(state: State, cohort: str, campaign: str, index: int) -> None:
    counts = state["campaigns"].setdefault(cohort, {}).setdefault(campaign, [0, 0])
    counts[index] += 1


def _registered(state: State, event: Event, at: float) -> None:
    payload = event.participant_registered
    if payload.participant_id in state["people"]:
        return
    cohort = payload.profile.cohort_id
    state["people"][payload.participant_id] = [
        int(payload.role),
        cohort,
        at,
        True,
        None,
        False,
        sorted(set(payload.skills)),
        int(payload.capacity),
    ]
    bump(state, cohort, at, "approvals")
    _campaign(state, cohort, payload.campaign, 1)
    # A relationship read before this registration (topics interleave when catching up).
    matched_at = state["unregistered_mentees"].pop(payload.participant_id, None)
    if matched_at is not None:
        state["people"][payload.participant_id][P_MATCHED_AT] = matched_at


def _updated(state: State, event: Event, at: float) -> None:
    payload = event.participant_updated
    person = state["people"].get(payload.participant_id)
    if person is None:
        return
    person[P_SKILLS] = sorted(set(payload.skills))
    person[P_CAPACITY] = int(payload.capacity)
    if payload.profile.cohort_id:
        person[P_COHORT] = payload.profile.cohort_id


def _withdrawn(state: State, event: Event, at: float) -> None:
    person = state["people"].get(event.participant_withdrawn.participant_id)
    if person is None or not person[P_ACTIVE]:
        return
    person[P_ACTIVE] = False
    bump(state, str(person[P_COHORT]), at, "withdrawals")


def _proposed(state: State, event: Event, at: float) -> None:
    bump(state, cohort_of(state, event.match_proposed.mentee_id), at, "matches_proposed")


def _responded(state: State, event: Event, at: float) -> None:
    payload = event.match_responded
    counter = {
        MATCH_STATUS_ACCEPTED: "matches_accepted",
        MATCH_STATUS_DECLINED: "matches_declined",
    }.get(payload.status)
    if counter:
        bump(state, cohort_of(state, payload.mentee_id), at, counter)


def _expired(state: State, event: Event, at: float) -> None:
    bump(state, cohort_of(state, event.match_expired.mentee_id), at, "matches_expired")


def _relationship(state: State, relationship_id: str) -> list[Any]:
    """The relationship's record; a placeholder (not started) when an event about it arrives
    before relationship-started, as topics interleave when a worker catches up."""
    relationships = state["relationships"]
    if relationship_id not in relationships:
        relationships[relationship_id] = ["", "", "", None, True, 0.0, 0, 0, 0, 0, None]
    record: list[Any] = relationships[relationship_id]
    return record


def _started(state: State, event: Event, at: float) -> None:
    payload = event.relationship_started
    relationship = _relationship(state, payload.relationship_id)
    if relationship[R_STARTED_AT] is not None:
        return
    cohort = cohort_of(state, payload.mentee_id)
    relationship[R_MENTOR] = payload.mentor_id
    relationship[R_MENTEE] = payload.mentee_id
    relationship[R_COHORT] = cohort
    relationship[R_STARTED_AT] = at
    relationship[R_LAST_CONTACT] = max(relationship[R_LAST_CONTACT], at)
    mentee = state["people"].get(payload.mentee_id)
    if mentee is None:
        state["unregistered_mentees"].setdefault(payload.mentee_id, at)
    elif mentee[P_MATCHED_AT] is None:
        mentee[P_MATCHED_AT] = at
    bump(state, cohort, at, "relationships_started")


def _ended(state: State, event: Event, at: float) -> None:
    payload = event.relationship_ended
    relationship = _relationship(state, payload.relationship_id)
    if not relationship[R_ACTIVE]:
        return
    relationship[R_ACTIVE] = False
    bump(
        state,
        str(relationship[R_COHORT]),
        at,
        "relationships_completed" if payload.completed else "relationships_closed_early",
    )


def _session(state: State, event: Event, at: float) -> None:
    payload = event.session_logged
    held = payload.held_at.ToMilliseconds() / 1000.0 if payload.HasField("held_at") else at
    relationship = _relationship(state, payload.relationship_id)
    cohort = str(relationship[R_COHORT])
    relationship[R_SESSIONS] += 1
    relationship[R_MINUTES] += payload.minutes
    relationship[R_LAST_CONTACT] = max(relationship[R_LAST_CONTACT], held)
    relationship[R_LAST_SESSION] = max(relationship[R_LAST_SESSION] or held, held)
    bump(state, cohort, at, "sessions")
    bump(state, cohort, at, "session_minutes", payload.minutes)


def _message(state: State, event: Event, at: float) -> None:
    payload = event.message_sent
    relationship = _relationship(state, payload.relationship_id)
    relationship[R_MESSAGES] += 1
    relationship[R_LAST_CONTACT] = max(relationship[R_LAST_CONTACT], at)
    bump(state, str(relationship[R_COHORT]), at, "messages")


def _feedback(state: State, event: Event, at: float) -> None:
    payload = event.feedback_submitted
    if not 1 <= payload.rating <= 5:
        return
    relationship = _relationship(state, payload.relationship_id)
    relationship[R_RATING] = int(payload.rating)
    cohort = str(relationship[R_COHORT])
    bump(state, cohort, at, "feedback_responses")
    bump(state, cohort, at, "rating_sum", int(payload.rating))
    bump(state, cohort, at, f"rating_{payload.rating}")


def _goal(state: State, event: Event, at: float) -> None:
    payload = event.goal_updated
    cohort = relationship_cohort(state, payload.relationship_id) or cohort_of(
        state, payload.mentee_id
    )
    achieved = payload.status == GOAL_STATUS_ACHIEVED
    known = state["goals"].get(payload.goal_id)
    if known is None:
        state["goals"][payload.goal_id] = achieved
        bump(state, cohort, at, "goals_set")
        if achieved:
            bump(state, cohort, at, "goals_achieved")
    elif achieved and not known:
        state["goals"][payload.goal_id] = True
        bump(state, cohort, at, "goals_achieved")


def _training(state: State, event: Event, at: float) -> None:
    payload = event.training_completed
    cohort = cohort_of(state, payload.participant_id)
    person = state["people"].get(payload.participant_id)
    if person is not None:
        person[P_TRAINED] = True
    bump(state, cohort, at, "trainings_completed")


def _program_changed(state: State, event: Event, at: float) -> None:
    cadence = event.program_changed.settings.meeting_cadence_days
    if cadence:
        state["cadence_days"] = int(cadence)


def _run_completed(state: State, event: Event, at: float) -> None:
    bump(state, event.matching_run_completed.cohort_id, at, "matching_runs")


_HANDLERS = {
    "application_submitted": _application_submitted,
    "application_screened": _application_screened,
    "participant_registered": _registered,
    "participant_updated": _updated,
    "participant_withdrawn": _withdrawn,
    "match_proposed": _proposed,
    "match_responded": _responded,
    "match_expired": _expired,
    "relationship_started": _started,
    "relationship_ended": _ended,
    "session_logged": _session,
    "message_sent": _message,
    "feedback_submitted": _feedback,
    "goal_updated": _goal,
    "training_completed": _training,
    "program_changed": _program_changed,
    "matching_run_completed": _run_completed,
}
