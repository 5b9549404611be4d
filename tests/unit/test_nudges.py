"""Nudges: the pure due-rules with fixed clocks, policy validation, announcement checks, and
one scheduler round on mongomock with an injected clock and a recording publisher."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import mongoengine
import pytest

from services.common.api import common_pb2, events_pb2
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from services.engagement import announcements, notifications, nudges
from services.engagement.documents import Feedback, Match, Relationship, Session
from services.engagement.nudges import (
    DAY,
    DEFAULT_POLICY,
    MatchFacts,
    NudgePolicy,
    RelationshipFacts,
)
from tests.unit import memory_db

ORG, PROGRAM = "org-1", "prog-1"
START = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)


def rel(**changes: object) -> RelationshipFacts:
    base = RelationshipFacts(
        organization_id=ORG,
        program_id=PROGRAM,
        relationship_id="r-1",
        mentor_id="mentor-1",
        mentee_id="mentee-1",
        status="active",
        started_at=START,
        expected_end_at=datetime(2024, 7, 10, 9, 0, tzinfo=UTC),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def match(**changes: object) -> MatchFacts:
    base = MatchFacts(
        organization_id=ORG,
        program_id=PROGRAM,
        match_id="m-1",
        mentor_id="mentor-1",
        mentee_id="mentee-1",
        status="proposed",
        mentor_decision="none",
        mentee_decision="none",
        proposed_at=START,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def who(found: Sequence[nudges.Nudge]) -> set[tuple[str, str]]:
    return {(n.recipient_id, n.reason) for n in found}


# --- defaults and policy validation --------------------------------------------------------


def test_production_defaults_are_in_days() -> None:
    assert DEFAULT_POLICY.no_session_seconds == 21 * DAY
    assert DEFAULT_POLICY.unanswered_proposal_seconds == 7 * DAY
    assert DEFAULT_POLICY.check_in_grace_seconds == 7 * DAY
    assert DEFAULT_POLICY.ending_soon_seconds == 14 * DAY
    assert not DEFAULT_POLICY.disabled


def test_policy_zero_means_default_and_values_are_kept() -> None:
    policy = nudges.policy_from({"no_session_seconds": 1, "ending_soon_seconds": 0})
    assert policy.no_session_seconds == 1
    assert policy.ending_soon_seconds == 14 * DAY
    assert policy.unanswered_proposal_seconds == 7 * DAY


@pytest.mark.parametrize("name", nudges.THRESHOLDS)
def test_policy_refuses_a_threshold_over_a_year_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        nudges.policy_from({name: nudges.MAX_THRESHOLD_SECONDS + 1})
    assert excinfo.value.field == f"policy.{name}"
    assert nudges.policy_from({name: nudges.MAX_THRESHOLD_SECONDS})


# --- no session ----------------------------------------------------------------------------


def test_no_session_is_due_21_days_after_the_start_for_both_members() -> None:
    just_before = START + timedelta(days=21) - timedelta(seconds=1)
    assert nudges.no_session(rel(), DEFAULT_POLICY, just_before) == []
    found = nudges.no_session(rel(), DEFAULT_POLICY, START + timedelta(days=21))
    assert who(found) == {("mentor-1", "no-session"), ("mentee-1", "no-session")}
    mentor = next(n for n in found if n.recipient_id == "mentor-1")
    assert mentor.recipient_side == "mentor"
    assert dict(mentor.data)["other_participant_id"] == "mentee-1"
    assert dict(mentor.data)["days"] == "21"
    assert mentor.due_at == START + timedelta(days=21)


def test_a_held_session_restarts_the_silence_and_gives_a_new_nudge_id() -> None:
    held = START + timedelta(days=15)
    assert (
        nudges.no_session(rel(last_held_at=held), DEFAULT_POLICY, START + timedelta(days=30)) == []
    )
    later = START + timedelta(days=36)
    after = nudges.no_session(rel(last_held_at=held), DEFAULT_POLICY, later)
    first = nudges.no_session(rel(), DEFAULT_POLICY, later)
    assert {n.nudge_id for n in after}.isdisjoint({n.nudge_id for n in first})


def test_the_nudge_id_is_the_same_on_every_later_round() -> None:
    ids = [
        {n.nudge_id for n in nudges.no_session(rel(), DEFAULT_POLICY, START + timedelta(days=d))}
        for d in (21, 22, 40)
    ]
    assert ids[0] == ids[1] == ids[2]
    assert len(ids[0]) == 2


@pytest.mark.parametrize("status", ["paused", "completed", "closed_early"])
def test_no_session_only_for_active_relationships(status: str) -> None:
    assert nudges.no_session(rel(status=status), DEFAULT_POLICY, START + timedelta(days=60)) == []


def test_a_disabled_policy_nudges_nobody() -> None:
    off = NudgePolicy(disabled=True)
    late = START + timedelta(days=170)
    assert (
        nudges.due(
            relationships=[rel()], matches=[match()], policies={(ORG, PROGRAM): off}, now=late
        )
        == []
    )


def test_a_resumption_restarts_the_silence() -> None:
    resumed = rel(resumed_at=START + timedelta(days=40))
    assert nudges.no_session(resumed, DEFAULT_POLICY, START + timedelta(days=60)) == []
    found = nudges.no_session(resumed, DEFAULT_POLICY, START + timedelta(days=61))
    assert {n.due_at for n in found} == {START + timedelta(days=61)}


@pytest.mark.parametrize(
    ("cadence_days", "threshold_days"), [(14, 21), (7, 10.5), (30, 45), (365, 366)]
)
def test_the_no_session_threshold_follows_the_programs_cadence(
    cadence_days: int, threshold_days: float
) -> None:
    assert nudges.no_session_for_cadence(cadence_days) == threshold_days * DAY
    policy = nudges.with_cadence(NudgePolicy(ending_soon_seconds=5), cadence_days)
    assert policy.no_session_seconds == threshold_days * DAY
    assert policy.ending_soon_seconds == 5  # the rest stays
    assert nudges.with_cadence(DEFAULT_POLICY, 0) == DEFAULT_POLICY


def test_nobody_on_leave_is_nudged_nor_is_their_pair() -> None:
    late = START + timedelta(days=30)
    other = rel(relationship_id="r-2", mentor_id="mentor-2", mentee_id="mentee-2")
    proposal = match(mentor_id="mentor-3", mentee_id="mentee-1")
    found = nudges.due(
        relationships=[rel(), other],
        matches=[proposal],
        policies={},
        now=late,
        away={(ORG, "mentee-1")},
    )
    # mentee-1's pair is left alone, and so is mentee-1 about their proposal; mentor-3 is not.
    assert who(found) == {
        ("mentor-2", "no-session"),
        ("mentee-2", "no-session"),
        ("mentor-3", "proposal-unanswered"),
    }


def test_seconds_thresholds_make_it_due_fast() -> None:
    fast = NudgePolicy(no_session_seconds=1)
    assert nudges.no_session(rel(), fast, START) == []
    assert len(nudges.no_session(rel(), fast, START + timedelta(seconds=1))) == 2


# --- unanswered proposals ------------------------------------------------------------------


def test_an_unanswered_proposal_nudges_only_the_silent_side() -> None:
    week = START + timedelta(days=7)
    assert nudges.proposal_unanswered(match(), DEFAULT_POLICY, week - timedelta(seconds=1)) == []
    assert who(nudges.proposal_unanswered(match(), DEFAULT_POLICY, week)) == {
        ("mentor-1", "proposal-unanswered"),
        ("mentee-1", "proposal-unanswered"),
    }
    mentor_said_yes = match(mentor_decision="accept")
    found = nudges.proposal_unanswered(mentor_said_yes, DEFAULT_POLICY, week)
    assert who(found) == {("mentee-1", "proposal-unanswered")}
    assert found[0].match_id == "m-1"
    assert found[0].recipient_side == "mentee"


@pytest.mark.parametrize("status", ["accepted", "declined", "expired"])
def test_a_decided_match_is_not_chased(status: str) -> None:
    assert (
        nudges.proposal_unanswered(match(status=status), DEFAULT_POLICY, START + timedelta(days=30))
        == []
    )


# --- check-ins -----------------------------------------------------------------------------


def test_day_30_check_in_is_overdue_after_the_grace_for_who_has_not_answered() -> None:
    overdue = START + timedelta(days=37)
    assert nudges.check_in_overdue(rel(), DEFAULT_POLICY, overdue - timedelta(seconds=1)) == []
    found = nudges.check_in_overdue(rel(), DEFAULT_POLICY, overdue)
    assert who(found) == {("mentor-1", "check-in-overdue"), ("mentee-1", "check-in-overdue")}
    assert {dict(n.data)["survey_point"] for n in found} == {"day-30"}
    answered = rel(answered=frozenset({("mentee-1", "day-30")}))
    assert who(nudges.check_in_overdue(answered, DEFAULT_POLICY, overdue)) == {
        ("mentor-1", "check-in-overdue")
    }


def test_only_the_latest_overdue_check_in_is_chased() -> None:
    found = nudges.check_in_overdue(rel(), DEFAULT_POLICY, START + timedelta(days=70))
    assert {dict(n.data)["survey_point"] for n in found} == {"day-60"}
    # Six-month term: the midpoint (day 91) comes after day 90.
    late = nudges.check_in_overdue(rel(), DEFAULT_POLICY, START + timedelta(days=100))
    assert {dict(n.data)["survey_point"] for n in late} == {"midpoint"}
    assert {n.subject for n in late} == {"r-1/midpoint"}


def test_the_midpoint_follows_the_expected_end() -> None:
    short = rel(expected_end_at=START + timedelta(days=40))
    points = dict(nudges.check_in_points(short))
    assert points["midpoint"] == START + timedelta(days=20)


def test_check_ins_are_not_chased_after_the_expected_end() -> None:
    assert nudges.check_in_overdue(rel(), DEFAULT_POLICY, START + timedelta(days=200)) == []


# --- ending soon ---------------------------------------------------------------------------


def test_ending_soon_within_14_days_of_the_end_for_both_but_not_while_paused() -> None:
    end = datetime(2024, 7, 10, 9, 0, tzinfo=UTC)
    assert nudges.ending_soon(rel(), DEFAULT_POLICY, end - timedelta(days=15)) == []
    found = nudges.ending_soon(rel(), DEFAULT_POLICY, end - timedelta(days=14))
    assert who(found) == {("mentor-1", "ending-soon"), ("mentee-1", "ending-soon")}
    assert nudges.ending_soon(rel(status="paused"), DEFAULT_POLICY, end - timedelta(days=3)) == []
    assert nudges.ending_soon(rel(), DEFAULT_POLICY, end) == []
    # Resumed inside the window: the nudge (one per expected end) goes then.
    resumed = nudges.ending_soon(rel(), DEFAULT_POLICY, end - timedelta(days=3))
    assert {n.nudge_id for n in resumed} == {n.nudge_id for n in found}


def test_an_extension_nudges_again_with_a_new_id() -> None:
    end = datetime(2024, 7, 10, 9, 0, tzinfo=UTC)
    first = nudges.ending_soon(rel(), DEFAULT_POLICY, end - timedelta(days=3))
    extended = rel(expected_end_at=end + timedelta(days=30))
    second = nudges.ending_soon(extended, DEFAULT_POLICY, end + timedelta(days=27))
    assert len(second) == 2
    assert {n.nudge_id for n in first}.isdisjoint({n.nudge_id for n in second})


# --- everything at once --------------------------------------------------------------------


def test_due_uses_each_programs_policy_and_the_default_elsewhere() -> None:
    fast = NudgePolicy(no_session_seconds=60)
    other = rel(program_id="prog-2", relationship_id="r-2", mentor_id="a", mentee_id="b")
    found = nudges.due(
        relationships=[rel(), other],
        matches=[],
        policies={(ORG, PROGRAM): fast},
        now=START + timedelta(minutes=5),
    )
    assert who(found) == {("mentor-1", "no-session"), ("mentee-1", "no-session")}


# --- announcements (pure checks) -----------------------------------------------------------


def test_announcement_checks_name_the_field() -> None:
    assert announcements.validate(template="", message=" Hi ") == ("announcement", "Hi")
    for kwargs, field in (
        ({"template": "Bad Name", "message": "x"}, "template"),
        ({"template": "", "message": "  "}, "message"),
        ({"template": "", "message": "x" * 2001}, "message"),
    ):
        with pytest.raises(InvalidArgument) as excinfo:
            announcements.validate(**kwargs)
        assert excinfo.value.field == field
    nobody = {"participant_id": "", "cohort_id": "", "role": "", "unmatched": False}
    announcements.validate_audience(**nobody)
    announcements.validate_audience(**{**nobody, "cohort_id": "c-1", "unmatched": True})
    for changes, field in (
        ({"participant_id": "p-1", "cohort_id": "c-1"}, "participant_id"),
        ({"participant_id": "p-1", "unmatched": True}, "participant_id"),
        ({"participant_id": "p-1", "role": "mentor"}, "participant_id"),
        ({"participant_id": "bad id!"}, "participant_id"),
        ({"cohort_id": "bad id!"}, "cohort_id"),
        ({"role": "coach"}, "role"),
    ):
        with pytest.raises(InvalidArgument) as excinfo:
            announcements.validate_audience(**{**nobody, **changes})  # type: ignore[arg-type]
        assert excinfo.value.field == field


# --- storage and the scheduler, on mongomock -----------------------------------------------


@pytest.fixture
def database() -> Iterator[str]:
    yield memory_db.connect_fresh("engagement", "test_nudges")
    mongoengine.disconnect()


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[events_pb2.Event] = []

    async def publish(self, events: Sequence[events_pb2.Event]) -> None:
        self.events.extend(events)


def _store_pair(relationship_id: str = "r-1", match_id: str = "m-1") -> None:
    Relationship(
        organization_id=ORG,
        program_id=PROGRAM,
        relationship_id=relationship_id,
        match_id=match_id,
        mentor_id="mentor-1",
        mentee_id="mentee-1",
        started_at=START,
        expected_end_at=datetime(2024, 7, 10, 9, 0, tzinfo=UTC),
    ).save()


def _scheduler(publisher: RecordingPublisher, now: datetime) -> notifications.NudgeScheduler:
    return notifications.NudgeScheduler(publisher, now=lambda: now)  # type: ignore[arg-type]


def _reasons(publisher: RecordingPublisher) -> list[tuple[str, str]]:
    return sorted(
        (e.notification_requested.recipient_id, e.notification_requested.reason)
        for e in publisher.events
    )


def test_the_scheduler_sends_each_nudge_once_across_rounds_and_restarts(database: str) -> None:
    _store_pair()
    Match(
        organization_id=ORG,
        program_id=PROGRAM,
        match_id="m-2",
        mentor_id="mentor-2",
        mentee_id="mentee-1",
        status="proposed",
        mentee_decision="accept",
        proposed_at=START,
    ).save()
    publisher = RecordingPublisher()
    day_22 = START + timedelta(days=22)
    sent = asyncio.run(_scheduler(publisher, day_22).nudge_once())
    assert len(sent) == 3
    assert _reasons(publisher) == [
        ("mentee-1", "no-session"),
        ("mentor-1", "no-session"),
        ("mentor-2", "proposal-unanswered"),
    ]
    first = publisher.events[0]
    assert first.envelope.event_id == first.notification_requested.notification_id
    assert first.envelope.producer == "engagement"
    assert (first.envelope.organization_id, first.envelope.program_id) == (ORG, PROGRAM)
    roles = {
        e.notification_requested.recipient_id: e.notification_requested.recipient_role
        for e in publisher.events
    }
    assert roles["mentor-2"] == common_pb2.ROLE_MENTOR
    assert roles["mentee-1"] == common_pb2.ROLE_MENTEE

    # A later round, and a new scheduler (a restart), send nothing more.
    asyncio.run(_scheduler(publisher, day_22 + timedelta(hours=5)).nudge_once())
    assert asyncio.run(_scheduler(RecordingPublisher(), day_22).nudge_once()) == []
    assert len(publisher.events) == 3


def test_a_held_session_and_an_answered_check_in_are_read_from_storage(database: str) -> None:
    _store_pair()
    Session(
        organization_id=ORG,
        program_id=PROGRAM,
        session_id="s-1",
        relationship_id="r-1",
        held_at=START + timedelta(days=20),
        minutes=30,
        mode="virtual",
        status="held",
    ).save()
    Feedback(
        organization_id=ORG,
        program_id=PROGRAM,
        feedback_id="f-1",
        relationship_id="r-1",
        author_id="mentor-1",
        survey_point="day-30",
        rating=4,
        submitted_at=START + timedelta(days=31),
    ).save()
    publisher = RecordingPublisher()
    asyncio.run(_scheduler(publisher, START + timedelta(days=38)).nudge_once())
    # No session nudge (a session 18 days ago); the day-30 check-in only for the mentee.
    assert _reasons(publisher) == [("mentee-1", "check-in-overdue")]


def test_a_stored_policy_applies_and_reads_back(database: str) -> None:
    assert notifications.get_policy(ORG, PROGRAM) == DEFAULT_POLICY
    stored = notifications.set_policy(ORG, PROGRAM, NudgePolicy(no_session_seconds=5))
    assert stored.no_session_seconds == 5
    assert notifications.get_policy(ORG, PROGRAM) == stored
    _store_pair()
    publisher = RecordingPublisher()
    asyncio.run(_scheduler(publisher, START + timedelta(seconds=6)).nudge_once())
    assert _reasons(publisher) == [("mentee-1", "no-session"), ("mentor-1", "no-session")]


def test_announce_fans_out_to_known_participants_and_is_idempotent(database: str) -> None:
    for match_id, mentor, mentee in (("m-1", "a", "b"), ("m-2", "a", "c")):
        Match(
            organization_id=ORG,
            program_id=PROGRAM,
            match_id=match_id,
            mentor_id=mentor,
            mentee_id=mentee,
            status="proposed",
            proposed_at=START,
        ).save()
    request = announcements.AnnouncementRequest(ORG, PROGRAM, "ann-1", "", "announcement", "Hi")
    doc, created, _ = announcements.announce(request)
    assert created
    assert announcements.recipients_of(doc) == [("a", "mentor"), ("b", "mentee"), ("c", "mentee")]
    first = [e.envelope.event_id for e in announcements.events(doc)]
    again, created_again, _ = announcements.announce(request)
    assert not created_again
    assert [e.envelope.event_id for e in announcements.events(again)] == first
    with pytest.raises(AlreadyExists):
        announcements.announce(replace(request, message="Something else"))
    with pytest.raises(FailedPrecondition):
        announcements.announce(replace(request, announcement_id="x", program_id="empty"))
    one, _, _ = announcements.announce(
        replace(request, announcement_id="ann-2", participant_id="z:1")
    )
    assert announcements.recipients_of(one) == [("z:1", "")]
    # Channels read who it was for: one person's message is not a group announcement.
    audiences = {e.notification_requested.data["audience"] for e in announcements.events(one)}
    assert audiences == {"participant"}
    assert {e.notification_requested.data["audience"] for e in announcements.events(doc)} == {
        "program"
    }
