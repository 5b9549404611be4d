"""Helpers for driving the matching engine end to end."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import grpc

from mentoring.clients import Clients
from mentoring.stack import Stack
from services.common.api import common_pb2, engagement_pb2, enrollment_pb2, matching_pb2
from tests.e2e.support import eventually, metric

MENTOR, MENTEE = common_pb2.ROLE_MENTOR, common_pb2.ROLE_MENTEE


@dataclass
class Program:
    clients: Clients
    stack: Stack
    org: str = field(default_factory=lambda: f"org-{uuid.uuid4().hex[:8]}")
    pid: str = ""

    def __post_init__(self) -> None:
        self._consumed = self._matching_consumed()
        self._registered = 0
        self.pid = self.clients.enrollment.CreateProgram(
            enrollment_pb2.CreateProgramRequest(organization_id=self.org, name="Engine test")
        ).program_id

    def configure(self, **fields: object) -> matching_pb2.MatchingConfig:
        config = matching_pb2.MatchingConfig(
            organization_id=self.org, program_id=self.pid, **fields
        )
        return self.clients.matching.SetMatchingConfig(
            matching_pb2.SetMatchingConfigRequest(config=config)
        )

    def register(
        self, name: str, role: int, skills: list[str], capacity: int = 0, **profile: object
    ) -> str:
        self._registered += 1
        return self.clients.enrollment.RegisterParticipant(
            enrollment_pb2.RegisterParticipantRequest(
                organization_id=self.org,
                program_id=self.pid,
                role=role,
                display_name=name,
                email=f"{name.lower()}@{self.org}.example",
                skills=skills,
                capacity=capacity,
                profile=common_pb2.Profile(**profile),
            )
        ).participant_id

    def proposal_request(
        self, mentor_id: str, mentee_id: str, **fields: object
    ) -> matching_pb2.ProposeMatchRequest:
        """A coordinator's ProposeMatch request for a pair in this program."""
        return matching_pb2.ProposeMatchRequest(
            organization_id=self.org,
            program_id=self.pid,
            mentor_id=mentor_id,
            mentee_id=mentee_id,
            **fields,
        )

    def proposals(self, mentee_id: str = "") -> list[matching_pb2.Proposal]:
        return list(
            self.clients.matching.ListProposals(
                matching_pb2.ListProposalsRequest(
                    organization_id=self.org, program_id=self.pid, mentee_id=mentee_id
                )
            ).proposals
        )

    def _matching_consumed(self) -> float:
        return metric(
            self.stack.ports.metrics["matching"],
            "mentoring_events_consumed_total",
            topic="participant-registered",
            group="matching",
        )

    def wait_pool(self) -> None:
        """Registrations travel by Kafka: wait until matching has consumed all of ours (tests
        run one at a time, so nobody else registers meanwhile)."""
        expected = self._consumed + self._registered
        eventually(
            "matching to consume the registrations", lambda: self._matching_consumed() >= expected
        )

    def run(self, **fields: object) -> matching_pb2.MatchingRun:
        started = self.clients.matching.StartMatchingRun(
            matching_pb2.StartMatchingRunRequest(
                organization_id=self.org, program_id=self.pid, **fields
            )
        )
        assert started.status == matching_pb2.RUN_STATUS_QUEUED
        request = matching_pb2.GetMatchingRunRequest(
            organization_id=self.org, run_id=started.run_id
        )
        return eventually(
            "the run to complete",
            lambda: (
                r
                if (r := self.clients.matching.GetMatchingRun(request)).status
                != matching_pb2.RUN_STATUS_QUEUED
                else None
            ),
        )

    def respond(self, match_id: str, participant_id: str, accept: bool) -> engagement_pb2.Match:
        return self.clients.engagement.RespondToMatch(
            engagement_pb2.RespondToMatchRequest(
                organization_id=self.org,
                match_id=match_id,
                participant_id=participant_id,
                decision=common_pb2.MATCH_DECISION_ACCEPT
                if accept
                else common_pb2.MATCH_DECISION_DECLINE,
            )
        )

    def match(self, match_id: str) -> engagement_pb2.Match:
        return self.clients.engagement.GetMatch(
            engagement_pb2.GetMatchRequest(organization_id=self.org, match_id=match_id)
        )

    def known(self, match_id: str) -> engagement_pb2.Match | None:
        """The match once engagement has read its proposal, else None."""
        try:
            return self.match(match_id)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
