"""The figures the CLI and the report show: every KPI of the contract, days as people name them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mentoring import figures
from services.common.api import analytics_pb2


def test_every_kpi_of_the_contract_is_shown_once() -> None:
    fields = {f.name for f in analytics_pb2.ProgramKpis.DESCRIPTOR.fields}
    shown = [f.field for f in figures.FIGURES]
    assert len(shown) == len(set(shown))
    # A field added to ProgramKpis must be placed in a group (or named as not a figure).
    assert set(shown) | figures.NOT_FIGURES == fields
    assert not set(shown) & figures.NOT_FIGURES


def test_every_weekly_figure_has_a_column() -> None:
    fields = {f.name for f in analytics_pb2.WeeklyKpis.DESCRIPTOR.fields}
    assert {name for name, _ in figures.WEEKLY_COLUMNS} == fields - {"week_start"}


def test_inclusive_days_become_the_contracts_half_open_range() -> None:
    scope = figures.time_range(date(2025, 1, 1), date(2025, 3, 31))
    assert scope is not None
    assert scope.start.ToDatetime(tzinfo=UTC) == datetime(2025, 1, 1, tzinfo=UTC)
    assert scope.end.ToDatetime(tzinfo=UTC) == datetime(2025, 4, 1, tzinfo=UTC)
    assert figures.time_range(None, None) is None
    only_start = figures.time_range(date(2025, 1, 1), None)
    assert only_start is not None and not only_start.HasField("end")
    one_day = figures.time_range(date(2025, 2, 28), date(2025, 2, 28))
    assert one_day is not None
    assert one_day.end.ToDatetime(tzinfo=UTC) == datetime(2025, 3, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="before"):
        figures.time_range(date(2025, 3, 1), date(2025, 2, 1))


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    st.integers(min_value=0, max_value=4000),
)
def test_the_days_asked_for_are_the_days_reported(first: date, length: int) -> None:
    last = date.fromordinal(first.toordinal() + length)
    kpis = analytics_pb2.ProgramKpis(range=figures.time_range(first, last))
    assert figures.period(kpis) == (first.isoformat(), last.isoformat())


def test_open_bounds_read_as_open() -> None:
    assert figures.period(analytics_pb2.ProgramKpis()) == ("", "")
    until = figures.time_range(None, date(2025, 1, 31))
    kpis = analytics_pb2.ProgramKpis(program_id="p", range=until)
    assert figures.period(kpis) == ("", "2025-01-31")
    assert figures.describe_scope(kpis) == "program p, start to 2025-01-31"


def test_figures_read_as_people_read_them() -> None:
    assert figures.show(1234) == "1,234"
    assert figures.show(26 / 36, "rate") == "72.2%"
    assert figures.show(3.25, "days") == "3.2"
    assert figures.show(4.125, "rating") == "4.12"
    assert figures.show(0.0, "rating") == "-"
    assert figures.show(-0.3, "trend") == "-0.30"


def test_ratings_are_always_five_counts() -> None:
    assert figures.ratings(analytics_pb2.ProgramKpis()) == [0, 0, 0, 0, 0]
    assert figures.ratings(analytics_pb2.ProgramKpis(satisfaction_distribution=[1, 2])) == [
        1,
        2,
        0,
        0,
        0,
    ]
