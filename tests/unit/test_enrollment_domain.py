"""Enrollment rules: which programs and registrations are valid, naming the bad field."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.errors import InvalidArgument
from services.enrollment.domain import (
    MAX_CAPACITY,
    MAX_SKILLS,
    MENTEE,
    MENTOR,
    RegistrationDraft,
    normalize_skills,
    validate_program,
    validate_registration,
)


def registration(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "organization_id": "org-1",
        "program_id": "prog-1",
        "role": MENTOR,
        "display_name": "Ada Lovelace",
        "email": "ada@example.org",
        "skills": ["python"],
        "capacity": 2,
    }
    fields.update(overrides)
    return fields


def invalid_field(**overrides: Any) -> str:
    with pytest.raises(InvalidArgument) as caught:
        validate_registration(**registration(**overrides))
    # The message starts with the field too: the gRPC details show it to the caller.
    assert str(caught.value).startswith(f"{caught.value.field}: ")
    return caught.value.field


# --- validate_registration: one bad field at a time --------------------------------------


def test_a_valid_mentor_and_mentee_pass() -> None:
    mentor = validate_registration(**registration())
    assert mentor == RegistrationDraft(
        "org-1", "prog-1", MENTOR, "Ada Lovelace", "ada@example.org", ("python",), 2
    )
    mentee = validate_registration(**registration(role=MENTEE, capacity=0))
    assert mentee.role == MENTEE
    assert mentee.capacity == 0


@pytest.mark.parametrize("value", ["", "has space", "-leading-dash", "x" * 65, "ünï", "a/b"])
def test_bad_organization_id(value: str) -> None:
    assert invalid_field(organization_id=value) == "organization_id"


@pytest.mark.parametrize("value", ["", "has space", "x" * 65, "a/b"])
def test_bad_program_id(value: str) -> None:
    assert invalid_field(program_id=value) == "program_id"


def test_longest_ids_pass() -> None:
    draft = validate_registration(**registration(organization_id="o" * 64, program_id="p" * 64))
    assert draft.organization_id == "o" * 64
    assert draft.program_id == "p" * 64


@pytest.mark.parametrize("value", [None, "", "admin", "Mentor", "ROLE_MENTOR"])
def test_bad_role(value: str | None) -> None:
    assert invalid_field(role=value) == "role"


@pytest.mark.parametrize("value", ["", "   ", "\t\n", "x" * 201])
def test_bad_display_name(value: str) -> None:
    assert invalid_field(display_name=value) == "display_name"


def test_display_name_is_trimmed_and_may_be_200_characters() -> None:
    assert validate_registration(**registration(display_name="  Ada  ")).display_name == "Ada"
    long_name = "x" * 200
    assert validate_registration(**registration(display_name=long_name)).display_name == long_name


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "no-at-sign.org",
        "ada@",
        "@example.org",
        "ada@example",
        "ada@@example.org",
        "ada lovelace@example.org",
        "a" * 250 + "@ex.org",
    ],
)
def test_bad_email(value: str) -> None:
    assert invalid_field(email=value) == "email"


def test_email_is_trimmed_and_lower_cased() -> None:
    draft = validate_registration(**registration(email="  Ada@Example.ORG "))
    assert draft.email == "ada@example.org"


def test_no_skills() -> None:
    assert invalid_field(skills=[]) == "skills"


def test_too_many_skills() -> None:
    skills = [f"skill {i}" for i in range(MAX_SKILLS + 1)]
    assert invalid_field(skills=skills) == "skills"


def test_the_skill_limit_counts_distinct_skills() -> None:
    exactly = [f"skill {i}" for i in range(MAX_SKILLS)]
    # Duplicates (after normalisation) do not count toward the limit.
    skills = exactly + [s.upper() for s in exactly]
    assert len(validate_registration(**registration(skills=skills)).skills) == MAX_SKILLS


@pytest.mark.parametrize(
    ("skills", "field"),
    [
        ([""], "skills[0]"),
        (["   "], "skills[0]"),
        (["python", "!bang"], "skills[1]"),
        (["python", "go", "-dash-first"], "skills[2]"),
        (["python", "x" * 65], "skills[1]"),
        (["café"], "skills[0]"),
        (["python", "semi;colon"], "skills[1]"),
    ],
)
def test_bad_skill_names_its_index(skills: list[str], field: str) -> None:
    assert invalid_field(skills=skills) == field


def test_skill_symbols_are_allowed() -> None:
    skills = ["C++", "C#", "node.js", "ci/cd", "r&d", "front-end", "x" * 64]
    draft = validate_registration(**registration(skills=skills))
    assert draft.skills == ("c++", "c#", "node.js", "ci/cd", "r&d", "front-end", "x" * 64)


@pytest.mark.parametrize("capacity", [0, -1, MAX_CAPACITY + 1, 100])
def test_bad_mentor_capacity(capacity: int) -> None:
    assert invalid_field(role=MENTOR, capacity=capacity) == "capacity"


@pytest.mark.parametrize("capacity", [1, MAX_CAPACITY])
def test_mentor_capacity_bounds_pass(capacity: int) -> None:
    assert MAX_CAPACITY == 20
    assert validate_registration(**registration(capacity=capacity)).capacity == capacity


@pytest.mark.parametrize("capacity", [1, 5, -1])
def test_mentee_capacity_must_be_zero(capacity: int) -> None:
    assert invalid_field(role=MENTEE, capacity=capacity) == "capacity"


def test_the_first_bad_field_is_named() -> None:
    everything_wrong = registration(
        organization_id="",
        program_id="",
        role=None,
        display_name="",
        email="",
        skills=[],
        capacity=99,
    )
    with pytest.raises(InvalidArgument) as caught:
        validate_registration(**everything_wrong)
    assert caught.value.field == "organization_id"


# --- skills normalisation ----------------------------------------------------------------


def test_skills_are_lower_cased_whitespace_folded_and_deduplicated_in_order() -> None:
    raw = [
        "  Machine   Learning ",
        "PYTHON",
        "data\tscience\n",
        "python",
        "machine learning",
        "Go",
        "Data Science",
    ]
    expected = ("machine learning", "python", "data science", "go")
    assert normalize_skills(raw) == expected
    assert validate_registration(**registration(skills=raw)).skills == expected


def test_normalisation_keeps_the_first_seen_order() -> None:
    assert normalize_skills(["b", "a", "B", "c", "A"]) == ("b", "a", "c")


# --- validate_program ----------------------------------------------------------------------


def test_a_valid_program() -> None:
    draft = validate_program("org-1", "  Women in Tech  ", "  grow leaders  ")
    assert draft.organization_id == "org-1"
    assert draft.name == "Women in Tech"
    assert draft.objective == "grow leaders"


@pytest.mark.parametrize("value", ["", "bad id", "x" * 65])
def test_program_bad_organization_id(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_program(value, "name", "")
    assert caught.value.field == "organization_id"


@pytest.mark.parametrize("value", ["", "   ", "x" * 201])
def test_program_bad_name(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_program("org-1", value, "")
    assert caught.value.field == "name"


def test_program_objective_is_optional_and_capped() -> None:
    assert validate_program("org-1", "n", "").objective == ""
    assert validate_program("org-1", "n", "y" * 5000).objective == "y" * 2000
