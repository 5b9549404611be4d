"""A mentor's free slots are always their capacity minus the live proposals holding them, and a
mentee is matched exactly while a proposal holds them, whatever races: the engine reserving
pairs, mentees requesting mentors, declines, expiries (each asking the next choice), endings,
completions, withdrawals and capacity changes, from many threads at once, on the MongoDB-wire
server the services run on. And a change that fails halfway leaves nothing behind: a slot is
never taken with no proposal holding it.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mentoring.stack import Stack
from services.common import outbox
from services.common.events import stable_event_id
from services.common.outbox import OutboxEntry
from services.common.storage import Transaction
from services.matching import pool, releases, requests
from services.matching.documents import PoolMember, Proposal
from services.matching.domain.model import Evaluation
from services.matching.publication import Committed
from tests.engines.conftest import connect_fresh

TRIALS = 100
PROGRAM = "program-1"
MENTORS = ("mentor-a", "mentor-b", "mentor-c")
EVALUATION = Evaluation(score=0.5, breakdown=(), violations=())


@pytest.fixture(scope="module")
def database(mongodb: Stack) -> None:
    connect_fresh(mongodb, "matching")


def _register(org: str, participant_id: str, role: str, capacity: int = 0) -> None:
    pool.add_member(
        org, PROGRAM, participant_id, role, participant_id, ["python"], capacity, b"", "", "", ""
    )


def _keys(org: str) -> dict[str, Any]:
    return {m.participant_id: m.pk for m in PoolMember.objects(organization_id=org)}


def _propose(org: str, pairs: list[tuple[str, str]]) -> None:
    pool.propose(org, PROGRAM, _keys(org), [pool.Pair(m, e, EVALUATION) for m, e in pairs])


def _live(org: str) -> list[Proposal]:
    return list(Proposal.objects(organization_id=org, status__in=pool.LIVE))


def _any_live(org: str, pick: int) -> str:
    """One of the live proposals as the thread finds them (`pick` chooses which)."""
    live = sorted(p.match_id for p in _live(org))
    return live[pick % len(live)] if live else "none"


def _trial(rng: random.Random) -> tuple[str, list[str]]:
    """One program's worth of racing changes; returns the org and its mentees."""
    org = f"org-{uuid.uuid4().hex[:12]}"
    for mentor in MENTORS:
        _register(org, mentor, "mentor", rng.randint(1, 3))
    mentees = [f"mentee-{i}" for i in range(rng.randint(4, 7))]
    for mentee in mentees:
        _register(org, mentee, "mentee")
    # Some proposals to race over: the engine's, and mentee requests with choices left.
    _propose(org, [(rng.choice(MENTORS), mentees[0]), (rng.choice(MENTORS), mentees[1])])
    for mentee in mentees[2:4]:
        requests.request_mentor(org, PROGRAM, mentee, rng.sample(MENTORS, 3))
    live = [p.match_id for p in _live(org)]

    work: list[Callable[[], object]] = []
    for _ in range(3):  # the engine, planning from a stale snapshot
        pairs = [(rng.choice(MENTORS), rng.choice(mentees)) for _ in range(rng.randint(1, 4))]
        work.append(lambda pairs=pairs: _propose(org, pairs))
    for mentee in rng.sample(mentees, 2):
        choices = rng.sample(MENTORS, 2)
        work.append(lambda m=mentee, c=choices: requests.request_mentor(org, PROGRAM, m, c))
    answers = [releases.decline, releases.expire, pool.accept, pool.complete]
    for match_id in live:
        answer = rng.choice(answers)
        work.append(lambda a=answer, m=match_id: a(org, m))
        reason = rng.choice(["", "not a good fit"])
        work.append(lambda m=match_id, r=reason: releases.end(org, m, exclude=r))
    picks = [rng.randrange(100) for _ in range(2)]
    work.append(lambda: releases.decline(org, _any_live(org, picks[0])))
    work.append(lambda: releases.expire(org, _any_live(org, picks[1])))
    resized, capacity = rng.choice(MENTORS), rng.randint(1, 4)
    work.append(lambda: pool.change_capacity(org, resized, capacity))
    if rng.random() < 0.5:
        who, role = rng.choice([(rng.choice(MENTORS), "mentor"), (rng.choice(mentees), "mentee")])
        work.append(lambda: releases.withdraw(org, PROGRAM, who, role))
    rng.shuffle(work)
    start = threading.Barrier(len(work))

    def run(step: Callable[[], object]) -> None:
        start.wait()
        step()

    with ThreadPoolExecutor(max_workers=len(work)) as threads:
        for future in [threads.submit(run, step) for step in work]:
            future.result()
    return org, mentees


def _check(org: str, mentees: list[str]) -> None:
    proposals = list(Proposal.objects(organization_id=org))
    live = [p for p in proposals if p.status in pool.LIVE]
    members = {m.participant_id: m for m in PoolMember.objects(organization_id=org)}
    held = Counter(p.mentor_id for p in live)
    for m in members.values():
        if m.role == "mentor":
            held_here = held[m.participant_id]
            free = f"{m.free_slots} free of {m.capacity}"
            assert m.free_slots == m.capacity - held_here, f"{org}: {m.participant_id} {free}"
    per_mentee = Counter(p.mentee_id for p in live)
    # A mentee whose relationship completed stays matched: they are done.
    completed = {p.mentee_id for p in proposals if p.status == "ended" and not p.released_from}
    for mentee in mentees:
        assert per_mentee[mentee] <= 1, f"{org}: {mentee} holds {per_mentee[mentee]} proposals"
        expected = per_mentee[mentee] == 1 or mentee in completed
        assert members[mentee].matched is expected, f"{org}: {mentee} matched is wrong"
    for p in live:
        assert not members[p.mentor_id].withdrawn and not members[p.mentee_id].withdrawn, org
    # Each expiry staged its match-expired in the transaction that expired the proposal.
    staged = {e.key for e in OutboxEntry.objects(key__startswith=f"{org}/")}
    for p in proposals:
        if p.status == "expired":
            assert f"{org}/{stable_event_id('match-expired', org, p.match_id)}" in staged


def test_racing_reservations_and_releases_keep_every_slot_count_right(database: None) -> None:
    rng = random.Random(20261207)
    proposed = released = 0
    for _ in range(TRIALS):
        org, mentees = _trial(rng)
        _check(org, mentees)
        proposed += Proposal.objects(organization_id=org).count()
        released += Proposal.objects(organization_id=org, released_from__ne="").count()
    # The races were real: proposals were made and ended (and the counts above held).
    assert proposed >= 4 * TRIALS
    assert released >= TRIALS


class Crash(Exception):
    pass


def _crash(*_: object, **__: object) -> None:
    raise Crash


def test_a_proposal_that_fails_halfway_takes_no_slot_and_no_mentee(
    database: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = f"org-{uuid.uuid4().hex[:12]}"
    _register(org, "mentor-a", "mentor", 2)
    _register(org, "mentee-0", "mentee")
    _register(org, "mentee-1", "mentee")
    # Both pairs reserved, then the process dies before the proposals are stored.
    monkeypatch.setattr(Transaction, "insert_stored", _crash)
    with pytest.raises(Crash):
        _propose(org, [("mentor-a", "mentee-0"), ("mentor-a", "mentee-1")])
    monkeypatch.undo()
    members = {m.participant_id: m for m in PoolMember.objects(organization_id=org)}
    assert members["mentor-a"].free_slots == 2
    assert not members["mentee-0"].matched and not members["mentee-1"].matched
    assert Proposal.objects(organization_id=org).count() == 0
    # A retry stores them.
    _propose(org, [("mentor-a", "mentee-0"), ("mentor-a", "mentee-1")])
    _check(org, ["mentee-0", "mentee-1"])
    assert PoolMember.objects.get(organization_id=org, participant_id="mentor-a").free_slots == 0


def test_an_expiry_that_fails_halfway_changes_nothing_and_a_retry_completes_it(
    database: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = f"org-{uuid.uuid4().hex[:12]}"
    _register(org, "mentor-a", "mentor", 1)
    _register(org, "mentor-b", "mentor", 1)
    _register(org, "mentee-0", "mentee")
    asked = requests.request_mentor(org, PROGRAM, "mentee-0", ["mentor-a", "mentor-b"])
    assert asked is not None and asked.mentor_id == "mentor-a"
    # Released, then the process dies staging match-expired: nothing of it stays.
    monkeypatch.setattr(outbox, "stage", _crash)
    with pytest.raises(Crash):
        releases.expire(org, asked.match_id)
    monkeypatch.undo()
    assert Proposal.objects.get(organization_id=org, match_id=asked.match_id).status == "proposed"
    assert [p.mentor_id for p in _live(org)] == ["mentor-a"]
    _check(org, ["mentee-0"])
    # The expiry task's next round completes it: expired, staged, and the next choice asked.
    committed = releases.expire(org, asked.match_id)
    assert [e.match_expired.match_id for e in committed.events] == [asked.match_id]
    assert [(p.mentor_id, p.mentee_id) for p in committed.proposals] == [("mentor-b", "mentee-0")]
    assert [p.mentor_id for p in _live(org)] == ["mentor-b"]
    _check(org, ["mentee-0"])
    # A second run finds it expired and changes nothing.
    assert releases.expire(org, asked.match_id) == Committed()
