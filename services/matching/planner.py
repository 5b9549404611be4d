"""Planning matches for a program: continuous proposals, bulk runs and their reports.
Blocking (storage): call through storage.run_sync."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.common.api import events_pb2, matching_pb2
from services.matching import arrivals, configuration, live, pool, profiles
from services.matching.documents import PoolMember, Proposal
from services.matching.domain.assignment import Assignment
from services.matching.domain.candidates import CandidateIndex, generate_pairs
from services.matching.domain.criteria import evaluate
from services.matching.domain.fairness import fairness_report, nearest_rank
from services.matching.domain.model import Constraints, MatchingConfig, Person
from services.matching.domain.optimum import Bound, match
from services.matching.domain.stable import stable_match
from services.matching.domain.taxonomy import Taxonomy
from services.matching.proposed import Proposed

# A bulk run may stop once proved within this share of the best total (max_gap), at most.
MAX_GAP = 0.05


def max_gap_error(max_gap: float) -> str | None:
    """Why a run's max_gap is refused (NaN too), or None."""
    return None if 0 <= max_gap <= MAX_GAP else f"must be between 0 and {MAX_GAP}"


NO_CANDIDATE = "no mentor with free capacity passes the hard criteria and the minimum score"
ALL_TAKEN = "every suitable mentor's capacity went to other mentees"

# Pairs reserved and stored per transaction (pool.propose): a bulk run stores thousands, and
# each transaction's commit is a round trip; its proposals are published after it.
CHUNK = 250


@dataclass
class Plan:
    """Planned pairs, explained, to store a chunk at a time (pool.propose)."""

    keys: Mapping[str, Any] = field(default_factory=dict)  # the members' ids (Pool.keys)
    pairs: list[pool.Pair] = field(default_factory=list)
    # Each planned mentee's score as the solver saw it (what a run reports).
    scores: dict[str, float] = field(default_factory=dict)
    # CONTINUOUS plans: the program's live index, told which pairs the store refused (settle).
    online: live.LiveProgram | None = None

    def chunks(self) -> Iterator[list[pool.Pair]]:
        for start in range(0, len(self.pairs), CHUNK):
            yield self.pairs[start : start + CHUNK]


def ranked(index: CandidateIndex, mentee: Person, k: int | None = None) -> list[tuple[str, float]]:
    """The mentee's best allowed mentors. A pair scoring 0 fits in no way the program cares
    about: the engine never proposes it, whatever the minimum score."""
    return [(mentor, score) for mentor, score in index.top(mentee, k) if score > 0]


def _candidates(
    mentees: Sequence[Person],
    mentors: Sequence[Person],
    config: MatchingConfig,
    p: pool.Pool,
    taxonomy: Taxonomy,
) -> dict[str, list[tuple[str, float]]]:
    """Each waiting mentee's best allowed mentors (best first), from the vectorised index."""
    candidates: dict[str, list[tuple[str, float]]] = {m.participant_id: [] for m in mentees}
    for pair in generate_pairs(mentees, mentors, config, taxonomy, p.constraints):
        # A pair scoring 0 fits in no way the program cares about: never proposed.
        if pair.score > 0:
            candidates[pair.mentee_id].append((pair.mentor_id, pair.score))
    for ranked_mentors in candidates.values():
        ranked_mentors.sort(key=lambda c: (-c[1], c[0]))
    return candidates


def _optimal(
    mentees: Sequence[Person],
    mentors: Sequence[Person],
    config: MatchingConfig,
    p: pool.Pool,
    taxonomy: Taxonomy,
    gap: float = 0.0,
) -> tuple[list[Assignment], frozenset[str], Bound]:
    """The optimum over every allowed pair scoring above 0 (optimum.match, proved by LP
    duality; or proved within `gap` of it), the mentees that have at least one such pair, and
    what is proved."""
    result = match(mentees, mentors, config, taxonomy, p.constraints, positive=True, gap=gap)
    matched = {a.mentee_id for a in result.assignments}
    unsure = [
        m
        for m in mentees
        if m.participant_id not in result.with_candidates and m.participant_id not in matched
    ]
    with_candidates = set(result.with_candidates) | matched
    if unsure:
        index = CandidateIndex(mentors, config, taxonomy, p.constraints)
        with_candidates.update(m.participant_id for m in unsure if ranked(index, m, 1))
    return result.assignments, frozenset(with_candidates), result.bound


def _stable(
    candidates: dict[str, list[tuple[str, float]]],
    mentees: Sequence[Person],
    mentors: Sequence[Person],
) -> list[Assignment]:
    """Both sides rank: a mentee by their own choices first, then by score; a mentor by score."""
    scores = {(mentee, mentor): s for mentee, ranked in candidates.items() for mentor, s in ranked}
    mentee_prefs: dict[str, list[str]] = {}
    for person in mentees:
        allowed = [mentor for mentor, _ in candidates[person.participant_id]]
        chosen = [m for m in person.preferred_mentors if m in allowed]
        mentee_prefs[person.participant_id] = chosen + [m for m in allowed if m not in chosen]
    mentor_prefs: dict[str, list[tuple[float, str]]] = {}
    for (mentee, mentor), score in scores.items():
        mentor_prefs.setdefault(mentor, []).append((-score, mentee))
    ranked = {
        mentor: [mentee for _, mentee in sorted(prefs)] for mentor, prefs in mentor_prefs.items()
    }
    matching = stable_match(mentee_prefs, ranked, {m.participant_id: m.free_slots for m in mentors})
    return [
        Assignment(mentee, mentor, scores[(mentee, mentor)])
        for mentee, mentor in sorted(matching.items())
    ]


def _plan(
    assignments: Sequence[Assignment],
    p: pool.Pool,
    config: MatchingConfig,
    taxonomy: Taxonomy,
) -> Plan:
    """Each planned pair of a loaded pool, explained by the criteria."""
    people = {x.participant_id: x for x in (*p.waiting_mentees, *p.mentors)}
    return _explained(assignments, people, people, p.keys, p.constraints, config, taxonomy)


def _explained(
    assignments: Sequence[Assignment],
    mentors: Mapping[str, Person],
    mentees: Mapping[str, Person],
    keys: Mapping[str, Any],
    constraints: Constraints,
    config: MatchingConfig,
    taxonomy: Taxonomy,
    online: live.LiveProgram | None = None,
) -> Plan:
    """The plan of these assignments, each pair explained by the criteria."""
    return Plan(
        keys=keys,
        pairs=[
            pool.Pair(
                a.mentor_id,
                a.mentee_id,
                evaluate(mentors[a.mentor_id], mentees[a.mentee_id], config, taxonomy, constraints),
            )
            for a in assignments
        ],
        scores={a.mentee_id: a.score for a in assignments},
        online=online,
    )


def plan_continuously(organization_id: str, program_id: str) -> Plan:
    """After new events: the pairs to propose to the program's arrivals, if it matches
    continuously (else none). Incremental (arrivals.py): the first batch in a process solves
    every waiting mentee against every free mentor; later ones assign only what changed."""
    settings = configuration.load_config(organization_id, program_id)
    if settings.mode != matching_pb2.MATCHING_MODE_CONTINUOUS:
        return Plan()
    program = live.program(organization_id, program_id, settings)
    with program.lock:
        program.sync()
        if not arrivals.started(program):
            return _first_batch(program)
        batch = arrivals.assign(program)
    constraints = batch.blocks.constraints() if batch.blocks else Constraints()
    return _explained(
        batch.assignments,
        batch.mentors,
        batch.mentees,
        batch.keys,
        constraints,
        program.config,
        program.taxonomy,
        online=program,
    )


def _first_batch(program: live.LiveProgram) -> Plan:
    """Every waiting mentee against every free mentor (the optimum), as before the program's
    state was held here; whoever it leaves waiting starts the incremental bookkeeping."""
    config, taxonomy = program.config, program.taxonomy
    p = pool.load_pool(program.organization_id, program.program_id, taxonomy)
    free = [m for m in p.mentors if m.free_slots > 0]
    planned: list[Assignment] = []
    if p.waiting_mentees and free:
        planned, _, _ = _optimal(p.waiting_mentees, free, config, p, taxonomy)
    taken = {a.mentee_id for a in planned}
    arrivals.start(
        program,
        [(m, p.keys[m.participant_id]) for m in p.waiting_mentees if m.participant_id not in taken],
        [p.keys[m.participant_id] for m in p.waiting_mentees],
    )
    plan = _plan(planned, p, config, taxonomy)
    plan.online = program
    return plan


def settle(plan: Plan, stored: Sequence[Proposed]) -> None:
    """Tell a continuous plan's program which pairs the store refused (arrivals.settle)."""
    if plan.online is None:
        return
    made = {p.mentee_id for p in stored}
    refused = [pair for pair in plan.pairs if pair.mentee_id not in made]
    if refused:
        with plan.online.lock:
            arrivals.settle(
                plan.online,
                [pair.mentor_id for pair in refused],
                [plan.keys[pair.mentee_id] for pair in refused],
            )


def store(organization_id: str, program_id: str, plan: Plan, run_id: str = "") -> list[Proposed]:
    """Reserve and store every planned pair, a chunk per transaction; the proposals stored."""
    return [
        proposal
        for chunk in plan.chunks()
        for proposal in pool.propose(organization_id, program_id, plan.keys, chunk, run_id)
    ]


def propose_continuously(organization_id: str, program_id: str) -> int:
    """Plan and store at once (the worker publishes each chunk as it is stored instead)."""
    plan = plan_continuously(organization_id, program_id)
    stored = store(organization_id, program_id, plan)
    settle(plan, stored)
    return len(stored)


@dataclass
class RunPlan(Plan):
    """A bulk run's plan, and what its report needs."""

    started: float = 0.0
    algorithm: events_pb2.MatchingAlgorithm.ValueType = events_pb2.MATCHING_ALGORITHM_OPTIMAL
    # The mentees it considered: those waiting, and any an earlier attempt of the same run
    # proposed before its worker died (`earlier`).
    mentees: list[Person] = field(default_factory=list)
    mentors_considered: int = 0
    with_candidates: frozenset[str] = frozenset()
    bound: Bound | None = None
    earlier: dict[str, float] = field(default_factory=dict)  # mentee id -> score
    # Seconds each step of planning took (loading the pool, matching, explaining the pairs).
    phases: dict[str, float] = field(default_factory=dict)


def _earlier_attempt(
    organization_id: str, program_id: str, run_id: str, waiting: Sequence[Person]
) -> dict[str, float]:
    """The run's proposals stored by an earlier attempt (its worker died before reporting, or
    the batch failed after, and the request came again) whose mentee is not waiting again, as
    each mentee's score: the run counts them as its own. Read as stored: an attempt of a bulk
    run may have stored tens of thousands."""
    waiting_ids = {m.participant_id for m in waiting}
    return {
        p["mentee_id"]: p["score"]
        for p in Proposal.objects(
            organization_id=organization_id, program_id=program_id, run_id=run_id
        )
        .only("mentee_id", "score")
        .as_pymongo()
        if p["mentee_id"] not in waiting_ids
    }


def plan_run(
    organization_id: str, program_id: str, request: events_pb2.MatchingRunRequested
) -> RunPlan:
    """Plan a bulk run for the program (or one cohort); `report` then says what happened."""
    started = time.perf_counter()
    taxonomy = configuration.load_taxonomy(organization_id)
    config = configuration.engine_config(configuration.load_config(organization_id, program_id))
    p = pool.load_pool(organization_id, program_id, taxonomy, request.cohort_id)
    loaded = time.perf_counter()
    free = [m for m in p.mentors if m.free_slots > 0]
    algorithm = request.algorithm or events_pb2.MATCHING_ALGORITHM_OPTIMAL
    bound = None
    if algorithm == events_pb2.MATCHING_ALGORITHM_STABLE:
        candidates = _candidates(p.waiting_mentees, free, config, p, taxonomy)
        planned = _stable(candidates, p.waiting_mentees, free)
        with_candidates = frozenset(m for m, ranked_mentors in candidates.items() if ranked_mentors)
    else:
        planned, with_candidates, bound = _optimal(
            p.waiting_mentees, free, config, p, taxonomy, request.max_gap
        )
    matched = time.perf_counter()
    plan = _plan(planned, p, config, taxonomy)
    earlier = _earlier_attempt(organization_id, program_id, request.run_id, p.waiting_mentees)
    resumed = (
        PoolMember.objects(organization_id=organization_id, participant_id__in=list(earlier))
        .only(*profiles.PERSON_FIELDS)
        .as_pymongo()
    )
    return RunPlan(
        keys=plan.keys,
        pairs=plan.pairs,
        scores=plan.scores,
        started=started,
        algorithm=algorithm,
        mentees=[*p.waiting_mentees, *(profiles.stored_person(m, taxonomy) for m in resumed)]
        if earlier
        else p.waiting_mentees,
        mentors_considered=len(free),
        with_candidates=with_candidates,
        bound=bound,
        earlier=earlier,
        phases={
            "load": loaded - started,
            "match": matched - loaded,
            "explain": time.perf_counter() - matched,
        },
    )


def report(
    plan: RunPlan, request: events_pb2.MatchingRunRequested, stored: Sequence[Proposed]
) -> events_pb2.MatchingRunCompleted:
    """What a run proposed (`stored`, and what an earlier attempt of it stored), whom it left
    unmatched and why, the score distribution and the fairness report."""
    scores = dict(plan.earlier)
    scores.update((p.mentee_id, plan.scores[p.mentee_id]) for p in stored)
    result = events_pb2.MatchingRunCompleted(
        run_id=request.run_id,
        cohort_id=request.cohort_id,
        algorithm=plan.algorithm,
        mentees_considered=len(plan.mentees),
        mentors_considered=plan.mentors_considered,
        matched=len(scores),
        total_score=sum(scores.values()),
        unmatched=[
            events_pb2.UnmatchedMentee(
                mentee_id=m.participant_id,
                reason=ALL_TAKEN if m.participant_id in plan.with_candidates else NO_CANDIDATE,
            )
            for m in plan.mentees
            if m.participant_id not in scores
        ],
        scores=_distribution(list(scores.values())),
        fairness=[
            events_pb2.FairnessGroup(
                dimension=g.dimension,
                group=g.group,
                mentees=g.mentees,
                matched=g.matched,
                match_rate=g.match_rate,
                mean_score=g.mean_score,
                p10_score=g.p10_score,
                median_score=g.median_score,
                p90_score=g.p90_score,
                flagged=g.flagged,
            )
            for g in fairness_report(plan.mentees, scores)
        ],
    )
    if plan.bound is not None:
        result.score_bound = plan.bound.upper
        result.proved_optimal = plan.bound.optimal
    result.seconds = time.perf_counter() - plan.started
    return result


def _distribution(scores: list[float]) -> events_pb2.ScoreDistribution:
    if not scores:
        return events_pb2.ScoreDistribution()
    ordered = sorted(scores)
    return events_pb2.ScoreDistribution(
        min=ordered[0],
        p10=nearest_rank(ordered, 10),
        median=nearest_rank(ordered, 50),
        p90=nearest_rank(ordered, 90),
        max=ordered[-1],
        mean=statistics.fmean(ordered),
    )
