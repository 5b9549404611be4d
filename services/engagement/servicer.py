"""EngagementService over gRPC."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.message import Message
from grpc import aio

from services.common import auth, clock, idempotency, pagination
from services.common.api import common_pb2, engagement_pb2, engagement_pb2_grpc
from services.common.errors import InvalidArgument, PermissionDenied
from services.common.kafka import EventPublisher
from services.common.outbox import OutboxRelay
from services.common.storage import run_sync
from services.common.validation import require_id
from services.engagement import (
    announcements,
    convert,
    domain,
    feedback,
    goals,
    health,
    notifications,
    nudges,
    planning,
    store,
    training,
)
from services.engagement.convert import (
    DECISION,
    DECISION_NAMES,
    MODE_VALUES,
    MODES,
    STATUS,
    relationship_message,
    session_message,
)
from services.engagement.documents import Match, Relationship

ORIGINS = {name: value for value, name in store.ORIGIN_NAMES.items()}


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


def _relationship(r: Relationship) -> engagement_pb2.Relationship:
    return relationship_message(r, store.expected_end(r))


def _with_health(inputs: store.HealthInputs) -> engagement_pb2.Relationship:
    r = inputs.relationship
    ended = domain.aware(r.ended_at) if r.ended_at is not None else None
    days = health.active_days(
        started_at=domain.aware(r.started_at),
        until=ended or clock.now(),
        paused_seconds=r.paused_seconds or 0.0,
        paused_at=domain.aware(r.paused_at) if r.paused_at is not None else None,
    )
    score = health.health(
        held=r.sessions,
        days=days,
        goals=inputs.goals,
        ratings=inputs.ratings,
        cadence_days=inputs.cadence_days,
    )
    return relationship_message(r, store.expected_end(r), score)


def _time(message: Message, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    moment: datetime = getattr(message, field).ToDatetime(UTC)
    return moment


def _policy_message(org: str, program_id: str, p: nudges.NudgePolicy) -> engagement_pb2.NudgePolicy:
    return engagement_pb2.NudgePolicy(
        organization_id=org,
        program_id=program_id,
        no_session_seconds=p.no_session_seconds,
        unanswered_proposal_seconds=p.unanswered_proposal_seconds,
        check_in_grace_seconds=p.check_in_grace_seconds,
        ending_soon_seconds=p.ending_soon_seconds,
        disabled=p.disabled,
    )


def _client_request(request: Message, request_id: str) -> store.ClientRequest:
    """The request's optional idempotency key (its request_id) and its fingerprint."""
    if not request_id:
        return store.NO_REQUEST_ID
    return store.ClientRequest(
        require_id("request_id", request_id), idempotency.fingerprint(request)
    )


def _private(note: str, participant_id: str) -> str:
    """A private note goes back to its author only, not to a coordinator acting for them."""
    return note if auth.sees_private(participant_id) else ""


def _changed_by(participant_id: str) -> str:
    """Who makes a change for the member `participant_id`: the member, or the coordinator (the
    token's subject) acting for them."""
    principal = auth.current()
    if principal is None or principal.acts_as(participant_id):
        return participant_id
    return principal.subject


def _page(page_size: int, page_token: str) -> tuple[int, str | None]:
    return pagination.page_size(page_size), pagination.decode_token(page_token)


def _next(keys: list[str], size: int) -> str:
    return pagination.next_token(keys, size, str)


class EngagementServicer(engagement_pb2_grpc.EngagementServiceServicer):
    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher
        # Changes that go with their events in one transaction publish through the outbox.
        self._outbox = OutboxRelay(publisher)

    async def GetMatch(
        self, request: engagement_pb2.GetMatchRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Match:
        org = require_id("organization_id", request.organization_id)
        match_id = require_id("match_id", request.match_id)
        match = await run_sync(store.get_match, org, match_id)
        auth.require_pair_member(match.mentor_id, match.mentee_id, "match_id")
        return match_message(match)

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
            next_page_token=pagination.next_token(docs, size, lambda d: d.match_id),
        )

    async def RespondToMatch(
        self, request: engagement_pb2.RespondToMatchRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Match:
        org = require_id("organization_id", request.organization_id)
        match_id = require_id("match_id", request.match_id)
        participant_id = require_id("participant_id", request.participant_id)
        decision = DECISION_NAMES.get(request.decision, domain.NONE)
        match, events = await run_sync(store.respond, org, match_id, participant_id, decision)
        await self._outbox.deliver(events)
        return match_message(match)

    async def GetRelationship(
        self, request: engagement_pb2.GetRelationshipRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Relationship:
        org = require_id("organization_id", request.organization_id)
        relationship_id = require_id("relationship_id", request.relationship_id)
        inputs = await run_sync(store.health_inputs, org, relationship_id)
        r = inputs.relationship
        auth.require_pair_member(r.mentor_id, r.mentee_id, "relationship_id")
        return _with_health(inputs)

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
        if auth.current() is not None:  # the request names no actor: check the caller
            r = await run_sync(store.get_relationship, org, relationship_id)
            auth.require_pair_member(r.mentor_id, r.mentee_id, "relationship_id")
        session, events = await run_sync(
            store.log_session,
            org,
            relationship_id,
            held_at,
            request.minutes,
            MODES[request.mode],
            _client_request(request, request.request_id),
        )
        # A retry (same request_id) finds the same session: same event id, dropped by consumers.
        await self._outbox.deliver(events)
        return session_message(session)

    async def EndRelationship(
        self, request: engagement_pb2.EndRelationshipRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Relationship:
        org = require_id("organization_id", request.organization_id)
        relationship_id = require_id("relationship_id", request.relationship_id)
        participant_id = require_id("participant_id", request.participant_id)
        relationship, events = await run_sync(
            store.end_relationship,
            org,
            relationship_id,
            participant_id,
            request.completed,
            request.reason,
            request.not_a_good_fit,
        )
        await self._outbox.deliver(events)
        return _relationship(relationship)

    # --- relationship lifecycle ------------------------------------------------------------

    async def PauseRelationship(
        self, request: engagement_pb2.PauseRelationshipRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Relationship:
        org = require_id("organization_id", request.organization_id)
        relationship_id = require_id("relationship_id", request.relationship_id)
        participant_id = require_id("participant_id", request.participant_id)
        reason = domain.validate_reason("reason", request.reason)
        relationship = await run_sync(
            store.pause_relationship, org, relationship_id, participant_id, reason
        )
        return _relationship(relationship)

    async def ResumeRelationship(
        self, request: engagement_pb2.ResumeRelationshipRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Relationship:
        org = require_id("organization_id", request.organization_id)
        relationship_id = require_id("relationship_id", request.relationship_id)
        participant_id = require_id("participant_id", request.participant_id)
        relationship = await run_sync(
            store.resume_relationship, org, relationship_id, participant_id
        )
        return _relationship(relationship)

    async def ExtendRelationship(
        self, request: engagement_pb2.ExtendRelationshipRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Relationship:
        org = require_id("organization_id", request.organization_id)
        relationship_id = require_id("relationship_id", request.relationship_id)
        participant_id = require_id("participant_id", request.participant_id)
        new_end = _time(request, "expected_end_at")
        if new_end is None:
            raise InvalidArgument("expected_end_at", "is required")
        relationship = await run_sync(
            store.extend_relationship, org, relationship_id, participant_id, new_end
        )
        return _relationship(relationship)

    # --- sessions --------------------------------------------------------------------------

    async def ScheduleSession(
        self, request: engagement_pb2.ScheduleSessionRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Session:
        org = require_id("organization_id", request.organization_id)
        relationship_id = require_id("relationship_id", request.relationship_id)
        participant_id = require_id("participant_id", request.participant_id)
        scheduled_at = _time(request, "scheduled_at")
        topics = domain.validate_schedule(
            scheduled_at=scheduled_at,
            minutes=request.minutes,
            mode_set=request.mode in MODES,
            topics=list(request.topics),
            now=clock.now(),
        )
        assert scheduled_at is not None
        session, events = await run_sync(
            planning.schedule_session,
            org,
            relationship_id,
            participant_id,
            scheduled_at,
            request.minutes,
            MODES[request.mode],
            topics,
            _client_request(request, request.request_id),
            _changed_by(participant_id),
        )
        # A retry (same request_id) rebuilds the same event: consumers drop the copy.
        await self._outbox.deliver(events)
        return session_message(session)

    async def RescheduleSession(
        self, request: engagement_pb2.RescheduleSessionRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Session:
        org = require_id("organization_id", request.organization_id)
        session_id = require_id("session_id", request.session_id)
        participant_id = require_id("participant_id", request.participant_id)
        scheduled_at = _time(request, "scheduled_at")
        domain.validate_move(scheduled_at=scheduled_at, minutes=request.minutes, now=clock.now())
        assert scheduled_at is not None
        session, events = await run_sync(
            planning.reschedule_session,
            org,
            session_id,
            participant_id,
            scheduled_at,
            request.minutes,
            _client_request(request, request.request_id),
            _changed_by(participant_id),
        )
        await self._outbox.deliver(events)
        note = await run_sync(store.note_of, org, session_id, participant_id)
        return session_message(session, _private(note, participant_id))

    async def MarkSessionHeld(
        self, request: engagement_pb2.MarkSessionHeldRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Session:
        org = require_id("organization_id", request.organization_id)
        session_id = require_id("session_id", request.session_id)
        participant_id = require_id("participant_id", request.participant_id)
        if request.minutes > domain.MAX_SESSION_MINUTES:
            raise InvalidArgument("minutes", f"must be 1-{domain.MAX_SESSION_MINUTES}")
        note = domain.validate_note("private_note", request.private_note)
        if note and not auth.sees_private(participant_id):
            raise PermissionDenied("private_note: only its author writes a private note")
        session, own_note, events = await run_sync(
            store.mark_held,
            org,
            session_id,
            participant_id,
            _time(request, "held_at"),
            request.minutes,
            note,
            clock.now(),
        )
        # The note is never part of the event.
        await self._outbox.deliver(events)
        return session_message(session, _private(own_note, participant_id))

    async def CancelSession(
        self, request: engagement_pb2.CancelSessionRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Session:
        org = require_id("organization_id", request.organization_id)
        session_id = require_id("session_id", request.session_id)
        participant_id = require_id("participant_id", request.participant_id)
        reason = domain.validate_reason("reason", request.reason)
        session, events = await run_sync(
            planning.cancel_session,
            org,
            session_id,
            participant_id,
            reason,
            _changed_by(participant_id),
        )
        await self._outbox.deliver(events)
        note = await run_sync(store.note_of, org, session_id, participant_id)
        return session_message(session, _private(note, participant_id))

    async def AddSessionNote(
        self, request: engagement_pb2.AddSessionNoteRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Session:
        org = require_id("organization_id", request.organization_id)
        session_id = require_id("session_id", request.session_id)
        participant_id = require_id("participant_id", request.participant_id)
        text = domain.validate_note("text", request.text)
        session, note = await run_sync(store.add_note, org, session_id, participant_id, text)
        return session_message(session, note)

    async def ListSessions(
        self, request: engagement_pb2.ListSessionsRequest, context: aio.ServicerContext
    ) -> engagement_pb2.ListSessionsResponse:
        org = require_id("organization_id", request.organization_id)
        relationship_id = require_id("relationship_id", request.relationship_id)
        participant_id = require_id("participant_id", request.participant_id)
        size, after = _page(request.page_size, request.page_token)
        found = await run_sync(
            store.list_sessions, org, relationship_id, participant_id, size, after
        )
        return engagement_pb2.ListSessionsResponse(
            sessions=[session_message(s, _private(note, participant_id)) for s, note in found],
            next_page_token=_next([s.session_id for s, _ in found], size),
        )

    async def GetTranscript(
        self, request: engagement_pb2.GetTranscriptRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Transcript:
        org = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        program_id = require_id("program_id", request.program_id) if request.program_id else ""
        held = await run_sync(store.transcript_sessions, org, participant_id, program_id)
        completions = await run_sync(
            training.list_completions, org, participant_id, program_id, 100_000, None
        )
        transcript = engagement_pb2.Transcript(
            organization_id=org,
            participant_id=participant_id,
            trainings=[convert.completion_message(c, r) for c, r in completions],
        )
        for s, side in held:
            entry = transcript.sessions.add(
                session_id=s.session_id,
                relationship_id=s.relationship_id,
                program_id=s.program_id,
                role=convert.ROLE[side],
                minutes=s.minutes,
                mode=MODE_VALUES[s.mode],
            )
            entry.held_at.FromDatetime(domain.aware(s.held_at))
        transcript.session_minutes = sum(s.minutes for s, _ in held)
        transcript.training_minutes = sum(r.minutes for _, r in completions)
        transcript.recognised_hours = domain.recognised_hours(
            transcript.session_minutes, transcript.training_minutes
        )
        return transcript

    # --- goals -----------------------------------------------------------------------------

    async def CreateGoal(
        self, request: engagement_pb2.CreateGoalRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Goal:
        org = require_id("organization_id", request.organization_id)
        relationship_id = require_id("relationship_id", request.relationship_id)
        participant_id = require_id("participant_id", request.participant_id)
        target_date = _time(request, "target_date")
        title, description = domain.validate_goal(
            title=request.title,
            description=request.description,
            target_date=target_date,
            now=clock.now(),
        )
        assert target_date is not None
        goal, events = await run_sync(
            goals.create_goal,
            org,
            relationship_id,
            participant_id,
            title,
            description,
            target_date,
            _client_request(request, request.request_id),
        )
        await self._outbox.deliver(events)
        return convert.goal_message(goal)

    async def AddMilestone(
        self, request: engagement_pb2.AddMilestoneRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Goal:
        org = require_id("organization_id", request.organization_id)
        goal_id = require_id("goal_id", request.goal_id)
        participant_id = require_id("participant_id", request.participant_id)
        goal, events = await run_sync(
            goals.add_milestone,
            org,
            goal_id,
            participant_id,
            request.title,
            _time(request, "due_at"),
        )
        await self._outbox.deliver(events)
        return convert.goal_message(goal)

    async def UpdateGoalProgress(
        self, request: engagement_pb2.UpdateGoalProgressRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Goal:
        org = require_id("organization_id", request.organization_id)
        goal_id = require_id("goal_id", request.goal_id)
        participant_id = require_id("participant_id", request.participant_id)
        progress = request.progress if request.HasField("progress") else None
        if request.status and request.status not in convert.GOAL_STATUS_NAMES:
            raise InvalidArgument("status", "must be open, achieved or abandoned")
        status = convert.GOAL_STATUS_NAMES.get(request.status)
        milestone_ids = [
            require_id("completed_milestone_ids", m) for m in request.completed_milestone_ids
        ]
        goal, events = await run_sync(
            goals.update_progress, org, goal_id, participant_id, progress, status, milestone_ids
        )
        await self._outbox.deliver(events)
        return convert.goal_message(goal)

    async def ListGoals(
        self, request: engagement_pb2.ListGoalsRequest, context: aio.ServicerContext
    ) -> engagement_pb2.ListGoalsResponse:
        org = require_id("organization_id", request.organization_id)
        relationship_id = require_id("relationship_id", request.relationship_id)
        participant_id = require_id("participant_id", request.participant_id)
        size, after = _page(request.page_size, request.page_token)
        found = await run_sync(goals.list_goals, org, relationship_id, participant_id, size, after)
        return engagement_pb2.ListGoalsResponse(
            goals=[convert.goal_message(g) for g in found],
            next_page_token=_next([g.goal_id for g in found], size),
        )

    # --- feedback and messages -------------------------------------------------------------

    async def SubmitFeedback(
        self, request: engagement_pb2.SubmitFeedbackRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Feedback:
        org = require_id("organization_id", request.organization_id)
        relationship_id = require_id("relationship_id", request.relationship_id)
        participant_id = require_id("participant_id", request.participant_id)
        point, comment = domain.validate_feedback(
            survey_point=request.survey_point, rating=request.rating, comment=request.comment
        )
        answer, events = await run_sync(
            feedback.submit, org, relationship_id, participant_id, point, request.rating, comment
        )
        await self._outbox.deliver(events)
        return convert.feedback_message(answer)

    async def RecordMessage(
        self, request: engagement_pb2.RecordMessageRequest, context: aio.ServicerContext
    ) -> engagement_pb2.Relationship:
        org = require_id("organization_id", request.organization_id)
        relationship_id = require_id("relationship_id", request.relationship_id)
        participant_id = require_id("participant_id", request.participant_id)
        message_id = require_id("message_id", request.message_id)
        now = clock.now()
        sent_at = _time(request, "sent_at") or now
        if sent_at > now + domain.CLOCK_SKEW:
            raise InvalidArgument("sent_at", "is in the future")
        relationship, events = await run_sync(
            store.record_message, org, relationship_id, participant_id, message_id, sent_at
        )
        await self._outbox.deliver(events)
        return _relationship(relationship)

    # --- training --------------------------------------------------------------------------

    async def AddTrainingResource(
        self, request: engagement_pb2.AddTrainingResourceRequest, context: aio.ServicerContext
    ) -> engagement_pb2.TrainingResource:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        kind = convert.TRAINING_KIND_NAMES.get(request.kind)
        audience = convert.AUDIENCE_NAMES.get(request.audience)
        title, url = domain.validate_resource(
            title=request.title,
            kind=kind,
            url=request.url,
            audience=audience,
            minutes=request.minutes,
        )
        assert kind is not None and audience is not None
        resource = await run_sync(
            training.add_resource, org, program_id, title, kind, url, audience, request.minutes
        )
        return convert.resource_message(resource)

    async def ListTrainingResources(
        self, request: engagement_pb2.ListTrainingResourcesRequest, context: aio.ServicerContext
    ) -> engagement_pb2.ListTrainingResourcesResponse:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        if request.audience and request.audience not in convert.AUDIENCE_NAMES:
            raise InvalidArgument("audience", "must be mentors, mentees or both")
        audience = convert.AUDIENCE_NAMES.get(request.audience, "")
        size, after = _page(request.page_size, request.page_token)
        found = await run_sync(training.list_resources, org, program_id, audience, size, after)
        return engagement_pb2.ListTrainingResourcesResponse(
            resources=[convert.resource_message(r) for r in found],
            next_page_token=_next([r.resource_id for r in found], size),
        )

    async def CompleteTraining(
        self, request: engagement_pb2.CompleteTrainingRequest, context: aio.ServicerContext
    ) -> engagement_pb2.TrainingCompletion:
        org = require_id("organization_id", request.organization_id)
        resource_id = require_id("resource_id", request.resource_id)
        participant_id = require_id("participant_id", request.participant_id)
        completion, resource, events = await run_sync(
            training.complete, org, resource_id, participant_id
        )
        # Also on a repeat: one event id per (resource, participant).
        await self._outbox.deliver(events)
        return convert.completion_message(completion, resource)

    async def ListTrainingCompletions(
        self, request: engagement_pb2.ListTrainingCompletionsRequest, context: aio.ServicerContext
    ) -> engagement_pb2.ListTrainingCompletionsResponse:
        org = require_id("organization_id", request.organization_id)
        participant_id = require_id("participant_id", request.participant_id)
        size, after = _page(request.page_size, request.page_token)
        found = await run_sync(training.list_completions, org, participant_id, "", size, after)
        return engagement_pb2.ListTrainingCompletionsResponse(
            completions=[convert.completion_message(c, r) for c, r in found],
            next_page_token=_next([c.resource_id for c, _ in found], size),
        )

    # --- nudges and announcements ----------------------------------------------------------

    async def SetNudgePolicy(
        self, request: engagement_pb2.SetNudgePolicyRequest, context: aio.ServicerContext
    ) -> engagement_pb2.NudgePolicy:
        wanted = request.policy
        org = require_id("policy.organization_id", wanted.organization_id)
        program_id = require_id("policy.program_id", wanted.program_id)
        policy = nudges.policy_from(
            {name: getattr(wanted, name) for name in nudges.THRESHOLDS},
            disabled=wanted.disabled,
        )
        # Left unset, the no-session threshold follows the program's meeting cadence.
        stored = await run_sync(
            notifications.set_policy, org, program_id, policy, wanted.no_session_seconds == 0
        )
        return _policy_message(org, program_id, stored)

    async def GetNudgePolicy(
        self, request: engagement_pb2.GetNudgePolicyRequest, context: aio.ServicerContext
    ) -> engagement_pb2.NudgePolicy:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        policy = await run_sync(notifications.get_policy, org, program_id)
        return _policy_message(org, program_id, policy)

    async def Announce(
        self, request: engagement_pb2.AnnounceRequest, context: aio.ServicerContext
    ) -> engagement_pb2.AnnounceResponse:
        org = require_id("organization_id", request.organization_id)
        program_id = require_id("program_id", request.program_id)
        announcement_id = require_id("announcement_id", request.announcement_id)
        if request.role and request.role not in convert.ROLE_NAMES:
            raise InvalidArgument("role", "must be ROLE_MENTOR, ROLE_MENTEE or unspecified")
        role = convert.ROLE_NAMES.get(request.role, "")
        announcements.validate_audience(
            participant_id=request.participant_id,
            cohort_id=request.cohort_id,
            role=role,
            unmatched=request.unmatched,
        )
        template, message = announcements.validate(
            template=request.template, message=request.message
        )
        doc, created, events = await run_sync(
            announcements.announce,
            announcements.AnnouncementRequest(
                organization_id=org,
                program_id=program_id,
                announcement_id=announcement_id,
                participant_id=request.participant_id,
                template=template,
                message=message,
                cohort_id=request.cohort_id,
                role=role,
                unmatched=request.unmatched,
            ),
        )
        await self._outbox.deliver(events)
        return engagement_pb2.AnnounceResponse(
            announcement_id=announcement_id,
            recipient_ids=[pid for pid, _ in announcements.recipients_of(doc)],
            created=created,
        )
