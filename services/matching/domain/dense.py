"""Approximate scores of whole blocks of mentee x mentor cells, to find the pairs that matter.

Pure: no I/O. CandidateIndex (candidates.py) scores pairs exactly; every score that leaves the
engine comes from there. A bulk run must also find WHICH pairs matter (a few good ones per
mentee, then every pair the LP prices say could improve an assignment, see optimum.py), and
that means looking at every mentee x mentor cell. This module does it on dense float32 blocks:

- Mentees are grouped by the values that decide the program's hard table criteria (timezone
  limit, shared language, ...). A group's allowed mentors are one column set, so cells a hard
  table criterion rules out for the whole group are never computed. Small groups are pooled
  into one block over the union of their columns; their cells are then checked per cell.
  Within a group, mentees seeking skills of the same families (taxonomy roots) share blocks:
  a mentor with no skill in those families scores 0 on skills for all of the block's rows, so
  its column is computed only when its price is low enough to matter (Block.above).
- Per block, each table criterion is one gather from a (mentees x mentor codes) table; tables
  whose code combinations are few are fused first (one gather for several criteria); a hard
  table criterion's failures are -inf in its table. Skills are uint8 gathers from per-skill
  relatedness rows; mentee choices are a per-row base plus the few chosen cells.
  Availability counts as its midpoint 0.5 in the dense block (within avail_slack of the
  truth either way) and is computed exactly per selected cell (avail_cells: two gathers per
  mentor interval from each mentee's cumulative coverage).
- A cell's approximate score A (approx() + avail_cells()) is the same weighted mean in
  float32: |A - exact| < EPS for allowed cells, and A = -inf only where a hard criterion
  fails. The always-hard rules (same person, exclusions, reporting lines) and the minimum
  score are not applied here. A property test (tests/unit/test_optimum.py) holds this.

So a block never decides that a pair is allowed or what it scores: it proves that a cell
cannot reach a threshold (A + EPS below it). Every cell Block.above selects is re-scored
exactly (CandidateIndex._scan: always-hard rules, hard criteria, minimum score, bit-identical
scores) before it is returned; Block.tops only seeds the first prices.

Memory: a block holds about BLOCK_CELLS cells (at least _MIN_ROWS rows) at a time;
mentee-side tables are per block (mentees x codes); per-skill relatedness rows are one byte
per mentor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from services.matching.domain.candidates import (
    _TABLE_KINDS,
    CandidateIndex,
    _Chunk,
    _mentor_value,
)
from services.matching.domain.model import Kind, Person

__all__ = ["BLOCK_CELLS", "EPS", "Block", "BlockSpec", "ColumnSets", "plan_blocks", "tie_break"]

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

# Bound on |approximate - exact| score for an allowed cell: float32 rounding of at most a
# few dozen terms and products of magnitude <= 1 is below 1e-6.
EPS = 1e-5
# Cells per block: a few float32 working arrays of this size stay in the CPU caches.
BLOCK_CELLS = 1 << 18
# A mentee group smaller than this share of a block is pooled with other small groups.
_POOL_SHARE = 4
# Rows per block at least (the per-block work in Python is then small beside the cells').
_MIN_ROWS = 64
# Tables are fused while their distinct code combinations are at most 1/_FUSE_RATIO of the
# block's columns (building a fused table costs rows x combinations).
_FUSE_RATIO = 4
# Block.best takes a row's cells within this much of the row's best score.
_NEAR = 0.1
_NEG = np.float32(-np.inf)
# A share of the total weight this small changes no score by EPS: left out of float32 sums.
_NEGLIGIBLE = 1e-20


def _hard_value(kind: Kind, p: Person) -> Any:
    """The mentee-side value a table criterion depends on (as _Chunk._mentee_values reads it):
    the mentor-side one, and for demographics whether the mentee opted in."""
    value = _mentor_value(kind, p)
    return (p.demographic_opt_in, *value) if kind is Kind.DEMOGRAPHICS else value


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """Which cells a block covers: rows (mentee positions) x cols (mentor indices). A mentor
    outside cols fails a hard table criterion for every one of the rows."""

    rows: I64
    cols: I64
    # Every row passes the hard table criteria on every column (one mentee group).
    pure: bool = True
    # Mentors (a mask over all mentors) with a skill in the family of one of the rows' sought
    # skills; the others score 0 on skills for every row. None: all of them.
    related: Bool | None = None

    @property
    def cells(self) -> int:
        return int(self.rows.size * self.cols.size)


def plan_blocks(
    index: CandidateIndex, mentees: Sequence[Person], block_cells: int = BLOCK_CELLS
) -> list[BlockSpec]:
    """Split the mentees into blocks, each with the mentors its rows may be paired with."""
    n, m = len(mentees), index.n_mentors
    if n == 0 or m == 0:
        return []
    hard = [s for s in index.specs if s.spec.hard and s.spec.kind in _TABLE_KINDS]
    groups: list[tuple[I64, Bool]] = []
    if not hard:
        groups.append((np.arange(n, dtype=np.int64), np.ones(m, np.bool_)))
    else:
        by_key: dict[tuple[Any, ...], list[int]] = {}
        for e, p in enumerate(mentees):
            by_key.setdefault(tuple(_hard_value(s.spec.kind, p) for s in hard), []).append(e)
        members = list(by_key.values())
        reps = _Chunk(index, [mentees[rows[0]] for rows in members])
        masks = np.ones((len(members), m), np.bool_)
        for s in hard:
            _, passed, k = reps.tables[s.position]
            masks &= passed.reshape(len(members), k)[:, index.codes[s.spec.kind].code]
        by_mask: dict[bytes, list[int]] = {}
        for g in range(len(members)):
            by_mask.setdefault(np.packbits(masks[g]).tobytes(), []).append(g)
        for gs in by_mask.values():
            rows = np.sort(np.concatenate([np.asarray(members[g], np.int64) for g in gs]))
            groups.append((rows, masks[gs[0]]))

    family_of, families = _families(index)

    keys: dict[tuple[str, ...], tuple[str, ...]] = {}

    def skill_key(e: int) -> tuple[str, ...]:
        sought = mentees[e].skills
        key = keys.get(sought)
        if key is None:
            key = keys[sought] = tuple(sorted({family_of(skill) for skill in sought}))
        return key

    def related(rows: I64) -> Bool | None:
        if families is None:
            return None
        mask = np.zeros(m, np.bool_)
        for family in {f for e in rows.tolist() for f in skill_key(e)}:
            hit = families.get(family)
            if hit is not None:
                mask |= hit
        return mask

    specs: list[BlockSpec] = []
    pooled: list[tuple[I64, Bool]] = []
    for rows, mask in groups:
        cols = np.flatnonzero(mask).astype(np.int64)
        if cols.size == 0:
            continue  # no mentor passes this group's hard criteria
        per_block = max(_MIN_ROWS, block_cells // cols.size)
        if rows.size * _POOL_SHARE < per_block:
            pooled.append((rows, mask))
            continue
        # Rows seeking skills of the same families together: their blocks relate to fewer
        # mentors.
        if families is not None:
            rows = np.asarray(sorted(rows.tolist(), key=lambda e: (skill_key(e), e)), np.int64)
        for part in np.array_split(rows, -(-rows.size // per_block)):
            part = np.sort(part)
            specs.append(BlockSpec(part, cols, True, related(part)))
    # Small groups in mentee order, several to a block over the union of their columns.
    pooled.sort(key=lambda g: int(g[0][0]))
    while pooled:
        rows, mask = pooled.pop(0)
        parts, union = [rows], mask.copy()
        while pooled:
            more_rows, more_mask = pooled[0]
            joined = union | more_mask
            size = sum(p.size for p in parts) + more_rows.size
            if size * int(joined.sum()) > block_cells and size > _MIN_ROWS:
                break
            pooled.pop(0)
            parts.append(more_rows)
            union = joined
        rows = np.sort(np.concatenate(parts))
        cols = np.flatnonzero(union).astype(np.int64)
        specs.append(BlockSpec(rows, cols, len(parts) == 1, related(rows)))
    return specs


def _families(index: CandidateIndex) -> tuple[Any, dict[str, Bool] | None]:
    """A skill's family (its root in the taxonomy) and, per family, the mentors offering a
    skill in it. Related skills (same, ancestor, descendant, sibling) share their root, so a
    mentor outside every family of a mentee's sought skills scores 0 on skills for them."""
    taxonomy = index.taxonomy
    known: dict[str, str] = {}

    def family_of(skill: str) -> str:
        family = known.get(skill)
        if family is None:
            canon = taxonomy.canonical(skill)
            above = taxonomy.ancestors(canon)
            family = known[skill] = above[-1] if above else canon
        return family

    if Kind.SKILLS not in index.kinds:
        return family_of, None
    families: dict[str, Bool] = {}
    for canon, who in index._offered.items():
        root = family_of(canon)
        if root not in families:
            families[root] = np.zeros(index.n_mentors, np.bool_)
        families[root][who] = True
    return family_of, families


class SkillRows:
    """Per sought skill, every mentor's 4 x relatedness as a uint8 row (cached)."""

    def __init__(self, index: CandidateIndex) -> None:
        self.index = index
        self.rows: dict[str, npt.NDArray[np.uint8]] = {}

    def row(self, sought: str) -> npt.NDArray[np.uint8]:
        hit = self.rows.get(sought)
        if hit is None:
            idx, codes = self.index._related(sought)
            hit = np.zeros(self.index.n_mentors, np.uint8)
            hit[idx] = codes
            self.rows[sought] = hit
        return hit


# One fused table: (criterion positions, each one's code per combination), and each
# column's combination.
_Fused = tuple[tuple[int, ...], tuple[I64, ...], I64]


class Columns:
    """The column side of the blocks that share one set of mentors, worked out once: the
    column order, each table criterion's code per column and how tables are fused.

    Columns are sorted by the mentors' number of availability intervals (most first), so that
    for any increasing selection of column positions the mentors with more than j intervals
    are a prefix.
    """

    def __init__(self, index: CandidateIndex, cols: I64) -> None:
        self.index = index
        if Kind.AVAILABILITY in index.kinds:
            cols = cols[np.argsort(-index.avail_count[cols], kind="stable")]
        self.cols = cols
        self.order = np.argsort(cols, kind="stable")
        self.sorted = cols[self.order]
        self._fused: dict[tuple[int, ...], list[_Fused]] = {}

    def position(self, mentors: I64) -> I64:
        """Column positions of mentor indices (-1 for a mentor not among these columns)."""
        if self.sorted.size == 0:
            return np.full(mentors.size, -1, np.int64)
        at = np.minimum(np.searchsorted(self.sorted, mentors), self.sorted.size - 1)
        found = self.sorted[at] == mentors
        return np.where(found, self.order[at], -1).astype(np.int64)

    def fused(self, positions: tuple[int, ...]) -> list[_Fused]:
        """How the table criteria at these positions are summed into few tables: tables whose
        code combinations over the columns are few become one (one gather per fused table
        instead of one per criterion; building one costs rows x combinations)."""
        hit = self._fused.get(positions)
        if hit is not None:
            return hit
        ix = self.index
        limit = max(1, self.cols.size // _FUSE_RATIO)
        kinds = {s.position: s.spec.kind for s in ix.specs}
        codes = [(p, ix.codes[kinds[p]].code[self.cols], ix.codes[kinds[p]].k) for p in positions]
        out: list[_Fused] = []
        for position, code, k in sorted(codes, key=lambda t: t[2]):
            if out:
                members, picks, inverse = out[-1]
                combo, joined = np.unique(inverse * k + code, return_inverse=True)
                if combo.size <= limit:
                    a, b = np.divmod(combo, k)
                    out[-1] = (
                        (*members, position),
                        (*(pick[a] for pick in picks), b),
                        joined.astype(np.int64).ravel(),
                    )
                    continue
            used, inverse = np.unique(code, return_inverse=True)
            out.append(((position,), (used.astype(np.int64),), inverse.astype(np.int64).ravel()))
        self._fused[positions] = out
        return out


class ColumnSets:
    """Columns objects by mentor set, for the blocks of one pass or worker."""

    def __init__(self, index: CandidateIndex) -> None:
        self.index = index
        self._sets: dict[bytes, Columns] = {}

    def get(self, cols: I64) -> Columns:
        key = cols.tobytes()
        hit = self._sets.get(key)
        if hit is None:
            hit = self._sets[key] = Columns(self.index, cols)
        return hit


class Block:
    """One block's rows encoded against its columns, for approximate and exact scoring."""

    def __init__(
        self,
        index: CandidateIndex,
        mentees: Sequence[Person],
        spec: BlockSpec,
        skill_rows: SkillRows,
        positive: bool = False,
        columns: ColumnSets | None = None,
    ) -> None:
        ix = self.index = index
        self.rows = spec.rows
        people = [mentees[r] for r in spec.rows.tolist()]
        c = self.chunk = _Chunk(ix, people)
        n = self.n = c.n
        self.positive = positive
        weight = ix.total_weight
        shared = self.columns = (columns or ColumnSets(ix)).get(spec.cols)
        cols = self.cols = shared.cols
        # Column positions whose mentors share a skill family with some row (see plan_blocks).
        self.related = np.flatnonzero(spec.related[cols]) if spec.related is not None else None
        self.reach = ix._reach(c, False)  # a row's best score from a mentor of no related skill
        # The lowest approximate score a returned pair can have.
        floor = ix.config.min_score
        self.low = float(max(floor, 0.0) if positive else floor) - EPS

        # Table criteria: weighted float32 (rows x codes) tables, -inf where a hard one fails,
        # summed into fused tables when scores are wanted (Columns.fused): kept unfused, they
        # take rows x codes, fused up to rows x columns / _FUSE_RATIO.
        self.weighted: dict[int, F32] = {}
        for s in ix.specs:
            table = c.tables.get(s.position)
            if table is None:
                continue
            score, passed, k = table
            scale = s.weight / weight if weight > 0 else 0.0
            if scale == 0.0 and (spec.pure or not s.spec.hard):
                continue  # a pure block's columns pass every hard table criterion
            t = (score.reshape(n, k) * scale).astype(np.float32)
            if s.spec.hard and not spec.pure:
                t[~passed.reshape(n, k)] = _NEG
            self.weighted[s.position] = t
        self.fused = shared.fused(tuple(self.weighted))
        self._tables: list[F32] | None = None  # the fused tables, once keep_tables() is called

        # Skills: v = sum_i (n_i - i) * code[skill_i], then score = v * coef per row.
        self.skill_mix: F32 | None = None
        self.skills_hard = False
        skill_weight = sum(s.weight for s in ix.skill_specs)
        if ix.skill_specs:
            self.skills_hard = ix.skills_hard
            width = max((len(sought) for sought in c.skills), default=0)
            names: dict[str, int] = {}
            self.skill_rid = np.zeros((n, max(width, 1)), np.int64)
            self.skill_wt = np.zeros((n, max(width, 1)), np.int64)
            for e, sought in enumerate(c.skills):
                for i, skill in enumerate(sought):
                    self.skill_rid[e, i] = names.setdefault(skill, len(names) + 1)
                    self.skill_wt[e, i] = len(sought) - i
            # Column q, entry r: 4 x relatedness of the q-th mentor to the block's r-th sought
            # skill (0: none). Column-major like every dense array here (see approx).
            related = np.zeros((len(names) + 1, cols.size), np.uint8)
            for r, name in enumerate(names, start=1):
                related[r] = skill_rows.row(name)[cols]
            self.skill_table = np.ascontiguousarray(related.T)
            scale = skill_weight / weight if weight > 0 else 0.0
            # A row's score is one product with this (sought skills x rows) mix: (n - i) * coef
            # at row rid_i. Unscaled when skills weigh nothing (then only hard: v == 0 fails),
            # or next to nothing: under _NEGLIGIBLE they add less than EPS to any score, and
            # their coefficients could underflow float32 to 0, which a hard skill criterion
            # would read as "no related skill".
            self.skill_scaled = scale > _NEGLIGIBLE
            coef = scale * 0.25 / c.skill_total if self.skill_scaled else np.ones(n)
            mix = np.zeros((len(names) + 1, n), np.float64)
            row = np.repeat(np.arange(n), self.skill_rid.shape[1])
            np.add.at(mix, (self.skill_rid.ravel(), row), (self.skill_wt * coef[:, None]).ravel())
            self.skill_mix = mix.astype(np.float32)

        # Availability: (weight share, minimum overlap, hard) per criterion.
        self.avail = [
            (s.weight / weight if weight > 0 else 0.0, s.spec.min_overlap_minutes, s.spec.hard)
            for s in ix.specs
            if s.spec.kind is Kind.AVAILABILITY
        ]
        if self.avail:
            self.cover = c.cover.reshape(n, c.n_bounds).astype(np.float32)
            self.avail_counts = ix.avail_count[cols]

        # Mentee choices: a base per row and the chosen cells (summed over the criteria).
        self.choice: tuple[F32, I64, I64, F32, bool] | None = None
        choice = [s for s in ix.specs if s.spec.kind is Kind.MENTEE_CHOICE]
        if choice:
            scale = sum(s.weight for s in choice) / weight if weight > 0 else 0.0
            base = np.where(c.choice_known, 0.0, 0.5 * scale).astype(np.float32)
            chooser, chosen = np.divmod(c.choice_keys, ix.n_mentors)
            at = self.position(chosen)
            keep = at >= 0
            values = (c.choice_values[keep] * scale).astype(np.float32)
            hard = any(s.spec.hard for s in choice)
            self.choice = (base, chooser[keep], at[keep], values, hard)

    def _fused_tables(self, rows: I64 | None) -> list[F32]:
        """Each fused table (rows x combinations), for the given rows (all when None)."""
        if self._tables is not None:
            return self._tables if rows is None else [t[rows] for t in self._tables]
        tables: list[F32] = []
        for members, picks, _ in self.fused:
            table: F32 | None = None
            for position, pick in zip(members, picks, strict=True):
                weighted = self.weighted[position]
                piece = (weighted if rows is None else weighted[rows])[:, pick]
                table = piece if table is None else table + piece
            assert table is not None  # a fused table has at least one member
            tables.append(table)
        return tables

    def keep_tables(self) -> None:
        """Keep the fused tables (up to a byte per cell) rather than sum them for each pass."""
        self._tables = self._fused_tables(None)

    @property
    def nbytes(self) -> int:
        """About what keeping this block costs: its own and its chunk's arrays (the column
        side is shared with other blocks)."""
        shared = {"cols", "columns", "fused"}
        mine = {k: v for k, v in vars(self).items() if k not in shared}
        return _nbytes(mine) + _nbytes(vars(self.chunk))

    def position(self, mentors: I64) -> I64:
        """Column positions of mentor indices (-1 for a mentor not in this block)."""
        return self.columns.position(mentors)

    # --- approximate scores ------------------------------------------------------------------

    def approx(self, rows: I64 | None = None, pos: I64 | None = None) -> F32:
        """Approximate scores of rows x column positions (all when None; pos increasing),
        except that availability counts as 0.5 for every cell: it is within AVAIL_SLACK of
        the exact score's (0 <= availability score <= 1), see avail_cells.

        Column-major (Fortran order): a table gather `table[:, code]` comes out that way, and
        every other part is built the same way, since mixing layouts makes numpy transpose
        on the fly (at 100k, a third of a pass went into that). Callers walk `a.T`."""
        ix, c = self.index, self.chunk
        n = self.n if rows is None else rows.size
        cols = self.cols if pos is None else self.cols[pos]
        width = cols.size
        out: F32 | None = None
        for table, (_, _, code) in zip(self._fused_tables(rows), self.fused, strict=True):
            part = table[:, code if pos is None else code[pos]]
            if out is None:
                out = part
            else:
                out += part
        if out is None:
            out = np.zeros((n, width), np.float32, order="F")
        if ix.total_weight <= 0:
            out += np.float32(1.0)  # no weighted criterion: every allowed pair scores 1

        if self.skill_mix is not None:
            # A matrix product (columns x sought skills) @ (sought skills x rows), transposed
            # into this layout: all terms are >= 0, so it is 0 exactly where v is.
            related = self.skill_table if pos is None else self.skill_table[pos]
            mix = self.skill_mix if rows is None else self.skill_mix[:, rows]
            skill = (related.astype(np.float32) @ mix).T
            if self.skill_scaled:
                out += skill
            if self.skills_hard:
                out[skill == 0] = _NEG

        if self.avail:
            out += np.float32(self.avail_slack)

        if self.choice is not None:
            base, ce, cpos, values, hard = self.choice
            rsel = np.arange(self.n) if rows is None else rows
            out += base[rsel][:, None]
            # chosen cells of the selected rows and columns
            row_at = np.full(self.n, -1, np.int64)
            row_at[rsel] = np.arange(rsel.size)
            col_at = np.full(self.cols.size, -1, np.int64)
            col_at[np.arange(self.cols.size) if pos is None else pos] = np.arange(width)
            r, q = row_at[ce], col_at[cpos]
            ok = (r >= 0) & (q >= 0)
            if hard:
                chosen = np.zeros((n, width), np.bool_, order="F")
                chosen[r[ok], q[ok]] = True
                chooser = c.choice_known[rsel]
                out[chooser[:, None] & ~chosen] = _NEG
            out[r[ok], q[ok]] += values[ok]
        return out

    @property
    def avail_slack(self) -> float:
        """How far approx()'s availability part can be from the exact one, either way."""
        return 0.5 * sum(scale for scale, _, _ in self.avail)

    def avail_cells(self, r: I64, pos: I64) -> F64:
        """The exact weighted availability score of cells (local row, column position) minus
        approx()'s constant for it; -inf where a hard minimum overlap is missed."""
        total = np.zeros(r.size)
        if not self.avail:
            return total
        ix = self.index
        m = self.cols[pos]
        overlap = np.zeros(r.size)
        # Mentors with fewer intervals are padded with (0, 0): they add nothing. Cells listed
        # by column position (as tops and above list them) have their mentors' interval
        # counts decreasing (Columns): level j then only concerns a prefix of them.
        counts = ix.avail_count[m]
        ordered = bool((np.diff(pos) >= 0).all())
        for level in range(ix.avail_start.shape[0]):
            k = int(np.searchsorted(-counts, -level)) if ordered else r.size
            rk, mk = r[:k], m[:k]
            overlap[:k] += self.cover[rk, ix.avail_end[level][mk]]
            overlap[:k] -= self.cover[rk, ix.avail_start[level][mk]]
        known = self.chunk.avail_known[r] & ix.avail_known[m]
        for scale, need, hard in self.avail:
            # criteria.py: a non-positive minimum is always met (score 1)
            score = np.minimum(1.0, overlap / (2 * need)) if need > 0 else np.ones(r.size)
            total += np.where(known, score, 0.5) * scale - 0.5 * scale
            if hard:
                total[known & (overlap < need)] = -np.inf
        return total

    # --- selections, scored exactly ----------------------------------------------------------

    def exact(self, r: I64, pos: I64) -> tuple[I64, I64, F64]:
        """The eligible pairs among cells (local row, column position), scored exactly:
        (mentee positions, mentor indices, scores)."""
        ix, c = self.index, self.chunk
        pm = self.cols[pos]
        v = None
        if ix.skill_specs:
            v = np.zeros(r.size, np.int64)
            for i in range(self.skill_rid.shape[1]):
                v += self.skill_wt[r, i] * self.skill_table[pos, self.skill_rid[r, i]]
        found = ix._scan(c, r, pm, v, np.full(c.n, -1e300), None)
        pe, pm, score = found.pe, found.pm, found.score
        if self.positive:
            keep = score > 0
            pe, pm, score = pe[keep], pm[keep], score[keep]
        return self.rows[pe], pm, score

    def tops(self, k: int) -> tuple[I64, I64, F64, F64, I64]:
        """Good cells with approximate scores (availability exact), not scored exactly: up to
        k cells per row (local rows, column positions, values) among those near the row's
        best; and each column's best value and row (by the rest of the score). A start for an
        assignment (its prices), not a guarantee of anything: a cell may still fail the
        minimum score by EPS."""
        pos = self.related
        if pos is not None and pos.size < 4 * k:
            pos = None  # few mentors relate to these rows' skills: look at every one
        a = self.approx(None, pos)
        n, width = a.shape
        if n == 0 or width == 0:
            none = _empty()
            return none[0], none[1], none[2], np.full(self.cols.size, -np.inf), none[0]
        slack = self.avail_slack
        low = np.float32(self.low - slack)
        rowmax = a.max(axis=1)
        near = np.float32(_NEAR + 2 * slack)
        cut = np.where(rowmax >= low, np.maximum(rowmax - near, low), np.inf).astype(np.float32)
        for _ in range(3):  # raise the threshold of rows with far more than k cells above it
            crowded = np.count_nonzero(a >= cut[:, None], axis=1) > 4 * k
            if not crowded.any():
                break
            cut = np.where(crowded, (cut + rowmax) / 2, cut).astype(np.float32)
        by_column = a.T  # row-major, see approx
        cells = np.flatnonzero(by_column >= cut[None, :])
        q, r = np.divmod(cells, n)
        if pos is not None:
            q = pos[q]
        value = by_column.ravel()[cells] + self.avail_cells(r, q)
        value[~self._unblocked(r, q)] = -np.inf
        order = np.lexsort((tie_break(self.rows[r], self.cols[q]), -value, r))
        r, q, value = r[order], q[order], value[order]
        first = np.searchsorted(r, r, side="left")
        keep = (np.arange(r.size) - first < k) & (value >= self.low)
        best_row = a.argmax(axis=0)
        every = np.arange(width) if pos is None else pos
        col_best = a[best_row, np.arange(width)] + self.avail_cells(best_row, every)
        col_best[~self._unblocked(best_row, every)] = -np.inf
        best = np.full(self.cols.size, -np.inf)
        best[every] = np.where(col_best >= self.low, col_best, -np.inf)
        rows_of = np.zeros(self.cols.size, np.int64)
        rows_of[every] = best_row
        return r[keep], q[keep], value[keep], best, rows_of

    def _unblocked(self, r: I64, pos: I64) -> Bool:
        """Cells not ruled out by the always-hard rules (same person, exclusions, reporting)."""
        unblocked: Bool = self.index._unblocked(self.chunk, r, self.cols[pos])
        return unblocked

    def above(
        self, price: F64, floor: F64, rows: I64 | None = None, pos: I64 | None = None
    ) -> tuple[I64, I64, F64]:
        """Every eligible pair with exact score - price[column] >= floor[row] (and maybe
        others), scored exactly: price is per block column, floor per block row; optionally
        only some rows and column positions (increasing)."""
        return self._above(price, floor, rows, pos, None)[0]

    def capped(
        self, price: F64, floor: F64, line: F64, limit: int, cover: F64, short: Bool
    ) -> tuple[tuple[I64, I64, F64], I64, F64]:
        """`above` over the whole block, except that a row with more than `limit` cells
        surely above its `line` (score - price[column] > line[row]: pairs that would improve
        the assignment) keeps only those near its `limit` best before they are scored: (the
        pairs, the mentees cut short and, for each, a bound on score - price of any of their
        pairs left out). Also, whatever their floor: each row's best cell if it has none above
        it, and each `short` column's best by score - price - line if above its `cover`.

        At poor prices (a first pass, many mentors with free places priced at 0) every mentee
        passes with most mentors: tens of millions of pairs to score at 20k mentees, more than
        memory at 100k, where a few of each mentee's best are enough to move the prices on
        (optimum.py accounts for the pairs left out)."""
        found, cut, bound = self._above(price, floor, None, None, (line, limit, cover, short))
        return found, self.rows[cut], bound

    def _above(
        self,
        price: F64,
        floor: F64,
        rows: I64 | None,
        pos: I64 | None,
        cap: tuple[F64, int, F64, Bool] | None,
    ) -> tuple[tuple[I64, I64, F64], I64, F64]:
        no_cut = (np.zeros(0, np.int64), np.zeros(0, np.float64))
        floor_r = floor if rows is None else floor[rows]
        if pos is None and self.related is not None:
            # A mentor of no related skill scores at most reach (+ EPS) for a row: only those
            # priced low enough for some row to reach its floor need a look.
            reach = self.reach if rows is None else self.reach[rows]
            top = float((reach - floor_r).max(initial=-np.inf)) + 2 * EPS
            cheap = np.zeros(self.cols.size, np.bool_)
            if not self.skills_hard:
                cheap = price <= top
            cheap[self.related] = True
            pos = np.flatnonzero(cheap)
        price_c = price if pos is None else price[pos]
        if price_c.size == 0 or floor_r.size == 0:
            return _empty(), *no_cut
        a = self.approx(rows, pos)
        slack = self.avail_slack
        # float32 keeps ~7 digits: with large prices or floors (the big-M part of the duals
        # when capacity is left over) the comparison is made in float64. The tolerance covers
        # EPS and the rounding of the operands and of the difference.
        finite = floor_r[np.isfinite(floor_r)]
        size = float(np.abs(price_c).max()) + float(np.abs(finite).max(initial=0.0)) + 2.0
        by_column = a.T  # row-major, see approx
        if size < 64:
            tol = EPS + 8 * size * 2.0**-24
            diff = by_column - price_c.astype(np.float32)[:, None]
            hit = diff >= (floor_r - slack - tol).astype(np.float32)[None, :]
        else:
            tol = EPS + 8 * size * 2.0**-53
            diff = by_column.astype(np.float64) - price_c[:, None]
            hit = diff >= (floor_r - slack - tol)[None, :]
        cut, bound = no_cut
        cells = np.flatnonzero(hit)
        below = np.zeros(cells.size, np.bool_)  # cells wanted under their row's floor
        if cap is not None:
            line, limit, cover, short = cap
            cut, bound = _cap(diff, hit, line, limit, slack + tol)
            if pos is not None:
                cover, short = cover[pos], short[pos]
            wanted = _wanted(diff, hit, line, cover, short)
            cells = np.flatnonzero(hit)
            wanted = np.setdiff1d(wanted, cells, assume_unique=True)
            cells = np.concatenate((cells, wanted))
            below = np.zeros(cells.size, np.bool_)
            below[cells.size - wanted.size :] = True
        value = by_column.ravel()[cells].astype(np.float64)
        q, r = np.divmod(cells, a.shape[0])
        r = r if rows is None else rows[r]
        q = q if pos is None else pos[q]
        if slack:
            value += self.avail_cells(r, q)
        p = price[q]
        keep = ((value - p >= floor[r] - tol) | below) & (value >= self.low)
        found = self.exact(r[keep].astype(np.int64), q[keep].astype(np.int64))
        return found, cut, bound


def _wanted(diff: Any, hit: Bool, line: F64, cover: F64, short: Bool) -> I64:
    """Cells (flat, in diff's columns x rows) worth pricing whatever their rows' floors: the
    best of each row with no hit, and the best by diff - line of each `short` column (its
    mentor has too few pairs near the floor so far) where that is above its `cover`. A
    mentee with no pair in the pool puts no pressure on any price, nor a mentor with none on
    its own: a solve would leave the mentors they would compete for too cheap for everyone
    like them, and the next pricing find a flood of pairs."""
    n_rows = diff.shape[1]
    lonely = np.flatnonzero(~hit.any(axis=0))
    row_best = diff[:, lonely].argmax(axis=0)
    row_ok = np.isfinite(diff[row_best, lonely])
    cols = np.flatnonzero(short)
    gain = diff[cols] - line.astype(diff.dtype)[None, :]
    col_best = gain.argmax(axis=1)
    value = gain[np.arange(cols.size), col_best]
    col_ok = np.isfinite(value) & (value > cover[cols])
    return np.unique(
        np.concatenate(
            (
                row_best[row_ok] * n_rows + lonely[row_ok],
                cols[col_ok] * n_rows + col_best[col_ok],
            )
        )
    )


def _cap(diff: Any, hit: Bool, line: F64, limit: int, err: float) -> tuple[I64, F64]:
    """Where a row (a column of `diff` and `hit`, columns x rows) has more than `limit` cells
    surely above its line (approximate diff beyond it by more than `err`, what the approximate
    score may be off by), leave out of `hit` those of them not near the row's `limit` best;
    returns the rows cut short and, for each, a bound on the exact diff of a cell left out.
    Cells on or below the line stay: among them the assignment's own pairs."""
    line_d = (line + err).astype(diff.dtype)
    sure = diff > line_d[None, :]
    crowded = np.flatnonzero(np.count_nonzero(sure, axis=0) > limit)
    if crowded.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    sub = diff[:, crowded]
    # The row's limit-th best approximate diff: those cells' exact diffs are above kth - err,
    # those of the cells below kth - 2 err under it, so the best `limit` are among those kept.
    kth = -np.partition(-sub, limit - 1, axis=0)[limit - 1]
    far = sure[:, crowded] & (sub < kth - diff.dtype.type(2 * err))
    hit[:, crowded] &= ~far
    return crowded.astype(np.int64), kth.astype(np.float64)


def tie_break(mentee: I64, mentor: I64) -> npt.NDArray[np.uint64]:
    """A fixed pseudo-random order of pairs, to break ties in score. By index, every mentee
    of a program whose scores take few values would pick the same first mentors among its
    equals, and the prices those choices start from would leave most mentors free."""
    x = mentee.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    x ^= mentor.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
    x ^= x >> np.uint64(31)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    return x ^ (x >> np.uint64(29))


def _nbytes(values: dict[str, Any]) -> int:
    total = 0
    stack: list[Any] = list(values.values())
    while stack:
        item = stack.pop()
        if isinstance(item, np.ndarray):
            total += item.nbytes
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
    return total


def _empty() -> tuple[I64, I64, F64]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
