"""Goals and milestones of a relationship: storage operations. Blocking: call through
storage.run_sync. The rules are in domain.py."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from services.common import clock, idempotency, outbox
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.pb.mentoring.v1.events_pb2 import Event
from services.common.storage import Transaction
from services.engagement import convert, domain
from services.engagement.documents import Goal, Milestone
from services.engagement.store import NO_REQUEST_ID, ClientRequest, relationship_for

CREATED, MILESTONE_ADDED, PROGRESS_UPDATED = "created", "milestone_added", "progress_updated"


def create_goal(
    organization_id: str,
    relationship_id: str,
    participant_id: str,
    title: str,
    description: str,
    target_date: datetime,
    request: ClientRequest = NO_REQUEST_ID,
) -> tuple[Goal, list[Event]]:
    """Create a goal with goal-updated (outbox); returns it and the events to deliver. With a
    request id, a retry returns the first call's goal as it is now, and its creation's event
    again while nobody changed it since (a later version was delivered by its change)."""
    relationship, _ = relationship_for(organization_id, relationship_id, participant_id)
    goal_id = idempotency.result_id(
        organization_id, request.request_id, "CreateGoal", request.fingerprint
    )
    existing: Goal | None = Goal.objects(organization_id=organization_id, goal_id=goal_id).first()
    if existing is not None:
        return existing, _created(existing)
    if relationship.status not in domain.ONGOING:
        raise FailedPrecondition(f"relationship_id: the relationship is {relationship.status}")
    now = clock.now()
    goal = Goal(
        organization_id=organization_id,
        program_id=relationship.program_id,
        goal_id=goal_id,
        relationship_id=relationship_id,
        mentee_id=relationship.mentee_id,
        title=title,
        description=description,
        target_date=target_date,
        progress=0,
        status=domain.GOAL_OPEN,
        created_by=participant_id,
        created_at=now,
        updated_at=now,
        version=1,
    )
    if outbox.insert(goal, _created(goal)):
        return goal, _created(goal)
    stored = Goal.objects.get(organization_id=organization_id, goal_id=goal_id)
    return stored, _created(stored)  # a concurrent retry stored it first


def _created(goal: Goal) -> list[Event]:
    return [convert.goal_updated(goal, CREATED)] if goal.version == 1 else []


def goal_for(organization_id: str, goal_id: str, participant_id: str) -> Goal:
    goal: Goal | None = Goal.objects(organization_id=organization_id, goal_id=goal_id).first()
    if goal is None:
        raise NotFound(f"goal_id: no goal {goal_id!r}")
    relationship_for(organization_id, goal.relationship_id, participant_id)
    return goal


def add_milestone(
    organization_id: str, goal_id: str, participant_id: str, title: str, due_at: datetime | None
) -> tuple[Goal, list[Event]]:
    """Add a milestone, with goal-updated (outbox); returns the goal and the event."""
    goal = goal_for(organization_id, goal_id, participant_id)
    clean = domain.validate_milestone(title=title, existing=len(goal.milestones))
    milestone = Milestone(milestone_id=str(uuid.uuid4()), title=clean, due_at=due_at)

    def add(tx: Transaction) -> tuple[Goal, list[Event]]:
        tx.update(
            Goal,
            {"pk": goal.pk},
            push__milestones=milestone,
            inc__version=1,
            set__updated_at=clock.now(),
        )
        changed = tx.find(Goal, pk=goal.pk)
        return changed, [convert.goal_updated(changed, MILESTONE_ADDED)]

    return outbox.commit(add)


def update_progress(
    organization_id: str,
    goal_id: str,
    participant_id: str,
    progress: int | None,
    status: str | None,
    completed_milestone_ids: list[str],
) -> tuple[Goal, list[Event]]:
    """Apply an update, with goal-updated (outbox); conditional on the version it was computed
    from, so two updates at once cannot lose one another. Returns the goal and its event (also
    when unchanged: the same version gives the same event id, for a retry)."""
    if progress is None and status is None and not completed_milestone_ids:
        raise InvalidArgument("progress", "set progress, status or completed_milestone_ids")
    for _ in range(5):
        goal = goal_for(organization_id, goal_id, participant_id)
        change = domain.update_goal(
            status=goal.status, progress=goal.progress, new_progress=progress, new_status=status
        )
        known = {m.milestone_id: m for m in goal.milestones}
        for milestone_id in completed_milestone_ids:
            if milestone_id not in known:
                raise InvalidArgument(
                    "completed_milestone_ids", f"no milestone {milestone_id!r} on this goal"
                )
        newly_done = {
            i
            for i, m in enumerate(goal.milestones)
            if m.milestone_id in completed_milestone_ids and not m.done
        }
        if not change.changed and not newly_done:
            return goal, [convert.goal_updated(goal, PROGRESS_UPDATED)]
        updates: dict[str, Any] = {
            "set__status": change.status,
            "set__progress": change.progress,
            "set__updated_at": clock.now(),
            "inc__version": 1,
        }
        for index in newly_done:
            updates[f"set__milestones__{index}__done"] = True
        changed, events = outbox.commit(functools.partial(_update, goal=goal, updates=updates))
        if changed is not None:
            return changed, events
    raise FailedPrecondition("goal_id: the goal is changing too fast; try again")


def _update(
    tx: Transaction, *, goal: Goal, updates: dict[str, Any]
) -> tuple[Goal | None, list[Event]]:
    if not tx.update(Goal, {"pk": goal.pk, "version": goal.version}, **updates):
        return None, []
    changed = tx.find(Goal, pk=goal.pk)
    return changed, [convert.goal_updated(changed, PROGRESS_UPDATED)]


def list_goals(
    organization_id: str, relationship_id: str, participant_id: str, size: int, after: str | None
) -> list[Goal]:
    relationship_for(organization_id, relationship_id, participant_id)
    query = Goal.objects(organization_id=organization_id, relationship_id=relationship_id)
    if after:
        query = query.filter(goal_id__gt=after)
    return list(query.order_by("goal_id").limit(size))
