"""A mentor never holds more ongoing relationships than their capacity and a mentee never two,
whatever races: accepts of many proposals at once, expiries, re-proposals of the same mentee to
another mentor, and endings that free a seat while others accept. Engagement's store, called
from many threads at once, on the MongoDB-wire server the services run on; hundreds of trials.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from mentoring.stack import Stack
from services.common import clock
from services.common.api import common_pb2, events_pb2
from services.common.errors import FailedPrecondition
from services.common.events import new_event
from services.common.outbox import OutboxEntry
from services.engagement import domain, store
from services.engagement.documents import Match, ProgramParticipant, Relationship
from tests.engines.conftest import connect_fresh

TRIALS = 200
PROGRAM = "program-1"


@pytest.fixture(scope="module")
def database(mongodb: Stack) -> None:
    connect_fresh(mongodb, "engagement")


def _register(org: str, participant_id: str, role: str, capacity: int = 0) -> None:
    ProgramParticipant(
        organization_id=org,
        program_id=PROGRAM,
        participant_id=participant_id,
        role=role,
        capacity=capacity,
        updated_at=clock.now(),
    ).save()


def _propose(org: str, match_id: str, mentor_id: str, mentee_id: str) -> None:
    # The mentee asked for this mentor: their side has accepted already, so the mentor's
    # accept starts the relationship.
    store.record_proposals(
        [
            new_event(
                producer="matching",
                organization_id=org,
                program_id=PROGRAM,
                payload=events_pb2.MatchProposed(
                    match_id=match_id,
                    mentor_id=mentor_id,
                    mentee_id=mentee_id,
                    origin=common_pb2.MATCH_ORIGIN_MENTEE_REQUEST,
                ),
            )
        ]
    )


def _expire(org: str, match_id: str, mentor_id: str, mentee_id: str) -> None:
    store.record_proposals(
        [
            new_event(
                producer="matching",
                organization_id=org,
                program_id=PROGRAM,
                payload=events_pb2.MatchExpired(
                    match_id=match_id, mentor_id=mentor_id, mentee_id=mentee_id
                ),
            )
        ]
    )


def _accept(org: str, match_id: str, participant_id: str) -> None:
    try:
        store.respond(org, match_id, participant_id, domain.ACCEPT)
    except FailedPrecondition:
        pass  # no seat left: refused whole


def _end_any(org: str, mentor_id: str) -> None:
    for relationship in Relationship.objects(
        organization_id=org, mentor_id=mentor_id, status=domain.ACTIVE
    ):
        try:
            store.end_relationship(
                org, relationship.relationship_id, mentor_id, True, "done", False
            )
        except FailedPrecondition:
            pass
        return


def _trial(rng: random.Random) -> tuple[str, dict[str, int]]:
    """One program's worth of racing answers; returns the org and each mentor's capacity."""
    org = f"org-{uuid.uuid4().hex[:12]}"
    capacity = {"mentor-a": rng.randint(1, 3), "mentor-b": 1}
    for mentor, seats in capacity.items():
        _register(org, mentor, domain.MENTOR, seats)
    mentees = [f"mentee-{i}" for i in range(rng.randint(3, 6))]
    for mentee in mentees:
        _register(org, mentee, domain.MENTEE)
    work: list[Callable[[], None]] = []
    for i, mentee in enumerate(mentees):
        match_id = f"a-{i}"
        _propose(org, match_id, "mentor-a", mentee)
        work.append(lambda m=match_id: _accept(org, m, "mentor-a"))
        if rng.random() < 0.4:
            work.append(lambda m=match_id, e=mentee: _expire(org, m, "mentor-a", e))
    # The first mentee re-proposed to another mentor, both answered while mentor-a accepts.
    _propose(org, "b-0", "mentor-b", mentees[0])
    work.append(lambda: _accept(org, "b-0", "mentor-b"))
    if rng.random() < 0.5:
        work.append(lambda: _end_any(org, "mentor-a"))
    rng.shuffle(work)
    start = threading.Barrier(len(work))

    def run(step: Callable[[], None]) -> None:
        start.wait()
        step()

    with ThreadPoolExecutor(max_workers=len(work)) as pool:
        for future in [pool.submit(run, step) for step in work]:
            future.result()
    return org, capacity


def _check(org: str, capacity: dict[str, int]) -> None:
    relationships = list(Relationship.objects(organization_id=org))
    ongoing = [r for r in relationships if r.status in domain.ONGOING]
    per_mentor = Counter(r.mentor_id for r in ongoing)
    per_mentee = Counter(r.mentee_id for r in ongoing)
    for mentor, held in per_mentor.items():
        assert held <= capacity[mentor], f"{org}: {mentor} holds {held} of {capacity[mentor]}"
    assert all(held == 1 for held in per_mentee.values()), f"{org}: {per_mentee}"
    matches = {m.match_id: m for m in Match.objects(organization_id=org)}
    # A relationship exactly for each accepted match, none for an expired one.
    assert {r.match_id for r in relationships} == {
        m.match_id for m in matches.values() if m.status == domain.ACCEPTED
    }
    # The seats each participant's entry lists are the ongoing relationships they are in.
    for entry in ProgramParticipant.objects(organization_id=org):
        side = "mentor_id" if entry.role == domain.MENTOR else "mentee_id"
        actual = {r.relationship_id for r in ongoing if getattr(r, side) == entry.participant_id}
        assert set(entry.relationships) == actual, f"{org}: {entry.participant_id}"
    # Every relationship's start was staged in the same transaction as the relationship.
    staged = {
        events_pb2.Event.FromString(e.value).relationship_started.relationship_id
        for e in OutboxEntry.objects(key__startswith=f"{org}/")
    }
    assert {r.relationship_id for r in relationships} <= staged


def test_racing_accepts_expiries_re_proposals_and_endings_never_break_the_seat_limits(
    database: None,
) -> None:
    rng = random.Random(20261207)
    started = 0
    for _ in range(TRIALS):
        org, capacity = _trial(rng)
        _check(org, capacity)
        started += Relationship.objects(organization_id=org).count()
    # The races were real: relationships did start (and the limits above held for them).
    assert started >= TRIALS
