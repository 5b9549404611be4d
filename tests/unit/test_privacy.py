"""Erasure by pseudonymisation: the pure rules (services/common/privacy.py and enrollment's),
then matching's and engagement's erasure of their own records, on mongomock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import mongoengine
import pytest

from services.common import clock
from services.common.api import common_pb2, enrollment_pb2
from services.common.errors import InvalidArgument
from services.common.privacy import (
    ERASED,
    is_pseudonymous_email,
    pseudonymous_email,
    pseudonymous_profile,
    redact,
    require_participant_ids,
)
from services.enrollment import domain
from services.enrollment.privacy import (
    PersonKey,
    erased_event_id,
    erased_status,
    erasure_id_for,
    person_key,
    pseudonymised,
    withdrawal_event_id,
)
from tests.unit import memory_db

ORG = "org-1"
PROGRAM = "prog-1"


def full_profile() -> common_pb2.Profile:
    return common_pb2.Profile(
        hr_person_id="hr-7",
        manager_id="hr-1",
        department="Finance",
        location="Lyon",
        timezone="Europe/Paris",
        languages=["fr", "en"],
        job_level=7,
        goals=["become a manager after my divorce"],
        availability=[common_pb2.AvailabilitySlot(weekday=2, start_minute=600, end_minute=660)],
        demographics=common_pb2.Demographics(
            gender="woman", cultural_background="x", use_for_matching=True
        ),
        preferred_mentor_ids=["p-9"],
        cohort_id="spring",
    )


# --- the shared rules ----------------------------------------------------------------------


def test_a_pseudonymous_email_is_unique_per_registration_and_delivers_nowhere() -> None:
    first, second = pseudonymous_email("p-1"), pseudonymous_email("p-2")
    assert first != second
    assert first.endswith("@erased.invalid")
    assert is_pseudonymous_email(first)
    assert not is_pseudonymous_email("ada@example.org")


def test_redact_erases_what_people_wrote_and_keeps_what_the_platform_wrote() -> None:
    assert redact("She told me about her burnout") == ERASED
    assert redact("") == ""
    assert redact("declined", keep={"declined"}) == "declined"
    assert redact("declined because of his attitude", keep={"declined"}) == ERASED


def test_a_pseudonymous_profile_keeps_only_the_cohort() -> None:
    profile = full_profile()
    # Every field of the contract is set, so a field added to Profile later is covered too.
    assert {f.name for f, _ in profile.ListFields()} == {
        f.name for f in common_pb2.Profile.DESCRIPTOR.fields
    }
    left = pseudonymous_profile(profile)
    assert [(f.name, v) for f, v in left.ListFields()] == [("cohort_id", "spring")]
    assert pseudonymous_profile(common_pb2.Profile()) == common_pb2.Profile()


def test_require_participant_ids_names_the_bad_one_and_drops_repeats() -> None:
    assert require_participant_ids(["p-1", "p-2", "p-1"]) == ["p-1", "p-2"]
    with pytest.raises(InvalidArgument) as caught:
        require_participant_ids([])
    assert caught.value.field == "participant_ids"
    with pytest.raises(InvalidArgument) as caught:
        require_participant_ids(["p-1", "no spaces"])
    assert caught.value.field == "participant_ids[1]"
    with pytest.raises(InvalidArgument) as caught:
        require_participant_ids([f"p-{i}" for i in range(101)])
    assert caught.value.field == "participant_ids"


# --- enrollment's rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (
            enrollment_pb2.PersonRef(email=" Ada@Example.ORG "),
            PersonKey("email", "ada@example.org"),
        ),
        (enrollment_pb2.PersonRef(hr_person_id="hr-7"), PersonKey("hr_person_id", "hr-7")),
        (enrollment_pb2.PersonRef(participant_id="p-1"), PersonKey("participant_id", "p-1")),
    ],
)
def test_person_key_accepts_each_kind(ref: enrollment_pb2.PersonRef, expected: PersonKey) -> None:
    assert person_key(ref) == expected


@pytest.mark.parametrize(
    ("ref", "field"),
    [
        (enrollment_pb2.PersonRef(), "person"),
        (enrollment_pb2.PersonRef(email="  "), "person.email"),
        (enrollment_pb2.PersonRef(email="nobody"), "person.email"),
        (enrollment_pb2.PersonRef(hr_person_id=""), "person.hr_person_id"),
        (enrollment_pb2.PersonRef(participant_id="a b"), "person.participant_id"),
    ],
)
def test_person_key_names_the_bad_field(ref: enrollment_pb2.PersonRef, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        person_key(ref)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("status", "after"),
    [
        (domain.APPLIED, domain.WITHDRAWN),
        (domain.WAITLISTED, domain.WITHDRAWN),
        (domain.REGISTERED, domain.WITHDRAWN),
        (domain.REJECTED, domain.REJECTED),
        (domain.WITHDRAWN, domain.WITHDRAWN),
    ],
)
def test_an_erased_person_leaves_the_program(status: str, after: str) -> None:
    assert erased_status(status) == after


def test_pseudonymised_registration_holds_nothing_of_the_person() -> None:
    fields = pseudonymised("p-1", domain.REGISTERED, full_profile())
    assert fields["display_name"] == ERASED
    assert fields["email"] == pseudonymous_email("p-1")
    assert fields["skills"] == []
    assert fields["answers"] == {}
    assert fields["hr_person_id"] == ""
    assert fields["status"] == domain.WITHDRAWN
    assert fields["status_reason"] == "erased"
    profile = common_pb2.Profile.FromString(fields["profile"])
    assert profile == common_pb2.Profile(cohort_id="spring")


def test_erasure_ids_are_stable_for_retries_and_distinct_per_thing() -> None:
    assert erasure_id_for(ORG, ["p-2", "p-1"]) == erasure_id_for(ORG, ["p-1", "p-2"])
    assert erasure_id_for(ORG, ["p-1"]) != erasure_id_for(ORG, ["p-1", "p-2"])
    assert erasure_id_for(ORG, ["p-1"]) != erasure_id_for("org-2", ["p-1"])
    ids = {
        withdrawal_event_id(ORG, "p-1"),
        erased_event_id(ORG, "p-1"),
        erased_event_id(ORG, "p-2"),
    }
    assert len(ids) == 3
    assert erased_event_id(ORG, "p-1") == erased_event_id(ORG, "p-1")


# --- matching and engagement erase their records (mongomock) -------------------------------


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[None]:
    service = request.param
    memory_db.connect_fresh(service, f"test_{service}")
    yield
    mongoengine.disconnect()


@pytest.mark.parametrize("database", ["matching"], indirect=True)
def test_matching_erases_a_member_once_and_keeps_scores_and_exclusions(database: None) -> None:
    from services.common.storage import Transaction, atomic
    from services.matching import pool
    from services.matching.documents import Exclusion, PoolMember, Proposal
    from services.matching.domain.model import CriterionResult, Evaluation
    from services.matching.privacy import erase_member

    profile = full_profile().SerializeToString()
    pool.add_member(ORG, PROGRAM, "m-1", "mentor", "Mo", ["sql"], 2, b"", "", "", "")
    pool.add_member(ORG, PROGRAM, "e-1", "mentee", "Ada", ["sql"], 0, profile, "hr-7", "hr-1", "")
    evaluation = Evaluation(
        score=0.8,
        breakdown=(CriterionResult("department", 0.8, 1.0, True, "both in 'Finance'"),),
        violations=(),
    )
    keys = {m.participant_id: m.pk for m in PoolMember.objects(organization_id=ORG)}

    def propose(tx: Transaction) -> None:
        assert pool.reserve(tx, keys["m-1"], keys["e-1"])
        tx.insert(
            pool.new_proposal(
                ORG,
                PROGRAM,
                "m-1",
                "e-1",
                evaluation,
                origin="coordinator",
                override_reason="Ada asked",
            )
        )
        pool.add_exclusion(tx, ORG, PROGRAM, "m-2", "e-1", "they are cousins")
        pool.add_exclusion(tx, ORG, PROGRAM, "m-3", "e-1", "declined")

    atomic(propose)

    released = erase_member(ORG, PROGRAM, "e-1", "mentee").released
    again = erase_member(ORG, PROGRAM, "e-1", "mentee").released

    assert [p.mentee_id for p in released] == ["e-1"]
    assert again == []  # a redelivery releases nothing more
    member = PoolMember.objects.get(organization_id=ORG, participant_id="e-1")
    assert (member.erased, member.withdrawn, member.display_name, member.skills) == (
        True,
        True,
        "",
        [],
    )
    assert member.hr_person_id == ""
    assert common_pb2.Profile.FromString(member.profile) == common_pb2.Profile(cohort_id="spring")
    (proposal,) = Proposal.objects(organization_id=ORG)
    assert proposal.status == "withdrawn"
    assert proposal.score == 0.8
    assert [(c.criterion, c.score, c.detail) for c in proposal.breakdown] == [
        ("department", 0.8, "")
    ]
    assert proposal.override_reason == ERASED
    reasons = {e.mentor_id: e.reason for e in Exclusion.objects(organization_id=ORG)}
    assert reasons == {"m-2": ERASED, "m-3": "declined"}
    mentor = PoolMember.objects.get(organization_id=ORG, participant_id="m-1")
    assert mentor.free_slots == 2  # the slot went back once, not twice

    # A profile update sent before the erasure and delivered after it changes nothing.
    pool.update_member(
        ORG,
        PROGRAM,
        pool.Registration("e-1", "mentee", "Ada", ["sql"], 0, profile, "hr-7", "", ""),
    )
    assert PoolMember.objects.get(organization_id=ORG, participant_id="e-1").display_name == ""


@pytest.mark.parametrize("database", ["matching"], indirect=True)
def test_an_erasure_before_the_registration_leaves_an_erased_stub(database: None) -> None:
    from services.matching import pool
    from services.matching.documents import PoolMember
    from services.matching.privacy import erase_member

    erase_member(ORG, PROGRAM, "e-1", "mentee")
    pool.add_member(ORG, PROGRAM, "e-1", "mentee", "Ada", ["sql"], 0, b"", "hr-7", "", "")
    member = PoolMember.objects.get(organization_id=ORG, participant_id="e-1")
    assert (member.erased, member.withdrawn, member.display_name) == (True, True, "")


@pytest.mark.parametrize("database", ["engagement"], indirect=True)
def test_engagement_erases_the_pairs_words_and_keeps_the_numbers(database: None) -> None:
    from services.engagement import store
    from services.engagement.documents import (
        Feedback,
        Goal,
        Match,
        Milestone,
        Relationship,
        Session,
        SessionNote,
    )
    from services.engagement.privacy import erase_participant

    now = clock.now()
    Match(
        organization_id=ORG,
        program_id=PROGRAM,
        match_id="x-1",
        mentor_id="m-1",
        mentee_id="e-1",
        status="accepted",
        relationship_id="r-1",
        proposed_at=now,
    ).save()
    Relationship(
        organization_id=ORG,
        program_id=PROGRAM,
        relationship_id="r-1",
        match_id="x-1",
        mentor_id="m-1",
        mentee_id="e-1",
        started_at=now - timedelta(days=30),
        sessions=1,
        minutes=45,
        pause_reason="Ada is on sick leave",
    ).save()
    Session(
        organization_id=ORG,
        program_id=PROGRAM,
        session_id="s-1",
        relationship_id="r-1",
        held_at=now,
        minutes=45,
        mode="virtual",
        topics=["her divorce"],
    ).save()
    for author in ("m-1", "e-1"):
        store.set_note(ORG, "s-1", author, f"note by {author} about Ada")
    Goal(
        organization_id=ORG,
        program_id=PROGRAM,
        goal_id="g-1",
        relationship_id="r-1",
        mentee_id="e-1",
        title="Get promoted",
        description="before my manager leaves",
        target_date=now + timedelta(days=90),
        progress=40,
        milestones=[Milestone(milestone_id="ms-1", title="Talk to Bob", done=True)],
        created_by="e-1",
        created_at=now,
        updated_at=now,
    ).save()
    Feedback(
        organization_id=ORG,
        program_id=PROGRAM,
        feedback_id="f-1",
        relationship_id="r-1",
        author_id="m-1",
        survey_point="day-30",
        rating=4,
        comment="Ada is shy",
        submitted_at=now,
    ).save()

    ended = erase_participant(ORG, "e-1")
    again = erase_participant(ORG, "e-1")

    assert [e.envelope.event_id for e in ended] == [e.envelope.event_id for e in again]
    (event,) = ended
    assert event.relationship_ended.reason == "withdrawn: erased"
    relationship = Relationship.objects.get(relationship_id="r-1")
    assert (relationship.status, relationship.sessions, relationship.minutes) == (
        "closed_early",
        1,
        45,
    )
    assert relationship.end_reason == "withdrawn: erased"
    assert relationship.pause_reason == ERASED
    session = Session.objects.get(session_id="s-1")
    assert (session.topics, session.minutes) == ([], 45)
    assert SessionNote.objects.count() == 0
    goal = Goal.objects.get(goal_id="g-1")
    assert (goal.title, goal.description, goal.progress, goal.version) == (ERASED, "", 40, 1)
    assert [(m.title, m.done) for m in goal.milestones] == [(ERASED, True)]
    feedback = Feedback.objects.get(feedback_id="f-1")
    assert (feedback.comment, feedback.rating) == ("", 4)
