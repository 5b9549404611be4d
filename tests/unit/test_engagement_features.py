"""Program-lifecycle rules of engagement: relationship states, sessions, goals, feedback,
training, the health score, and what the new events may carry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.api import common_pb2, events_pb2
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.events import stable_event_id
from services.engagement import convert, domain, health
from services.engagement.documents import Feedback, Goal, Milestone, Session

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def field_of(excinfo: pytest.ExceptionInfo[InvalidArgument]) -> str:
    return excinfo.value.field


# --- who acts ------------------------------------------------------------------------------


def test_side_of_the_pair_and_nobody_else() -> None:
    assert domain.side_of(mentor_id="a", mentee_id="b", participant_id="a") == domain.MENTOR
    assert domain.side_of(mentor_id="a", mentee_id="b", participant_id="b") == domain.MENTEE
    with pytest.raises(PermissionDenied, match="participant_id"):
        domain.side_of(mentor_id="a", mentee_id="b", participant_id="c")


# --- relationship lifecycle ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2025, 1, 15, tzinfo=UTC), datetime(2025, 7, 15, tzinfo=UTC)),
        (datetime(2025, 8, 31, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2023, 8, 31, tzinfo=UTC), datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2025, 9, 30, 8, 30, tzinfo=UTC), datetime(2026, 3, 30, 8, 30, tzinfo=UTC)),
    ],
)
def test_expected_end_is_six_calendar_months_later(start: datetime, end: datetime) -> None:
    assert domain.default_expected_end(start) == end


def test_pause_and_resume_transitions() -> None:
    assert domain.pause(domain.ACTIVE) == domain.Transition(domain.PAUSED, changed=True)
    assert domain.pause(domain.PAUSED) == domain.Transition(domain.PAUSED, changed=False)
    assert domain.resume(domain.PAUSED) == domain.Transition(domain.ACTIVE, changed=True)
    assert domain.resume(domain.ACTIVE) == domain.Transition(domain.ACTIVE, changed=False)


@pytest.mark.parametrize("ended", [domain.COMPLETED, domain.CLOSED_EARLY])
def test_an_ended_relationship_neither_pauses_nor_resumes(ended: str) -> None:
    with pytest.raises(FailedPrecondition, match=ended):
        domain.pause(ended)
    with pytest.raises(FailedPrecondition, match=ended):
        domain.resume(ended)


def test_a_paused_relationship_can_still_be_ended() -> None:
    assert (
        domain.end_status(
            current=domain.PAUSED, completed=False, reason="moved away", not_a_good_fit=False
        )
        == domain.CLOSED_EARLY
    )


def test_extension_must_be_later_than_the_current_end() -> None:
    start = NOW
    end = domain.default_expected_end(start)
    domain.validate_extension(
        status=domain.ACTIVE, started_at=start, current_end=end, new_end=end + timedelta(days=1)
    )
    for new_end in (end, end - timedelta(days=1), None):
        with pytest.raises(InvalidArgument) as excinfo:
            domain.validate_extension(
                status=domain.ACTIVE, started_at=start, current_end=end, new_end=new_end
            )
        assert field_of(excinfo) == "expected_end_at"


def test_extension_is_capped_and_needs_an_ongoing_relationship() -> None:
    end = domain.default_expected_end(NOW)
    with pytest.raises(InvalidArgument, match="three years"):
        domain.validate_extension(
            status=domain.ACTIVE,
            started_at=NOW,
            current_end=end,
            new_end=NOW + domain.MAX_TERM + timedelta(days=1),
        )
    domain.validate_extension(
        status=domain.PAUSED, started_at=NOW, current_end=end, new_end=end + timedelta(days=30)
    )
    with pytest.raises(FailedPrecondition):
        domain.validate_extension(
            status=domain.COMPLETED,
            started_at=NOW,
            current_end=end,
            new_end=end + timedelta(days=30),
        )


def test_reason_is_bounded() -> None:
    assert domain.validate_reason("reason", "  holiday ") == "holiday"
    with pytest.raises(InvalidArgument) as excinfo:
        domain.validate_reason("reason", "x" * 501)
    assert field_of(excinfo) == "reason"


# --- sessions ------------------------------------------------------------------------------


def schedule(**overrides: object) -> list[str]:
    fields: dict[str, object] = {
        "scheduled_at": NOW + timedelta(days=2),
        "minutes": 45,
        "mode_set": True,
        "topics": [" career ", "feedback"],
        "now": NOW,
    }
    fields.update(overrides)
    return domain.validate_schedule(**fields)  # type: ignore[arg-type]


def test_a_valid_schedule_trims_its_topics() -> None:
    assert schedule() == ["career", "feedback"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"scheduled_at": None}, "scheduled_at"),
        ({"scheduled_at": NOW}, "scheduled_at"),
        ({"scheduled_at": NOW - timedelta(minutes=1)}, "scheduled_at"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": domain.MAX_SESSION_MINUTES + 1}, "minutes"),
        ({"mode_set": False}, "mode"),
        ({"topics": ["t"] * 11}, "topics"),
        ({"topics": ["  "]}, "topics"),
        ({"topics": ["x" * 101]}, "topics"),
    ],
)
def test_a_bad_schedule_names_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        schedule(**overrides)
    assert field_of(excinfo) == field


def test_holding_a_session_needs_it_scheduled_and_the_relationship_active() -> None:
    assert domain.hold(
        session_status=domain.SCHEDULED, relationship_status=domain.ACTIVE
    ) == domain.Transition(domain.HELD, changed=True)
    # A retry of the same call.
    assert domain.hold(
        session_status=domain.HELD, relationship_status=domain.PAUSED
    ) == domain.Transition(domain.HELD, changed=False)
    with pytest.raises(FailedPrecondition, match="paused"):
        domain.hold(session_status=domain.SCHEDULED, relationship_status=domain.PAUSED)
    with pytest.raises(FailedPrecondition, match="completed"):
        domain.hold(session_status=domain.SCHEDULED, relationship_status=domain.COMPLETED)
    with pytest.raises(FailedPrecondition, match="cancelled"):
        domain.hold(session_status=domain.CANCELLED, relationship_status=domain.ACTIVE)


def test_cancelling_a_session() -> None:
    assert domain.cancel(domain.SCHEDULED) == domain.Transition(domain.CANCELLED, changed=True)
    assert domain.cancel(domain.CANCELLED) == domain.Transition(domain.CANCELLED, changed=False)
    with pytest.raises(FailedPrecondition, match="held"):
        domain.cancel(domain.HELD)


def test_held_time_and_duration() -> None:
    domain.validate_held(held_at=NOW - timedelta(days=3), minutes=60, now=NOW)
    with pytest.raises(InvalidArgument) as excinfo:
        domain.validate_held(held_at=NOW + domain.CLOCK_SKEW + timedelta(1), minutes=60, now=NOW)
    assert field_of(excinfo) == "held_at"
    with pytest.raises(InvalidArgument) as excinfo:
        domain.validate_held(held_at=NOW, minutes=0, now=NOW)
    assert field_of(excinfo) == "minutes"


def test_note_length() -> None:
    assert domain.validate_note("private_note", " ok ") == "ok"
    with pytest.raises(InvalidArgument) as excinfo:
        domain.validate_note("private_note", "x" * (domain.MAX_NOTE + 1))
    assert field_of(excinfo) == "private_note"


@pytest.mark.parametrize(
    ("sessions", "training", "hours"), [(0, 0, 0.0), (45, 30, 1.25), (100, 0, 1.67), (60, 20, 1.33)]
)
def test_recognised_hours(sessions: int, training: int, hours: float) -> None:
    assert domain.recognised_hours(sessions, training) == hours


# --- goals ---------------------------------------------------------------------------------


def test_goal_progress_moves_and_achieved_means_100() -> None:
    change = domain.update_goal(status="open", progress=10, new_progress=40, new_status=None)
    assert change == domain.GoalChange("open", 40, changed=True)
    change = domain.update_goal(
        status="open", progress=40, new_progress=None, new_status="achieved"
    )
    assert change == domain.GoalChange("achieved", 100, changed=True)
    assert domain.update_goal(
        status="open", progress=40, new_progress=40, new_status=None
    ) == domain.GoalChange("open", 40, changed=False)


def test_a_closed_goal_changes_only_by_reopening() -> None:
    assert domain.update_goal(
        status="achieved", progress=100, new_progress=None, new_status="achieved"
    ) == domain.GoalChange("achieved", 100, changed=False)
    with pytest.raises(FailedPrecondition, match="reopen"):
        domain.update_goal(status="abandoned", progress=30, new_progress=50, new_status=None)
    assert domain.update_goal(
        status="abandoned", progress=30, new_progress=50, new_status="open"
    ) == domain.GoalChange("open", 50, changed=True)
    assert domain.update_goal(
        status="achieved", progress=100, new_progress=None, new_status="abandoned"
    ) == domain.GoalChange("abandoned", 100, changed=True)


@pytest.mark.parametrize(
    ("progress", "status", "field"),
    [(101, None, "progress"), (-1, None, "progress"), (5, "x", "status")],
)
def test_bad_goal_updates_name_the_field(progress: int, status: str | None, field: str) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        domain.update_goal(status="open", progress=0, new_progress=progress, new_status=status)
    assert field_of(excinfo) == field


def test_goal_validation() -> None:
    later = NOW + timedelta(days=30)
    assert domain.validate_goal(title=" Lead ", description=" d ", target_date=later, now=NOW) == (
        "Lead",
        "d",
    )
    cases = [
        ({"title": " "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"description": "x" * 2001}, "description"),
        ({"target_date": None}, "target_date"),
        ({"target_date": NOW - timedelta(days=1)}, "target_date"),
    ]
    for overrides, field in cases:
        fields: dict[str, object] = {
            "title": "Lead",
            "description": "",
            "target_date": later,
            "now": NOW,
        }
        fields.update(overrides)
        with pytest.raises(InvalidArgument) as excinfo:
            domain.validate_goal(**fields)  # type: ignore[arg-type]
        assert field_of(excinfo) == field


def test_milestones_need_a_title_and_are_bounded() -> None:
    assert domain.validate_milestone(title=" Shadow ", existing=0) == "Shadow"
    with pytest.raises(InvalidArgument) as excinfo:
        domain.validate_milestone(title="", existing=0)
    assert field_of(excinfo) == "title"
    with pytest.raises(FailedPrecondition):
        domain.validate_milestone(title="One more", existing=domain.MAX_MILESTONES)


# --- feedback ------------------------------------------------------------------------------


def test_feedback_validation() -> None:
    assert domain.validate_feedback(survey_point=" Day-30 ", rating=4, comment=" ok ") == (
        "day-30",
        "ok",
    )
    for point, rating, comment, field in [
        ("day-45", 3, "", "survey_point"),
        ("", 3, "", "survey_point"),
        ("close", 0, "", "rating"),
        ("close", 6, "", "rating"),
        ("periodic", 3, "x" * 2001, "comment"),
    ]:
        with pytest.raises(InvalidArgument) as excinfo:
            domain.validate_feedback(survey_point=point, rating=rating, comment=comment)
        assert field_of(excinfo) == field


def test_messages_only_on_an_ongoing_relationship() -> None:
    domain.message_allowed(domain.ACTIVE)
    domain.message_allowed(domain.PAUSED)
    with pytest.raises(FailedPrecondition):
        domain.message_allowed(domain.COMPLETED)


# --- training ------------------------------------------------------------------------------


def test_resource_validation() -> None:
    good = {
        "title": " Guide ",
        "kind": "guide",
        "url": " https://example.org/guide ",
        "audience": "both",
        "minutes": 30,
    }
    assert domain.validate_resource(**good) == ("Guide", "https://example.org/guide")  # type: ignore[arg-type]
    for overrides, field in [
        ({"title": ""}, "title"),
        ({"kind": None}, "kind"),
        ({"url": "ftp://example.org/x"}, "url"),
        ({"url": "example.org"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "https://exa mple.org"}, "url"),
        ({"audience": None}, "audience"),
        ({"minutes": 601}, "minutes"),
    ]:
        with pytest.raises(InvalidArgument) as excinfo:
            domain.validate_resource(**{**good, **overrides})  # type: ignore[arg-type]
        assert field_of(excinfo) == field


def test_audiences() -> None:
    assert domain.audiences_for(domain.MENTORS) == (domain.MENTORS, domain.BOTH)
    assert set(domain.audiences_for(domain.BOTH)) == {domain.MENTORS, domain.MENTEES, domain.BOTH}
    domain.check_audience(audience=domain.MENTORS, roles={domain.MENTOR})
    domain.check_audience(audience=domain.BOTH, roles={domain.MENTEE})
    domain.check_audience(audience=domain.MENTEES, roles=set())  # unknown: no check
    with pytest.raises(FailedPrecondition, match="mentees"):
        domain.check_audience(audience=domain.MENTEES, roles={domain.MENTOR})


# --- health --------------------------------------------------------------------------------


def test_health_documented_example() -> None:
    result = health.health(held=3, days=60, goals=[("open", 40), ("achieved", 90)], ratings=[4, 5])
    assert result.cadence == 0.75
    assert result.goals == pytest.approx(0.7)
    assert result.ratings == pytest.approx(0.875)
    assert result.expected_sessions == 4
    assert result.score == 77  # (50*0.75 + 25*0.7 + 25*0.875) / 100 = 0.76875


def test_missing_parts_are_left_out_not_zero() -> None:
    only_cadence = health.health(held=1, days=30, goals=[], ratings=[])
    assert (only_cadence.goals, only_cadence.ratings) == (None, None)
    assert only_cadence.score == 50  # 1 of 2 expected sessions
    with_rating = health.health(held=1, days=30, goals=[], ratings=[1])
    assert with_rating.score == round(100 * (50 * 0.5 + 25 * 0.0) / 75)  # 33


def test_a_new_pair_is_not_behind_and_cadence_is_capped() -> None:
    assert health.health(held=0, days=14, goals=[], ratings=[]).score == 100
    assert health.health(held=0, days=16, goals=[], ratings=[]).score == 0
    assert health.health(held=20, days=60, goals=[], ratings=[]).cadence == 1.0


def test_abandoned_goals_do_not_count_and_achieved_count_fully() -> None:
    assert health.goals_part([("abandoned", 0), ("achieved", 20), ("open", 50)]) == 0.75
    assert health.goals_part([("abandoned", 10)]) is None


def test_ratings_map_1_to_0_and_5_to_1() -> None:
    assert health.ratings_part([1]) == 0.0
    assert health.ratings_part([5]) == 1.0
    assert health.ratings_part([3, 4]) == 0.625


def test_active_days_leave_out_pauses() -> None:
    start = NOW
    assert health.active_days(started_at=start, until=start + timedelta(days=10)) == 10
    assert (
        health.active_days(
            started_at=start, until=start + timedelta(days=10), paused_seconds=2 * 86400
        )
        == 8
    )
    # Paused on day 4 and still paused on day 10: the clock stopped on day 4.
    assert (
        health.active_days(
            started_at=start,
            until=start + timedelta(days=10),
            paused_at=start + timedelta(days=4),
        )
        == 4
    )
    assert health.active_days(started_at=start, until=start - timedelta(days=1)) == 0


# --- events carry no private text ----------------------------------------------------------


def test_feedback_event_carries_the_rating_but_never_the_comment() -> None:
    assert "comment" not in events_pb2.FeedbackSubmitted.DESCRIPTOR.fields_by_name
    answer = Feedback(
        organization_id="org",
        program_id="prog",
        feedback_id="f-1",
        relationship_id="r-1",
        author_id="mentee-1",
        survey_point="day-30",
        rating=4,
        comment="my mentor is always late",
        submitted_at=NOW,
    )
    event = convert.feedback_submitted(answer, domain.MENTEE)
    assert event.feedback_submitted.rating == 4
    assert event.feedback_submitted.author_role == common_pb2.ROLE_MENTEE
    assert b"always late" not in event.SerializeToString()
    assert (
        event.envelope.event_id
        == convert.feedback_submitted(answer, domain.MENTEE).envelope.event_id
    )


def test_goal_event_id_follows_the_version_and_omits_the_title() -> None:
    goal = Goal(
        organization_id="org",
        program_id="prog",
        goal_id="g-1",
        relationship_id="r-1",
        mentee_id="mentee-1",
        title="Get promoted secretly",
        target_date=NOW,
        progress=40,
        status="open",
        milestones=[Milestone(milestone_id="m", title="x", done=True)],
        created_by="mentee-1",
        created_at=NOW,
        updated_at=NOW,
        version=3,
    )
    first = convert.goal_updated(goal, "progress_updated")
    assert first.goal_updated.version == 3
    assert (first.goal_updated.milestones, first.goal_updated.milestones_done) == (1, 1)
    assert b"secretly" not in first.SerializeToString()
    assert (
        convert.goal_updated(goal, "progress_updated").envelope.event_id == first.envelope.event_id
    )
    goal.version = 4
    assert (
        convert.goal_updated(goal, "progress_updated").envelope.event_id != first.envelope.event_id
    )


def test_session_logged_from_a_held_session_matches_log_session_ids() -> None:
    session = Session(
        organization_id="org",
        program_id="prog",
        session_id="s-1",
        relationship_id="r-1",
        held_at=NOW,
        minutes=30,
        mode="phone",
        status="held",
    )
    event = convert.session_logged(session)
    assert event.session_logged.minutes == 30
    assert event.session_logged.mode == common_pb2.SESSION_MODE_PHONE
    assert event.envelope.event_id == stable_event_id("session-logged", "org", "s-1")
