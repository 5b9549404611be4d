"""A bulk matching run on the real stack, as a coordinator starts one.

    python bench/stack_run.py [--mentees 2000] [--seed 7]

Starts Apache Kafka, the MongoDB-wire server and one matching worker as `make up` does, sets a
program to bulk mode over gRPC, publishes its mentees and mentors (one mentor for four mentees,
four slots each, skills from a shared pool) on `participant-registered` with librdkafka, waits
until matching has stored them all, then times StartMatchingRun until the run is completed and
until every proposal it made is published, and the worker's peak memory. Reference row in
the same run: the registrations matching stored per second while it loaded the pool.
bench/matching.py runs it after the engine's own rows (--stack-mentees).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mentoring.stack import Managed, Ports, Stack
from services.common.api import common_pb2, events_pb2, matching_pb2, matching_pb2_grpc
from services.common.events import new_event, partition_key

ORG = "bench-org"
PROGRAM = "bench-program"
SKILLS = [f"skill-{n}" for n in range(40)]
CAPACITY = 4


def consumed(metrics_port: int, topic: str) -> float:
    return sum(
        v
        for labels, v in samples(metrics_port, "mentoring_events_consumed_total")
        if labels.get("topic") == topic
    )


def samples(metrics_port: int, name: str) -> list[tuple[dict[str, str], float]]:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_memory(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def wait(what: str, ready: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := ready()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return found


def registrations(n_mentees: int, rng: random.Random) -> list[events_pb2.Event]:
    people = [(f"mentor-{n}", common_pb2.ROLE_MENTOR, CAPACITY) for n in range(n_mentees // 4)]
    people += [(f"mentee-{n}", common_pb2.ROLE_MENTEE, 0) for n in range(n_mentees)]
    return [
        new_event(
            producer="enrollment",
            organization_id=ORG,
            program_id=PROGRAM,
            payload=events_pb2.ParticipantRegistered(
                participant_id=pid,
                role=role,
                display_name=pid,
                skills=rng.sample(SKILLS, 3),
                capacity=capacity,
            ),
        )
        for pid, role, capacity in people
    ]


@dataclass(frozen=True)
class MatchingOnStack:
    stack: Stack
    worker: Managed
    stub: matching_pb2_grpc.MatchingServiceStub
    metrics_port: int


@contextlib.contextmanager
def matching_on_stack() -> Iterator[MatchingOnStack]:
    """Kafka, the database server and one matching worker started as `make up` starts them,
    with a gRPC stub to the worker; all stopped on leaving."""
    with tempfile.TemporaryDirectory() as logs:
        stack = Stack(Ports.free(), log_dir=Path(logs), env={**os.environ, "LOG_LEVEL": "WARNING"})
        try:
            stack.start_engines()
            worker = stack.start_service("matching")
            address = stack.ports.address("matching")
            stack.wait_serving(worker, address)
            with grpc.insecure_channel(address) as channel:
                stub = matching_pb2_grpc.MatchingServiceStub(channel)
                yield MatchingOnStack(stack, worker, stub, stack.ports.metrics["matching"])
        finally:
            stack.stop()


def run_on_stack(n_mentees: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    with matching_on_stack() as on:
        on.stub.SetMatchingConfig(
            matching_pb2.SetMatchingConfigRequest(
                config=matching_pb2.MatchingConfig(
                    organization_id=ORG,
                    program_id=PROGRAM,
                    mode=matching_pb2.MATCHING_MODE_BULK,
                    criteria=[
                        matching_pb2.Criterion(kind=matching_pb2.CRITERION_KIND_SKILLS, weight=5)
                    ],
                )
            )
        )
        events = registrations(n_mentees, rng)
        producer = Producer({"bootstrap.servers": on.stack.ports.bootstrap, "linger.ms": 20})
        start = time.perf_counter()
        for event in events:
            producer.produce(
                "participant-registered",
                key=partition_key(ORG, PROGRAM),
                value=event.SerializeToString(),
            )
            producer.poll(0)
        producer.flush(60)
        del producer  # closed now, not after the broker has gone
        wait(
            "matching to store every registration",
            lambda: consumed(on.metrics_port, "participant-registered") >= len(events),
            timeout=1800,
        )
        loaded = time.perf_counter() - start
        start = time.perf_counter()
        run = on.stub.StartMatchingRun(
            matching_pb2.StartMatchingRunRequest(organization_id=ORG, program_id=PROGRAM)
        )
        request = matching_pb2.GetMatchingRunRequest(organization_id=ORG, run_id=run.run_id)
        done = wait(
            "the run to complete",
            lambda: (
                (got := on.stub.GetMatchingRun(request)).status == matching_pb2.RUN_STATUS_COMPLETED
                and got
            ),
            timeout=1800,
        )
        completed = time.perf_counter() - start
        matched = done.result.matched
        wait(
            "every proposal to be published",
            lambda: (
                sum(v for _, v in samples(on.metrics_port, "matching_proposals_total")) >= matched
            ),
            timeout=1800,
        )
        published = time.perf_counter() - start
        peak = peak_memory(on.worker.process.pid)
    return {
        "people": len(events),
        "load_rate": len(events) / loaded,
        "completed": completed,
        "published": published,
        "considered": done.result.mentees_considered,
        "matched": matched,
        "peak": peak,
    }


def report(figures: dict[str, float], n_mentees: int) -> None:
    mentors = f"{n_mentees // 4:,} mentors x {CAPACITY}"
    print(f"\nbulk run on the real stack ({n_mentees:,} mentees, {mentors})")
    print(f"  StartMatchingRun to completed      {figures['completed']:>8.1f} s")
    print(f"  ... to every proposal published    {figures['published']:>8.1f} s")
    considered, matched = figures["considered"], figures["matched"]
    print(f"  mentees considered / matched       {considered:,.0f} / {matched:,.0f}")
    print(f"  matching worker peak memory        {figures['peak'] / 1024**2:>8,.0f} MB")
    print(f"  reference: registrations stored    {figures['load_rate']:>8.0f} /s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mentees", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    report(run_on_stack(args.mentees, args.seed), args.mentees)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
