"""Matching's outbox on mongomock: what a change commits is published once it is stored, by
its writer or (when the writer failed) by the relay, under ids that never change; and a bulk
run that died halfway resumes and reports the whole run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import mongoengine
import pytest

from services.common import outbox
from services.common.api import events_pb2
from services.common.outbox import OutboxEntry
from services.matching import planner, pool, publication, releases, requests, runs
from services.matching.documents import MatchingRun, PoolMember, Proposal
from services.matching.publication import Committed, Publication
from tests.unit import memory_db

ORG = "org-1"
PROGRAM = "prog-1"


@pytest.fixture(autouse=True)
def database() -> Iterator[str]:
    yield memory_db.connect_fresh("matching", "test_matching_outbox")
    mongoengine.disconnect()


class Broker:
    """Stands in for the EventPublisher: keeps what it is given, or fails while `down`."""

    def __init__(self) -> None:
        self.sent: list[events_pb2.Event] = []
        self.down = False

    async def publish(self, events: Sequence[events_pb2.Event]) -> None:
        if self.down:
            raise ConnectionError("the broker is away")
        self.sent += events


def add(pid: str, role: str, capacity: int = 0) -> None:
    pool.add_member(ORG, PROGRAM, pid, role, pid.upper(), ["python"], capacity, b"", "", "", "")


def sent_ids(broker: Broker, kind: str) -> list[str]:
    return [e.envelope.event_id for e in broker.sent if e.WhichOneof("payload") == kind]


def test_a_change_whose_publication_failed_is_published_by_the_relay_under_its_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add("m1", "mentor", 1)
    add("m2", "mentor", 1)
    add("e1", "mentee")
    broker = Broker()
    relay = Publication(broker)  # type: ignore[arg-type]
    asked = requests.request_mentor(ORG, PROGRAM, "e1", ["m1", "m2"])
    assert asked is not None
    asyncio.run(relay.deliver_proposals([asked]))
    assert sent_ids(broker, "match_proposed") == [asked.event_id]
    broker.sent.clear()
    committed = releases.expire(ORG, asked.match_id)
    assert [p.mentor_id for p in committed.proposals] == ["m2"]  # the next choice

    broker.down = True
    with pytest.raises(ConnectionError):
        asyncio.run(relay.deliver(committed))
    assert broker.sent == []
    broker.down = False
    asyncio.run(relay.relay_once())
    assert broker.sent == []  # too fresh: its writer may still be publishing it
    monkeypatch.setattr(outbox, "SETTLE_SECONDS", 0.0)
    monkeypatch.setattr(publication, "PROPOSAL_SETTLE_SECONDS", 0.0)
    asyncio.run(relay.relay_once())
    expired_id = committed.events[0].envelope.event_id
    assert sent_ids(broker, "match_expired") == [expired_id]
    assert sent_ids(broker, "match_proposed") == [committed.proposals[0].event_id]
    # Sent once: the next round finds nothing left.
    asyncio.run(relay.relay_once())
    assert len(broker.sent) == 2
    assert OutboxEntry.objects.get().sent
    assert not Proposal.objects(published=False)


def test_a_worker_starting_publishes_the_proposals_it_stored_before_it_died() -> None:
    add("m1", "mentor", 2)
    add("e1", "mentee")
    add("e2", "mentee")
    assert planner.propose_continuously(ORG, PROGRAM) == 2  # stored, never published
    broker = Broker()
    asyncio.run(Publication(broker).relay_all())  # type: ignore[arg-type]
    assert sorted(sent_ids(broker, "match_proposed")) == sorted(
        p.event_id for p in Proposal.objects()
    )
    assert not Proposal.objects(published=False)


def test_a_run_request_is_queued_with_its_event_and_its_result_recorded_once() -> None:
    request = events_pb2.MatchingRunRequested(run_id="run-1")
    queued, requested = runs.queue(ORG, PROGRAM, request)
    again, requested_again = runs.queue(ORG, PROGRAM, request)
    assert queued.status == again.status == "queued"
    assert requested.envelope.event_id == requested_again.envelope.event_id
    assert OutboxEntry.objects.count() == 1

    first = events_pb2.MatchingRunCompleted(run_id="run-1", matched=3)
    completed = runs.finish(ORG, PROGRAM, first)
    # The run retried after its worker died: the first attempt's result stands, same id.
    retried = runs.finish(ORG, PROGRAM, events_pb2.MatchingRunCompleted(run_id="run-1"))
    assert retried.envelope.event_id == completed.envelope.event_id
    assert retried.matching_run_completed == first
    assert MatchingRun.objects.get(run_id="run-1").status == "completed"
    assert OutboxEntry.objects.count() == 2


def test_a_run_that_died_halfway_resumes_and_reports_the_whole_run() -> None:
    for n in range(3):
        add(f"m{n}", "mentor", 1)
        add(f"e{n}", "mentee")
    request = events_pb2.MatchingRunRequested(
        run_id="run-1", algorithm=events_pb2.MATCHING_ALGORITHM_OPTIMAL
    )
    plan = planner.plan_run(ORG, PROGRAM, request)
    assert len(plan.pairs) == 3
    # The first chunk stored, then the worker died: the request comes again.
    pool.propose(ORG, PROGRAM, plan.keys, plan.pairs[:1], request.run_id)

    resumed = planner.plan_run(ORG, PROGRAM, request)
    assert len(resumed.pairs) == 2  # the rest
    stored = planner.store(ORG, PROGRAM, resumed, request.run_id)
    result = planner.report(resumed, request, stored)
    assert (result.mentees_considered, result.matched, len(result.unmatched)) == (3, 3, 0)
    assert result.total_score == pytest.approx(sum(p.score for p in Proposal.objects()))
    assert {p.run_id for p in Proposal.objects()} == {"run-1"}
    held = {m.participant_id: m.free_slots for m in PoolMember.objects(role="mentor")}
    assert held == {"m0": 0, "m1": 0, "m2": 0}


def test_a_withdrawal_asks_the_next_choice_in_its_transaction() -> None:
    add("m1", "mentor", 1)
    add("m2", "mentor", 1)
    add("e1", "mentee")
    asked = requests.request_mentor(ORG, PROGRAM, "e1", ["m1", "m2"])
    assert asked is not None and asked.mentor_id == "m1"
    withdrawal = releases.withdraw(ORG, PROGRAM, "m1", "mentor")
    assert [p.match_id for p in withdrawal.released] == [asked.match_id]
    (moved_on,) = withdrawal.committed.proposals
    assert (moved_on.mentor_id, moved_on.mentee_id, moved_on.next_choices) == ("m2", "e1", [])
    assert [e.match_expired.match_id for e in withdrawal.committed.events] == [asked.match_id]
    # A redelivery releases nothing and proposes nothing more.
    again = releases.withdraw(ORG, PROGRAM, "m1", "mentor")
    assert again.released == [] and again.committed.proposals == []
    assert Proposal.objects(status="proposed").count() == 1


def test_nothing_to_publish_when_an_ending_finds_the_proposal_ended_already() -> None:
    add("m1", "mentor", 1)
    add("e1", "mentee")
    assert planner.propose_continuously(ORG, PROGRAM) == 1
    (p,) = Proposal.objects()
    assert releases.decline(ORG, p.match_id) == Committed()  # not a request: nothing follows
    assert releases.decline(ORG, p.match_id) == Committed()
    assert releases.expire(ORG, p.match_id) == Committed()
    assert releases.expire(ORG, "no-such-match") == Committed()
