"""Personal data end to end: a person's export gathers enrollment, matching and engagement over
gRPC (and the `mentoring people` CLI); an erasure pseudonymises them everywhere through
`participant-erased`, keeps ids, counts and KPIs, and is idempotent."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from mentoring.cli_people import gather
from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common import clock
from services.common.api import (
    analytics_pb2,
    common_pb2,
    engagement_pb2,
    enrollment_pb2,
    events_pb2,
    matching_pb2,
)
from services.common.events import new_event, partition_key
from tests.e2e.support import DeadLetters, eventually, metric, produce, read_topic

MENTOR, MENTEE = common_pb2.ROLE_MENTOR, common_pb2.ROLE_MENTEE
CLOSED_EARLY = engagement_pb2.RELATIONSHIP_STATUS_CLOSED_EARLY

# What Ada gives or writes, all through the program: none of it may survive her erasure.
SECRETS = (
    "Lovelace",
    "ada.lovelace@",
    "hr-ada-",
    "hr-babbage",
    "Analytical Engines",
    "Marylebone",
    "Victorian English",
    "poetical science",
    "grow after my burnout",
    "career after burnout",
    "Ada felt anxious",
    "Mira noted Ada",
    "Publish the notes",
    "Translate Menabrea",
    "Mira listens well",
    "Ada lacks confidence",
    "Goals reached by Ada",
)


def stamp(moment: Any) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


def program(clients: Clients, org: str, name: str) -> str:
    settings = events_pb2.ProgramSettings(
        application_questions=[
            events_pb2.ApplicationQuestion(
                question_id="motivation", text="Why?", kind=events_pb2.QUESTION_KIND_TEXT
            )
        ]
    )
    return clients.enrollment.CreateProgram(
        enrollment_pb2.CreateProgramRequest(organization_id=org, name=name, settings=settings)
    ).program_id


def register(
    clients: Clients, org: str, pid: str, role: int, name: str, email: str, **extra: Any
) -> enrollment_pb2.Participant:
    return clients.enrollment.RegisterParticipant(
        enrollment_pb2.RegisterParticipantRequest(
            organization_id=org,
            program_id=pid,
            role=role,
            display_name=name,
            email=email,
            skills=["mathematics"],
            capacity=1 if role == MENTOR else 0,
            **extra,
        )
    )


def ada_profile(tag: str) -> common_pb2.Profile:
    return common_pb2.Profile(
        hr_person_id=f"hr-ada-{tag}",
        manager_id="hr-babbage",
        department="Analytical Engines",
        location="Marylebone",
        timezone="Europe/London",
        languages=["en"],
        job_level=5,
        goals=["poetical science"],
        demographics=common_pb2.Demographics(
            gender="woman", cultural_background="Victorian English", use_for_matching=True
        ),
    )


def kpis(clients: Clients, org: str, pid: str) -> analytics_pb2.ProgramKpis:
    return clients.analytics.GetProgramKpis(
        analytics_pb2.GetProgramKpisRequest(organization_id=org, program_id=pid)
    )


def cli(stack: Stack, *args: str, answer: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mentoring.cli", "people", *args],
        input=answer,
        capture_output=True,
        text=True,
        env={**stack.client_env(), "COLUMNS": "200"},
        timeout=120,
        check=False,
    )


def settled_kpis(clients: Clients, org: str, pid: str) -> analytics_pb2.ProgramKpis:
    """The program's KPIs once every event sent so far is counted (two reads a second apart
    agree)."""
    last = kpis(clients, org, pid)

    def same() -> analytics_pb2.ProgramKpis | None:
        nonlocal last
        time.sleep(1)
        now = kpis(clients, org, pid)
        settled = now == last
        last = now
        return now if settled else None

    return eventually("the KPIs to settle", same)


def without_time(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "exported_at"}


def code_of(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details()


def test_export_then_erase_a_person_everywhere(
    stack: Stack, clients: Clients, tmp_path: Path
) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:6]
    email = f"ada.lovelace@{org}.example"
    pid = program(clients, org, "Women in computing")
    other_pid = program(clients, org, "Reverse mentoring")
    mentor = register(clients, org, pid, MENTOR, "Mira Okafor", f"mira@{org}.example")
    ada = register(
        clients,
        org,
        pid,
        MENTEE,
        "Ada Lovelace",
        email,
        profile=ada_profile(tag),
        answers={"motivation": "I want to grow after my burnout"},
        campaign="spring-newsletter",
    )
    # The same person, by e-mail and HR id, mentoring in another program.
    ada_too = register(
        clients, org, other_pid, MENTOR, "Ada Lovelace", email, profile=ada_profile(tag)
    )

    # Matched, then a relationship with a session, notes, a goal, feedback and a message.
    def proposal() -> matching_pb2.Proposal | None:
        found = clients.matching.ListProposals(
            matching_pb2.ListProposalsRequest(
                organization_id=org, program_id=pid, mentee_id=ada.participant_id
            )
        ).proposals
        return found[0] if found else None

    match_id = eventually("Ada's proposal", proposal).match_id
    eventually(
        "engagement to store the proposal",
        lambda: (
            clients.engagement.ListMatches(
                engagement_pb2.ListMatchesRequest(organization_id=org, program_id=pid)
            ).matches
            or None
        ),
    )
    for who in (mentor.participant_id, ada.participant_id):
        answered = clients.engagement.RespondToMatch(
            engagement_pb2.RespondToMatchRequest(
                organization_id=org,
                match_id=match_id,
                participant_id=who,
                decision=common_pb2.MATCH_DECISION_ACCEPT,
            )
        )
    relationship_id = answered.relationship_id
    e = clients.engagement
    session = e.ScheduleSession(
        engagement_pb2.ScheduleSessionRequest(
            organization_id=org,
            relationship_id=relationship_id,
            participant_id=ada.participant_id,
            scheduled_at=stamp(clock.now() + timedelta(hours=1)),
            minutes=50,
            mode=common_pb2.SESSION_MODE_VIRTUAL,
            topics=["career after burnout"],
        )
    )
    e.MarkSessionHeld(
        engagement_pb2.MarkSessionHeldRequest(
            organization_id=org,
            session_id=session.session_id,
            participant_id=ada.participant_id,
            held_at=stamp(clock.now()),
            private_note="Ada felt anxious",
        )
    )
    e.AddSessionNote(
        engagement_pb2.AddSessionNoteRequest(
            organization_id=org,
            session_id=session.session_id,
            participant_id=mentor.participant_id,
            text="Mira noted Ada is brilliant",
        )
    )
    goal = e.CreateGoal(
        engagement_pb2.CreateGoalRequest(
            organization_id=org,
            relationship_id=relationship_id,
            participant_id=ada.participant_id,
            title="Publish the notes",
            description="on the engine",
            target_date=stamp(clock.now() + timedelta(days=60)),
        )
    )
    e.AddMilestone(
        engagement_pb2.AddMilestoneRequest(
            organization_id=org,
            goal_id=goal.goal_id,
            participant_id=ada.participant_id,
            title="Translate Menabrea",
        )
    )
    e.UpdateGoalProgress(
        engagement_pb2.UpdateGoalProgressRequest(
            organization_id=org,
            goal_id=goal.goal_id,
            participant_id=ada.participant_id,
            progress=60,
        )
    )
    for author, rating, comment in (
        (ada.participant_id, 5, "Mira listens well"),
        (mentor.participant_id, 4, "Ada lacks confidence"),
    ):
        e.SubmitFeedback(
            engagement_pb2.SubmitFeedbackRequest(
                organization_id=org,
                relationship_id=relationship_id,
                participant_id=author,
                survey_point="periodic",
                rating=rating,
                comment=comment,
            )
        )
    e.RecordMessage(
        engagement_pb2.RecordMessageRequest(
            organization_id=org,
            relationship_id=relationship_id,
            participant_id=ada.participant_id,
            message_id="msg-1",
        )
    )
    e.EndRelationship(
        engagement_pb2.EndRelationshipRequest(
            organization_id=org,
            relationship_id=relationship_id,
            participant_id=mentor.participant_id,
            completed=True,
            reason="Goals reached by Ada",
        )
    )
    eventually(
        "the KPIs to count the relationship",
        lambda: (k := kpis(clients, org, pid)).relationships_completed == 1 and k.sessions == 1,
        timeout=60,  # the first test of a session may wait for analytics to join its group
    )
    before = settled_kpis(clients, org, pid)

    # --- export: the CLI gathers all three services into one document ---------------------
    out = tmp_path / "ada.json"
    result = cli(stack, "export", "--org", org, "--person", email, "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    exported = json.loads(out.read_text())
    text = json.dumps(exported)
    for secret in SECRETS:
        if secret not in ("Mira noted Ada", "Ada lacks confidence"):  # Mira's words, not Ada's
            assert secret in text, secret
    assert "Mira noted Ada" not in text and "Ada lacks confidence" not in text
    ids = sorted([ada.participant_id, ada_too.participant_id])
    assert sorted(exported["participant_ids"]) == ids
    registrations = exported["enrollment"]["registrations"]
    assert {r["participant"]["program_id"] for r in registrations} == {pid, other_pid}
    assert {p["participant_id"] for p in exported["matching"]["pool_entries"]} == set(ids)
    assert exported["matching"]["reporting_lines"] == [
        {"hr_person_id": f"hr-ada-{tag}", "manager_id": "hr-babbage"}
    ]
    engagement = exported["engagement"]
    assert [m["match_id"] for m in engagement["matches"]] == [match_id]
    assert engagement["sessions"][0]["private_note"] == "Ada felt anxious"
    assert [f["comment"] for f in engagement["feedback"]] == ["Mira listens well"]
    assert [m["message_id"] for m in engagement["messages"]] == ["msg-1"]
    # The same through gRPC by HR id or participant id: one person, whatever names them.
    for ref in (
        enrollment_pb2.PersonRef(hr_person_id=f"hr-ada-{tag}"),
        enrollment_pb2.PersonRef(participant_id=ada_too.participant_id),
    ):
        assert sorted(gather(clients, org, ref)["participant_ids"]) == ids

    # --- another organisation sees nothing and erases nothing -----------------------------
    stranger = f"org-{uuid.uuid4().hex[:8]}"
    code, _ = code_of(
        lambda: clients.enrollment.ExportPersonalData(
            enrollment_pb2.ExportPersonalDataRequest(
                organization_id=stranger, person=enrollment_pb2.PersonRef(email=email)
            )
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = code_of(
        lambda: clients.enrollment.ErasePerson(
            enrollment_pb2.ErasePersonRequest(
                organization_id=stranger,
                person=enrollment_pb2.PersonRef(participant_id=ada.participant_id),
                reason="nosy",
                requested_by="someone",
            )
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    theirs = clients.matching.ExportPersonalData(
        matching_pb2.ExportMatchingPersonalDataRequest(
            organization_id=stranger, participant_ids=ids
        )
    )
    assert list(theirs.pool_entries) == [] and list(theirs.proposals) == []
    theirs_too = clients.engagement.ExportPersonalData(
        engagement_pb2.ExportEngagementPersonalDataRequest(
            organization_id=stranger, participant_ids=ids
        )
    )
    assert list(theirs_too.matches) == [] and list(theirs_too.feedback) == []

    # --- erase through the CLI --------------------------------------------------------------
    erase = ("erase", "--org", org, "--person", email, "--reason", "GDPR request 42")
    # Asked to confirm, the coordinator says no: nothing happens.
    result = cli(stack, *erase, answer="n\n")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Aborted" in result.stdout + result.stderr
    assert (
        sorted(gather(clients, org, enrollment_pb2.PersonRef(email=email))["participant_ids"])
        == ids
    )
    result = cli(stack, *erase, "--requested-by", "dpo-1", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Erased 2 registration(s)" in result.stdout
    (erasure,) = clients.enrollment.ListErasures(
        enrollment_pb2.ListErasuresRequest(organization_id=org)
    ).erasures
    assert (erasure.reason, erasure.requested_by) == ("GDPR request 42", "dpo-1")
    assert sorted(r.participant_id for r in erasure.registrations) == ids

    # Enrollment forgot the person at once: their e-mail and HR id find nobody.
    code, details = code_of(
        lambda: clients.enrollment.ExportPersonalData(
            enrollment_pb2.ExportPersonalDataRequest(
                organization_id=org, person=enrollment_pb2.PersonRef(email=email)
            )
        )
    )
    assert (code, details.split(":")[0]) == (grpc.StatusCode.NOT_FOUND, "person.email")

    by_id = enrollment_pb2.PersonRef(participant_id=ada.participant_id)

    def erased_everywhere() -> dict[str, Any] | None:
        document = gather(clients, org, by_id)
        text = json.dumps(document)
        return document if not any(secret in text for secret in SECRETS) else None

    document = eventually("matching and engagement to erase Ada", erased_everywhere)
    # Ids, relationships and numbers stay.
    assert sorted(document["participant_ids"]) == ids
    records = {
        r["participant"]["participant_id"]: r for r in document["enrollment"]["registrations"]
    }
    assert records[ada.participant_id]["participant"]["status"] == "PARTICIPANT_STATUS_WITHDRAWN"
    assert records[ada.participant_id]["participant"]["campaign"] == "spring-newsletter"
    assert records[ada.participant_id]["erasure_id"] == erasure.erasure_id
    assert all(r["participant"]["email"].endswith("@erased.invalid") for r in records.values())
    assert all("answers" not in r["participant"] for r in records.values())
    pool = document["matching"]["pool_entries"]
    assert sorted(p["participant_id"] for p in pool) == ids
    assert all(p["erased"] and p["withdrawn"] and "display_name" not in p for p in pool)
    assert all(set(p.get("profile", {})) <= {"cohort_id"} for p in pool)
    assert document["matching"]["proposals"][0]["proposal"]["match_id"] == match_id
    engaged = document["engagement"]
    assert [r["relationship_id"] for r in engaged["relationships"]] == [relationship_id]
    assert engaged["relationships"][0]["status"] == "RELATIONSHIP_STATUS_COMPLETED"
    assert engaged["sessions"][0]["minutes"] == 50
    assert [(g["goal_id"], g["progress"]) for g in engaged["goals"]] == [(goal.goal_id, 60)]
    assert [f["rating"] for f in engaged["feedback"]] == [5]
    assert [m["message_id"] for m in engaged["messages"]] == ["msg-1"]
    # The CLI finds her by a participant id now, and shows the erasure's record.
    again_out = tmp_path / "erased.json"
    result = cli(
        stack, "export", "--org", org, "--person", ada.participant_id, "--out", str(again_out)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(again_out.read_text())["person"] == {"participant_id": ada.participant_id}
    assert not any(secret in again_out.read_text() for secret in SECRETS)
    result = cli(stack, "erasures", "--org", org)
    assert result.returncode == 0, result.stdout + result.stderr
    assert erasure.erasure_id in result.stdout and "GDPR request 42" in result.stdout
    # Mira's words about Ada went too; her rating stayed.
    mira = gather(clients, org, enrollment_pb2.PersonRef(participant_id=mentor.participant_id))
    assert "Ada lacks confidence" not in json.dumps(mira)
    assert [f.get("rating") for f in mira["engagement"]["feedback"]] == [4]
    assert mira["enrollment"]["registrations"][0]["participant"]["display_name"] == "Mira Okafor"

    # The KPIs keep their counts: `events` counts the erasure's two events, and the erased
    # mentee leaves the enrolled figures as a withdrawal. Sessions, matches, feedback stay.
    after = eventually(
        "analytics to count the erasure",
        lambda: k if (k := kpis(clients, org, pid)).events == before.events + 2 else None,
    )
    assert (after.mentees, after.withdrawals) == (before.mentees - 1, before.withdrawals + 1)
    settled = analytics_pb2.ProgramKpis()
    settled.CopyFrom(after)
    left_the_stock = (
        "events",
        "mentees",
        "withdrawals",
        "mentees_matched",
        "match_rate",
        "median_days_to_match",
        "mean_days_to_match",
    )
    for field in left_the_stock:
        after.ClearField(field)  # type: ignore[arg-type]
        before.ClearField(field)  # type: ignore[arg-type]
    assert after == before

    # --- repeats change nothing -------------------------------------------------------------
    ports = stack.ports.metrics
    groups = (("matching", "matching"), ("engagement", "engagement"), ("analytics", "analytics"))

    def duplicates() -> dict[str, float]:
        return {
            group: metric(
                ports[service],
                "mentoring_events_duplicate_total",
                topic="participant-erased",
                group=group,
            )
            for service, group in groups
        }

    def dropped(start: dict[str, float], more: int) -> bool:
        now = duplicates()
        return all(now[group] >= start[group] + more for group in start)

    start = duplicates()
    again = clients.enrollment.ErasePerson(
        enrollment_pb2.ErasePersonRequest(
            organization_id=org, person=by_id, reason="again", requested_by="dpo-2"
        )
    )
    assert again.erasure_id == erasure.erasure_id
    assert (again.reason, again.requested_by) == ("GDPR request 42", "dpo-1")
    # The repeat republished both registrations' erasures under their ids: both dropped.
    eventually("every consumer to drop the repeated erasures", lambda: dropped(start, 2))
    erased_records = [
        r
        for r in read_topic(stack.ports.bootstrap, "participant-erased", settle=2)
        if r.key == partition_key(org, pid)
    ]
    assert len(erased_records) == 2
    ids_on_topic = {events_pb2.Event.FromString(r.value).envelope.event_id for r in erased_records}
    assert len(ids_on_topic) == 1
    # A redelivery, as a broker may make.
    first = erased_records[0]
    produce(stack.ports.bootstrap, [("participant-erased", first.key, first.value)])
    eventually("every consumer to drop the redelivered erasure", lambda: dropped(start, 3))
    assert without_time(gather(clients, org, by_id)) == without_time(document)
    assert kpis(clients, org, pid) == settled

    # --- the person may apply again: a new registration, unlinked to the erased ones -------
    back = register(clients, org, pid, MENTEE, "Ada Lovelace", email)
    assert back.participant_id not in ids
    fresh = gather(clients, org, enrollment_pb2.PersonRef(email=email))
    assert fresh["participant_ids"] == [back.participant_id]


def test_erasing_someone_in_a_relationship_ends_it_and_frees_the_mentor(
    stack: Stack, clients: Clients
) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    pid = program(clients, org, "Onboarding")
    mentor = register(clients, org, pid, MENTOR, "Rhea", f"rhea@{org}.example")
    mentee = register(clients, org, pid, MENTEE, "Sol", f"sol@{org}.example")

    def proposals(mentee_id: str) -> list[matching_pb2.Proposal]:
        return list(
            clients.matching.ListProposals(
                matching_pb2.ListProposalsRequest(
                    organization_id=org, program_id=pid, mentee_id=mentee_id
                )
            ).proposals
        )

    match_id = eventually("a proposal", lambda: proposals(mentee.participant_id) or None)[
        0
    ].match_id
    eventually(
        "engagement to store it",
        lambda: (
            clients.engagement.ListMatches(
                engagement_pb2.ListMatchesRequest(organization_id=org, program_id=pid)
            ).matches
            or None
        ),
    )
    for who in (mentor.participant_id, mentee.participant_id):
        accepted = clients.engagement.RespondToMatch(
            engagement_pb2.RespondToMatchRequest(
                organization_id=org,
                match_id=match_id,
                participant_id=who,
                decision=common_pb2.MATCH_DECISION_ACCEPT,
            )
        )
    erasure = clients.enrollment.ErasePerson(
        enrollment_pb2.ErasePersonRequest(
            organization_id=org,
            person=enrollment_pb2.PersonRef(email=f"sol@{org}.example"),
            reason="request 7",
            requested_by="dpo",
        )
    )
    assert [r.participant_id for r in erasure.registrations] == [mentee.participant_id]

    def closed() -> engagement_pb2.Relationship | None:
        r = clients.engagement.GetRelationship(
            engagement_pb2.GetRelationshipRequest(
                organization_id=org, relationship_id=accepted.relationship_id
            )
        )
        return r if r.status == CLOSED_EARLY else None

    assert eventually("the relationship to close", closed).end_reason == "withdrawn: erased"
    # Rhea's slot is free again: the next mentee gets her.
    newcomer = register(clients, org, pid, MENTEE, "Tam", f"tam@{org}.example")
    handed_on = eventually(
        "Rhea's next proposal", lambda: proposals(newcomer.participant_id) or None
    )
    assert handed_on[0].mentor_id == mentor.participant_id
    # Ended by the erasure or by the relationship's end, whichever reached matching first: the
    # same status either way, that of an accepted match.
    (released,) = proposals(mentee.participant_id)
    assert released.status == common_pb2.MATCH_STATUS_ACCEPTED


def test_a_malformed_erasure_is_dead_lettered(stack: Stack, clients: Clients) -> None:
    key = f"org-{uuid.uuid4().hex[:8]}/poison"
    org, program_id = key.split("/")
    event = new_event(
        producer="tests",
        organization_id=org,
        program_id=program_id,
        payload=events_pb2.ParticipantErased(role=MENTEE, erasure_id="e-1"),
    )
    value = event.SerializeToString()
    dead_letters = DeadLetters(stack.ports.bootstrap)
    produce(stack.ports.bootstrap, [("participant-erased", key.encode(), value)])

    def letters() -> dict[str, str] | None:
        found = {}
        for letter in dead_letters():
            if letter.value == value:
                found[letter.consumer_group] = letter.reason
        return found if {"matching", "engagement"} <= set(found) else None

    found = eventually("matching and engagement to dead-letter it", letters)
    assert found["matching"] == "participant_erased.participant_id is missing"
    assert found["engagement"] == "participant_erased.participant_id is missing"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ("export_no_person", "person"),
        ("export_bad_email", "person.email"),
        ("erase_no_reason", "reason"),
        ("erase_no_requester", "requested_by"),
        ("erase_bad_org", "organization_id"),
        ("matching_no_ids", "participant_ids"),
        ("engagement_bad_id", "participant_ids[0]"),
    ],
)
def test_bad_requests_name_the_field(clients: Clients, call: str, field: str) -> None:
    org = "acme"
    person = enrollment_pb2.PersonRef(email="ada@example.org")
    calls = {
        "export_no_person": lambda: clients.enrollment.ExportPersonalData(
            enrollment_pb2.ExportPersonalDataRequest(organization_id=org)
        ),
        "export_bad_email": lambda: clients.enrollment.ExportPersonalData(
            enrollment_pb2.ExportPersonalDataRequest(
                organization_id=org, person=enrollment_pb2.PersonRef(email="nobody")
            )
        ),
        "erase_no_reason": lambda: clients.enrollment.ErasePerson(
            enrollment_pb2.ErasePersonRequest(
                organization_id=org, person=person, requested_by="dpo"
            )
        ),
        "erase_no_requester": lambda: clients.enrollment.ErasePerson(
            enrollment_pb2.ErasePersonRequest(organization_id=org, person=person, reason="r")
        ),
        "erase_bad_org": lambda: clients.enrollment.ErasePerson(
            enrollment_pb2.ErasePersonRequest(
                organization_id="no org!", person=person, reason="r", requested_by="dpo"
            )
        ),
        "matching_no_ids": lambda: clients.matching.ExportPersonalData(
            matching_pb2.ExportMatchingPersonalDataRequest(organization_id=org)
        ),
        "engagement_bad_id": lambda: clients.engagement.ExportPersonalData(
            engagement_pb2.ExportEngagementPersonalDataRequest(
                organization_id=org, participant_ids=["not an id"]
            )
        ),
    }
    code, details = code_of(calls[call])
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith(f"{field}:"), details


def test_unknown_people_are_not_found(clients: Clients) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    for ref, field in (
        (enrollment_pb2.PersonRef(email="nobody@example.org"), "person.email"),
        (enrollment_pb2.PersonRef(hr_person_id="hr-none"), "person.hr_person_id"),
        (enrollment_pb2.PersonRef(participant_id="p-none"), "person.participant_id"),
    ):
        code, details = code_of(
            lambda ref=ref: clients.enrollment.ErasePerson(
                enrollment_pb2.ErasePersonRequest(
                    organization_id=org, person=ref, reason="r", requested_by="dpo"
                )
            )
        )
        assert (code, details.split(":")[0]) == (grpc.StatusCode.NOT_FOUND, field)
    assert (
        list(
            clients.enrollment.ListErasures(
                enrollment_pb2.ListErasuresRequest(organization_id=org)
            ).erasures
        )
        == []
    )
