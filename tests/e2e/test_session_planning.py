"""Planned sessions on session-planned, end to end over gRPC and the broker: scheduling, moving
and cancelling a session publish one event each with sequences 0, 1, 2; retries publish
nothing again; a cancelled session does not move and a move into the past is refused; and the
`mentoring engagement session reschedule` command."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import grpc

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import common_pb2, engagement_pb2, events_pb2
from tests.e2e.support import eventually
from tests.e2e.test_cli_lifecycle import mentoring, ok
from tests.e2e.test_engagement_features import STRANGER, events, fails, invalid, new_pair, ts

E = engagement_pb2
TOPIC = "session-planned"


def whole_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def test_a_session_scheduled_moved_and_cancelled_is_published_with_sequences(
    stack: Stack, clients: Clients
) -> None:
    pair = new_pair(stack, clients, skill="calendars")
    eng, org = clients.engagement, pair.org
    first_time = whole_minute(datetime.now(UTC) + timedelta(days=2))
    moved_time = first_time + timedelta(days=1, hours=3)

    schedule = E.ScheduleSessionRequest(
        organization_id=org,
        relationship_id=pair.relationship_id,
        participant_id=pair.mentee,
        scheduled_at=ts(first_time),
        minutes=45,
        mode=common_pb2.SESSION_MODE_PHONE,
        topics=["promotion"],
        request_id=f"plan-{pair.relationship_id}",
    )
    planned = eng.ScheduleSession(schedule)
    assert eng.ScheduleSession(schedule).session_id == planned.session_id  # a retry

    move = E.RescheduleSessionRequest(
        organization_id=org,
        session_id=planned.session_id,
        participant_id=pair.mentor,
        scheduled_at=ts(moved_time),
        minutes=60,
        request_id=f"move-{pair.relationship_id}",
    )
    invalid(
        eng.RescheduleSession,
        E.RescheduleSessionRequest(
            organization_id=org,
            session_id=planned.session_id,
            participant_id=pair.mentor,
            scheduled_at=ts(datetime.now(UTC) - timedelta(hours=1)),
        ),
        "scheduled_at",
    )
    invalid(
        eng.RescheduleSession,
        E.RescheduleSessionRequest(
            organization_id=org, session_id=planned.session_id, participant_id=pair.mentor
        ),
        "scheduled_at",
    )
    invalid(
        eng.RescheduleSession,
        E.RescheduleSessionRequest(
            organization_id=org,
            session_id=planned.session_id,
            participant_id=pair.mentor,
            scheduled_at=ts(moved_time),
            minutes=1441,
        ),
        "minutes",
    )
    fails(
        eng.RescheduleSession,
        E.RescheduleSessionRequest(
            organization_id=org,
            session_id=planned.session_id,
            participant_id=STRANGER,
            scheduled_at=ts(moved_time),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    moved = eng.RescheduleSession(move)
    assert (moved.scheduled_at.ToDatetime(UTC), moved.minutes) == (moved_time, 60)
    assert moved.status == E.SESSION_STATUS_SCHEDULED
    assert eng.RescheduleSession(move) == moved  # a retry moves nothing

    cancel = E.CancelSessionRequest(
        organization_id=org,
        session_id=planned.session_id,
        participant_id=pair.mentee,
        reason="Off sick",
    )
    cancelled = eng.CancelSession(cancel)
    assert cancelled.status == E.SESSION_STATUS_CANCELLED
    assert eng.CancelSession(cancel).status == E.SESSION_STATUS_CANCELLED  # a retry
    move.request_id = f"move-again-{pair.relationship_id}"
    detail = fails(eng.RescheduleSession, move, grpc.StatusCode.FAILED_PRECONDITION)
    assert detail.startswith("session_id: the session is cancelled"), detail

    def ours() -> list[events_pb2.Event] | None:
        found = [
            e
            for e in events(stack, pair.program, TOPIC)
            if e.session_planned.session_id == planned.session_id
        ]
        return found if len(found) >= 3 else None

    published = sorted(eventually("three session-planned", ours), key=lambda e: e.envelope.event_id)
    # Each change once: the retries published nothing again.
    assert len(published) == 3
    assert len({e.envelope.event_id for e in published}) == 3
    by_sequence = {e.session_planned.sequence: e.session_planned for e in published}
    assert sorted(by_sequence) == [0, 1, 2]
    scheduled, rescheduled, called_off = by_sequence[0], by_sequence[1], by_sequence[2]
    assert [p.change for p in (scheduled, rescheduled, called_off)] == [
        events_pb2.SESSION_PLAN_CHANGE_SCHEDULED,
        events_pb2.SESSION_PLAN_CHANGE_MOVED,
        events_pb2.SESSION_PLAN_CHANGE_CANCELLED,
    ]
    assert [p.scheduled_at.ToDatetime(UTC) for p in (scheduled, rescheduled, called_off)] == [
        first_time,
        moved_time,
        moved_time,
    ]
    assert [p.minutes for p in (scheduled, rescheduled, called_off)] == [45, 60, 60]
    assert [p.changed_by for p in (scheduled, rescheduled, called_off)] == [
        pair.mentee,
        pair.mentor,
        pair.mentee,
    ]
    for p in (scheduled, rescheduled, called_off):
        assert (p.relationship_id, p.mentor_id, p.mentee_id) == (
            pair.relationship_id,
            pair.mentor,
            pair.mentee,
        )
        assert (p.mode, list(p.topics)) == (common_pb2.SESSION_MODE_PHONE, ["promotion"])
    assert (scheduled.cancel_reason, rescheduled.cancel_reason) == ("", "")
    assert called_off.cancel_reason == "Off sick"


def test_the_reschedule_command_moves_a_session(stack: Stack, clients: Clients) -> None:
    pair = new_pair(stack, clients, skill="diaries")
    when = whole_minute(datetime.now(UTC) + timedelta(days=4))
    planned = clients.engagement.ScheduleSession(
        E.ScheduleSessionRequest(
            organization_id=pair.org,
            relationship_id=pair.relationship_id,
            participant_id=pair.mentor,
            scheduled_at=ts(when),
            minutes=30,
            mode=common_pb2.SESSION_MODE_VIRTUAL,
        )
    )
    later = when + timedelta(days=1)
    out = ok(
        mentoring(stack, "engagement", "session", "reschedule", "-o", pair.org,
                  "-s", planned.session_id, "-p", pair.mentee,
                  "--at", later.strftime("%Y-%m-%dT%H:%M"), "--minutes", "50")
    )  # fmt: skip
    assert re.search(
        rf"session {planned.session_id} moved: {later:%Y-%m-%d %H:%M} UTC, 50 min", out
    ), out

    def moved() -> events_pb2.SessionPlanned | None:
        for e in events(stack, pair.program, TOPIC):
            if e.session_planned.session_id == planned.session_id and e.session_planned.sequence:
                return e.session_planned
        return None

    published = eventually("the move on session-planned", moved)
    assert (published.sequence, published.scheduled_at.ToDatetime(UTC)) == (1, later)
    assert published.changed_by == pair.mentee
