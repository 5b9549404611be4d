"""Nudge policies, the record of notifications sent, and the nudge scheduler.

The scheduler is a timer like matching's RequestExpiry: every SCHEDULER_INTERVAL_SECONDS it
reads the ongoing relationships and the open proposals, asks the pure rules (nudges.py) what is
due, drops what was sent before, publishes one `notification-requested` per nudge (event id =
notification id) and records each one under a unique key, so neither a later round nor a
restart sends it again. Publish comes before record: a crash between the two republishes the
same event id on the next round, which consumers drop.

Each round scans every ongoing relationship and open proposal of every organisation (one query
each, plus one for held sessions and one for check-in answers): fine for thousands of pairs;
beyond that, keep a "last held at" on the relationship and query by due time instead.
Blocking functions here run through storage.run_sync.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from mongoengine import BooleanField, DateTimeField, Document, IntField, StringField
from mongoengine.errors import NotUniqueError

from services.common import clock
from services.common.api import common_pb2, events_pb2
from services.common.events import new_event
from services.common.kafka import EventPublisher
from services.common.storage import run_sync
from services.engagement import domain, leaves, nudges, programs
from services.engagement.documents import Feedback, Match, Relationship, Session
from services.engagement.nudges import MatchFacts, Nudge, NudgePolicy, RelationshipFacts

log = logging.getLogger(__name__)
PRODUCER = "engagement"
ROLES = {
    nudges.MENTOR: common_pb2.ROLE_MENTOR,
    nudges.MENTEE: common_pb2.ROLE_MENTEE,
}


class ProgramNudgePolicy(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    no_session_seconds = IntField(required=True)
    unanswered_proposal_seconds = IntField(required=True)
    check_in_grace_seconds = IntField(required=True)
    ending_soon_seconds = IntField(required=True)
    disabled = BooleanField(default=False)
    # The coordinator left no_session_seconds to the default: it follows the program's meeting
    # cadence (program-changed) when the program states one.
    no_session_default = BooleanField(default=False)
    updated_at = DateTimeField(required=True)
    meta = {
        "collection": "nudge_policies",
        "indexes": [{"fields": ["organization_id", "program_id"], "unique": True}],
    }


class SentNotification(Document):
    """A notification requested once; its unique key stops any resend."""

    organization_id = StringField(required=True)
    notification_id = StringField(required=True)
    program_id = StringField(required=True)
    recipient_id = StringField(required=True)
    reason = StringField(required=True)
    subject = StringField(default="")
    sent_at = DateTimeField(required=True)
    meta = {
        "collection": "sent_notifications",
        "indexes": [{"fields": ["organization_id", "notification_id"], "unique": True}],
    }


# --- policies ------------------------------------------------------------------------------


def _policy(doc: ProgramNudgePolicy | None, terms: programs.Terms) -> NudgePolicy:
    """The policy in force: the stored one (or the default), with the no-session threshold
    from the program's cadence where the coordinator did not set it."""
    if doc is None:
        return nudges.with_cadence(nudges.DEFAULT_POLICY, terms.meeting_cadence_days)
    stored = NudgePolicy(
        no_session_seconds=doc.no_session_seconds,
        unanswered_proposal_seconds=doc.unanswered_proposal_seconds,
        check_in_grace_seconds=doc.check_in_grace_seconds,
        ending_soon_seconds=doc.ending_soon_seconds,
        disabled=doc.disabled,
    )
    if doc.no_session_default:
        return nudges.with_cadence(stored, terms.meeting_cadence_days)
    return stored


def set_policy(
    organization_id: str, program_id: str, policy: NudgePolicy, no_session_default: bool = False
) -> NudgePolicy:
    """Store a program's policy; `no_session_default`: the coordinator left no_session_seconds
    unset, so it follows the program's cadence. Returns the policy in force."""
    ProgramNudgePolicy.objects(organization_id=organization_id, program_id=program_id).update_one(
        upsert=True,
        set__no_session_seconds=policy.no_session_seconds,
        set__unanswered_proposal_seconds=policy.unanswered_proposal_seconds,
        set__check_in_grace_seconds=policy.check_in_grace_seconds,
        set__ending_soon_seconds=policy.ending_soon_seconds,
        set__disabled=policy.disabled,
        set__no_session_default=no_session_default,
        set__updated_at=clock.now(),
    )
    return get_policy(organization_id, program_id)


def get_policy(organization_id: str, program_id: str) -> NudgePolicy:
    doc = ProgramNudgePolicy.objects(organization_id=organization_id, program_id=program_id).first()
    return _policy(doc, programs.terms_of(organization_id, program_id))


# --- what the rules read -------------------------------------------------------------------


def load_policies() -> dict[tuple[str, str], NudgePolicy]:
    """The policy in force in every program with a stored policy or stated terms; the others
    take the default."""
    terms = programs.all_terms()
    stored = {(p.organization_id, p.program_id): p for p in ProgramNudgePolicy.objects()}
    return {
        key: _policy(stored.get(key), terms.get(key, programs.NO_TERMS))
        for key in {*terms, *stored}
    }


def load_facts() -> tuple[
    list[RelationshipFacts], list[MatchFacts], dict[tuple[str, str], NudgePolicy]
]:
    """Ongoing relationships (with their last held session and check-in answers), open
    proposals, and the policy of every program that has one."""
    policies = load_policies()
    ongoing = list(Relationship.objects(status__in=domain.ONGOING))
    ids = [r.relationship_id for r in ongoing]
    last_held: dict[tuple[str, str], datetime] = {}
    answered: dict[tuple[str, str], set[tuple[str, str]]] = {}
    if ids:
        held = Session.objects(relationship_id__in=ids, status=domain.HELD).only(
            "organization_id", "relationship_id", "held_at"
        )
        for s in held:
            if s.held_at is None:
                continue
            key = (s.organization_id, s.relationship_id)
            at = domain.aware(s.held_at)
            if key not in last_held or at > last_held[key]:
                last_held[key] = at
        answers = Feedback.objects(
            relationship_id__in=ids, survey_point__in=list(domain.ONCE_SURVEY_POINTS)
        ).only("organization_id", "relationship_id", "author_id", "survey_point")
        for f in answers:
            answered.setdefault((f.organization_id, f.relationship_id), set()).add(
                (f.author_id, f.survey_point)
            )
    relationships = []
    for r in ongoing:
        key = (r.organization_id, r.relationship_id)
        started = domain.aware(r.started_at)
        end = (
            domain.aware(r.expected_end_at)
            if r.expected_end_at is not None
            else domain.default_expected_end(started)
        )
        relationships.append(
            RelationshipFacts(
                organization_id=r.organization_id,
                program_id=r.program_id,
                relationship_id=r.relationship_id,
                mentor_id=r.mentor_id,
                mentee_id=r.mentee_id,
                status=r.status,
                started_at=started,
                expected_end_at=end,
                last_held_at=last_held.get(key),
                resumed_at=domain.aware(r.resumed_at) if r.resumed_at is not None else None,
                answered=frozenset(answered.get(key, set())),
            )
        )
    matches = [
        MatchFacts(
            organization_id=m.organization_id,
            program_id=m.program_id,
            match_id=m.match_id,
            mentor_id=m.mentor_id,
            mentee_id=m.mentee_id,
            status=m.status,
            mentor_decision=m.mentor_decision,
            mentee_decision=m.mentee_decision,
            proposed_at=domain.aware(m.proposed_at),
        )
        for m in Match.objects(status=domain.PROPOSED)
    ]
    return relationships, matches, policies


# --- the record of what was sent -----------------------------------------------------------


def unsent(found: list[Nudge]) -> list[Nudge]:
    if not found:
        return []
    sent = {
        (s.organization_id, s.notification_id)
        for s in SentNotification.objects(notification_id__in=[n.nudge_id for n in found]).only(
            "organization_id", "notification_id"
        )
    }
    return [n for n in found if (n.organization_id, n.nudge_id) not in sent]


def record_sent(sent: Iterable[Nudge]) -> None:
    now = clock.now()
    for n in sent:
        try:
            SentNotification(
                organization_id=n.organization_id,
                notification_id=n.nudge_id,
                program_id=n.program_id,
                recipient_id=n.recipient_id,
                reason=n.reason,
                subject=n.subject,
                sent_at=now,
            ).save(force_insert=True)
        except NotUniqueError:
            pass  # recorded by an earlier round that crashed before finishing


# --- events --------------------------------------------------------------------------------


def notification_event(
    *,
    organization_id: str,
    program_id: str,
    notification_id: str,
    recipient_id: str,
    recipient_side: str,
    template: str,
    reason: str,
    data: dict[str, str],
    relationship_id: str = "",
    match_id: str = "",
    announcement_id: str = "",
) -> events_pb2.Event:
    return new_event(
        producer=PRODUCER,
        organization_id=organization_id,
        program_id=program_id,
        event_id=notification_id,
        payload=events_pb2.NotificationRequested(
            notification_id=notification_id,
            recipient_id=recipient_id,
            recipient_role=ROLES.get(recipient_side, common_pb2.ROLE_UNSPECIFIED),
            template=template,
            data=data,
            reason=reason,
            relationship_id=relationship_id,
            match_id=match_id,
            announcement_id=announcement_id,
        ),
    )


def nudge_event(n: Nudge) -> events_pb2.Event:
    return notification_event(
        organization_id=n.organization_id,
        program_id=n.program_id,
        notification_id=n.nudge_id,
        recipient_id=n.recipient_id,
        recipient_side=n.recipient_side,
        template=n.reason,
        reason=n.reason,
        data={**dict(n.data), "due_at": n.due_at.isoformat()},
        relationship_id=n.relationship_id,
        match_id=n.match_id,
    )


# --- the timer -----------------------------------------------------------------------------


def _due_unsent(now: datetime) -> list[Nudge]:
    relationships, matches, policies = load_facts()
    found = nudges.due(
        relationships=relationships,
        matches=matches,
        policies=policies,
        now=now,
        away=leaves.away(now),
    )
    return unsent(found)


class NudgeScheduler:
    """One round of nudges at a time (run every SCHEDULER_INTERVAL_SECONDS by a PeriodicTask);
    `now` is injectable."""

    def __init__(self, publisher: EventPublisher, now: Callable[[], datetime] = clock.now) -> None:
        self._publisher = publisher
        self._now = now

    async def nudge_once(self) -> list[Nudge]:
        """One round: publish what is due and not sent yet, then record it. Returns it."""
        fresh = await run_sync(_due_unsent, self._now())
        if fresh:
            await self._publisher.publish([nudge_event(n) for n in fresh])
            await run_sync(record_sent, fresh)
        return fresh
