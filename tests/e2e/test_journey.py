"""The whole journey through gRPC only: enrol, match, accept, meet, and watch the KPIs move."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import (
    analytics_pb2,
    common_pb2,
    engagement_pb2,
    enrollment_pb2,
    events_pb2,
    matching_pb2,
)
from services.common.events import EVENT_TOPICS, partition_key
from tests.e2e.support import eventually, metric, read_topic

MENTOR, MENTEE = common_pb2.ROLE_MENTOR, common_pb2.ROLE_MENTEE
ACCEPT, DECLINE = common_pb2.MATCH_DECISION_ACCEPT, common_pb2.MATCH_DECISION_DECLINE


def register(
    clients: Clients,
    org: str,
    program_id: str,
    name: str,
    role: int,
    skills: list[str],
    capacity: int = 0,
) -> str:
    participant = clients.enrollment.RegisterParticipant(
        enrollment_pb2.RegisterParticipantRequest(
            organization_id=org,
            program_id=program_id,
            role=role,
            display_name=name,
            email=f"{name.lower()}@{org}.example",
            skills=skills,
            capacity=capacity,
        )
    )
    return participant.participant_id


def respond(
    clients: Clients, org: str, match_id: str, participant_id: str, decision: int
) -> engagement_pb2.Match:
    return clients.engagement.RespondToMatch(
        engagement_pb2.RespondToMatchRequest(
            organization_id=org, match_id=match_id, participant_id=participant_id, decision=decision
        )
    )


def log_session(clients: Clients, org: str, relationship_id: str, minutes: int) -> None:
    request = engagement_pb2.LogSessionRequest(
        organization_id=org,
        relationship_id=relationship_id,
        minutes=minutes,
        mode=common_pb2.SESSION_MODE_VIRTUAL,
    )
    request.held_at.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    clients.engagement.LogSession(request)


def test_journey_moves_kpis_and_publishes_every_event(stack: Stack, clients: Clients) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    program = clients.enrollment.CreateProgram(
        enrollment_pb2.CreateProgramRequest(
            organization_id=org, name="Pilot cohort", objective="Onboarding"
        )
    )
    pid = program.program_id
    ada = register(clients, org, pid, "Ada", MENTOR, ["python", "leadership"], capacity=2)
    ben = register(clients, org, pid, "Ben", MENTOR, ["finance"], capacity=1)
    cai = register(clients, org, pid, "Cai", MENTEE, ["python"])
    dee = register(clients, org, pid, "Dee", MENTEE, ["leadership", "python"])
    eva = register(clients, org, pid, "Eva", MENTEE, ["finance"])
    fox = register(clients, org, pid, "Fox", MENTEE, ["pottery"])  # nobody offers it

    def three_matches() -> list[engagement_pb2.Match] | None:
        found = clients.engagement.ListMatches(
            engagement_pb2.ListMatchesRequest(organization_id=org, program_id=pid)
        ).matches
        return list(found) if len(found) == 3 else None

    matches = {m.mentee_id: m for m in eventually("three proposals", three_matches)}
    assert {mentee: m.mentor_id for mentee, m in matches.items()} == {cai: ada, dee: ada, eva: ben}
    assert fox not in matches  # no fit beats a bad fit

    proposals = clients.matching.ListProposals(
        matching_pb2.ListProposalsRequest(organization_id=org, program_id=pid)
    ).proposals
    dee_proposal = next(p for p in proposals if p.mentee_id == dee)
    assert dee_proposal.score == 1.0
    assert dee_proposal.breakdown[0].criterion == "skills"
    assert "leadership" in dee_proposal.breakdown[0].detail

    relationships = []
    for mentee in (cai, dee):
        respond(clients, org, matches[mentee].match_id, ada, ACCEPT)
        accepted = respond(clients, org, matches[mentee].match_id, mentee, ACCEPT)
        assert accepted.status == common_pb2.MATCH_STATUS_ACCEPTED
        relationships.append(accepted.relationship_id)
    declined = respond(clients, org, matches[eva].match_id, ben, DECLINE)
    assert declined.status == common_pb2.MATCH_STATUS_DECLINED

    log_session(clients, org, relationships[0], 45)
    log_session(clients, org, relationships[0], 30)
    log_session(clients, org, relationships[1], 60)
    relationship = clients.engagement.GetRelationship(
        engagement_pb2.GetRelationshipRequest(organization_id=org, relationship_id=relationships[0])
    )
    assert (relationship.sessions, relationship.minutes) == (2, 75)

    expected = {
        "mentors": 2,
        "mentees": 4,
        "applications": 6,
        "approvals": 6,
        "matches_proposed": 3,
        "matches_accepted": 2,
        "matches_declined": 1,
        "active_relationships": 2,
        "relationships_started": 2,
        "mentees_matched": 2,
        "match_rate": 0.5,
        "sessions": 3,
        "session_minutes": 135,
        "session_hours": 2.25,
        # Applications, registrations, proposals, answers, relationships, sessions.
        "events": 6 + 6 + 3 + 5 + 2 + 3,
    }

    def kpis() -> dict[str, object] | None:
        got = clients.analytics.GetProgramKpis(
            analytics_pb2.GetProgramKpisRequest(organization_id=org, program_id=pid)
        )
        figures = {name: getattr(got, name) for name in expected}
        return figures if figures == expected else None

    eventually(f"KPIs {expected}", kpis)
    # The declined mentee's only candidate mentor is now excluded: no new proposal for Eva.
    assert (
        len(
            clients.engagement.ListMatches(
                engagement_pb2.ListMatchesRequest(
                    organization_id=org, program_id=pid, participant_id=eva
                )
            ).matches
        )
        == 1
    )

    # Every event is on its topic, keyed by program, enveloped with tenant, program and producer.
    producers = {
        "application-submitted": "enrollment",
        "participant-registered": "enrollment",
        "match-proposed": "matching",
        "match-responded": "engagement",
        "relationship-started": "engagement",
        "session-logged": "engagement",
    }
    counts: Counter[str] = Counter()
    ids: set[str] = set()
    for topic in EVENT_TOPICS:
        for record in read_topic(stack.ports.bootstrap, topic):
            if record.key != partition_key(org, pid):
                continue
            event = events_pb2.Event.FromString(record.value)
            env = event.envelope
            assert (env.organization_id, env.program_id) == (org, pid)
            assert env.producer == producers[topic]
            assert env.schema_version == 1
            assert event.WhichOneof("payload") == env.event_type
            ids.add(env.event_id)
            counts[topic] += 1
    assert counts == {
        "application-submitted": 6,
        "participant-registered": 6,
        "match-proposed": 3,
        "match-responded": 5,
        "relationship-started": 2,
        "session-logged": 3,
    }
    assert len(ids) == sum(counts.values())

    # The same KPIs are exported to Prometheus (refreshed every second).
    eventually(
        "the session_minutes gauge",
        lambda: (
            metric(
                stack.ports.metrics["analytics"],
                "mentoring_program_kpi",
                organization=org,
                program=pid,
                kpi="session_minutes",
            )
            == 135
        ),
    )
    assert (
        metric(
            stack.ports.metrics["enrollment"],
            "grpc_server_handled_total",
            grpc_service="mentoring.v1.EnrollmentService",
            grpc_method="RegisterParticipant",
            grpc_code="OK",
        )
        >= 6
    )
