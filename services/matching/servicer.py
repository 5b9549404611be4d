"""MatchingService over gRPC."""

from __future__ import annotations

from grpc import aio

from services.common import pagination
from services.common.api import common_pb2, matching_pb2, matching_pb2_grpc
from services.common.storage import run_sync
from services.common.validation import require_id
from services.matching.documents import Proposal

STATUS = {
    "proposed": common_pb2.MATCH_STATUS_PROPOSED,
    "accepted": common_pb2.MATCH_STATUS_ACCEPTED,
    "declined": common_pb2.MATCH_STATUS_DECLINED,
}


def proposal_message(p: Proposal) -> matching_pb2.Proposal:
    return matching_pb2.Proposal(
        organization_id=p.organization_id,
        program_id=p.program_id,
        match_id=p.match_id,
        mentor_id=p.mentor_id,
        mentee_id=p.mentee_id,
        score=p.score,
        breakdown=[
            common_pb2.CriterionScore(
                criterion=c.criterion, score=c.score, weight=c.weight, detail=c.detail
            )
            for c in p.breakdown
        ],
        status=STATUS[p.status],
    )


def _list(organization_id: str, program_id: str, size: int, after: str | None) -> list[Proposal]:
    query = Proposal.objects(organization_id=organization_id, program_id=program_id)
    if after:
        query = query.filter(match_id__gt=after)
    return list(query.order_by("match_id").limit(size))


class MatchingServicer(matching_pb2_grpc.MatchingServiceServicer):
    async def ListProposals(
        self, request: matching_pb2.ListProposalsRequest, context: aio.ServicerContext
    ) -> matching_pb2.ListProposalsResponse:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        size = pagination.page_size(request.page_size)
        docs = await run_sync(
            _list, org, program_id, size, pagination.decode_token(request.page_token)
        )
        return matching_pb2.ListProposalsResponse(
            proposals=[proposal_message(p) for p in docs],
            next_page_token=pagination.encode_token(docs[-1].match_id) if len(docs) == size else "",
        )
