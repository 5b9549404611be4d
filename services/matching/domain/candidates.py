"""Which mentors to consider for a mentee, vectorised with numpy. Pure: no I/O.

The same numbers as `criteria.evaluate`, computed for one mentee against many mentors (or for
many (mentee, mentor) pairs at once) instead of one pair at a time. A property test
(tests/unit/test_candidates.py) holds the two together; the arithmetic mirrors criteria.py
operation for operation (same additions in the same order, same divisions), so scores come out
bit-identical and the `score >= min_score` cut agrees even at the boundary.

API
- CandidateIndex(mentors, config, taxonomy, constraints): mentors with free_slots > 0, encoded
  once. top(mentee, k) -> [(mentor_id, score)] best first, ties by mentor id: the k best
  mentors that evaluate() allows with score >= min_score (a score of 0 is returned when
  min_score is 0 and the pair is allowed, e.g. soft SKILLS with no related skill).
  scores(mentee) -> every mentor's score and eligibility; top_many(...) for bulk runs.
- generate_pairs(mentees, mentors, ...) -> each mentee's top candidates_per_mentee, as Pairs
  (the stable algorithm's preference lists). The optimum over ALL allowed pairs, with its
  proof, is optimum.match, built on dense.py's blocks and this index's exact scoring.

Encoding (mentors once per index; mentees per chunk of ~2M mentee x mentor cells):
- mentors sorted by participant id, so "ties by mentor id" is "ties by index";
- categorical criteria (goals, seniority, department, timezone, location, language,
  demographics) map each mentor to a code of its distinct value (frozensets included); per
  chunk a (mentees x codes) table of scores and passes is computed with criteria.py's formulas,
  and a pair costs one gather;
- skills: an inverted index canonical skill -> mentors; for a sought skill only the skill, its
  ancestors, descendants and siblings can be related (relatedness from the taxonomy itself);
  the mentee's skill numerator v = sum_i (n - i) * 4 * r_i is accumulated over those postings;
- availability: each side's merged intervals; a mentee's cumulative coverage at the sorted
  interval boundaries of all mentors turns an overlap into two gathers per mentor interval;
- always-hard rules (same participant or HR id, excluded pairs, reporting line both ways up to
  skip level, peers when configured) from dictionaries by HR id, manager, skip-level manager
  and participant id: a short blocked list per mentee, enforced exactly on every result.

Exact search (top(), and bulk runs while mentees x mentors <= EXACT_CELLS):
1. skill-related mentors come from the index; a seed of the pairs with the highest v is scored
   in full, and the k-th best allowed score among them is a floor for the rest;
2. the other candidates go through a cascade: criteria one at a time (skills, hard filters,
   then by weight); a pair is dropped as soon as it failed a hard criterion or its score so
   far plus the most the remaining criteria can add for this mentee (the best value over the
   mentors' codes, or the exact 0.5 when the mentee's side is unknown) is below the floor;
3. mentors unrelated to all sought skills can still be allowed and score well when SKILLS is
   soft; they are scanned for the mentees whose floor is not above what they could reach;
4. exact top-k with ties by mentor id. No approximation: pruning is by proven bounds only.

Approximation for large bulk runs (mentees x mentors > EXACT_CELLS, e.g. 100k x 25k): each
mentee's search is limited to a budget of candidates (BUDGET per sought skill: the most related
mentors, rotated per mentee within the top relatedness level so that equally skilled mentors
share the demand), which are then ranked exactly. Mentees with fewer than k allowed candidates
are scanned against all mentors.

Memory: O(mentors x distinct sought skills) for the skill rows (capped), O(chunk cells) per
chunk, O(mentees x k) for the output: nothing grows as mentees x mentors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from services.matching.domain.assignment import Pair
from services.matching.domain.criteria import managers, merged_slots
from services.matching.domain.model import (
    Constraints,
    CriterionSpec,
    Kind,
    MatchingConfig,
    Person,
    ReportingRule,
)
from services.matching.domain.taxonomy import EMPTY_TAXONOMY, Taxonomy

__all__ = [
    "BUDGET",
    "EXACT_CELLS",
    "CandidateIndex",
    "generate_pairs",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
Bool = npt.NDArray[np.bool_]

UNKNOWN = 0.5
MINUTES_PER_DAY = 24 * 60
_NO_CONSTRAINTS = Constraints()
# generate_pairs / match: exact search while mentees x mentors is at most EXACT_CELLS, else at
# most BUDGET scored candidates per mentee.
EXACT_CELLS = 64_000_000
BUDGET = 200
# relatedness (1, .5, .25) -> integer code 4 * relatedness, so skill sums stay exact integers.
_REL_CODE = {1.0: 4, 0.5: 2, 0.25: 1}
# Mentees are processed in chunks of about this many (mentee, mentor) cells: it bounds the
# working memory (a few bytes per cell) whatever the population sizes.
_CHUNK_CELLS = 1 << 21
# Bound on the cached related-mentor postings per sought skill (entries, 16 bytes each).
_POSTINGS_CACHE_ENTRIES = 20_000_000
# Slack for float rounding in the pruning bounds (scores are exact; bounds are sums in another
# order). Pruning is safe as long as this exceeds the rounding error, ~1e-15 here.
_EPS = 1e-9
# The seed of a search: the _SEED_PER_K * k (at least _SEED_MIN) pairs per mentee with the
# highest skill relatedness are scored in full to set the floor for pruning the rest.
_SEED_PER_K = 8
_SEED_MIN = 256
# A pair array is compacted once fewer than this share of its pairs are still alive.
_COMPACT_BELOW = 0.75
# Tie-break levels under a budget (see _tie_break).
_TIE_LEVELS = 16
# Bound on the cached per-set rows of GOALS and LANGUAGE (see _Codes.shared).
_SET_CACHE = 1 << 14

_TABLE_KINDS = frozenset(
    {
        Kind.GOALS,
        Kind.SENIORITY,
        Kind.DEPARTMENT,
        Kind.TIMEZONE,
        Kind.LOCATION,
        Kind.LANGUAGE,
        Kind.DEMOGRAPHICS,
    }
)


def _mentor_value(kind: Kind, p: Person) -> Any:
    """The mentor-side value a table criterion depends on (hashable)."""
    if kind is Kind.GOALS:
        return p.goals
    if kind is Kind.SENIORITY:
        return p.job_level
    if kind is Kind.DEPARTMENT:
        return p.department
    if kind is Kind.TIMEZONE:
        return p.utc_offset_minutes
    if kind is Kind.LOCATION:
        return p.location.casefold()
    if kind is Kind.LANGUAGE:
        return p.languages
    return (p.gender, p.cultural_background)  # DEMOGRAPHICS


class _Codes:
    """Mentors' values of one table criterion as codes 0..K-1, plus per-code arrays."""

    def __init__(self, kind: Kind, people: Sequence[Person]) -> None:
        index: dict[Any, int] = {}
        self.code: I64 = np.fromiter(
            (index.setdefault(_mentor_value(kind, p), len(index)) for p in people),
            np.int64,
            len(people),
        )
        self.values: list[Any] = list(index)
        self.k = max(len(self.values), 1)
        if kind in (Kind.GOALS, Kind.LANGUAGE):
            # item -> codes of the sets containing it
            holders: dict[str, list[int]] = {}
            for code, items in enumerate(self.values):
                for item in items:
                    holders.setdefault(item, []).append(code)
            self.holders = {item: np.asarray(cs, np.int64) for item, cs in holders.items()}
            self.known = np.fromiter((bool(v) for v in self.values), np.bool_, len(self.values))
            # mentee set -> how many of its items each code's set holds (few distinct sets)
            self._shared: dict[frozenset[str], I64] = {}
        elif kind in (Kind.DEPARTMENT, Kind.LOCATION):
            self.lookup = index
            self.known = np.fromiter((bool(v) for v in self.values), np.bool_, len(self.values))
        elif kind is Kind.TIMEZONE:
            self.known = np.fromiter((v is not None for v in self.values), np.bool_, len(index))
            self.ints = np.fromiter((v or 0 for v in self.values), np.int64, len(index))
        elif kind is Kind.SENIORITY:
            self.ints = np.fromiter(self.values, np.int64, len(index))
        else:  # DEMOGRAPHICS: codes of each side's own vocabulary, -1 when empty
            self.genders: dict[str, int] = {}
            self.cultures: dict[str, int] = {}
            self.gender = np.fromiter(
                (self.genders.setdefault(g, len(self.genders)) if g else -1 for g, _ in index),
                np.int64,
                len(index),
            )
            self.culture = np.fromiter(
                (self.cultures.setdefault(c, len(self.cultures)) if c else -1 for _, c in index),
                np.int64,
                len(index),
            )

    def shared(self, sets: Sequence[frozenset[str]]) -> I64:
        """(len(sets) x codes): how many items of each set each code's set holds."""
        rows: list[I64] = []
        cache = self._shared
        for items in sets:
            row = cache.get(items)
            if row is None:
                row = np.zeros(self.k, np.int64)
                for item in items:
                    hold = self.holders.get(item)
                    if hold is not None:
                        row[hold] += 1  # a code holds an item once
                if len(cache) >= _SET_CACHE:
                    cache.clear()
                cache[items] = row
            rows.append(row)
        if not rows:
            return np.zeros((0, self.k), np.int64)
        return np.stack(rows)[:, : len(self.values)]


@dataclass(frozen=True, slots=True)
class _Spec:
    position: int  # in config.criteria
    spec: CriterionSpec
    weight: float  # the weight if > 0, else 0.0 (then the criterion only filters, if hard)


@dataclass(slots=True)
class _Found:
    """Eligible pairs of one chunk with exact scores (pe: mentee row in the chunk)."""

    pe: I64
    pm: I64
    score: F64

    @staticmethod
    def empty() -> _Found:
        return _Found(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))

    def __add__(self, other: _Found) -> _Found:
        return _Found(
            np.concatenate((self.pe, other.pe)),
            np.concatenate((self.pm, other.pm)),
            np.concatenate((self.score, other.score)),
        )


def _codes_of(values: Iterable[str], lookup: Mapping[str, int]) -> I64:
    """Mentee values as mentor codes: -1 empty, -2 a value no mentor has."""
    return np.asarray([lookup.get(v, -2) if v else -1 for v in values], np.int64)


class _Chunk:
    """A block of mentees encoded against a CandidateIndex: tables, bounds, blocked pairs."""

    def __init__(self, ix: CandidateIndex, mentees: Sequence[Person]) -> None:
        n = self.n = len(mentees)
        m = ix.n_mentors
        kinds = ix.kinds

        # Always-hard rules: blocked (mentee row, mentor) keys.
        blocked: list[int] = []
        manager_of = ix.constraints.manager_of
        by_pid, by_hr, by_manager, by_skip = ix.by_pid, ix.by_hr, ix.by_manager, ix.by_skip
        excluded = ix.excluded_by_mentee
        for e, p in enumerate(mentees):
            hits: list[int] = []
            pid, hr = p.participant_id, p.hr_person_id
            if pid:
                if pid in by_pid:
                    hits += by_pid[pid]
                if pid in excluded:
                    for mentor_id in excluded[pid]:
                        hits += by_pid.get(mentor_id, ())
            manager, skip = managers(p, manager_of)
            if hr:
                hits += by_hr.get(hr, ())  # same person
                hits += by_manager.get(hr, ())  # the mentee is the mentor's manager
                hits += by_skip.get(hr, ())  # ... or manager's manager
            if manager:
                hits += by_hr.get(manager, ())  # the mentor is the mentee's manager
                if ix.peers:
                    hits += by_manager.get(manager, ())
            if skip:
                hits += by_hr.get(skip, ())
            if hits:
                base = e * m
                blocked.extend(base + j for j in hits)
        self.blocked = np.unique(np.asarray(blocked, np.int64))

        self.skills: list[tuple[str, ...]] = []
        if Kind.SKILLS in kinds:
            self.skills = [p.skills for p in mentees]
            counts = np.fromiter((len(s) for s in self.skills), np.int64, n)
            self.skill_total = (counts * (counts + 1) // 2).astype(np.float64)
            self.skill_total[counts == 0] = 1.0
            self.seeks = counts > 0

        # Table criteria: per spec, (score table, pass table) of shape (n, K) flattened.
        self.tables: dict[int, tuple[F64, Bool, int]] = {}
        self.best: dict[int, F64] = {}
        values: dict[Kind, Any] = {}
        for s in ix.specs:
            kind = s.spec.kind
            if kind in _TABLE_KINDS:
                if kind not in values:
                    values[kind] = self._mentee_values(ix, kind, mentees)
                score, passed = self._table(ix, s.spec, values[kind])
                self.tables[s.position] = (score.ravel(), passed.ravel(), score.shape[1])
                reachable = np.where(passed, score, -np.inf) if s.spec.hard else score
                best = reachable.max(axis=1, initial=-np.inf)
                self.best[s.position] = np.where(np.isfinite(best), best, 0.0)
            elif kind is Kind.SKILLS:
                self.best[s.position] = self.seeks.astype(np.float64)

        if Kind.AVAILABILITY in kinds:
            self._availability(ix, mentees)
            for s in ix.specs:
                if s.spec.kind is Kind.AVAILABILITY:
                    self.best[s.position] = np.where(self.avail_known, 1.0, UNKNOWN)
        if Kind.MENTEE_CHOICE in kinds:
            self._choices(ix, mentees)
            for s in ix.specs:
                if s.spec.kind is Kind.MENTEE_CHOICE:
                    self.best[s.position] = self.choice_best

    @staticmethod
    def _mentee_values(ix: CandidateIndex, kind: Kind, mentees: Sequence[Person]) -> Any:
        codes = ix.codes[kind]
        if kind in (Kind.GOALS, Kind.LANGUAGE):
            return [p.goals if kind is Kind.GOALS else p.languages for p in mentees]
        if kind is Kind.SENIORITY:
            return np.asarray([p.job_level for p in mentees], np.int64)
        if kind is Kind.DEPARTMENT:
            return _codes_of((p.department for p in mentees), codes.lookup)
        if kind is Kind.LOCATION:
            return _codes_of((p.location.casefold() for p in mentees), codes.lookup)
        if kind is Kind.TIMEZONE:
            offsets = [p.utc_offset_minutes for p in mentees]
            return (
                np.asarray([o is not None for o in offsets], np.bool_),
                np.asarray([o or 0 for o in offsets], np.int64),
            )
        return (  # DEMOGRAPHICS
            np.asarray([p.demographic_opt_in for p in mentees], np.bool_),
            _codes_of((p.gender for p in mentees), codes.genders),
            _codes_of((p.cultural_background for p in mentees), codes.cultures),
        )

    def _table(self, ix: CandidateIndex, spec: CriterionSpec, mine: Any) -> tuple[F64, Bool]:
        """Score and pass of every (mentee, mentor code), with criteria.py's arithmetic."""
        kind = spec.kind
        codes = ix.codes[kind]
        n, k = self.n, len(codes.values)
        if kind in (Kind.GOALS, Kind.LANGUAGE):
            shared = codes.shared(mine)
            sizes = np.fromiter((len(items) for items in mine), np.int64, n)
            known = (sizes > 0)[:, None] & codes.known[None, :]
            if kind is Kind.GOALS:
                score = shared / np.maximum(sizes, 1)[:, None]
            else:
                score = np.where(shared > 0, 1.0, 0.0)
            return np.where(known, score, UNKNOWN), ~known | (shared > 0)
        if kind is Kind.SENIORITY:
            le, lm = mine[:, None], codes.ints[None, :]
            known = (le != 0) & (lm != 0)
            gap = lm - le
            low, high = spec.min_level_gap, spec.max_level_gap
            size = np.abs(gap) if spec.allow_reverse else gap
            inside = (low <= size) & (size <= high)
            distance = np.where(size < low, low - size, size - high)
            score = np.where(inside, 1.0, np.maximum(0.0, 1.0 - distance / 3))
            if not spec.allow_reverse:
                reverse = gap < 0
                score = np.where(reverse, 0.0, score)
                inside &= ~reverse
            return np.where(known, score, UNKNOWN), ~known | inside
        if kind in (Kind.DEPARTMENT, Kind.LOCATION):
            same = mine[:, None] == np.arange(k)[None, :]
            known = (mine != -1)[:, None] & codes.known[None, :]
            met = same if kind is Kind.LOCATION or spec.prefer_same_department else ~same
            return np.where(known, np.where(met, 1.0, 0.0), UNKNOWN), ~known | met
        if kind is Kind.TIMEZONE:
            e_known, e_offset = mine
            known = e_known[:, None] & codes.known[None, :]
            apart = np.abs(codes.ints[None, :] - e_offset[:, None]) % MINUTES_PER_DAY
            diff = np.minimum(apart, MINUTES_PER_DAY - apart) / 60
            score = np.maximum(0.0, 1.0 - diff / 12)
            passed = diff <= spec.max_timezone_hours
            return np.where(known, score, UNKNOWN), ~known | passed
        # DEMOGRAPHICS
        opt_in, ge, ce = mine
        gm, cm = codes.gender[None, :], codes.culture[None, :]
        g_both = (ge != -1)[:, None] & (gm != -1)
        c_both = (ce != -1)[:, None] & (cm != -1)
        compared = g_both.astype(np.int64) + c_both
        equal = (g_both & (ge[:, None] == gm)).astype(np.int64) + (c_both & (ce[:, None] == cm))
        applied = opt_in[:, None] & (compared > 0)
        score = np.where(applied, equal / np.maximum(compared, 1), UNKNOWN)
        return score, ~applied | (equal == compared)

    def _availability(self, ix: CandidateIndex, mentees: Sequence[Person]) -> None:
        """Each mentee's covered minutes before each mentor interval boundary."""
        n = self.n
        bounds = ix.avail_bounds
        self.avail_known = np.fromiter((bool(p.availability) for p in mentees), np.bool_, n)
        # By rank: the j-th interval of every mentee that has one, a row each, so no row is
        # written twice in one step.
        ranks: list[tuple[list[int], list[int], list[int]]] = []
        for e, p in enumerate(mentees):
            if p.availability:
                for j, (start, end) in enumerate(merged_slots(p.availability)):
                    if j == len(ranks):
                        ranks.append(([], [], []))
                    rows, starts, ends = ranks[j]
                    rows.append(e)
                    starts.append(start)
                    ends.append(end)
        cover = np.zeros((n, bounds.size), np.int64)
        for rows, starts, ends in ranks:
            s = np.asarray(starts, np.int64)[:, None]
            length = np.asarray(ends, np.int64)[:, None] - s
            cover[rows] += np.clip(bounds[None, :] - s, 0, length)
        self.cover = cover.ravel()
        self.n_bounds = bounds.size

    def _choices(self, ix: CandidateIndex, mentees: Sequence[Person]) -> None:
        m = ix.n_mentors
        keys: list[int] = []
        values: list[float] = []
        known: list[bool] = []
        best: list[float] = []
        for e, p in enumerate(mentees):
            choices = p.preferred_mentors
            known.append(bool(choices))
            top = 0.0 if choices else UNKNOWN
            k = len(choices)
            seen: set[str] = set()
            for j, mentor_id in enumerate(choices):
                if mentor_id in seen:
                    continue  # a mentor listed twice takes the first rank
                seen.add(mentor_id)
                value = (k - j) / k
                for idx in ix.by_pid.get(mentor_id, ()):
                    keys.append(e * m + idx)
                    values.append(value)
                    top = max(top, value)
            best.append(top)
        order = np.argsort(np.asarray(keys, np.int64), kind="stable")
        self.choice_keys = np.asarray(keys, np.int64)[order]
        self.choice_values = np.asarray(values, np.float64)[order]
        self.choice_known = np.asarray(known, np.bool_)
        self.choice_best = np.asarray(best, np.float64)


class CandidateIndex:
    """Mentors with free capacity, encoded once, to score mentees against them in bulk."""

    def __init__(
        self,
        mentors: Sequence[Person],
        config: MatchingConfig,
        taxonomy: Taxonomy = EMPTY_TAXONOMY,
        constraints: Constraints = _NO_CONSTRAINTS,
    ) -> None:
        people = sorted((p for p in mentors if p.free_slots > 0), key=lambda p: p.participant_id)
        self.mentors: tuple[Person, ...] = tuple(people)
        self.mentor_ids: tuple[str, ...] = tuple(p.participant_id for p in people)
        self.config = config
        self.taxonomy = taxonomy
        self.constraints = constraints
        self.n_mentors = len(people)
        # Mentors left out of every result since the index was built (see retire).
        self._retired: Bool | None = None

        specs: list[_Spec] = []
        total_weight = 0.0
        for position, spec in enumerate(config.criteria):
            weight = spec.weight if spec.weight > 0 else 0.0
            if weight > 0:
                total_weight += spec.weight  # the same additions in the same order as criteria
            if weight > 0 or spec.hard:
                specs.append(_Spec(position, spec, weight))
        self.specs: tuple[_Spec, ...] = tuple(specs)
        self.total_weight = total_weight
        self.kinds = frozenset(s.spec.kind for s in specs)
        # Cascade order: skills (known from the index), hard filters, then by weight.
        self.cascade = tuple(
            sorted(
                specs,
                key=lambda s: (s.spec.kind is not Kind.SKILLS, not s.spec.hard, -s.weight),
            )
        )
        self.skill_specs = tuple(s for s in specs if s.spec.kind is Kind.SKILLS)
        self.skills_hard = any(s.spec.hard for s in self.skill_specs)
        self.peers = config.reporting_rule is ReportingRule.MANAGER_CHAIN_AND_PEERS

        # Always-hard rules.
        self.by_pid: dict[str, list[int]] = {}
        self.by_hr: dict[str, list[int]] = {}
        self.by_manager: dict[str, list[int]] = {}
        self.by_skip: dict[str, list[int]] = {}
        for j, p in enumerate(people):
            if p.participant_id:
                self.by_pid.setdefault(p.participant_id, []).append(j)
            if p.hr_person_id:
                self.by_hr.setdefault(p.hr_person_id, []).append(j)
            manager, skip = managers(p, constraints.manager_of)
            if manager:
                self.by_manager.setdefault(manager, []).append(j)
            if skip:
                self.by_skip.setdefault(skip, []).append(j)
        self.excluded_by_mentee: dict[str, list[str]] = {}
        for mentor_id, mentee_id in constraints.excluded:
            self.excluded_by_mentee.setdefault(mentee_id, []).append(mentor_id)

        self.codes: dict[Kind, _Codes] = {
            kind: _Codes(kind, people) for kind in self.kinds & _TABLE_KINDS
        }
        if Kind.SKILLS in self.kinds:
            offered: dict[str, list[int]] = {}
            for j, p in enumerate(people):
                for skill in p.skills:
                    offered.setdefault(taxonomy.canonical(skill), []).append(j)
            self._offered = {c: np.unique(np.asarray(js, np.int64)) for c, js in offered.items()}
            self._descendants: dict[str, list[str]] = {}
            self._children: dict[str, list[str]] = {}
            for c in self._offered:
                for a in taxonomy.ancestors(c):
                    self._descendants.setdefault(a, []).append(c)
                parent = taxonomy.parent(c)
                if parent is not None:
                    self._children.setdefault(parent, []).append(c)
            self._postings: dict[str, tuple[I64, I64]] = {}
            self._postings_size = 0
            self._windows: dict[str, tuple[I64, I64, int, I64]] = {}
            self._code_rows: dict[str, int] = {}
            self._code_matrix = np.zeros((64, self.n_mentors), np.uint8)
        if Kind.AVAILABILITY in self.kinds:
            merged = [merged_slots(p.availability) for p in people]
            self.avail_known = np.fromiter(
                (bool(p.availability) for p in people), np.bool_, len(people)
            )
            points = sorted({t for ivs in merged for iv in ivs for t in iv} | {0})
            self.avail_bounds = np.asarray(points, np.int64)
            where = {t: i for i, t in enumerate(points)}
            width = max((len(ivs) for ivs in merged), default=0)
            # Mentors with fewer intervals are padded with (0, 0), which covers nothing.
            self.avail_start = np.zeros((width, len(people)), np.int64)
            self.avail_end = np.zeros((width, len(people)), np.int64)
            for j, ivs in enumerate(merged):
                for i, (start, end) in enumerate(ivs):
                    self.avail_start[i, j] = where[start]
                    self.avail_end[i, j] = where[end]
            self.avail_count = np.fromiter((len(ivs) for ivs in merged), np.int64, len(people))

    # --- public API ------------------------------------------------------------------------

    def retire(self, positions: Iterable[int]) -> None:
        """Leave these mentors (positions in mentor_ids) out of every later result, as if they
        had no free slot: an index kept up to date in place (services/matching/live.py) drops
        a mentor who filled up or left without encoding the others again."""
        if self._retired is None:
            self._retired = np.zeros(self.n_mentors, np.bool_)
        self._retired[np.fromiter(positions, np.int64)] = True

    def top(self, mentee: Person, k: int | None = None) -> list[tuple[str, float]]:
        """The k best allowed mentors with score >= min_score: (mentor id, score), best first.

        Sorted by score descending, then mentor id. k defaults to candidates_per_mentee.
        """
        k = self.config.candidates_per_mentee if k is None else k
        if k <= 0 or self.n_mentors == 0:
            return []
        found = self._top_chunk(_Chunk(self, [mentee]), k, None)
        ids = self.mentor_ids
        return [(ids[j], s) for j, s in zip(found.pm.tolist(), found.score.tolist(), strict=True)]

    def scores(self, mentee: Person) -> tuple[F64, Bool]:
        """Every mentor's score for the mentee (aligned with mentor_ids), and which mentors are
        eligible (allowed, and score >= min_score). No pruning: O(mentors)."""
        m = self.n_mentors
        chunk = _Chunk(self, [mentee])
        pe = np.zeros(m, np.int64)
        pm = np.arange(m, dtype=np.int64)
        v = self._skill_scratch(chunk).astype(np.int64) if self.skill_specs else None
        ok = self._unblocked(chunk, pe, pm)
        parts: dict[int, F64] = {}
        for s in self.specs:
            score, passed = self._criterion(s, chunk, pe, pm, v)
            parts[s.position] = score
            if s.spec.hard:
                ok &= passed
        total = self._combine(parts, m)
        return total, ok & (total >= self.config.min_score)

    def top_many(
        self,
        mentees: Sequence[Person],
        k: int | None = None,
        *,
        prices: F64 | None = None,
        floors: F64 | None = None,
        budget: int | None = None,
        workers: int = 1,
    ) -> tuple[I64, I64, F64]:
        """Top-k for many mentees: (mentee positions, mentor indices, scores), grouped by mentee
        in input order, each mentee's mentors best first (ties by mentor id).

        prices: one per mentor (aligned with mentor_ids); mentors are then ranked by
            score - price (the returned scores are still the plain scores).
        floors: one per mentee; only pairs with score (- price) >= floor are returned.
        budget: score at most this many candidates per mentee, those with the most skill
            relatedness (ties spread pseudo-randomly): an approximation for large runs.
        workers: > 1 splits the mentees over that many forked processes.
        """
        k = self.config.candidates_per_mentee if k is None else k
        empty = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
        if k <= 0 or self.n_mentors == 0 or not mentees:
            return empty
        size = self.chunk_size()
        starts = list(range(0, len(mentees), size))
        job = _Job(self, mentees, k, prices, floors, budget, size)
        if workers > 1 and len(starts) > 1:
            parts = _parallel(job, starts, workers)
        else:
            parts = [job.run(starts)]
        pe, pm, score = zip(*parts, strict=True)
        return np.concatenate(pe), np.concatenate(pm), np.concatenate(score)

    def chunk_size(self) -> int:
        """Mentees per chunk in top_many."""
        return int(min(4096, max(1, _CHUNK_CELLS // max(self.n_mentors, 1))))

    # --- skills ----------------------------------------------------------------------------

    def _related(self, sought: str) -> tuple[I64, I64]:
        """Mentors related to a sought skill, with 4 x their best relatedness to it."""
        hit = self._postings.get(sought)
        if hit is not None:
            return hit
        tax = self.taxonomy
        canon = tax.canonical(sought)
        # Relatedness > 0 only for the skill itself, its ancestors, its descendants and its
        # siblings; the value itself comes from the taxonomy, as in criteria.py.
        related = {canon, *tax.ancestors(canon), *self._descendants.get(canon, ())}
        parent = tax.parent(canon)
        if parent is not None:
            related.update(self._children.get(parent, ()))
        scored = sorted(
            (code, c)
            for c in related
            if c in self._offered and (code := _REL_CODE.get(tax.relatedness(c, sought), 0))
        )
        if len(scored) == 1:
            code, c = scored[0]
            idx = self._offered[c]
            codes = np.full(idx.size, code, np.int64)
        else:
            best = np.zeros(self.n_mentors, np.int64)
            for code, c in scored:  # ascending, so each mentor keeps its best relatedness
                best[self._offered[c]] = code
            idx = np.flatnonzero(best)
            codes = best[idx]
        if self._postings_size > _POSTINGS_CACHE_ENTRIES:
            self._postings.clear()
            self._postings_size = 0
        self._postings[sought] = (idx, codes)
        self._postings_size += idx.size
        return idx, codes

    def _skill_scratch(self, chunk: _Chunk) -> I32:
        """Dense (mentees x mentors) skill numerators v = sum_i (n - i) * 4 * r_i."""
        m = self.n_mentors
        keys: list[I64] = []
        vals: list[I64] = []
        for e, sought in enumerate(chunk.skills):
            n = len(sought)
            for i, skill in enumerate(sought):
                idx, codes = self._related(skill)
                if idx.size:
                    keys.append(idx + e * m)
                    vals.append(codes * (n - i))
        scratch = np.zeros(chunk.n * m, np.int32)
        if len(keys) == 1:
            scratch[keys[0]] = vals[0]
        elif keys:
            np.add.at(scratch, np.concatenate(keys), np.concatenate(vals).astype(np.int32))
        return scratch

    def _window(self, sought: str) -> tuple[I64, I64, int, I64]:
        """A sought skill's related mentors, best relatedness first and shuffled within a
        relatedness level (fixed seed), the size of the first level, and the dense code row."""
        hit = self._windows.get(sought)
        if hit is None:
            idx, codes = self._related(sought)
            rng = np.random.default_rng(len(self._windows))
            order = np.lexsort((rng.random(idx.size), -codes))
            top = int((codes == codes.max()).sum()) if idx.size else 0
            row = np.zeros(self.n_mentors, np.int64)
            row[idx] = codes
            hit = (idx[order], np.int64(len(self._windows)), top, row)  # type: ignore[assignment]
            if len(self._windows) * self.n_mentors > _POSTINGS_CACHE_ENTRIES:
                self._windows.clear()
            self._windows[sought] = hit  # type: ignore[assignment]
        return hit  # type: ignore[return-value]

    def _budget_candidates(self, c: _Chunk, budget: int, offset: int) -> tuple[I64, I64, I64]:
        """Up to `budget` mentors per sought skill: the most related, rotated per mentee within
        the top relatedness level so that equally good mentors share the mentees."""
        m = self.n_mentors
        keys: list[I64] = []
        window = np.arange(budget)
        for e, sought in enumerate(c.skills):
            for skill in dict.fromkeys(sought):
                idx, salt, top, _ = self._window(skill)
                if idx.size <= budget:
                    take = idx
                elif top > budget:
                    start = ((e + offset) * 2654435761 + int(salt) * 97) % top
                    take = idx[(start + window) % top]
                else:
                    take = idx[:budget]
                keys.append(take + e * m)
        if not keys:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        cells = np.sort(np.concatenate(keys))
        if cells.size > 1:
            cells = cells[np.concatenate(([True], cells[1:] != cells[:-1]))]
        pe, pm = np.divmod(cells, m)
        return pe, pm, self._skill_values(c, pe, pm)

    def _skill_values(self, c: _Chunk, pe: I64, pm: I64) -> I64:
        """Skill numerators v for arbitrary pairs, from each sought skill's dense code row."""
        width = max((len(sought) for sought in c.skills), default=0)
        rid = np.zeros((c.n, max(width, 1)), np.int64)
        weight = np.zeros((c.n, max(width, 1)), np.int64)
        for e, sought in enumerate(c.skills):
            n = len(sought)
            for i, skill in enumerate(sought):
                rid[e, i] = self._code_row(skill)
                weight[e, i] = n - i
        table = self._code_matrix
        v = np.zeros(pe.size, np.int64)
        for i in range(width):
            v += weight[pe, i] * table[rid[pe, i], pm]
        return v

    def _code_row(self, sought: str) -> int:
        """Row of the sought skill in the (skills x mentors) uint8 matrix of 4 x relatedness."""
        r = self._code_rows.get(sought)
        if r is None:
            if len(self._code_rows) + 1 >= self._code_matrix.shape[0]:
                if self._code_matrix.nbytes > _POSTINGS_CACHE_ENTRIES:
                    self._code_rows.clear()  # callers take rows per chunk, after this
                    self._code_matrix[:] = 0
                else:
                    grown = np.zeros((2 * self._code_matrix.shape[0], self.n_mentors), np.uint8)
                    grown[: self._code_matrix.shape[0]] = self._code_matrix
                    self._code_matrix = grown
            r = self._code_rows[sought] = len(self._code_rows) + 1  # row 0 stays zero
            self._code_matrix[r] = self._window(sought)[3]
        return r

    # --- scoring ---------------------------------------------------------------------------

    def _criterion(self, s: _Spec, c: _Chunk, pe: I64, pm: I64, v: I64 | None) -> tuple[F64, Bool]:
        """One criterion's scores and passes for pairs (mentee row pe, mentor pm)."""
        kind = s.spec.kind
        table = c.tables.get(s.position)
        if table is not None:
            score_tab, pass_tab, k = table
            cell = pe * k + self.codes[kind].code[pm]
            return score_tab[cell], pass_tab[cell]
        if kind is Kind.SKILLS:
            assert v is not None
            return (v * 0.25) / c.skill_total[pe], v > 0
        if kind is Kind.AVAILABILITY:
            known = c.avail_known[pe] & self.avail_known[pm]
            base = pe * c.n_bounds
            overlap = np.zeros(pe.size, np.int64)
            counts = self.avail_count[pm]
            for col in range(self.avail_start.shape[0]):
                if col and not (counts > col).any():
                    break
                overlap += c.cover[base + self.avail_end[col][pm]]
                overlap -= c.cover[base + self.avail_start[col][pm]]
            need = s.spec.min_overlap_minutes
            score = np.minimum(1.0, overlap / (2 * need)) if need > 0 else np.ones(pe.size)
            return np.where(known, score, UNKNOWN), ~known | (overlap >= need)
        if kind is Kind.MENTEE_CHOICE:
            known = c.choice_known[pe]
            chosen = np.zeros(pe.size, np.bool_)
            score = np.zeros(pe.size)
            if c.choice_keys.size:
                keys = pe * self.n_mentors + pm
                pos = np.searchsorted(c.choice_keys, keys)
                pos[pos >= c.choice_keys.size] = 0
                chosen = c.choice_keys[pos] == keys
                score = np.where(chosen, c.choice_values[pos], 0.0)
            return np.where(known, score, UNKNOWN), ~known | chosen
        raise ValueError(f"unknown criterion kind {kind!r}")  # pragma: no cover

    def _unblocked(self, c: _Chunk, pe: I64, pm: I64) -> Bool:
        live: Bool = np.ones(pe.size, np.bool_) if self._retired is None else ~self._retired[pm]
        if c.blocked.size == 0:
            return live
        keys = pe * self.n_mentors + pm
        pos = np.searchsorted(c.blocked, keys)
        pos[pos >= c.blocked.size] = 0
        unblocked: Bool = (c.blocked[pos] != keys) & live
        return unblocked

    def _combine(self, parts: Mapping[int, F64], size: int) -> F64:
        """sum(weight * score) / sum(weight) in config order, as criteria.evaluate adds them."""
        if self.total_weight <= 0:
            return np.ones(size)
        weighted = np.zeros(size)
        for s in self.specs:
            if s.weight > 0:
                weighted = weighted + s.spec.weight * parts[s.position]
        return weighted / self.total_weight

    def _scan(
        self, c: _Chunk, pe: I64, pm: I64, v: I64 | None, floor: F64, prices: F64 | None
    ) -> _Found:
        """Eligible pairs whose score (minus price) can reach their mentee's floor, scored.

        Criteria are applied one at a time (self.cascade); after each, a pair is dropped if it
        failed a hard criterion or if the best the remaining criteria could add cannot lift it
        to the floor. The survivors' scores are then combined exactly, in config order.
        """
        weight = self.total_weight
        rest = np.zeros(c.n)
        for s in self.specs:
            if s.weight > 0:
                rest = rest + s.weight * c.best[s.position]
        bound = (floor - _EPS) * weight  # in numerator units
        if prices is None:
            target = bound[pe] - rest[pe]
        else:
            target = bound[pe] + prices[pm] * weight - rest[pe]
        # partial - (rest - best of the criteria seen) >= target  <=>  still reachable
        slack = np.zeros(pe.size)
        parts: dict[int, F64] = {}
        alive: Bool | None = None
        for s in self.cascade:
            if pe.size == 0:
                return _Found.empty()
            score, passed = self._criterion(s, c, pe, pm, v)
            keep = passed if s.spec.hard else None
            if s.weight > 0:
                parts[s.position] = score
                slack += s.weight * (score - c.best[s.position][pe])
                if weight > 0:
                    reach = slack >= target
                    keep = reach if keep is None else keep & reach
            if keep is None:
                continue
            alive = keep if alive is None else alive & keep
            if np.count_nonzero(alive) < _COMPACT_BELOW * alive.size:
                pe, pm, slack, target = pe[alive], pm[alive], slack[alive], target[alive]
                if v is not None:
                    v = v[alive]
                parts = {key: val[alive] for key, val in parts.items()}
                alive = None
        if alive is not None:
            pe, pm = pe[alive], pm[alive]
            parts = {key: val[alive] for key, val in parts.items()}
        if pe.size == 0:
            return _Found.empty()
        ok = self._unblocked(c, pe, pm)
        score = self._combine(parts, pe.size)
        ok &= score >= self.config.min_score
        if prices is None:
            ok &= score >= floor[pe] - _EPS
        else:
            ok &= score - prices[pm] >= floor[pe] - _EPS
        return _Found(pe[ok], pm[ok], score[ok])

    # --- search ------------------------------------------------------------------------------

    def _seed_mask(self, pe: I64, priority: I64, n: int, quota: int) -> Bool:
        """Per mentee, about `quota` pairs with the highest priority (pairs grouped by pe)."""
        if pe.size == 0:
            return np.zeros(0, np.bool_)
        top = int(priority.max()) + 1
        table = np.bincount(pe * top + priority, minlength=n * top).reshape(n, top)
        at_least = np.cumsum(table[:, ::-1], axis=1)[:, ::-1]  # count with priority >= level
        level = np.maximum((at_least >= quota).sum(axis=1) - 1, 0)
        padded = np.concatenate((at_least, np.zeros((n, 1), np.int64)), axis=1)
        above = padded[np.arange(n), level + 1]  # count with priority > level
        lvl = level[pe]
        tie = priority == lvl
        before = np.cumsum(tie) - tie  # ties seen before this pair, over the whole array
        starts = np.searchsorted(pe, np.arange(n))
        first = before[np.minimum(starts, pe.size - 1)]
        ordinal = before - first[pe]
        seed: Bool = (priority > lvl) | (tie & (ordinal < quota - above[pe]))
        return seed

    def _search(
        self,
        c: _Chunk,
        pe: I64,
        pm: I64,
        v: I64 | None,
        priority: I64,
        k: int,
        floor: F64,
        prices: F64 | None,
        budget: int | None,
    ) -> tuple[_Found, F64]:
        """Seed with the highest-priority pairs, then cascade the rest above the new floor.

        With a budget, only the `budget` highest-priority pairs per mentee are scored at all.
        """
        if budget is not None:
            seed = self._seed_mask(pe, priority, c.n, budget)
            found = self._scan(c, pe[seed], pm[seed], None if v is None else v[seed], floor, prices)
            return found, np.maximum(floor, _kth(found, c.n, k, prices))
        quota = max(_SEED_PER_K * k, _SEED_MIN)
        seed = self._seed_mask(pe, priority, c.n, quota)
        first = self._scan(c, pe[seed], pm[seed], None if v is None else v[seed], floor, prices)
        floor = np.maximum(floor, _kth(first, c.n, k, prices))
        rest = ~seed
        second = self._scan(c, pe[rest], pm[rest], None if v is None else v[rest], floor, prices)
        found = first + second
        return found, np.maximum(floor, _kth(found, c.n, k, prices))

    def _reach(self, c: _Chunk, skills: bool) -> F64:
        """The best score each mentee could get from any mentor (with or without skills)."""
        rest = np.zeros(c.n)
        for s in self.specs:
            if s.weight > 0 and (skills or s.spec.kind is not Kind.SKILLS):
                rest = rest + s.weight * c.best[s.position]
        return rest / self.total_weight if self.total_weight > 0 else np.ones(c.n)

    def _top_chunk(
        self,
        c: _Chunk,
        k: int,
        prices: F64 | None,
        floors: F64 | None = None,
        budget: int | None = None,
        offset: int = 0,
    ) -> _Found:
        m = self.n_mentors
        if floors is not None:
            floor = floors.astype(np.float64, copy=True)
        else:
            floor = np.full(c.n, -np.inf if prices is not None else self.config.min_score)
        # With prices, a mentor priced above (best reachable score - floor) cannot qualify.
        cap = None if prices is None else self._reach(c, True) - floor + _EPS
        if self.skill_specs and budget is not None:
            pe, pm, v = self._budget_candidates(c, budget, offset)
            if cap is not None:
                ok = prices[pm] <= cap[pe]  # type: ignore[index]
                pe, pm, v = pe[ok], pm[ok], v[ok]
            priority = v * _TIE_LEVELS + _tie_break(pe + offset, pm)
            found, floor = self._search(c, pe, pm, v, priority, k, floor, prices, budget)
            if not self.skills_hard:
                counts = np.bincount(found.pe, minlength=c.n)
                need = np.flatnonzero(counts < k)
                if need.size:
                    # few candidates: score everyone else too, within the budget
                    slot = np.full(c.n, -1, np.int64)
                    slot[need] = np.arange(need.size)
                    mine = slot[pe] >= 0
                    taken = np.zeros((need.size, m), np.bool_)
                    taken[slot[pe[mine]], pm[mine]] = True
                    grid = ~taken
                    if cap is not None:
                        grid &= prices[None, :] <= cap[need][:, None]  # type: ignore[index]
                    rows, cols = np.nonzero(grid)
                    pe0, pm0 = need[rows], cols.astype(np.int64)
                    v0 = self._skill_values(c, pe0, pm0)
                    more, _ = self._search(
                        c,
                        pe0,
                        pm0,
                        v0,
                        v0 * _TIE_LEVELS + _tie_break(pe0 + offset, pm0),
                        k,
                        floor,
                        prices,
                        budget,
                    )
                    found = found + more
        elif self.skill_specs:
            scratch = self._skill_scratch(c)
            cells = np.flatnonzero(scratch)
            pe, pm = np.divmod(cells, m)
            v = scratch[cells].astype(np.int64)
            if cap is not None:
                ok = prices[pm] <= cap[pe]  # type: ignore[index]
                pe, pm, v = pe[ok], pm[ok], v[ok]
            found, floor = self._search(c, pe, pm, v, v, k, floor, prices, budget)
            if not self.skills_hard:
                # Mentors unrelated to every sought skill score 0 on SKILLS; scan them only for
                # mentees whose k-th best could be beaten without skills.
                reach = self._reach(c, False)
                if prices is not None:
                    reach = reach - float(prices.min(initial=0.0))
                need = np.flatnonzero(reach >= floor - _EPS)
                if need.size:
                    grid = scratch.reshape(c.n, m)[need] == 0
                    if cap is not None:
                        grid &= prices[None, :] <= cap[need][:, None]  # type: ignore[index]
                    rows, cols = np.nonzero(grid)
                    pe0, pm0 = need[rows], cols.astype(np.int64)
                    zeros = np.zeros(pe0.size, np.int64)
                    more, _ = self._search(c, pe0, pm0, zeros, zeros, k, floor, prices, None)
                    found = found + more
        else:
            pe = np.repeat(np.arange(c.n, dtype=np.int64), m)
            pm = np.tile(np.arange(m, dtype=np.int64), c.n)
            if cap is not None:
                ok = prices[pm] <= cap[pe]  # type: ignore[index]
                pe, pm = pe[ok], pm[ok]
            pri = np.zeros(pe.size, np.int64) if budget is None else _tie_break(pe + offset, pm)
            found, _ = self._search(c, pe, pm, None, pri, k, floor, prices, budget)
        return _select(found, c.n, k, prices)


def _tie_break(pe: I64, pm: I64) -> I64:
    """A deterministic pseudo-random level in [0, _TIE_LEVELS) per pair, so that a budget cut
    through many equally skilled mentors spreads mentees over them instead of favouring the
    smallest ids."""
    mixed = (pe * 2654435761 + pm * 2246822519) & 0xFFFFFFFF
    return (mixed >> 8) % _TIE_LEVELS


def _kth(found: _Found, n: int, k: int, prices: F64 | None) -> F64:
    """Per mentee, the k-th best (score, or score - price) among found; -inf if fewer."""
    out = np.full(n, -np.inf)
    if found.pe.size == 0:
        return out
    value = found.score if prices is None else found.score - prices[found.pm]
    counts = np.bincount(found.pe, minlength=n)
    width = int(counts.max())
    if width < k:
        return out
    order = np.argsort(found.pe, kind="stable")
    pe = found.pe[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ordinal = np.arange(pe.size) - starts[pe]
    grid = np.full((n, width), -np.inf)
    grid[pe, ordinal] = value[order]
    kth = -np.partition(-grid, k - 1, axis=1)[:, k - 1]
    out[counts >= k] = kth[counts >= k]
    return out


def _select(found: _Found, n: int, k: int, prices: F64 | None) -> _Found:
    """Each mentee's k best by (score desc, mentor index asc), grouped by mentee."""
    if found.pe.size == 0:
        return found
    value = found.score if prices is None else found.score - prices[found.pm]
    kth = _kth(found, n, k, prices)
    keep = value >= kth[found.pe]
    pe, pm, score, value = found.pe[keep], found.pm[keep], found.score[keep], value[keep]
    order = np.lexsort((pm, -value, pe))
    pe, pm, score = pe[order], pm[order], score[order]
    counts = np.bincount(pe, minlength=n)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ordinal = np.arange(pe.size) - starts[pe]
    first = ordinal < k
    return _Found(pe[first], pm[first], score[first])


@dataclass(frozen=True, slots=True)
class _Job:
    index: CandidateIndex
    mentees: Sequence[Person]
    k: int
    prices: F64 | None
    floors: F64 | None
    budget: int | None
    size: int

    def run(self, starts: Sequence[int]) -> tuple[I64, I64, F64]:
        out_e: list[I64] = [np.zeros(0, np.int64)]
        out_m: list[I64] = [np.zeros(0, np.int64)]
        out_s: list[F64] = [np.zeros(0, np.float64)]
        for start in starts:
            block = self.mentees[start : start + self.size]
            floors = None if self.floors is None else self.floors[start : start + len(block)]
            found = self.index._top_chunk(
                _Chunk(self.index, block), self.k, self.prices, floors, self.budget, start
            )
            out_e.append(found.pe + start)
            out_m.append(found.pm)
            out_s.append(found.score)
        return np.concatenate(out_e), np.concatenate(out_m), np.concatenate(out_s)


_FORKED_JOB: _Job | None = None


def _run_forked(starts: Sequence[int]) -> tuple[I64, I64, F64]:
    assert _FORKED_JOB is not None
    return _FORKED_JOB.run(starts)


def _parallel(job: _Job, starts: list[int], workers: int) -> list[tuple[I64, I64, F64]]:
    """Split chunks over forked processes (they inherit the index; only results travel)."""
    global _FORKED_JOB
    import multiprocessing

    # Contiguous shares keep the output in mentee order.
    per = -(-len(starts) // workers)
    shares = [starts[i : i + per] for i in range(0, len(starts), per)]
    _FORKED_JOB = job
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(_run_forked, shares)
    finally:
        _FORKED_JOB = None


def generate_pairs(
    mentees: Sequence[Person],
    mentors: Sequence[Person],
    config: MatchingConfig,
    taxonomy: Taxonomy = EMPTY_TAXONOMY,
    constraints: Constraints = _NO_CONSTRAINTS,
    *,
    exact_cells: int = EXACT_CELLS,
    budget: int = BUDGET,
    workers: int = 1,
) -> list[Pair]:
    """Each mentee's top candidates_per_mentee allowed mentors, ready for solve_assignment.

    Exact (see top()) while mentees x mentors <= exact_cells; above that each mentee's search
    is limited to `budget` candidates (see the module docstring). A mentee listed more than
    once is considered once (its first occurrence).
    """
    index = CandidateIndex(mentors, config, taxonomy, constraints)
    people = _unique(mentees)
    cut = None if len(people) * index.n_mentors <= exact_cells else budget
    pe, pm, score = index.top_many(people, budget=cut, workers=workers)
    return _pairs(people, index, pe, pm, score)


def _unique(mentees: Sequence[Person]) -> list[Person]:
    seen: set[str] = set()
    out: list[Person] = []
    for p in mentees:
        if p.participant_id not in seen:
            seen.add(p.participant_id)
            out.append(p)
    return out


def _pairs(
    people: Sequence[Person], index: CandidateIndex, pe: I64, pm: I64, score: F64
) -> list[Pair]:
    mentee_ids = [p.participant_id for p in people]
    mentor_ids = index.mentor_ids
    return [
        Pair(mentee_ids[e], mentor_ids[j], s)
        for e, j, s in zip(pe.tolist(), pm.tolist(), score.tolist(), strict=True)
    ]
