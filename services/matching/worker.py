"""The matching worker: consumes registrations, profile updates, withdrawals, erasures,
answers, relationship endings and run requests; publishes proposals, expiries and run results.

Workers form one consumer group; since every topic is keyed by program, each worker owns
whole programs, and adding a worker splits the programs between them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter, Histogram

from services.common import idempotency
from services.common.api import common_pb2, events_pb2
from services.common.events import new_event, stable_event_id
from services.common.kafka import Delivered, EventPublisher, Rejected
from services.common.storage import run_sync
from services.matching import planner, pool, privacy, requests
from services.matching.messages import expired_event, proposed_event

log = logging.getLogger(__name__)

GROUP = "matching"
TOPICS = (
    "participant-registered",
    "match-responded",
    "relationship-ended",
    "matching-run-requested",
    "participant-updated",
    "participant-withdrawn",
    "participant-erased",
)

PROPOSALS = Counter("matching_proposals_total", "Match proposals published.", ["origin"])
PLAN_SECONDS = Histogram(
    "matching_plan_seconds", "Time to plan proposals for one program after new events."
)
RUN_SECONDS = Histogram(
    "matching_run_seconds",
    "Duration of bulk matching runs.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)

ROLES = {common_pb2.ROLE_MENTOR: "mentor", common_pb2.ROLE_MENTEE: "mentee"}


def _check(event: events_pb2.Event) -> str | None:
    """Why the event cannot be applied, or None."""
    kind = event.WhichOneof("payload")
    if kind in ("participant_registered", "participant_updated"):
        person = getattr(event, kind)
        if not person.participant_id:
            return f"{kind}.participant_id is missing"
        if person.role not in ROLES:
            return f"{kind}.role must be mentor or mentee"
        if person.role == common_pb2.ROLE_MENTOR and person.capacity == 0:
            return f"{kind}.capacity must be at least 1 for a mentor"
    elif kind == "participant_withdrawn":
        if not event.participant_withdrawn.participant_id:
            return "participant_withdrawn.participant_id is missing"
        if event.participant_withdrawn.role not in ROLES:
            return "participant_withdrawn.role must be mentor or mentee"
    elif kind == "participant_erased":
        if not event.participant_erased.participant_id:
            return "participant_erased.participant_id is missing"
        if event.participant_erased.role not in ROLES:
            return "participant_erased.role must be mentor or mentee"
    elif kind == "match_responded" and not event.match_responded.match_id:
        return "match_responded.match_id is missing"
    elif kind == "relationship_ended" and not event.relationship_ended.match_id:
        return "relationship_ended.match_id is missing"
    elif kind == "matching_run_requested":
        request = event.matching_run_requested
        if not request.run_id:
            return "matching_run_requested.run_id is missing"
        if why := planner.max_gap_error(request.max_gap):
            return f"matching_run_requested.max_gap {why}"
    return None


@dataclass
class Applied:
    """What a batch left to do once applied to the pools."""

    # Programs whose pool changed: plan and publish their proposals.
    touched: set[tuple[str, str]] = field(default_factory=set)
    # Run requests to execute (runs are long: they go after the batch is recorded).
    runs: list[events_pb2.Event] = field(default_factory=list)
    # Withdrawals, recorded as handled only once `expiries` are published.
    withdrawals: list[events_pb2.Event] = field(default_factory=list)
    # match-expired for the proposals withdrawals released unanswered.
    expiries: list[events_pb2.Event] = field(default_factory=list)


def _apply(events: list[events_pb2.Event]) -> Applied:
    """Apply events to the pools; record them as handled, except run requests and
    withdrawals (see Applied)."""
    fresh = idempotency.unprocessed(events, GROUP)
    applied = Applied()
    touched, runs = applied.touched, applied.runs
    for event in fresh:
        env = event.envelope
        org, program = env.organization_id, env.program_id
        kind = event.WhichOneof("payload")
        if kind in ("participant_registered", "participant_updated"):
            # Both payloads describe the person whole; an update replaces what was stored.
            store = pool.add_member if kind == "participant_registered" else pool.update_member
            person = getattr(event, kind)
            store(
                org,
                program,
                person.participant_id,
                ROLES[person.role],
                person.display_name,
                list(person.skills),
                person.capacity,
                person.profile.SerializeToString(),
                person.profile.hr_person_id,
                person.profile.manager_id,
                person.profile.cohort_id,
            )
            touched.add((org, program))
        elif kind == "participant_withdrawn":
            gone = event.participant_withdrawn
            for freed in pool.withdraw_member(org, program, gone.participant_id, ROLES[gone.role]):
                # A mentee whose requested mentor left moves on to their next choice.
                requests.ask_next_choice(freed)
            # Nobody will answer these: engagement shows them expired (also one that reaches
            # it after the withdrawal). The same events again on a redelivery.
            applied.expiries += [
                expired_event(p) for p in pool.unanswered_withdrawn(org, gone.participant_id)
            ]
            applied.withdrawals.append(event)
            touched.add((org, program))
        elif kind == "participant_erased":
            erased = event.participant_erased
            for freed in privacy.erase_member(
                org, program, erased.participant_id, ROLES[erased.role]
            ):
                requests.ask_next_choice(freed)
            touched.add((org, program))
        elif kind == "match_responded":
            response = event.match_responded
            if response.status == common_pb2.MATCH_STATUS_DECLINED:
                released = pool.release(org, response.match_id, "declined", exclude="declined")
                requests.ask_next_choice(released)
                touched.add((org, program))
            elif response.status == common_pb2.MATCH_STATUS_ACCEPTED:
                pool.accept(org, response.match_id)
        elif kind == "relationship_ended":
            ended = event.relationship_ended
            reason = "not a good fit" if ended.not_a_good_fit else ""
            if ended.completed:
                pool.complete(org, ended.match_id)
            else:
                # The acceptance may not have reached us yet: the topics are not ordered together.
                pool.release(org, ended.match_id, "ended", exclude=reason, only_from=pool.LIVE)
            touched.add((org, program))
        elif kind == "matching_run_requested":
            runs.append(event)
    # A run request counts as handled once its run completed (MatchingWorker._run).
    later = runs + applied.withdrawals
    idempotency.mark_processed([e for e in fresh if e not in later], GROUP)
    return applied


class MatchingWorker:
    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def start(self) -> None:
        # Proposals stored just before a crash were never published: publish them now.
        for organization_id, program_id in await run_sync(pool.programs_with_unpublished):
            await self.publish_pending(organization_id, program_id)

    async def stop(self) -> None:
        pass

    async def handle(self, batch: list[Delivered]) -> list[Rejected]:
        rejected: list[Rejected] = []
        valid: list[events_pb2.Event] = []
        for item in batch:
            reason = _check(item.event)
            if reason:
                rejected.append(Rejected(item, reason))
            else:
                valid.append(item.event)
        applied = await run_sync(_apply, valid)
        if applied.expiries:
            await self._publisher.publish(applied.expiries)
        if applied.withdrawals:
            await run_sync(idempotency.mark_processed, applied.withdrawals, GROUP)
        for organization_id, program_id in sorted(applied.touched):
            started = time.perf_counter()
            await run_sync(planner.propose_continuously, organization_id, program_id)
            PLAN_SECONDS.observe(time.perf_counter() - started)
            await self.publish_pending(organization_id, program_id)
        await self._run(applied.runs)
        return rejected

    async def _run(self, runs: Sequence[events_pb2.Event]) -> None:
        for event in runs:
            env, request = event.envelope, event.matching_run_requested
            try:
                result = await run_sync(planner.run, env.organization_id, env.program_id, request)
            except Exception as exc:  # a failed run is reported, not retried forever
                log.exception("matching run %s failed", request.run_id)
                result = events_pb2.MatchingRunCompleted(
                    run_id=request.run_id, cohort_id=request.cohort_id, error=str(exc)
                )
            RUN_SECONDS.observe(result.seconds)
            await self.publish_pending(env.organization_id, env.program_id)
            await run_sync(idempotency.mark_processed, [event], GROUP)
            await self._publisher.publish(
                [
                    new_event(
                        producer="matching",
                        organization_id=env.organization_id,
                        program_id=env.program_id,
                        event_id=stable_event_id(
                            "matching-run-completed", env.organization_id, request.run_id
                        ),
                        payload=result,
                    )
                ]
            )
            log.info(
                "run %s matched %d of %d mentees in %.2fs",
                request.run_id,
                result.matched,
                result.mentees_considered,
                result.seconds,
            )

    async def publish_pending(self, organization_id: str, program_id: str) -> None:
        pending = await run_sync(pool.unpublished, organization_id, program_id)
        if pending:
            await self._publisher.publish([proposed_event(p) for p in pending])
            await run_sync(pool.mark_published, [p.pk for p in pending])
            for p in pending:
                PROPOSALS.labels(p.origin).inc()
            log.info("proposed %d matches in %s/%s", len(pending), organization_id, program_id)
