"""Proposals that end before or without a relationship: declined, expired, withdrawn, ended.

Each ending is one transaction with everything that follows from it: the mentor's slot back,
the mentee back in the pool (pool.release), the mentee's next choice asked when it was their
request (requests.ask_next_choice), and match-expired staged in the outbox when nobody will
answer it. A crash leaves either all of it or none, and a redelivered event finds the proposal
ended and changes nothing. Each returns what to publish once committed (Committed).
Blocking (storage): call through storage.run_sync.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from services.common import outbox, storage
from services.common.storage import Transaction
from services.matching import pool, requests
from services.matching.documents import Proposal
from services.matching.messages import expired_event
from services.matching.publication import Committed


def _program_if_asked(
    organization_id: str, program_id: str, proposals: Iterable[Proposal | None]
) -> requests.Snapshot | None:
    """The program's snapshot when ending one of these proposals asks a mentee's next choice:
    read before the transaction, which checks the choice again (pool.reserve)."""
    if any(requests.needs_next_choice(p) for p in proposals):
        return requests.snapshot(organization_id, program_id)
    return None


def _current(organization_id: str, match_id: str) -> Proposal | None:
    found: Proposal | None = Proposal.objects(
        organization_id=organization_id, match_id=match_id
    ).first()
    return found


def _end_request(organization_id: str, match_id: str, status: str, exclude: str) -> Committed:
    proposal = _current(organization_id, match_id)
    if proposal is None:
        return Committed()
    program = _program_if_asked(organization_id, proposal.program_id, [proposal])

    def work(tx: Transaction) -> Committed:
        released = pool.release(tx, organization_id, match_id, status, exclude=exclude)
        if released is None:
            return Committed()  # answered, expired or withdrawn before: a redelivery
        events = [expired_event(released)] if status == "expired" else []
        outbox.stage(tx, events)
        return Committed(events, requests.ask_next_choice(tx, released, program))

    return storage.atomic(work)


def decline(organization_id: str, match_id: str) -> Committed:
    """A side declined: the pair is never proposed again; a request moves on to the mentee's
    next choice."""
    return _end_request(organization_id, match_id, "declined", exclude="declined")


def expire(organization_id: str, match_id: str) -> Committed:
    """A mentee's request went unanswered: match-expired, and the mentee's next choice."""
    return _end_request(organization_id, match_id, "expired", exclude="")


def end(organization_id: str, match_id: str, exclude: str) -> None:
    """The relationship ended early (its acceptance may not have reached matching yet: the
    topics are not ordered together). With `exclude`, the pair is never proposed again.

    A withdrawal or an erasure that reached matching before the acceptance released the
    proposal already (slot back, status withdrawn): the relationship it became ends it all the
    same, so every order of the three events leaves it ended."""

    def work(tx: Transaction) -> None:
        released = pool.release(
            tx, organization_id, match_id, "ended", exclude=exclude, only_from=pool.LIVE
        )
        if released is None:
            tx.update(
                Proposal,
                {"organization_id": organization_id, "match_id": match_id, "status": "withdrawn"},
                set__status="ended",
            )

    storage.atomic(work)


@dataclass
class Withdrawal:
    """The proposals a withdrawal released (none on a redelivery), and what it committed."""

    released: list[Proposal] = field(default_factory=list)
    committed: Committed = field(default_factory=Committed)


def withdraw(
    organization_id: str,
    program_id: str,
    participant_id: str,
    role: str,
    *,
    expire_unanswered: bool = True,
) -> Withdrawal:
    """The participant left: never propose them again, release their live proposals, ask the
    next choice of each mentee whose requested mentor left, and (with `expire_unanswered`)
    stage match-expired for every proposal of theirs that a withdrawal released unanswered
    (by theirs or the other side's): nobody will answer those. Staged again on a redelivery,
    which the outbox keeps once."""
    live = Proposal.objects(organization_id=organization_id, status__in=pool.LIVE).filter(
        __raw__={"$or": [{"mentor_id": participant_id}, {"mentee_id": participant_id}]}
    )
    program = _program_if_asked(organization_id, program_id, live)

    def work(tx: Transaction) -> Withdrawal:
        released = pool.withdraw_member(tx, organization_id, program_id, participant_id, role)
        made = [p for r in released for p in requests.ask_next_choice(tx, r, program)]
        events = []
        if expire_unanswered:
            unanswered = pool.unanswered_withdrawn(tx, organization_id, participant_id)
            events = [expired_event(p) for p in unanswered]
            outbox.stage(tx, events)
        return Withdrawal(released, Committed(events, made))

    return storage.atomic(work)
