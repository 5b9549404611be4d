"""The event envelope: building, keying, routing and decoding platform events."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.api import common_pb2, events_pb2
from services.common.events import (
    DEAD_LETTER_TOPIC,
    EVENT_TOPICS,
    MAX_ITEMS,
    MAX_LENGTH,
    PROGRAM_TOPICS,
    SCHEMA_VERSION,
    TOPIC_BY_PAYLOAD,
    EventDecodeError,
    decode_event,
    new_event,
    partition_key,
    stable_event_id,
    topic_of,
)

ORG = "org-1"
PROGRAM = "prog-1"

# Written out literally on purpose: the topic names are part of the wire contract.
EXPECTED_TOPICS = {
    "participant_registered": "participant-registered",
    "match_proposed": "match-proposed",
    "match_responded": "match-responded",
    "relationship_started": "relationship-started",
    "session_logged": "session-logged",
    "relationship_ended": "relationship-ended",
    "match_expired": "match-expired",
    "matching_run_requested": "matching-run-requested",
    "matching_run_completed": "matching-run-completed",
    "hr_event": "hr-events",
    "goal_updated": "goal-updated",
    "feedback_submitted": "feedback-submitted",
    "message_sent": "message-sent",
    "training_completed": "training-completed",
    "notification_requested": "notification-requested",
    "session_planned": "session-planned",
    "program_changed": "program-changed",
    "participant_updated": "participant-updated",
    "participant_withdrawn": "participant-withdrawn",
    "application_submitted": "application-submitted",
    "application_screened": "application-screened",
    "participant_erased": "participant-erased",
}


def payloads() -> dict[str, Message]:
    return {
        "participant_registered": events_pb2.ParticipantRegistered(
            participant_id="p-1",
            role=common_pb2.ROLE_MENTOR,
            display_name="Ada",
            skills=["python"],
            capacity=2,
        ),
        "match_proposed": events_pb2.MatchProposed(
            match_id="m-1", mentor_id="p-1", mentee_id="p-2", score=0.5
        ),
        "match_responded": events_pb2.MatchResponded(
            match_id="m-1",
            participant_id="p-1",
            decision=common_pb2.MATCH_DECISION_ACCEPT,
            status=common_pb2.MATCH_STATUS_PROPOSED,
        ),
        "relationship_started": events_pb2.RelationshipStarted(
            relationship_id="r-1", match_id="m-1", mentor_id="p-1", mentee_id="p-2"
        ),
        "session_logged": events_pb2.SessionLogged(
            session_id="s-1", relationship_id="r-1", minutes=45
        ),
        "relationship_ended": events_pb2.RelationshipEnded(
            relationship_id="r-1", match_id="m-1", reason="moved on", not_a_good_fit=True
        ),
        "match_expired": events_pb2.MatchExpired(match_id="m-1", mentor_id="p-1", mentee_id="p-2"),
        "matching_run_requested": events_pb2.MatchingRunRequested(run_id="run-1"),
        "matching_run_completed": events_pb2.MatchingRunCompleted(run_id="run-1", matched=3),
        "goal_updated": events_pb2.GoalUpdated(goal_id="g-1"),
        "feedback_submitted": events_pb2.FeedbackSubmitted(feedback_id="f-1", rating=4),
        "message_sent": events_pb2.MessageSent(message_id="m-1"),
        "training_completed": events_pb2.TrainingCompleted(resource_id="t-1"),
        "notification_requested": events_pb2.NotificationRequested(recipient_id="p-1"),
        "session_planned": events_pb2.SessionPlanned(
            session_id="s-1", change=events_pb2.SESSION_PLAN_CHANGE_MOVED, sequence=1
        ),
        "program_changed": events_pb2.ProgramChanged(),
        "participant_updated": events_pb2.ParticipantUpdated(participant_id="p-1"),
        "participant_withdrawn": events_pb2.ParticipantWithdrawn(participant_id="p-1"),
        "application_submitted": events_pb2.ApplicationSubmitted(
            participant_id="p-1", role=common_pb2.ROLE_MENTEE, campaign="intranet"
        ),
        "application_screened": events_pb2.ApplicationScreened(
            participant_id="p-1", decision=events_pb2.SCREENING_DECISION_WAITLISTED
        ),
        "participant_erased": events_pb2.ParticipantErased(
            participant_id="p-1", role=common_pb2.ROLE_MENTEE, erasure_id="e-1"
        ),
        "hr_event": events_pb2.HrEvent(
            hr_person_id="h-1", manager_changed=events_pb2.ManagerChanged(manager_id="h-2")
        ),
    }


def make_event(kind: str = "participant_registered", **kwargs: Any) -> events_pb2.Event:
    return new_event(
        producer="tests",
        organization_id=ORG,
        program_id=PROGRAM,
        payload=payloads()[kind],
        **kwargs,
    )


# --- new_event ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(EXPECTED_TOPICS))
def test_new_event_fills_every_envelope_field(kind: str) -> None:
    before = datetime.now(UTC)
    event = make_event(kind)
    after = datetime.now(UTC)

    env = event.envelope
    assert uuid.UUID(env.event_id).version == 4
    assert env.event_type == kind
    assert event.WhichOneof("payload") == kind
    assert getattr(event, kind) == payloads()[kind]
    assert env.organization_id == ORG
    assert env.program_id == PROGRAM
    assert env.producer == "tests"
    assert env.schema_version == SCHEMA_VERSION == 1
    assert env.HasField("occurred_at")
    occurred = env.occurred_at.ToDatetime(tzinfo=UTC)
    # Milliseconds, like the stored records an event describes (services.common.clock).
    assert occurred.microsecond % 1000 == 0
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= occurred <= after


def test_new_event_ids_are_unique_per_call() -> None:
    ids = {make_event().envelope.event_id for _ in range(50)}
    assert len(ids) == 50


def test_new_event_keeps_a_given_event_id_and_occurred_at() -> None:
    at = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    event = make_event(event_id="fixed-id", occurred_at=at)
    assert event.envelope.event_id == "fixed-id"
    assert event.envelope.occurred_at.ToDatetime(tzinfo=UTC) == at


def test_new_event_rejects_a_message_that_is_not_a_payload() -> None:
    with pytest.raises(KeyError):
        new_event(
            producer="tests",
            organization_id=ORG,
            program_id=PROGRAM,
            payload=common_pb2.CriterionScore(criterion="x"),
        )


# --- stable_event_id -----------------------------------------------------------------------


def test_stable_event_id_is_deterministic_and_a_uuid() -> None:
    first = stable_event_id("match-proposed", ORG, "m-1")
    again = stable_event_id("match-proposed", ORG, "m-1")
    assert first == again
    assert uuid.UUID(first).version == 5


def test_stable_event_id_differs_when_any_part_differs() -> None:
    base = ("match-proposed", ORG, "m-1")
    ids = {
        stable_event_id(*base),
        stable_event_id("match-responded", ORG, "m-1"),
        stable_event_id("match-proposed", "org-2", "m-1"),
        stable_event_id("match-proposed", ORG, "m-2"),
        stable_event_id(*base[:2]),
    }
    assert len(ids) == 5


# --- topics and keys -----------------------------------------------------------------------


def test_topic_by_payload_maps_every_payload_to_its_hyphenated_topic() -> None:
    oneof = events_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"]
    assert {f.name for f in oneof.fields} == set(EXPECTED_TOPICS)
    assert TOPIC_BY_PAYLOAD == EXPECTED_TOPICS
    assert set(EVENT_TOPICS) == set(EXPECTED_TOPICS.values())
    assert DEAD_LETTER_TOPIC not in EVENT_TOPICS


@pytest.mark.parametrize(("kind", "topic"), sorted(EXPECTED_TOPICS.items()))
def test_topic_of_routes_each_event_to_its_topic(kind: str, topic: str) -> None:
    assert topic_of(make_event(kind)) == topic


def test_partition_key_is_per_program() -> None:
    assert partition_key(ORG, PROGRAM) == b"org-1/prog-1"
    assert isinstance(partition_key(ORG, PROGRAM), bytes)
    assert partition_key(ORG, PROGRAM) == partition_key(ORG, PROGRAM)
    assert partition_key(ORG, PROGRAM) != partition_key(ORG, "prog-2")
    assert partition_key(ORG, PROGRAM) != partition_key("org-2", PROGRAM)


# --- decode_event --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(EXPECTED_TOPICS))
def test_decode_event_round_trip(kind: str) -> None:
    event = make_event(kind)
    raw = event.SerializeToString()
    assert decode_event(raw) == event
    assert decode_event(raw, topic=EXPECTED_TOPICS[kind]) == event


@pytest.mark.parametrize("value", [b"", None])
def test_decode_event_rejects_an_empty_value(value: bytes | None) -> None:
    with pytest.raises(EventDecodeError, match="empty"):
        decode_event(value)


@pytest.mark.parametrize("value", [b"\xff\xff\xff\xff\xff", b"garbage!", b"\x0f"])
def test_decode_event_rejects_bytes_that_are_not_protobuf(value: bytes) -> None:
    with pytest.raises(EventDecodeError, match=r"not a protobuf mentoring\.v1\.Event"):
        decode_event(value)


@pytest.mark.parametrize("field", ["event_id", "organization_id", "program_id", "event_type"])
def test_decode_event_rejects_a_missing_envelope_field(field: str) -> None:
    event = make_event()
    event.envelope.ClearField(field)
    with pytest.raises(EventDecodeError, match=rf"^envelope\.{field} is missing$"):
        decode_event(event.SerializeToString())


def test_decode_event_rejects_a_missing_envelope() -> None:
    event = make_event()
    event.ClearField("envelope")
    with pytest.raises(EventDecodeError, match=r"envelope\.event_id is missing"):
        decode_event(event.SerializeToString())


@pytest.mark.parametrize("version", [0, 2, 99])
def test_decode_event_rejects_a_wrong_schema_version(version: int) -> None:
    event = make_event()
    event.envelope.schema_version = version
    with pytest.raises(EventDecodeError, match=rf"schema_version {version}$"):
        decode_event(event.SerializeToString())


def test_decode_event_rejects_an_event_without_payload() -> None:
    event = make_event()
    event.ClearField("participant_registered")
    assert event.WhichOneof("payload") is None
    with pytest.raises(EventDecodeError, match="no payload"):
        decode_event(event.SerializeToString())


def test_decode_event_rejects_an_event_type_that_does_not_match_the_payload() -> None:
    event = make_event("participant_registered")
    event.envelope.event_type = "match_proposed"
    with pytest.raises(EventDecodeError) as caught:
        decode_event(event.SerializeToString())
    reason = str(caught.value)
    assert "'match_proposed'" in reason
    assert "'participant_registered'" in reason


def test_decode_event_rejects_an_unknown_event_type() -> None:
    event = make_event()
    event.envelope.event_type = "something_else"
    with pytest.raises(EventDecodeError, match="something_else"):
        decode_event(event.SerializeToString())


@pytest.mark.parametrize("topic", ["match-proposed", "session-logged", DEAD_LETTER_TOPIC, "x"])
def test_decode_event_rejects_an_event_on_the_wrong_topic(topic: str) -> None:
    raw = make_event("participant_registered").SerializeToString()
    with pytest.raises(EventDecodeError) as caught:
        decode_event(raw, topic=topic)
    reason = str(caught.value)
    assert "participant_registered" in reason
    assert repr(topic) in reason


@settings(max_examples=300, deadline=None)
@given(value=st.binary(max_size=256), topic=st.sampled_from([None, *EVENT_TOPICS]))
def test_arbitrary_bytes_only_ever_raise_event_decode_error(
    value: bytes, topic: str | None
) -> None:
    try:
        event = decode_event(value, topic)
    except EventDecodeError as exc:
        assert str(exc), "a dead-lettered message needs a reason"
    else:
        # Whatever was accepted really is a well-formed event for that topic.
        assert event.envelope.schema_version == SCHEMA_VERSION
        assert event.WhichOneof("payload") == event.envelope.event_type
        if topic is not None:
            assert topic_of(event) == topic


@settings(max_examples=100, deadline=None)
@given(
    raw=st.binary(min_size=1, max_size=64),
    cut=st.integers(min_value=1, max_value=200),
    kind=st.sampled_from(sorted(EXPECTED_TOPICS)),
)
def test_corrupted_real_events_only_ever_raise_event_decode_error(
    raw: bytes, cut: int, kind: str
) -> None:
    good = make_event(kind, occurred_at=datetime.now(UTC) - timedelta(days=1))
    data = good.SerializeToString()
    # Truncate a real event and append noise: close to real corruption, unlike pure noise.
    mangled = data[: cut % len(data)] + raw
    try:
        decode_event(mangled)
    except EventDecodeError as exc:
        assert str(exc)


def test_hr_events_are_organisation_wide_and_need_no_program() -> None:
    event = new_event(
        producer="hris",
        organization_id=ORG,
        program_id="",
        payload=events_pb2.HrEvent(hr_person_id="h-1", terminated=events_pb2.Terminated()),
    )
    decoded = decode_event(event.SerializeToString(), "hr-events")
    assert decoded.envelope.program_id == ""
    assert "hr-events" not in PROGRAM_TOPICS
    with pytest.raises(EventDecodeError, match="program_id"):
        session = make_event("session_logged")
        session.envelope.program_id = ""
        decode_event(session.SerializeToString())


def _session_logged() -> events_pb2.Event:
    return new_event(
        producer="engagement",
        organization_id=ORG,
        program_id=PROGRAM,
        payload=events_pb2.SessionLogged(session_id="s1", relationship_id="r1", minutes=30),
    )


@pytest.mark.parametrize(
    ("where", "seconds", "nanos"),
    [
        ("envelope.occurred_at", 10**15, 0),  # decodes, then every ToDatetime raises
        ("envelope.occurred_at", -(10**12), 0),
        ("session_logged.held_at", 253402300800, 0),  # the first second of year 10000
        ("session_logged.held_at", 0, 10**9),
        ("session_logged.held_at", 0, -1),
    ],
)
def test_decode_event_rejects_a_timestamp_out_of_range_naming_it(
    where: str, seconds: int, nanos: int
) -> None:
    event = _session_logged()
    stamp = (
        event.envelope.occurred_at
        if where.startswith("envelope")
        else (event.session_logged.held_at)
    )
    stamp.seconds, stamp.nanos = seconds, nanos
    with pytest.raises(EventDecodeError, match=rf"^{re.escape(where)} is out of range"):
        decode_event(event.SerializeToString(), "session-logged")


def test_decode_event_accepts_the_ends_of_the_datetime_range() -> None:
    event = _session_logged()
    event.envelope.occurred_at.FromDatetime(datetime(1, 1, 1, tzinfo=UTC))
    event.session_logged.held_at.FromDatetime(datetime(9999, 12, 31, 23, 59, 59, 999999, UTC))
    decoded = decode_event(event.SerializeToString(), "session-logged")
    assert decoded.session_logged.held_at.ToDatetime().year == 9999


def test_decode_event_checks_timestamps_nested_in_the_payload() -> None:
    event = new_event(
        producer="hris",
        organization_id=ORG,
        program_id="",
        payload=events_pb2.HrEvent(hr_person_id="e1"),
    )
    event.hr_event.leave_of_absence.ends_on.seconds = 10**14
    with pytest.raises(EventDecodeError, match=r"^hr_event\.leave_of_absence\.ends_on is out"):
        decode_event(event.SerializeToString(), "hr-events")


# --- bounds ------------------------------------------------------------------------------


def test_decode_event_rejects_a_string_past_its_bound_naming_it() -> None:
    event = make_event("relationship_ended")
    event.relationship_ended.reason = "x" * (MAX_LENGTH + 1)
    with pytest.raises(EventDecodeError, match=r"^relationship_ended\.reason is longer than"):
        decode_event(event.SerializeToString(), "relationship-ended")
    event.relationship_ended.reason = "x" * MAX_LENGTH
    assert decode_event(event.SerializeToString()).relationship_ended.reason == "x" * MAX_LENGTH


def test_decode_event_rejects_a_list_past_its_bound_naming_it() -> None:
    event = make_event("participant_registered")
    event.participant_registered.skills[:] = [f"s{i}" for i in range(MAX_ITEMS + 1)]
    with pytest.raises(
        EventDecodeError, match=rf"^participant_registered\.skills has {MAX_ITEMS + 1} items"
    ):
        decode_event(event.SerializeToString(), "participant-registered")


def test_decode_event_checks_each_item_of_a_list_and_a_map() -> None:
    event = make_event("participant_registered")
    event.participant_registered.skills[:] = ["python", "y" * (MAX_LENGTH + 1)]
    with pytest.raises(EventDecodeError, match=r"^participant_registered\.skills\[1\] is longer"):
        decode_event(event.SerializeToString())
    note = make_event("notification_requested")
    note.notification_requested.data["k" * (MAX_LENGTH + 1)] = "v"
    with pytest.raises(EventDecodeError, match=r"^notification_requested\.data is longer"):
        decode_event(note.SerializeToString())
    note = make_event("notification_requested")
    note.notification_requested.data["k"] = "v" * (MAX_LENGTH + 1)
    with pytest.raises(EventDecodeError, match=r"^notification_requested\.data\['k'\] is longer"):
        decode_event(note.SerializeToString())


def test_a_field_bound_in_the_proto_overrides_the_default() -> None:
    event = make_event("matching_run_completed")
    unmatched = event.matching_run_completed.unmatched
    for i in range(MAX_ITEMS * 3):
        unmatched.add(mentee_id=f"p{i}")
    assert len(decode_event(event.SerializeToString()).matching_run_completed.unmatched) == 3000
    for i in range(100_000 - MAX_ITEMS * 3 + 1):
        unmatched.add(mentee_id=f"q{i}")
    with pytest.raises(EventDecodeError, match=r"unmatched has 100001 items, more than 100000"):
        decode_event(event.SerializeToString())


@pytest.mark.parametrize("field", ["organization_id", "program_id", "event_id"])
def test_decode_event_rejects_an_envelope_id_that_is_not_an_id(field: str) -> None:
    event = make_event()
    setattr(event.envelope, field, "a/b" if field != "event_id" else "x" * 65)
    with pytest.raises(EventDecodeError, match=rf"^envelope\.{field} is not an id"):
        decode_event(event.SerializeToString())
