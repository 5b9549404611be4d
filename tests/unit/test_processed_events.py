"""Handled events are remembered per organisation, for a week: an event id reused by another
organisation's producer is still handled, and the record expires by itself."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import mongoengine
import pytest

from services.common import idempotency
from services.common.api import events_pb2
from services.common.events import new_event
from services.common.idempotency import ProcessedEvent
from tests.unit import memory_db


@pytest.fixture(autouse=True)
def db() -> Iterator[str]:
    yield memory_db.connect_fresh("engagement", "test_processed")
    mongoengine.disconnect()


def proposal(organization_id: str, event_id: str) -> events_pb2.Event:
    return new_event(
        producer="matching",
        organization_id=organization_id,
        program_id="p1",
        payload=events_pb2.MatchProposed(match_id="m1", mentor_id="a", mentee_id="b"),
        event_id=event_id,
    )


def test_an_event_id_handled_in_one_organisation_is_new_in_another() -> None:
    acme, globex = proposal("acme", "e-1"), proposal("globex", "e-1")
    idempotency.mark_processed([acme], "engagement")
    assert idempotency.unprocessed([acme, globex], "engagement") == [globex]


def test_a_redelivery_and_a_duplicate_in_one_batch_are_dropped() -> None:
    first = proposal("acme", "e-2")
    assert idempotency.unprocessed([first, first], "engagement") == [first]
    idempotency.mark_processed([first], "engagement")
    assert idempotency.unprocessed([first], "engagement") == []


def test_the_record_expires_after_a_week_through_a_ttl_index() -> None:
    idempotency.mark_processed([proposal("acme", "e-3")], "engagement")
    [record] = ProcessedEvent.objects(organization_id="acme", event_id="e-3")
    lasts = record.expires_at - record.processed_at
    assert lasts == timedelta(days=idempotency.PROCESSED_EVENT_DAYS)
    indexes = ProcessedEvent._get_collection().index_information()
    assert any(
        spec["key"] == [("expires_at", 1)] and spec.get("expireAfterSeconds") == 0
        for spec in indexes.values()
    ), indexes
