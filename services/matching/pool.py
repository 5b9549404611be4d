"""Storage operations on the matching pools. Blocking: call through storage.run_sync.

A change to several documents runs in one transaction (storage.atomic): a mentor's slot, the
mentee and the proposal that holds them are taken or given back together, so a crash halfway
leaves neither a slot taken by no proposal nor a mentee matched to nothing. The functions that
take a `Transaction` are steps of such a change (releases.py and requests.py compose them); a
change to one document is one conditional update and runs on its own.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.common import clock, storage
from services.common.events import stable_event_id
from services.common.storage import Transaction, update_if
from services.matching.documents import (
    CriterionScore,
    Exclusion,
    PoolMember,
    ProgramRevision,
    Proposal,
    ReportingLine,
)
from services.matching.domain.model import Constraints, Evaluation, Person
from services.matching.domain.taxonomy import Taxonomy
from services.matching.profiles import PERSON_FIELDS, stored_person
from services.matching.proposed import Proposed, engine_proposal

LIVE = ("proposed", "accepted")


def next_revision(tx: Transaction, organization_id: str, program_id: str) -> int:
    """The program's next revision, taken in the caller's transaction, to stamp the mentors it
    changes with. Two transactions taking one clash on it and the store runs one again, so
    revisions commit in the order they are taken (what live.py's changed-since read needs)."""
    keys = {"organization_id": organization_id, "program_id": program_id}
    return int(tx.update_and_get(ProgramRevision, keys, upsert=True, inc__revision=1).revision)


def current_revision(organization_id: str, program_id: str) -> int:
    """The program's last committed revision (0 before any)."""
    found = (
        ProgramRevision.objects(organization_id=organization_id, program_id=program_id)
        .only("revision")
        .first()
    )
    return int(found.revision) if found is not None else 0


@dataclass(frozen=True, slots=True)
class Registration:
    """A participant as participant-registered describes them."""

    participant_id: str
    role: str
    display_name: str
    skills: list[str]
    capacity: int
    profile: bytes
    hr_person_id: str
    manager_id: str
    cohort_id: str


def add_member(
    organization_id: str,
    program_id: str,
    participant_id: str,
    role: str,
    display_name: str,
    skills: list[str],
    capacity: int,
    profile: bytes,
    hr_person_id: str,
    manager_id: str,
    cohort_id: str,
) -> None:
    add_members(
        organization_id,
        program_id,
        [
            Registration(
                participant_id,
                role,
                display_name,
                skills,
                capacity,
                profile,
                hr_person_id,
                manager_id,
                cohort_id,
            )
        ],
    )


def add_members(
    organization_id: str, program_id: str, registrations: Sequence[Registration]
) -> None:
    """Store a program's registrations in one transaction, a round trip for the members and
    one for their reporting lines; the mentors among them stamped with one revision."""
    if not registrations:
        return

    def work(tx: Transaction) -> None:
        mentors = any(r.role == "mentor" for r in registrations)
        # Stamped (again, on a redelivery: harmless) so every worker's index reads them.
        revision = next_revision(tx, organization_id, program_id) if mentors else 0
        tx.update_each(
            PoolMember,
            [
                (
                    {"organization_id": organization_id, "participant_id": r.participant_id},
                    _registered(program_id, r, revision),
                )
                for r in registrations
            ],
            upsert=True,
        )
        lines = [
            (
                {"organization_id": organization_id, "hr_person_id": r.hr_person_id},
                {"set__manager_id": r.manager_id},
            )
            for r in registrations
            if r.hr_person_id and r.manager_id
        ]
        tx.update_each(ReportingLine, lines, upsert=True)

    storage.atomic(work)


def _registered(program_id: str, r: Registration, revision: int) -> dict[str, Any]:
    # set_on_insert: a redelivered registration must not hand a mentor their slots back.
    fields: dict[str, Any] = {
        "set_on_insert__program_id": program_id,
        "set_on_insert__role": r.role,
        "set_on_insert__display_name": r.display_name,
        "set_on_insert__skills": r.skills,
        "set_on_insert__capacity": r.capacity,
        "set_on_insert__free_slots": r.capacity if r.role == "mentor" else 0,
        "set_on_insert__matched": False,
        "set_on_insert__profile": r.profile,
        "set_on_insert__hr_person_id": r.hr_person_id,
        "set_on_insert__cohort_id": r.cohort_id,
    }
    if r.role == "mentor":
        fields["set__revision"] = revision
    else:
        fields["set_on_insert__unplanned"] = True
    return fields


def set_manager(organization_id: str, hr_person_id: str, manager_id: str) -> None:
    ReportingLine.objects(organization_id=organization_id, hr_person_id=hr_person_id).update_one(
        upsert=True, set__manager_id=manager_id
    )


def update_member(organization_id: str, program_id: str, person: Registration) -> None:
    """The participant as they are now (participant-updated). A mentor's new capacity moves
    their free slots by the difference; a redelivery finds nothing to change."""
    existing = get_member(organization_id, person.participant_id)
    if existing is None:
        # The update overtook the registration (the topics are not ordered together): store
        # the member as updated; the registration, when it comes, finds them stored.
        add_members(organization_id, program_id, [person])
        return
    if existing.erased:
        return  # an update sent before the erasure must not bring the person back
    changes: dict[str, Any] = {
        "set__display_name": person.display_name,
        "set__skills": person.skills,
        "set__profile": person.profile,
        "set__hr_person_id": person.hr_person_id,
        "set__cohort_id": person.cohort_id,
    }
    if existing.role == "mentor":

        def work(tx: Transaction) -> None:
            revision = next_revision(tx, existing.organization_id, existing.program_id)
            tx.update(PoolMember, {"pk": existing.pk}, set__revision=revision, **changes)
            _resize(tx, existing.pk, person.capacity)

        storage.atomic(work)
    else:
        # The planner considers them again, as they are now.
        PoolMember.objects(pk=existing.pk).update_one(set__unplanned=True, **changes)
    if person.hr_person_id and person.manager_id:
        set_manager(organization_id, person.hr_person_id, person.manager_id)


def change_capacity(organization_id: str, participant_id: str, capacity: int) -> int:
    """Set a mentor's capacity and move their free slots by the difference, in one transaction
    with its revision stamp. Returns the difference applied."""
    member = get_member(organization_id, participant_id)
    if member is None or member.role != "mentor" or capacity < 1:
        return 0

    def work(tx: Transaction) -> int:
        revision = next_revision(tx, member.organization_id, member.program_id)
        delta = _resize(tx, member.pk, capacity)
        if delta:
            tx.update(PoolMember, {"pk": member.pk}, set__revision=revision)
        return delta

    return storage.atomic(work)


def _resize(tx: Transaction, mentor_key: Any, capacity: int) -> int:
    """A mentor's new capacity, their free slots moved by the difference; the difference."""
    member = tx.find(PoolMember, pk=mentor_key)
    if member is None or capacity < 1:
        return 0
    delta = capacity - member.capacity
    if delta == 0:
        return 0
    # Free slots may go negative when the cut is below what is taken: releases then pay the
    # debt back before anyone is proposed (see PoolMember.free_slots). Conditional on the
    # capacity read (what keeps two resizes apart where there are no transactions: unit tests).
    if tx.update(
        PoolMember,
        {"pk": mentor_key, "capacity": member.capacity},
        set__capacity=capacity,
        inc__free_slots=delta,
    ):
        return delta
    return 0


def _involving(participant_id: str) -> dict[str, Any]:
    return {"$or": [{"mentor_id": participant_id}, {"mentee_id": participant_id}]}


def withdraw_member(
    tx: Transaction, organization_id: str, program_id: str, participant_id: str, role: str
) -> list[Proposal]:
    """The participant left (participant-withdrawn): never propose them again, and release
    their live proposals, each freeing its mentor's slot and returning its mentee to the pool.
    Returns the proposals this call released (none on a redelivery); those nobody had answered
    are then `unanswered_withdrawn`, and accepted ones end as their relationship does."""
    # Upsert: a withdrawal that overtook the registration leaves a withdrawn stub, and the
    # registration's insert-only fields then find the member stored.
    stamp: dict[str, Any] = (
        {"set__revision": next_revision(tx, organization_id, program_id)}
        if role == "mentor"
        else {"set__unplanned": False}
    )
    tx.update(
        PoolMember,
        {"organization_id": organization_id, "participant_id": participant_id},
        upsert=True,
        set__withdrawn=True,
        **stamp,
        set_on_insert__program_id=program_id,
        set_on_insert__role=role,
        set_on_insert__display_name="",
        set_on_insert__capacity=0,
        set_on_insert__free_slots=0,
        set_on_insert__matched=False,
    )
    live = tx.find_all(
        Proposal,
        organization_id=organization_id,
        status__in=LIVE,
        __raw__=_involving(participant_id),
    )
    released = []
    for proposal in sorted(live, key=lambda p: p.match_id):
        # An accepted pair ends as its relationship-ended would end it: the two events reach
        # matching in either order, and both orders must leave the same status.
        status = "ended" if proposal.status == "accepted" else "withdrawn"
        done = release(tx, organization_id, proposal.match_id, status, only_from=LIVE)
        if done is not None:
            released.append(done)
    return released


def unanswered_withdrawn(
    tx: Transaction, organization_id: str, participant_id: str
) -> list[Proposal]:
    """The participant's proposals a withdrawal released before anyone answered them (by
    theirs or the other side's): those engagement must show as expired. The same on every
    call, so a redelivered withdrawal stages the same expiries (which the outbox keeps once)."""
    found = tx.find_all(
        Proposal,
        organization_id=organization_id,
        status="withdrawn",
        released_from="proposed",
        __raw__=_involving(participant_id),
    )
    return sorted(found, key=lambda p: p.match_id)


def get_member(organization_id: str, participant_id: str) -> PoolMember | None:
    return PoolMember.objects(
        organization_id=organization_id, participant_id=participant_id
    ).first()


def release(
    tx: Transaction,
    organization_id: str,
    match_id: str,
    status: str,
    exclude: str = "",
    only_from: tuple[str, ...] = ("proposed",),
) -> Proposal | None:
    """End a proposal that is in one of `only_from`: free the mentor's slot and send the mentee
    back to the pool, in the caller's transaction.

    Returns the proposal if this call changed it, None if it was not in such a state (e.g. a
    redelivery). With `exclude`, the pair is never proposed again, for that reason.
    """
    proposal = tx.find(Proposal, organization_id=organization_id, match_id=match_id)
    if proposal is None or proposal.status not in only_from:
        return None
    # Conditional on the state it was read in (what keeps two releases from both winning
    # where there are no transactions: unit tests); the proposal records the state it left.
    source = proposal.status
    if not tx.update(
        Proposal,
        {"pk": proposal.pk, "status": source},
        set__status=status,
        set__released_from=source,
    ):
        return None
    member = {"organization_id": organization_id}
    tx.update(
        PoolMember,
        {**member, "participant_id": proposal.mentor_id},
        inc__free_slots=1,
        set__revision=next_revision(tx, organization_id, proposal.program_id),
    )
    tx.update(
        PoolMember,
        {**member, "participant_id": proposal.mentee_id},
        set__matched=False,
        set__unplanned=True,
    )
    if exclude:
        add_exclusion(
            tx,
            organization_id,
            proposal.program_id,
            proposal.mentor_id,
            proposal.mentee_id,
            exclude,
        )
    released: Proposal = tx.find(Proposal, pk=proposal.pk)
    return released


def add_exclusion(
    tx: Transaction,
    organization_id: str,
    program_id: str,
    mentor_id: str,
    mentee_id: str,
    reason: str,
) -> None:
    """Never propose the pair again; if it is excluded already, the first reason stands."""
    tx.update(
        Exclusion,
        {
            "organization_id": organization_id,
            "program_id": program_id,
            "mentor_id": mentor_id,
            "mentee_id": mentee_id,
        },
        upsert=True,
        set_on_insert__reason=reason,
    )


def accept(organization_id: str, match_id: str) -> None:
    update_if(
        Proposal.objects(organization_id=organization_id, match_id=match_id),
        {"status": "proposed"},
        set__status="accepted",
    )


@dataclass(frozen=True, slots=True)
class Pool:
    """A program's matching situation, loaded for one planning step."""

    waiting_mentees: list[Person]
    mentors: list[Person]  # every mentor, free_slots as stored
    constraints: Constraints
    names: dict[str, str]
    # Each loaded member's document id: reservations update by id (see `reserve`).
    keys: dict[str, Any]


def load_pool(
    organization_id: str, program_id: str, taxonomy: Taxonomy, cohort_id: str = ""
) -> Pool:
    """The program's waiting mentees and its mentors, read as stored rather than as documents:
    a bulk run reads whole programs (100,000 members), and building that many mongoengine
    documents took longer than the database takes to send them."""
    members = PoolMember.objects(
        organization_id=organization_id, program_id=program_id, withdrawn__ne=True
    )
    waiting_query = members.filter(role="mentee", matched=False)
    if cohort_id:
        waiting_query = waiting_query.filter(cohort_id=cohort_id)
    fields = (*PERSON_FIELDS, "id")
    waiting = list(waiting_query.only(*fields).as_pymongo())
    mentors = list(members.filter(role="mentor").only(*fields, "display_name").as_pymongo())
    excluded = frozenset(
        (e["mentor_id"], e["mentee_id"])
        for e in Exclusion.objects(organization_id=organization_id, program_id=program_id)
        .only("mentor_id", "mentee_id")
        .as_pymongo()
    )
    managers = {
        line["hr_person_id"]: line["manager_id"]
        for line in ReportingLine.objects(organization_id=organization_id)
        .only("hr_person_id", "manager_id")
        .as_pymongo()
    }
    return Pool(
        waiting_mentees=[stored_person(m, taxonomy) for m in waiting],
        mentors=[stored_person(m, taxonomy) for m in mentors],
        constraints=Constraints(excluded=excluded, manager_of=managers),
        names={m["participant_id"]: m.get("display_name") or "" for m in mentors},
        keys={m["participant_id"]: m["_id"] for m in (*waiting, *mentors)},
    )


def reserve(tx: Transaction, mentor_key: Any, mentee_key: Any, revision: int | None = None) -> bool:
    """Take a mentor slot and the mentee (by document id), in the caller's transaction, or
    neither: each only while free, and not from someone who has withdrawn meanwhile. The
    mentor is stamped with `revision` (pool.next_revision of their program; taken here when
    None: a caller reserving many pairs takes one for all).

    By id plus the condition: the local MongoDB-wire server plans a filter from one index at a
    time, and a condition beside the `(organization_id, participant_id)` key makes it scan the
    organisation (see storage.update_if); the pool's snapshot (`Pool.keys`) has the ids.
    """
    if revision is None:
        mentor = tx.find(PoolMember, pk=mentor_key)
        if mentor is None:
            return False
        revision = next_revision(tx, mentor.organization_id, mentor.program_id)
    if not tx.update(
        PoolMember,
        {"pk": mentor_key, "free_slots__gt": 0, "withdrawn__ne": True},
        dec__free_slots=1,
        set__revision=revision,
    ):
        return False
    if tx.update(
        PoolMember,
        {"pk": mentee_key, "matched": False, "withdrawn__ne": True},
        set__matched=True,
        set__unplanned=False,
    ):
        return True
    tx.update(PoolMember, {"pk": mentor_key}, inc__free_slots=1)
    return False


def reserve_all(tx: Transaction, pairs: Sequence[tuple[Any, Any]], revision: int) -> list[bool]:
    """`reserve` for many (mentor id, mentee id) pairs, in order: which pairs were reserved,
    by position. The mentors reserved for are stamped with `revision`.

    The members are read once in the caller's transaction, the pairs decided in order as a
    pair at a time would (a slot while the mentor has one and has not withdrawn, the mentee
    while free and not withdrawn), then written in a round trip for the mentees and one per
    number of slots taken from a mentor, each guarded as `reserve` is. A bulk run reserves
    tens of thousands of pairs: an update per member took the database twice as long, and
    building each update's query twice as long again. Members changed by another writer
    after the read make the transaction clash and run again (storage.atomic)."""
    if not pairs:
        return []
    fields = ("free_slots", "matched", "withdrawn")
    members = {
        raw["_id"]: raw
        for raw in tx.find_stored(
            PoolMember, fields, pk__in=list({key for pair in pairs for key in pair})
        )
    }
    free = {
        mentor: max(0, int(raw.get("free_slots") or 0))
        for mentor, raw in members.items()
        if not raw.get("withdrawn")
    }
    waiting = {
        key for key, raw in members.items() if not raw.get("matched") and not raw.get("withdrawn")
    }
    reserved = []
    for mentor, mentee in pairs:
        took = free.get(mentor, 0) > 0 and mentee in waiting
        if took:
            free[mentor] -= 1
            waiting.discard(mentee)
        reserved.append(took)
    taken = Counter(mentor for (mentor, _), took in zip(pairs, reserved, strict=True) if took)
    by_count: dict[int, list[Any]] = {}
    for mentor, count in taken.items():
        by_count.setdefault(count, []).append(mentor)
    written = 0
    for count, mentors in by_count.items():
        written += tx.update_all(
            PoolMember,
            {"pk__in": mentors, "free_slots__gte": count, "withdrawn__ne": True},
            dec__free_slots=count,
            set__revision=revision,
        )
    mentees = [mentee for (_, mentee), took in zip(pairs, reserved, strict=True) if took]
    if mentees:
        written += tx.update_all(
            PoolMember,
            {"pk__in": mentees, "matched": False, "withdrawn__ne": True},
            set__matched=True,
            set__unplanned=False,
        )
    if written != len(taken) + len(mentees):  # pragma: no cover - the read is the snapshot
        raise RuntimeError("pool members changed between the read and the writes")
    return reserved


def new_proposal(
    organization_id: str,
    program_id: str,
    mentor_id: str,
    mentee_id: str,
    evaluation: Evaluation,
    *,
    origin: str = "engine",
    run_id: str = "",
    override_reason: str = "",
    proposed_by: str = "",
    expires_at: datetime | None = None,
    next_choices: tuple[str, ...] = (),
) -> Proposal:
    """A reserved pair as an unpublished proposal (the outbox row of its match-proposed), to
    insert in the transaction that reserved it."""
    match_id = str(uuid.uuid4())
    return Proposal(
        organization_id=organization_id,
        program_id=program_id,
        match_id=match_id,
        mentor_id=mentor_id,
        mentee_id=mentee_id,
        score=evaluation.score,
        breakdown=[
            CriterionScore(criterion=c.kind, score=c.score, weight=c.weight, detail=c.detail)
            for c in evaluation.breakdown
        ],
        status="proposed",
        origin=origin,
        run_id=run_id,
        override_reason=override_reason,
        proposed_by=proposed_by,
        expires_at=expires_at,
        next_choices=list(next_choices),
        created_at=clock.now(),
        event_id=stable_event_id("match-proposed", organization_id, match_id),
    )


@dataclass(frozen=True, slots=True)
class Pair:
    """A planned pair, explained."""

    mentor_id: str
    mentee_id: str
    evaluation: Evaluation


def propose(
    organization_id: str,
    program_id: str,
    keys: Mapping[str, Any],
    pairs: Sequence[Pair],
    run_id: str = "",
) -> list[Proposed]:
    """Reserve and store the engine's pairs in one transaction (a slot, the mentee and the
    proposal holding them commit together); returns the proposals stored. A pair whose slot or
    mentee was taken meanwhile is left out: the next run retries that mentee. `keys` are the
    members' document ids (Pool.keys). A bulk run calls this for a few hundred pairs at a time.
    """

    def work(tx: Transaction) -> list[Proposed]:
        revision = next_revision(tx, organization_id, program_id)
        reserved = reserve_all(
            tx, [(keys[pair.mentor_id], keys[pair.mentee_id]) for pair in pairs], revision
        )
        now = clock.now()
        stored = [
            engine_proposal(
                organization_id,
                program_id,
                pair.mentor_id,
                pair.mentee_id,
                pair.evaluation,
                run_id,
                now,
            )
            for pair, took in zip(pairs, reserved, strict=True)
            if took
        ]
        tx.insert_stored(Proposal, [p.stored() for p in stored])
        return stored

    return storage.atomic(work)


def unpublished(organization_id: str, program_id: str) -> list[Proposal]:
    return list(
        Proposal.objects(
            organization_id=organization_id, program_id=program_id, published=False
        ).order_by("created_at")
    )


def programs_with_unpublished() -> set[tuple[str, str]]:
    return {
        (p.organization_id, p.program_id)
        for p in Proposal.objects(published=False).only("organization_id", "program_id")
    }


def unpublished_since(created_before: datetime, limit: int) -> list[Proposal]:
    """Proposals stored before `created_before` and still unpublished, oldest first: those
    their writer left (the relay's share; the writer publishes its own right after its commit).
    """
    return list(
        Proposal.objects(published=False, created_at__lte=created_before)
        .order_by("created_at")
        .limit(limit)
    )


def mark_published(proposal_ids: list[object]) -> None:
    Proposal.objects(pk__in=proposal_ids).update(set__published=True)


def overdue_requests(now: datetime) -> list[Proposal]:
    return list(Proposal.objects(status="proposed", origin="mentee_request", expires_at__lt=now))


def complete(organization_id: str, match_id: str) -> None:
    """The relationship reached its end: the mentor's slot is free; the mentee is done. One
    transaction, so the slot comes back exactly when the proposal ends."""

    def work(tx: Transaction) -> None:
        proposal = tx.find(Proposal, organization_id=organization_id, match_id=match_id)
        if proposal is None or proposal.status not in LIVE:
            return
        if tx.update(Proposal, {"pk": proposal.pk, "status": proposal.status}, set__status="ended"):
            tx.update(
                PoolMember,
                {"organization_id": organization_id, "participant_id": proposal.mentor_id},
                inc__free_slots=1,
                set__revision=next_revision(tx, organization_id, proposal.program_id),
            )

    storage.atomic(work)
