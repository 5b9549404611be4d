"""How fast analytics turns events into live KPIs, on Apache Kafka.

    python bench/events.py [--events 40000] [--programs 20] [--paced-rate 2000]

Starts Apache Kafka (as `make up` does) and one analytics worker, then:
1. throughput: publishes a realistic mix of events as fast as the producer can and measures
   the sustained rate at which the worker folds them into KPIs (until every program's
   `events` KPI is complete);
2. freshness: publishes at a steady rate with marker sessions in a probe program and measures
   the time from an event's publication to its KPI being visible over gRPC (p50/p99);
3. a reference row in the same run: a bare aiokafka consumer reading the same events, the
   ceiling the broker and client impose on any consumer here;
4. the broker's CPU seconds per 10,000 events during the throughput stage.
Targets (one analytics worker, 2 cores): >= 5,000 events/s, p99 freshness <= 2 s.

    python bench/events.py --people 100000 --relationships 40000 --backlog 100000

One big program instead (bench/scale.py's catching-up stage, without the other services):
registrations and relationship starts folded first; then, with the worker stopped, a backlog of
the activity events engagement publishes (sessions, messages, check-ins, spread over every
relationship); then the restarted worker's state restore and backlog fold rate, its CPU per
event, and KPI freshness under a paced live load in the same program.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack_run import cpu_seconds
from mentoring.stack import Managed, Ports, Stack
from services.common.api import (
    analytics_pb2,
    analytics_pb2_grpc,
    common_pb2,
    events_pb2,
)
from services.common.events import (
    PROGRAM_TOPICS,
    new_event,
    partition_key,
    stable_event_id,
    topic_of,
)
from services.common.kafka import ensure_topics

ORG = "bench-org"
BIG_PROGRAM = "big-program"
SKILLS = ["python", "leadership", "sql", "coaching", "finance", "ux-design", "sales", "cloud"]
TARGET_RATE = 5000.0
TARGET_P99 = 2.0


def event_mix(programs: list[str], count: int, rng: random.Random) -> list[events_pb2.Event]:
    """Registrations, proposals, answers, relationships and sessions in realistic proportions."""
    out = []
    for i in range(count):
        program = programs[i % len(programs)]
        roll = rng.random()
        if roll < 0.25:
            payload: object = events_pb2.ParticipantRegistered(
                participant_id=f"p{i}",
                role=common_pb2.ROLE_MENTEE if rng.random() < 0.8 else common_pb2.ROLE_MENTOR,
                skills=["python", "leadership"],
                capacity=0,
            )
        elif roll < 0.40:
            payload = events_pb2.MatchProposed(match_id=f"m{i}", mentor_id="a", mentee_id="b")
        elif roll < 0.55:
            payload = events_pb2.MatchResponded(
                match_id=f"m{i}", status=common_pb2.MATCH_STATUS_ACCEPTED
            )
        elif roll < 0.65:
            payload = events_pb2.RelationshipStarted(relationship_id=f"r{i}", match_id=f"m{i}")
        else:
            payload = events_pb2.SessionLogged(session_id=f"s{i}", relationship_id="r", minutes=45)
        out.append(
            new_event(producer="bench", organization_id=ORG, program_id=program, payload=payload)  # type: ignore[arg-type]
        )
    return out


async def publish(
    bootstrap: str,
    events: list[events_pb2.Event],
    rate: float | None = None,
    sent: list[float] | None = None,
) -> list[float]:
    """Send events (paced at `rate`/s if given); return each event's send time (appended to
    `sent` as they go, if given)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5)
    await producer.start()
    sent = [] if sent is None else sent
    try:
        start = time.perf_counter()
        for i, event in enumerate(events):
            if rate:
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            env = event.envelope
            await producer.send(
                topic_of(event),
                event.SerializeToString(),
                key=partition_key(env.organization_id, env.program_id),
            )
            sent.append(time.perf_counter())
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def total_events(stub: analytics_pb2_grpc.AnalyticsServiceStub, programs: list[str]) -> int:
    replies = await asyncio.gather(
        *(
            stub.GetProgramKpis(
                analytics_pb2.GetProgramKpisRequest(organization_id=ORG, program_id=p)
            )
            for p in programs
        )
    )
    return sum(r.events for r in replies)


async def throughput(stack: Stack, count: int, programs: list[str], rng: random.Random) -> float:
    events = event_mix(programs, count, rng)
    async with grpc.aio.insecure_channel(stack.ports.address("analytics")) as channel:
        stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        base = await total_events(stub, programs)
        start = time.perf_counter()
        publishing = asyncio.create_task(publish(stack.ports.bootstrap, events))
        while await total_events(stub, programs) < base + count:  # noqa: ASYNC110 - polling gRPC
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - start
        await publishing
    return count / elapsed


async def freshness(
    stack: Stack, rate: float, seconds: float, programs: list[str], rng: random.Random
) -> list[float]:
    """Background load at `rate`, and a marker session every 50 ms in a probe program."""
    probe = f"probe-{uuid.uuid4().hex[:6]}"
    background = event_mix(programs, int(rate * seconds), rng)
    markers = [
        new_event(
            producer="bench",
            organization_id=ORG,
            program_id=probe,
            payload=events_pb2.SessionLogged(session_id=f"mk{i}", relationship_id="r", minutes=1),
        )
        for i in range(int(seconds * 20))
    ]
    async with grpc.aio.insecure_channel(stack.ports.address("analytics")) as channel:
        stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        load = asyncio.create_task(publish(stack.ports.bootstrap, background, rate))
        sent_task = asyncio.create_task(publish(stack.ports.bootstrap, markers, 20.0))
        seen: dict[int, float] = {}
        request = analytics_pb2.GetProgramKpisRequest(organization_id=ORG, program_id=probe)
        deadline = time.perf_counter() + seconds + 30
        while len(seen) < len(markers) and time.perf_counter() < deadline:
            sessions = (await stub.GetProgramKpis(request)).sessions
            now = time.perf_counter()
            for n in range(1, sessions + 1):
                seen.setdefault(n, now)
            await asyncio.sleep(0.005)
        sent = await sent_task
        await load
    return [seen[i + 1] - sent[i] for i in range(len(markers)) if i + 1 in seen]


async def raw_consumer_rate(bootstrap: str, events: list[events_pb2.Event]) -> float:
    """Reference: a bare aiokafka consumer group reading a fresh copy of the same events."""
    count = len(events)
    topic = f"bench-raw-{uuid.uuid4().hex[:6]}"
    # The launcher's broker creates no topic on first use, as in production.
    await ensure_topics(bootstrap, 6, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5)
    await producer.start()
    for event in events:
        env = event.envelope
        await producer.send(
            topic, event.SerializeToString(), key=partition_key(env.organization_id, env.program_id)
        )
    await producer.flush()
    await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{topic}",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    got, start = 0, time.perf_counter()
    while got < count:
        for batch in (await consumer.getmany(timeout_ms=200, max_records=2000)).values():
            for record in batch:
                events_pb2.Event.FromString(record.value)
            got += len(batch)
    elapsed = time.perf_counter() - start
    await consumer.stop()
    return count / elapsed


def _big(payload: Any, event_id: str, producer: str) -> events_pb2.Event:
    return new_event(
        producer=producer,
        organization_id=ORG,
        program_id=BIG_PROGRAM,
        event_id=event_id,
        payload=payload,
    )


def big_program(people: int, relationships: int, rng: random.Random) -> list[events_pb2.Event]:
    """A program's registrations (a fifth mentors), then its relationships' starts."""
    out = []
    for n in range(people):
        is_mentor = n % 5 == 0
        out.append(
            _big(
                events_pb2.ParticipantRegistered(
                    participant_id=f"p{n}",
                    role=common_pb2.ROLE_MENTOR if is_mentor else common_pb2.ROLE_MENTEE,
                    display_name=f"Person {n}",
                    skills=rng.sample(SKILLS, 3),
                    capacity=rng.randint(1, 4) if is_mentor else 0,
                    profile=common_pb2.Profile(hr_person_id=f"hr-{n}", department="Engineering"),
                ),
                stable_event_id("participant-registered", ORG, f"p{n}"),
                "enrollment",
            )
        )
    for n in range(relationships):
        mentor, mentee = pair(n, people)
        out.append(
            _big(
                events_pb2.RelationshipStarted(
                    relationship_id=f"r{n}", match_id=f"m{n}", mentor_id=mentor, mentee_id=mentee
                ),
                stable_event_id("relationship-started", ORG, f"r{n}"),
                "engagement",
            )
        )
    return out


def pair(relationship: int, people: int) -> tuple[str, str]:
    """The mentor and mentee of relationship n: people 0, 5, 10... are the mentors."""
    mentors = max(1, people // 5)
    mentee = relationship + relationship // 4 + 1
    return f"p{5 * (relationship % mentors)}", f"p{mentee % people}"


def activity(
    first: int, count: int, relationships: int, people: int, rng: random.Random
) -> list[events_pb2.Event]:
    """What engagement publishes for LogSession, RecordMessage and SubmitFeedback (two fifths,
    two fifths, one fifth, as bench/scale.py calls them), spread over every relationship."""
    out = []
    for n in range(first, first + count):
        relationship = f"r{n % relationships}"
        mentor, mentee = pair(n % relationships, people)
        roll = n % 5
        if roll < 2:
            session = events_pb2.SessionLogged(
                session_id=f"s-{n}",
                relationship_id=relationship,
                minutes=rng.choice([30, 45, 60]),
                mode=common_pb2.SESSION_MODE_VIRTUAL,
            )
            session.held_at.GetCurrentTime()
            out.append(
                _big(session, stable_event_id("session-logged", ORG, f"s-{n}"), "engagement")
            )
        elif roll < 4:
            sender = mentee if n % 2 else mentor
            message = events_pb2.MessageSent(
                relationship_id=relationship,
                sender_id=sender,
                sender_role=common_pb2.ROLE_MENTEE if n % 2 else common_pb2.ROLE_MENTOR,
                message_id=f"m-{n}",
            )
            message.sent_at.GetCurrentTime()
            event_id = stable_event_id("message-sent", ORG, relationship, f"m-{n}")
            out.append(_big(message, event_id, "engagement"))
        else:
            feedback = events_pb2.FeedbackSubmitted(
                feedback_id=f"f-{n}",
                relationship_id=relationship,
                author_id=mentee,
                author_role=common_pb2.ROLE_MENTEE,
                survey_point="periodic",
                rating=rng.randint(3, 5),
            )
            out.append(
                _big(feedback, stable_event_id("feedback-submitted", ORG, f"f-{n}"), "engagement")
            )
    return out


async def big_kpis(stub: analytics_pb2_grpc.AnalyticsServiceStub) -> Any:
    return await stub.GetProgramKpis(
        analytics_pb2.GetProgramKpisRequest(organization_id=ORG, program_id=BIG_PROGRAM)
    )


def actions(figures: Any) -> int:
    """Sessions, messages and check-ins the KPIs count."""
    return int(figures.sessions + figures.messages + figures.feedback_responses)


async def wait_for(
    stub: analytics_pb2_grpc.AnalyticsServiceStub, reached: Callable[[Any], bool]
) -> Any:
    """The big program's KPIs once they satisfy `reached` (unavailable while the worker
    restores its partitions: asked again)."""
    while True:
        try:
            figures = await big_kpis(stub)
            if reached(figures):
                return figures
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.05)


@dataclass
class BacklogRun:
    setup_rate: float = 0.0
    restore_seconds: float = 0.0
    fold_rate: float = 0.0
    overall_rate: float = 0.0
    cpu_ms_per_event: float = 0.0
    lags: list[float] = field(default_factory=list)


async def setup_big(stack: Stack, events: list[events_pb2.Event], run: BacklogRun) -> None:
    async with grpc.aio.insecure_channel(stack.ports.address("analytics")) as channel:
        stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        start = time.perf_counter()
        await publish(stack.ports.bootstrap, events)
        await wait_for(stub, lambda f: f.events >= len(events))
        run.setup_rate = len(events) / (time.perf_counter() - start)


# Reconnect quickly to a worker that is starting: gRPC's default backoff grows past seconds.
FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 200),
]


async def fold_backlog(stack: Stack, base: int, count: int, run: BacklogRun) -> Managed:
    """Restart the worker; time its restore (start to the first backlog event in the KPIs) and
    the fold of the rest of the backlog."""
    start = time.perf_counter()
    worker = stack.start_service("analytics")
    address = stack.ports.address("analytics")
    async with grpc.aio.insecure_channel(address, options=FAST_RECONNECT) as channel:
        stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        first = await wait_for(stub, lambda f: actions(f) > base)
        moving = time.perf_counter()
        cpu = cpu_seconds(worker.process.pid)
        run.restore_seconds = moving - start
        await wait_for(stub, lambda f: actions(f) >= base + count)
        done = time.perf_counter()
        cpu = cpu_seconds(worker.process.pid) - cpu
    folded = base + count - actions(first)
    run.fold_rate = folded / (done - moving)
    run.overall_rate = count / (done - start)
    run.cpu_ms_per_event = cpu / folded * 1000
    return worker


async def live_freshness(
    stack: Stack, events: list[events_pb2.Event], base: int, rate: float, run: BacklogRun
) -> None:
    """Activity published at `rate` into the big program; each poll of its KPIs times every
    event they count since the last poll, from its publication."""
    async with grpc.aio.insecure_channel(stack.ports.address("analytics")) as channel:
        stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        sent: list[float] = []
        load = asyncio.create_task(publish(stack.ports.bootstrap, events, rate, sent))
        counted = 0
        while counted < len(events):
            # An event counted before its send time was recorded is timed at the next poll.
            seen = min(actions(await big_kpis(stub)) - base, len(sent))
            now = time.perf_counter()
            run.lags.extend(now - at for at in sent[counted:seen])
            counted = max(counted, seen)
            await asyncio.sleep(0.02)
        await load


def backlog_scenario(stack: Stack, args: argparse.Namespace, rng: random.Random) -> BacklogRun:
    run = BacklogRun()
    setup = big_program(args.people, args.relationships, rng)
    backlog = activity(0, args.backlog, args.relationships, args.people, rng)
    live = activity(
        args.backlog,
        int(args.paced_rate * args.paced_seconds),
        args.relationships,
        args.people,
        rng,
    )
    worker = stack.start_service("analytics")
    stack.wait_serving(worker, stack.ports.address("analytics"))
    asyncio.run(setup_big(stack, setup, run))
    stack.stop_process(worker)
    asyncio.run(publish(stack.ports.bootstrap, backlog))
    asyncio.run(fold_backlog(stack, 0, len(backlog), run))
    asyncio.run(live_freshness(stack, live, len(backlog), args.paced_rate, run))
    return run


def report_backlog(args: argparse.Namespace, run: BacklogRun, reference: float) -> None:
    p50 = statistics.median(run.lags) if run.lags else float("inf")
    p99 = sorted(run.lags)[max(0, int(len(run.lags) * 0.99) - 1)] if run.lags else float("inf")
    print(
        f"one program: {args.people:,} people, {args.relationships:,} relationships; "
        f"backlog {args.backlog:,} activity events"
    )
    print(f"{'measure':<48}{'value':>12}{'target':>10}  verdict")
    print(f"{'registrations and starts folded, events/s':<48}{run.setup_rate:>12,.0f}")
    print(f"{'restart to first backlog event in KPIs (s)':<48}{run.restore_seconds:>12.2f}")
    verdict = "PASS" if run.fold_rate >= TARGET_RATE else "MISS"
    print(
        f"{'backlog folded after restore, events/s':<48}{run.fold_rate:>12,.0f}"
        f"{TARGET_RATE:>10,.0f}  {verdict}"
    )
    print(f"{'backlog incl. restart and restore, events/s':<48}{run.overall_rate:>12,.0f}")
    print(f"{'worker CPU ms per backlog event':<48}{run.cpu_ms_per_event:>12.3f}")
    at = f"at {args.paced_rate:,.0f} ev/s"
    print(f"{'KPI freshness p50 (s) ' + at:<48}{p50:>12.3f}")
    verdict = "PASS" if p99 <= TARGET_P99 else "MISS"
    print(f"{'KPI freshness p99 (s) ' + at:<48}{p99:>12.3f}{TARGET_P99:>10.1f}  {verdict}")
    print(f"{'reference: bare aiokafka consumer events/s':<48}{reference:>12,.0f}")
    print(f"{'backlog fold / reference':<48}{run.fold_rate / reference:>12.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--programs", type=int, default=20)
    parser.add_argument("--paced-rate", type=float, default=2000.0)
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument(
        "--people", type=int, default=0, help="one program of this many people instead"
    )
    parser.add_argument("--relationships", type=int, default=40_000)
    parser.add_argument("--backlog", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(7)
    if args.people:
        return main_backlog(args, rng)
    programs = [f"program-{n}" for n in range(args.programs)]
    with tempfile.TemporaryDirectory() as logs:
        stack = Stack(Ports.free(), log_dir=Path(logs), env={**os.environ, "LOG_LEVEL": "WARNING"})
        try:
            stack.start_engines()
            worker = stack.start_service("analytics")
            stack.wait_serving(worker, stack.ports.address("analytics"))
            # Warm up: the first events pay for the group join and table recovery.
            asyncio.run(throughput(stack, 2000, programs, rng))
            [kafka] = [m for m in stack.processes if m.name == "kafka"]
            broker_cpu = cpu_seconds(kafka.process.pid)
            rate = asyncio.run(throughput(stack, args.events, programs, rng))
            broker_cpu = cpu_seconds(kafka.process.pid) - broker_cpu
            lags = asyncio.run(freshness(stack, args.paced_rate, args.paced_seconds, programs, rng))
            reference = asyncio.run(
                raw_consumer_rate(stack.ports.bootstrap, event_mix(programs, args.events, rng))
            )
        finally:
            stack.stop()
    p50 = statistics.median(lags) if lags else float("inf")
    p99 = sorted(lags)[max(0, int(len(lags) * 0.99) - 1)] if lags else float("inf")
    print(f"{'measure':<44}{'value':>14}{'target':>12}  verdict")
    print(
        f"{'analytics sustained events/s':<44}{rate:>14,.0f}{TARGET_RATE:>12,.0f}  "
        f"{'PASS' if rate >= TARGET_RATE else 'MISS'}"
    )
    at = f"at {args.paced_rate:,.0f} ev/s"
    print(f"{'KPI freshness p50 (s) ' + at:<44}{p50:>14.3f}")
    verdict = "PASS" if p99 <= TARGET_P99 else "MISS"
    print(f"{'KPI freshness p99 (s) ' + at:<44}{p99:>14.3f}{TARGET_P99:>12.1f}  {verdict}")
    print(f"{'reference: bare aiokafka consumer events/s':<44}{reference:>14,.0f}")
    print(f"{'analytics / reference':<44}{rate / reference:>14.1%}")
    per_10k = broker_cpu / args.events * 10_000
    print(f"{'Kafka CPU seconds per 10,000 events':<44}{per_10k:>14.2f}")
    print(f"markers seen: {len(lags)}; topics: {', '.join(PROGRAM_TOPICS)}")
    return 0


def main_backlog(args: argparse.Namespace, rng: random.Random) -> int:
    with tempfile.TemporaryDirectory() as logs:
        stack = Stack(Ports.free(), log_dir=Path(logs), env={**os.environ, "LOG_LEVEL": "WARNING"})
        try:
            stack.start_engines()
            run = backlog_scenario(stack, args, rng)
            reference = asyncio.run(
                raw_consumer_rate(
                    stack.ports.bootstrap,
                    activity(0, args.backlog, args.relationships, args.people, rng),
                )
            )
        finally:
            stack.stop()
    report_backlog(args, run, reference)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
