"""Storage operations on a program's matching pool. Blocking: call through storage.run_sync."""

from __future__ import annotations

import uuid

from mongoengine.errors import NotUniqueError

from services.common import clock
from services.common.events import stable_event_id
from services.matching.documents import CriterionScore, Exclusion, PoolMember, Proposal
from services.matching.domain.proposals import Candidate, PlannedMatch, plan_matches


def add_member(
    organization_id: str,
    program_id: str,
    participant_id: str,
    role: str,
    display_name: str,
    skills: list[str],
    capacity: int,
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
    )


def decline(organization_id: str, program_id: str, match_id: str) -> None:
    """The pair said no: free the mentor's slot, send the mentee back to the pool, never again."""
    proposal = Proposal.objects(organization_id=organization_id, match_id=match_id).first()
    if proposal is None:
        return
    changed = Proposal.objects(pk=proposal.pk, status="proposed").update_one(set__status="declined")
    if not changed:
        return  # already handled: a redelivery
    PoolMember.objects(
        organization_id=organization_id, participant_id=proposal.mentor_id
    ).update_one(inc__free_slots=1)
    PoolMember.objects(
        organization_id=organization_id, participant_id=proposal.mentee_id
    ).update_one(set__matched=False)
    try:
        Exclusion(
            organization_id=organization_id,
            program_id=program_id,
            mentor_id=proposal.mentor_id,
            mentee_id=proposal.mentee_id,
            reason="declined",
        ).save(force_insert=True)
    except NotUniqueError:
        pass


def accept(organization_id: str, match_id: str) -> None:
    Proposal.objects(
        organization_id=organization_id, match_id=match_id, status="proposed"
    ).update_one(set__status="accepted")


def _candidates(organization_id: str, program_id: str) -> tuple[list[Candidate], list[Candidate]]:
    members = PoolMember.objects(organization_id=organization_id, program_id=program_id)
    mentees = [
        Candidate(m.participant_id, tuple(m.skills))
        for m in members.filter(role="mentee", matched=False)
    ]
    mentors = [
        Candidate(m.participant_id, tuple(m.skills), m.free_slots)
        for m in members.filter(role="mentor", free_slots__gt=0)
    ]
    return mentees, mentors


def _reserve(organization_id: str, planned: PlannedMatch) -> bool:
    """Take a mentor slot and the mentee atomically, or neither."""
    took_slot = PoolMember.objects(
        organization_id=organization_id, participant_id=planned.mentor_id, free_slots__gt=0
    ).update_one(dec__free_slots=1)
    if not took_slot:
        return False
    took_mentee = PoolMember.objects(
        organization_id=organization_id, participant_id=planned.mentee_id, matched=False
    ).update_one(set__matched=True)
    if not took_mentee:
        PoolMember.objects(
            organization_id=organization_id, participant_id=planned.mentor_id
        ).update_one(inc__free_slots=1)
    return bool(took_mentee)


def propose(organization_id: str, program_id: str) -> int:
    """Plan matches for the program's waiting mentees and store them as unpublished proposals."""
    mentees, mentors = _candidates(organization_id, program_id)
    if not mentees or not mentors:
        return 0
    excluded = {
        (e.mentor_id, e.mentee_id)
        for e in Exclusion.objects(organization_id=organization_id, program_id=program_id)
    }
    created = 0
    for planned in plan_matches(mentees, mentors, excluded):
        if not _reserve(organization_id, planned):
            continue
        match_id = str(uuid.uuid4())
        Proposal(
            organization_id=organization_id,
            program_id=program_id,
            match_id=match_id,
            mentor_id=planned.mentor_id,
            mentee_id=planned.mentee_id,
            score=planned.fit.score,
            breakdown=[
                CriterionScore(criterion=c.name, score=c.score, weight=c.weight, detail=c.detail)
                for c in planned.fit.breakdown
            ],
            status="proposed",
            created_at=clock.now(),
            event_id=stable_event_id("match-proposed", organization_id, match_id),
        ).save(force_insert=True)
        created += 1
    return created


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
