"""Stock tallies kept entity write by entity write give what counting the whole state gives, for
any order of writes and removals, any cohort, and any moment the at-risk figure is read at."""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.analytics import kpis, program_state, sharded, stocks
from services.common.api import common_pb2

KEY = "org-1/prog-1"
DAY = program_state.DAY_SECONDS
START = 1_772_438_400.0
COHORTS = ["", "pilot", "autumn"]
# Moments that land on, just before and just after day boundaries, as last contacts do.
MOMENTS = st.one_of(
    st.floats(START, START + 40 * DAY, allow_nan=False),
    st.integers(0, 40).map(lambda days: START + days * DAY),
    st.integers(0, 40).map(lambda days: START + days * DAY - 0.001),
)


def _person(role: int, cohort: str, approved: float, active: bool, *rest: Any) -> list[Any]:
    matched, trained = rest
    return [role, cohort, approved, active, matched, trained, ["python"], 1]


def _relationship(cohort: str, started: Any, active: bool, contact: float, *rest: Any) -> list[Any]:
    (sessions, minutes, messages), rating = rest
    return ["m", "e", cohort, started, active, contact, sessions, minutes, messages, rating, None]


people = st.builds(
    _person,
    st.sampled_from([common_pb2.ROLE_MENTOR, common_pb2.ROLE_MENTEE, 0]),
    st.sampled_from(COHORTS),
    MOMENTS,
    st.booleans(),
    st.one_of(st.none(), MOMENTS),
    st.booleans(),
)
relationships = st.builds(
    _relationship,
    st.sampled_from(COHORTS),
    st.one_of(st.none(), MOMENTS),
    st.booleans(),
    MOMENTS,
    st.tuples(st.integers(0, 9), st.integers(0, 600), st.integers(0, 9)),
    st.integers(0, 5),
)
writes = st.lists(
    st.one_of(
        st.tuples(st.just("people"), st.sampled_from(["p1", "p2", "p3", "p4"]), people),
        st.tuples(st.just("relationships"), st.sampled_from(["r1", "r2", "r3"]), relationships),
        st.tuples(
            st.sampled_from(["people", "relationships"]),
            st.sampled_from(["p1", "p2", "r1", "r2"]),
            st.none(),
        ),
    ),
    max_size=40,
)


def whole(index: sharded.Index) -> dict[str, Any]:
    """The same entities as one plain state, which the tallies are counted from."""
    state = program_state.new_state()
    stored = index.stored(KEY, False)
    state["cadence_days"] = stored["cadence_days"]
    for kind in ("people", "relationships"):
        state[kind] = dict(stored[kind].items())
    return state


def readings(tally: stocks.Tally, moments: list[float]) -> tuple[Any, ...]:
    return (
        (tally.people, tally.mentors, tally.mentees, tally.matched, tally.trained),
        (tally.median_wait(), tally.mean_wait()),
        (tally.relationships, tally.active, tally.sessions, tally.minutes, tally.messages),
        [tally.at_risk(since) for since in moments],
    )


def counted(state: dict[str, Any], cohort: str, moments: list[float]) -> tuple[Any, ...]:
    """The same readings, counted from the entities one by one as the figures once were."""
    p, r = program_state, program_state
    people = [
        x for x in state["people"].values() if x[p.P_ACTIVE] and cohort in ("", x[p.P_COHORT])
    ]
    mentees = [x for x in people if x[p.P_ROLE] == common_pb2.ROLE_MENTEE]
    matched = [x for x in mentees if x[p.P_MATCHED_AT] is not None]
    waits = [(x[p.P_MATCHED_AT] - x[p.P_APPROVED_AT]) / DAY for x in matched]
    pairs = [
        x
        for x in state["relationships"].values()
        if x[r.R_STARTED_AT] is not None and cohort in ("", x[r.R_COHORT])
    ]
    active = [x for x in pairs if x[r.R_ACTIVE]]
    return (
        (
            len(people),
            sum(1 for x in people if x[p.P_ROLE] == common_pb2.ROLE_MENTOR),
            len(mentees),
            len(matched),
            sum(1 for x in people if x[p.P_TRAINED]),
        ),
        (
            statistics.median(waits) if waits else 0.0,
            statistics.fmean(waits) if waits else 0.0,
        ),
        (
            len(pairs),
            len(active),
            sum(x[r.R_SESSIONS] for x in pairs),
            sum(x[r.R_MINUTES] for x in pairs),
            sum(x[r.R_MESSAGES] for x in pairs),
        ),
        [
            sum(
                1
                for x in active
                if x[r.R_LAST_CONTACT] <= since or 1 <= x[r.R_RATING] <= stocks.LOW_RATING
            )
            for since in moments
        ],
    )


@settings(max_examples=300, deadline=None)
@given(writes, MOMENTS)
def test_kept_tallies_equal_the_counted_ones(
    written: list[tuple[str, str, Any]], since: float
) -> None:
    index = sharded.Index()
    index.put(KEY, sharded.new_summary(False))
    for kind, entity_id, value in written:
        index.put(sharded.entity_key(KEY, kind, entity_id), value)
    plain = whole(index)
    # At the moment drawn, at each last contact and just before it: the cut is "at or before".
    contacts = [r[program_state.R_LAST_CONTACT] for r in plain["relationships"].values()]
    moments = [since, *contacts, *(at - 0.5 for at in contacts)]
    for cohort in COHORTS:
        expected = counted(plain, cohort, moments)
        assert readings(index.stored(KEY, False).tally(cohort), moments) == expected
        assert readings(stocks.tally(plain, cohort), moments) == expected


@settings(max_examples=200, deadline=None)
@given(writes, MOMENTS, st.integers(1, 30))
def test_figures_read_from_kept_tallies_equal_the_walk(
    written: list[tuple[str, str, Any]], now: float, cadence: int
) -> None:
    index = sharded.Index()
    index.put(KEY, {**sharded.new_summary(False), "cadence_days": cadence})
    for kind, entity_id, value in written:
        index.put(sharded.entity_key(KEY, kind, entity_id), value)
    plain = whole(index)
    for cohort in COHORTS:
        for days in (kpis.DayRange(), kpis.DayRange(int(START // DAY) + 3, None)):
            kept = kpis.figures(index.stored(KEY, False), cohort, days, now + 30 * DAY)
            walked = kpis.figures(plain, cohort, days, now + 30 * DAY)
            assert kept.scalars == walked.scalars
        kept_count = kpis.count_at_risk(index.stored(KEY, False), cohort, now)
        assert kept_count == kpis.count_at_risk(plain, cohort, now)


def test_a_read_does_not_walk_the_entities(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stored state's figures come from its tallies: a read never iterates its people."""
    index = sharded.Index()
    index.put(KEY, sharded.new_summary(False))
    for n in range(50):
        person = [common_pb2.ROLE_MENTEE, "", START, True, START + DAY * (n % 7), False, [], 0]
        index.put(sharded.entity_key(KEY, "people", f"p{n}"), person)
    stored = index.stored(KEY, False)
    kind = sharded.Index.kind

    def unwalked(self: sharded.Index, state_key: str, name: str) -> Any:
        assert name not in stocks.TALLIED, f"read every one of the {name}"
        return kind(self, state_key, name)

    monkeypatch.setattr(sharded.Index, "kind", unwalked)
    figures = kpis.figures(stored, "", kpis.DayRange(), START + 30 * DAY)
    assert figures.scalars["mentees_matched"] == 50
    assert figures.scalars["median_days_to_match"] == 3.0
