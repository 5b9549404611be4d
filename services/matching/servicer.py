"""MatchingService over gRPC."""

from __future__ import annotations

import uuid

from grpc import aio

from services.common import auth, pagination
from services.common.api import events_pb2, matching_pb2, matching_pb2_grpc
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.privacy import require_participant_ids
from services.common.storage import atomic, run_sync
from services.common.validation import require_id
from services.matching import configuration, planner, pool, privacy, requests, runs
from services.matching.documents import MatchingRun, Proposal
from services.matching.messages import breakdown, proposal_message
from services.matching.publication import Committed, Publication

RUN_STATUS = {
    "queued": matching_pb2.RUN_STATUS_QUEUED,
    "completed": matching_pb2.RUN_STATUS_COMPLETED,
    "failed": matching_pb2.RUN_STATUS_FAILED,
}
MAX_CHOICES = 10


def run_message(run: MatchingRun) -> matching_pb2.MatchingRun:
    msg = matching_pb2.MatchingRun(
        organization_id=run.organization_id,
        program_id=run.program_id,
        run_id=run.run_id,
        status=RUN_STATUS[run.status],
    )
    msg.requested_at.FromDatetime(run.requested_at)
    if run.result:
        msg.result.ParseFromString(run.result)
    return msg


def _list(
    organization_id: str, program_id: str, mentee_id: str, size: int, after: str | None
) -> list[Proposal]:
    query = Proposal.objects(organization_id=organization_id, program_id=program_id)
    if mentee_id:
        query = query.filter(mentee_id=mentee_id)
    if after:
        query = query.filter(match_id__gt=after)
    return list(query.order_by("match_id").limit(size))


def _program(request: object) -> tuple[str, str]:
    return (
        require_id("organization_id", request.organization_id),  # type: ignore[attr-defined]
        require_id("program_id", request.program_id),  # type: ignore[attr-defined]
    )


class MatchingServicer(matching_pb2_grpc.MatchingServiceServicer):
    def __init__(self, publication: Publication) -> None:
        # Changes commit with what they publish, which is delivered right after (outbox).
        self._publication = publication

    async def ListProposals(
        self, request: matching_pb2.ListProposalsRequest, context: aio.ServicerContext
    ) -> matching_pb2.ListProposalsResponse:
        org, program_id = _program(request)
        mentee_id = require_id("mentee_id", request.mentee_id) if request.mentee_id else ""
        size = pagination.page_size(request.page_size)
        after = pagination.decode_token(request.page_token)
        docs = await run_sync(_list, org, program_id, mentee_id, size, after)
        return matching_pb2.ListProposalsResponse(
            proposals=[proposal_message(p) for p in docs],
            next_page_token=pagination.next_token(docs, size, lambda d: d.match_id),
        )

    async def GetMatchingConfig(
        self, request: matching_pb2.GetMatchingConfigRequest, context: aio.ServicerContext
    ) -> matching_pb2.MatchingConfig:
        org, program_id = _program(request)
        return await run_sync(configuration.load_config, org, program_id)

    async def SetMatchingConfig(
        self, request: matching_pb2.SetMatchingConfigRequest, context: aio.ServicerContext
    ) -> matching_pb2.MatchingConfig:
        config = configuration.validate_config(request.config)
        return await run_sync(configuration.save_config, config)

    async def GetSkillTaxonomy(
        self, request: matching_pb2.GetSkillTaxonomyRequest, context: aio.ServicerContext
    ) -> matching_pb2.SkillTaxonomy:
        org = require_id("organization_id", request.organization_id)
        return await run_sync(configuration.load_taxonomy_message, org)

    async def SetSkillTaxonomy(
        self, request: matching_pb2.SetSkillTaxonomyRequest, context: aio.ServicerContext
    ) -> matching_pb2.SkillTaxonomy:
        configuration.validate_taxonomy(request.taxonomy)
        return await run_sync(configuration.save_taxonomy, request.taxonomy)

    async def StartMatchingRun(
        self, request: matching_pb2.StartMatchingRunRequest, context: aio.ServicerContext
    ) -> matching_pb2.MatchingRun:
        org, program_id = _program(request)
        if request.cohort_id:
            require_id("cohort_id", request.cohort_id)
        if request.algorithm not in (
            events_pb2.MATCHING_ALGORITHM_UNSPECIFIED,
            events_pb2.MATCHING_ALGORITHM_OPTIMAL,
            events_pb2.MATCHING_ALGORITHM_STABLE,
        ):
            raise InvalidArgument("algorithm", "must be OPTIMAL or STABLE")
        if why := planner.max_gap_error(request.max_gap):
            raise InvalidArgument("max_gap", why)
        if request.max_gap and request.algorithm == events_pb2.MATCHING_ALGORITHM_STABLE:
            raise InvalidArgument("max_gap", "applies to the OPTIMAL algorithm only")
        requested_by = auth.actor("requested_by", request.requested_by, required=False)
        run_id = str(uuid.uuid4())
        requested = events_pb2.MatchingRunRequested(
            run_id=run_id,
            cohort_id=request.cohort_id,
            algorithm=request.algorithm or events_pb2.MATCHING_ALGORITHM_OPTIMAL,
            requested_by=requested_by,
            max_gap=request.max_gap,
        )
        # The worker that owns the program runs it: the request travels keyed by program.
        queued, event = await run_sync(runs.queue, org, program_id, requested)
        await self._publication.deliver(Committed(events=[event]))
        return run_message(queued)

    async def GetMatchingRun(
        self, request: matching_pb2.GetMatchingRunRequest, context: aio.ServicerContext
    ) -> matching_pb2.MatchingRun:
        org = require_id("organization_id", request.organization_id)
        run_id = require_id("run_id", request.run_id)
        found = await run_sync(runs.get_run, org, run_id)
        if found is None:
            raise NotFound(f"run_id: no matching run {run_id!r}")
        return run_message(found)

    async def RecommendMentors(
        self, request: matching_pb2.RecommendMentorsRequest, context: aio.ServicerContext
    ) -> matching_pb2.RecommendMentorsResponse:
        org, program_id = _program(request)
        mentee_id = require_id("mentee_id", request.mentee_id)
        if request.limit > 50:
            raise InvalidArgument("limit", "must be 0 (default 5) to 50")
        found = await run_sync(requests.recommend, org, program_id, mentee_id, request.limit or 5)
        return matching_pb2.RecommendMentorsResponse(
            recommendations=[
                matching_pb2.Recommendation(
                    mentor_id=r.mentor.participant_id,
                    display_name=r.name,
                    score=r.evaluation.score,
                    breakdown=breakdown(r.evaluation.breakdown, name_of="kind"),
                    free_slots=r.mentor.free_slots,
                )
                for r in found
            ]
        )

    async def RequestMentor(
        self, request: matching_pb2.RequestMentorRequest, context: aio.ServicerContext
    ) -> matching_pb2.Proposal:
        org, program_id = _program(request)
        mentee_id = require_id("mentee_id", request.mentee_id)
        choices = list(dict.fromkeys(request.mentor_ids))
        if not 1 <= len(choices) <= MAX_CHOICES:
            raise InvalidArgument("mentor_ids", f"name 1-{MAX_CHOICES} mentors, best first")
        for index, mentor_id in enumerate(choices):
            require_id(f"mentor_ids[{index}]", mentor_id)
        settings = await run_sync(configuration.load_config, org, program_id)
        if settings.mode not in (
            matching_pb2.MATCHING_MODE_SELF,
            matching_pb2.MATCHING_MODE_CONTINUOUS,
        ):
            raise FailedPrecondition("program_id: the program does not allow mentees to choose")
        member = await run_sync(pool.get_member, org, mentee_id)
        if member is None or member.program_id != program_id or member.role != "mentee":
            raise NotFound(f"mentee_id: no mentee {mentee_id!r} in this program")
        if member.matched:
            raise FailedPrecondition("mentee_id: the mentee already has a live match")
        proposal = await run_sync(requests.request_mentor, org, program_id, mentee_id, choices)
        if proposal is None:
            raise FailedPrecondition(
                "mentor_ids: none of these mentors has free capacity and passes the program's rules"
            )
        await self._publication.deliver_proposals([proposal])
        return proposal_message(proposal)

    async def ProposeMatch(
        self, request: matching_pb2.ProposeMatchRequest, context: aio.ServicerContext
    ) -> matching_pb2.ProposeMatchResponse:
        org, program_id = _program(request)
        mentor_id = require_id("mentor_id", request.mentor_id)
        mentee_id = require_id("mentee_id", request.mentee_id)
        reason = request.override_reason.strip()
        if request.override and not reason:
            raise InvalidArgument("override_reason", "is required to override hard rules")
        proposed_by = auth.actor("requested_by", request.requested_by, required=False)
        proposal, warnings = await run_sync(
            requests.propose_by_hand,
            org,
            program_id,
            mentor_id,
            mentee_id,
            reason if request.override else "",
            proposed_by,
        )
        await self._publication.deliver_proposals([proposal])
        return matching_pb2.ProposeMatchResponse(
            proposal=proposal_message(proposal), warnings=warnings
        )

    async def ExcludePair(
        self, request: matching_pb2.ExcludePairRequest, context: aio.ServicerContext
    ) -> matching_pb2.ExcludePairResponse:
        org, program_id = _program(request)
        mentor_id = require_id("mentor_id", request.mentor_id)
        mentee_id = require_id("mentee_id", request.mentee_id)
        reason = request.reason.strip() or "do not match again"
        await run_sync(
            atomic, lambda tx: pool.add_exclusion(tx, org, program_id, mentor_id, mentee_id, reason)
        )
        return matching_pb2.ExcludePairResponse()

    async def ExportPersonalData(
        self,
        request: matching_pb2.ExportMatchingPersonalDataRequest,
        context: aio.ServicerContext,
    ) -> matching_pb2.MatchingPersonalData:
        org = require_id("organization_id", request.organization_id)
        ids = require_participant_ids(list(request.participant_ids))
        return await run_sync(privacy.export, org, ids)
