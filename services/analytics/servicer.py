"""AnalyticsService over gRPC, read from the live state tables.

A worker holds the state of its own partitions only. A request for a program (or organisation)
held elsewhere is forwarded once to the worker that holds it, found through the consumer
group's assignment; so any worker behind a load balancer answers any request. Forwarding
needs the workers' shared secret: the request carries a peer token instead of the caller's
credentials, and the reply is used only with a proof that the peer knows the secret
(services/common/peers.py).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from grpc import aio

from services.analytics import kpis, org_state
from services.analytics.app import AnalyticsApp
from services.analytics.routing import organisation_state_key, program_state_key
from services.common import auth
from services.common.api import analytics_pb2, analytics_pb2_grpc
from services.common.errors import InvalidArgument, Unavailable
from services.common.pagination import decode_token, encode_token, page_size
from services.common.peers import Peers, forwarded_token
from services.common.validation import require_id

SERVICE = analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name
FORWARD_TIMEOUT_SECONDS = 10.0
ASSIGNMENT_WAIT_SECONDS = 15.0
FIGURES_TTL_SECONDS = 1.0
FIGURES_CACHED = 1024
MAX_HORIZON_MONTHS = 120
Reply = TypeVar("Reply", bound=Message)


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    def __init__(self, analytics: AnalyticsApp, peers: Peers) -> None:
        self._analytics = analytics
        self._peers = peers
        self._channels: dict[str, aio.Channel] = {}
        self._cache: dict[tuple[str, str, kpis.DayRange], tuple[int, float, kpis.Figures]] = {}

    async def GetProgramKpis(
        self, request: analytics_pb2.GetProgramKpisRequest, context: aio.ServicerContext
    ) -> analytics_pb2.ProgramKpis:
        org, program_id = _program(request)
        days = _day_range(request.range) if request.HasField("range") else kpis.DayRange()
        key = program_state_key(org, program_id)
        forwarded = await self._forward(
            key, "GetProgramKpis", request, analytics_pb2.ProgramKpis, context
        )
        if forwarded is not None:
            return forwarded
        figures = self._figures(key, request.cohort_id, days)
        reply = analytics_pb2.ProgramKpis(
            organization_id=org,
            program_id=program_id,
            cohort_id=request.cohort_id,
            satisfaction_distribution=figures.satisfaction_distribution,
        )
        for name, value in figures.scalars.items():
            setattr(reply, name, _number(name, value))
        if request.HasField("range"):
            reply.range.CopyFrom(request.range)
        for campaign, applications, approvals in figures.campaigns:
            reply.signups_by_campaign.add(
                campaign=campaign, applications=applications, approvals=approvals
            )
        for week in figures.weekly:
            row = reply.weekly.add(
                **{k: v for k, v in week.items() if k != "week_start_day"},
            )
            row.week_start.FromSeconds(week["week_start_day"] * 86_400)
        return reply

    async def GetSkillBalance(
        self, request: analytics_pb2.GetSkillBalanceRequest, context: aio.ServicerContext
    ) -> analytics_pb2.SkillBalance:
        org, program_id = _program(request)
        key = program_state_key(org, program_id)
        forwarded = await self._forward(
            key, "GetSkillBalance", request, analytics_pb2.SkillBalance, context
        )
        if forwarded is not None:
            return forwarded
        rows = kpis.skill_balance(self._analytics.program(key), request.cohort_id, request.limit)
        return analytics_pb2.SkillBalance(
            organization_id=org,
            program_id=program_id,
            cohort_id=request.cohort_id,
            skills=[
                analytics_pb2.SkillSupplyDemand(
                    skill=row.skill,
                    mentors=row.mentors,
                    mentor_capacity=row.mentor_capacity,
                    mentees=row.mentees,
                    gap=row.gap,
                    coverage=row.coverage,
                )
                for row in rows
            ],
        )

    async def ListAtRiskRelationships(
        self, request: analytics_pb2.ListAtRiskRelationshipsRequest, context: aio.ServicerContext
    ) -> analytics_pb2.ListAtRiskRelationshipsResponse:
        org, program_id = _program(request)
        size = page_size(request.page_size)
        after = decode_token(request.page_token)
        key = program_state_key(org, program_id)
        forwarded = await self._forward(
            key,
            "ListAtRiskRelationships",
            request,
            analytics_pb2.ListAtRiskRelationshipsResponse,
            context,
        )
        if forwarded is not None:
            return forwarded
        rows = kpis.at_risk(self._analytics.program(key), request.cohort_id, time.time())
        start = 0
        if after is not None:
            ids = [row.relationship_id for row in rows]
            start = ids.index(after) + 1 if after in ids else len(rows)
        page = rows[start : start + size]
        reply = analytics_pb2.ListAtRiskRelationshipsResponse(total=len(rows))
        for row in page:
            item = reply.relationships.add(
                relationship_id=row.relationship_id,
                mentor_id=row.mentor_id,
                mentee_id=row.mentee_id,
                cohort_id=row.cohort_id,
                sessions=row.sessions,
                days_since_contact=row.days_since_contact,
                latest_rating=row.latest_rating,
                reasons=row.reasons,
            )
            item.started_at.FromMilliseconds(int(row.started_at * 1000))
            if row.last_session_at is not None:
                item.last_session_at.FromMilliseconds(int(row.last_session_at * 1000))
        if start + size < len(rows):
            reply.next_page_token = encode_token(page[-1].relationship_id)
        return reply

    async def GetRetention(
        self, request: analytics_pb2.GetRetentionRequest, context: aio.ServicerContext
    ) -> analytics_pb2.Retention:
        org = require_id("organization_id", request.organization_id)
        for months in request.months:
            if not 1 <= months <= MAX_HORIZON_MONTHS:
                raise InvalidArgument("months", f"each must be 1 to {MAX_HORIZON_MONTHS}")
        key = organisation_state_key(org)
        forwarded = await self._forward(
            key, "GetRetention", request, analytics_pb2.Retention, context
        )
        if forwarded is not None:
            return forwarded
        rows = org_state.retention(
            self._analytics.organisation(key),
            request.program_id,
            tuple(request.months),
            time.time(),
        )
        return analytics_pb2.Retention(
            organization_id=org,
            program_id=request.program_id,
            rows=[
                analytics_pb2.RetentionRow(
                    months=row.months,
                    participants=row.participants,
                    participants_retained=row.participants_retained,
                    participant_rate=row.participant_rate,
                    non_participants=row.non_participants,
                    non_participants_retained=row.non_participants_retained,
                    non_participant_rate=row.non_participant_rate,
                    difference_points=row.difference_points,
                )
                for row in rows
            ],
        )

    def _figures(self, key: str, cohort: str, days: kpis.DayRange) -> kpis.Figures:
        """A program's figures, computed at most once per state change and second: portals
        and dashboards poll, and figures walk every person and relationship of the program."""
        version = self._analytics.versions[key]
        now = time.time()
        cached = self._cache.get((key, cohort, days))
        # Unchanged: good for a second (at-risk figures move with the clock). Changed: still
        # good for a moment, so that dashboards polling a program under load do not spend the
        # worker's time recomputing what the next step changes again.
        fresh_for = FIGURES_TTL_SECONDS if cached is not None and cached[0] == version else 0.25
        if cached is not None and now - cached[1] < fresh_for:
            return cached[2]
        figures = kpis.figures(self._analytics.program(key), cohort, days, now)
        if len(self._cache) >= FIGURES_CACHED:
            self._cache.pop(next(iter(self._cache)))
        self._cache[(key, cohort, days)] = (version, now, figures)
        return figures

    async def _forward(
        self,
        key: str,
        method: str,
        request: Message,
        reply_type: type[Reply],
        context: aio.ServicerContext,
    ) -> Reply | None:
        """The owner's reply when another worker holds the key; None when this one does."""
        # While the group forms (at start, or in a rebalance) nobody holds the key: wait a
        # little rather than fail a request that would succeed a moment later.
        deadline = time.monotonic() + ASSIGNMENT_WAIT_SECONDS
        while True:
            if self._analytics.holds(key):
                return None
            owner = self._analytics.owner_of(key)
            if owner is not None or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        # A forwarded request got here past the auth interceptor, so its peer token was good.
        already = forwarded_token(context.invocation_metadata()) is not None
        if already or owner is None:
            raise Unavailable("analytics partitions are being reassigned; retry shortly")
        rpc = f"/{SERVICE}/{method}"
        # The caller's own credentials stay here: the owner, found at an address any member of
        # the consumer group may advertise, gets a peer token naming the caller verified here.
        metadata, jti = self._peers.forward_metadata(owner, rpc, auth.current())
        call = self._channel(owner).unary_unary(
            rpc, request_serializer=_serialize, response_deserializer=None
        )
        try:
            pending = call(request, metadata=metadata, timeout=FORWARD_TIMEOUT_SECONDS)
            data: bytes = await pending
            trailing = await pending.trailing_metadata()
        except aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                # The caller was authenticated here; the owner refused this worker's token.
                raise Unavailable(
                    f"analytics peer at {owner} refused the forwarded request: {exc.details()}"
                ) from None
            await context.abort(exc.code(), exc.details() or "")
        # Not one byte of the reply is read before it is shown to come from a peer.
        return reply_type.FromString(self._peers.verified_reply(owner, jti, data, trailing))

    def _channel(self, url: str) -> aio.Channel:
        if url not in self._channels:
            address = url.split("://", 1)[-1].rstrip("/")
            self._channels[url] = aio.insecure_channel(address)
        return self._channels[url]


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _program(request: Any) -> tuple[str, str]:
    return (
        require_id("organization_id", request.organization_id),
        require_id("program_id", request.program_id),
    )


def _day_range(span: analytics_pb2.TimeRange) -> kpis.DayRange:
    first = _day(span, "start")
    last = _day(span, "end")
    if first is not None and last is not None and last <= first:
        raise InvalidArgument("range.end", "must be at least one day after range.start")
    return kpis.DayRange(first, last)


def _day(span: analytics_pb2.TimeRange, bound: str) -> int | None:
    if not span.HasField(bound):  # type: ignore[arg-type]
        return None
    moment: datetime = getattr(span, bound).ToDatetime(tzinfo=UTC)
    # Whole days: the end bound rounds up so that a range ending mid-day includes that day.
    day = int(moment.timestamp() // 86_400)
    if bound == "end" and moment.timestamp() % 86_400:
        day += 1
    return day


def _number(name: str, value: float) -> float | int:
    field = analytics_pb2.ProgramKpis.DESCRIPTOR.fields_by_name[name]
    return value if field.type == field.TYPE_DOUBLE else int(value)
