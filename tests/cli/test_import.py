"""`mentoring programs import`: rows in, a per-row report out; importing twice changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from mentoring.cli_programs import field_of, import_rows, registration_request
from services.common.api import common_pb2, enrollment_pb2
from services.enrollment.hris_csv import ImportRow, RowError, read_rows

CLI = [sys.executable, "-m", "mentoring.cli_programs"]
HEADER = (
    "hr_person_id,role,name,email,skills,capacity,department,location,timezone,languages,"
    "job_level,manager_id,cohort_id,campaign\n"
)


class Failure(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class FakeEnrollment:
    """Registration as the service does it: idempotent on e-mail and role, checks e-mails."""

    def __init__(self) -> None:
        self.people: dict[tuple[str, int], enrollment_pb2.Participant] = {}
        self.calls: list[enrollment_pb2.RegisterParticipantRequest] = []
        self.down = False

    def RegisterParticipant(
        self, request: enrollment_pb2.RegisterParticipantRequest
    ) -> enrollment_pb2.Participant:
        self.calls.append(request)
        if self.down:
            raise Failure(grpc.StatusCode.UNAVAILABLE, "connection refused")
        if "@" not in request.email:
            raise Failure(grpc.StatusCode.INVALID_ARGUMENT, "email: is not an e-mail address")
        key = (request.email, request.role)
        if key not in self.people:
            self.people[key] = enrollment_pb2.Participant(
                participant_id=f"p{len(self.people) + 1}",
                email=request.email,
                status=enrollment_pb2.PARTICIPANT_STATUS_REGISTERED,
            )
        return self.people[key]

    def ListParticipants(
        self, request: enrollment_pb2.ListParticipantsRequest
    ) -> enrollment_pb2.ListParticipantsResponse:
        # Two pages, to prove the importer reads them all.
        people = sorted(self.people.values(), key=lambda p: p.participant_id)
        start = int(request.page_token or 0)
        page = people[start : start + 1]
        token = str(start + 1) if start + 1 < len(people) else ""
        return enrollment_pb2.ListParticipantsResponse(participants=page, next_page_token=token)


CSV = HEADER + (
    "E1,mentor,Ada,ada@example.org,python;go,2,R&D,Oslo,Europe/Oslo,en;no,5,E0,,intranet\n"
    "E2,mentee,Bob,bob-at-example.org,python,,,,,,,E1,,\n"
    "E3,boss,Cy,cy@example.org,go,,,,,,,,,\n"
    "E4,mentee,Di,di@example.org,go,,,,,,,,,\n"
)


def rows() -> list[ImportRow | RowError]:
    return list(read_rows(CSV.splitlines(keepends=True)))


def test_import_reports_bad_rows_by_row_and_field_and_twice_changes_nothing() -> None:
    service = FakeEnrollment()
    first = import_rows(service, "org", "prog", rows())
    assert (first.registered, first.unchanged) == (2, 0)
    assert [(p.row, p.hr_person_id, p.field) for p in first.problems] == [
        (3, "E2", "email"),
        (4, "E3", "role"),
    ]
    assert first.problems[0].problem == "is not an e-mail address"
    assert first.rows == 4

    again = import_rows(service, "org", "prog", rows())
    assert (again.registered, again.applied, again.unchanged) == (0, 0, 2)
    assert [(p.row, p.field) for p in again.problems] == [(3, "email"), (4, "role")]
    assert len(service.people) == 2


def test_the_same_person_twice_in_one_file_is_unchanged_the_second_time() -> None:
    service = FakeEnrollment()
    text = HEADER + "E1,mentee,Ada,ada@x.org,go,,,,,,,,,\n" * 2
    report = import_rows(service, "org", "prog", read_rows(text.splitlines(keepends=True)))
    assert (report.registered, report.unchanged, report.problems) == (1, 1, [])


def test_an_outage_stops_the_import_instead_of_blaming_rows() -> None:
    service = FakeEnrollment()
    service.down = True
    with pytest.raises(grpc.RpcError):
        import_rows(service, "org", "prog", rows())


def test_a_row_becomes_a_registration_request() -> None:
    row = rows()[0]
    assert isinstance(row, ImportRow)
    request = registration_request("org", "prog", row)
    assert request.role == common_pb2.ROLE_MENTOR
    assert (request.display_name, request.email, request.capacity) == ("Ada", "ada@example.org", 2)
    assert list(request.skills) == ["python", "go"]
    assert request.profile.hr_person_id == "E1"
    assert request.profile.manager_id == "E0"
    assert request.profile.timezone == "Europe/Oslo"
    assert list(request.profile.languages) == ["en", "no"]
    assert request.profile.job_level == 5
    assert request.campaign == "intranet"


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ("email: is not an e-mail address", ("email", "is not an e-mail address")),
        ("answers[goal]: is required", ("answers[goal]", "is required")),
        (
            "profile.languages[0]: must be a code: e.g. en",
            ("profile.languages[0]", "must be a code: e.g. en"),
        ),
        ("something went wrong", ("", "something went wrong")),
        ("internal error: x", ("", "internal error: x")),
    ],
)
def test_the_field_comes_from_the_details_before_the_colon(
    details: str, expected: tuple[str, str]
) -> None:
    assert field_of(details) == expected


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
