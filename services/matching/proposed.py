"""The engine's proposals as a bulk write stores them: the stored shape of a Proposal, and a
view of it for what publishes and reports them.

A bulk run stores tens of thousands of proposals (50,000 at 100,000 people): building that
many mongoengine documents, then validating and converting them back to what is stored, took
longer than the database takes to store them. The shape written here is the Proposal
document's own (documents.py); a proposal read back is a Proposal like any other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId

from services.common.events import stable_event_id
from services.matching.domain.model import CriterionResult, Evaluation


@dataclass(frozen=True, slots=True)
class Proposed:
    """A proposal just stored by the engine (status proposed, unpublished): what its
    match-proposed event and the run's report are made of."""

    pk: ObjectId
    organization_id: str
    program_id: str
    match_id: str
    mentor_id: str
    mentee_id: str
    score: float
    breakdown: tuple[CriterionResult, ...]
    run_id: str
    created_at: datetime
    event_id: str
    origin: str = "engine"
    override_reason: str = ""
    proposed_by: str = ""

    def stored(self) -> dict[str, Any]:
        """The Proposal document as stored."""
        return {
            "_id": self.pk,
            "organization_id": self.organization_id,
            "program_id": self.program_id,
            "match_id": self.match_id,
            "mentor_id": self.mentor_id,
            "mentee_id": self.mentee_id,
            "score": self.score,
            "breakdown": [
                {"criterion": c.kind, "score": c.score, "weight": c.weight, "detail": c.detail}
                for c in self.breakdown
            ],
            "status": "proposed",
            "origin": self.origin,
            "run_id": self.run_id,
            "override_reason": self.override_reason,
            "proposed_by": self.proposed_by,
            "next_choices": [],
            "created_at": self.created_at,
            "event_id": self.event_id,
            "published": False,
            "released_from": "",
        }


def engine_proposal(
    organization_id: str,
    program_id: str,
    mentor_id: str,
    mentee_id: str,
    evaluation: Evaluation,
    run_id: str,
    created_at: datetime,
) -> Proposed:
    """A reserved pair as an unpublished engine proposal (pool.new_proposal's, as stored)."""
    match_id = str(uuid.uuid4())
    return Proposed(
        pk=ObjectId(),
        organization_id=organization_id,
        program_id=program_id,
        match_id=match_id,
        mentor_id=mentor_id,
        mentee_id=mentee_id,
        score=evaluation.score,
        breakdown=evaluation.breakdown,
        run_id=run_id,
        created_at=created_at,
        event_id=stable_event_id("match-proposed", organization_id, match_id),
    )
