"""CONTINUOUS mode, incrementally: each batch of arrivals is assigned against the program's live
index of free mentor slots (live.py) instead of solving the whole program again. Blocking
(storage): call through storage.run_sync, holding the program's lock.

Arrivals are the mentees the store flags `unplanned`: registered, updated, or back in the pool
(a decline, an expiry, their mentor left). Each arrival's candidates are its best mentors by the
program's criteria, from the index's search limited to candidates.BUDGET per sought skill (as
bulk runs above EXACT_CELLS do; the candidates found are ranked exactly), filtered by the
always-hard rules (blocks.py); the batch is then assigned optimally over those candidates within
the mentors' free slots (assignment.solve_assignment: most mentees matched, then best total).
What an arrival costs depends on its candidates, not on how many people the program holds.

Mentees left without a mentor wait in memory ("stuck"); they are offered only the mentors who
gained a slot since (joined, came back, more capacity): O(stuck) per batch that has such a
mentor, never per arrival. The first batch a process plans for a program is today's full solve,
which starts that bookkeeping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from services.matching.blocks import Blocks
from services.matching.documents import PoolMember
from services.matching.domain.assignment import Assignment, Pair, solve_assignment
from services.matching.domain.candidates import BUDGET, CandidateIndex
from services.matching.domain.model import Person
from services.matching.live import LiveProgram, Mentor
from services.matching.profiles import person


@dataclass
class Waiting:
    """The program's considered mentees still without a mentor: id -> (person, document id)."""

    stuck: dict[str, tuple[Person, Any]] = field(default_factory=dict)


@dataclass
class Assigned:
    """A batch's pairs, with the people and document ids to explain and store them."""

    assignments: list[Assignment] = field(default_factory=list)
    mentees: dict[str, Person] = field(default_factory=dict)
    mentors: dict[str, Person] = field(default_factory=dict)
    keys: dict[str, Any] = field(default_factory=dict)
    blocks: Blocks | None = None


def started(program: LiveProgram) -> bool:
    return isinstance(program.planner_state, Waiting)


def start(program: LiveProgram, stuck: Sequence[tuple[Person, Any]], seen: Sequence[Any]) -> None:
    """After the first full solve: who was left waiting, and the flags it answered (`seen`:
    the document ids of the mentees it considered)."""
    program.planner_state = Waiting({p.participant_id: (p, key) for p, key in stuck})
    program.gained.clear()
    if seen:
        PoolMember.objects(pk__in=list(seen)).update(set__unplanned=False)


def assign(program: LiveProgram) -> Assigned:
    """The next batch: flagged arrivals against every free mentor, stuck mentees against the
    mentors who gained a slot; the assignment and who took part."""
    state: Waiting = program.planner_state
    flagged = list(
        PoolMember.objects(
            organization_id=program.organization_id,
            program_id=program.program_id,
            unplanned=True,
        )
    )
    arrivals: list[tuple[Person, Any]] = []
    for doc in flagged:
        state.stuck.pop(doc.participant_id, None)  # considered again, as they are now
        if doc.role == "mentee" and not doc.matched and not doc.withdrawn:
            arrivals.append((person(doc, program.taxonomy), doc.pk))
    gained = [program.alive[pid] for pid in sorted(program.gained) if pid in program.alive]
    program.gained.clear()
    stuck = list(state.stuck.values()) if gained else []
    result = Assigned()
    everyone = [p for p, _ in arrivals] + [p for p, _ in stuck]
    if everyone and program.alive:
        k = program.config.candidates_per_mentee
        lists = program.candidates([p for p, _ in arrivals], k, BUDGET)
        lists += _against(program, gained, [p for p, _ in stuck], k)
        blocks = Blocks(
            program.organization_id, program.program_id, program.config.reporting_rule, everyone
        )
        pairs = _allowed(blocks, everyone, lists, k)
        capacities = {
            m.person.participant_id: m.person.free_slots for found in lists for m, _ in found
        }
        result = Assigned(
            solve_assignment(pairs, capacities) if pairs else [],
            {p.participant_id: p for p in everyone},
            {m.person.participant_id: m.person for found in lists for m, _ in found},
            {},
            blocks,
        )
        result.keys = {p.participant_id: key for p, key in (*arrivals, *stuck)}
        result.keys.update((m.person.participant_id, m.key) for found in lists for m, _ in found)
    taken = {a.mentee_id for a in result.assignments}
    for p, key in (*arrivals, *stuck):
        if p.participant_id in taken:
            state.stuck.pop(p.participant_id, None)
        else:
            state.stuck[p.participant_id] = (p, key)
    # The flags answered, but those of the mentees paired: their reservation clears it
    # (pool.reserve_all), and a plan that is never stored leaves them to the next batch.
    answered = [d.pk for d in flagged if d.participant_id not in taken]
    if answered:
        PoolMember.objects(pk__in=answered).update(set__unplanned=False)
    return result


def _against(
    program: LiveProgram, gained: Sequence[Mentor], stuck: Sequence[Person], k: int
) -> list[list[tuple[Mentor, float]]]:
    """The stuck mentees' best among the mentors who gained a slot (an index over just them)."""
    if not gained or not stuck:
        return [[] for _ in stuck]
    index = CandidateIndex([m.person for m in gained], program.config, program.taxonomy)
    by_id = {m.person.participant_id: m for m in gained}
    lists: list[list[tuple[Mentor, float]]] = [[] for _ in stuck]
    pe, pm, score = index.top_many(stuck, k + 8)
    ids = index.mentor_ids
    for e, j, s in zip(pe.tolist(), pm.tolist(), score.tolist(), strict=True):
        lists[e].append((by_id[ids[j]], s))
    return lists


def _allowed(
    blocks: Blocks,
    mentees: Sequence[Person],
    lists: Sequence[Sequence[tuple[Mentor, float]]],
    k: int,
) -> list[Pair]:
    """Each mentee's k best candidates that score above 0 and pass the always-hard rules."""
    blocks.learn(m.person for found in lists for m, _ in found)
    pairs: list[Pair] = []
    for mentee, found in zip(mentees, lists, strict=True):
        kept = [
            Pair(mentee.participant_id, m.person.participant_id, s)
            for m, s in found
            if s > 0 and blocks.allowed(m.person, mentee)
        ]
        pairs += kept[:k]
    return pairs


def settle(program: LiveProgram, mentor_ids: Sequence[str], mentee_keys: Sequence[Any]) -> None:
    """Pairs the store refused (a slot or the mentee taken meanwhile): the mentees are flagged
    for the next batch, and the mentors offered again to those waiting."""
    program.gained.update(mentor_ids)
    if mentee_keys:
        PoolMember.objects(pk__in=list(mentee_keys), matched=False).update(set__unplanned=True)
