"""Self-matching and coordinator matching: one chosen pair at a time, checked by the same
rules as the engine, each reserved and stored in one transaction. Blocking (storage): call
through storage.run_sync."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from services.common import clock, storage
from services.common.api import matching_pb2
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.storage import Transaction
from services.matching import configuration, live, pool
from services.matching.blocks import Blocks
from services.matching.documents import PoolMember, Proposal
from services.matching.domain.criteria import evaluate
from services.matching.domain.model import Evaluation, MatchingConfig, Person
from services.matching.domain.taxonomy import Taxonomy
from services.matching.profiles import person

# A soft criterion scoring below this earns the coordinator a warning.
WEAK_CRITERION = 0.5


@dataclass(frozen=True, slots=True)
class Recommendation:
    mentor: Person
    name: str
    evaluation: Evaluation


def _people(organization_id: str, program_id: str, *ids: str) -> tuple[pool.Pool, list[Person]]:
    taxonomy = configuration.load_taxonomy(organization_id)
    p = pool.load_pool(organization_id, program_id, taxonomy)
    everyone = {x.participant_id: x for x in p.mentors}
    for member_id in ids:
        member = pool.get_member(organization_id, member_id)
        if member is None or member.program_id != program_id:
            raise NotFound(f"{member_id!r} is not a participant of this program")
        if member.withdrawn:
            raise FailedPrecondition(f"{member_id!r} has withdrawn from the program")
    everyone.update({x.participant_id: x for x in p.waiting_mentees})
    found = []
    for member_id in ids:
        if member_id not in everyone:
            raise FailedPrecondition(f"mentee_id: {member_id!r} already has a live match")
        found.append(everyone[member_id])
    return p, found


def recommend(
    organization_id: str, program_id: str, mentee_id: str, limit: int
) -> list[Recommendation]:
    """The mentee's best mentors with a free slot, from the program's live index (live.py):
    what ranking one index over every free mentor would give, without loading the pool."""
    settings = configuration.load_config(organization_id, program_id)
    member = pool.get_member(organization_id, mentee_id)
    if member is None or member.program_id != program_id:
        raise NotFound(f"{mentee_id!r} is not a participant of this program")
    if member.withdrawn:
        raise FailedPrecondition(f"{mentee_id!r} has withdrawn from the program")
    if member.role != "mentee":
        raise InvalidArgument("mentee_id", "is a mentor")
    if member.matched:
        raise FailedPrecondition(f"mentee_id: {mentee_id!r} already has a live match")
    program = live.program(organization_id, program_id, settings)
    with program.lock:
        program.sync()
        mentee = person(member, program.taxonomy)
        blocks = Blocks(organization_id, program_id, program.config.reporting_rule, [mentee])
        top = program.top(mentee, limit, blocks)
        constraints = blocks.constraints()
        return [
            Recommendation(
                m.person,
                m.name,
                evaluate(m.person, mentee, program.config, program.taxonomy, constraints),
            )
            for m, _ in top
        ]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A program's matching settings and pool, read before the transaction that proposes from
    them; the transaction's reservations check what may have changed since."""

    organization_id: str
    program_id: str
    settings: matching_pb2.MatchingConfig
    config: MatchingConfig
    taxonomy: Taxonomy
    pool: pool.Pool


def snapshot(organization_id: str, program_id: str) -> Snapshot:
    settings = configuration.load_config(organization_id, program_id)
    taxonomy = configuration.load_taxonomy(organization_id)
    return Snapshot(
        organization_id,
        program_id,
        settings,
        configuration.engine_config(settings),
        taxonomy,
        pool.load_pool(organization_id, program_id, taxonomy),
    )


def _propose_choice(
    tx: Transaction, program: Snapshot, mentee: Person, mentee_key: Any, choices: list[str]
) -> Proposal | None:
    """Propose the first chosen mentor who is allowed and has a free slot; None if none is."""
    mentors = {m.participant_id: m for m in program.pool.mentors}
    for index, mentor_id in enumerate(choices):
        mentor = mentors.get(mentor_id)
        if mentor is None:
            continue
        explained = evaluate(
            mentor, mentee, program.config, program.taxonomy, program.pool.constraints
        )
        if not explained.allowed or not pool.reserve(tx, program.pool.keys[mentor_id], mentee_key):
            continue
        proposal = pool.new_proposal(
            program.organization_id,
            program.program_id,
            mentor_id,
            mentee.participant_id,
            explained,
            origin="mentee_request",
            expires_at=clock.now() + timedelta(seconds=program.settings.request_expiry_seconds),
            next_choices=tuple(choices[index + 1 :]),
        )
        tx.insert(proposal)
        return proposal
    return None


def request_mentor(
    organization_id: str, program_id: str, mentee_id: str, choices: list[str]
) -> Proposal | None:
    """Propose the first chosen mentor who is allowed and has a free slot; None if none is."""
    program = snapshot(organization_id, program_id)
    mentee = next((m for m in program.pool.waiting_mentees if m.participant_id == mentee_id), None)
    if mentee is None:
        return None
    key = program.pool.keys[mentee_id]
    return storage.atomic(lambda tx: _propose_choice(tx, program, mentee, key, choices))


def needs_next_choice(proposal: Proposal | None) -> bool:
    """Whether ending this proposal asks the mentee's next choice (see `ask_next_choice`)."""
    return (
        proposal is not None and proposal.origin == "mentee_request" and bool(proposal.next_choices)
    )


def ask_next_choice(
    tx: Transaction, released: Proposal | None, program: Snapshot | None
) -> list[Proposal]:
    """A mentee's request was declined or expired, or its mentor left: ask their next choice,
    in the transaction that released it. `program` is the snapshot read before it (None when
    the proposal had no choices left); returns the proposal made, if any."""
    if program is None or released is None or not needs_next_choice(released):
        return []
    member = tx.find(
        PoolMember, organization_id=released.organization_id, participant_id=released.mentee_id
    )
    if member is None or member.withdrawn:
        return []
    mentee = person(member, program.taxonomy)
    made = _propose_choice(tx, program, mentee, member.pk, list(released.next_choices))
    return [made] if made is not None else []


def propose_by_hand(
    organization_id: str,
    program_id: str,
    mentor_id: str,
    mentee_id: str,
    override_reason: str,
    proposed_by: str = "",
) -> tuple[Proposal, list[str]]:
    """A coordinator's pair: refused on hard violations unless overridden with a reason."""
    settings = configuration.load_config(organization_id, program_id)
    config = configuration.engine_config(settings)
    taxonomy = configuration.load_taxonomy(organization_id)
    p, (mentor, mentee) = _people(organization_id, program_id, mentor_id, mentee_id)
    if mentor.role != "mentor":
        raise InvalidArgument("mentor_id", "is not a mentor")
    if mentee.role != "mentee":
        raise InvalidArgument("mentee_id", "is not a mentee")
    explained = evaluate(mentor, mentee, config, taxonomy, p.constraints)
    if explained.violations and not override_reason:
        raise FailedPrecondition(
            "override: the pair breaks hard rules ("
            + "; ".join(explained.violations)
            + "); set override with override_reason to pair them anyway"
        )
    warnings = [f"overridden: {v}" for v in explained.violations]
    hard_failures = {
        c.kind
        for c in explained.breakdown
        if any(v.startswith(f"{c.kind} (hard)") for v in explained.violations)
    }
    warnings += [
        f"weak {c.kind}: {c.detail}"
        for c in explained.breakdown
        if c.weight > 0 and c.score < WEAK_CRITERION and c.kind not in hard_failures
    ]

    def store(tx: Transaction) -> Proposal:
        # The slot, the mentee and the proposal holding them commit together, or nothing does.
        if not pool.reserve(tx, p.keys[mentor_id], p.keys[mentee_id]):
            raise FailedPrecondition("mentor_id: the mentor has no free capacity")
        proposal = pool.new_proposal(
            organization_id,
            program_id,
            mentor_id,
            mentee_id,
            explained,
            origin="coordinator",
            override_reason=override_reason,
            proposed_by=proposed_by,
        )
        tx.insert(proposal)
        return proposal

    return storage.atomic(store), warnings
