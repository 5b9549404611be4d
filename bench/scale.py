"""One program of 100,000 people, end to end, on the real stack `make up` starts.

    python bench/scale.py [--people 100000] [--activities 200000] [--clients 16]

Starts Apache Kafka, the MongoDB-wire server and the four services with `make up`'s launcher
(mentoring/stack.py), then drives one organisation's program through the public interfaces:
1. import: an HRIS export (80 % mentees, 20 % mentors with capacity 1-4, skills and
   departments drawn from realistic pools) through ImportParticipants, the CLI's path;
2. bulk run: StartMatchingRun, until engagement has every proposal the run made;
3. accept: mentee, then mentor, accept every proposal (RespondToMatch);
4. activity: sessions, messages and check-ins (LogSession, RecordMessage, SubmitFeedback)
   across the relationships, while a probe measures how long each takes to show in the KPIs;
5. reconciliation: the final KPIs against direct counts in the services' own databases;
6. peak memory (VmHWM) of every process.
Each stage prints its throughput and per-call latency (p50/p99). Reference rows measured in the
same run: raw Kafka produce and consume, and raw inserts into the same database server.
Targets (issue 13, 2 cores): import >= 2,000 rows/s; bulk run <= 60 s to the last proposal
engagement knows; >= 5,000 events/s into KPIs with p99 freshness <= 2 s; no process above 4 GB;
reconciliation equal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client.parser import text_string_to_metric_families
from pymongo import MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack_run import cpu_seconds, peak_memory
from mentoring.stack import Ports, Stack
from services.common.api import (
    analytics_pb2,
    analytics_pb2_grpc,
    common_pb2,
    engagement_pb2,
    engagement_pb2_grpc,
    enrollment_pb2,
    enrollment_pb2_grpc,
    matching_pb2,
    matching_pb2_grpc,
)
from services.common.kafka import ensure_topics

ORG = "scale-org"
ROWS_PER_CALL = 1_000
IMPORT_CALLS_IN_FLIGHT = 2
SKILLS = [
    "python", "java", "go", "sql", "data-science", "machine-learning", "cloud", "security",
    "devops", "frontend", "mobile", "ux-design", "product-management", "project-management",
    "agile", "leadership", "people-management", "coaching", "public-speaking", "negotiation",
    "sales", "marketing", "finance", "accounting", "legal", "compliance", "hr", "recruiting",
    "operations", "supply-chain", "customer-success", "strategy", "communication",
    "writing", "analytics", "excel", "career-growth", "work-life-balance", "diversity",
    "entrepreneurship",
]  # fmt: skip
DEPARTMENTS = [
    "Engineering", "Product", "Design", "Sales", "Marketing", "Finance", "Legal", "HR",
    "Operations", "Customer Success", "IT", "Research",
]  # fmt: skip
LOCATIONS = [("Oslo", "Europe/Oslo"), ("Austin", "America/Chicago"), ("Pune", "Asia/Kolkata")]
TARGET_IMPORT_ROWS_S = 2_000
TARGET_RUN_S = 60.0
TARGET_EVENTS_S = 5_000
TARGET_FRESHNESS_P99_S = 2.0
TARGET_PEAK_BYTES = 4 * 1024**3


@dataclass
class Stage:
    name: str
    count: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    unit: str = "calls"
    # CPU seconds each process spent during the stage, by process name.
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --- the people ----------------------------------------------------------------------------


def hris_rows(people: int, rng: random.Random) -> list[enrollment_pb2.ImportRow]:
    rows = []
    # Popular skills are asked for more than offered: mentees draw from the head of the list.
    weights = [1.0 / (1 + n) ** 0.7 for n in range(len(SKILLS))]
    for n in range(people):
        mentor = n % 5 == 0
        skills = sorted(set(rng.choices(SKILLS, weights=weights, k=rng.randint(2, 5))))
        city, zone = rng.choice(LOCATIONS)
        rows.append(
            enrollment_pb2.ImportRow(
                row=n + 2,
                role=common_pb2.ROLE_MENTOR if mentor else common_pb2.ROLE_MENTEE,
                display_name=f"Person {n}",
                email=f"person{n}@scale.example",
                skills=skills,
                capacity=rng.randint(1, 4) if mentor else 0,
                profile=common_pb2.Profile(
                    hr_person_id=f"E{n:07d}",
                    department=rng.choice(DEPARTMENTS),
                    location=city,
                    timezone=zone,
                    languages=["en"],
                    job_level=rng.randint(3, 9) if mentor else rng.randint(1, 6),
                ),
                campaign="hris",
            )
        )
    return rows


# --- helpers -----------------------------------------------------------------------------


async def timed(stage: Stage, call: Awaitable[Any]) -> Any:
    start = time.perf_counter()
    result = await call
    stage.latencies.append(time.perf_counter() - start)
    stage.count += 1
    return result


async def pool(concurrency: int, jobs: Sequence[Callable[[], Awaitable[Any]]]) -> None:
    """Run the jobs with at most `concurrency` in flight, as that many clients would."""
    queue = iter(jobs)

    async def client() -> None:
        for job in queue:
            await job()

    await asyncio.gather(*(client() for _ in range(concurrency)))


def metric(port: int, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def until(what: str, ready: Callable[[], Awaitable[Any]], limit: float) -> Any:
    deadline = time.monotonic() + limit
    while not (found := await ready()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)
    return found


# --- reference rows ------------------------------------------------------------------------


async def kafka_reference(bootstrap: str, count: int = 200_000) -> tuple[float, float]:
    topic = f"scale-reference-{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, 6, [topic])
    value = b"x" * 300  # an event's size
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    start = time.perf_counter()
    batch = []
    for n in range(count):
        batch.append(await producer.send(topic, value, key=str(n % 97).encode()))
        if len(batch) >= 10_000:
            await asyncio.gather(*batch)
            batch = []
    await asyncio.gather(*batch)
    produced = count / (time.perf_counter() - start)
    await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=topic, auto_offset_reset="earliest"
    )
    await consumer.start()
    got, start = 0, time.perf_counter()
    while got < count:
        for records in (await consumer.getmany(timeout_ms=200, max_records=5_000)).values():
            got += len(records)
    consumed = count / (time.perf_counter() - start)
    await consumer.stop()
    return produced, consumed


def database_reference(uri: str, count: int = 50_000) -> float:
    with MongoClient[dict[str, Any]](uri) as client:
        collection = client["scale_reference"]["rows"]
        documents = [
            {"_id": n, "organization_id": ORG, "n": n, "pad": "x" * 300} for n in range(count)
        ]
        start = time.perf_counter()
        for chunk in range(0, count, 1_000):
            collection.insert_many(documents[chunk : chunk + 1_000], ordered=False)
        rate = count / (time.perf_counter() - start)
        client.drop_database("scale_reference")
    return rate


# --- the run -------------------------------------------------------------------------------


@dataclass
class Run:
    stack: Stack
    program: str
    people: int
    stages: dict[str, Stage] = field(default_factory=dict)
    notes: dict[str, float] = field(default_factory=dict)
    # Peak memory of processes the run restarted, before it did.
    peaks: dict[str, int] = field(default_factory=dict)

    def channel(self, service: str) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.stack.ports.address(service))

    def _cpu(self) -> dict[tuple[str, int], float]:
        return {(m.name, m.process.pid): cpu_seconds(m.process.pid) for m in self.stack.processes}

    @contextlib.contextmanager
    def charged(self, stage: Stage) -> Iterator[None]:
        """Add the CPU every process spends in the block to the stage's (a process started in
        it counts from its start)."""
        before = self._cpu()
        yield
        for key, seconds in self._cpu().items():
            stage.cpu[key[0]] = stage.cpu.get(key[0], 0.0) + seconds - before.get(key, 0.0)


async def import_people(run: Run, rows: list[enrollment_pb2.ImportRow]) -> None:
    stage = run.stages.setdefault("import", Stage("import (ImportParticipants)", unit="rows"))
    async with run.channel("enrollment") as channel:
        stub = enrollment_pb2_grpc.EnrollmentServiceStub(channel)
        failed = 0

        def call(chunk: list[enrollment_pb2.ImportRow]) -> Callable[[], Awaitable[None]]:
            async def send() -> None:
                nonlocal failed
                request = enrollment_pb2.ImportParticipantsRequest(
                    organization_id=ORG, program_id=run.program, rows=chunk
                )
                start = time.perf_counter()
                reply = await stub.ImportParticipants(request, timeout=300)
                stage.latencies.append(time.perf_counter() - start)
                failed += sum(
                    1 for r in reply.results if r.outcome == enrollment_pb2.IMPORT_OUTCOME_FAILED
                )

            return send

        chunks = [rows[i : i + ROWS_PER_CALL] for i in range(0, len(rows), ROWS_PER_CALL)]
        start = time.perf_counter()
        with run.charged(stage):
            await pool(IMPORT_CALLS_IN_FLIGHT, [call(chunk) for chunk in chunks])
        stage.seconds = time.perf_counter() - start
        stage.count = len(rows)
        if failed:
            raise RuntimeError(f"{failed} rows failed to import")

    # Every service knows them before matching starts: matching's pool, engagement's directory.
    metrics = run.stack.ports.metrics
    start = time.perf_counter()
    for service in ("matching", "engagement"):

        async def consumed(port: int = metrics[service]) -> bool:
            return (
                metric(port, "mentoring_events_consumed_total", topic="participant-registered")
                >= run.people
            )

        await until(f"{service} to consume every registration", consumed, limit=1800)
    run.notes["consumers caught up after the import (s)"] = time.perf_counter() - start


def now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


async def _async(value: Any) -> Any:
    return value


async def bulk_mode(run: Run) -> None:
    """Before the import: a program matched in bulk, not as each mentee arrives."""
    async with run.channel("matching") as matching:
        stub = matching_pb2_grpc.MatchingServiceStub(matching)
        await stub.SetMatchingConfig(
            matching_pb2.SetMatchingConfigRequest(
                config=matching_pb2.MatchingConfig(
                    organization_id=ORG,
                    program_id=run.program,
                    mode=matching_pb2.MATCHING_MODE_BULK,
                    criteria=[
                        matching_pb2.Criterion(kind=matching_pb2.CRITERION_KIND_SKILLS, weight=5),
                        matching_pb2.Criterion(
                            kind=matching_pb2.CRITERION_KIND_DEPARTMENT, weight=1
                        ),
                    ],
                )
            )
        )


async def bulk_run(run: Run) -> list[engagement_pb2.Match]:
    stage = run.stages.setdefault("run", Stage("bulk run: request to last proposal in engagement"))
    async with run.channel("matching") as matching, run.channel("engagement") as engagement:
        stub = matching_pb2_grpc.MatchingServiceStub(matching)
        engagement_metrics = run.stack.ports.metrics["engagement"]
        before = metric(
            engagement_metrics, "mentoring_events_consumed_total", topic="match-proposed"
        )
        with run.charged(stage):
            start = time.perf_counter()
            started = await stub.StartMatchingRun(
                matching_pb2.StartMatchingRunRequest(organization_id=ORG, program_id=run.program)
            )
            request = matching_pb2.GetMatchingRunRequest(organization_id=ORG, run_id=started.run_id)

            async def completed() -> Any:
                got = await stub.GetMatchingRun(request)
                return got if got.status == matching_pb2.RUN_STATUS_COMPLETED else None

            done = await until("the run to complete", completed, limit=1800)
            run.notes["run completed (s)"] = time.perf_counter() - start
            matched = done.result.matched
            await until(
                "engagement to hold every proposal",
                lambda: _async(
                    metric(
                        engagement_metrics,
                        "mentoring_events_consumed_total",
                        topic="match-proposed",
                    )
                    - before
                    >= matched
                ),
                limit=1800,
            )
            stage.seconds = time.perf_counter() - start
        stage.count = matched
        stage.latencies = [stage.seconds]
        run.notes["mentees matched"] = matched

        matches: list[engagement_pb2.Match] = []
        listing = engagement_pb2_grpc.EngagementServiceStub(engagement)
        token = ""
        while True:
            page = await listing.ListMatches(
                engagement_pb2.ListMatchesRequest(
                    organization_id=ORG, program_id=run.program, page_size=500, page_token=token
                )
            )
            matches.extend(page.matches)
            token = page.next_page_token
            if not token:
                break
        return matches


async def accept_all(run: Run, matches: list[engagement_pb2.Match], clients: int) -> list[str]:
    stage = run.stages.setdefault("accept", Stage("accept (RespondToMatch, both sides)"))
    relationships: list[str] = []
    async with run.channel("engagement") as channel:
        stub = engagement_pb2_grpc.EngagementServiceStub(channel)

        def both(match: engagement_pb2.Match) -> Callable[[], Awaitable[None]]:
            async def answer() -> None:
                for who in (match.mentee_id, match.mentor_id):
                    reply = await timed(
                        stage,
                        stub.RespondToMatch(
                            engagement_pb2.RespondToMatchRequest(
                                organization_id=ORG,
                                match_id=match.match_id,
                                participant_id=who,
                                decision=common_pb2.MATCH_DECISION_ACCEPT,
                            ),
                            timeout=120,
                        ),
                    )
                if reply.relationship_id:
                    relationships.append(reply.relationship_id)

            return answer

        start = time.perf_counter()
        with run.charged(stage):
            await pool(clients, [both(m) for m in matches])
        stage.seconds = time.perf_counter() - start
    return relationships


async def kpis(stub: analytics_pb2_grpc.AnalyticsServiceStub, program: str) -> Any:
    return await stub.GetProgramKpis(
        analytics_pb2.GetProgramKpisRequest(organization_id=ORG, program_id=program)
    )


async def activity(
    run: Run, relationships: list[str], count: int, clients: int, rng: random.Random
) -> None:
    stage = run.stages.setdefault("activity", Stage("sessions, messages, check-ins"))
    freshness = run.stages.setdefault("freshness", Stage("KPI freshness (probe)"))
    folded = run.stages.setdefault(
        "fold", Stage("backlog folded into KPIs after a restart", unit="events")
    )
    participants = await _participants_of(run, relationships)
    async with run.channel("engagement") as channel, run.channel("analytics") as analytics:
        stub = engagement_pb2_grpc.EngagementServiceStub(channel)
        reader = analytics_pb2_grpc.AnalyticsServiceStub(analytics)
        done = asyncio.Event()

        def action(n: int) -> Callable[[], Awaitable[None]]:
            relationship = relationships[n % len(relationships)]
            mentor, mentee = participants[relationship]
            roll = n % 5

            async def act() -> None:
                if roll < 2:
                    call = stub.LogSession(
                        engagement_pb2.LogSessionRequest(
                            organization_id=ORG,
                            relationship_id=relationship,
                            held_at=now(),
                            minutes=rng.choice([30, 45, 60]),
                            mode=common_pb2.SESSION_MODE_VIRTUAL,
                            request_id=f"s-{n}",
                        ),
                        timeout=120,
                    )
                elif roll < 4:
                    call = stub.RecordMessage(
                        engagement_pb2.RecordMessageRequest(
                            organization_id=ORG,
                            relationship_id=relationship,
                            participant_id=mentee if n % 2 else mentor,
                            message_id=f"m-{n}",
                        ),
                        timeout=120,
                    )
                else:
                    call = stub.SubmitFeedback(
                        engagement_pb2.SubmitFeedbackRequest(
                            organization_id=ORG,
                            relationship_id=relationship,
                            participant_id=mentee,
                            survey_point="periodic",
                            rating=rng.randint(3, 5),
                        ),
                        timeout=120,
                    )
                await timed(stage, call)

            return act

        async def probe() -> None:
            # Ten times a second: the KPIs' action count against what the load had done when.
            produced: list[tuple[float, int]] = []
            while not done.is_set():
                produced.append((time.perf_counter(), stage.count))
                seen = actions(await kpis(reader, run.program))
                now = time.perf_counter()
                while produced and produced[0][1] <= seen:
                    freshness.latencies.append(now - produced.pop(0)[0])
                await asyncio.sleep(0.1)

        async def counted(target: int) -> bool:
            return actions(await kpis(reader, run.program)) >= target

        # Live: half the actions while analytics keeps up, the probe timing each one's KPI.
        live = count // 2
        watcher = asyncio.create_task(probe())
        start = time.perf_counter()
        with run.charged(stage):
            await pool(clients, [action(n) for n in range(live)])
            await until("the KPIs to count every action", lambda: counted(live), limit=1800)
        done.set()
        await watcher
        stage.seconds = time.perf_counter() - start

        # Catching up: the other half while analytics is down, then how fast a restarted worker
        # folds the backlog into the KPIs (restoring its state from the changelog first).
        before = actions(await kpis(reader, run.program))
        worker = next(m for m in run.stack.processes if m.name == "analytics")
        run.peaks["analytics (before restart)"] = peak_memory(worker.process.pid)
        run.stack.stop_process(worker)
        start = time.perf_counter()
        with run.charged(stage):
            await pool(clients, [action(n) for n in range(live, count)])
        stage.seconds += time.perf_counter() - start
        restarted = run.stack.start_service("analytics")
        run.stack.wait_serving(restarted, run.stack.ports.address("analytics"))
        start = time.perf_counter()

        async def moving() -> bool:
            try:
                return actions(await kpis(reader, run.program)) > before
            except grpc.aio.AioRpcError:
                return False  # partitions still being assigned

        await until("the restarted worker to fold", moving, limit=1800)
        run.notes["analytics restart to first fold (s)"] = time.perf_counter() - start
        first_seen = actions(await kpis(reader, run.program))
        start = time.perf_counter()
        with run.charged(folded):
            await until("the KPIs to count every action", lambda: counted(count), limit=1800)
        folded.seconds = time.perf_counter() - start
        folded.count = count - first_seen


def actions(figures: Any) -> int:
    """Sessions, messages and check-ins the KPIs count."""
    return int(figures.sessions + figures.messages + figures.feedback_responses)


async def _participants_of(run: Run, relationships: list[str]) -> dict[str, tuple[str, str]]:
    with MongoClient[dict[str, Any]](run.stack.mongodb.uri) as client:
        found = client["mentoring_engagement"]["relationships"].find(
            {"organization_id": ORG, "program_id": run.program},
            {"relationship_id": 1, "mentor_id": 1, "mentee_id": 1},
        )
        return {r["relationship_id"]: (r["mentor_id"], r["mentee_id"]) for r in found}


async def reconcile(run: Run) -> list[tuple[str, float, float]]:
    async with run.channel("analytics") as analytics:
        figures = await kpis(analytics_pb2_grpc.AnalyticsServiceStub(analytics), run.program)
    scope = {"organization_id": ORG, "program_id": run.program}
    with MongoClient[dict[str, Any]](run.stack.mongodb.uri) as client:
        enrollment = client["mentoring_enrollment"]
        engagement = client["mentoring_engagement"]
        people = enrollment["participants"]
        relationships = engagement["relationships"]
        messages = sum(r.get("messages", 0) for r in relationships.find(scope, {"messages": 1}))
        direct = {
            "mentors": people.count_documents({**scope, "role": "mentor", "status": "registered"}),
            "mentees": people.count_documents({**scope, "role": "mentee", "status": "registered"}),
            "active_relationships": relationships.count_documents({**scope, "status": "active"}),
            "sessions": engagement["sessions"].count_documents({**scope, "status": "held"}),
            "messages": messages,
            "feedback_responses": engagement["feedback"].count_documents(scope),
        }
    return [(name, float(getattr(figures, name)), float(value)) for name, value in direct.items()]


# --- report --------------------------------------------------------------------------------


def report(run: Run, references: dict[str, float], rows: list[tuple[str, float, float]]) -> bool:
    ok = True

    def verdict(passed: bool) -> str:
        nonlocal ok
        ok = ok and passed
        return "PASS" if passed else "MISS"

    print(f"\none program of {run.people:,} people on the real stack")
    print(f"{'stage':<44}{'count':>10}{'per s':>11}{'p50 ms':>10}{'p99 ms':>10}")
    for stage in run.stages.values():
        print(
            f"{stage.name:<44}{stage.count:>10,}{stage.rate:>11,.0f}"
            f"{stage.percentile(0.5) * 1000:>10.1f}{stage.percentile(0.99) * 1000:>10.1f}"
        )
    print()
    for name, value in run.notes.items():
        print(f"{name:<44}{value:>10,.1f}")
    charged = [stage for stage in run.stages.values() if stage.cpu and stage.count]
    names = sorted({name for stage in charged for name in stage.cpu})
    print(f"\n{'CPU ms per unit':<44}" + "".join(f"{name[:11]:>12}" for name in names))
    for stage in charged:
        per = {name: seconds * 1000 / stage.count for name, seconds in stage.cpu.items()}
        print(f"{stage.name[:43]:<44}" + "".join(f"{per.get(name, 0.0):>12.2f}" for name in names))
    print(f"\n{'reference (same run)':<44}{'per s':>21}")
    for name, value in references.items():
        print(f"{name:<44}{value:>21,.0f}")

    print(f"\n{'target':<52}{'value':>12}{'target':>10}  verdict")
    imported = run.stages["import"]
    print(
        f"{'import rows/s':<52}{imported.rate:>12,.0f}{TARGET_IMPORT_ROWS_S:>10,}  "
        f"{verdict(imported.rate >= TARGET_IMPORT_ROWS_S)}"
    )
    ran = run.stages["run"]
    print(
        f"{'bulk run to last proposal in engagement (s)':<52}{ran.seconds:>12.1f}"
        f"{TARGET_RUN_S:>10.0f}  {verdict(ran.seconds <= TARGET_RUN_S)}"
    )
    if "fold" in run.stages:
        folded, fresh = run.stages["fold"], run.stages["freshness"]
        print(
            f"{'events/s into KPIs (backlog after a restart)':<52}{folded.rate:>12,.0f}"
            f"{TARGET_EVENTS_S:>10,}  {verdict(folded.rate >= TARGET_EVENTS_S)}"
        )
        p99 = fresh.percentile(0.99)
        print(
            f"{'KPI freshness p99 during the load (s)':<52}{p99:>12.2f}"
            f"{TARGET_FRESHNESS_P99_S:>10.1f}  {verdict(p99 <= TARGET_FRESHNESS_P99_S)}"
        )
    peaks = {**run.peaks, **{m.name: peak_memory(m.process.pid) for m in run.stack.processes}}
    for name, peak in peaks.items():
        print(
            f"{'peak memory ' + name + ' (MB)':<52}{peak / 1024**2:>12,.0f}"
            f"{TARGET_PEAK_BYTES / 1024**2:>10,.0f}  {verdict(peak <= TARGET_PEAK_BYTES)}"
        )
    print(f"\n{'reconciliation':<30}{'KPI':>14}{'store':>14}")
    for name, kpi, direct in rows:
        print(f"{name:<30}{kpi:>14,.0f}{direct:>14,.0f}  {verdict(kpi == direct)}")
    print(f"\n{'all targets met' if ok else 'some targets missed'}")
    return ok


async def scenario(stack: Stack, args: argparse.Namespace) -> bool:
    rng = random.Random(args.seed)
    references: dict[str, float] = {}
    produced, consumed = await kafka_reference(stack.ports.bootstrap)
    references["raw Kafka produce (300 B, acks=all)"] = produced
    references["raw Kafka consume"] = consumed
    references["raw database inserts (insert_many)"] = database_reference(stack.mongodb.uri)

    async with grpc.aio.insecure_channel(stack.ports.address("enrollment")) as channel:
        program = await enrollment_pb2_grpc.EnrollmentServiceStub(channel).CreateProgram(
            enrollment_pb2.CreateProgramRequest(organization_id=ORG, name="Enterprise mentoring")
        )
    run = Run(stack, program.program_id, args.people)
    await bulk_mode(run)
    await import_people(run, hris_rows(args.people, rng))
    print(f"imported {args.people:,} at {run.stages['import'].rate:,.0f} rows/s", flush=True)
    matches = await bulk_run(run)
    print(f"bulk run: {len(matches):,} proposals in {run.stages['run'].seconds:.1f} s", flush=True)
    relationships = await accept_all(run, matches[: args.accept or None], args.clients)
    print(f"accepted {len(relationships):,} at {run.stages['accept'].rate:,.0f}/s", flush=True)
    if relationships and args.activities:
        await activity(run, relationships, args.activities, args.clients, rng)
    rows = await reconcile(run)
    return report(run, references, rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=200_000)
    parser.add_argument("--accept", type=int, default=0, help="accept only this many (0: all)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as logs:
        env = {**os.environ, "LOG_LEVEL": "WARNING"}
        stack = Stack(Ports.free(), log_dir=Path(logs), env=env)
        try:
            stack.start_all(timeout=120)
            ok = asyncio.run(scenario(stack, args))
        finally:
            stack.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
