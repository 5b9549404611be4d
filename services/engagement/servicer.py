"""EngagementService over gRPC."""

from __future__ import annotations

from datetime import UTC, datetime

from grpc import aio

from services.common import pagination
from services.common.api import common_pb2, engagement_pb2, engagement_pb2_grpc, events_pb2
from services.common.events import new_event, stable_event_id
from services.common.kafka import EventPublisher
from services.common.storage import run_sync
from services.common.validation import require_id
from services.engagement import domain, store
from services.engagement.documents import Match, Relationship, Session

STATUS = {
    domain.PROPOSED: common_pb2.MATCH_STATUS_PROPOSED,
    domain.ACCEPTED: common_pb2.MATCH_STATUS_ACCEPTED,
    domain.DECLINED: common_pb2.MATCH_STATUS_DECLINED,
    domain.EXPIRED: common_pb2.MATCH_STATUS_EXPIRED,
}
ORIGINS = {name: value for value, name in store.ORIGIN_NAMES.items()}
RELATIONSHIP_STATUS = {
    domain.ACTIVE: engagement_pb2.RELATIONSHIP_STATUS_ACTIVE,
    domain.COMPLETED: engagement_pb2.RELATIONSHIP_STATUS_COMPLETED,
    domain.CLOSED_EARLY: engagement_pb2.RELATIONSHIP_STATUS_CLOSED_EARLY,
}
DECISION = {
    domain.NONE: common_pb2.MATCH_DECISION_UNSPECIFIED,
    domain.ACCEPT: common_pb2.MATCH_DECISION_ACCEPT,
    domain.DECLINE: common_pb2.MATCH_DECISION_DECLINE,
}
DECISION_NAMES = {value: name for name, value in DECISION.items()}
MODES = {
    common_pb2.SESSION_MODE_VIRTUAL: "virtual",
    common_pb2.SESSION_MODE_FACE_TO_FACE: "face_to_face",
    common_pb2.SESSION_MODE_PHONE: "phone",
}
MODE_VALUES = {name: value for value, name in MODES.items()}


def match_message(m: Match) -> engagement_pb2.Match:
    return engagement_pb2.Match(
        organization_id=m.organization_id,
        program_id=m.program_id,
        match_id=m.match_id,
        mentor_id=m.mentor_id,
        mentee_id=m.mentee_id,
        score=m.score,
        status=STATUS[m.status],
        mentor_decision=DECISION[m.mentor_decision],
        mentee_decision=DECISION[m.mentee_decision],
        relationship_id=m.relationship_id,
        origin=ORIGINS.get(m.origin, common_pb2.MATCH_ORIGIN_ENGINE),
    )


def relationship_message(r: Relationship) -> engagement_pb2.Relationship:
    msg = engagement_pb2.Relationship(
        organization_id=r.organization_id,
        program_id=r.program_id,
        relationship_id=r.relationship_id,
        match_id=r.match_id,
        mentor_id=r.mentor_id,
        mentee_id=r.mentee_id,
        sessions=r.sessions,
        minutes=r.minutes,
        status=RELATIONSHIP_STATUS[r.status],
        end_reason=r.end_reason,
    )
    msg.started_at.FromDatetime(r.started_at)
    return msg


def session_message(s: Session) -> engagement_pb2.Session:
    msg = engagement_pb2.Session(
        organization_id=s.organization_id,
        program_id=s.program_id,
        session_id=s.session_id,
        relationship_id=s.relationship_id,
        minutes=s.minutes,
        mode=MODE_VALUES[s.mode],
    )
    msg.held_at.FromDatetime(s.held_at)
    return msg


def response_events(match: Match, participant_id: str) -> list[events_pb2.Event]:
    """Events for an answer. Their ids derive from the answer, so a retried RPC republishes the
    same events and consumers drop the copies."""
    decision = match.mentor_decision if participant_id == match.mentor_id else match.mentee_decision
    common = {
        "producer": "engagement",
        "organization_id": match.organization_id,
        "program_id": match.program_id,
    }
    events = [
        new_event(
            **common,
            event_id=stable_event_id(
                "match-responded", match.organization_id, match.match_id, participant_id, decision
            ),
            payload=events_pb2.MatchResponded(
                match_id=match.match_id,
                participant_id=participant_id,
                decision=DECISION[decision],
                status=STATUS[match.status],
                mentor_id=match.mentor_id,
                mentee_id=match.mentee_id,
            ),
        )
    ]
    if match.relationship_id:
        events.append(
            new_event(
                **common,
                event_id=stable_event_id(
                    "relationship-started", match.organization_id, match.relationship_id
                ),
                payload=events_pb2.RelationshipStarted(
                    relationship_id=match.relationship_id,
                    match_id=match.match_id,
                    mentor_id=match.mentor_id,
                    mentee_id=match.mentee_id,
                ),
            )
        )
    return events


class EngagementServicer(engagement_pb2_grpc.EngagementServiceServicer):
    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def GetMatch(
        self, request: engagement_pb2.GetMatchRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Match:
        org = require_id("organization_id", request.organization_id)
        match_id = require_id("match_id", request.match_id)
        return match_message(await run_sync(store.get_match, org, match_id))

    async def ListMatches(
        self, request: engagement_pb2.ListMatchesRequest, context: aio.ServicerContext
    ) -> engagement_pb2.ListMatchesResponse:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        participant_id = (
            require_id("participant_id", request.participant_id) if request.participant_id else ""
        )
        size = pagination.page_size(request.page_size)
        after = pagination.decode_token(request.page_token)
        docs = await run_sync(store.list_matches, org, program_id, participant_id, size, after)
        return engagement_pb2.ListMatchesResponse(
            matches=[match_message(m) for m in docs],
            next_page_token=pagination.encode_token(docs[-1].match_id) if len(docs) == size else "",
        )

    async def RespondToMatch(
        self, request: engagement_pb2.RespondToMatchRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Match:
        org = require_id("organization_id", request.organization_id)
        match_id = require_id("match_id", request.match_id)
        participant_id = require_id("participant_id", request.participant_id)
        decision = DECISION_NAMES.get(request.decision, domain.NONE)
        match, _ = await run_sync(store.respond, org, match_id, participant_id, decision)
        # Also on an unchanged repeat: the caller may be retrying after a failed publish.
        await self._publisher.publish(response_events(match, participant_id))
        return match_message(match)

    async def GetRelationship(
        self, request: engagement_pb2.GetRelationshipRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Relationship:
        org = require_id("organization_id", request.organization_id)
        relationship_id = require_id("relationship_id", request.relationship_id)
        return relationship_message(await run_sync(store.get_relationship, org, relationship_id))

    async def LogSession(
        self, request: engagement_pb2.LogSessionRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Session:
        org = require_id("organization_id", request.organization_id)
        relationship_id = require_id("relationship_id", request.relationship_id)
        held_at = request.held_at.ToDatetime(UTC) if request.HasField("held_at") else None
        domain.validate_session(
            minutes=request.minutes,
            mode_set=request.mode in MODES,
            held_at=held_at,
            now=datetime.now(UTC),
        )
        assert held_at is not None
        session = await run_sync(
            store.log_session, org, relationship_id, held_at, request.minutes, MODES[request.mode]
        )
        event = new_event(
            producer="engagement",
            organization_id=org,
            program_id=session.program_id,
            event_id=stable_event_id("session-logged", org, session.session_id),
            payload=events_pb2.SessionLogged(
                session_id=session.session_id,
                relationship_id=relationship_id,
                held_at=request.held_at,
                minutes=session.minutes,
                mode=request.mode,
            ),
        )
        await self._publisher.publish([event])
        return session_message(session)

    async def EndRelationship(
        self, request: engagement_pb2.EndRelationshipRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Relationship:
        org = require_id("organization_id", request.organization_id)
        relationship_id = require_id("relationship_id", request.relationship_id)
        participant_id = require_id("participant_id", request.participant_id)
        relationship, _ = await run_sync(
            store.end_relationship,
            org,
            relationship_id,
            participant_id,
            request.completed,
            request.reason,
            request.not_a_good_fit,
        )
        # Also on an unchanged repeat, with the same event id: the caller may be retrying.
        await self._publisher.publish(
            [
                new_event(
                    producer="engagement",
                    organization_id=org,
                    program_id=relationship.program_id,
                    event_id=stable_event_id("relationship-ended", org, relationship_id),
                    payload=events_pb2.RelationshipEnded(
                        relationship_id=relationship_id,
                        match_id=relationship.match_id,
                        mentor_id=relationship.mentor_id,
                        mentee_id=relationship.mentee_id,
                        reason=relationship.end_reason,
                        not_a_good_fit=request.not_a_good_fit,
                        completed=relationship.status == domain.COMPLETED,
                    ),
                )
            ]
        )
        return relationship_message(relationship)
