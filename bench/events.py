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
from pathlib import Path

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mentoring.stack import Ports, Stack
from services.common.api import (
    analytics_pb2,
    analytics_pb2_grpc,
    common_pb2,
    events_pb2,
)
from services.common.events import PROGRAM_TOPICS, new_event, partition_key, topic_of
from services.common.kafka import ensure_topics

ORG = "bench-org"
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
    bootstrap: str, events: list[events_pb2.Event], rate: float | None = None
) -> list[float]:
    """Send events (paced at `rate`/s if given); return each event's send time."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5)
    await producer.start()
    sent = []
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


async def raw_consumer_rate(
    bootstrap: str, count: int, programs: list[str], rng: random.Random
) -> float:
    """Reference: a bare aiokafka consumer group reading a fresh copy of the same mix."""
    events = event_mix(programs, count, rng)
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--programs", type=int, default=20)
    parser.add_argument("--paced-rate", type=float, default=2000.0)
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    args = parser.parse_args()
    rng = random.Random(7)
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
                raw_consumer_rate(stack.ports.bootstrap, args.events, programs, rng)
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


if __name__ == "__main__":
    raise SystemExit(main())
