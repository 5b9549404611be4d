"""A person's personal data in matching: the export, and the erasure (participant-erased).

Erasing a participant takes them out of the pool for good (as a withdrawal does: their live
proposals are released, a mentor's slot goes back, a mentee whose requested mentor left moves
on to the next choice) and pseudonymises what matching holds about them: their pool entry
keeps its id, role, capacity and cohort; name, skills, profile and HR id go; the explanations
of their proposals (which name departments, places and goals) and free-text reasons about
their pairs are erased, while the scores, statuses and exclusions stay so nothing is counted
or proposed differently for anyone else.

Reporting lines (HR id -> manager's HR id) stay: they are the organisation's structure, fed
by its HR systems, and keep the conflict-of-interest rule right for other people.
Blocking (storage): call through storage.run_sync.
"""

from __future__ import annotations

from services.common.api import common_pb2, matching_pb2
from services.common.privacy import pseudonymous_profile, redact
from services.matching import pool, releases
from services.matching.documents import (
    CriterionScore,
    Exclusion,
    PoolMember,
    Proposal,
    ReportingLine,
)
from services.matching.messages import proposal_message
from services.matching.profiles import profile_of

# Exclusion reasons matching writes itself; a coordinator's own words are erased.
SYSTEM_REASONS = frozenset({"declined", "not a good fit"})
ROLES = {"mentor": common_pb2.ROLE_MENTOR, "mentee": common_pb2.ROLE_MENTEE}


def _involving(participant_ids: list[str]) -> dict[str, object]:
    return {
        "$or": [{"mentor_id": {"$in": participant_ids}}, {"mentee_id": {"$in": participant_ids}}]
    }


def erase_member(
    organization_id: str, program_id: str, participant_id: str, role: str
) -> releases.Withdrawal:
    """Withdraw and pseudonymise one participant; returns the withdrawal (the proposals it
    released, none on a redelivery, and the next choices it proposed). An erasure that overtook
    the registration leaves an erased stub, which the registration then finds stored.

    The withdrawal is one transaction; the pseudonymisation after it is not, and a redelivered
    erasure (the event is recorded as handled only after all of it) completes it."""
    withdrawal = releases.withdraw(
        organization_id, program_id, participant_id, role, expire_unanswered=False
    )
    member = pool.get_member(organization_id, participant_id)
    profile = pseudonymous_profile(profile_of(member) if member else common_pb2.Profile())
    PoolMember.objects(organization_id=organization_id, participant_id=participant_id).update_one(
        set__erased=True,
        set__display_name="",
        set__skills=[],
        set__profile=profile.SerializeToString(deterministic=True),
        set__hr_person_id="",
    )
    for proposal in Proposal.objects(organization_id=organization_id).filter(
        __raw__=_involving([participant_id])
    ):
        # Scores stay (they are counted and compared); the words explaining them go.
        Proposal.objects(pk=proposal.pk).update_one(
            set__breakdown=[
                CriterionScore(criterion=c.criterion, score=c.score, weight=c.weight, detail="")
                for c in proposal.breakdown
            ],
            set__override_reason=redact(proposal.override_reason or ""),
        )
    for exclusion in Exclusion.objects(organization_id=organization_id).filter(
        __raw__=_involving([participant_id])
    ):
        Exclusion.objects(pk=exclusion.pk).update_one(
            set__reason=redact(exclusion.reason, keep=SYSTEM_REASONS)
        )
    return withdrawal


def export(organization_id: str, participant_ids: list[str]) -> matching_pb2.MatchingPersonalData:
    out = matching_pb2.MatchingPersonalData(organization_id=organization_id)
    members = PoolMember.objects(
        organization_id=organization_id, participant_id__in=participant_ids
    ).order_by("program_id", "participant_id")
    hr_ids: set[str] = set()
    for m in members:
        profile = profile_of(m)
        if profile.hr_person_id:
            hr_ids.add(profile.hr_person_id)
        out.pool_entries.add(
            organization_id=m.organization_id,
            program_id=m.program_id,
            participant_id=m.participant_id,
            role=ROLES.get(m.role, common_pb2.ROLE_UNSPECIFIED),
            display_name=m.display_name or "",
            skills=list(m.skills),
            capacity=m.capacity,
            free_slots=m.free_slots,
            matched=bool(m.matched),
            profile=profile,
            withdrawn=bool(m.withdrawn),
            erased=bool(m.erased),
        )
    for p in (
        Proposal.objects(organization_id=organization_id)
        .filter(__raw__=_involving(participant_ids))
        .order_by("created_at", "match_id")
    ):
        out.proposals.add(
            proposal=proposal_message(p),
            override_reason=p.override_reason or "",
            next_choices=list(p.next_choices),
        )
    for e in (
        Exclusion.objects(organization_id=organization_id)
        .filter(__raw__=_involving(participant_ids))
        .order_by("program_id", "mentor_id", "mentee_id")
    ):
        out.exclusions.add(
            program_id=e.program_id, mentor_id=e.mentor_id, mentee_id=e.mentee_id, reason=e.reason
        )
    for line in ReportingLine.objects(
        organization_id=organization_id, hr_person_id__in=sorted(hr_ids)
    ).order_by("hr_person_id"):
        out.reporting_lines.add(hr_person_id=line.hr_person_id, manager_id=line.manager_id)
    return out
