"""Matching as an online service on the real stack: RecommendMentors latency with 25,000 mentors
in one program, and CONTINUOUS arrivals (cost per arrival at two pool sizes, lag at a rate).

    python bench/online.py [--mentors 25000] [--small 1000] [--queries 1000]
                           [--arrivals 3000] [--rate 2000] [--seconds 10]

Starts Apache Kafka, the MongoDB-wire server and one matching worker as `make up` does, and
seeds each program through matching's public input: participant-registered events (what
enrollment publishes), with realistic profiles (skills from a taxonomy, departments, levels,
languages, timezones, goals). Then:

1. RecommendMentors p50/p99 over gRPC for random waiting mentees of the big program (the first
   call, which loads the program's index once, is shown apart), beside GetMatchingConfig on the
   same server (one stored document read and returned: the floor of any RPC here).
2. CONTINUOUS arrivals: mentees registered as fast as the producer goes into a program with
   --small and with --mentors mentors; per arrival, matching's planning time
   (matching_plan_seconds) and the wall time until every arrival is proposed or planned.
3. Arrivals paced at --rate per second for --seconds into the big program: the largest backlog
   of registrations not yet consumed, and how long after the last one everything was handled.
4. Storing a continuous batch's pairs on the same server, in one transaction each way: a pair at
   a time (pool.reserve: two updates each) beside the batch's bulk writes (pool.reserve_all).
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Producer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack_run import consumed, matching_on_stack, samples, wait
from bench.synthetic import FAMILIES, taxonomy
from mentoring.stack import Stack
from services.common import storage
from services.common.api import common_pb2, events_pb2, matching_pb2, matching_pb2_grpc
from services.common.config import Settings
from services.common.events import new_event, partition_key
from services.matching import pool
from services.matching.documents import PoolMember

ORG = "bench-org"
BIG, SMALL = "online-big", "online-small"
DEPARTMENTS = ["engineering", "data", "product", "design", "sales", "finance", "operations"]
ZONES = ["Europe/London", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Tokyo"]
LANGUAGES = ["en", "de", "fr", "es", "hi", "ja"]
GOALS = ["career growth", "leadership", "technical depth", "networking", "communication"]


def config(program: str, mode: matching_pb2.MatchingMode.ValueType) -> matching_pb2.MatchingConfig:
    kind = matching_pb2
    return matching_pb2.MatchingConfig(
        organization_id=ORG,
        program_id=program,
        mode=mode,
        criteria=[
            kind.Criterion(kind=kind.CRITERION_KIND_SKILLS, weight=5),
            kind.Criterion(kind=kind.CRITERION_KIND_GOALS, weight=2),
            kind.Criterion(
                kind=kind.CRITERION_KIND_SENIORITY, weight=2, min_level_gap=1, max_level_gap=3
            ),
            kind.Criterion(
                kind=kind.CRITERION_KIND_TIMEZONE, weight=1, hard=True, max_timezone_hours=6
            ),
            kind.Criterion(kind=kind.CRITERION_KIND_LANGUAGE, weight=0, hard=True),
            kind.Criterion(kind=kind.CRITERION_KIND_DEPARTMENT, weight=1),
        ],
        min_score=0.35,
        candidates_per_mentee=20,
    )


def skill_taxonomy() -> matching_pb2.SkillTaxonomy:
    tax, skills = taxonomy()
    return matching_pb2.SkillTaxonomy(
        organization_id=ORG,
        skills=[matching_pb2.SkillNode(name=s, parent=tax.parent(s) or "") for s in skills],
    )


_TAX, _SKILLS = taxonomy()
_FAMILY = {f: [s for s in _SKILLS if (_TAX.ancestors(s) or (s,))[-1] == f] for f in FAMILIES}


def person(
    rng: random.Random, program: str, pid: str, role: common_pb2.Role.ValueType, skills: list[str]
) -> events_pb2.Event:
    home = _FAMILY[rng.choice(list(FAMILIES))]
    mentor = role == common_pb2.ROLE_MENTOR
    level = rng.randint(4, 9) if mentor else rng.randint(1, 5)
    return new_event(
        producer="enrollment",
        organization_id=ORG,
        program_id=program,
        payload=events_pb2.ParticipantRegistered(
            participant_id=pid,
            role=role,
            display_name=pid,
            skills=rng.sample(home, min(3, len(home))),
            capacity=rng.randint(1, 4) if mentor else 0,
            profile=common_pb2.Profile(
                hr_person_id=f"hr-{pid}",
                department=rng.choice(DEPARTMENTS),
                timezone=rng.choice(ZONES),
                languages=sorted({"en", *rng.sample(LANGUAGES, rng.randint(1, 2))}),
                job_level=level,
                goals=rng.sample(GOALS, 2),
            ),
        ),
    )


def produce(bootstrap: str, events: list[events_pb2.Event], rate: float = 0.0) -> float:
    """Publish on participant-registered (paced at `rate` per second if given); the seconds."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    start = time.perf_counter()
    for n, event in enumerate(events):
        env = event.envelope
        producer.produce(
            "participant-registered",
            key=partition_key(env.organization_id, env.program_id),
            value=event.SerializeToString(),
        )
        producer.poll(0)
        if rate:
            ahead = start + (n + 1) / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
    producer.flush(60)
    return time.perf_counter() - start


def metric_sum(port: int, name: str) -> float:
    return sum(v for _, v in samples(port, name))


def percentiles(times: list[float]) -> tuple[float, float]:
    ms = np.asarray(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def timed(call: Any, requests: list[Any]) -> list[float]:
    times = []
    for request in requests:
        start = time.perf_counter()
        call(request)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mentors", type=int, default=25_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--arrivals", type=int, default=3_000)
    parser.add_argument("--rate", type=float, default=2_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    _, skills = taxonomy()
    with matching_on_stack() as on:
        run(on.stack, on.stub, on.metrics_port, rng, skills, args)
    return 0


def run(
    stack: Stack,
    stub: matching_pb2_grpc.MatchingServiceStub,
    port: int,
    rng: random.Random,
    skills: list[str],
    args: argparse.Namespace,
) -> None:
    bootstrap = stack.ports.bootstrap
    stub.SetSkillTaxonomy(matching_pb2.SetSkillTaxonomyRequest(taxonomy=skill_taxonomy()))
    self_mode, continuous = matching_pb2.MATCHING_MODE_SELF, matching_pb2.MATCHING_MODE_CONTINUOUS
    for program in (BIG, SMALL):
        stub.SetMatchingConfig(
            matching_pb2.SetMatchingConfigRequest(config=config(program, self_mode))
        )
    mentor = common_pb2.ROLE_MENTOR
    mentee = common_pb2.ROLE_MENTEE
    seed = [person(rng, BIG, f"big-mentor-{n}", mentor, skills) for n in range(args.mentors)]
    seed += [person(rng, SMALL, f"small-mentor-{n}", mentor, skills) for n in range(args.small)]
    waiting = [f"big-mentee-{n}" for n in range(500)]
    seed += [person(rng, BIG, pid, mentee, skills) for pid in waiting]
    start = time.perf_counter()
    produce(bootstrap, seed)
    wait(
        "matching to store the seed",
        lambda: consumed(port, "participant-registered") >= len(seed),
        timeout=3600,
    )
    seeded = time.perf_counter() - start
    print(f"\nseeded {len(seed):,} registrations in {seeded:.1f} s ({len(seed) / seeded:,.0f}/s)")

    # 1. RecommendMentors against the big program.
    def recommend(mentee_id: str) -> Any:
        return stub.RecommendMentors(
            matching_pb2.RecommendMentorsRequest(
                organization_id=ORG, program_id=BIG, mentee_id=mentee_id, limit=5
            )
        )

    first = timed(recommend, [waiting[0]])[0]
    asked = [rng.choice(waiting) for _ in range(args.queries)]
    reply = recommend(asked[0])
    assert reply.recommendations, "the benchmark's mentees should have recommendations"
    rec = percentiles(timed(recommend, asked))
    get_config = matching_pb2.GetMatchingConfigRequest(organization_id=ORG, program_id=BIG)
    ref = percentiles(timed(stub.GetMatchingConfig, [get_config] * args.queries))
    print(f"\nRecommendMentors, {args.mentors:,} mentors in the program, limit 5, over gRPC")
    print(f"  first call (loads the index once)     {first * 1000:>8.1f} ms")
    print(f"  RecommendMentors  p50 / p99            {rec[0]:>8.2f} / {rec[1]:.2f} ms")
    print(f"  reference: GetMatchingConfig p50 / p99 {ref[0]:>8.2f} / {ref[1]:.2f} ms")
    print(f"  target p99 <= 50 ms: {'met' if rec[1] <= 50 else 'NOT met'}")

    # 2. CONTINUOUS arrivals: cost per arrival at two pool sizes.
    print("\nCONTINUOUS arrivals (mentees registered as fast as produced)")
    rows = []
    for program, mentors in ((SMALL, args.small), (BIG, args.mentors)):
        stub.SetMatchingConfig(
            matching_pb2.SetMatchingConfigRequest(config=config(program, continuous))
        )
        # The first batch after the switch solves whoever waits (once per process).
        warm = [person(rng, program, f"{program}-warm", mentee, skills)]
        produce(bootstrap, warm)
        wait("the first batch", _past(port, consumed(port, "participant-registered")), 600)
        time.sleep(1)
        rows.append((mentors, arrivals(stack, port, rng, skills, program, args.arrivals, 0.0)))
    for mentors, row in rows:
        print(
            f"  {mentors:>7,} mentors: {row['plan_ms']:.3f} ms planning per arrival, "
            f"{row['proposed']:,.0f} of {row['n']:,} proposed, "
            f"all handled at {row['n'] / row['wall']:,.0f} arrivals/s"
        )
    ratio = rows[1][1]["plan_ms"] / max(rows[0][1]["plan_ms"], 1e-9)
    print(f"  planning per arrival, {rows[1][0]:,} vs {rows[0][0]:,} mentors: x{ratio:.2f}")

    # 3. Paced arrivals into the big program.
    n = int(args.rate * args.seconds)
    row = arrivals(stack, port, rng, skills, BIG, n, args.rate)
    print(f"\n{n:,} arrivals paced at {args.rate:,.0f}/s into {args.mentors:,} mentors")
    print(f"  produced in {row['produced']:.1f} s; largest backlog {row['backlog']:,.0f} events")
    print(f"  everything handled {row['tail']:.1f} s after the last arrival")
    print(f"  {row['proposed']:,.0f} proposed; planning {row['plan_ms']:.3f} ms per arrival")
    kept_up = row["tail"] <= 5
    print(f"  keeps up with bounded lag: {'yes' if kept_up else 'NO'}")

    # 4. Reserving a batch's pairs: a pair at a time beside the bulk writes.
    one, bulk = reserving(stack, batch=250, rounds=4)
    print("\nReserving a batch of 250 pairs in one transaction (a slot and a mentee each)")
    print(f"  bulk writes (pool.reserve_all)          {bulk * 1000:>8.3f} ms per pair")
    print(f"  reference: a pair at a time             {one * 1000:>8.3f} ms per pair")


def reserving(stack: Stack, batch: int, rounds: int) -> tuple[float, float]:
    """Seconds per pair reserved a pair at a time and in bulk, alternating rounds, each on
    mentors and mentees of its own in a database of the benchmark's own."""
    settings = Settings.from_env("matching", {"MONGODB_URI": stack.mongodb.uri})
    storage.connect(replace(settings, mongodb_database="bench_reserving"))
    program = "reserving"
    people = [
        pool.Registration(f"{side}-{n}", role, "", ["python"], 1, b"", "", "", "")
        for side, role in (("mentor", "mentor"), ("mentee", "mentee"))
        for n in range(2 * batch * rounds)
    ]
    pool.add_members(ORG, program, people)
    keys = {m.participant_id: m.pk for m in PoolMember.objects(organization_id=ORG)}
    spent = {"one": 0.0, "bulk": 0.0}
    for r in range(2 * rounds):
        way = "bulk" if r % 2 else "one"
        pairs = [
            (keys[f"mentor-{n}"], keys[f"mentee-{n}"]) for n in range(r * batch, (r + 1) * batch)
        ]

        start = time.perf_counter()
        reserved = storage.atomic(functools.partial(_reserve, program, pairs, way == "bulk"))
        spent[way] += time.perf_counter() - start
        assert all(reserved), "every pair of the benchmark should be reserved"
    return spent["one"] / (batch * rounds), spent["bulk"] / (batch * rounds)


def _reserve(
    program: str, pairs: list[tuple[Any, Any]], bulk: bool, tx: storage.Transaction
) -> list[bool]:
    revision = pool.next_revision(tx, ORG, program)
    if bulk:
        return pool.reserve_all(tx, pairs, revision)
    return [pool.reserve(tx, mentor, mentee, revision) for mentor, mentee in pairs]


def _past(port: int, before: float) -> Any:
    return lambda: consumed(port, "participant-registered") > before


def arrivals(
    stack: Stack,
    port: int,
    rng: random.Random,
    skills: list[str],
    program: str,
    n: int,
    rate: float,
) -> dict[str, float]:
    tag = f"{program}-{time.monotonic_ns()}"
    events = [person(rng, program, f"{tag}-{k}", common_pb2.ROLE_MENTEE, skills) for k in range(n)]
    consumed_before = consumed(port, "participant-registered")
    plan_before = metric_sum(port, "matching_plan_seconds_sum")
    proposed_before = metric_sum(port, "matching_proposals_total")
    backlog = 0.0
    produced: list[float] = []
    thread = threading.Thread(
        target=lambda: produced.append(produce(stack.ports.bootstrap, events, rate))
    )
    start = time.perf_counter()
    thread.start()
    sent_at = start
    while thread.is_alive():
        elapsed = time.perf_counter() - start
        sent = min(n, elapsed * rate) if rate else n
        backlog = max(backlog, sent - (consumed(port, "participant-registered") - consumed_before))
        time.sleep(0.25)
    thread.join()
    sent_at = time.perf_counter()
    wait(
        "matching to handle the arrivals",
        lambda: consumed(port, "participant-registered") - consumed_before >= n,
        timeout=3600,
    )
    done = time.perf_counter()
    time.sleep(1)  # the last batch's plan and publication
    return {
        "n": n,
        "produced": produced[0],
        "wall": done - start,
        "tail": done - sent_at,
        "backlog": backlog,
        "plan_ms": (metric_sum(port, "matching_plan_seconds_sum") - plan_before) / n * 1000,
        "proposed": metric_sum(port, "matching_proposals_total") - proposed_before,
    }


if __name__ == "__main__":
    raise SystemExit(main())
