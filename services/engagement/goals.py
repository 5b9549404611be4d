"""Goals and milestones of a relationship: storage operations. Blocking: call through
storage.run_sync. The rules are in domain.py."""

from __future__ import annotations

import uuid
from datetime import datetime

from mongoengine.errors import NotUniqueError

from services.common import clock, idempotency
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.engagement import domain
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
) -> tuple[Goal, bool]:
    """Create a goal; returns it and whether this call created it. With a request id, a retry
    returns the first call's goal as it is now."""
    relationship, _ = relationship_for(organization_id, relationship_id, participant_id)
    goal_id = idempotency.result_id(
        organization_id, request.request_id, "CreateGoal", request.fingerprint
    )
    existing: Goal | None = Goal.objects(organization_id=organization_id, goal_id=goal_id).first()
    if existing is not None:
        return existing, False
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
    try:
        goal.save(force_insert=True)
    except NotUniqueError:  # a concurrent retry stored it first
        return Goal.objects.get(organization_id=organization_id, goal_id=goal_id), False
    return goal, True


def goal_for(organization_id: str, goal_id: str, participant_id: str) -> Goal:
    goal: Goal | None = Goal.objects(organization_id=organization_id, goal_id=goal_id).first()
    if goal is None:
        raise NotFound(f"goal_id: no goal {goal_id!r}")
    relationship_for(organization_id, goal.relationship_id, participant_id)
    return goal


def add_milestone(
    organization_id: str, goal_id: str, participant_id: str, title: str, due_at: datetime | None
) -> Goal:
    goal = goal_for(organization_id, goal_id, participant_id)
    clean = domain.validate_milestone(title=title, existing=len(goal.milestones))
    milestone = Milestone(milestone_id=str(uuid.uuid4()), title=clean, due_at=due_at)
    Goal.objects(pk=goal.pk).update_one(
        push__milestones=milestone, inc__version=1, set__updated_at=clock.now()
    )
    goal.reload()
    return goal


def update_progress(
    organization_id: str,
    goal_id: str,
    participant_id: str,
    progress: int | None,
    status: str | None,
    completed_milestone_ids: list[str],
) -> tuple[Goal, bool]:
    """Apply an update; conditional on the version it was computed from, so two updates at once
    cannot lose one another. Returns the goal and whether it changed."""
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
            return goal, False
        updates: dict[str, object] = {
            "set__status": change.status,
            "set__progress": change.progress,
            "set__updated_at": clock.now(),
            "inc__version": 1,
        }
        for index in newly_done:
            updates[f"set__milestones__{index}__done"] = True
        if Goal.objects(pk=goal.pk, version=goal.version).update_one(**updates):
            goal.reload()
            return goal, True
    raise FailedPrecondition("goal_id: the goal is changing too fast; try again")


def list_goals(
    organization_id: str, relationship_id: str, participant_id: str, size: int, after: str | None
) -> list[Goal]:
    relationship_for(organization_id, relationship_id, participant_id)
    query = Goal.objects(organization_id=organization_id, relationship_id=relationship_id)
    if after:
        query = query.filter(goal_id__gt=after)
    return list(query.order_by("goal_id").limit(size))
