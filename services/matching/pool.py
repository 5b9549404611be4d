"""Storage operations on the matching pools. Blocking: call through storage.run_sync."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from mongoengine.errors import NotUniqueError

from services.common import clock
from services.common.events import stable_event_id
from services.common.storage import update_if
from services.matching.documents import (
    CriterionScore,
    Exclusion,
    PoolMember,
    Proposal,
    ReportingLine,
)
from services.matching.domain.model import Constraints, Evaluation, Person
from services.matching.domain.taxonomy import Taxonomy
from services.matching.profiles import person

LIVE = ("proposed", "accepted")


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
    # set_on_insert: a redelivered registration must not hand a mentor their slots back.
    PoolMember.objects(organization_id=organization_id, participant_id=participant_id).update_one(
        upsert=True,
        set_on_insert__program_id=program_id,
        set_on_insert__role=role,
        set_on_insert__display_name=display_name,
        set_on_insert__skills=skills,
        set_on_insert__capacity=capacity,
        set_on_insert__free_slots=capacity if role == "mentor" else 0,
        set_on_insert__matched=False,
        set_on_insert__profile=profile,
        set_on_insert__hr_person_id=hr_person_id,
        set_on_insert__cohort_id=cohort_id,
    )
    if hr_person_id and manager_id:
        set_manager(organization_id, hr_person_id, manager_id)


def set_manager(organization_id: str, hr_person_id: str, manager_id: str) -> None:
    ReportingLine.objects(organization_id=organization_id, hr_person_id=hr_person_id).update_one(
        upsert=True, set__manager_id=manager_id
    )


def update_member(
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
    """The participant as they are now (participant-updated). A mentor's new capacity moves
    their free slots by the difference; a redelivery finds nothing to change."""
    existing = get_member(organization_id, participant_id)
    if existing is None:
        # The update overtook the registration (the topics are not ordered together): store
        # the member as updated; the registration, when it comes, finds them stored.
        add_member(
            organization_id,
            program_id,
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
        return
    if existing.erased:
        return  # an update sent before the erasure must not bring the person back
    PoolMember.objects(pk=existing.pk).update_one(
        set__display_name=display_name,
        set__skills=skills,
        set__profile=profile,
        set__hr_person_id=hr_person_id,
        set__cohort_id=cohort_id,
    )
    if existing.role == "mentor":
        change_capacity(organization_id, participant_id, capacity)
    if hr_person_id and manager_id:
        set_manager(organization_id, hr_person_id, manager_id)


def change_capacity(organization_id: str, participant_id: str, capacity: int) -> int:
    """Set a mentor's capacity and move their free slots by the difference, in one update
    conditional on the capacity it was computed from. Returns the difference applied."""
    for _ in range(10):
        member = get_member(organization_id, participant_id)
        if member is None or member.role != "mentor" or capacity < 1:
            return 0
        delta = capacity - member.capacity
        if delta == 0:
            return 0
        # Free slots may go negative when the cut is below what is taken: releases then pay
        # the debt back before anyone is proposed (see PoolMember.free_slots).
        if PoolMember.objects(pk=member.pk, capacity=member.capacity).update_one(
            set__capacity=capacity, inc__free_slots=delta
        ):
            return delta
    raise RuntimeError(f"capacity of {participant_id} keeps changing; retry")


def withdraw_member(
    organization_id: str, program_id: str, participant_id: str, role: str
) -> list[Proposal]:
    """The participant left (participant-withdrawn): never propose them again, and release
    their live proposals, each freeing its mentor's slot and returning its mentee to the pool.
    Returns the proposals this call released (none on a redelivery); those nobody had answered
    are then `unanswered_withdrawn`."""
    # Upsert: a withdrawal that overtook the registration leaves a withdrawn stub, and the
    # registration's insert-only fields then find the member stored.
    PoolMember.objects(organization_id=organization_id, participant_id=participant_id).update_one(
        upsert=True,
        set__withdrawn=True,
        set_on_insert__program_id=program_id,
        set_on_insert__role=role,
        set_on_insert__display_name="",
        set_on_insert__capacity=0,
        set_on_insert__free_slots=0,
        set_on_insert__matched=False,
    )
    live = Proposal.objects(organization_id=organization_id, status__in=LIVE).filter(
        __raw__={"$or": [{"mentor_id": participant_id}, {"mentee_id": participant_id}]}
    )
    released = []
    for proposal in list(live):
        done = release(organization_id, proposal.match_id, "withdrawn", only_from=LIVE)
        if done is not None:
            released.append(done)
    return released


def unanswered_withdrawn(organization_id: str, participant_id: str) -> list[Proposal]:
    """The participant's proposals a withdrawal released before anyone answered them (by
    theirs or the other side's): those engagement must show as expired. The same on every
    call, so a redelivered withdrawal republishes the same expiries."""
    return list(
        Proposal.objects(
            organization_id=organization_id, status="withdrawn", released_from="proposed"
        )
        .filter(__raw__={"$or": [{"mentor_id": participant_id}, {"mentee_id": participant_id}]})
        .order_by("match_id")
    )


def get_member(organization_id: str, participant_id: str) -> PoolMember | None:
    return PoolMember.objects(
        organization_id=organization_id, participant_id=participant_id
    ).first()


def release(
    organization_id: str,
    match_id: str,
    status: str,
    exclude: str = "",
    only_from: tuple[str, ...] = ("proposed",),
) -> Proposal | None:
    """End a proposal that is in one of `only_from`: free the mentor's slot and send the mentee
    back to the pool.

    Returns the proposal if this call changed it, None if it was not in such a state (e.g. a
    redelivery). With `exclude`, the pair is never proposed again, for that reason.
    """
    proposal = Proposal.objects(organization_id=organization_id, match_id=match_id).first()
    if proposal is None:
        return None
    # One state at a time, so the proposal records which one it left.
    for source in only_from:
        if Proposal.objects(pk=proposal.pk, status=source).update_one(
            set__status=status, set__released_from=source
        ):
            break
    else:
        return None
    PoolMember.objects(
        organization_id=organization_id, participant_id=proposal.mentor_id
    ).update_one(inc__free_slots=1)
    PoolMember.objects(
        organization_id=organization_id, participant_id=proposal.mentee_id
    ).update_one(set__matched=False)
    if exclude:
        add_exclusion(
            organization_id, proposal.program_id, proposal.mentor_id, proposal.mentee_id, exclude
        )
    proposal.reload()
    return proposal


def add_exclusion(
    organization_id: str, program_id: str, mentor_id: str, mentee_id: str, reason: str
) -> None:
    try:
        Exclusion(
            organization_id=organization_id,
            program_id=program_id,
            mentor_id=mentor_id,
            mentee_id=mentee_id,
            reason=reason,
        ).save(force_insert=True)
    except NotUniqueError:
        pass  # excluded already; the first reason stands


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


def load_pool(
    organization_id: str, program_id: str, taxonomy: Taxonomy, cohort_id: str = ""
) -> Pool:
    members = PoolMember.objects(
        organization_id=organization_id, program_id=program_id, withdrawn__ne=True
    )
    waiting = members.filter(role="mentee", matched=False)
    if cohort_id:
        waiting = waiting.filter(cohort_id=cohort_id)
    mentors = list(members.filter(role="mentor"))
    excluded = frozenset(
        (e.mentor_id, e.mentee_id)
        for e in Exclusion.objects(organization_id=organization_id, program_id=program_id)
    )
    managers = {
        line.hr_person_id: line.manager_id
        for line in ReportingLine.objects(organization_id=organization_id)
    }
    return Pool(
        waiting_mentees=[person(m, taxonomy) for m in waiting],
        mentors=[person(m, taxonomy) for m in mentors],
        constraints=Constraints(excluded=excluded, manager_of=managers),
        names={m.participant_id: m.display_name for m in mentors},
    )


def reserve(organization_id: str, mentor_id: str, mentee_id: str) -> bool:
    """Take a mentor slot and the mentee atomically, or neither."""
    took_slot = update_if(
        PoolMember.objects(organization_id=organization_id, participant_id=mentor_id),
        {"free_slots__gt": 0},
        dec__free_slots=1,
    )
    if not took_slot:
        return False
    took_mentee = update_if(
        PoolMember.objects(organization_id=organization_id, participant_id=mentee_id),
        {"matched": False},
        set__matched=True,
    )
    if not took_mentee:
        PoolMember.objects(organization_id=organization_id, participant_id=mentor_id).update_one(
            inc__free_slots=1
        )
    return bool(took_mentee)


def store_proposal(
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
    """Store a reserved pair as an unpublished proposal (the outbox of match-proposed)."""
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
    ).save(force_insert=True)


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


def mark_published(proposal_ids: list[object]) -> None:
    Proposal.objects(pk__in=proposal_ids).update(set__published=True)


def overdue_requests(now: datetime) -> list[Proposal]:
    return list(Proposal.objects(status="proposed", origin="mentee_request", expires_at__lt=now))


def complete(organization_id: str, match_id: str) -> None:
    """The relationship reached its end: the mentor's slot is free; the mentee is done."""
    proposal = Proposal.objects(organization_id=organization_id, match_id=match_id).first()
    if proposal is None:
        return
    if Proposal.objects(pk=proposal.pk, status__in=LIVE).update_one(set__status="ended"):
        PoolMember.objects(
            organization_id=organization_id, participant_id=proposal.mentor_id
        ).update_one(inc__free_slots=1)
