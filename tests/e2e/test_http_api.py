"""The HTTP/JSON API as a portal calls it: JSON over HTTP/1.1 through the real nginx gateway,
with real bearer tokens, on a platform with authentication on (tests/e2e/conftest.py, `portal`).
A whole pairing goes through it, every service answers, and each refuses as gRPC would."""

from __future__ import annotations

import json
import urllib.parse
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Portal
from tests.e2e.support import eventually

Json = dict[str, Any]


def call(portal: Portal, rpc: str, body: Json, token: str | None) -> tuple[int, Json]:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    reply = requests.post(
        f"{portal.url}/mentoring.v1.{rpc}", data=json.dumps(body), headers=headers, timeout=30
    )
    return reply.status_code, reply.json()


def ok(portal: Portal, rpc: str, body: Json, token: str) -> Json:
    status, answer = call(portal, rpc, body, token)
    assert status == 200, (rpc, status, answer)
    return answer


def test_a_pairing_goes_through_the_json_api_from_program_to_kpis(portal: Portal) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    coordinator = portal.token(org, "coord-1", "coordinator")
    program = ok(
        portal,
        "EnrollmentService/CreateProgram",
        {"organization_id": org, "name": "Portal"},
        coordinator,
    )
    pid = program["programId"]
    people = {}
    for role, name, extra in (
        ("ROLE_MENTOR", "Mira", {"capacity": 1}),
        ("ROLE_MENTEE", "Finn", {}),
    ):
        registered = ok(
            portal,
            "EnrollmentService/RegisterParticipant",
            {
                "organization_id": org,
                "program_id": pid,
                "role": role,
                "display_name": name,
                "email": f"{name.lower()}@{org}.example",
                "skills": ["python"],
                **extra,
            },
            coordinator,
        )
        people[role] = registered["participantId"]
    mentor, mentee = people["ROLE_MENTOR"], people["ROLE_MENTEE"]

    def proposal() -> Json | None:
        found = ok(
            portal,
            "MatchingService/ListProposals",
            {"organization_id": org, "program_id": pid},
            coordinator,
        )
        return next(iter(found.get("proposals", [])), None)

    match_id = eventually("a proposal over HTTP", proposal)["matchId"]
    eventually(
        "engagement to know the match",
        lambda: (
            call(
                portal,
                "EngagementService/GetMatch",
                {"organization_id": org, "match_id": match_id},
                coordinator,
            )[0]
            == 200
        ),
    )
    answer: Json = {}
    for who in (mentor, mentee):
        answer = ok(
            portal,
            "EngagementService/RespondToMatch",
            {
                "organization_id": org,
                "match_id": match_id,
                "participant_id": who,
                "decision": "MATCH_DECISION_ACCEPT",
            },
            portal.token(org, who, "participant"),
        )
    assert answer["status"] == "MATCH_STATUS_ACCEPTED"
    held = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    session = ok(
        portal,
        "EngagementService/LogSession",
        {
            "organization_id": org,
            "relationship_id": answer["relationshipId"],
            "held_at": held,
            "minutes": 45,
            "mode": "SESSION_MODE_VIRTUAL",
        },
        portal.token(org, mentee, "participant"),
    )
    assert session["minutes"] == 45

    def kpis() -> Json | None:
        # Read-only RPCs also answer GET, as a browser cache or a gateway's cache would call them.
        message = urllib.parse.quote(json.dumps({"organization_id": org, "program_id": pid}))
        reply = requests.get(
            f"{portal.url}/mentoring.v1.AnalyticsService/GetProgramKpis?encoding=json&message={message}",
            headers={"authorization": f"Bearer {coordinator}"},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        figures: Json = reply.json()
        # uint64 is a JSON string (proto3 JSON), so a browser loses no precision.
        return figures if figures.get("sessions") == "1" else None

    figures = eventually("the KPIs to count the session", kpis)
    assert (figures["sessionMinutes"], figures["activeRelationships"]) == ("45", "1")


# One refusal per service: a field the service validates, and another organisation's token.
INVALID = [
    ("EnrollmentService/CreateProgram", {"name": " "}, "name"),
    ("MatchingService/StartMatchingRun", {"program_id": ""}, "program_id"),
    ("EngagementService/LogSession", {"relationship_id": ""}, "relationship_id"),
    ("AnalyticsService/GetProgramKpis", {"program_id": ""}, "program_id"),
    (
        "NotificationService/CreateWebhook",
        {"url": "http://hooks.example.com/x", "event_types": ["match-proposed"]},
        "url",
    ),
]


@pytest.mark.parametrize(("rpc", "body", "field"), INVALID, ids=[r for r, _, _ in INVALID])
def test_each_service_names_the_bad_field(portal: Portal, rpc: str, body: Json, field: str) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    status, answer = call(
        portal, rpc, {"organization_id": org, **body}, portal.token(org, "c", "coordinator")
    )
    assert (status, answer["code"]) == (400, "invalid_argument"), answer
    assert answer["message"].startswith(f"{field}:"), answer


@pytest.mark.parametrize(("rpc", "body", "field"), INVALID, ids=[r for r, _, _ in INVALID])
def test_each_service_refuses_another_organisations_token(
    portal: Portal, rpc: str, body: Json, field: str
) -> None:
    status, answer = call(
        portal, rpc, {"organization_id": "acme", **body}, portal.token("globex", "c", "coordinator")
    )
    assert (status, answer["code"]) == (403, "permission_denied"), answer
    assert answer["message"].startswith("organization_id:"), answer


def test_no_token_is_unauthenticated_over_http(portal: Portal) -> None:
    status, answer = call(
        portal, "EnrollmentService/ListPrograms", {"organization_id": "acme"}, None
    )
    assert (status, answer["code"]) == (401, "unauthenticated")
