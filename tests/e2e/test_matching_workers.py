"""Matching workers in one consumer group: they split the programs, propose each match once,
run bulk runs where the program lives, and take over a dead worker's programs."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from mentoring.stack import Managed, Ports, Stack
from services.common.api import common_pb2, events_pb2, matching_pb2, matching_pb2_grpc
from services.common.events import new_event, partition_key
from services.matching.worker import TOPICS
from tests.e2e.support import eventually, metric, produce, read_topic, start_workers

PARTITIONS = 6 * len(TOPICS)


@dataclass
class Worker:
    process: Managed
    grpc_port: int
    metrics_port: int

    def stub(self) -> matching_pb2_grpc.MatchingServiceStub:
        return matching_pb2_grpc.MatchingServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")
        )

    def assigned(self) -> float:
        return sum(
            metric(
                self.metrics_port,
                "mentoring_consumer_assigned_partitions",
                topic=t,
                group="matching",
            )
            for t in TOPICS
        )


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, list[Worker]]]:
    # A broker of its own: these workers must not share a group with the session's matching.
    stack = Stack(
        Ports.free(), log_dir=Path(tmp_path_factory.mktemp("workers")), env=dict(os.environ)
    )
    try:
        stack.start_engines()
        started = start_workers(stack, "matching", ("matching-a", "matching-b"))
        yield stack, [Worker(*worker) for worker in started]
    finally:
        stack.stop()


def register_programs(stack: Stack, names: list[str]) -> None:
    """Each program: one mentor with one slot and two mentees who fit."""
    messages = []
    for program in names:
        for name, role, capacity in (
            ("mentor", common_pb2.ROLE_MENTOR, 1),
            ("mentee-1", common_pb2.ROLE_MENTEE, 0),
            ("mentee-2", common_pb2.ROLE_MENTEE, 0),
        ):
            event = new_event(
                producer="enrollment",
                organization_id="acme",
                program_id=program,
                payload=events_pb2.ParticipantRegistered(
                    participant_id=f"{program}-{name}",
                    role=role,
                    display_name=name,
                    skills=["sql"],
                    capacity=capacity,
                ),
            )
            messages.append(
                (
                    "participant-registered",
                    partition_key("acme", program),
                    event.SerializeToString(),
                )
            )
    produce(stack.ports.bootstrap, messages)


def proposals_for(stack: Stack, names: list[str]) -> list[events_pb2.Event]:
    wanted = set(names)
    return [
        e
        for r in read_topic(stack.ports.bootstrap, "match-proposed", settle=3)
        if (e := events_pb2.Event.FromString(r.value)).envelope.program_id in wanted
    ]


def test_two_workers_split_the_programs_and_propose_each_match_once(
    workers: tuple[Stack, list[Worker]],
) -> None:
    stack, (a, b) = workers
    eventually(
        "both workers to own partitions",
        lambda: a.assigned() > 0 and b.assigned() > 0 and a.assigned() + b.assigned() == PARTITIONS,
        timeout=60,
    )
    names = [f"program-{n}" for n in range(24)]
    register_programs(stack, names)
    found = eventually(
        "a proposal per program",
        lambda: p if len(p := proposals_for(stack, names)) >= len(names) else None,
        timeout=60,
    )
    assert Counter(e.envelope.program_id for e in found) == dict.fromkeys(names, 1)
    mentees = [e.match_proposed.mentee_id for e in found]
    assert len(mentees) == len(set(mentees))
    # Counted just after the broker acknowledged the event we may already have read.
    published = eventually(
        "the proposal counters",
        lambda: (
            counts
            if sum(
                counts := [
                    metric(w.metrics_port, "matching_proposals_total", origin="engine")
                    for w in (a, b)
                ]
            )
            == len(names)
            else None
        ),
    )
    assert all(count > 0 for count in published), f"each worker proposed some: {published}"


def test_a_bulk_run_runs_on_the_owner_and_is_visible_on_every_worker(
    workers: tuple[Stack, list[Worker]],
) -> None:
    _, (a, b) = workers
    names = [f"program-{n}" for n in range(24)]
    runs = {
        name: a.stub()
        .StartMatchingRun(
            matching_pb2.StartMatchingRunRequest(organization_id="acme", program_id=name)
        )
        .run_id
        for name in names
    }
    for worker in (a, b):
        stub = worker.stub()
        for run_id in runs.values():
            request = matching_pb2.GetMatchingRunRequest(organization_id="acme", run_id=run_id)
            done = eventually(
                "the run result",
                lambda r=request, s=stub: (
                    got
                    if (got := s.GetMatchingRun(r)).status == matching_pb2.RUN_STATUS_COMPLETED
                    else None
                ),
            )
            # The second mentee of each program waits: the only mentor is taken.
            assert (done.result.mentees_considered, done.result.matched) == (1, 0)
    executed = eventually(
        "the run counters",
        lambda: (
            counts
            if sum(counts := [metric(w.metrics_port, "matching_run_seconds_count") for w in (a, b)])
            == len(names)
            else None
        ),
    )
    assert all(count > 0 for count in executed), f"each owner ran its programs: {executed}"


def test_killing_a_worker_hands_its_programs_to_the_other(
    workers: tuple[Stack, list[Worker]],
) -> None:
    stack, (a, b) = workers
    b.process.process.send_signal(signal.SIGKILL)
    b.process.process.wait()
    stack.processes.remove(b.process)
    eventually(
        "the survivor to own every partition", lambda: a.assigned() == PARTITIONS, timeout=90
    )
    names = [f"after-{n}" for n in range(12)]
    before = metric(a.metrics_port, "matching_proposals_total", origin="engine")
    register_programs(stack, names)
    found = eventually(
        "proposals for every new program",
        lambda: p if len(p := proposals_for(stack, names)) >= len(names) else None,
        timeout=60,
    )
    assert Counter(e.envelope.program_id for e in found) == dict.fromkeys(names, 1)
    eventually(
        "the survivor to count them",
        lambda: metric(a.metrics_port, "matching_proposals_total", origin="engine") == before + 12,
    )
    # The survivor still stops cleanly on SIGTERM, committing what it did.
    assert stack.stop_process(a.process) == 0, stack.tail(a.process)
