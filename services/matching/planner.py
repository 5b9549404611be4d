"""Planning matches for a program: continuous proposals, bulk runs and their reports.
Blocking (storage): call through storage.run_sync."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from services.common.api import events_pb2, matching_pb2
from services.matching import configuration, pool
from services.matching.domain.assignment import Assignment
from services.matching.domain.candidates import CandidateIndex, generate_pairs
from services.matching.domain.criteria import evaluate
from services.matching.domain.fairness import fairness_report, nearest_rank
from services.matching.domain.model import MatchingConfig, Person
from services.matching.domain.optimum import Bound, match
from services.matching.domain.stable import stable_match
from services.matching.domain.taxonomy import Taxonomy

# A bulk run may stop once proved within this share of the best total (max_gap), at most.
MAX_GAP = 0.05


def max_gap_error(max_gap: float) -> str | None:
    """Why a run's max_gap is refused (NaN too), or None."""
    return None if 0 <= max_gap <= MAX_GAP else f"must be between 0 and {MAX_GAP}"


NO_CANDIDATE = "no mentor with free capacity passes the hard criteria and the minimum score"
ALL_TAKEN = "every suitable mentor's capacity went to other mentees"


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


def _propose(
    organization_id: str,
    program_id: str,
    assignments: Sequence[Assignment],
    p: pool.Pool,
    config: MatchingConfig,
    taxonomy: Taxonomy,
    run_id: str = "",
) -> list[Assignment]:
    """Reserve and store each planned pair, explained; return the pairs actually proposed."""
    people = {x.participant_id: x for x in (*p.waiting_mentees, *p.mentors)}
    proposed = []
    for a in assignments:
        if not pool.reserve(organization_id, a.mentor_id, a.mentee_id):
            continue  # a concurrent request took the slot: the next run retries this mentee
        explained = evaluate(
            people[a.mentor_id], people[a.mentee_id], config, taxonomy, p.constraints
        )
        pool.store_proposal(
            organization_id, program_id, a.mentor_id, a.mentee_id, explained, run_id=run_id
        )
        proposed.append(a)
    return proposed


def propose_continuously(organization_id: str, program_id: str) -> int:
    """After new events: propose for waiting mentees, if the program matches continuously."""
    settings = configuration.load_config(organization_id, program_id)
    if settings.mode != matching_pb2.MATCHING_MODE_CONTINUOUS:
        return 0
    taxonomy = configuration.load_taxonomy(organization_id)
    config = configuration.engine_config(settings)
    p = pool.load_pool(organization_id, program_id, taxonomy)
    free = [m for m in p.mentors if m.free_slots > 0]
    if not p.waiting_mentees or not free:
        return 0
    planned, _, _ = _optimal(p.waiting_mentees, free, config, p, taxonomy)
    return len(_propose(organization_id, program_id, planned, p, config, taxonomy))


def run(
    organization_id: str, program_id: str, request: events_pb2.MatchingRunRequested
) -> events_pb2.MatchingRunCompleted:
    """A bulk run for the program (or one cohort): propose, then report what happened."""
    started = time.perf_counter()
    taxonomy = configuration.load_taxonomy(organization_id)
    config = configuration.engine_config(configuration.load_config(organization_id, program_id))
    p = pool.load_pool(organization_id, program_id, taxonomy, request.cohort_id)
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
    proposed = _propose(organization_id, program_id, planned, p, config, taxonomy, request.run_id)
    scores = {a.mentee_id: a.score for a in proposed}
    result = events_pb2.MatchingRunCompleted(
        run_id=request.run_id,
        cohort_id=request.cohort_id,
        algorithm=algorithm,
        mentees_considered=len(p.waiting_mentees),
        mentors_considered=len(free),
        matched=len(proposed),
        total_score=sum(scores.values()),
        unmatched=[
            events_pb2.UnmatchedMentee(
                mentee_id=m.participant_id,
                reason=ALL_TAKEN if m.participant_id in with_candidates else NO_CANDIDATE,
            )
            for m in p.waiting_mentees
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
            for g in fairness_report(p.waiting_mentees, scores)
        ],
    )
    if bound is not None:
        result.score_bound = bound.upper
        result.proved_optimal = bound.optimal
    result.seconds = time.perf_counter() - started
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
