"""A large company's program: 20,000 people imported through the CLI into one program.

Before analytics' state was sharded, a program of about 6,000 people made its state value pass
Kafka's 1 MB limit and took analytics (and then the stack) down. On its own stack, so that the
load does not slow the other tests' services.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mentoring.clients import Clients
from mentoring.stack import SERVICES, Ports, Stack
from services.common.api import analytics_pb2, enrollment_pb2
from tests.e2e.support import eventually, without_auth

CLI = [sys.executable, "-m", "mentoring.cli_programs"]
PEOPLE = 20_000
MENTOR_EVERY = 5  # one mentor for four mentees
HEADER = (
    "hr_person_id,role,name,email,skills,capacity,department,location,timezone,languages,"
    "job_level,manager_id,cohort_id,campaign\n"
)
SKILLS = ["python", "leadership", "sql", "go", "design", "sales", "finance", "ops"]
DEPARTMENTS = ["R&D", "Sales", "Ops", "Finance", "HR"]


@pytest.fixture(scope="module")
def big_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    platform = Stack(
        Ports.free(), log_dir=tmp_path_factory.mktemp("scale-logs"), env=without_auth(os.environ)
    )
    try:
        platform.start_all()
        yield platform
    finally:
        platform.stop()


def hris_export(path: Path) -> None:
    with path.open("w") as out:
        out.write(HEADER)
        for n in range(PEOPLE):
            mentor = n % MENTOR_EVERY == 0
            skills = ";".join({SKILLS[n % 8], SKILLS[(n // 8) % 8]})
            department = DEPARTMENTS[n % len(DEPARTMENTS)]
            # Managers are the first 400 people, each of fifty others.
            manager = f"E{n // 50:06d}" if n >= 50 else ""
            out.write(
                f"E{n:06d},{'mentor' if mentor else 'mentee'},Person {n},p{n}@acme.example,"
                f"{skills},{1 + n % 4 if mentor else ''},{department},Oslo,Europe/Oslo,en,"
                f"{1 + n % 9},{manager},,hris\n"
            )


def test_a_20000_person_import_keeps_every_service_up_and_is_counted_whole(
    big_stack: Stack, tmp_path: Path
) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    with Clients(env=big_stack.client_env()) as clients:
        program = clients.enrollment.CreateProgram(
            enrollment_pb2.CreateProgramRequest(organization_id=org, name="Enterprise mentoring")
        ).program_id
        export = tmp_path / "hris.csv"
        hris_export(export)

        imported = subprocess.run(
            [*CLI, "import", "-o", org, "-p", program, "--file", str(export)],
            capture_output=True,
            text=True,
            env={**big_stack.client_env(), "COLUMNS": "250"},
            timeout=600,
            check=False,
        )
        assert imported.returncode == 0, imported.stdout[-3000:] + imported.stderr[-3000:]
        assert f"{PEOPLE} rows: {PEOPLE} registered" in imported.stdout, imported.stdout[-3000:]

        mentors = PEOPLE // MENTOR_EVERY

        def counted() -> analytics_pb2.ProgramKpis | None:
            kpis = clients.analytics.GetProgramKpis(
                analytics_pb2.GetProgramKpisRequest(organization_id=org, program_id=program)
            )
            return kpis if kpis.mentors + kpis.mentees == PEOPLE else None

        kpis = eventually("analytics to count every participant", counted, timeout=300)
        assert (kpis.mentors, kpis.mentees, kpis.approvals) == (mentors, PEOPLE - mentors, PEOPLE)

    # Every process is still running and serving: nothing crashed under the load.
    time.sleep(2)
    for managed in big_stack.processes:
        assert managed.process.poll() is None, f"{managed.name} exited:\n{big_stack.tail(managed)}"
        if managed.name in SERVICES:
            with grpc.insecure_channel(managed.address) as channel:
                health = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=10
                )
                assert health.status == health_pb2.HealthCheckResponse.SERVING, managed.name
