"""The skill taxonomy: canonical names, ancestors and relatedness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.matching.domain import taxonomy as taxonomy_module
from services.matching.domain.taxonomy import EMPTY_TAXONOMY, Taxonomy

TREE = Taxonomy(
    parents={
        "Analytics": None,
        "data analysis": "analytics",
        "data  visualisation": "Analytics",
        "dashboards": "data visualisation",
        "Tableau": "dashboards",
        "programming": None,
        "python": "programming",
        "pandas": "Py",  # a parent given by synonym resolves to the canonical skill
        "sql": "programming",
    },
    synonyms={"Py": "python", "data viz": "Data Visualisation", "BI": "analytics"},
)

# --- canonical ---------------------------------------------------------------------------------


def test_canonical_lower_cases_and_folds_whitespace() -> None:
    assert TREE.canonical("  Data \t  Analysis ") == "data analysis"
    assert EMPTY_TAXONOMY.canonical("Machine   Learning") == "machine learning"


def test_canonical_resolves_synonyms_after_normalising() -> None:
    assert TREE.canonical("py") == "python"
    assert TREE.canonical(" DATA   VIZ ") == "data visualisation"
    assert TREE.canonical("bi") == "analytics"


def test_unknown_skill_is_its_own_canonical_name_without_parent() -> None:
    assert TREE.canonical("Rust") == "rust"
    assert TREE.parent("rust") is None
    assert TREE.ancestors("rust") == ()


# --- parents and ancestors ----------------------------------------------------------------------


def test_parent_and_ancestors_nearest_first() -> None:
    assert TREE.parent("tableau") == "dashboards"
    assert TREE.ancestors("Tableau") == ("dashboards", "data visualisation", "analytics")
    assert TREE.ancestors("data viz") == ("analytics",)
    assert TREE.parent("analytics") is None
    assert TREE.ancestors("analytics") == ()


def test_parent_named_by_synonym_is_canonical() -> None:
    assert TREE.parent("pandas") == "python"
    assert TREE.ancestors("pandas") == ("python", "programming")


def test_a_skill_known_only_as_a_parent_is_a_root() -> None:
    tree = Taxonomy(parents={"a": "b"})
    assert tree.parent("b") is None
    assert tree.ancestors("a") == ("b",)


def test_empty_parent_string_means_root() -> None:
    assert Taxonomy(parents={"a": " "}).parent("a") is None


def test_cycle_is_rejected_naming_the_skill() -> None:
    with pytest.raises(ValueError, match="cycle") as info:
        Taxonomy(parents={"a": "b", "b": "c", "c": "a"})
    assert "'a'" in str(info.value)


def test_cycle_reached_from_outside_names_a_skill_on_the_cycle() -> None:
    with pytest.raises(ValueError, match="cycle in the skill taxonomy at 'b'"):
        Taxonomy(parents={"x": "b", "b": "c", "c": "b"})


def test_own_parent_is_a_cycle() -> None:
    with pytest.raises(ValueError, match="'python'"):
        Taxonomy(parents={"Python": "python"})


def test_synonym_of_a_synonym_is_rejected() -> None:
    with pytest.raises(ValueError, match="itself a synonym"):
        Taxonomy(synonyms={"py": "python3", "python3": "python"})


def test_name_both_synonym_and_skill_is_rejected() -> None:
    with pytest.raises(ValueError, match="'py'"):
        Taxonomy(parents={"py": "programming"}, synonyms={"py": "python"})


def test_conflicting_entries_after_normalising_are_rejected() -> None:
    with pytest.raises(ValueError, match="two parents"):
        Taxonomy(parents={"SQL": "databases", "sql": "programming"})
    with pytest.raises(ValueError, match="points to both"):
        Taxonomy(synonyms={"JS": "javascript", "js": "typescript"})


def test_empty_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        Taxonomy(parents={"  ": "x"})
    with pytest.raises(ValueError, match="empty"):
        Taxonomy(synonyms={"x": ""})


def test_identity_synonym_is_harmless() -> None:
    tree = Taxonomy(parents={"python": "programming"}, synonyms={"Python": "python"})
    assert tree.canonical("PYTHON") == "python"
    assert tree.parent("Python") == "programming"


# --- relatedness --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("python", "python", 1.0),
        ("py", "python", 1.0),  # synonym
        ("Data Analysis", "data analysis", 1.0),  # case and whitespace
        ("python", "programming", 0.5),  # parent
        ("tableau", "analytics", 0.5),  # ancestor three levels up
        ("analytics", "tableau", 0.5),  # descendant
        ("python", "sql", 0.25),  # siblings
        ("data analysis", "data viz", 0.25),  # siblings via a synonym
        ("pandas", "sql", 0.0),  # cousins
        ("analytics", "programming", 0.0),  # two roots: parent None does not make siblings
        ("rust", "go", 0.0),  # both unknown
        ("rust", "python", 0.0),
    ],
)
def test_relatedness(a: str, b: str, expected: float) -> None:
    assert TREE.relatedness(a, b) == expected
    assert TREE.relatedness(b, a) == expected


def test_empty_taxonomy_relates_only_equal_names() -> None:
    assert EMPTY_TAXONOMY.relatedness("python", "Python") == 1.0
    assert EMPTY_TAXONOMY.relatedness("python", "sql") == 0.0


def test_relatedness_is_unchanged_when_the_cache_is_cleared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(taxonomy_module, "_CACHE_LIMIT", 3)
    tree = Taxonomy(parents={"python": "programming", "sql": "programming"})
    for _ in range(3):
        assert tree.relatedness("python", "sql") == 0.25
        assert tree.relatedness("Python", "programming") == 0.5
        assert tree.relatedness("x", "y") == 0.0
    assert len(tree._info) <= 3


# --- properties ---------------------------------------------------------------------------------

NAMES = [f"s{i}" for i in range(8)]


@st.composite
def forests(draw: st.DrawFn) -> Taxonomy:
    """A random acyclic tree over NAMES (a parent always has a smaller index), maybe synonyms."""
    parents: dict[str, str | None] = {}
    for i, name in enumerate(NAMES):
        if draw(st.booleans()):
            parents[name] = draw(st.sampled_from(NAMES[:i])) if i and draw(st.booleans()) else None
    synonyms = {f"alias {n}": n for n in draw(st.lists(st.sampled_from(NAMES), max_size=3))}
    return Taxonomy(parents, synonyms)


SKILL_NAMES = st.sampled_from([*NAMES, "alias s1", "alias s5", "S3", "unknown"])


@settings(max_examples=100, deadline=None)
@given(forests(), SKILL_NAMES, SKILL_NAMES)
def test_relatedness_is_symmetric_and_takes_four_values(tree: Taxonomy, a: str, b: str) -> None:
    r = tree.relatedness(a, b)
    assert r == tree.relatedness(b, a)
    assert r in {0.0, 0.25, 0.5, 1.0}
    assert tree.relatedness(a, a) == 1.0


@settings(max_examples=100, deadline=None)
@given(forests(), SKILL_NAMES, SKILL_NAMES)
def test_relatedness_agrees_with_ancestors_and_parent(tree: Taxonomy, a: str, b: str) -> None:
    ca, cb = tree.canonical(a), tree.canonical(b)
    if ca == cb:
        expected = 1.0
    elif ca in tree.ancestors(b) or cb in tree.ancestors(a):
        expected = 0.5
    elif tree.parent(a) is not None and tree.parent(a) == tree.parent(b):
        expected = 0.25
    else:
        expected = 0.0
    assert tree.relatedness(a, b) == expected


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=12))
def test_canonical_is_idempotent(skill: str) -> None:
    once = TREE.canonical(skill)
    assert TREE.canonical(once) == once
    assert once == once.strip()
    assert "  " not in once
