"""Reading an HRIS CSV export for `mentoring programs import`. Pure: rows in, rows or errors out.

Columns (header row required, any order): hr_person_id, role, name, email, skills (separated
by ";"), capacity, department, location, timezone, languages (";"), job_level, manager_id,
cohort_id, campaign; and optionally `answer.<question id>` per application question.
Field names in errors are the RegisterParticipant field names, as the service reports them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

COLUMNS = (
    "hr_person_id",
    "role",
    "name",
    "email",
    "skills",
    "capacity",
    "department",
    "location",
    "timezone",
    "languages",
    "job_level",
    "manager_id",
    "cohort_id",
    "campaign",
)
REQUIRED_COLUMNS = ("hr_person_id", "role", "name", "email", "skills")
ANSWER_PREFIX = "answer."
ROLES = ("mentor", "mentee")


class CsvFormatError(ValueError):
    """The file as a whole cannot be imported (no header, missing or unknown columns)."""


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that cannot be imported: its row number (the header is row 1), field, problem."""

    row: int
    hr_person_id: str
    field: str
    problem: str


@dataclass(frozen=True, slots=True)
class ImportRow:
    row: int
    hr_person_id: str
    role: str
    name: str
    email: str
    skills: tuple[str, ...]
    capacity: int
    department: str = ""
    location: str = ""
    timezone: str = ""
    languages: tuple[str, ...] = ()
    job_level: int = 0
    manager_id: str = ""
    cohort_id: str = ""
    campaign: str = ""
    answers: dict[str, str] = field(default_factory=dict)


class _Bad(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field, self.problem = field, problem


def check_header(header: Iterable[str] | None) -> tuple[str, ...]:
    columns = tuple((c or "").strip() for c in header or ())
    if not columns:
        raise CsvFormatError("the file is empty: a header row is required")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise CsvFormatError(f"missing column(s): {', '.join(missing)}")
    unknown = [c for c in columns if c not in COLUMNS and not c.startswith(ANSWER_PREFIX)]
    if unknown:
        raise CsvFormatError(f"unknown column(s): {', '.join(unknown)}")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise CsvFormatError(f"repeated column(s): {', '.join(repeated)}")
    return columns


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(";") if part.strip())


def _whole(field: str, value: str) -> int:
    if not value:
        return 0
    try:
        number = int(value)
    except ValueError:
        raise _Bad(field, f"must be a whole number, got {value!r}") from None
    if number < 0:
        raise _Bad(field, "must not be negative")
    return number


def parse_row(row: int, record: Mapping[str, str | None]) -> ImportRow | RowError:
    """One data row; only what the file format itself decides is checked here (role, numbers).
    Everything else is the service's to judge, so the rules live in one place."""
    values = {key.strip(): (value or "").strip() for key, value in record.items() if key}
    hr_person_id = values.get("hr_person_id", "")
    if None in record:
        extra = record[None]  # type: ignore[index]
        return RowError(row, hr_person_id, "row", f"has {len(extra or [])} value(s) too many")
    try:
        if not hr_person_id:
            raise _Bad("profile.hr_person_id", "is required to import (it makes import repeatable)")
        role = values.get("role", "").lower()
        if role not in ROLES:
            raise _Bad("role", f"must be mentor or mentee, got {values.get('role', '')!r}")
        return ImportRow(
            row=row,
            hr_person_id=hr_person_id,
            role=role,
            name=values.get("name", ""),
            email=values.get("email", ""),
            skills=_split(values.get("skills", "")),
            capacity=_whole("capacity", values.get("capacity", "")),
            department=values.get("department", ""),
            location=values.get("location", ""),
            timezone=values.get("timezone", ""),
            languages=tuple(lang.lower() for lang in _split(values.get("languages", ""))),
            job_level=_whole("profile.job_level", values.get("job_level", "")),
            manager_id=values.get("manager_id", ""),
            cohort_id=values.get("cohort_id", ""),
            campaign=values.get("campaign", ""),
            answers={
                key.removeprefix(ANSWER_PREFIX): value
                for key, value in values.items()
                if key.startswith(ANSWER_PREFIX) and value
            },
        )
    except _Bad as bad:
        return RowError(row, hr_person_id, bad.field, bad.problem)


def read_rows(lines: Iterable[str]) -> Iterator[ImportRow | RowError]:
    """Every data row of a CSV export, numbered as a spreadsheet shows it (header = row 1),
    read as they are consumed. The header is checked at once, before any row is asked for."""
    reader = csv.DictReader(lines)
    check_header(reader.fieldnames)
    return _records(reader)


def _records(reader: csv.DictReader[str]) -> Iterator[ImportRow | RowError]:
    for record in reader:
        if not any((v or "").strip() for k, v in record.items() if k is not None):
            continue  # a line of empty cells
        # The line the record ends on: blank lines are skipped by the reader, not by the count.
        yield parse_row(reader.line_num, record)


def count_rows(lines: Iterable[str]) -> int:
    """How many rows read_rows yields, without building them (for a progress bar)."""
    reader = csv.reader(lines)
    next(reader, None)  # the header
    return sum(1 for record in reader if any(cell.strip() for cell in record))
