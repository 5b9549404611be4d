"""AnalyticsService over gRPC, read from the live KPI table."""

from __future__ import annotations

from grpc import aio

from services.analytics import kpis
from services.analytics.app import AnalyticsApp
from services.common.api import analytics_pb2, analytics_pb2_grpc
from services.common.validation import require_id


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    def __init__(self, analytics: AnalyticsApp) -> None:
        self._analytics = analytics

    async def GetProgramKpis(
        self, request: analytics_pb2.GetProgramKpisRequest, context: aio.ServicerContext
    ) -> analytics_pb2.ProgramKpis:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        # A program with no events yet has all-zero KPIs rather than NOT_FOUND: analytics
        # cannot tell an unknown program from a quiet one without asking enrollment.
        counters = self._analytics.read(org, program_id) or kpis.empty()
        return analytics_pb2.ProgramKpis(organization_id=org, program_id=program_id, **counters)
