"""Participants who leave or change, end to end on the real broker: withdrawals release
proposals and end relationships, profile updates reach matching, and HR events
(`hr-events`, consumer group "enrollment") withdraw and update participants."""

from __future__ import annotations

import uuid

import pytest

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import (
    analytics_pb2,
    common_pb2,
    engagement_pb2,
    enrollment_pb2,
    events_pb2,
    matching_pb2,
)
from services.common.events import new_event, partition_key
from tests.e2e.engine import MENTEE, MENTOR, Program
from tests.e2e.support import (
    DeadLetters,
    eventually,
    hr_record,
    metric,
    produce,
    publish_hr,
    read_topic,
)

K = matching_pb2
SKILLS = K.Criterion(kind=K.CRITERION_KIND_SKILLS, weight=5)
CLOSED_EARLY = engagement_pb2.RELATIONSHIP_STATUS_CLOSED_EARLY


def withdraw(program: Program, participant_id: str, reason: str) -> enrollment_pb2.Participant:
    return program.clients.enrollment.WithdrawParticipant(
        enrollment_pb2.WithdrawParticipantRequest(
            organization_id=program.org, participant_id=participant_id, reason=reason
        )
    )


def participant(program: Program, participant_id: str) -> enrollment_pb2.Participant:
    return program.clients.enrollment.GetParticipant(
        enrollment_pb2.GetParticipantRequest(
            organization_id=program.org, participant_id=participant_id
        )
    )


def relationship(program: Program, relationship_id: str) -> engagement_pb2.Relationship:
    return program.clients.engagement.GetRelationship(
        engagement_pb2.GetRelationshipRequest(
            organization_id=program.org, relationship_id=relationship_id
        )
    )


def kpis(program: Program) -> analytics_pb2.ProgramKpis:
    return program.clients.analytics.GetProgramKpis(
        analytics_pb2.GetProgramKpisRequest(organization_id=program.org, program_id=program.pid)
    )


def start_relationship(program: Program, mentee_id: str) -> engagement_pb2.Match:
    """Wait for the mentee's proposal and have both sides accept it."""
    proposal = eventually(
        "a proposal", lambda: next(iter(program.proposals(mentee_id)), None), timeout=30
    )
    eventually("engagement to store the proposal", lambda: program.known(proposal.match_id))
    program.respond(proposal.match_id, proposal.mentor_id, accept=True)
    accepted = program.respond(proposal.match_id, mentee_id, accept=True)
    assert accepted.status == common_pb2.MATCH_STATUS_ACCEPTED
    return accepted


def events_on(stack: Stack, topic: str, program: Program) -> list[events_pb2.Event]:
    return [
        events_pb2.Event.FromString(r.value)
        for r in read_topic(stack.ports.bootstrap, topic, settle=2)
        if r.key == partition_key(program.org, program.pid)
    ]


def dead_letter_for(
    dead_letters: DeadLetters, event: events_pb2.Event
) -> events_pb2.DeadLetter | None:
    value = event.SerializeToString()
    for letter in dead_letters():
        if letter.consumer_group == "enrollment" and letter.value == value:
            return letter
    return None


# --- (a) a withdrawn mentee's proposal goes to another mentee ------------------------------


def test_a_withdrawn_mentee_releases_the_mentor_for_another(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    program.configure(mode=K.MATCHING_MODE_CONTINUOUS, criteria=[SKILLS])
    mentor = program.register("Mira", MENTOR, ["rust"], 1)
    first = program.register("Finn", MENTEE, ["rust"])
    proposal = eventually("Finn's proposal", lambda: next(iter(program.proposals(first)), None))
    assert proposal.mentor_id == mentor
    second = program.register("Sade", MENTEE, ["rust"])
    program.wait_pool()
    assert program.proposals(second) == []  # Mira's only slot is taken

    withdrawn = withdraw(program, first, "Changed teams")
    assert withdrawn.status == enrollment_pb2.PARTICIPANT_STATUS_WITHDRAWN

    handed_on = eventually(
        "Mira's slot to go to Sade", lambda: next(iter(program.proposals(second)), None)
    )
    assert handed_on.mentor_id == mentor
    (released,) = program.proposals(first)
    assert released.status == common_pb2.MATCH_STATUS_EXPIRED
    eventually(
        "engagement to expire the open proposal",
        lambda: (
            (m := program.known(proposal.match_id)) is not None
            and m.status == common_pb2.MATCH_STATUS_EXPIRED
        ),
    )
    # Finn is never proposed again, whoever arrives.
    program.register("Otto", MENTOR, ["rust"], 2)
    program.wait_pool()
    assert [p.match_id for p in program.proposals(first)] == [proposal.match_id]


# --- (b) a withdrawal ends the relationship ------------------------------------------------


def test_a_withdrawal_closes_the_relationship_early(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    mentor = program.register("Rhea", MENTOR, ["sales"], 1)
    mentee = program.register("Sol", MENTEE, ["sales"])
    accepted = start_relationship(program, mentee)
    eventually("the relationship to count", lambda: kpis(program).active_relationships == 1)

    withdraw(program, mentor, "Parental leave")

    ended = eventually(
        "the relationship to close",
        lambda: (
            r
            if (r := relationship(program, accepted.relationship_id)).status == CLOSED_EARLY
            else None
        ),
    )
    assert ended.end_reason == "withdrawn: Parental leave"
    announced = eventually(
        "relationship-ended on its topic",
        lambda: [e for e in events_on(stack, "relationship-ended", program)] or None,
    )
    assert len(announced) == 1
    assert announced[0].relationship_ended.relationship_id == accepted.relationship_id
    assert announced[0].relationship_ended.reason == "withdrawn: Parental leave"
    assert not announced[0].relationship_ended.completed
    eventually(
        "the KPIs to count the early close",
        lambda: (
            (k := kpis(program)).relationships_closed_early == 1 and k.active_relationships == 0
        ),
    )


# --- (c) more capacity, more proposals -----------------------------------------------------


def test_a_capacity_update_lets_matching_propose_more(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    program.configure(mode=K.MATCHING_MODE_CONTINUOUS, criteria=[SKILLS])
    mentor = program.register("Cleo", MENTOR, ["ml"], 1, department="research")
    first = program.register("Dan", MENTEE, ["ml"])
    eventually("Dan's proposal", lambda: program.proposals(first) or None)
    second = program.register("Eli", MENTEE, ["ml"])
    program.wait_pool()
    assert program.proposals(second) == []

    updated = clients.enrollment.UpdateParticipantProfile(
        enrollment_pb2.UpdateParticipantProfileRequest(
            organization_id=program.org,
            participant_id=mentor,
            profile=common_pb2.Profile(department="research"),
            capacity=2,
        )
    )
    assert updated.capacity == 2

    more = eventually("a second proposal for Cleo", lambda: program.proposals(second) or None)
    assert [p.mentor_id for p in more] == [mentor]
    third = program.register("Fay", MENTEE, ["ml"])
    program.wait_pool()
    assert program.proposals(third) == []  # two slots, both taken


# --- (d) an HR termination -----------------------------------------------------------------


def test_an_hr_termination_withdraws_the_person_and_ends_their_relationship(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    hr_id = f"h-{uuid.uuid4().hex[:6]}"
    program.register("Gus", MENTOR, ["law"], 1)
    mentee = program.register("Hal", MENTEE, ["law"], hr_person_id=hr_id)
    accepted = start_relationship(program, mentee)

    publish_hr(
        stack,
        program.org,
        events_pb2.HrEvent(
            hr_person_id=hr_id, terminated=events_pb2.Terminated(reason="redundancy")
        ),
    )

    gone = eventually(
        "enrollment to withdraw Hal",
        lambda: (
            p
            if (p := participant(program, mentee)).status
            == enrollment_pb2.PARTICIPANT_STATUS_WITHDRAWN
            else None
        ),
    )
    assert gone.status_reason == "terminated: redundancy"
    withdrawn = eventually(
        "participant-withdrawn", lambda: events_on(stack, "participant-withdrawn", program) or None
    )
    assert [e.participant_withdrawn.participant_id for e in withdrawn] == [mentee]
    assert withdrawn[0].participant_withdrawn.reason == "terminated: redundancy"
    ended = eventually(
        "the relationship to close",
        lambda: (
            r
            if (r := relationship(program, accepted.relationship_id)).status == CLOSED_EARLY
            else None
        ),
    )
    assert ended.end_reason == "withdrawn: terminated: redundancy"
    eventually(
        "relationship-ended", lambda: events_on(stack, "relationship-ended", program) or None
    )


# --- (e) an HR manager change --------------------------------------------------------------


def test_an_hr_manager_change_updates_the_profile_and_blocks_the_pair(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    program.configure(mode=K.MATCHING_MODE_SELF, criteria=[SKILLS])
    lead_hr, newbie_hr = f"h-lead-{uuid.uuid4().hex[:6]}", f"h-new-{uuid.uuid4().hex[:6]}"
    lead = program.register("Ivo", MENTOR, ["hiring"], 1, hr_person_id=lead_hr)
    newbie = program.register(
        "Jun", MENTEE, ["hiring"], hr_person_id=newbie_hr, location="Oslo", manager_id="h-old"
    )
    program.wait_pool()

    def recommended() -> list[str]:
        return [
            r.mentor_id
            for r in clients.matching.RecommendMentors(
                K.RecommendMentorsRequest(
                    organization_id=program.org, program_id=program.pid, mentee_id=newbie
                )
            ).recommendations
        ]

    assert recommended() == [lead]
    publish_hr(
        stack,
        program.org,
        events_pb2.HrEvent(
            hr_person_id=newbie_hr, manager_changed=events_pb2.ManagerChanged(manager_id=lead_hr)
        ),
    )
    updates = eventually(
        "participant-updated", lambda: events_on(stack, "participant-updated", program) or None
    )
    assert [u.participant_updated.participant_id for u in updates] == [newbie]
    profile = updates[0].participant_updated.profile
    assert (profile.manager_id, profile.location, profile.hr_person_id) == (
        lead_hr,
        "Oslo",
        newbie_hr,
    )
    assert participant(program, newbie).profile.manager_id == lead_hr
    eventually("matching to stop recommending Ivo", lambda: recommended() == [])


# --- (f) unknown people and malformed events -----------------------------------------------


def test_hr_events_for_unknown_people_or_malformed_are_dead_lettered(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    program.register("Kai", MENTEE, ["ux"], hr_person_id="h-kai")
    dead_letters = DeadLetters(stack.ports.bootstrap)
    unknown = publish_hr(
        stack,
        program.org,
        events_pb2.HrEvent(
            hr_person_id="h-nobody", transferred=events_pb2.Transferred(department="ops")
        ),
    )
    malformed = publish_hr(
        stack, program.org, events_pb2.HrEvent(manager_changed=events_pb2.ManagerChanged())
    )
    no_change = publish_hr(stack, program.org, events_pb2.HrEvent(hr_person_id="h-kai"))

    letter = eventually(
        "the unknown person's dead letter", lambda: dead_letter_for(dead_letters, unknown)
    )
    assert "no participant with hr_person_id 'h-nobody'" in letter.reason
    assert letter.source_topic == "hr-events"
    letter = eventually(
        "the malformed event's dead letter", lambda: dead_letter_for(dead_letters, malformed)
    )
    assert "hr_person_id is missing" in letter.reason
    letter = eventually(
        "the empty change's dead letter", lambda: dead_letter_for(dead_letters, no_change)
    )
    assert "no change set" in letter.reason


# --- (g) redelivery ------------------------------------------------------------------------


def test_a_redelivered_hr_event_changes_nothing(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    hr_id = f"h-{uuid.uuid4().hex[:6]}"
    person = program.register("Lea", MENTEE, ["ops"], hr_person_id=hr_id, department="support")
    moved = publish_hr(
        stack,
        program.org,
        events_pb2.HrEvent(
            hr_person_id=hr_id,
            transferred=events_pb2.Transferred(department="finance", location="Rome"),
        ),
    )
    eventually(
        "the transfer to apply",
        lambda: participant(program, person).profile.department == "finance",
    )
    first = eventually(
        "participant-updated", lambda: events_on(stack, "participant-updated", program) or None
    )
    assert len(first) == 1
    port = stack.ports.metrics["enrollment"]
    labels = {"topic": "hr-events", "group": "enrollment"}
    before = metric(port, "mentoring_events_duplicate_total", **labels)
    stored = participant(program, person)

    produce(stack.ports.bootstrap, [hr_record(moved)], signed_with=stack.hr_producer(program.org))

    eventually(
        "enrollment to drop the duplicate",
        lambda: metric(port, "mentoring_events_duplicate_total", **labels) == before + 1,
    )
    assert participant(program, person) == stored
    assert len(events_on(stack, "participant-updated", program)) == 1


# --- (h) an organisation's HR events come only from its own HR producer --------------------


@pytest.mark.parametrize("signer", ["another organisation's key", "no key"])
def test_an_hr_event_its_organisation_did_not_sign_changes_nothing(
    stack: Stack, clients: Clients, signer: str
) -> None:
    program = Program(clients, stack)
    hr_id = f"h-{uuid.uuid4().hex[:6]}"
    person = program.register("Noa", MENTEE, ["ops"], hr_person_id=hr_id, department="support")
    dead_letters = DeadLetters(stack.ports.bootstrap)
    intruder = stack.hr_producer(f"other-{program.org}") if signer != "no key" else None
    # About this organisation's person, in this organisation's envelope and partition.
    forged = new_event(
        producer="hris",
        organization_id=program.org,
        program_id="",
        payload=events_pb2.HrEvent(
            hr_person_id=hr_id, terminated=events_pb2.Terminated(reason="forged")
        ),
    )
    produce(stack.ports.bootstrap, [hr_record(forged)], signed_with=intruder)

    def letters() -> dict[str, events_pb2.DeadLetter] | None:
        value = forged.SerializeToString()
        found = {d.consumer_group: d for d in dead_letters() if d.value == value}
        return found if set(found) == {"enrollment", "analytics"} else None

    found = eventually("enrollment and analytics to dead-letter it", letters)
    expected = (
        f"signed by organisation 'other-{program.org}' (key id {intruder.key_id!r}) but the "
        f"envelope says {program.org!r}"
        if intruder
        else "unsigned: an hr-event needs the mentoring-key-id and mentoring-signature headers"
    )
    assert {group: letter.reason for group, letter in found.items()} == {
        "enrollment": expected,
        "analytics": expected,
    }
    # The organisation's own HR system, after it on the same partition: applied, and the
    # person is still enrolled.
    publish_hr(
        stack,
        program.org,
        events_pb2.HrEvent(hr_person_id=hr_id, transferred=events_pb2.Transferred(location="Rome")),
    )
    moved = eventually(
        "the signed transfer to apply",
        lambda: p if (p := participant(program, person)).profile.location == "Rome" else None,
    )
    assert moved.status == enrollment_pb2.PARTICIPANT_STATUS_REGISTERED
    assert moved.profile.department == "support"
    assert events_on(stack, "participant-withdrawn", program) == []
