"""Stored proposals and engine explanations as the contract's messages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from services.common.api import common_pb2, events_pb2, matching_pb2
from services.common.events import new_event, stable_event_id
from services.matching.documents import Proposal
from services.matching.proposed import Proposed

ORIGINS = {
    "engine": common_pb2.MATCH_ORIGIN_ENGINE,
    "mentee_request": common_pb2.MATCH_ORIGIN_MENTEE_REQUEST,
    "coordinator": common_pb2.MATCH_ORIGIN_COORDINATOR,
}
STATUS = {
    "proposed": common_pb2.MATCH_STATUS_PROPOSED,
    "accepted": common_pb2.MATCH_STATUS_ACCEPTED,
    "declined": common_pb2.MATCH_STATUS_DECLINED,
    "expired": common_pb2.MATCH_STATUS_EXPIRED,
    # An ended relationship was an accepted match.
    "ended": common_pb2.MATCH_STATUS_ACCEPTED,
    # One side withdrew from the program: nobody answers it any more.
    "withdrawn": common_pb2.MATCH_STATUS_EXPIRED,
}


class _Scored(Protocol):
    @property
    def score(self) -> float: ...

    @property
    def weight(self) -> float: ...

    @property
    def detail(self) -> str: ...


def breakdown(
    items: Iterable[_Scored], name_of: str = "criterion"
) -> list[common_pb2.CriterionScore]:
    """Per-criterion scores, from stored CriterionScore documents (`criterion`) or the engine's
    CriterionResult (`kind`)."""
    return [
        common_pb2.CriterionScore(
            criterion=getattr(c, name_of), score=c.score, weight=c.weight, detail=c.detail
        )
        for c in items
    ]


def proposal_message(p: Proposal) -> matching_pb2.Proposal:
    msg = matching_pb2.Proposal(
        organization_id=p.organization_id,
        program_id=p.program_id,
        match_id=p.match_id,
        mentor_id=p.mentor_id,
        mentee_id=p.mentee_id,
        score=p.score,
        breakdown=breakdown(p.breakdown),
        status=STATUS[p.status],
        origin=ORIGINS[p.origin],
        run_id=p.run_id,
        proposed_by=p.proposed_by or "",
        override_reason=p.override_reason or "",
    )
    if p.expires_at:
        msg.expires_at.FromDatetime(p.expires_at)
    return msg


def proposed_event(p: Proposal | Proposed) -> events_pb2.Event:
    # A stored proposal's breakdown names its criterion `criterion`, the engine's `kind`.
    items = breakdown(p.breakdown, "kind") if isinstance(p, Proposed) else breakdown(p.breakdown)
    return new_event(
        producer="matching",
        organization_id=p.organization_id,
        program_id=p.program_id,
        event_id=p.event_id,
        occurred_at=p.created_at,
        payload=events_pb2.MatchProposed(
            match_id=p.match_id,
            mentor_id=p.mentor_id,
            mentee_id=p.mentee_id,
            score=p.score,
            breakdown=items,
            origin=ORIGINS[p.origin],
            run_id=p.run_id,
            override_reason=p.override_reason,
            proposed_by=p.proposed_by or "",
        ),
    )


def expired_event(p: Proposal) -> events_pb2.Event:
    """match-expired for a proposal nobody will answer (a request left unanswered, or one side
    withdrew); one id per proposal, so a republished one is dropped by consumers."""
    return new_event(
        producer="matching",
        organization_id=p.organization_id,
        program_id=p.program_id,
        event_id=stable_event_id("match-expired", p.organization_id, p.match_id),
        payload=events_pb2.MatchExpired(
            match_id=p.match_id, mentor_id=p.mentor_id, mentee_id=p.mentee_id
        ),
    )


def run_requested_event(
    organization_id: str, program_id: str, request: events_pb2.MatchingRunRequested
) -> events_pb2.Event:
    """matching-run-requested; one id per run."""
    return new_event(
        producer="matching",
        organization_id=organization_id,
        program_id=program_id,
        event_id=stable_event_id("matching-run-requested", organization_id, request.run_id),
        payload=request,
    )


def run_completed_event(
    organization_id: str, program_id: str, result: events_pb2.MatchingRunCompleted
) -> events_pb2.Event:
    """matching-run-completed; one id per run, however often the run is retried."""
    return new_event(
        producer="matching",
        organization_id=organization_id,
        program_id=program_id,
        event_id=stable_event_id("matching-run-completed", organization_id, result.run_id),
        payload=result,
    )
