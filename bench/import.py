"""Bulk import on the real stack, as a coordinator runs it.

    python bench/import.py [--rows 20000] [--consumers] [--seed 7]

Starts Apache Kafka, the MongoDB-wire server and the enrollment service as `make up` does,
writes an HRIS export of --rows people (one mentor for four mentees, skills, departments,
locations, languages), creates an open program over gRPC and times `mentoring programs import`
of the file, from start to exit: every row stored and its events published (the CLI ends after
the service has published the last call's events). Then imports the same file again (every row
unchanged) and checks nothing was created twice.

Reference row in the same run, on the same server: the participants' raw insert_many rate, the
same documents into a collection with the same indexes, in batches of the CLI's size, without
transactions or events: the database's floor for the rows alone.

With --consumers, matching, engagement and analytics run too, and the bench reports how many of
the import's participant-registered each had handled when the import ended, and when it caught
up (they share the database server and the machine with the import).
Target (issue 13): >= 2,000 rows/s, events included.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pymongo
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mentoring.cli_programs import BATCH_ROWS
from mentoring.stack import Ports, Stack, StackError
from services.common.api import enrollment_pb2, enrollment_pb2_grpc
from services.common.config import Settings
from services.enrollment.documents import Participant
from services.enrollment.hris_csv import COLUMNS

TARGET = 2000.0
ORG = "bench-org"
SKILLS = [f"skill-{n}" for n in range(60)]
DEPARTMENTS = ["R&D", "Sales", "Ops", "Finance", "Legal", "Support", "Marketing", "HR"]
PLACES = [("Oslo", "Europe/Oslo"), ("Lima", "America/Lima"), ("Pune", "Asia/Kolkata")]
LANGUAGES = ["en", "no", "es", "hi", "fr", "de"]
CLI = [sys.executable, "-m", "mentoring.cli_programs", "import"]
CONSUMERS = ("matching", "engagement", "analytics")


def write_export(path: Path, rows: int, rng: random.Random) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for n in range(rows):
            mentor = n % 5 == 0
            place, zone = rng.choice(PLACES)
            writer.writerow(
                [
                    f"E{n:06d}",
                    "mentor" if mentor else "mentee",
                    f"Person {n}",
                    f"person{n}@bench.example",
                    ";".join(rng.sample(SKILLS, 3)),
                    rng.randint(1, 4) if mentor else "",
                    rng.choice(DEPARTMENTS),
                    place,
                    zone,
                    ";".join(rng.sample(LANGUAGES, 2)),
                    rng.randint(1, 12),
                    f"E{n // 7:06d}" if n else "",
                    "",
                    "bench",
                ]
            )


def reference_rate(uri: str, rows: int) -> float:
    """Participants' raw insert_many rate: same shape, same indexes, no transaction, no events."""
    client: pymongo.MongoClient = pymongo.MongoClient(uri)
    try:
        collection = client["bench_reference"]["participants"]
        for spec in Participant._meta["index_specs"]:
            collection.create_index(spec["fields"], unique=spec.get("unique", False))
        now = datetime.now(UTC)
        docs = [
            {
                "organization_id": ORG,
                "program_id": "reference",
                "participant_id": str(uuid.uuid4()),
                "role": "mentee",
                "display_name": f"Person {n}",
                "email": f"person{n}@bench.example",
                "skills": ["skill-1", "skill-2", "skill-3"],
                "capacity": 0,
                "registered_at": now,
                "profile": os.urandom(90),
                "event_id": str(uuid.uuid4()),
                "status": "registered",
                "status_changed_at": now,
                "answers": {},
                "campaign": "bench",
                "hr_person_id": f"E{n:06d}",
                "import_digest": uuid.uuid4().hex,
            }
            for n in range(rows)
        ]
        start = time.perf_counter()
        for first in range(0, rows, BATCH_ROWS):
            collection.insert_many(docs[first : first + BATCH_ROWS])
        return rows / (time.perf_counter() - start)
    finally:
        client.close()


def consumed(metrics_port: int, topic: str, group: str) -> float:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "mentoring_events_consumed_total" and sample.labels.get("topic") == topic
    )


def run_import(stack: Stack, program: str, export: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [*CLI, "-o", ORG, "-p", program, "--file", str(export)],
        env={**stack.client_env(), "COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise StackError(f"import failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--consumers", action="store_true", help="run matching, engagement and analytics too"
    )
    parser.add_argument(
        "--catch-up-seconds",
        type=float,
        default=300.0,
        help="how long to wait for the consumers after the import",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = args.rows
    with tempfile.TemporaryDirectory() as work:
        export = Path(work) / "people.csv"
        write_export(export, args.rows, rng)
        stack = Stack(
            Ports.free(),
            log_dir=Path(work) / "logs",
            env={**os.environ, "LOG_LEVEL": "WARNING"},
        )
        try:
            stack.start_engines()
            services = ["enrollment", *(CONSUMERS if args.consumers else ())]
            started = [stack.start_service(name) for name in services]
            for managed in started:
                stack.wait_serving(managed, managed.address, timeout=120)
            reference = reference_rate(stack.mongodb.uri, args.rows)
            with grpc.insecure_channel(stack.ports.address("enrollment")) as channel:
                stub = enrollment_pb2_grpc.EnrollmentServiceStub(channel)
                program = stub.CreateProgram(
                    enrollment_pb2.CreateProgramRequest(organization_id=ORG, name="Bench import")
                ).program_id
            first, summary = run_import(stack, program, export)
            behind: dict[str, float] = {}
            caught_up: dict[str, float] = {}
            if args.consumers:
                ended = time.perf_counter()
                deadline = time.monotonic() + args.catch_up_seconds

                def handled(name: str) -> float:
                    port = stack.ports.metrics[name]
                    return consumed(port, "participant-registered", name)

                behind = {name: handled(name) for name in CONSUMERS}
                while time.monotonic() < deadline and len(caught_up) < len(CONSUMERS):
                    for name in set(CONSUMERS) - set(caught_up):
                        if handled(name) >= rows:
                            caught_up[name] = time.perf_counter() - ended
                    time.sleep(0.5)
                for name in set(CONSUMERS) - set(caught_up):
                    caught_up[name] = -handled(name)
            again, summary_again = run_import(stack, program, export)
            client: pymongo.MongoClient = pymongo.MongoClient(stack.mongodb.uri)
            database = Settings.from_env("enrollment", {}).mongodb_database
            stored = client[database]["participants"].count_documents({"program_id": program})
            client.close()
        finally:
            stack.stop()
    rate = rows / first
    print(f"\nbulk import on the real stack ({rows:,} rows, one program, CLI to exit)")
    print(f"  first import                     {rate:>8,.0f} rows/s  ({first:.1f} s)")
    print(f"    {summary}")
    print(f"  same file again                  {rows / again:>8,.0f} rows/s  ({again:.1f} s)")
    print(f"    {summary_again}")
    print(f"  participants stored              {stored:>8,}  (expected {rows:,})")
    for name, handled in behind.items():
        after = caught_up[name]
        late = f"caught up {after:.1f} s later" if after >= 0 else f"{-after:,.0f} after the wait"
        print(f"  {name:<11} handled at the end {handled:>8,.0f} registrations; {late}")
    print(f"  reference: raw insert_many       {reference:>8,.0f} rows/s  (same indexes)")
    print(f"  import / reference               {rate / reference:>8.2f}")
    verdict = "meets" if rate >= TARGET else "misses"
    print(f"  target >= {TARGET:,.0f} rows/s: {verdict}")
    return 0 if stored == rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
