"""Program lifecycle rules, application answers, screening and HRIS CSV rows. Pure: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.common.errors import FailedPrecondition, InvalidArgument
from services.enrollment import domain
from services.enrollment.domain import (
    APPLIED,
    APPROVE,
    CLOSED,
    DRAFT,
    MULTI_CHOICE,
    OPEN,
    REGISTERED,
    REJECT,
    REJECTED,
    RUNNING,
    SCALE,
    SINGLE_CHOICE,
    TEXT,
    WAITLIST,
    WAITLISTED,
    WITHDRAW,
    WITHDRAWN,
    Question,
)
from services.enrollment.hris_csv import (
    CsvFormatError,
    ImportRow,
    RowError,
    check_header,
    parse_row,
    read_rows,
)

# --- program status ------------------------------------------------------------------------


@pytest.mark.parametrize(("current", "target"), [(DRAFT, OPEN), (OPEN, RUNNING), (RUNNING, CLOSED)])
def test_each_program_status_moves_one_step_forward(current: str, target: str) -> None:
    assert domain.program_transition(current, target) is True


@pytest.mark.parametrize("status", [DRAFT, OPEN, RUNNING, CLOSED])
def test_asking_for_the_current_status_changes_nothing(status: str) -> None:
    assert domain.program_transition(status, status) is False


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (DRAFT, RUNNING),
        (DRAFT, CLOSED),
        (OPEN, DRAFT),
        (OPEN, CLOSED),
        (RUNNING, OPEN),
        (RUNNING, DRAFT),
        (CLOSED, OPEN),
        (CLOSED, RUNNING),
        (CLOSED, DRAFT),
    ],
)
def test_skipping_or_going_back_is_refused(current: str, target: str) -> None:
    with pytest.raises(FailedPrecondition, match=r"^status: "):
        domain.program_transition(current, target)


@pytest.mark.parametrize("target", [None, "", "paused", "OPEN"])
def test_an_unknown_target_status_names_the_field(target: str | None) -> None:
    with pytest.raises(InvalidArgument) as caught:
        domain.program_transition(OPEN, target)
    assert caught.value.field == "status"


def test_a_new_program_is_open_unless_asked_to_be_a_draft() -> None:
    assert domain.initial_status(None) == OPEN
    assert domain.initial_status(DRAFT) == DRAFT
    assert domain.initial_status(OPEN) == OPEN
    for status in (RUNNING, CLOSED):
        with pytest.raises(InvalidArgument) as caught:
            domain.initial_status(status)
        assert caught.value.field == "initial_status"


@pytest.mark.parametrize(
    ("status", "accepts"), [(DRAFT, False), (OPEN, True), (RUNNING, True), (CLOSED, False)]
)
def test_registration_needs_an_open_or_running_program(status: str, accepts: bool) -> None:
    if accepts:
        domain.require_accepting(status)
    else:
        with pytest.raises(FailedPrecondition, match=r"^program_id: .*open or running"):
            domain.require_accepting(status)


def test_only_a_closed_program_cannot_be_edited() -> None:
    for status in (DRAFT, OPEN, RUNNING):
        domain.require_editable(status)
    with pytest.raises(FailedPrecondition):
        domain.require_editable(CLOSED)


# --- program settings ----------------------------------------------------------------------


def settings(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "objectives": ["leadership", "diversity", "leadership"],
        "measurable_targets": " 80% promoted ",
        "target_audience": "new managers",
        "timeframe_months": 6,
        "meeting_cadence_days": 14,
        "questions": [
            Question("goal", "Your goal?", TEXT, (), True),
            Question("track", "Track", SINGLE_CHOICE, ("Tech", "Business"), False),
        ],
    }
    fields.update(overrides)
    return fields


def bad_setting(**overrides: Any) -> str:
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_settings(**settings(**overrides))
    return caught.value.field


def test_valid_settings_are_normalised() -> None:
    draft = domain.validate_settings(**settings())
    assert draft.objectives == ("leadership", "diversity")
    assert draft.measurable_targets == "80% promoted"
    assert draft.timeframe_months == 6
    assert [q.question_id for q in draft.questions] == ["goal", "track"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"objectives": ["leadership", None]}, "settings.objectives[1]"),
        ({"objectives": ["fun"]}, "settings.objectives[0]"),
        ({"timeframe_months": 61}, "settings.timeframe_months"),
        ({"meeting_cadence_days": 366}, "settings.meeting_cadence_days"),
        ({"target_audience": "x" * 2001}, "settings.target_audience"),
        (
            {"questions": [Question("bad id!", "Q", TEXT)]},
            "settings.application_questions[0].question_id",
        ),
        ({"questions": [Question("q", " ", TEXT)]}, "settings.application_questions[0].text"),
        ({"questions": [Question("q", "Q", None)]}, "settings.application_questions[0].kind"),
        (
            {"questions": [Question("q", "Q", SINGLE_CHOICE, ("only",))]},
            "settings.application_questions[0].options",
        ),
        (
            {"questions": [Question("q", "Q", MULTI_CHOICE, ("a;b", "c"))]},
            "settings.application_questions[0].options[0]",
        ),
        (
            {"questions": [Question("q", "Q", SINGLE_CHOICE, ("Yes", "yes"))]},
            "settings.application_questions[0].options[1]",
        ),
        (
            {"questions": [Question("q", "Q", SCALE, ("1",))]},
            "settings.application_questions[0].options",
        ),
        (
            {"questions": [Question("q", "Q", TEXT), Question("q", "Again", TEXT)]},
            "settings.application_questions[1].question_id",
        ),
    ],
)
def test_bad_settings_name_the_field(overrides: dict[str, Any], field: str) -> None:
    assert bad_setting(**overrides) == field


# --- application answers -------------------------------------------------------------------

QUESTIONS = (
    Question("goal", "What do you want to learn?", TEXT, (), True),
    Question("track", "Track", SINGLE_CHOICE, ("Tech", "Business"), True),
    Question("topics", "Topics", MULTI_CHOICE, ("Python", "Go", "SQL"), False),
    Question("confidence", "Confidence", SCALE, (), False),
)


def answers(**overrides: str) -> dict[str, str]:
    return {"goal": "Lead a team", "track": "tech", **overrides}


def bad_answer(given: dict[str, str]) -> str:
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_answers(QUESTIONS, given)
    assert str(caught.value).startswith(f"{caught.value.field}: ")
    return caught.value.field


def test_answers_are_normalised_to_the_options_spelling() -> None:
    got = domain.validate_answers(
        QUESTIONS, answers(topics=" go ; python;go;", confidence="4", goal=" Lead a team ")
    )
    assert got == {"goal": "Lead a team", "track": "Tech", "topics": "Go;Python", "confidence": "4"}


def test_optional_questions_may_be_left_out() -> None:
    assert domain.validate_answers(QUESTIONS, answers()) == {"goal": "Lead a team", "track": "Tech"}


def test_no_questions_no_answers() -> None:
    assert domain.validate_answers((), {}) == {}


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"track": "Tech"}, "answers[goal]"),
        (answers(goal="   "), "answers[goal]"),
        (answers(goal="x" * 2001), "answers[goal]"),
        ({"goal": "g"}, "answers[track]"),
        (answers(track="Art"), "answers[track]"),
        (answers(topics="Python;Rust"), "answers[topics]"),
        (answers(confidence="6"), "answers[confidence]"),
        (answers(confidence="0"), "answers[confidence]"),
        (answers(confidence="3.5"), "answers[confidence]"),
        (answers(shoe_size="44"), "answers[shoe_size]"),
    ],
)
def test_a_bad_answer_names_its_question(given: dict[str, str], field: str) -> None:
    assert bad_answer(given) == field


def test_a_required_multi_choice_needs_a_real_choice() -> None:
    required = (Question("topics", "Topics", MULTI_CHOICE, ("A", "B"), True),)
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_answers(required, {"topics": " ; ;"})
    assert caught.value.field == "answers[topics]"


# --- screening -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "action", "after"),
    [
        (APPLIED, APPROVE, REGISTERED),
        (WAITLISTED, APPROVE, REGISTERED),
        (APPLIED, REJECT, REJECTED),
        (WAITLISTED, REJECT, REJECTED),
        (APPLIED, WAITLIST, WAITLISTED),
        (APPLIED, WITHDRAW, WITHDRAWN),
        (WAITLISTED, WITHDRAW, WITHDRAWN),
        (REGISTERED, WITHDRAW, WITHDRAWN),
    ],
)
def test_screening_moves(current: str, action: str, after: str) -> None:
    assert domain.participant_transition(current, action) == after


@pytest.mark.parametrize(
    ("current", "action"),
    [(REGISTERED, APPROVE), (REJECTED, REJECT), (WAITLISTED, WAITLIST), (WITHDRAWN, WITHDRAW)],
)
def test_repeating_a_screening_step_is_a_harmless_retry(current: str, action: str) -> None:
    assert domain.participant_transition(current, action) is None


@pytest.mark.parametrize(
    ("current", "action"),
    [
        (REJECTED, APPROVE),
        (WITHDRAWN, APPROVE),
        (REGISTERED, REJECT),
        (WITHDRAWN, REJECT),
        (REGISTERED, WAITLIST),
        (REJECTED, WAITLIST),
        (REJECTED, WITHDRAW),
    ],
)
def test_screening_steps_that_make_no_sense_are_refused(current: str, action: str) -> None:
    with pytest.raises(FailedPrecondition, match=r"^participant_id: "):
        domain.participant_transition(current, action)


@pytest.mark.parametrize("action", [REJECT, WITHDRAW])
def test_rejecting_and_withdrawing_need_a_reason(action: str) -> None:
    for reason in ("", "   "):
        with pytest.raises(InvalidArgument) as caught:
            domain.require_reason(reason, action)
        assert caught.value.field == "reason"
    assert domain.require_reason(" moved on ", action) == "moved on"


def test_approving_and_waitlisting_take_an_optional_reason() -> None:
    assert domain.require_reason("", APPROVE) == ""
    assert domain.require_reason("full", WAITLIST) == "full"
    with pytest.raises(InvalidArgument):
        domain.require_reason("x" * 501, APPROVE)


def test_who_starts_applied() -> None:
    assert domain.initial_participant_status(True) == APPLIED
    assert domain.initial_participant_status(False) == REGISTERED


def test_only_active_people_update_their_profile() -> None:
    for status in (APPLIED, WAITLISTED, REGISTERED):
        domain.require_updatable(status)
    for status in (REJECTED, WITHDRAWN):
        with pytest.raises(FailedPrecondition):
            domain.require_updatable(status)


def test_campaign_is_trimmed_and_capped() -> None:
    assert domain.validate_campaign("  spring-mail ") == "spring-mail"
    assert domain.validate_campaign("") == ""
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_campaign("x" * 101)
    assert caught.value.field == "campaign"


def test_cohort_rules() -> None:
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 6, 30, tzinfo=UTC)
    assert domain.validate_cohort("", " Spring ", start, end) == domain.CohortDraft(None, "Spring")
    assert domain.validate_cohort("2025-spring", "Spring", None, None).cohort_id == "2025-spring"
    for args, field in (
        (("bad id", "Spring", None, None), "cohort_id"),
        (("", "  ", None, None), "name"),
        (("", "Spring", end, start), "ends_on"),
        (("", "Spring", start, start), "ends_on"),
    ):
        with pytest.raises(InvalidArgument) as caught:
            domain.validate_cohort(*args)  # type: ignore[arg-type]
        assert caught.value.field == field


# --- HRIS CSV rows -------------------------------------------------------------------------

HEADER = (
    "hr_person_id,role,name,email,skills,capacity,department,location,timezone,languages,"
    "job_level,manager_id,cohort_id,campaign"
)


def record(**overrides: str) -> dict[str, str | None]:
    fields: dict[str, str | None] = dict.fromkeys(HEADER.split(","), "")
    fields.update(
        hr_person_id="E1", role="Mentor", name="Ada", email="ada@example.org", skills="python"
    )
    fields.update(overrides)
    return fields


def test_a_full_row_is_parsed() -> None:
    row = parse_row(
        7,
        record(
            skills=" Python ; go;; ",
            capacity="2",
            department="R&D",
            location="Oslo",
            timezone="Europe/Oslo",
            languages="EN;no",
            job_level="5",
            manager_id="E0",
            cohort_id="2025-spring",
            campaign="intranet",
        ),
    )
    assert row == ImportRow(
        row=7,
        hr_person_id="E1",
        role="mentor",
        name="Ada",
        email="ada@example.org",
        skills=("Python", "go"),
        capacity=2,
        department="R&D",
        location="Oslo",
        timezone="Europe/Oslo",
        languages=("en", "no"),
        job_level=5,
        manager_id="E0",
        cohort_id="2025-spring",
        campaign="intranet",
    )


def test_empty_numbers_mean_zero_and_answers_come_from_answer_columns() -> None:
    row = parse_row(2, {**record(role="mentee"), "answer.goal": " grow ", "answer.track": ""})
    assert isinstance(row, ImportRow)
    assert (row.capacity, row.job_level) == (0, 0)
    assert row.answers == {"goal": "grow"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"hr_person_id": ""}, "profile.hr_person_id"),
        ({"role": "boss"}, "role"),
        ({"role": ""}, "role"),
        ({"capacity": "two"}, "capacity"),
        ({"capacity": "-1"}, "capacity"),
        ({"job_level": "senior"}, "profile.job_level"),
    ],
)
def test_a_row_the_format_rejects_names_row_and_field(
    overrides: dict[str, str], field: str
) -> None:
    error = parse_row(4, record(**overrides))
    assert isinstance(error, RowError)
    assert (error.row, error.field) == (4, field)
    assert error.problem


def test_rows_are_numbered_as_a_spreadsheet_shows_them() -> None:
    text = "\n".join(
        [
            HEADER,
            "E1,mentor,Ada,ada@x.org,python,2,,,,,,,,",
            "",
            "E2,nobody,Bob,bob@x.org,go,,,,,,,,,",
            "E3,mentee,Cy,cy@x.org,go,,,,,,,,,,,",
        ]
    )
    rows = list(read_rows(text.splitlines(keepends=True)))
    assert [type(r).__name__ for r in rows] == ["ImportRow", "RowError", "RowError"]
    assert [r.row for r in rows] == [2, 4, 5]
    assert isinstance(rows[1], RowError) and rows[1].field == "role"
    assert isinstance(rows[2], RowError) and rows[2].field == "row"  # too many values


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("", "empty"),
        ("hr_person_id,role,name,email", "missing column(s): skills"),
        (HEADER + ",shoe_size", "unknown column(s): shoe_size"),
        (HEADER + ",email", "repeated column(s): email"),
    ],
)
def test_a_bad_header_rejects_the_file(header: str, problem: str) -> None:
    with pytest.raises(CsvFormatError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        check_header(header.split(",") if header else None)


def test_answer_columns_are_allowed_in_the_header() -> None:
    assert "answer.goal" in check_header([*HEADER.split(","), "answer.goal"])
