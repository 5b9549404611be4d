"""`mentoring programs import`: rows in, a per-row report out; importing twice changes nothing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from mentoring.cli_programs import import_row, import_rows
from services.common.api import common_pb2, enrollment_pb2
from services.enrollment.hris_csv import ImportRow, RowError, read_rows

CLI = [sys.executable, "-m", "mentoring.cli_programs"]
HEADER = (
    "hr_person_id,role,name,email,skills,capacity,department,location,timezone,languages,"
    "job_level,manager_id,cohort_id,campaign\n"
)
OUTCOME = enrollment_pb2.ImportOutcome


class Failure(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class FakeEnrollment:
    """ImportParticipants as the service does it: idempotent on HR id and role, checks
    e-mails row by row."""

    def __init__(self) -> None:
        self.people: dict[tuple[str, int], enrollment_pb2.ImportRow] = {}
        self.calls: list[enrollment_pb2.ImportParticipantsRequest] = []
        self.down = False
        self.on_call: Callable[[], None] = lambda: None

    def ImportParticipants(
        self, request: enrollment_pb2.ImportParticipantsRequest
    ) -> enrollment_pb2.ImportParticipantsResponse:
        self.on_call()
        self.calls.append(request)
        if self.down:
            raise Failure(grpc.StatusCode.UNAVAILABLE, "connection refused")
        reply = enrollment_pb2.ImportParticipantsResponse()
        for row in request.rows:
            result = reply.results.add(row=row.row)
            key = (row.profile.hr_person_id, row.role)
            content = enrollment_pb2.ImportRow()
            content.CopyFrom(row)
            content.row = 0
            if "@" not in row.email:
                result.outcome = OUTCOME.IMPORT_OUTCOME_FAILED
                result.field, result.reason = "email", "is not an e-mail address"
                continue
            if key not in self.people:
                result.outcome = OUTCOME.IMPORT_OUTCOME_REGISTERED
            elif self.people[key] == content:
                result.outcome = OUTCOME.IMPORT_OUTCOME_UNCHANGED
            else:
                result.outcome = OUTCOME.IMPORT_OUTCOME_UPDATED
            self.people[key] = content
            result.participant_id = f"p-{key[0]}"
        return reply


CSV = HEADER + (
    "E1,mentor,Ada,ada@example.org,python;go,2,R&D,Oslo,Europe/Oslo,en;no,5,E0,,intranet\n"
    "E2,mentee,Bob,bob-at-example.org,python,,,,,,,E1,,\n"
    "E3,boss,Cy,cy@example.org,go,,,,,,,,,\n"
    "E4,mentee,Di,di@example.org,go,,,,,,,,,\n"
)


def rows(text: str = CSV) -> list[ImportRow | RowError]:
    return list(read_rows(text.splitlines(keepends=True)))


def test_import_reports_bad_rows_by_row_and_field_and_twice_changes_nothing() -> None:
    service = FakeEnrollment()
    first = import_rows(service, "org", "prog", rows())
    assert (first.registered, first.unchanged) == (2, 0)
    assert [(p.row, p.hr_person_id, p.field) for p in first.problems] == [
        (4, "E3", "role"),  # refused by the file's own checks, never sent
        (3, "E2", "email"),
    ]
    assert first.problems[1].problem == "is not an e-mail address"
    assert first.rows == 4
    assert [r.row for call in service.calls for r in call.rows] == [2, 3, 5]

    again = import_rows(service, "org", "prog", rows())
    assert (again.registered, again.applied, again.updated, again.unchanged) == (0, 0, 0, 2)
    assert sorted((p.row, p.field) for p in again.problems) == [(3, "email"), (4, "role")]
    assert len(service.people) == 2


def test_the_same_person_twice_in_one_file_is_unchanged_the_second_time() -> None:
    service = FakeEnrollment()
    report = import_rows(
        service, "org", "prog", rows(HEADER + "E1,mentee,Ada,ada@x.org,go,,,,,,,,,\n" * 2)
    )
    assert (report.registered, report.unchanged, report.problems) == (1, 1, [])


def test_a_changed_row_is_reported_as_updated() -> None:
    service = FakeEnrollment()
    import_rows(service, "org", "prog", rows())
    changed = import_rows(service, "org", "prog", rows(CSV.replace("Di,", "Dina,")))
    assert (changed.registered, changed.updated, changed.unchanged) == (0, 1, 1)


def test_an_outage_stops_the_import_instead_of_blaming_rows() -> None:
    service = FakeEnrollment()
    service.down = True
    with pytest.raises(grpc.RpcError):
        import_rows(service, "org", "prog", rows())


def test_the_file_is_sent_in_calls_while_it_is_read() -> None:
    """Memory holds a few calls' rows, however long the file: rows are read as calls go."""
    service = FakeEnrollment()
    read = 0
    ahead: list[int] = []

    def people() -> Iterator[ImportRow | RowError]:
        nonlocal read
        for n in range(1000):
            read += 1
            yield ImportRow(n + 2, f"E{n}", "mentee", f"P{n}", f"p{n}@x.org", ("go",), 0)

    def answered() -> int:
        return sum(len(c.rows) for c in service.calls)

    service.on_call = lambda: ahead.append(read - answered())
    done: list[int] = []
    report = import_rows(service, "org", "prog", people(), done.append, batch_rows=50, in_flight=2)
    assert report.registered == 1000
    assert sum(done) == 1000
    assert [len(c.rows) for c in service.calls] == [50] * 20
    assert max(ahead) <= 50 * 3  # the call being made, one outstanding, one being read


def test_a_row_becomes_an_import_row() -> None:
    row = rows()[0]
    assert isinstance(row, ImportRow)
    request = import_row(row)
    assert (request.row, request.role) == (2, common_pb2.ROLE_MENTOR)
    assert (request.display_name, request.email, request.capacity) == ("Ada", "ada@example.org", 2)
    assert list(request.skills) == ["python", "go"]
    assert request.profile.hr_person_id == "E1"
    assert request.profile.manager_id == "E0"
    assert request.profile.timezone == "Europe/Oslo"
    assert list(request.profile.languages) == ["en", "no"]
    assert request.profile.job_level == 5
    assert request.campaign == "intranet"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hr_person_id,role,name,email\nE1,mentor,A,a@x.org\n", "missing column(s): skills"),
        ("", "a header row is required"),
    ],
)
def test_a_file_that_is_not_an_export_is_refused_before_anything_is_sent(
    tmp_path: Path, text: str, message: str
) -> None:
    people = tmp_path / "people.csv"
    people.write_text(text)
    result = subprocess.run(
        [*CLI, "import", "-o", "org", "-p", "prog", "--file", str(people)],
        capture_output=True,
        text=True,
        # Nothing listens there: the file is refused before any connection is tried.
        env={"ENROLLMENT_ADDR": "127.0.0.1:1", "COLUMNS": "200", "PATH": ""},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
