"""Preference-based stable matching: mentees and mentors rank each other.

This is the hospital-resident (college admissions) problem of Gale & Shapley (1962) with
incomplete lists: mentees play residents, mentors play hospitals with a capacity each.

Definitions used throughout:

- A pair (mentee e, mentor m) is *acceptable* when e lists m **and** m lists e. Only
  acceptable pairs may be matched; anything either side did not list is "rather stay
  unmatched". Ids a list names that are not participants on the other side are simply
  never acceptable.
- A mentor missing from ``capacities`` has capacity 0 (takes nobody), as in
  ``assignment.py``.
- A matching *blocks* at (e, m) when the pair is acceptable, e is unmatched or prefers m
  to its mentor, and m has capacity > 0 and either has a free place or prefers e to the
  worst mentee it holds. A matching is *stable* when nothing blocks.

``stable_match`` runs mentee-proposing deferred acceptance (Gale-Shapley, with the
capacity extension of Roth 1984): every free mentee proposes to the next mentor on its
list; a mentor tentatively holds its best ``capacity`` proposers and rejects the rest.
The result is the *mentee-optimal* stable matching: every mentee gets the best mentor it
has in any stable matching (Gale & Shapley's theorem), so it does not depend on the
order in which proposals are made. That makes the result deterministic regardless of
the input mappings' iteration order.

Cost: O(P + R + L log C) where P and R are the total lengths of the mentee and mentor
lists, L <= P the number of proposals and C the largest capacity: every mentee proposes
to each mentor on its list at most once, a proposal is judged with one dict look-up of
the mentor's rank of that mentee, and each mentor keeps the mentees it holds in a
max-heap on rank, so the worst one is found in O(1) and replaced in O(log C).
"""

from __future__ import annotations

import heapq
import operator
from collections import deque
from collections.abc import Mapping, Sequence

__all__ = ["blocking_pairs", "stable_match"]

# Stands in for the rank dict of an id that is not a mentor (nobody is acceptable to it).
_NO_RANKS: Mapping[str, int] = {}


def stable_match(
    mentee_prefs: Mapping[str, Sequence[str]],
    mentor_prefs: Mapping[str, Sequence[str]],
    capacities: Mapping[str, int],
) -> dict[str, str]:
    """The mentee-optimal stable matching.

    Args:
        mentee_prefs: each mentee's acceptable mentors, most preferred first.
        mentor_prefs: each mentor's acceptable mentees, most preferred first.
        capacities: how many mentees each mentor can take; a mentor missing here takes
            none.

    Returns:
        ``mentee_id -> mentor_id`` for every matched mentee, in sorted mentee-id order.
        Unmatched mentees are absent.

    Raises:
        ValueError: a preference list names someone twice (or is a bare string), or a
            capacity is negative or not an integer. The message names the participant.
    """
    mentor_rank = _mentor_ranks(mentor_prefs)
    caps = _capacities(capacities)
    _check_mentee_prefs(mentee_prefs)

    # held[m] is a max-heap on the mentor's rank of the mentees it tentatively holds,
    # stored as (-rank, mentee) so heapq's min-heap puts the worst one on top.
    held: dict[str, list[tuple[int, str]]] = {}
    next_choice = dict.fromkeys(mentee_prefs, 0)
    free = deque(mentee_prefs)

    while free:
        mentee = free.popleft()
        prefs = mentee_prefs[mentee]
        i = next_choice[mentee]
        # Walk down the mentee's list until some mentor holds it or the list runs out.
        while i < len(prefs):
            mentor = prefs[i]
            i += 1
            rank = mentor_rank.get(mentor, _NO_RANKS).get(mentee)
            cap = caps.get(mentor, 0)
            if rank is None or cap == 0:
                continue  # not acceptable to this mentor, or the mentor takes nobody
            heap = held.setdefault(mentor, [])
            if len(heap) < cap:
                heapq.heappush(heap, (-rank, mentee))
                break
            worst_rank = -heap[0][0]
            if rank < worst_rank:
                # The mentor trades up; the displaced mentee resumes where it stopped.
                _, displaced = heapq.heapreplace(heap, (-rank, mentee))
                free.append(displaced)
                break
        next_choice[mentee] = i

    result = {mentee: mentor for mentor, heap in held.items() for _, mentee in heap}
    return dict(sorted(result.items()))


def blocking_pairs(
    matching: Mapping[str, str],
    mentee_prefs: Mapping[str, Sequence[str]],
    mentor_prefs: Mapping[str, Sequence[str]],
    capacities: Mapping[str, int],
) -> list[tuple[str, str]]:
    """Every (mentee, mentor) pair that blocks ``matching``; empty means it is stable.

    Args:
        matching: ``mentee_id -> mentor_id`` for the matched mentees.
        mentee_prefs, mentor_prefs, capacities: as for ``stable_match``.

    Returns:
        The blocking pairs, sorted. Runs in O(P + R + size of the matching).

    Raises:
        ValueError: the inputs are invalid as for ``stable_match``, or ``matching`` is not
            a matching of this instance at all: it uses a pair that is not mutually
            acceptable, or gives a mentor more mentees than its capacity.
    """
    mentor_rank = _mentor_ranks(mentor_prefs)
    caps = _capacities(capacities)
    _check_mentee_prefs(mentee_prefs)

    load: dict[str, int] = {}
    worst: dict[str, int] = {}  # the mentor's rank of the worst mentee it holds
    for mentee, mentor in matching.items():
        rank = mentor_rank.get(mentor, _NO_RANKS).get(mentee)
        if rank is None or mentor not in mentee_prefs.get(mentee, ()):
            raise ValueError(
                f"matching pairs mentee {mentee!r} with mentor {mentor!r}, "
                "who are not mutually acceptable"
            )
        load[mentor] = load.get(mentor, 0) + 1
        worst[mentor] = max(worst.get(mentor, -1), rank)
    for mentor, n in load.items():
        if n > caps.get(mentor, 0):
            raise ValueError(
                f"matching gives mentor {mentor!r} {n} mentees, over its capacity "
                f"{caps.get(mentor, 0)}"
            )

    found: list[tuple[str, str]] = []
    for mentee, prefs in mentee_prefs.items():
        current = matching.get(mentee)
        # Only the mentors the mentee strictly prefers to its current one can block.
        for mentor in prefs:
            if mentor == current:
                break
            rank = mentor_rank.get(mentor, _NO_RANKS).get(mentee)
            cap = caps.get(mentor, 0)
            if rank is None or cap == 0:
                continue
            if load.get(mentor, 0) < cap or rank < worst[mentor]:
                found.append((mentee, mentor))
    found.sort()
    return found


def _mentor_ranks(mentor_prefs: Mapping[str, Sequence[str]]) -> dict[str, dict[str, int]]:
    """mentor -> {mentee: position in the mentor's list}; rejects duplicates."""
    ranks: dict[str, dict[str, int]] = {}
    for mentor, prefs in mentor_prefs.items():
        if isinstance(prefs, str):
            raise ValueError(f"preferences of mentor {mentor!r} are a string, not a list")
        rank = {mentee: i for i, mentee in enumerate(prefs)}
        if len(rank) != len(prefs):
            raise ValueError(
                f"mentor {mentor!r} lists mentee {_first_duplicate(prefs)!r} more than once"
            )
        ranks[mentor] = rank
    return ranks


def _check_mentee_prefs(mentee_prefs: Mapping[str, Sequence[str]]) -> None:
    for mentee, prefs in mentee_prefs.items():
        if isinstance(prefs, str):
            raise ValueError(f"preferences of mentee {mentee!r} are a string, not a list")
        if len(set(prefs)) != len(prefs):
            raise ValueError(
                f"mentee {mentee!r} lists mentor {_first_duplicate(prefs)!r} more than once"
            )


def _capacities(capacities: Mapping[str, int]) -> dict[str, int]:
    caps: dict[str, int] = {}
    for mentor, cap in capacities.items():
        try:
            value = operator.index(cap)
        except TypeError:
            raise ValueError(f"capacity of mentor {mentor!r} is not an integer: {cap!r}") from None
        if value < 0:
            raise ValueError(f"capacity of mentor {mentor!r} is negative: {value}")
        caps[mentor] = value
    return caps


def _first_duplicate(items: Sequence[str]) -> str:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    raise AssertionError("no duplicate")  # pragma: no cover - callers checked one exists
