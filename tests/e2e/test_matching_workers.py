"""Two matching workers in one consumer group split the programs; nothing is proposed twice."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mentoring.stack import Ports, Stack, free_port
from services.common.api import common_pb2, events_pb2
from services.common.events import new_event, partition_key
from tests.e2e.support import eventually, metric, produce, read_topic

PROGRAMS = 24


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, list[int]]]:
    # A broker of its own: these workers must not share a group with the session's matching.
    stack = Stack(
        Ports.free(), log_dir=Path(tmp_path_factory.mktemp("workers")), env=dict(os.environ)
    )
    try:
        stack.start_broker()
        metrics_ports = [stack.ports.metrics["matching"], free_port()]
        workers = [
            stack.start_service("matching", name="matching-a"),
            stack.start_service(
                "matching", name="matching-b", grpc_port=free_port(), metrics_port=metrics_ports[1]
            ),
        ]
        stack.wait_serving(workers[0], stack.ports.address("matching"))
        yield stack, metrics_ports
    finally:
        stack.stop()


def assigned(port: int) -> float:
    return sum(
        metric(port, "mentoring_consumer_assigned_partitions", topic=t, group="matching")
        for t in ("participant-registered", "match-responded")
    )


def test_two_workers_split_the_programs_and_propose_each_match_once(
    two_workers: tuple[Stack, list[int]],
) -> None:
    stack, ports = two_workers
    eventually(
        "both workers to own partitions",
        lambda: all(assigned(p) > 0 for p in ports) and sum(assigned(p) for p in ports) == 12,
        timeout=60,
    )

    messages = []
    for n in range(PROGRAMS):
        org, program = "acme", f"program-{n}"
        people = [
            ("mentor", common_pb2.ROLE_MENTOR, 1),
            ("mentee-1", common_pb2.ROLE_MENTEE, 0),
            ("mentee-2", common_pb2.ROLE_MENTEE, 0),
        ]
        for name, role, capacity in people:
            event = new_event(
                producer="enrollment",
                organization_id=org,
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
                ("participant-registered", partition_key(org, program), event.SerializeToString())
            )
    produce(stack.ports.bootstrap, messages)

    def proposals() -> list[events_pb2.Event] | None:
        found = [
            events_pb2.Event.FromString(r.value)
            for r in read_topic(stack.ports.bootstrap, "match-proposed", settle=3)
        ]
        return found if len(found) >= PROGRAMS else None

    eventually("a proposal per program", proposals, timeout=60)
    published = [metric(p, "matching_proposals_total") for p in ports]
    final = proposals() or []
    per_program = Counter(e.envelope.program_id for e in final)
    assert per_program == {f"program-{n}": 1 for n in range(PROGRAMS)}
    mentees = [e.match_proposed.mentee_id for e in final]
    assert len(mentees) == len(set(mentees))
    assert all(count > 0 for count in published), f"each worker proposed some: {published}"
    assert sum(published) == PROGRAMS

    # Each worker stops cleanly on SIGTERM, committing what it did.
    for managed in list(stack.processes):
        if managed.name.startswith("matching"):
            assert stack.stop_process(managed) == 0, stack.tail(managed)
