"""The live index (services/matching/live.py) and incremental continuous planning
(arrivals.py), on mongomock: whatever sequence of registrations, updates, withdrawals, slot
changes, exclusions and reporting-line changes, recommendations equal those of a fresh full
build over the store, and continuous proposals keep the rules and the capacities."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import mongoengine
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common import storage
from services.common.api import common_pb2, matching_pb2
from services.matching import configuration, live, planner, pool, releases, requests
from services.matching.documents import PoolMember, Proposal
from services.matching.domain.candidates import CandidateIndex
from services.matching.domain.criteria import evaluate
from services.matching.domain.model import Evaluation
from tests.unit import memory_db

ORG, PROGRAM = "org-1", "prog-1"
MENTORS = [f"m{n}" for n in range(6)]
MENTEES = [f"e{n}" for n in range(4)]
SKILLS = ["python", "django", "go", "sql", "statistics"]
DEPARTMENTS = ["", "data", "web"]
HR = ["", "h1", "h2", "h3"]


@pytest.fixture(autouse=True)
def database() -> Iterator[None]:
    memory_db.connect_fresh("matching", "test_live")
    yield
    mongoengine.disconnect()


def fresh() -> None:
    mongoengine.disconnect()
    memory_db.connect_fresh("matching", "test_live")


def configure(peers: bool = False) -> None:
    criteria = [
        matching_pb2.Criterion(kind=matching_pb2.CRITERION_KIND_SKILLS, weight=5),
        matching_pb2.Criterion(kind=matching_pb2.CRITERION_KIND_DEPARTMENT, weight=1),
        matching_pb2.Criterion(kind=matching_pb2.CRITERION_KIND_SENIORITY, weight=2),
    ]
    configuration.save_config(
        matching_pb2.MatchingConfig(
            organization_id=ORG,
            program_id=PROGRAM,
            criteria=criteria,
            reporting_line=(
                matching_pb2.REPORTING_LINE_RULE_MANAGER_CHAIN_AND_PEERS
                if peers
                else matching_pb2.REPORTING_LINE_RULE_MANAGER_CHAIN
            ),
            mode=matching_pb2.MATCHING_MODE_CONTINUOUS,
            candidates_per_mentee=3,
        )
    )
    configuration.save_taxonomy(
        matching_pb2.SkillTaxonomy(
            organization_id=ORG,
            skills=[
                matching_pb2.SkillNode(name="python"),
                matching_pb2.SkillNode(name="django", parent="python"),
                matching_pb2.SkillNode(name="go"),
                matching_pb2.SkillNode(name="sql"),
                matching_pb2.SkillNode(name="statistics"),
            ],
        )
    )


def profile(department: str, hr: str, manager: str, level: int) -> bytes:
    return common_pb2.Profile(
        department=department, hr_person_id=hr, manager_id=manager, job_level=level
    ).SerializeToString()


def reference(mentee_id: str, limit: int) -> list[tuple[str, str, float, int, Evaluation]]:
    """RecommendMentors as it was: the whole pool loaded and encoded for the call."""
    settings_ = configuration.load_config(ORG, PROGRAM)
    config = configuration.engine_config(settings_)
    taxonomy = configuration.load_taxonomy(ORG)
    p = pool.load_pool(ORG, PROGRAM, taxonomy)
    mentee = next(m for m in p.waiting_mentees if m.participant_id == mentee_id)
    free = [m for m in p.mentors if m.free_slots > 0]
    by_id = {m.participant_id: m for m in free}
    index = CandidateIndex(free, config, taxonomy, p.constraints)
    top = planner.ranked(index, mentee, limit)
    return [
        (
            mentor_id,
            p.names.get(mentor_id, ""),
            score,
            by_id[mentor_id].free_slots,
            evaluate(by_id[mentor_id], mentee, config, taxonomy, p.constraints),
        )
        for mentor_id, score in top
    ]


def recommended(mentee_id: str, limit: int) -> list[tuple[str, str, float, int, Evaluation]]:
    found = requests.recommend(ORG, PROGRAM, mentee_id, limit)
    return [
        (r.mentor.participant_id, r.name, r.evaluation.score, r.mentor.free_slots, r.evaluation)
        for r in found
    ]


def waiting_mentees() -> list[str]:
    return sorted(
        m.participant_id
        for m in PoolMember.objects(
            organization_id=ORG, role="mentee", matched=False, withdrawn__ne=True
        )
    )


def check_all(limit: int) -> None:
    for mentee_id in waiting_mentees():
        want = reference(mentee_id, limit)
        got = recommended(mentee_id, limit)
        # Same mentors, order, names, free slots and explanations; scores bit for bit.
        assert [w[:4] for w in want] == [g[:4] for g in got]
        assert [w[4].breakdown for w in want] == [g[4].breakdown for g in got]


person_args = st.tuples(
    st.lists(st.sampled_from(SKILLS), min_size=1, max_size=3, unique=True),
    st.sampled_from(DEPARTMENTS),
    st.sampled_from(HR),
    st.sampled_from(HR),
    st.integers(0, 4),
)

operation = st.one_of(
    st.tuples(st.just("mentor"), st.sampled_from(MENTORS), person_args, st.integers(1, 3)),
    st.tuples(st.just("mentor"), st.sampled_from(MENTORS), person_args, st.integers(1, 3)),
    st.tuples(st.just("mentee"), st.sampled_from(MENTEES), person_args),
    st.tuples(st.just("update"), st.sampled_from(MENTORS), person_args, st.integers(1, 3)),
    st.tuples(st.just("withdraw"), st.sampled_from(MENTORS + MENTEES)),
    st.tuples(st.just("take"), st.sampled_from(MENTORS), st.sampled_from(MENTEES)),
    st.tuples(st.just("decline"), st.integers(0, 5)),
    st.tuples(st.just("complete"), st.integers(0, 5)),
    st.tuples(st.just("exclude"), st.sampled_from(MENTORS), st.sampled_from(MENTEES)),
    st.tuples(st.just("line"), st.sampled_from(HR[1:]), st.sampled_from(HR[1:])),
    st.tuples(st.just("compact")),
)


def apply(op: tuple) -> None:  # type: ignore[type-arg]
    kind = op[0]
    if kind in ("mentor", "mentee", "update"):
        pid = op[1]
        skills, department, hr, manager, level = op[2]
        capacity = op[3] if kind != "mentee" else 0
        role = "mentee" if kind == "mentee" else "mentor"
        person = pool.Registration(
            pid,
            role,
            pid.upper() + str(level),
            skills,
            capacity,
            profile(department, hr, manager, level),
            hr,
            manager,
            "",
        )
        existing = pool.get_member(ORG, pid)
        if kind == "update":
            if existing is not None and existing.role == "mentor":
                pool.update_member(ORG, PROGRAM, person)
        elif existing is None or existing.role == role:
            pool.add_members(ORG, PROGRAM, [person])
    elif kind == "withdraw":
        member = pool.get_member(ORG, op[1])
        if member is not None:
            releases.withdraw(ORG, PROGRAM, op[1], member.role)
    elif kind == "take":
        mentor, mentee = pool.get_member(ORG, op[1]), pool.get_member(ORG, op[2])
        if mentor is None or mentee is None or mentor.role != "mentor" or mentee.role != "mentee":
            return
        keys = {op[1]: mentor.pk, op[2]: mentee.pk}
        verdict = Evaluation(0.5, (), ())
        pool.propose(ORG, PROGRAM, keys, [pool.Pair(op[1], op[2], verdict)])
    elif kind in ("decline", "complete"):
        live_ones = list(Proposal.objects(status__in=pool.LIVE).order_by("match_id"))
        if live_ones:
            chosen = live_ones[op[1] % len(live_ones)]
            if kind == "decline":
                releases.decline(ORG, chosen.match_id)
            else:
                pool.complete(ORG, chosen.match_id)
    elif kind == "exclude":
        storage.atomic(lambda tx: pool.add_exclusion(tx, ORG, PROGRAM, op[1], op[2], "no"))
    elif kind == "line":
        pool.set_manager(ORG, op[1], op[2])
    else:
        for _, program in list(live._programs.values()):
            with program.lock:
                program.compact()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    people=st.lists(
        st.one_of(
            st.tuples(st.just("mentor"), st.sampled_from(MENTORS), person_args, st.integers(1, 3)),
            st.tuples(st.just("mentee"), st.sampled_from(MENTEES), person_args),
        ),
        min_size=4,
        max_size=10,
    ),
    ops=st.lists(operation, min_size=4, max_size=30),
    peers=st.booleans(),
    limit=st.integers(1, 4),
    compact_min=st.sampled_from([2, 10_000]),
)
def test_any_sequence_of_changes_recommends_as_a_fresh_full_build(
    people: list[tuple],  # type: ignore[type-arg]
    ops: list[tuple],  # type: ignore[type-arg]
    peers: bool,
    limit: int,
    compact_min: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fresh()
    # Compacted in line, often or never, so both rebased and patched indexes are compared.
    monkeypatch.setattr(live, "COMPACT_MIN", compact_min)
    monkeypatch.setattr(live.LiveProgram, "start_compaction", live.LiveProgram.compact)
    configure(peers)
    for op in people:
        apply(op)
    for op in ops:
        apply(op)
        check_all(limit)


def test_a_process_that_saw_none_of_the_changes_answers_from_the_store() -> None:
    configure()
    pool.add_member(ORG, PROGRAM, "m1", "mentor", "M1", ["python"], 1, b"", "", "", "")
    pool.add_member(ORG, PROGRAM, "e1", "mentee", "E1", ["python"], 0, b"", "", "", "")
    assert [r.mentor.participant_id for r in requests.recommend(ORG, PROGRAM, "e1", 5)] == ["m1"]
    # Another worker fills the mentor's slot and registers a second one: this process never
    # sees those events, only the store.
    pool.add_member(ORG, PROGRAM, "m2", "mentor", "M2", ["django"], 2, b"", "", "", "")
    pool.add_member(ORG, PROGRAM, "e2", "mentee", "E2", ["python"], 0, b"", "", "", "")
    keys = {
        "m1": pool.get_member(ORG, "m1").pk,  # type: ignore[union-attr]
        "e2": pool.get_member(ORG, "e2").pk,  # type: ignore[union-attr]
    }
    pool.propose(ORG, PROGRAM, keys, [pool.Pair("m1", "e2", Evaluation(1.0, (), ()))])
    found = requests.recommend(ORG, PROGRAM, "e1", 5)
    assert [(r.mentor.participant_id, r.mentor.free_slots) for r in found] == [("m2", 2)]


def test_continuous_arrivals_are_assigned_within_capacity_and_rules() -> None:
    configure()
    for n in range(3):
        pool.add_member(
            ORG,
            PROGRAM,
            f"m{n}",
            "mentor",
            "",
            ["python"],
            2,
            profile("", f"h{n}", "", 0),
            "",
            "",
            "",
        )
    assert planner.propose_continuously(ORG, PROGRAM) == 0  # the first batch: nobody waits
    pool.set_manager(ORG, "h9", "h0")  # m0 manages e0
    for n in range(8):
        hr = "h9" if n == 0 else ""
        pool.add_member(
            ORG, PROGRAM, f"e{n}", "mentee", "", ["python"], 0, profile("", hr, "", 0), hr, "", ""
        )
    assert planner.propose_continuously(ORG, PROGRAM) == 6
    made = list(Proposal.objects(status="proposed"))
    assert Counter(p.mentor_id for p in made) == {"m0": 2, "m1": 2, "m2": 2}
    assert ("m0", "e0") not in {(p.mentor_id, p.mentee_id) for p in made}
    left = {m.participant_id for m in PoolMember.objects(role="mentee", matched=False)}
    assert len(left) == 2
    # Nothing changed: nothing to do. A slot back: one of those waiting takes it.
    assert planner.propose_continuously(ORG, PROGRAM) == 0
    declined = next(p for p in made if p.mentor_id == "m1")
    releases.decline(ORG, declined.match_id)
    assert planner.propose_continuously(ORG, PROGRAM) == 1
    after = {
        (p.mentor_id, p.mentee_id)
        for p in Proposal.objects(status="proposed")
        if p.match_id not in {q.match_id for q in made}
    }
    assert len(after) == 1
    ((mentor, mentee),) = after
    assert mentor == "m1" and mentee in left | {declined.mentee_id}
    assert (mentor, mentee) != ("m1", declined.mentee_id)  # declined: never again
