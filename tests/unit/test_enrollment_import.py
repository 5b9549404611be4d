"""ImportParticipants' store and rules on mongomock (a fresh database per test): a row registers
as RegisterParticipant does, a person is one HR id and role, the same file twice changes
nothing, a changed row updates, bad rows are reported while the others go ahead."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import bson
import mongoengine
import pytest

from services.common import outbox
from services.common.api import common_pb2, enrollment_pb2, events_pb2
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.outbox import OutboxEntry, OutboxRelay
from services.enrollment import domain
from services.enrollment.documents import Cohort, Participant
from services.enrollment.hris_csv import count_rows, read_rows
from services.enrollment.import_store import STORED_FIELDS, NewParticipant, import_rows
from services.enrollment.imports import merged_profile
from services.enrollment.servicer import EnrollmentServicer
from services.enrollment.store import (
    change_status,
    create_program,
    register,
    registration_events,
    screen,
    update_profile,
)
from tests.unit import memory_db

ORG = "org-1"
MENTOR, MENTEE = common_pb2.ROLE_MENTOR, common_pb2.ROLE_MENTEE


@pytest.fixture(autouse=True)
def database() -> Iterator[None]:
    memory_db.connect_fresh("enrollment", "test_enrollment_import")
    yield
    mongoengine.disconnect()


def program(**settings: Any) -> str:
    draft = domain.validate_program(ORG, "Import", "")
    doc, _ = create_program(draft, events_pb2.ProgramSettings(**settings), domain.OPEN, False)
    return str(doc.program_id)


def row(n: int, hr: str, role: int = MENTEE, **fields: Any) -> enrollment_pb2.ImportRow:
    profile = fields.pop("profile", {})
    values: dict[str, Any] = {
        "display_name": f"Person {hr}",
        "email": f"{hr.lower()}@acme.example",
        "skills": ["python"],
        "capacity": 2 if role == MENTOR else 0,
        **fields,
    }
    return enrollment_pb2.ImportRow(
        row=n,
        role=role,
        profile=common_pb2.Profile(hr_person_id=hr, department="R&D", **profile),
        **values,
    )


def outcomes(results: Sequence[Any]) -> list[tuple[int, str]]:
    return [(r.row, r.outcome) for r in results]


def kinds(events: Sequence[events_pb2.Event]) -> list[str]:
    return [str(e.WhichOneof("payload")) for e in events]


def test_rows_register_people_with_the_events_a_registration_publishes() -> None:
    pid = program()
    results, events = import_rows(ORG, pid, [row(2, "E1", MENTOR), row(3, "E2")])
    assert outcomes(results) == [(2, "registered"), (3, "registered")]
    stored = {p.hr_person_id: p for p in Participant.objects(program_id=pid)}
    assert {r.participant_id for r in results} == {p.participant_id for p in stored.values()}
    ada = stored["E1"]
    assert (ada.role, ada.capacity, ada.email, ada.status) == (
        "mentor",
        2,
        "e1@acme.example",
        "registered",
    )
    # Exactly what RegisterParticipant publishes for the stored participants (a retry of it
    # rebuilds them from the document): same kinds, ids and payloads.
    assert events == registration_events(ada) + registration_events(stored["E2"])
    assert kinds(events) == ["application_submitted", "participant_registered"] * 2
    assert events[1].participant_registered.profile.department == "R&D"


def test_a_new_participant_is_stored_as_mongoengine_would_store_it() -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    values: dict[str, Any] = {
        "organization_id": ORG,
        "program_id": "p",
        "participant_id": "x",
        "role": "mentee",
        "display_name": "D",
        "email": "d@x.org",
        "skills": ["go"],
        "capacity": 0,
        "registered_at": now,
        "profile": b"\x0a\x02E1",
        "event_id": "ev",
        "status": "registered",
        "status_changed_at": now,
        "answers": {"q": "a"},
        "campaign": "c",
        "hr_person_id": "E1",
        "import_digest": "g",
    }
    expected = Participant(**values)
    expected.validate()
    # Byte for byte what the database receives (bytes and Binary subtype 0 encode alike).
    assert bson.encode(NewParticipant(**values).stored()) == bson.encode(expected.to_mongo())
    assert list(STORED_FIELDS) == list(expected.to_mongo())


def test_the_same_rows_again_change_nothing_and_publish_nothing() -> None:
    pid = program()
    rows = [row(2, "E1", MENTOR), row(3, "E2")]
    first, _ = import_rows(ORG, pid, rows)
    again, events = import_rows(ORG, pid, [row(7, "E1", MENTOR), row(9, "E2")])
    assert outcomes(again) == [(7, "unchanged"), (9, "unchanged")]
    assert [r.participant_id for r in again] == [r.participant_id for r in first]
    assert events == []
    assert Participant.objects(program_id=pid).count() == 2


def test_a_person_twice_in_one_call_is_registered_once() -> None:
    pid = program()
    results, events = import_rows(
        ORG, pid, [row(2, "E1"), row(3, "E1"), row(4, "E1", display_name="Renamed")]
    )
    assert outcomes(results) == [(2, "registered"), (3, "unchanged"), (4, "updated")]
    assert len({r.participant_id for r in results}) == 1
    assert Participant.objects(program_id=pid).get().display_name == "Renamed"
    # Announced once, as what it ends up being.
    assert kinds(events) == ["application_submitted", "participant_registered"]
    assert events[1].participant_registered.display_name == "Renamed"


def test_a_changed_row_updates_what_hr_states_and_keeps_what_the_person_added() -> None:
    pid = program()
    (created,), _ = import_rows(ORG, pid, [row(2, "E1")])
    # The person adds goals and a language themselves.
    update_profile(
        ORG,
        created.participant_id,
        common_pb2.Profile(
            hr_person_id="E1", department="R&D", goals=["public speaking"], languages=["fr"]
        ),
        [],
        0,
        "",
        keep_identity=True,
    )
    # The same row again is the same row: what they changed since stays.
    (same,), events = import_rows(ORG, pid, [row(5, "E1")])
    assert (same.outcome, events) == ("unchanged", [])
    changed = row(6, "E1", skills=["go"], profile={"location": "Oslo", "languages": ["en"]})
    (updated,), events = import_rows(ORG, pid, [changed])
    assert (updated.outcome, updated.participant_id) == ("updated", created.participant_id)
    doc = Participant.objects.get(participant_id=created.participant_id)
    profile = common_pb2.Profile.FromString(doc.profile)
    assert (list(doc.skills), profile.location, profile.department) == (["go"], "Oslo", "R&D")
    assert list(profile.languages) == ["en"]  # replaced, not appended to
    assert list(profile.goals) == ["public speaking"]
    assert kinds(events) == ["participant_updated"]
    assert events[0].envelope.event_id == doc.update_event_id
    (again,), events = import_rows(ORG, pid, [changed])
    assert (again.outcome, events) == ("unchanged", [])


def test_a_registration_without_an_hr_id_is_adopted_by_the_row_with_its_email() -> None:
    pid = program()
    own, _ = register(
        domain.validate_registration(
            organization_id=ORG,
            program_id=pid,
            role="mentee",
            display_name="Person E1",
            email="e1@acme.example",
            skills=["python"],
            capacity=0,
        ),
        common_pb2.Profile(goals=["grow"]).SerializeToString(deterministic=True),
    )
    (adopted,), events = import_rows(ORG, pid, [row(2, "E1")])
    assert (adopted.outcome, adopted.participant_id) == ("updated", own.participant_id)
    doc = Participant.objects.get(participant_id=own.participant_id)
    assert doc.hr_person_id == "E1"
    assert list(common_pb2.Profile.FromString(doc.profile).goals) == ["grow"]
    assert kinds(events) == ["participant_updated"]
    assert Participant.objects(program_id=pid).count() == 1


def test_bad_rows_are_reported_by_field_and_the_good_ones_are_imported() -> None:
    pid = program(
        application_questions=[
            events_pb2.ApplicationQuestion(
                question_id="goal",
                text="Goal?",
                kind=events_pb2.QUESTION_KIND_SINGLE_CHOICE,
                options=["lead", "learn"],
            )
        ]
    )
    Cohort(
        organization_id=ORG,
        program_id=pid,
        cohort_id="q1",
        name="Q1",
        created_at=datetime.now(UTC),
    ).save()
    import_rows(ORG, pid, [row(2, "E1")])
    rows = [
        row(3, "E2", email="not-an-email"),
        row(4, "", email="nohr@acme.example"),
        row(5, "E3", profile={"cohort_id": "q9"}),
        row(6, "E4", answers={"goal": "fly"}),
        row(7, "E1", email="other@acme.example"),  # E1 has another e-mail
        row(8, "E5", email="e1@acme.example"),  # E1's e-mail
        row(9, "E6", role=MENTOR, capacity=0),
        row(10, "E7", profile={"cohort_id": "q1"}, answers={"goal": "LEAD"}),
    ]
    results, events = import_rows(ORG, pid, rows)
    assert [(r.row, r.outcome, r.field) for r in results] == [
        (3, "failed", "email"),
        (4, "failed", "profile.hr_person_id"),
        (5, "failed", "profile.cohort_id"),
        (6, "failed", "answers[goal]"),
        (7, "failed", "profile.hr_person_id"),
        (8, "failed", "email"),
        (9, "failed", "capacity"),
        (10, "registered", ""),
    ]
    assert results[2].reason == "no cohort 'q9' in this program"
    assert "another e-mail" in results[4].reason
    assert "hr_person_id 'E1'" in results[5].reason
    assert all(r.participant_id == "" for r in results[:-1])
    assert Participant.objects.get(hr_person_id="E7").answers == {"goal": "lead"}
    assert Participant.objects(program_id=pid).count() == 2
    assert len(events) == 2


def test_a_withdrawn_person_is_not_changed_by_a_changed_row() -> None:
    pid = program()
    (created,), _ = import_rows(ORG, pid, [row(2, "E1")])
    screen(ORG, created.participant_id, domain.WITHDRAW, "left")
    (unchanged,), _ = import_rows(ORG, pid, [row(3, "E1")])
    assert unchanged.outcome == "unchanged"
    (refused,), events = import_rows(ORG, pid, [row(4, "E1", display_name="New Name")])
    assert (refused.outcome, refused.field, events) == ("failed", "participant_id", [])
    assert refused.reason == "the participant is withdrawn"


def test_a_program_that_needs_approval_gets_applications() -> None:
    pid = program(requires_approval=True)
    results, events = import_rows(ORG, pid, [row(2, "E1")])
    assert outcomes(results) == [(2, "applied")]
    assert kinds(events) == ["application_submitted"]


def test_a_program_not_taking_people_or_unknown_refuses_the_whole_call() -> None:
    pid = program()
    change_status(ORG, pid, domain.RUNNING)
    change_status(ORG, pid, domain.CLOSED)
    with pytest.raises(FailedPrecondition, match=r"^program_id: "):
        import_rows(ORG, pid, [row(2, "E1")])
    with pytest.raises(NotFound, match=r"^program_id: "):
        import_rows(ORG, "no-such-program", [row(2, "E1")])
    assert Participant.objects.count() == 0


class Broker:
    def __init__(self) -> None:
        self.sent: list[events_pb2.Event] = []

    async def publish(self, events: Sequence[events_pb2.Event]) -> None:
        self.sent.extend(events)


def test_a_calls_events_are_staged_together_and_the_relay_publishes_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbox, "TOGETHER_BYTES", 1000)  # several entries for these rows
    pid = program()
    _, events = import_rows(ORG, pid, [row(n, f"E{n}") for n in range(2, 12)])
    entries = list(OutboxEntry.objects())
    assert 1 < len(entries) < len(events)
    assert not any(e.sent for e in entries)
    # Nobody delivered them (the writer died): the relay publishes every event, once.
    monkeypatch.setattr(outbox, "SETTLE_SECONDS", 0.0)
    broker = Broker()
    relay = OutboxRelay(broker)  # type: ignore[arg-type]
    asyncio.run(relay.relay_once())
    assert [e.envelope.event_id for e in broker.sent] == [e.envelope.event_id for e in events]
    assert all(e.sent for e in OutboxEntry.objects())
    asyncio.run(relay.relay_once())
    assert len(broker.sent) == len(events)


def test_delivering_a_calls_events_marks_their_entries_sent() -> None:
    pid = program()
    _, events = import_rows(ORG, pid, [row(2, "E1"), row(3, "E2")])
    broker = Broker()
    asyncio.run(OutboxRelay(broker).deliver(events))  # type: ignore[arg-type]
    assert broker.sent == events
    assert [e.sent for e in OutboxEntry.objects()] == [True]


def test_the_service_names_a_bad_request_field() -> None:
    servicer = EnrollmentServicer(Broker())  # type: ignore[arg-type]
    pid = program()

    def call(**fields: Any) -> enrollment_pb2.ImportParticipantsResponse:
        request = enrollment_pb2.ImportParticipantsRequest(**fields)
        return asyncio.run(servicer.ImportParticipants(request, None))  # type: ignore[arg-type]

    for fields, name in [
        ({"program_id": pid, "rows": [row(2, "E1")]}, "organization_id"),
        ({"organization_id": ORG, "rows": [row(2, "E1")]}, "program_id"),
        ({"organization_id": ORG, "program_id": pid}, "rows"),
        ({"organization_id": ORG, "program_id": pid, "rows": [row(2, "E1")] * 1001}, "rows"),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            call(**fields)
        assert caught.value.field == name
    done = call(organization_id=ORG, program_id=pid, rows=[row(2, "E1"), row(3, "E1", email="x")])
    assert [(r.row, r.outcome, r.field) for r in done.results] == [
        (2, enrollment_pb2.IMPORT_OUTCOME_REGISTERED, ""),
        (3, enrollment_pb2.IMPORT_OUTCOME_FAILED, "email"),
    ]


def test_merging_a_profile_replaces_what_is_set_and_keeps_the_rest() -> None:
    stored = common_pb2.Profile(
        hr_person_id="E1", department="R&D", languages=["fr", "de"], goals=["grow"]
    )
    merged = merged_profile(stored, common_pb2.Profile(hr_person_id="E1", languages=["en"]))
    assert (merged.department, list(merged.languages), list(merged.goals)) == (
        "R&D",
        ["en"],
        ["grow"],
    )


def test_the_export_is_read_as_it_is_consumed_and_counted_without_building_rows() -> None:
    text = (
        "hr_person_id,role,name,email,skills\n"
        "E1,mentee,A,a@x.org,go\n"
        "\n"
        ",,,,\n"
        "E2,mentor,B,b@x.org,go\n"
    )
    assert count_rows(text.splitlines(keepends=True)) == 2
    assert [r.row for r in read_rows(text.splitlines(keepends=True))] == [2, 5]
