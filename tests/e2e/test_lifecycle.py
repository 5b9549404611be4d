"""Each process serves health and reflection, and exits 0 on SIGTERM."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from mentoring.stack import SERVICES, Ports, Stack

SERVICE_NAMES = {
    "enrollment": "mentoring.v1.EnrollmentService",
    "matching": "mentoring.v1.MatchingService",
    "engagement": "mentoring.v1.EngagementService",
    "analytics": "mentoring.v1.AnalyticsService",
    "notifications": "mentoring.v1.NotificationService",
}


def test_reflection_and_health_on_every_service(stack: Stack) -> None:
    for service in SERVICES:
        with grpc.insecure_channel(stack.ports.address(service)) as channel:
            listed = set(ProtoReflectionDescriptorDatabase(channel).get_services())
            assert SERVICE_NAMES[service] in listed
            assert "grpc.health.v1.Health" in listed
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAMES[service]), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_every_process_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    stack = Stack(Ports.free(), log_dir=tmp_path, env=dict(os.environ))
    # Faust's default data directory, made in the working directory even for in-memory tables
    stray = Path.cwd() / "analytics-data"
    was_there = stray.exists()
    try:
        stack.start_all()
    except Exception:
        stack.stop()
        raise
    assert was_there or not stray.exists()
    stopped = []
    for managed in reversed(list(stack.processes)):
        code = stack.stop_process(managed)
        if not managed.stopped_cleanly():
            pytest.fail(f"{managed.name} exited {code}\n{stack.tail(managed)}")
        stopped.append(managed.name)
    assert set(stopped) == {"kafka", "mongodb", "mailcatcher", "gateway", *SERVICES}
