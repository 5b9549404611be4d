"""An exact solver for the restricted problem that starts from the last round's prices. Pure.

Each round of optimum.match solves a pool that differs a little from the last one, whose
optimal prices are nearly right for it. OR-Tools' min-cost flow cannot start from them (its
cost scaling starts over: a full solve each round). This solver repairs instead:

- Utilities u_e = max(0, best B + w_em - p_m) make the prices dual feasible on the new pool;
  the last assignment's pairs that are still tight (u_e + p_m = B + w_em) are kept.
- What is then left of complementary slackness is local: unmatched mentees with u_e > 0 and
  mentors with a free place and p_m > 0. Each is removed by one Dijkstra search over reduced
  profits (the Hungarian method's dual step): a mentee's search ends at a free place, or at a
  mentee of its tree that can go unmatched (its u reaches 0); a mentor's search (reversed)
  ends at an unmatched mentee, or at a mentor of its tree whose price can fall to 0.
  Every search keeps the duals feasible and the kept pairs tight, and no step creates a new
  violation, so the result is optimal with its LP duals (exact integers) as the proof.

With good prices most searches settle a handful of nodes: a 1.5 M-pair pool at 100k mentees
takes about 0.5 s, where OR-Tools takes 10 s. The first round starts from opening_prices
(0.5 s on the 0.9 M-pair start pool, where OR-Tools takes 6 s); from zero prices every mentee
would search across a half-full market (20 s).

The searches are loops over arrays: compiled with numba (cached on disk after the first use).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = ["Repaired", "opening_prices", "repair", "warm_up"]

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

_INF = np.int64(1) << 62


@dataclass(frozen=True, slots=True)
class Repaired:
    chosen: Bool  # over the given pairs
    p: I64  # optimal mentor prices
    u: I64  # optimal mentee utilities


def opening_prices(mentor: I64, profit: I64, capacities: I64) -> I64:
    """First-round prices: each mentor's (capacity + 1)-th best profit among the pairs, 0 if
    it has no more pairs than places. What the first mentee it must turn away would pay is
    close to its price at the optimum when mentees want mostly their own few best mentors:
    from these the 100k pool is solved in 0.5 s, from zero prices in 20 s."""
    n_m = capacities.size
    order = np.lexsort((-profit, mentor))
    first = np.searchsorted(mentor[order], np.arange(n_m))
    count = np.bincount(mentor, minlength=n_m)
    places = np.maximum(capacities, 0)
    turned_away = places < count
    p = np.zeros(n_m, np.int64)
    p[turned_away] = profit[order[first[turned_away] + places[turned_away]]]
    return p


def repair(mentee: I64, mentor: I64, profit: I64, capacities: I64, p: I64, mate: I64) -> Repaired:
    """The optimal assignment (most mentees matched, then the highest total profit) of the
    pairs (mentee[i], mentor[i], profit[i]), every profit above any possible total of
    score differences (optimum.py's B + w), each mentor within its capacity; solved from
    prices p (one per mentor, any >= 0: the closer to optimal, the faster) and a previous
    assignment mate (a mentor per mentee, or -1; pairs missing from the list or no longer
    tight are dropped).

    Pairs must be unique and sorted by (mentee, mentor); mentees index `mate`.
    """
    n_e, n_m = mate.size, capacities.size
    usable = capacities[mentor] > 0
    if not usable.all():
        keep = np.flatnonzero(usable)
        inner = repair(mentee[keep], mentor[keep], profit[keep], capacities, p, mate)
        chosen = np.zeros(mentee.size, np.bool_)
        chosen[keep[inner.chosen]] = True
        # A mentor without a place adds nothing to the dual objective at any price: the
        # lowest one that keeps its pairs feasible.
        out = np.flatnonzero(~usable)
        prices = inner.p.copy()
        np.maximum.at(prices, mentor[out], profit[out] - inner.u[mentee[out]])
        return Repaired(chosen, prices, inner.u)
    e_ptr = np.searchsorted(mentee, np.arange(n_e + 1)).astype(np.int64)
    by_mentor = np.argsort(mentor, kind="stable")
    m_ptr = np.searchsorted(mentor[by_mentor], np.arange(n_m + 1)).astype(np.int64)
    caps = capacities.astype(np.int64)
    prices = np.maximum(p, 0).astype(np.int64)
    mates = mate.astype(np.int64)  # copies: the kernel updates them in place
    by_m = (m_ptr, mentee[by_mentor], profit[by_mentor])
    u = _solve(e_ptr, mentor, profit, *by_m, caps, prices, mates)
    chosen = mates[mentee] == mentor
    return Repaired(chosen, prices, u)


def warm_up() -> None:
    """Compiles the kernel now (or loads it from numba's cache), rather than in a first run."""
    one = np.zeros(1, np.int64)
    repair(one, one, one + 1, one + 1, one, one - 1)


# --- the compiled kernel: a binary heap, the start, the two searches ---------------------------


@njit(cache=True)
def _push(keys: I64, nodes: I64, size: int, key: int, node: int) -> int:
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= key:
            break
        keys[i] = keys[parent]
        nodes[i] = nodes[parent]
        i = parent
    keys[i] = key
    nodes[i] = node
    return size + 1


@njit(cache=True)
def _pop(keys: I64, nodes: I64, size: int) -> int:
    """Removes the top (read it from keys[0], nodes[0] first); returns the new size."""
    size -= 1
    key, node = keys[size], nodes[size]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and keys[c + 1] < keys[c]:
            c += 1
        if key <= keys[c]:
            break
        keys[i] = keys[c]
        nodes[i] = nodes[c]
        i = c
    keys[i] = key
    nodes[i] = node
    return size


@njit(cache=True)
def _start(e_ptr, e_m, e_prof, caps, p, mate):  # type: ignore[no-untyped-def]
    """Utilities that make p feasible, and the previous pairs that are still tight."""
    n_e = e_ptr.size - 1
    u = np.zeros(n_e, np.int64)
    count = np.zeros(caps.size, np.int64)
    for e in range(n_e):
        best = 0
        for k in range(e_ptr[e], e_ptr[e + 1]):
            best = max(best, e_prof[k] - p[e_m[k]])
        u[e] = best
        m, kept = mate[e], False
        if m >= 0 and count[m] < caps[m]:
            for k in range(e_ptr[e], e_ptr[e + 1]):
                if e_m[k] == m and best + p[m] == e_prof[k]:
                    kept = True
        if kept:
            count[m] += 1
        else:
            mate[e] = -1
    return u, count


# nogil: a solve runs on a storage thread beside the service's event loop, whose Kafka
# heartbeats a kernel holding the GIL for seconds would stop (the worker then loses its
# partitions, and another worker runs the same request again).
@njit(cache=True, nogil=True)
def _solve(e_ptr, e_m, e_prof, m_ptr, m_e, m_prof, caps, p, mate):  # type: ignore[no-untyped-def]
    n_e, n_m = e_ptr.size - 1, m_ptr.size - 1
    u, count = _start(e_ptr, e_m, e_prof, caps, p, mate)
    # Search state, reset after each search through the touched lists.
    de = np.full(n_e, _INF)
    dm = np.full(n_m, _INF)
    pred_e = np.full(n_e, -1, np.int64)
    pred_m = np.full(n_m, -1, np.int64)
    done_e = np.zeros(n_e, np.bool_)
    done_m = np.zeros(n_m, np.bool_)
    touched_e = np.empty(n_e, np.int64)
    touched_m = np.empty(n_m, np.int64)
    heap = e_m.size + n_e + n_m + 1  # lazy deletion: at most one entry per relaxation
    keys = np.empty(heap, np.int64)
    nodes = np.empty(heap, np.int64)
    state = (de, dm, pred_e, pred_m, done_e, done_m, touched_e, touched_m, keys, nodes)
    for root in range(n_e):
        if mate[root] < 0 and u[root] > 0:
            _forward(root, e_ptr, e_m, e_prof, m_ptr, m_e, caps, p, u, mate, count, state)
    root = 0
    while root < n_m:
        if count[root] < caps[root] and p[root] > 0:
            _reverse(root, m_ptr, m_e, m_prof, p, u, mate, count, state)
        else:
            root += 1
    return u


@njit(cache=True)
def _forward(root, e_ptr, e_m, e_prof, m_ptr, m_e, caps, p, u, mate, count, state):  # type: ignore[no-untyped-def]
    """Unmatched mentee `root` with u > 0: the cheapest of (a) taking a free place at the end
    of an alternating path (each mentee on it moves to the next mentor) and (b) letting a
    mentee of the tree go unmatched (root itself included), which costs its u. Settling a
    mentor settles the mentees it holds, to keep them tight."""
    de, dm, _, pred_m, done_e, done_m, touched_e, touched_m, keys, nodes = state
    n_te, n_tm, size = 0, 0, 0
    best, best_e, end_m = u[root], root, -1
    n_te, n_tm, size, best, best_e = _settle_mentee(
        root, 0, e_ptr, e_m, e_prof, p, u, state, n_te, n_tm, size, best, best_e
    )
    while size > 0 and keys[0] < best:
        d, m = keys[0], nodes[0]
        size = _pop(keys, nodes, size)
        if done_m[m] or d != dm[m]:
            continue
        done_m[m] = True
        if count[m] < caps[m]:
            end_m, best = m, d
            break
        for k in range(m_ptr[m], m_ptr[m + 1]):
            e = m_e[k]
            if mate[e] == m and not done_e[e]:
                n_te, n_tm, size, best, best_e = _settle_mentee(
                    e, d, e_ptr, e_m, e_prof, p, u, state, n_te, n_tm, size, best, best_e
                )
    _shift(touched_e, n_te, done_e, de, u, best, -1)
    _shift(touched_m, n_tm, done_m, dm, p, best, 1)
    # move along the path: each mentee takes the place the next one frees
    if end_m >= 0:
        m = end_m
    else:
        m = mate[best_e]
        if m >= 0:
            count[m] -= 1
            mate[best_e] = -1
    while m >= 0:
        e = pred_m[m]
        old = mate[e]
        mate[e] = m
        count[m] += 1
        if old >= 0:
            count[old] -= 1
        m = old
    _reset(state, n_te, n_tm)


@njit(cache=True)
def _settle_mentee(e, d, e_ptr, e_m, e_prof, p, u, state, n_te, n_tm, size, best, best_e):  # type: ignore[no-untyped-def]
    de, dm, _, pred_m, done_e, done_m, touched_e, touched_m, keys, nodes = state
    n_te, best, best_e = _settle(e, d, done_e, de, touched_e, n_te, u[e], best, best_e)
    n_tm, size = _relax(
        e, d, e_ptr, e_m, e_prof, u[e], p, done_m, dm, pred_m, touched_m, n_tm, keys, nodes, size
    )
    return n_te, n_tm, size, best, best_e


@njit(cache=True)
def _reverse(root, m_ptr, m_e, m_prof, p, u, mate, count, state):  # type: ignore[no-untyped-def]
    """Mentor `root` with a free place and p > 0: the cheapest of (a) taking an unmatched
    mentee at the end of an alternating path (each mentee on it moves to the mentor before
    it) and (b) letting a mentor of the tree keep a free place (root itself included), which
    costs its price. Settling a mentor settles the mentees it holds, to keep them tight."""
    de, dm, pred_e, pred_m, done_e, done_m, touched_e, touched_m, keys, nodes = state
    n_te, n_tm, size = 0, 0, 0
    best, best_m, end_e = p[root], root, -1
    n_te, n_tm, size, best, best_m = _settle_mentor(
        root, 0, m_ptr, m_e, m_prof, p, u, mate, state, n_te, n_tm, size, best, best_m
    )
    while size > 0 and keys[0] < best:
        d, e = keys[0], nodes[0]
        size = _pop(keys, nodes, size)
        if done_e[e] or d != de[e]:
            continue
        done_e[e] = True
        m = mate[e]
        if m < 0:
            end_e, best = e, d
            break
        pred_m[m] = e  # m is not settled yet, or it would have settled e
        n_te, n_tm, size, best, best_m = _settle_mentor(
            m, d, m_ptr, m_e, m_prof, p, u, mate, state, n_te, n_tm, size, best, best_m
        )
    _shift(touched_m, n_tm, done_m, dm, p, best, -1)
    _shift(touched_e, n_te, done_e, de, u, best, 1)
    # move along the path: each mentee moves into the mentor it was reached from
    if end_e >= 0:
        e = end_e
    else:
        e = -1
        if best_m != root:
            e = pred_m[best_m]
            count[best_m] -= 1
            mate[e] = -1
    while e >= 0:
        m = pred_e[e]
        old = mate[e]
        if old >= 0:
            count[old] -= 1
        mate[e] = m
        count[m] += 1
        e = pred_m[m] if m != root else -1
    _reset(state, n_te, n_tm)


@njit(cache=True)
def _settle_mentor(m, d, m_ptr, m_e, m_prof, p, u, mate, state, n_te, n_tm, size, best, best_m):  # type: ignore[no-untyped-def]
    de, dm, pred_e, _, done_e, done_m, touched_e, touched_m, keys, nodes = state
    n_tm, best, best_m = _settle(m, d, done_m, dm, touched_m, n_tm, p[m], best, best_m)
    for k in range(m_ptr[m], m_ptr[m + 1]):
        e = m_e[k]
        if mate[e] == m and not done_e[e]:
            if de[e] == _INF:
                touched_e[n_te] = e
                n_te += 1
            done_e[e] = True
            de[e] = d
    n_te, size = _relax(
        m, d, m_ptr, m_e, m_prof, p[m], u, done_e, de, pred_e, touched_e, n_te, keys, nodes, size
    )
    return n_te, n_tm, size, best, best_m


@njit(cache=True)
def _settle(x, d, done, dist, touched, n_t, dual_x, best, best_x):  # type: ignore[no-untyped-def]
    """Node x settled at d; ending the search at x (x's dual falls to 0) costs d + dual_x."""
    done[x] = True
    dist[x] = d
    touched[n_t] = x
    if d + dual_x < best:
        best, best_x = d + dual_x, x
    return n_t + 1, best, best_x


@njit(cache=True)
def _relax(x, d, ptr, other, prof, dual_x, dual, done, dist, pred, touched, n_t, keys, nodes, size):  # type: ignore[no-untyped-def]
    """Node x (either side) settled at d: its pairs to the other side's nodes not yet settled,
    at reduced cost dual_x + dual[y] - profit, in the heap."""
    for k in range(ptr[x], ptr[x + 1]):
        y = other[k]
        if done[y]:
            continue
        nd = d + dual_x + dual[y] - prof[k]
        if nd < dist[y]:
            if dist[y] == _INF:
                touched[n_t] = y
                n_t += 1
            dist[y] = nd
            pred[y] = x
            size = _push(keys, nodes, size, nd, y)
    return n_t, size


@njit(cache=True)
def _shift(touched, n_t, done, dist, dual, best, sign):  # type: ignore[no-untyped-def]
    """The Hungarian dual step: each node settled nearer than the search's end moves its dual
    by the difference, which keeps every pair feasible and the tree's pairs tight."""
    for i in range(n_t):
        x = touched[i]
        if done[x] and dist[x] < best:
            dual[x] += sign * (best - dist[x])


@njit(cache=True)
def _reset(state, n_te, n_tm):  # type: ignore[no-untyped-def]
    de, dm, pred_e, pred_m, done_e, done_m, touched_e, touched_m, _, _ = state
    for i in range(n_te):
        x = touched_e[i]
        de[x] = _INF
        done_e[x] = False
        pred_e[x] = -1
    for i in range(n_tm):
        x = touched_m[i]
        dm[x] = _INF
        done_m[x] = False
        pred_m[x] = -1
