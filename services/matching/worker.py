"""The matching worker: consumes registrations, profile updates, withdrawals, erasures,
answers, relationship endings and run requests; publishes proposals, expiries and run results.

Workers form one consumer group; since every topic is keyed by program, each worker owns
whole programs, and adding a worker splits the programs between them.

Every change an event makes commits with what it publishes (see publication.py), and the event
is recorded as handled after: a worker that dies in between gets the event again, which then
finds its change made and adds nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import Histogram

from services.common.api import common_pb2, events_pb2
from services.common.kafka import Delivered, Rejected
from services.common.storage import run_sync
from services.matching import planner, pool, privacy, releases, runs
from services.matching.proposed import Proposed
from services.matching.publication import Committed, Publication

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

PLAN_SECONDS = Histogram(
    "matching_plan_seconds", "Time to plan and store proposals for one program after new events."
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
    # What the changes committed to publish: match-expired, next choices' proposals.
    committed: Committed = field(default_factory=Committed)


def _apply(events: list[events_pb2.Event]) -> Applied:
    """Apply events to the pools (again, on a redelivery, changing nothing); run requests are
    left to run (see Applied)."""
    applied = Applied()
    touched, committed = applied.touched, applied.committed
    # Registrations wait here to be stored a program's at a time (the bulk of what arrives);
    # any other event stores them first, as it may be about one of them.
    registered: dict[tuple[str, str], list[pool.Registration]] = {}
    for event in events:
        env = event.envelope
        org, program = env.organization_id, env.program_id
        kind = event.WhichOneof("payload")
        if kind == "participant_registered":
            registered.setdefault((org, program), []).append(_person(event.participant_registered))
            touched.add((org, program))
            continue
        _register(registered)
        if kind == "participant_updated":
            # The payload describes the person whole; an update replaces what was stored.
            pool.update_member(org, program, _person(event.participant_updated))
            touched.add((org, program))
        elif kind == "participant_withdrawn":
            # Their proposals released, a mentee whose requested mentor left asked their next
            # choice, and match-expired staged for those nobody will answer (engagement shows
            # them expired, also one that reaches it after the withdrawal).
            gone = event.participant_withdrawn
            withdrawal = releases.withdraw(org, program, gone.participant_id, ROLES[gone.role])
            committed.add(withdrawal.committed)
            touched.add((org, program))
        elif kind == "participant_erased":
            erased = event.participant_erased
            committed.add(
                privacy.erase_member(
                    org, program, erased.participant_id, ROLES[erased.role]
                ).committed
            )
            touched.add((org, program))
        elif kind == "match_responded":
            response = event.match_responded
            if response.status == common_pb2.MATCH_STATUS_DECLINED:
                committed.add(releases.decline(org, response.match_id))
                touched.add((org, program))
            elif response.status == common_pb2.MATCH_STATUS_ACCEPTED:
                pool.accept(org, response.match_id)
        elif kind == "relationship_ended":
            ended = event.relationship_ended
            reason = "not a good fit" if ended.not_a_good_fit else ""
            if ended.completed:
                pool.complete(org, ended.match_id)
            else:
                releases.end(org, ended.match_id, exclude=reason)
            touched.add((org, program))
        elif kind == "matching_run_requested":
            applied.runs.append(event)
    _register(registered)
    return applied


def _person(
    person: events_pb2.ParticipantRegistered | events_pb2.ParticipantUpdated,
) -> pool.Registration:
    return pool.Registration(
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


def _register(registered: dict[tuple[str, str], list[pool.Registration]]) -> None:
    """Store the registrations waiting, a transaction per program, and forget them."""
    for (org, program), registrations in registered.items():
        pool.add_members(org, program, registrations)
    registered.clear()


class MatchingWorker:
    def __init__(self, publication: Publication) -> None:
        self._publication = publication

    async def start(self) -> None:
        # Proposals stored just before a crash were never published: publish them now (the
        # other events a crash left are the periodic relay's; see publication.py).
        await self._publication.relay_all()

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
        await self._publication.deliver(applied.committed)
        for organization_id, program_id in sorted(applied.touched):
            started = time.perf_counter()
            plan = await run_sync(planner.plan_continuously, organization_id, program_id)
            stored = await self._store(organization_id, program_id, plan)
            await run_sync(planner.settle, plan, stored)
            PLAN_SECONDS.observe(time.perf_counter() - started)
        await self._run(applied.runs)
        return rejected

    async def _store(
        self, organization_id: str, program_id: str, plan: planner.Plan, run_id: str = ""
    ) -> list[Proposed]:
        """Reserve and store the planned pairs a chunk per transaction, publishing each chunk's
        proposals right after its commit (while the next chunk is stored: a bulk run stores
        tens of thousands, and each side waits on its own server); returns the proposals
        stored."""
        stored: list[Proposed] = []
        publishing: asyncio.Future[None] | None = None
        try:
            for chunk in plan.chunks():
                proposals = await run_sync(
                    pool.propose, organization_id, program_id, plan.keys, chunk, run_id
                )
                if publishing is not None:
                    await publishing
                publishing = asyncio.ensure_future(self._publication.deliver_proposals(proposals))
                stored += proposals
            if publishing is not None:
                await publishing
        finally:
            # A chunk that failed to store fails the batch; what was stored and not yet
            # published is the relay's (publication.py), as after a crash.
            if publishing is not None and not publishing.done():
                publishing.cancel()
            elif publishing is not None and not publishing.cancelled():
                publishing.exception()  # seen: the batch fails with the store's error
        if stored:
            log.info("proposed %d matches in %s/%s", len(stored), organization_id, program_id)
        return stored

    async def _run(self, requested: Sequence[events_pb2.Event]) -> None:
        for event in requested:
            env, request = event.envelope, event.matching_run_requested
            org, program = env.organization_id, env.program_id
            try:
                plan = await run_sync(planner.plan_run, org, program, request)
            except Exception as exc:  # a run that cannot be planned is reported, not retried
                log.exception("matching run %s failed", request.run_id)
                result = events_pb2.MatchingRunCompleted(
                    run_id=request.run_id, cohort_id=request.cohort_id, error=str(exc)
                )
            else:
                # A failure to store or publish (the database or the broker away) fails the
                # batch, which comes again with the request: the run resumes from what it
                # stored (planner.plan_run).
                storing = time.perf_counter()
                stored = await self._store(org, program, plan, request.run_id)
                plan.phases["store"] = time.perf_counter() - storing
                result = planner.report(plan, request, stored)
                log.info(
                    "run %s: %s",
                    request.run_id,
                    ", ".join(f"{name} {seconds:.2f}s" for name, seconds in plan.phases.items()),
                )
            RUN_SECONDS.observe(result.seconds)
            # The result is recorded and staged; the request counts as handled once the batch
            # is: a worker dying in between runs it again, which reports what it recorded
            # (runs.finish).
            completed = await run_sync(runs.finish, org, program, result)
            await self._publication.deliver(Committed(events=[completed]))
            log.info(
                "run %s matched %d of %d mentees in %.2fs",
                request.run_id,
                result.matched,
                result.mentees_considered,
                result.seconds,
            )
