"""KPI arithmetic: how events move a program's state, and the figures read from it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from services.analytics import kpis, program_state
from services.analytics.kpis import DayRange, figures
from services.common.api import common_pb2, events_pb2
from services.common.events import new_event

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
MENTOR, MENTEE = common_pb2.ROLE_MENTOR, common_pb2.ROLE_MENTEE


def at(days: float) -> datetime:
    return START + timedelta(days=days)


def event(payload: Message, day: float = 0.0) -> events_pb2.Event:
    return new_event(
        producer="tests",
        organization_id="org-1",
        program_id="prog-1",
        payload=payload,
        occurred_at=at(day),
    )


def registered(pid: str, role: int, day: float = 0.0, **kw: object) -> events_pb2.Event:
    cohort = str(kw.pop("cohort", ""))
    return event(
        events_pb2.ParticipantRegistered(
            participant_id=pid,
            role=role,  # type: ignore[arg-type]
            profile=common_pb2.Profile(cohort_id=cohort),
            **kw,  # type: ignore[arg-type]
        ),
        day,
    )


def started(rid: str, mentor: str, mentee: str, day: float) -> events_pb2.Event:
    return event(
        events_pb2.RelationshipStarted(relationship_id=rid, mentor_id=mentor, mentee_id=mentee),
        day,
    )


def session(rid: str, day: float, minutes: int = 60) -> events_pb2.Event:
    return event(
        events_pb2.SessionLogged(session_id=f"s-{rid}-{day}", relationship_id=rid, minutes=minutes),
        day,
    )


def fold(*events: events_pb2.Event) -> program_state.State:
    state = program_state.new_state()
    for e in events:
        program_state.apply(state, e)
    # What the Faust table stores and gives back: the state must survive a JSON round trip.
    restored: program_state.State = json.loads(json.dumps(state))
    return restored


def now_after(days: float) -> float:
    return at(days).timestamp()


def test_registrations_count_by_role_and_cohort() -> None:
    state = fold(
        registered("m1", MENTOR, cohort="pilot"),
        registered("e1", MENTEE, cohort="pilot"),
        registered("e2", MENTEE, cohort="wave-2"),
        registered("e2", MENTEE, cohort="wave-2"),  # the same person again changes nothing
    )
    whole = figures(state, "", DayRange(), now_after(1)).scalars
    assert (whole["mentors"], whole["mentees"], whole["approvals"]) == (1, 2, 3)
    pilot = figures(state, "pilot", DayRange(), now_after(1)).scalars
    assert (pilot["mentors"], pilot["mentees"], pilot["approvals"]) == (1, 1, 2)


def test_applications_screening_and_campaigns() -> None:
    state = fold(
        event(events_pb2.ApplicationSubmitted(participant_id="a", role=MENTEE, campaign="email")),
        event(events_pb2.ApplicationSubmitted(participant_id="b", role=MENTOR, campaign="email")),
        event(events_pb2.ApplicationSubmitted(participant_id="c", role=MENTEE)),
        event(events_pb2.ApplicationSubmitted(participant_id="c", role=MENTEE)),
        event(
            events_pb2.ApplicationScreened(
                participant_id="b", decision=events_pb2.SCREENING_DECISION_REJECTED
            )
        ),
        event(
            events_pb2.ApplicationScreened(
                participant_id="c", decision=events_pb2.SCREENING_DECISION_WAITLISTED
            )
        ),
        registered("a", MENTEE, campaign="email"),
    )
    result = figures(state, "", DayRange(), now_after(1))
    s = result.scalars
    assert (s["applications"], s["mentor_applications"], s["mentee_applications"]) == (3, 1, 2)
    assert (s["approvals"], s["rejections"], s["waitlisted"]) == (1, 1, 1)
    assert result.campaigns == [("", 1, 0), ("email", 2, 1)]


def test_match_rate_and_time_to_match() -> None:
    state = fold(
        registered("m1", MENTOR),
        registered("e1", MENTEE, day=0),
        registered("e2", MENTEE, day=0),
        registered("e3", MENTEE, day=0),
        started("r1", "m1", "e1", day=4),
        started("r2", "m1", "e2", day=10),
        started("r3", "m1", "e2", day=20),  # a second relationship: still matched once, at 10
    )
    s = figures(state, "", DayRange(), now_after(21)).scalars
    assert s["mentees_matched"] == 2
    assert s["match_rate"] == pytest.approx(2 / 3)
    assert s["median_days_to_match"] == pytest.approx(7.0)
    assert s["mean_days_to_match"] == pytest.approx(7.0)
    assert s["relationships_started"] == 3


def test_a_relationship_read_before_the_registration_still_matches_the_mentee() -> None:
    state = fold(started("r1", "m1", "e1", day=5), registered("e1", MENTEE, day=1))
    s = figures(state, "", DayRange(), now_after(6)).scalars
    assert s["mentees_matched"] == 1
    assert s["median_days_to_match"] == pytest.approx(4.0)


def test_events_read_before_their_relationship_started_still_count() -> None:
    in_order = fold(
        registered("m1", MENTOR),
        registered("e1", MENTEE),
        started("r1", "m1", "e1", day=1),
        session("r1", day=20),
        event(events_pb2.MessageSent(relationship_id="r1", message_id="x"), 21),
    )
    shuffled = fold(
        session("r1", day=20),
        event(events_pb2.MessageSent(relationship_id="r1", message_id="x"), 21),
        registered("m1", MENTOR),
        started("r1", "m1", "e1", day=1),
        registered("e1", MENTEE),
    )
    for state in (in_order, shuffled):
        s = figures(state, "", DayRange(), now_after(22)).scalars
        assert (s["active_relationships"], s["sessions"], s["messages"]) == (1, 1, 1)
        assert (s["sessions_per_relationship"], s["messages_per_relationship"]) == (1.0, 1.0)
        assert s["hours_per_relationship"] == 1.0
        assert (s["mentees_matched"], s["relationships_at_risk"]) == (1, 0)
    assert shuffled["relationships"] == in_order["relationships"]


def test_time_range_counts_flows_inside_it_and_stocks_as_of_now() -> None:
    state = fold(
        registered("m1", MENTOR),
        registered("e1", MENTEE),
        started("r1", "m1", "e1", day=1),
        session("r1", day=2, minutes=30),
        session("r1", day=9, minutes=45),
        session("r1", day=16, minutes=60),
    )
    second_week = DayRange(int(at(7).timestamp() // 86400), int(at(14).timestamp() // 86400))
    s = figures(state, "", second_week, now_after(17)).scalars
    assert (s["sessions"], s["session_minutes"]) == (1, 45)
    assert (s["approvals"], s["relationships_started"]) == (0, 0)
    assert (s["mentors"], s["active_relationships"]) == (1, 1)


def test_weekly_rows_group_by_iso_week() -> None:
    state = fold(
        registered("m1", MENTOR),
        registered("e1", MENTEE),
        started("r1", "m1", "e1", day=0),
        session("r1", day=1),
        session("r1", day=6.5),  # Sunday: same week as Monday START
        session("r1", day=7),  # next Monday
    )
    weekly = figures(state, "", DayRange(), now_after(8)).weekly
    assert [(w["week_start_day"], w["sessions"]) for w in weekly] == [
        (int(START.timestamp() // 86400), 2),
        (int(START.timestamp() // 86400) + 7, 1),
    ]
    assert weekly[0]["mentee_applications"] == 0 and weekly[0]["approvals"] == 2


def test_relationship_endings_and_active_count() -> None:
    state = fold(
        registered("m1", MENTOR),
        registered("e1", MENTEE),
        registered("e2", MENTEE),
        started("r1", "m1", "e1", day=0),
        started("r2", "m1", "e2", day=0),
        event(events_pb2.RelationshipEnded(relationship_id="r1", completed=True), 30),
        event(events_pb2.RelationshipEnded(relationship_id="r1", completed=True), 31),
        event(events_pb2.RelationshipEnded(relationship_id="r2", not_a_good_fit=True), 32),
    )
    s = figures(state, "", DayRange(), now_after(33)).scalars
    assert (s["active_relationships"], s["relationships_completed"]) == (0, 1)
    assert s["relationships_closed_early"] == 1


def test_satisfaction_distribution_mean_and_trend() -> None:
    ratings = [(0, 2), (1, 3), (7, 2), (8, 2), (14, 4), (15, 5), (21, 5), (22, 4)]
    state = fold(
        registered("m1", MENTOR),
        registered("e1", MENTEE),
        started("r1", "m1", "e1", day=0),
        *(
            event(
                events_pb2.FeedbackSubmitted(
                    feedback_id=f"f{day}", relationship_id="r1", rating=rating
                ),
                day,
            )
            for day, rating in ratings
        ),
        event(events_pb2.FeedbackSubmitted(feedback_id="bad", relationship_id="r1", rating=9)),
    )
    result = figures(state, "", DayRange(), now_after(23))
    assert result.satisfaction_distribution == [0, 3, 1, 2, 2]
    assert result.scalars["satisfaction_mean"] == pytest.approx(27 / 8)
    assert result.scalars["feedback_responses"] == 8
    # Four weeks with feedback: the last two (mean 4.5) against the first two (mean 2.25).
    assert result.scalars["satisfaction_trend"] == pytest.approx(4.5 - 2.25)


def test_goals_count_once_and_completion_rate() -> None:
    def goal(gid: str, status: int, version: int) -> events_pb2.Event:
        return event(
            events_pb2.GoalUpdated(
                goal_id=gid,
                relationship_id="r1",
                status=status,  # type: ignore[arg-type]
                version=version,
            )
        )

    state = fold(
        goal("g1", events_pb2.GOAL_STATUS_OPEN, 1),
        goal("g1", events_pb2.GOAL_STATUS_OPEN, 2),
        goal("g1", events_pb2.GOAL_STATUS_ACHIEVED, 3),
        goal("g1", events_pb2.GOAL_STATUS_ACHIEVED, 4),
        goal("g2", events_pb2.GOAL_STATUS_OPEN, 1),
    )
    s = figures(state, "", DayRange(), now_after(1)).scalars
    assert (s["goals_set"], s["goals_achieved"], s["goal_completion_rate"]) == (2, 1, 0.5)


def test_training_completion_rate_counts_people_not_modules() -> None:
    state = fold(
        registered("m1", MENTOR),
        registered("e1", MENTEE),
        *(
            event(events_pb2.TrainingCompleted(resource_id=r, participant_id="e1"))
            for r in ("intro", "goals")
        ),
    )
    s = figures(state, "", DayRange(), now_after(1)).scalars
    assert (s["trainings_completed"], s["participants_trained"]) == (2, 1)
    assert s["training_completion_rate"] == 0.5


def test_withdrawal_leaves_the_stock_once() -> None:
    state = fold(
        registered("e1", MENTEE),
        event(events_pb2.ParticipantWithdrawn(participant_id="e1", role=MENTEE)),
        event(events_pb2.ParticipantWithdrawn(participant_id="e1", role=MENTEE)),
    )
    s = figures(state, "", DayRange(), now_after(1)).scalars
    assert (s["mentees"], s["withdrawals"]) == (0, 1)


def test_at_risk_when_out_of_touch_or_poorly_rated() -> None:
    state = fold(
        event(
            events_pb2.ProgramChanged(
                name="p", settings=events_pb2.ProgramSettings(meeting_cadence_days=7)
            )
        ),
        registered("m1", MENTOR),
        *(registered(f"e{i}", MENTEE) for i in range(4)),
        started("quiet", "m1", "e0", day=0),
        session("quiet", day=2),
        started("never", "m1", "e1", day=0),
        started("fine", "m1", "e2", day=0),
        session("fine", day=25),
        started("unhappy", "m1", "e3", day=0),
        session("unhappy", day=25),
        event(
            events_pb2.FeedbackSubmitted(feedback_id="f", relationship_id="unhappy", rating=2),
            25,
        ),
    )
    rows = {row.relationship_id: row for row in kpis.at_risk(state, "", now_after(30))}
    assert set(rows) == {"quiet", "never", "unhappy"}
    assert rows["quiet"].reasons == ("no contact for 28 days",)
    assert rows["never"].reasons == ("no session in the 30 days since the start",)
    assert rows["unhappy"].reasons == ("latest check-in rating 2/5",)
    assert figures(state, "", DayRange(), now_after(30)).scalars["relationships_at_risk"] == 3
    # With a two-week cadence (the default) the pair quiet for 27 days is not late yet.
    state["cadence_days"] = program_state.DEFAULT_CADENCE_DAYS
    late = {r.relationship_id for r in kpis.at_risk(state, "", now_after(29))}
    assert late == {"never", "unhappy"}


def test_skill_balance_shows_shortages_first_and_follows_updates() -> None:
    state = fold(
        registered("m1", MENTOR, skills=["python", "sql"], capacity=2),
        registered("m2", MENTOR, skills=["python"], capacity=1),
        *(registered(f"e{i}", MENTEE, skills=["leadership", "python"]) for i in range(3)),
        registered("e9", MENTEE, skills=["sql"]),
        event(
            events_pb2.ParticipantUpdated(
                participant_id="m2", role=MENTOR, skills=["leadership"], capacity=1
            )
        ),
    )
    rows = [
        (r.skill, r.mentors, r.mentor_capacity, r.mentees, r.gap)
        for r in kpis.skill_balance(state, "")
    ]
    assert rows == [
        ("leadership", 1, 1, 3, -2),
        ("python", 1, 2, 3, -1),
        ("sql", 1, 2, 1, 1),
    ]
    assert [r.skill for r in kpis.skill_balance(state, "", limit=1)] == ["leadership"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 60), st.integers(1, 120)),
        min_size=1,
        max_size=30,
    ),
    st.integers(0, 60),
    st.integers(1, 60),
)
def test_ranges_partition_the_totals(sessions: list[tuple[int, int]], cut: int, span: int) -> None:
    """Flows in [a, b) plus flows outside it add up to the all-time figures."""
    state = fold(
        registered("m1", MENTOR),
        registered("e1", MENTEE),
        started("r1", "m1", "e1", day=0),
        *(session("r1", day, minutes) for day, minutes in sessions),
    )
    base = int(START.timestamp() // 86400)
    inside = DayRange(base + cut, base + cut + span)
    before, after = DayRange(None, base + cut), DayRange(base + cut + span, None)
    total = figures(state, "", DayRange(), now_after(61)).scalars
    parts = [figures(state, "", r, now_after(61)).scalars for r in (inside, before, after)]
    for name in ("sessions", "session_minutes"):
        assert sum(p[name] for p in parts) == total[name]
    assert total["sessions"] == len(sessions)
    assert total["session_minutes"] == sum(m for _, m in sessions)


def test_every_gauged_figure_is_a_program_kpis_field() -> None:
    from services.common.api import analytics_pb2

    fields = set(analytics_pb2.ProgramKpis.DESCRIPTOR.fields_by_name)
    assert set(kpis.GAUGED) <= fields
    assert {"relationships_at_risk", "match_rate", "satisfaction_mean"} <= set(kpis.GAUGED)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.floats(0, 200 * 86_400, allow_nan=False),
                st.integers(0, 200).map(lambda days: days * 86_400.0),
            ),
            st.integers(0, 5),
            st.booleans(),
            st.integers(0, 3),
        ),
        max_size=30,
    ),
    st.integers(1, 30),
    st.sampled_from([0.0, 0.5, 86_399.999, 86_400.0]),
)
def test_the_at_risk_figure_counts_the_at_risk_list(
    pairs: list[tuple[float, int, bool, int]], cadence: int, offset: float
) -> None:
    state = program_state.new_state()
    state["cadence_days"] = cadence
    now = START.timestamp() + 200 * 86_400 + offset
    for n, (ago, rating, active, sessions) in enumerate(pairs):
        state["relationships"][f"r{n}"] = [
            "m", "e", "", START.timestamp(), active, now - ago, sessions, 0, 0, rating, None
        ]  # fmt: skip
    assert kpis.count_at_risk(state, "", now) == len(kpis.at_risk(state, "", now))
