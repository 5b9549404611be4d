"""The matching worker's checks on incoming events: what it dead-letters, and why."""

from __future__ import annotations

import math

import pytest

from services.common.api import events_pb2
from services.matching.worker import _check


def run_requested(**fields: object) -> events_pb2.Event:
    return events_pb2.Event(matching_run_requested=events_pb2.MatchingRunRequested(**fields))


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"run_id": "r1"}, None),
        ({"run_id": "r1", "max_gap": 0.001}, None),
        ({}, "matching_run_requested.run_id is missing"),
        ({"run_id": "r1", "max_gap": 0.5}, "matching_run_requested.max_gap must be"),
        ({"run_id": "r1", "max_gap": -0.1}, "matching_run_requested.max_gap must be"),
        ({"run_id": "r1", "max_gap": math.nan}, "matching_run_requested.max_gap must be"),
    ],
)
def test_run_requests_are_checked(fields: dict[str, object], reason: str | None) -> None:
    got = _check(run_requested(**fields))
    if reason is None:
        assert got is None
    else:
        assert got is not None and got.startswith(reason)
