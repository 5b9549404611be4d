"""A small in-process AnalyticsService (and the two enrollment RPCs the report reads) that
answers with realistic canned protos, for driving the real CLI over real gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.api import (
    analytics_pb2,
    analytics_pb2_grpc,
    enrollment_pb2,
    enrollment_pb2_grpc,
)

ORG, PROGRAM, NEW_PROGRAM = "acme", "women-in-tech", "brand-new"
PROGRAM_NAME = "Women in <Tech> & Leadership"
# Names, skills and campaigns come from users: these must reach the HTML escaped.
HOSTILE_NAME = '<img src="http://evil.example/x.png" onerror="alert(1)">'
HOSTILE_SKILL = "C++ & <Rust>"
# "[/]" would be a markup error to rich if printed as markup.
HOSTILE_CAMPAIGN = "<b>spring</b> [/] mailing"
# Would be a formula to matplotlib's mathtext, and fail to parse, if text were not plain.
MONEY_SKILL = "pricing in $US$ and $\\frac{$"
WEEK0 = datetime(2025, 1, 6, tzinfo=UTC)


def _stamp(moment: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(moment)
    return out


def weekly() -> list[analytics_pb2.WeeklyKpis]:
    rows = []
    for n, (mentors, mentees, approvals, started, sessions, minutes, rating) in enumerate(
        [
            (9, 20, 25, 0, 0, 0, 0.0),
            (5, 14, 18, 12, 4, 180, 4.0),
            (2, 6, 7, 10, 15, 675, 4.2),
            (0, 2, 0, 4, 18, 810, 4.0),
            (0, 0, 0, 2, 12, 540, 4.5),
            (0, 0, 0, 0, 12, 540, 3.9),
        ]
    ):
        rows.append(
            analytics_pb2.WeeklyKpis(
                week_start=_stamp(WEEK0 + timedelta(weeks=n)),
                mentor_applications=mentors,
                mentee_applications=mentees,
                approvals=approvals,
                relationships_started=started,
                sessions=sessions,
                session_minutes=minutes,
                messages=sessions * 5,
                feedback_responses=sessions // 3,
                satisfaction_mean=rating,
                goals_achieved=n // 2,
            )
        )
    return rows


def program_kpis() -> analytics_pb2.ProgramKpis:
    return analytics_pb2.ProgramKpis(
        organization_id=ORG,
        program_id=PROGRAM,
        mentors=14,
        mentees=36,
        matches_proposed=40,
        matches_accepted=30,
        matches_declined=6,
        active_relationships=24,
        sessions=61,
        session_minutes=2745,
        events=512,
        matches_expired=2,
        relationships_completed=2,
        relationships_closed_early=2,
        matching_runs=2,
        applications=58,
        mentor_applications=16,
        mentee_applications=42,
        approvals=50,
        rejections=3,
        waitlisted=2,
        withdrawals=1,
        mentees_matched=26,
        match_rate=26 / 36,
        median_days_to_match=3.5,
        mean_days_to_match=4.25,
        relationships_started=28,
        relationships_at_risk=3,
        messages=320,
        goals_set=40,
        goals_achieved=12,
        goal_completion_rate=0.3,
        feedback_responses=25,
        satisfaction_mean=4.12,
        satisfaction_distribution=[1, 1, 3, 9, 11],
        satisfaction_trend=0.25,
        trainings_completed=31,
        participants_trained=22,
        training_completion_rate=0.44,
        signups_by_campaign=[
            analytics_pb2.CampaignSignups(campaign=HOSTILE_CAMPAIGN, applications=30, approvals=27),
            analytics_pb2.CampaignSignups(campaign="", applications=28, approvals=23),
        ],
        weekly=weekly(),
        session_hours=45.75,
    )


SKILLS = [
    analytics_pb2.SkillSupplyDemand(
        skill="kubernetes", mentors=1, mentor_capacity=2, mentees=9, gap=-7, coverage=2 / 9
    ),
    analytics_pb2.SkillSupplyDemand(
        skill=HOSTILE_SKILL, mentors=2, mentor_capacity=3, mentees=6, gap=-3, coverage=0.5
    ),
    analytics_pb2.SkillSupplyDemand(
        skill="python", mentors=6, mentor_capacity=12, mentees=10, gap=2, coverage=1.2
    ),
    analytics_pb2.SkillSupplyDemand(
        skill=MONEY_SKILL, mentors=3, mentor_capacity=6, mentees=0, gap=6, coverage=0.0
    ),
]
PEOPLE = {"m1": HOSTILE_NAME, "m2": "Ada Lovelace", "e1": "Bo Chen", "e2": "Cy Diaz"}


def at_risk() -> list[analytics_pb2.AtRiskRelationship]:
    out = []
    for n in range(5):
        row = analytics_pb2.AtRiskRelationship(
            relationship_id=f"r{n}",
            mentor_id="m1" if n % 2 == 0 else "m2",
            mentee_id="e1" if n < 3 else "e2",
            cohort_id="spring",
            started_at=_stamp(WEEK0 + timedelta(days=7 + n)),
            sessions=n,
            days_since_contact=20 + 7 * n,
            latest_rating=2 if n == 1 else 0,
            reasons=[f"no contact for {20 + 7 * n} days"]
            # Rich markup in user text must print as it is.
            + (["[bold]low rating (2)"] if n == 1 else []),
        )
        if n:
            row.last_session_at.CopyFrom(_stamp(WEEK0 + timedelta(days=14 + n)))
        out.append(row)
    return out


def retention_row(months: int) -> analytics_pb2.RetentionRow:
    participants, kept = (40, 37) if months <= 6 else (30, 26)
    others, others_kept = (400, 340) if months <= 6 else (380, 285)
    rate, other_rate = kept / participants, others_kept / others
    return analytics_pb2.RetentionRow(
        months=months,
        participants=participants,
        participants_retained=kept,
        participant_rate=rate,
        non_participants=others,
        non_participants_retained=others_kept,
        non_participant_rate=other_rate,
        difference_points=(rate - other_rate) * 100,
    )


class FakeAnalytics(analytics_pb2_grpc.AnalyticsServiceServicer):
    """Canned answers for PROGRAM; all-empty ones for NEW_PROGRAM, as for a program with no
    events yet; INVALID_ARGUMENT for an organisation id with a space, as the service does."""

    # Fewer than the CLI asks for, so listing everything takes several pages.
    MAX_PAGE = 2

    def __init__(self) -> None:
        self.requests: list[object] = []

    def _check(self, request: object, context: grpc.ServicerContext) -> None:
        self.requests.append(request)
        if " " in request.organization_id:  # type: ignore[attr-defined]
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "organization_id: is not an id")

    def GetProgramKpis(
        self, request: analytics_pb2.GetProgramKpisRequest, context: grpc.ServicerContext
    ) -> analytics_pb2.ProgramKpis:
        self._check(request, context)
        kpis = (
            program_kpis()
            if request.program_id == PROGRAM
            else analytics_pb2.ProgramKpis(
                organization_id=request.organization_id, program_id=request.program_id
            )
        )
        kpis.cohort_id = request.cohort_id
        if request.HasField("range"):
            kpis.range.CopyFrom(request.range)
        return kpis

    def GetSkillBalance(
        self, request: analytics_pb2.GetSkillBalanceRequest, context: grpc.ServicerContext
    ) -> analytics_pb2.SkillBalance:
        self._check(request, context)
        skills = SKILLS if request.program_id == PROGRAM else []
        return analytics_pb2.SkillBalance(
            organization_id=request.organization_id,
            program_id=request.program_id,
            cohort_id=request.cohort_id,
            skills=skills[: request.limit or None],
        )

    def ListAtRiskRelationships(
        self,
        request: analytics_pb2.ListAtRiskRelationshipsRequest,
        context: grpc.ServicerContext,
    ) -> analytics_pb2.ListAtRiskRelationshipsResponse:
        self._check(request, context)
        rows = at_risk() if request.program_id == PROGRAM else []
        start = int(request.page_token or 0)
        end = start + min(request.page_size or 100, self.MAX_PAGE)
        return analytics_pb2.ListAtRiskRelationshipsResponse(
            relationships=rows[start:end],
            next_page_token=str(end) if end < len(rows) else "",
            total=len(rows),
        )

    def GetRetention(
        self, request: analytics_pb2.GetRetentionRequest, context: grpc.ServicerContext
    ) -> analytics_pb2.Retention:
        self._check(request, context)
        rows = (
            [retention_row(m) for m in (request.months or [6, 12])]
            if request.program_id in (PROGRAM, "")
            else []
        )
        return analytics_pb2.Retention(
            organization_id=request.organization_id, program_id=request.program_id, rows=rows
        )


class FakeEnrollment(enrollment_pb2_grpc.EnrollmentServiceServicer):
    def GetProgram(
        self, request: enrollment_pb2.GetProgramRequest, context: grpc.ServicerContext
    ) -> enrollment_pb2.Program:
        names = {PROGRAM: PROGRAM_NAME, NEW_PROGRAM: "Brand new program"}
        if request.program_id not in names:
            context.abort(grpc.StatusCode.NOT_FOUND, f"program {request.program_id} not found")
        return enrollment_pb2.Program(
            organization_id=request.organization_id,
            program_id=request.program_id,
            name=names[request.program_id],
        )

    def ListParticipants(
        self, request: enrollment_pb2.ListParticipantsRequest, context: grpc.ServicerContext
    ) -> enrollment_pb2.ListParticipantsResponse:
        return enrollment_pb2.ListParticipantsResponse(
            participants=[
                enrollment_pb2.Participant(participant_id=pid, display_name=name)
                for pid, name in PEOPLE.items()
            ]
        )


@contextmanager
def serve() -> Iterator[tuple[str, FakeAnalytics]]:
    """Both fakes on one loopback port; yields its address and the analytics fake."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    analytics = FakeAnalytics()
    analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server(analytics, server)
    enrollment_pb2_grpc.add_EnrollmentServiceServicer_to_server(FakeEnrollment(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", analytics
    finally:
        server.stop(None)
