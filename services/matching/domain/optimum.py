"""Optimal bulk matching over ALL allowed pairs, proved by LP duality. Pure: no I/O (it may
fork worker processes for speed).

The objective is solve_assignment's: most mentees matched, then the highest total score, over
every eligible pair (allowed by evaluate() and scoring at least min_score; with positive=True
also above 0), each mentor within capacity. As an LP: maximise sum (B + w) x over pairs, each
mentee at most once, mentor m at most cap_m times, with B = (mentees + 1) * SCORE_SCALE so that
one more match outweighs any total score (w are scores scaled to integers, assignment.py).
Bipartite b-matching LPs have integral optima, so an assignment x is optimal over ALL eligible
pairs as soon as some prices p_m >= 0 (mentors) and utilities u_e >= 0 (mentees) satisfy
u_e + p_m >= B + w_em for every eligible pair and sum(u) + sum(cap * p) = sum((B + w) x).

Finding x and (p, u) without scoring every pair exactly (column generation):

1. Start: each mentee's few best mentors and each mentor's few best mentees, found on
   approximate dense blocks (dense.py), with their approximate scores. Solve; the LP duals
   of that problem are the reference prices. Any prices would do (step 2 makes no
   assumption about them); good ones keep the pool small. Every solve (augment.py) returns
   exact integer duals with the assignment, and each round's solve starts from the last
   one's: a repair, not a solve from scratch.
2. Pricing: every pair whose reduced profit B + w - p - u at the reference duals is above
   -MARGIN (in score units; less if that would keep more than _POOL_PER_MENTEE pairs per
   mentee) is found on the dense blocks and scored exactly: the pool. Any eligible pair
   outside the pool has reduced profit below -MARGIN at the reference duals. A mentee with
   more such pairs than _POOL_PER_MENTEE keeps its best (at poor prices every mentee passes
   with most mentors; where scores take few values hundreds of pairs tie), and its utility
   in the reference is raised by what its pairs left out could gain: the statement holds at
   that reference, and step 3 works from it. The pool also gets each mentee's best pair and
   each mentor's _COVER best, however low: a side with no pair in the pool puts no pressure
   on the other's duals, and the next solve would price mentors as if nobody wanted them.
   A pass also proves what it can: its duals, raised by the most each mentee gains from any
   pair found or left out, bound every assignment (step 4 without the drift).
3. Solve on the pool; new duals (p', u'). A pair outside the pool now has reduced profit below
   -MARGIN + (p_m - p'_m) + (u_e - u'_e): it cannot improve the assignment unless its mentor's
   price or its mentee's utility moved by a lot. Those few mentors (columns) and mentees (rows)
   are rescanned exactly at the new duals, splitting MARGIN between the two sides to scan the
   fewest cells. Pairs that would improve the assignment join the pool; repeat from 3. If the
   duals drift so far that rescans would cost more than a pricing pass, go back to 2: at the
   new duals, except that a full mentor a solve priced below B keeps its last price while
   the solves still gain (steady: priced as if nobody wanted it, it would have every mentee
   gain about B with it, a flood of most of the program's pairs).
4. Nothing left to improve: (p', u') is feasible for every eligible pair and tight for the
   assignment, which is then optimal over all eligible pairs (up to the 1e-6 quantisation of
   scores). This is checked, not assumed: the returned Bound says what was proved.

Stopped early (max_rounds, time_limit, or once within the given gap), the result is still
feasible and the Bound is still an upper bound on the best achievable total: the utilities are
raised by the most any pair outside the pool could still gain (exactly for rescanned rows and
columns, by the drift bound above for the others), which keeps the duals feasible (weak
duality). With a gap, a round whose rescans would cost more than a pricing pass still rescans
once to bound the assignment, and prices again only if that bound is not close enough.

Memory: dense blocks of bounded size, the pool (pairs near the optimum), per-mentee and
per-mentor arrays: nothing grows as mentees x mentors. Each worker keeps the blocks it has
encoded (their mentee side: rows x codes, not rows x mentors) up to _CACHE_BYTES, so that
later passes skip most of the encoding.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from services.matching.domain.assignment import SCORE_SCALE, Assignment
from services.matching.domain.augment import opening_prices, repair
from services.matching.domain.candidates import CandidateIndex, _unique
from services.matching.domain.dense import (
    Block,
    BlockSpec,
    ColumnSets,
    SkillRows,
    plan_blocks,
    tie_break,
)
from services.matching.domain.model import Constraints, MatchingConfig, Person
from services.matching.domain.taxonomy import EMPTY_TAXONOMY, Taxonomy

__all__ = ["MARGIN", "START_K", "Bound", "MatchResult", "match"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
Pairs = tuple[I64, I64, F64]
# Pairs, then the mentees cut short and a bound on the reduced profit of their pairs left out.
Capped = tuple[I64, I64, F64, I64, I64]

# Each mentee's best mentors and each mentor's best mentees in the starting pair set.
START_K = 8
START_PER_MENTOR = 10
# Pricing keeps pairs whose reduced profit is above -MARGIN (score units): wider costs a
# bigger solve, narrower more rescans when the duals move.
MARGIN = 0.04
# Rescans are worth it while they cover at most this share of all cells; else price again.
_RESCAN_SHARE = 0.05
# With a gap to stop at, bounding a round is worth rescanning up to this share of all cells
# (pricing again scans them all).
_BOUND_SHARE = 0.25
# Pricing keeps at most this many pairs per mentee (the margin shrinks to fit).
_POOL_PER_MENTEE = 16
# ... and each mentor's this many best, however far below the margin (dense._wanted).
_COVER = 4
# A worker keeps its encoded blocks between passes while they take at most this many bytes;
# past that the others are encoded again each time (memory stays bounded whatever the size).
_CACHE_BYTES = 1 << 30
# ... and their fused tables too (up to a byte per cell) while they cover at most this many.
_TABLE_CELLS = 48_000_000
_NO_CONSTRAINTS = Constraints()


@dataclass(frozen=True, slots=True)
class Bound:
    """What is proved about an assignment against every eligible pair.

    upper: an upper bound on the total score of any assignment matching at least as many
        mentees (in scores rounded to 1e-6, as the solver sees them).
    achieved: the assignment's own total.
    max_matched: no assignment matches more mentees.
    improving: mentees that might still gain from a pair not yet considered; 0 means the
        assignment is optimal over all eligible pairs.
    """

    upper: float
    achieved: float
    max_matched: bool
    improving: int

    @property
    def optimal(self) -> bool:
        return self.improving == 0

    @property
    def ratio(self) -> float:
        return self.achieved / self.upper if self.upper > 0 else 1.0

    def within(self, gap: float) -> bool:
        """Proved to match the most mentees, with a total at most `gap` (a share of the
        bound) below the best achievable. Proved optimal is within any gap (the bound is in
        scores rounded to 1e-6, the total is not)."""
        close = self.optimal or self.upper - self.achieved <= gap * abs(self.upper)
        return self.max_matched and close


@dataclass(frozen=True, slots=True)
class MatchResult:
    assignments: list[Assignment]  # sorted by mentee id
    pairs: int  # pairs in the last solve
    rounds: int  # solves
    bound: Bound
    # Mentees for whom at least one eligible pair was seen (a mentee left out may still have
    # one: the search is for good pairs, not for every pair).
    with_candidates: frozenset[str] = frozenset()
    seconds: dict[str, float] = field(default_factory=dict)


# --- the dense blocks, in this process or in forked workers -----------------------------------


class _Worker:
    """A share of the blocks, encoded on first use, answering the coordinator's queries."""

    def __init__(
        self,
        index: CandidateIndex,
        mentees: Sequence[Person],
        specs: Sequence[BlockSpec],
        positive: bool,
    ) -> None:
        self.index = index
        self.mentees = mentees
        self.specs = list(specs)
        self.positive = positive
        self.skill_rows = SkillRows(index)
        self.columns = ColumnSets(index)
        self.blocks: list[Block | None] = [None] * len(self.specs)
        self.kept = 0  # bytes
        self.tables = sum(spec.cells for spec in self.specs) <= _TABLE_CELLS

    def _block(self, i: int) -> Block:
        block = self.blocks[i]
        if block is None:
            block = Block(
                self.index,
                self.mentees,
                self.specs[i],
                self.skill_rows,
                self.positive,
                self.columns,
            )
            size = block.nbytes
            if self.kept + size <= _CACHE_BYTES:
                if self.tables:
                    block.keep_tables()
                    size = block.nbytes
                self.blocks[i] = block
                self.kept += size
        return block

    def best(self, k: int, per_mentor: int) -> Pairs:
        """Each mentee's k best cells and each mentor's per_mentor best (over this worker's
        blocks), with APPROXIMATE scores (dense.Block.tops): only a start for the prices."""
        m = self.index.n_mentors
        value = np.full((m, per_mentor), -np.inf)
        mentee = np.zeros((m, per_mentor), np.int64)
        worst = np.full(m, -np.inf)  # value.min(axis=1), kept so most blocks change nothing
        parts: list[Pairs] = []
        for i in range(len(self.specs)):
            block = self._block(i)
            r, q, v, best, best_row = block.tops(k)
            parts.append((block.rows[r], block.cols[q], v))
            better = np.flatnonzero(best > worst[block.cols])
            j = block.cols[better]
            slot = value[j].argmin(axis=1)
            value[j, slot] = best[better]
            mentee[j, slot] = block.rows[best_row[better]]
            worst[j] = value[j].min(axis=1)
        j, slot = np.nonzero(np.isfinite(value))
        parts.append((mentee[j, slot], j.astype(np.int64), value[j, slot]))
        pe, pm, score = _concat(parts)
        _, first = np.unique(pe * m + pm, return_index=True)
        return pe[first], pm[first], score[first]

    def above(self, price: F64, floor: F64, rows: I64 | None, cols: I64 | None) -> Pairs:
        """Pairs with exact score - price[mentor] >= floor[mentee] (a superset), in the given
        mentees' rows (all if None) and the given mentors' columns (all if None)."""
        parts: list[Pairs] = []
        wanted = None
        if rows is not None:
            wanted = np.zeros(len(self.mentees), np.bool_)
            wanted[rows] = True
        for i, spec in enumerate(self.specs):
            local = None
            if wanted is not None:
                local = np.flatnonzero(wanted[spec.rows])
                if local.size == 0:
                    continue
            pos = None
            block = None
            if cols is not None:
                block = self._block(i)
                pos = block.position(cols)
                pos = np.sort(pos[pos >= 0])
                if pos.size == 0:
                    continue
            block = block or self._block(i)
            parts.append(block.above(price[block.cols], floor[block.rows], local, pos))
        found: Pairs = _concat(parts)
        return found

    def capped(self, p: I64, u: I64, big: int, margin: float, limit: int, keep: int) -> Capped:
        """At duals (p, u): every pair with reduced profit >= -margin (score units), but
        at most `limit` per mentee, its best by reduced profit (ties spread by tie_break); the
        mentees cut short and, for each, a bound on the reduced profit (scaled) of any of its
        pairs left out (exact when the pairs left out were scored, see dense.Block.capped).
        Also, whatever their reduced profit, each mentee's best pair if it has none above
        -margin and about each mentor's `keep` best (over this worker's blocks)."""
        price = (p - big) / SCORE_SCALE
        line = u / SCORE_SCALE
        floor = line - margin - 1e-6
        n_m = self.index.n_mentors
        lowest = np.iinfo(np.int64).min
        # Each mentor's best pairs so far: reduced profit, mentee, score.
        best = np.full((n_m, keep), lowest, np.int64)
        best_e = np.zeros((n_m, keep), np.int64)
        best_s = np.zeros((n_m, keep))
        worst = np.full(n_m, -np.inf)  # best.min(axis=1) in score units, for the blocks
        parts: list[Capped] = []
        for i in range(len(self.specs)):
            block = self._block(i)
            cover = worst[block.cols]
            (pe, pm, score), cut, bound = block.capped(
                price[block.cols],
                floor[block.rows],
                line[block.rows],
                limit,
                cover,
                cover < -margin,
            )
            # score - price < bound: reduced profit below bound (scaled) - u, give or take
            # the rounding of the score (0.5) and of the prices in floats.
            left = np.ceil(bound * SCORE_SCALE).astype(np.int64) - u[cut] + 4
            gain = big + np.rint(score * SCORE_SCALE).astype(np.int64) - p[pm] - u[pe]
            kept = _keep_best(pe, pm, gain, limit)
            if not kept.all():
                dropped = np.full(len(self.mentees), lowest, np.int64)
                np.maximum.at(dropped, pe[~kept], gain[~kept])
                np.maximum.at(dropped, cut, left)
                cut = np.flatnonzero(dropped > lowest)
                left = dropped[cut]
            parts.append((pe[kept], pm[kept], score[kept], cut, left))
            # Each mentor's best pair of the block replaces its worst so far if better.
            first = np.flatnonzero(_top(pm, pe, gain.astype(np.float64), 1, tie_break(pe, pm)))
            j = pm[first]
            better = gain[first] > best[j].min(axis=1)
            first, j = first[better], j[better]
            slot = best[j].argmin(axis=1)
            best[j, slot], best_e[j, slot], best_s[j, slot] = gain[first], pe[first], score[first]
            low = best[j].min(axis=1)
            worst[j] = np.where(low > lowest, low / SCORE_SCALE, -np.inf)
        j, slot = np.nonzero(best > lowest)
        none = np.zeros(0, np.int64)
        parts.append((best_e[j, slot], j.astype(np.int64), best_s[j, slot], none, none))
        capped: Capped = _concat(parts, 5)
        return capped


def _keep_best(pe: I64, pm: I64, gain: I64, limit: int) -> Bool:
    """Which pairs are among their mentee's `limit` best by gain (ties spread by tie_break);
    only the mentees with more than that are sorted."""
    _, group, count = np.unique(pe, return_inverse=True, return_counts=True)
    crowded = np.flatnonzero(count[group] > limit)
    keep = np.ones(pe.size, np.bool_)
    if crowded.size:
        a, b = pe[crowded], pm[crowded]
        keep[crowded] = _top(a, b, gain[crowded].astype(np.float64), limit, tie_break(a, b))
    return keep


def _concat(parts: Sequence[Any], arity: int = 3) -> Any:
    """Pairs (or Capped) from parts, concatenated field by field."""
    if not parts:
        kinds = (np.int64, np.int64, np.float64, np.int64, np.int64)
        return tuple(np.zeros(0, kind) for kind in kinds[:arity])
    return tuple(np.concatenate(field) for field in zip(*parts, strict=True))


def _serve(conn: Connection, worker: _Worker) -> None:
    """A forked worker's loop: (method, args) in, ("ok", result) or ("error", text) out."""
    while True:
        message = conn.recv()
        if message is None:
            return
        name, args = message
        try:
            conn.send(("ok", getattr(worker, name)(*args)))
        except BaseException:  # reported to the coordinator, which raises
            conn.send(("error", traceback.format_exc()))


class _Team:
    """The blocks split over `workers` forked processes (or this one), balanced by cells."""

    def __init__(
        self,
        index: CandidateIndex,
        mentees: Sequence[Person],
        specs: Sequence[BlockSpec],
        workers: int,
        positive: bool,
    ) -> None:
        shares: list[list[BlockSpec]] = [[] for _ in range(max(1, min(workers, len(specs))))]
        load = [0] * len(shares)
        for spec in sorted(specs, key=lambda s: -s.cells):
            i = load.index(min(load))
            shares[i].append(spec)
            load[i] += spec.cells
        self.local: _Worker | None = None
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        if len(shares) == 1:
            self.local = _Worker(index, mentees, shares[0], positive)
            return
        context = multiprocessing.get_context("fork")
        for share in shares:
            parent, child = context.Pipe()
            proc = context.Process(
                target=_serve, args=(child, _Worker(index, mentees, share, positive)), daemon=True
            )
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)

    def __call__(self, name: str, *args: Any) -> Any:
        if self.local is not None:
            return getattr(self.local, name)(*args)
        for conn in self.conns:
            conn.send((name, args))
        parts: list[Any] = []
        for conn in self.conns:
            status, value = conn.recv()
            if status != "ok":
                raise RuntimeError(f"matching worker failed:\n{value}")
            parts.append(value)
        return _concat(parts, len(parts[0]))

    def __enter__(self) -> _Team:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except OSError:  # the worker is gone already
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()


# --- the restricted problem: a pool of exactly scored pairs -------------------------------------


class _Pool:
    """Eligible pairs with exact scores, kept sorted by (mentee, mentor) and unique."""

    def __init__(self, n_e: int, n_m: int) -> None:
        self.n_e, self.n_m = n_e, n_m
        self.big = (n_e + 1) * SCORE_SCALE
        self.pe = np.zeros(0, np.int64)
        self.pm = np.zeros(0, np.int64)
        self.score = np.zeros(0, np.float64)
        self.w = np.zeros(0, np.int64)  # scaled integer scores

    def keys(self) -> I64:
        return self.pe * self.n_m + self.pm

    def add(self, pe: I64, pm: I64, score: F64) -> int:
        """Add pairs not yet in the pool; returns how many were new."""
        keys = np.concatenate((self.keys(), pe * self.n_m + pm))
        _, first = np.unique(keys, return_index=True)
        before = self.pe.size
        self.pe = np.concatenate((self.pe, pe))[first]
        self.pm = np.concatenate((self.pm, pm))[first]
        self.score = np.concatenate((self.score, score))[first]
        self.w = np.rint(self.score * SCORE_SCALE).astype(np.int64)
        return self.pe.size - before

    def keep(self, mask: Bool) -> None:
        self.pe, self.pm, self.score, self.w = (
            self.pe[mask],
            self.pm[mask],
            self.score[mask],
            self.w[mask],
        )


@dataclass(slots=True)
class _Solution:
    chosen: Pairs  # the assignment (its pairs, exactly scored)
    mate: I64  # each mentee's mentor, or -1
    p: I64  # mentor prices
    u: I64  # mentee utilities
    primal: int  # sum (B + w) over the chosen pairs


def _solve(pool: _Pool, caps: I64, last: _Solution | None = None) -> _Solution:
    """The pool's optimum and its exact LP duals (augment.py), from the last round's solution
    or, in the first round, from opening prices."""
    profit = pool.big + pool.w
    if last is None:
        nobody = np.full(pool.n_e, -1, np.int64)
        done = repair(pool.pe, pool.pm, profit, caps, opening_prices(pool.pm, profit, caps), nobody)
    else:
        done = repair(pool.pe, pool.pm, profit, caps, last.p, last.mate)
    chosen = (pool.pe[done.chosen], pool.pm[done.chosen], pool.score[done.chosen])
    mate = np.full(pool.n_e, -1, np.int64)
    mate[chosen[0]] = chosen[1]
    primal = int(profit[done.chosen].sum())
    return _Solution(chosen, mate, done.p, done.u, primal)


def _opening(sol: _Solution, pool: _Pool, caps: I64) -> _Solution:
    """The start's solution with each mentor priced at least as at the opening
    (augment.opening_prices: what the first start pair it must turn away pays), and the
    mentees' utilities what their best start pair then leaves them. A start of a few pairs
    per mentee leaves mentors with no competition among them, priced at 0 where the optimum
    has every place wanted: every mentee left unmatched would gain B + score with each of
    them, and the first pricing would find most pairs of the program. Any prices serve as a
    reference, and as a start for repair."""
    p = np.maximum(sol.p, opening_prices(pool.pm, pool.big + pool.w, caps))
    u = np.zeros(pool.n_e, np.int64)
    np.maximum.at(u, pool.pe, pool.big + pool.w - p[pool.pm])
    return _Solution(sol.chosen, sol.mate, p, u, sol.primal)


def _top(
    group: I64, other: I64, score: F64, k: int, ties: npt.NDArray[np.uint64] | None = None
) -> Bool:
    """Within each group, the k best by score (ties by `ties`, else by the other index)."""
    order = np.lexsort((other if ties is None else ties, -score, group))
    g = group[order]
    starts = np.searchsorted(g, g, side="left")
    keep = np.zeros(group.size, np.bool_)
    keep[order] = np.arange(g.size) - starts < k
    return keep


# --- the certificate -----------------------------------------------------------------------------


def _split(a: I64, b: I64, margin: int, n_e: int, n_m: int) -> tuple[I64, I64]:
    """Mentors (a_m > t) and mentees (b_e > margin - t) to rescan, with t chosen so that the
    rescans cover the fewest cells; every other pair has a_m + b_e <= margin."""
    a_sorted, b_sorted = np.sort(a), np.sort(b)
    candidates = np.unique(np.concatenate(([0, margin], a, margin - b)))
    cols = a.size - np.searchsorted(a_sorted, candidates, side="right")
    rows = b.size - np.searchsorted(b_sorted, margin - candidates, side="right")
    cost = cols * n_e + rows * n_m
    t = candidates[int(np.argmin(cost))]
    return np.flatnonzero(b > margin - t), np.flatnonzero(a > t)


def _bound(sol: _Solution, slack: I64, caps: I64, big: int) -> Bound:
    """What the duals, with each mentee's utility raised by its slack, prove about sol."""
    dual = int((sol.u + slack).sum()) + int((caps * sol.p).sum())
    improving = int((slack > 0).sum())
    if improving == 0 and dual != sol.primal:  # pragma: no cover - repair() ends tight
        raise RuntimeError("certificate failed: duals feasible but not tight")
    over = dual - big * int(sol.chosen[0].size)  # the bound on the total, scaled
    return Bound(
        upper=over / SCORE_SCALE,
        achieved=float(sol.chosen[2].sum()),
        max_matched=over < big,
        improving=improving,
    )


def match(
    mentees: Sequence[Person],
    mentors: Sequence[Person],
    config: MatchingConfig,
    taxonomy: Taxonomy = EMPTY_TAXONOMY,
    constraints: Constraints = _NO_CONSTRAINTS,
    *,
    positive: bool = False,
    workers: int = 1,
    start_k: int = START_K,
    margin: float = MARGIN,
    max_rounds: int = 50,
    time_limit: float | None = None,
    gap: float = 0.0,
) -> MatchResult:
    """The optimal assignment over all eligible pairs, and what is proved about it.

    positive: pairs scoring 0 are not eligible either (the planner never proposes them).
    workers: > 1 forks that many processes for the dense passes.
    max_rounds, time_limit (seconds): stop solving after that many solves or that long; the
        result is then feasible and bounded (Bound.improving > 0 when not proved optimal).
    gap: stop as soon as the assignment is proved to match the most mentees with a total
        within this share of the best achievable (Bound.within); 0 proves the optimum. It
        saves the rounds that only close the last fraction of a percent on large programs.
    A mentee listed more than once is considered once (its first occurrence).
    """
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        seconds[name] = seconds.get(name, 0.0) + now - since
        return now

    index = CandidateIndex(mentors, config, taxonomy, constraints)
    people = _unique(mentees)
    n_e, n_m = len(people), index.n_mentors
    caps = np.fromiter((p.free_slots for p in index.mentors), np.int64, n_m)
    pool = _Pool(n_e, n_m)
    big = pool.big
    margin_w = round(margin * SCORE_SCALE)
    specs = plan_blocks(index, people)
    t = lap("index", started)
    seen = np.zeros(n_e, np.bool_)

    def price(p: I64) -> F64:
        return (p - big) / SCORE_SCALE

    def reduced(pe: I64, pm: I64, score: F64, s: _Solution) -> I64:
        w = np.rint(score * SCORE_SCALE).astype(np.int64)
        r: I64 = big + w - s.p[pm] - s.u[pe]
        return r

    # The passes already run one process per core (workers): BLAS threads (dense.py's
    # matrix products) on top of them would only fight over the cores.
    with (
        threadpool_limits(limits=1, user_api="blas"),
        _Team(index, people, specs, workers, positive) as team,
    ):
        # The start pool has approximate scores (within EPS, a few pairs not even allowed):
        # its solve only provides the first prices. Every later pool is scored exactly.
        pe, pm, score = team("best", start_k, START_PER_MENTOR)
        ties = tie_break(pe, pm)
        keep = _top(pe, pm, score, start_k, ties) | _top(pm, pe, score, START_PER_MENTOR, ties)
        pool.add(pe[keep], pm[keep], np.maximum(score[keep], 0.0))
        t = lap("start", t)
        sol = start = _opening(_solve(pool, caps), pool, caps)
        rounds = 1
        t = lap("solve", t)

        def pricing(s: _Solution) -> tuple[int, _Solution, I64]:
            """Pool := every pair with reduced profit >= -margin at s (fewer if that is too
            many: then the margin shrinks), but at most _POOL_PER_MENTEE per mentee, its best
            (Worker.capped), and the assignment's pairs. Returns the margin used, in scaled
            units; the reference duals the pool stands for: s, with the utility of each mentee
            cut short raised above what any of its pairs left out could gain, so that every
            pair outside the pool is below -margin at the reference (what the rescans rely
            on); and each mentee's slack at s: the most any of its pairs gains (what s proves,
            see _bound: every pair's reduced profit is known or bounded)."""
            pe, pm, score, short, left = team(
                "capped", s.p, s.u, big, margin, _POOL_PER_MENTEE, _COVER
            )
            seen[pe] = True
            gain = reduced(pe, pm, score, s)
            slack = np.zeros(n_e, np.int64)
            np.maximum.at(slack, pe, gain)
            np.maximum.at(slack, short, left)
            used = margin_w
            most = _POOL_PER_MENTEE * max(n_e, 1)
            if gain.size > most:
                # Keep the `most` best: those above the next one's reduced profit (or all
                # with reduced profit >= 0). Every pair left out is below -used.
                cut = int(-np.partition(-gain, most)[most])  # the (most + 1)-th largest
                used = max(0, min(used, -cut - 1))
            near = gain >= -used
            # ... and each mentee's best, also when below, and each mentor's _COVER best: one
            # with no pair in the pool puts no pressure on the prices of those it would compete
            # for (see dense._wanted).
            has = np.zeros(n_e, np.bool_)
            has[pe[near]] = True
            ranked = gain.astype(np.float64)
            ties = tie_break(pe, pm)
            near |= _top(pe, pm, ranked, 1, ties) & ~has[pe]
            near |= _top(pm, pe, ranked, _COVER, ties)
            pool.keep(np.zeros(pool.pe.size, np.bool_))
            pool.add(pe[near], pm[near], score[near])
            if s is not start:  # the start's pairs are approximate (maybe not even allowed)
                pool.add(*s.chosen)  # the next solve starts from the assignment
            # Raised by at most what a pair left out gains plus the margin: then those pairs
            # are at most -margin at the reference, as the pairs priced out are.
            lift = np.zeros(n_e, np.int64)
            np.maximum.at(lift, short, np.maximum(left + used, 0))
            return used, _Solution(s.chosen, s.mate, s.p, s.u + lift, s.primal), slack

        def certify(s: _Solution, rows: I64, cols: I64, a: I64, b: I64) -> tuple[Pairs, I64, I64]:
            """The rescanned rows' and columns' pairs with their reduced profit at s, and each
            mentee's slack: the most any pair could still gain it (exact for rescanned rows
            and columns, by the drift bound for the others; see the module docstring)."""
            floor = s.u / SCORE_SCALE - margin_w / SCORE_SCALE - 1e-6
            found: Pairs = _concat(
                [
                    team("above", price(s.p), floor, rows, None) if rows.size else _concat([]),
                    team("above", price(s.p), floor, None, cols) if cols.size else _concat([]),
                ]
            )
            gain = reduced(*found, s)
            slack = np.zeros(n_e, np.int64)
            np.maximum.at(slack, found[0], gain)
            # pairs outside the pool and the rescans: reduced < a_m + b_e - margin
            others = np.ones(n_m, np.bool_)
            others[cols] = False
            drift = int(a[others].max(initial=np.iinfo(np.int64).min // 4))
            scanned = np.zeros(n_e, np.bool_)
            scanned[rows] = True
            outside = np.where(scanned, 0, drift + b - margin_w)
            return found, gain, np.maximum(np.maximum(slack, outside), 0)

        # The start's scores are approximate and its prices raised (_opening): it proves
        # nothing.
        margin_w, ref, _ = pricing(sol)
        t = lap("price", t)

        def done(proved: Bound) -> bool:
            return proved.optimal or (gap > 0 and proved.within(gap))

        last_primal = -1

        def steady(s: _Solution) -> tuple[_Solution, bool]:
            """What to price at after the solve s: s, except that a mentor whose price s has
            let fall below B keeps the reference's price while that brings the solves on;
            and whether that is s itself. A solve over a pool without the mentees a mentor
            competes for prices it as if nobody wanted it, and pricing at that would find every
            mentee gaining about B with it (a flood: most of the program's pairs, at 100k). At
            the price it had, the pool brings it back the mentees it lost. Once a solve brings
            nothing, the pricing is at s itself: what a proof needs, and the optimum's
            uncontested mentors are priced so."""
            nonlocal last_primal
            moved, last_primal = s.primal != last_primal, s.primal
            # Only a full mentor: one with places left is wanted at 0, by every mentee that
            # has no place yet (the flood then is what fills it).
            full = np.bincount(s.chosen[1], minlength=n_m) >= caps
            fell = (ref.p >= big) & (s.p < big) & full
            if not moved or not fell.any():
                return s, True
            return _Solution(s.chosen, s.mate, np.where(fell, ref.p, s.p), s.u, s.primal), False

        while True:
            sol = _solve(pool, caps, sol)
            rounds += 1
            t = lap("solve", t)
            a, b = ref.p - sol.p, ref.u - sol.u
            rows, cols = _split(a, b, margin_w, n_e, n_m)
            out_of_time = time_limit is not None and time.perf_counter() - started > time_limit
            stop = out_of_time or rounds >= max_rounds
            cells = rows.size * n_m + cols.size * n_e
            costly = cells > _RESCAN_SHARE * n_e * n_m
            bounding = gap > 0 and cells <= _BOUND_SHARE * n_e * n_m
            if costly and not stop and not bounding:
                at, exact = steady(sol)
                margin_w, ref, slack = pricing(at)
                t = lap("price", t)
                if exact and done(bound := _bound(sol, slack, caps, big)):
                    break
                continue
            found, gain, slack = certify(sol, rows, cols, a, b)
            t = lap("certify", t)
            bound = _bound(sol, slack, caps, big)
            if not (gain > 0).any() or stop or done(bound):
                break
            if costly:  # not yet within the gap: price again rather than rescan that much
                at, exact = steady(sol)
                margin_w, ref, slack = pricing(at)
                t = lap("price", t)
                if exact and done(bound := _bound(sol, slack, caps, big)):
                    break
                continue
            # Rescanned rows and columns also bring their near pairs into the pool, so that
            # the next round's duals rarely find anything new there: as many as pricing
            # would (a program whose scores take few values has hundreds of pairs per mentee
            # tied with the assignment's, and a pool of them all is slow to solve). Leaving
            # some out keeps what the reference says of them: they were outside already.
            ranked, ties = gain.astype(np.float64), tie_break(found[0], found[1])
            near = (gain >= -margin_w) & (
                _top(found[0], found[1], ranked, _POOL_PER_MENTEE, ties)
                | _top(found[1], found[0], ranked, _COVER, ties)
            )
            pool.add(found[0][near], found[1][near], found[2][near])
            seen[found[0]] = True

    ids = [p.participant_id for p in people]
    mentor_ids = index.mentor_ids
    assignments = [
        Assignment(ids[e], mentor_ids[m], s)
        for e, m, s in zip(*(part.tolist() for part in sol.chosen), strict=True)
    ]
    assignments.sort(key=lambda x: x.mentee_id)
    lap("finish", t)
    seconds["total"] = time.perf_counter() - started
    return MatchResult(
        assignments=assignments,
        pairs=int(pool.pe.size),
        rounds=rounds,
        bound=bound,
        with_candidates=frozenset(ids[e] for e in np.flatnonzero(seen).tolist()),
        seconds=seconds,
    )
