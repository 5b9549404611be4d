"""What engagement learns from enrollment and matching, on mongomock (a fresh database per
test): programs' terms (program-changed), the participant directory, leaves of absence,
announcement audiences, expiries that overtake their proposal, client request ids; and the
match-expired matching owes engagement for proposals a withdrawal released."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import mongoengine
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.common import idempotency
from services.common.api import common_pb2, events_pb2
from services.common.errors import AlreadyExists, FailedPrecondition
from services.common.events import new_event
from services.common.outbox import OutboxEntry
from services.engagement import (
    announcements,
    directory,
    domain,
    goals,
    health,
    leaves,
    notifications,
    nudges,
    planning,
    programs,
    store,
)
from services.engagement.consumer import EngagementConsumer
from services.engagement.documents import (
    Goal,
    Match,
    ParticipantLeave,
    ProgramParticipant,
    Relationship,
    Session,
)
from services.matching import planner, pool, releases
from services.matching.documents import Proposal
from services.matching.messages import expired_event
from tests.unit import memory_db

ORG, PROGRAM = "org-1", "prog-1"
DAY = nudges.DAY
NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def database() -> Iterator[None]:
    memory_db.connect_fresh("engagement", "test_lifecycle")
    yield
    mongoengine.disconnect()


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def event(payload: object, program_id: str = PROGRAM) -> events_pb2.Event:
    return new_event(
        producer="tests",
        organization_id=ORG,
        program_id=program_id,
        payload=payload,  # type: ignore[arg-type]
    )


# --- program terms -------------------------------------------------------------------------


def program_changed(version: int, months: int, cadence: int) -> events_pb2.Event:
    return event(
        events_pb2.ProgramChanged(
            name="P",
            version=version,
            settings=events_pb2.ProgramSettings(
                timeframe_months=months, meeting_cadence_days=cadence
            ),
        )
    )


def test_terms_move_only_to_a_later_version() -> None:
    assert programs.terms_of(ORG, PROGRAM) == programs.NO_TERMS
    programs.apply_program_changed(program_changed(2, 9, 7))
    assert programs.terms_of(ORG, PROGRAM) == programs.Terms(9, 7)
    programs.apply_program_changed(program_changed(1, 3, 30))  # overtaken: ignored
    programs.apply_program_changed(program_changed(2, 12, 1))  # same version again: ignored
    assert programs.terms_of(ORG, PROGRAM) == programs.Terms(9, 7)
    programs.apply_program_changed(program_changed(3, 0, 14))
    assert programs.terms_of(ORG, PROGRAM) == programs.Terms(0, 14)
    assert programs.check(program_changed(0, 1, 1)) == "program_changed.version must be at least 1"


def propose_and_accept(match_id: str = "m-1", mentor: str = "a", mentee: str = "b") -> Relationship:
    store.record_proposals(
        [event(events_pb2.MatchProposed(match_id=match_id, mentor_id=mentor, mentee_id=mentee))]
    )
    store.respond(ORG, match_id, mentor, domain.ACCEPT)
    accepted, _ = store.respond(ORG, match_id, mentee, domain.ACCEPT)
    return store.get_relationship(ORG, accepted.relationship_id)


def test_a_relationship_ends_after_the_programs_timeframe() -> None:
    programs.apply_program_changed(program_changed(1, 9, 7))
    r = propose_and_accept()
    started = domain.aware(r.started_at)
    assert domain.aware(r.expected_end_at) == domain.add_months(started, 9)
    # Another program, no terms: six months.
    store.record_proposals(
        [
            event(
                events_pb2.MatchProposed(match_id="m-2", mentor_id="c", mentee_id="d"),
                program_id="prog-2",
            )
        ]
    )
    store.respond(ORG, "m-2", "c", domain.ACCEPT)
    other, _ = store.respond(ORG, "m-2", "d", domain.ACCEPT)
    plain = store.get_relationship(ORG, other.relationship_id)
    assert domain.aware(plain.expected_end_at) == domain.default_expected_end(
        domain.aware(plain.started_at)
    )


def test_health_expects_a_session_per_cadence() -> None:
    assert health.expected_sessions(60) == 4  # twice a month by default
    assert health.expected_sessions(60, cadence_days=7) == pytest.approx(60 / 7)
    weekly = health.health(held=4, days=56, goals=[], ratings=[], cadence_days=7)
    assert weekly.cadence == 0.5 and weekly.expected_sessions == 8
    programs.apply_program_changed(program_changed(1, 0, 30))
    r = propose_and_accept()
    assert store.health_inputs(ORG, r.relationship_id).cadence_days == 30


def test_the_no_session_default_follows_the_cadence_unless_the_coordinator_set_it() -> None:
    assert notifications.get_policy(ORG, PROGRAM).no_session_seconds == 21 * DAY
    programs.apply_program_changed(program_changed(1, 6, 7))
    assert notifications.get_policy(ORG, PROGRAM).no_session_seconds == 10.5 * DAY
    kept = notifications.set_policy(
        ORG, PROGRAM, nudges.policy_from({"ending_soon_seconds": 9}), True
    )
    assert (kept.no_session_seconds, kept.ending_soon_seconds) == (10.5 * DAY, 9)
    explicit = notifications.set_policy(ORG, PROGRAM, nudges.NudgePolicy(no_session_seconds=60))
    assert explicit.no_session_seconds == 60
    assert notifications.load_policies()[(ORG, PROGRAM)].no_session_seconds == 60


def test_the_scheduler_nudges_at_the_cadence_threshold() -> None:
    programs.apply_program_changed(program_changed(1, 6, 4))  # nudged after 6 silent days
    r = propose_and_accept()
    started = domain.aware(r.started_at)

    async def round_at(moment: datetime) -> list[nudges.Nudge]:
        return await notifications.NudgeScheduler(Recording(), now=lambda: moment).nudge_once()  # type: ignore[arg-type]

    assert asyncio.run(round_at(started + timedelta(days=5, hours=23))) == []
    found = asyncio.run(round_at(started + timedelta(days=6)))
    assert {(n.recipient_id, n.reason) for n in found} == {("a", "no-session"), ("b", "no-session")}


class Recording:
    def __init__(self) -> None:
        self.events: list[events_pb2.Event] = []

    async def publish(self, events: list[events_pb2.Event]) -> None:
        self.events.extend(events)


# --- the participant directory -------------------------------------------------------------


def registered(pid: str, role: int, cohort: str = "") -> events_pb2.Event:
    return event(
        events_pb2.ParticipantRegistered(
            participant_id=pid, role=role, profile=common_pb2.Profile(cohort_id=cohort)
        )
    )


def updated(
    pid: str, role: int, cohort: str = "", leave: events_pb2.LeaveOfAbsence | None = None
) -> events_pb2.Event:
    return event(
        events_pb2.ParticipantUpdated(
            participant_id=pid, role=role, profile=common_pb2.Profile(cohort_id=cohort), leave=leave
        )
    )


def withdrawn(pid: str, role: int) -> events_pb2.Event:
    return event(events_pb2.ParticipantWithdrawn(participant_id=pid, role=role, reason="moved"))


MENTOR, MENTEE = common_pb2.ROLE_MENTOR, common_pb2.ROLE_MENTEE


def entry(pid: str) -> ProgramParticipant:
    found = directory.get(ORG, pid)
    assert found is not None
    return found


def test_the_directory_keeps_the_newest_whatever_the_order() -> None:
    directory.apply(registered("a", MENTOR, "c-1"))
    directory.apply(updated("a", MENTOR, "c-2"))
    directory.apply(registered("a", MENTOR, "c-1"))  # redelivered: the update stands
    assert (entry("a").role, entry("a").cohort_id, entry("a").program_id) == (
        "mentor",
        "c-2",
        PROGRAM,
    )
    # An update that overtakes the registration.
    directory.apply(updated("b", MENTEE, "c-3"))
    directory.apply(registered("b", MENTEE, "c-1"))
    assert entry("b").cohort_id == "c-3"
    # A withdrawal is for good, also when it comes first.
    directory.apply(withdrawn("c", MENTEE))
    directory.apply(registered("c", MENTEE))
    assert entry("c").withdrawn
    assert directory.check(event(events_pb2.ParticipantUpdated(participant_id="x"))) == (
        "participant_updated.role must be mentor or mentee"
    )


def test_a_batch_of_participant_events_ends_as_applying_them_one_by_one() -> None:
    with_capacity = registered("d", MENTOR)
    with_capacity.participant_registered.capacity = 3
    batch = [
        updated("a", MENTOR, "c-2"),
        registered("a", MENTOR, "c-1"),  # overtaken by the update
        registered("b", MENTEE, "c-1"),
        withdrawn("c", MENTEE),
        registered("c", MENTEE),  # after its withdrawal
        with_capacity,
        registered("b", MENTEE, "c-1"),  # redelivered
    ]

    def stored() -> list[tuple[object, ...]]:
        return sorted(
            (p.participant_id, p.role, p.cohort_id, p.withdrawn, p.capacity, p.program_id)
            for p in ProgramParticipant.objects(organization_id=ORG)
        )

    for one in batch:
        directory.apply(one)
    one_by_one = stored()
    ProgramParticipant.objects(organization_id=ORG).delete()
    directory.apply_all(batch)
    assert stored() == one_by_one
    assert ("d", "mentor", "", False, 3, PROGRAM) in one_by_one
    directory.apply_all(batch)  # the whole batch again changes nothing
    assert stored() == one_by_one


def leave_of(pid: str) -> ParticipantLeave:
    found = directory.leave_of(ORG, pid)
    assert found is not None
    return found


def test_an_update_sets_or_clears_the_leave() -> None:
    directory.apply(updated("b", MENTEE))
    leave = events_pb2.LeaveOfAbsence(starts_on=ts(NOW), ends_on=ts(NOW + timedelta(days=30)))
    directory.apply(updated("a", MENTOR, leave=leave))
    assert domain.aware(leave_of("a").starts_on) == NOW
    assert domain.aware(leave_of("a").ends_on) == NOW + timedelta(days=30)
    directory.apply(updated("a", MENTOR, leave=events_pb2.LeaveOfAbsence(starts_on=ts(NOW))))
    assert leave_of("a").ends_on is None  # open-ended now
    directory.apply(updated("a", MENTOR))
    assert leave_of("a").starts_on is None
    assert directory.leave_of(ORG, "b") is None  # nobody else has one


def test_the_consumer_routes_programs_and_participants_and_drops_redeliveries() -> None:
    from services.common.kafka import Delivered

    batch = [
        program_changed(1, 9, 7),
        registered("a", MENTOR, "c-1"),
        updated("b", MENTEE),
        withdrawn("b", MENTEE),
        event(events_pb2.ParticipantRegistered(participant_id="", role=MENTOR)),
    ]
    items = [Delivered(e, None) for e in batch]  # type: ignore[arg-type]
    publisher = Recording()
    rejected = asyncio.run(EngagementConsumer(publisher).handle(items))  # type: ignore[arg-type]
    assert [r.reason for r in rejected] == ["participant_registered.participant_id is missing"]
    assert programs.terms_of(ORG, PROGRAM) == programs.Terms(9, 7)
    assert entry("a").cohort_id == "c-1" and entry("b").withdrawn
    assert asyncio.run(EngagementConsumer(publisher).handle(items[:4])) == []  # type: ignore[arg-type]
    assert publisher.events == []


# --- leaves of absence ---------------------------------------------------------------------


def pair(rid: str, mentor: str, mentee: str, status: str = "active", reason: str = "") -> None:
    Relationship(
        organization_id=ORG,
        program_id=PROGRAM,
        relationship_id=rid,
        match_id=f"m-{rid}",
        mentor_id=mentor,
        mentee_id=mentee,
        status=status,
        pause_reason=reason,
        paused_at=NOW - timedelta(days=1) if status == "paused" else None,
        started_at=NOW - timedelta(days=60),
    ).save()


def on_leave(pid: str, days: int | None, role: int = MENTOR) -> None:
    leave = events_pb2.LeaveOfAbsence(starts_on=ts(NOW))
    if days is not None:
        leave.ends_on.CopyFrom(ts(NOW + timedelta(days=days)))
    directory.apply(updated(pid, role, leave=leave))


def state(rid: str) -> tuple[str, str]:
    r = Relationship.objects.get(organization_id=ORG, relationship_id=rid)
    return r.status, r.pause_reason


def test_leave_pauses_active_relationships_and_the_return_resumes_only_those() -> None:
    pair("r1", "a", "b")
    pair("r2", "a", "c", "paused", "busy quarter")
    pair("r3", "d", "e")
    on_leave("a", days=10)
    assert leaves.apply_due(NOW - timedelta(seconds=1)) == []  # not yet
    changes = leaves.apply_due(NOW)
    assert [(c.participant_id, c.started, c.relationships) for c in changes] == [("a", True, 1)]
    assert state("r1") == ("paused", leaves.LEAVE_REASON)
    assert state("r2") == ("paused", "busy quarter")
    assert state("r3") == ("active", "")
    assert leaves.apply_due(NOW + timedelta(days=1)) == []  # applied once
    back = NOW + timedelta(days=10)
    assert [(c.started, c.relationships) for c in leaves.apply_due(back)] == [(False, 1)]
    assert state("r1") == ("active", "")
    assert state("r2") == ("paused", "busy quarter")
    r1 = Relationship.objects.get(relationship_id="r1")
    assert domain.aware(r1.resumed_at) == back
    assert r1.paused_seconds == 10 * DAY


def test_a_cleared_leave_ends_and_a_registration_can_bring_one() -> None:
    pair("r1", "a", "b")
    on_leave("a", days=None)
    leaves.apply_due(NOW)
    assert state("r1") == ("paused", leaves.LEAVE_REASON)
    directory.apply(updated("a", MENTOR))  # the latest update reports no leave
    leaves.apply_due(NOW + timedelta(hours=1))
    assert state("r1") == ("active", "")
    leave = events_pb2.LeaveOfAbsence(starts_on=ts(NOW))
    directory.apply(
        event(events_pb2.ParticipantRegistered(participant_id="c", role=MENTEE, leave=leave))
    )
    assert domain.aware(leave_of("c").starts_on) == NOW


def test_both_members_away_resumes_when_the_last_is_back() -> None:
    pair("r1", "a", "b")
    on_leave("a", days=5)
    on_leave("b", days=8, role=MENTEE)
    leaves.apply_due(NOW)
    assert sorted(Relationship.objects.get(relationship_id="r1").leave_holds) == ["a", "b"]
    leaves.apply_due(NOW + timedelta(days=5))
    assert state("r1") == ("paused", leaves.LEAVE_REASON)
    leaves.apply_due(NOW + timedelta(days=8))
    assert state("r1") == ("active", "")


def test_a_pair_that_resumes_during_the_leave_keeps_it_and_a_withdrawal_ends_the_leave() -> None:
    pair("r1", "a", "b")
    pair("r2", "a", "c")
    on_leave("a", days=None)  # open-ended
    leaves.apply_due(NOW)
    store.resume_relationship(ORG, "r1", "b")
    store.pause_relationship(ORG, "r1", "b", "our own break")
    directory.apply(withdrawn("a", MENTOR))
    leaves.apply_due(NOW + timedelta(days=400))
    assert state("r1") == ("paused", "our own break")
    assert state("r2") == ("active", "")
    assert not leave_of("a").on_leave


def test_away_is_everyone_on_leave_by_their_dates() -> None:
    on_leave("a", days=3)
    assert leaves.away(NOW) == {(ORG, "a")}
    assert leaves.away(NOW + timedelta(days=3)) == set()


# --- announcements -------------------------------------------------------------------------


def test_an_announcement_targets_the_program_a_cohort_a_side_or_the_unmatched() -> None:
    for pid, role, cohort in (
        ("m1", MENTOR, "c-1"),
        ("m2", MENTOR, "c-2"),
        ("e1", MENTEE, "c-1"),
        ("e2", MENTEE, "c-1"),
        ("e3", MENTEE, "c-2"),
    ):
        directory.apply(registered(pid, role, cohort))
    directory.apply(withdrawn("e3", MENTEE))
    pair("r1", "m1", "e1")
    # Someone known only from an old match, before the directory existed.
    Match(
        organization_id=ORG,
        program_id=PROGRAM,
        match_id="old",
        mentor_id="m9",
        mentee_id="e9",
        status="declined",
        proposed_at=NOW,
    ).save()

    def to(**narrow: object) -> list[tuple[str, str]]:
        request = announcements.AnnouncementRequest(
            ORG, PROGRAM, uuid.uuid4().hex, "", "announcement", "Hi"
        )
        doc, _, _ = announcements.announce(replace(request, **narrow))  # type: ignore[arg-type]
        return announcements.recipients_of(doc)

    everyone = [("e1", "mentee"), ("e2", "mentee"), ("e9", "mentee"), ("m1", "mentor")]
    assert to() == [*everyone, ("m2", "mentor"), ("m9", "mentor")]
    assert to(cohort_id="c-1") == [("e1", "mentee"), ("e2", "mentee"), ("m1", "mentor")]
    assert to(role="mentor") == [("m1", "mentor"), ("m2", "mentor"), ("m9", "mentor")]
    assert to(unmatched=True, cohort_id="c-1") == [("e2", "mentee")]
    with pytest.raises(FailedPrecondition):
        to(cohort_id="c-9")
    with pytest.raises(FailedPrecondition, match="withdrew"):
        to(participant_id="e3")
    directory.apply(registered("x1", MENTEE))
    ProgramParticipant.objects(participant_id="x1").update_one(set__program_id="prog-2")
    with pytest.raises(FailedPrecondition, match="not a participant of this program"):
        to(participant_id="x1")
    assert to(participant_id="e2") == [("e2", "mentee")]


def test_the_same_announcement_id_with_another_audience_is_refused() -> None:
    directory.apply(registered("m1", MENTOR, "c-1"))
    request = announcements.AnnouncementRequest(ORG, PROGRAM, "a-1", "", "announcement", "Hi")
    announcements.announce(request)
    assert not announcements.announce(request)[1]
    with pytest.raises(AlreadyExists):
        announcements.announce(replace(request, cohort_id="c-1"))


# --- an expiry that overtakes its proposal -------------------------------------------------


def test_an_expiry_before_its_proposal_leaves_the_match_expired() -> None:
    expired = event(events_pb2.MatchExpired(match_id="m-1", mentor_id="a", mentee_id="b"))
    proposed = event(events_pb2.MatchProposed(match_id="m-1", mentor_id="a", mentee_id="b"))
    store.record_proposals([expired])
    store.record_proposals([proposed])
    match = store.get_match(ORG, "m-1")
    assert (match.status, match.mentor_id, match.program_id) == ("expired", "a", PROGRAM)
    # An expiry for a match already answered changes nothing.
    propose_and_accept("m-2", "c", "d")
    store.record_proposals(
        [event(events_pb2.MatchExpired(match_id="m-2", mentor_id="c", mentee_id="d"))]
    )
    assert store.get_match(ORG, "m-2").status == "accepted"


# --- matching: a withdrawal's unanswered proposals -----------------------------------------


def add(pid: str, role: str, capacity: int = 0) -> None:
    profile = common_pb2.Profile().SerializeToString()
    pool.add_member(ORG, PROGRAM, pid, role, pid.upper(), ["python"], capacity, profile, "", "", "")


def test_a_withdrawal_names_the_proposals_nobody_answered() -> None:
    add("m1", "mentor", capacity=2)
    add("e1", "mentee")
    add("e2", "mentee")
    assert planner.propose_continuously(ORG, PROGRAM) == 2
    answered = Proposal.objects.get(mentee_id="e2")
    unanswered = Proposal.objects.get(mentee_id="e1")
    pool.accept(ORG, answered.match_id)
    withdrawal = releases.withdraw(ORG, PROGRAM, "m1", "mentor")
    assert sorted(p.released_from for p in withdrawal.released) == ["accepted", "proposed"]
    (expired,) = withdrawal.committed.events
    assert (expired.match_expired.match_id, expired.match_expired.mentee_id) == (
        unanswered.match_id,
        "e1",
    )
    assert expired.envelope.event_id == expired_event(unanswered).envelope.event_id
    # Staged with the withdrawal, in the outbox.
    assert [e.key for e in OutboxEntry.objects()] == [f"{ORG}/{expired.envelope.event_id}"]
    # The same on a redelivery, which releases nothing new; and seen from the mentee's side.
    again = releases.withdraw(ORG, PROGRAM, "m1", "mentor")
    assert again.released == []
    assert [e.envelope.event_id for e in again.committed.events] == [expired.envelope.event_id]
    mentee_side = releases.withdraw(ORG, PROGRAM, "e1", "mentee")
    assert [e.envelope.event_id for e in mentee_side.committed.events] == [
        expired.envelope.event_id
    ]
    assert OutboxEntry.objects.count() == 1  # staged once


# --- client request ids --------------------------------------------------------------------


def test_a_retried_request_returns_the_first_result_and_a_reused_id_is_refused() -> None:
    r = propose_and_accept()
    first = store.ClientRequest("req-1", "digest-1")
    held = NOW - timedelta(days=1)
    logged, events = store.log_session(ORG, r.relationship_id, held, 30, "virtual", first)
    again, events_again = store.log_session(ORG, r.relationship_id, held, 30, "virtual", first)
    assert again.session_id == logged.session_id
    # The retry delivers the first call's event again, under the same id.
    assert [e.envelope.event_id for e in events_again] == [e.envelope.event_id for e in events]
    assert store.get_relationship(ORG, r.relationship_id).sessions == 1
    with pytest.raises(AlreadyExists, match="request_id"):
        store.log_session(
            ORG, r.relationship_id, held, 45, "virtual", replace(first, fingerprint="x")
        )
    with pytest.raises(AlreadyExists, match="request_id"):  # the same id for another RPC
        planning.schedule_session(
            ORG, r.relationship_id, "a", NOW + timedelta(days=1), 30, "virtual", [], first
        )
    plan = store.ClientRequest("req-2", "digest-2")
    one, _ = planning.schedule_session(ORG, r.relationship_id, "a", NOW, 30, "virtual", [], plan)
    two, _ = planning.schedule_session(ORG, r.relationship_id, "a", NOW, 30, "virtual", [], plan)
    assert one.session_id == two.session_id
    assert Session.objects(relationship_id=r.relationship_id).count() == 2
    # Without a request id every call is new.
    three, _ = planning.schedule_session(ORG, r.relationship_id, "a", NOW, 30, "virtual", [])
    assert three.session_id != one.session_id
    goal_request = store.ClientRequest("req-3", "digest-3")
    goal, created = goals.create_goal(
        ORG, r.relationship_id, "b", "Speak up", "", NOW, goal_request
    )
    same, created_again = goals.create_goal(
        ORG, r.relationship_id, "b", "Speak up", "", NOW, goal_request
    )
    assert same.goal_id == goal.goal_id
    assert [e.envelope.event_id for e in created_again] == [e.envelope.event_id for e in created]
    assert Goal.objects(goal_id=goal.goal_id).count() == 1


def test_a_logged_session_stored_but_not_counted_is_counted_by_the_retry() -> None:
    r = propose_and_accept()
    request = store.ClientRequest("req-9", "digest")
    session_id = idempotency.claim_request(ORG, "req-9", "LogSession", "digest")
    Session(  # what a crash between storing and counting leaves
        organization_id=ORG,
        program_id=PROGRAM,
        session_id=session_id,
        relationship_id=r.relationship_id,
        held_at=NOW,
        minutes=40,
        mode="virtual",
        counted=False,
    ).save()
    retried, _ = store.log_session(ORG, r.relationship_id, NOW, 40, "virtual", request)
    assert retried.session_id == session_id
    assert store.get_relationship(ORG, r.relationship_id).minutes == 40
    store.log_session(ORG, r.relationship_id, NOW, 40, "virtual", request)
    assert store.get_relationship(ORG, r.relationship_id).minutes == 40
