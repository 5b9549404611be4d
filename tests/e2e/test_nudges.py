"""Nudges and announcements end to end: a program's nudge policy in seconds makes reminders due
fast (the stack's timers run every half second), and every notification-requested is read back
from the broker by the program's key."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import grpc
import pytest

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import common_pb2, engagement_pb2, events_pb2
from services.common.events import partition_key
from tests.e2e.engine import MENTEE, MENTOR, Program
from tests.e2e.support import eventually, read_topic

E = engagement_pb2
DAY = 86_400
TOPIC = "notification-requested"


def notifications(
    stack: Stack, program: Program, reason: str = ""
) -> list[events_pb2.NotificationRequested]:
    key = partition_key(program.org, program.pid)
    found = []
    for record in read_topic(stack.ports.bootstrap, TOPIC, settle=5):
        if record.key != key:
            continue
        event = events_pb2.Event.FromString(record.value)
        assert event.envelope.producer == "engagement"
        assert event.envelope.event_id == event.notification_requested.notification_id
        if not reason or event.notification_requested.reason == reason:
            found.append(event.notification_requested)
    return found


def set_policy(program: Program, **seconds: int) -> E.NudgePolicy:
    return program.clients.engagement.SetNudgePolicy(
        E.SetNudgePolicyRequest(
            policy=E.NudgePolicy(organization_id=program.org, program_id=program.pid, **seconds)
        )
    )


def proposed(program: Program, mentee: str) -> str:
    proposal = eventually("a proposal", lambda: next(iter(program.proposals(mentee)), None))
    eventually("engagement to see the proposal", lambda: program.known(proposal.match_id))
    return proposal.match_id


def test_policy_defaults_and_validation(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    policy = clients.engagement.GetNudgePolicy(
        E.GetNudgePolicyRequest(organization_id=program.org, program_id=program.pid)
    )
    assert policy.no_session_seconds == 21 * DAY
    assert policy.unanswered_proposal_seconds == 7 * DAY
    assert policy.check_in_grace_seconds == 7 * DAY
    assert policy.ending_soon_seconds == 14 * DAY

    stored = set_policy(program, no_session_seconds=1)
    assert stored.no_session_seconds == 1
    assert stored.ending_soon_seconds == 14 * DAY

    with pytest.raises(grpc.RpcError) as excinfo:
        set_policy(program, unanswered_proposal_seconds=367 * DAY)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert excinfo.value.details().startswith("policy.unanswered_proposal_seconds:")
    with pytest.raises(grpc.RpcError) as excinfo:
        clients.engagement.SetNudgePolicy(E.SetNudgePolicyRequest())
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert excinfo.value.details().startswith("policy.organization_id:")


def test_a_silent_pair_is_nudged_once_each_and_an_ending_relationship_too(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    # Due one second after the start; "ending soon" covers the whole six-month term.
    set_policy(program, no_session_seconds=1, ending_soon_seconds=200 * DAY)
    mentor = program.register("Mia", MENTOR, ["coaching"], capacity=1)
    mentee = program.register("Leo", MENTEE, ["coaching"])
    match_id = proposed(program, mentee)
    program.respond(match_id, mentor, accept=True)
    relationship_id = program.respond(match_id, mentee, accept=True).relationship_id
    assert relationship_id

    def both(reason: str) -> list[events_pb2.NotificationRequested] | None:
        found = notifications(stack, program, reason)
        return found if len({n.recipient_id for n in found}) == 2 else None

    silent = eventually("a no-session nudge to both members", lambda: both("no-session"))
    eventually("an ending-soon nudge to both members", lambda: both("ending-soon"))
    by_recipient = {n.recipient_id: n for n in silent}
    assert set(by_recipient) == {mentor, mentee}
    assert by_recipient[mentor].recipient_role == common_pb2.ROLE_MENTOR
    assert by_recipient[mentee].recipient_role == common_pb2.ROLE_MENTEE
    assert by_recipient[mentor].data["other_participant_id"] == mentee
    for n in silent:
        assert n.relationship_id == relationship_id
        assert n.template == "no-session"

    # Several more rounds go by: nothing is sent twice.
    time.sleep(2.5)
    counts = Counter((n.recipient_id, n.reason) for n in notifications(stack, program))
    assert counts == {
        (mentor, "no-session"): 1,
        (mentee, "no-session"): 1,
        (mentor, "ending-soon"): 1,
        (mentee, "ending-soon"): 1,
    }


def test_an_unanswered_proposal_nudges_the_silent_side_only(stack: Stack, clients: Clients) -> None:
    program = Program(clients, stack)
    set_policy(program, unanswered_proposal_seconds=4)
    mentor = program.register("Mo", MENTOR, ["sales"], capacity=1)
    mentee = program.register("Ana", MENTEE, ["sales"])
    match_id = proposed(program, mentee)
    program.respond(match_id, mentor, accept=True)

    found = eventually(
        "a nudge to the mentee",
        lambda: notifications(stack, program, "proposal-unanswered") or None,
    )
    assert [(n.recipient_id, n.match_id) for n in found] == [(mentee, match_id)]
    assert found[0].recipient_role == common_pb2.ROLE_MENTEE
    time.sleep(2.5)
    again = notifications(stack, program, "proposal-unanswered")
    assert [n.recipient_id for n in again] == [mentee]


def test_an_announcement_fans_out_to_the_programs_participants_once(
    stack: Stack, clients: Clients
) -> None:
    program = Program(clients, stack)
    people = {
        program.register("Ann", MENTOR, ["design"], capacity=1),
        program.register("Bob", MENTOR, ["design"], capacity=1),
        program.register("Cy", MENTEE, ["design"]),
        program.register("Di", MENTEE, ["design"]),
    }

    def known() -> set[str] | None:
        page = clients.engagement.ListMatches(
            E.ListMatchesRequest(organization_id=program.org, program_id=program.pid)
        )
        ids = {p for m in page.matches for p in (m.mentor_id, m.mentee_id)}
        return ids if ids == people else None

    eventually("engagement to know all four from their matches", known)
    request = E.AnnounceRequest(
        organization_id=program.org,
        program_id=program.pid,
        announcement_id=f"kickoff-{uuid.uuid4().hex[:6]}",
        message="Kick-off call on Friday at 10:00",
    )
    sent = clients.engagement.Announce(request)
    assert sent.created
    assert set(sent.recipient_ids) == people and len(sent.recipient_ids) == 4

    def four() -> list[events_pb2.NotificationRequested] | None:
        found = notifications(stack, program, "announcement")
        return found if len(found) >= 4 else None

    found = eventually("one notification per participant", four)
    assert {n.recipient_id for n in found} == people
    for n in found:
        assert n.template == "announcement"
        assert n.data["message"] == "Kick-off call on Friday at 10:00"
        assert n.announcement_id == request.announcement_id

    # A repeat sends nothing new: the same recipients and the same notification ids.
    repeat = clients.engagement.Announce(request)
    assert not repeat.created
    assert list(repeat.recipient_ids) == list(sent.recipient_ids)
    after = notifications(stack, program, "announcement")
    assert {n.notification_id for n in after} == {n.notification_id for n in found}
    assert len({n.notification_id for n in after}) == 4

    # The same id for something else is refused; one participant can be named.
    with pytest.raises(grpc.RpcError) as excinfo:
        clients.engagement.Announce(
            E.AnnounceRequest(
                organization_id=program.org,
                program_id=program.pid,
                announcement_id=request.announcement_id,
                message="Something else",
            )
        )
    assert excinfo.value.code() == grpc.StatusCode.ALREADY_EXISTS
    target = sorted(people)[0]
    single = clients.engagement.Announce(
        E.AnnounceRequest(
            organization_id=program.org,
            program_id=program.pid,
            announcement_id="just-one",
            participant_id=target,
            template="reminder",
            message="Please update your profile",
        )
    )
    assert list(single.recipient_ids) == [target]
    one = eventually(
        "the single announcement",
        lambda: (
            [n for n in notifications(stack, program) if n.announcement_id == "just-one"] or None
        ),
    )
    assert [(n.recipient_id, n.template) for n in one] == [(target, "reminder")]

    # Nobody is in cohort c-1: nothing to send.
    with pytest.raises(grpc.RpcError) as excinfo:
        clients.engagement.Announce(
            E.AnnounceRequest(
                organization_id=program.org,
                program_id=program.pid,
                announcement_id="by-cohort",
                cohort_id="c-1",
                message="Hello",
            )
        )
    assert excinfo.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert excinfo.value.details().startswith("program_id:")
