"""A program's matching configuration and an organisation's taxonomy: checked, stored, and
translated between the API's messages and the engine's types."""

from __future__ import annotations

import math

from services.common import clock
from services.common.api import matching_pb2
from services.common.errors import InvalidArgument
from services.common.validation import require_id
from services.matching.documents import ProgramConfig, SkillTaxonomy
from services.matching.domain.model import (
    MAX_WEIGHT,
    CriterionSpec,
    Kind,
    MatchingConfig,
    ReportingRule,
)
from services.matching.domain.taxonomy import Taxonomy

KINDS: dict[int, Kind] = {
    matching_pb2.CRITERION_KIND_SKILLS: Kind.SKILLS,
    matching_pb2.CRITERION_KIND_GOALS: Kind.GOALS,
    matching_pb2.CRITERION_KIND_SENIORITY: Kind.SENIORITY,
    matching_pb2.CRITERION_KIND_DEPARTMENT: Kind.DEPARTMENT,
    matching_pb2.CRITERION_KIND_TIMEZONE: Kind.TIMEZONE,
    matching_pb2.CRITERION_KIND_LOCATION: Kind.LOCATION,
    matching_pb2.CRITERION_KIND_LANGUAGE: Kind.LANGUAGE,
    matching_pb2.CRITERION_KIND_DEMOGRAPHICS: Kind.DEMOGRAPHICS,
    matching_pb2.CRITERION_KIND_AVAILABILITY: Kind.AVAILABILITY,
    matching_pb2.CRITERION_KIND_MENTEE_CHOICE: Kind.MENTEE_CHOICE,
}
DEFAULT_CANDIDATES = 20
DEFAULT_EXPIRY_SECONDS = 72 * 3600
MAX_EXPIRY_SECONDS = 30 * 24 * 3600


def default_config(organization_id: str, program_id: str) -> matching_pb2.MatchingConfig:
    return matching_pb2.MatchingConfig(
        organization_id=organization_id,
        program_id=program_id,
        criteria=[matching_pb2.Criterion(kind=matching_pb2.CRITERION_KIND_SKILLS, weight=5)],
        reporting_line=matching_pb2.REPORTING_LINE_RULE_MANAGER_CHAIN,
        mode=matching_pb2.MATCHING_MODE_CONTINUOUS,
        candidates_per_mentee=DEFAULT_CANDIDATES,
        request_expiry_seconds=DEFAULT_EXPIRY_SECONDS,
    )


def validate_config(config: matching_pb2.MatchingConfig) -> matching_pb2.MatchingConfig:
    """Check every field (INVALID_ARGUMENT names it) and fill the defaults."""
    require_id("config.organization_id", config.organization_id)
    require_id("config.program_id", config.program_id)
    checked = matching_pb2.MatchingConfig()
    checked.CopyFrom(config)
    seen: set[int] = set()
    for i, criterion in enumerate(config.criteria):
        field = f"config.criteria[{i}]"
        if criterion.kind not in KINDS:
            raise InvalidArgument(f"{field}.kind", "must name a criterion")
        if criterion.kind in seen:
            raise InvalidArgument(f"{field}.kind", "appears twice")
        seen.add(criterion.kind)
        if not (0 <= criterion.weight <= MAX_WEIGHT) or math.isnan(criterion.weight):
            raise InvalidArgument(f"{field}.weight", f"must be 0-{MAX_WEIGHT:g}")
        if criterion.weight == 0 and not criterion.hard:
            raise InvalidArgument(f"{field}.weight", "a soft criterion needs a weight above 0")
        if criterion.kind == matching_pb2.CRITERION_KIND_SENIORITY:
            lo, hi = criterion.min_level_gap, criterion.max_level_gap
            if lo < 0 or hi < lo or hi > 20:
                raise InvalidArgument(
                    f"{field}.max_level_gap", "the gap band needs 0 <= min <= max <= 20"
                )
        if criterion.kind == matching_pb2.CRITERION_KIND_TIMEZONE and not (
            0 <= criterion.max_timezone_hours <= 12
        ):
            raise InvalidArgument(f"{field}.max_timezone_hours", "must be 0-12")
        if criterion.kind == matching_pb2.CRITERION_KIND_AVAILABILITY and not (
            criterion.min_overlap_minutes <= 7 * 24 * 60
        ):
            raise InvalidArgument(f"{field}.min_overlap_minutes", "must be at most a week")
    if not 0 <= config.min_score <= 1 or math.isnan(config.min_score):
        raise InvalidArgument("config.min_score", "must be 0-1")
    if config.candidates_per_mentee > 200:
        raise InvalidArgument("config.candidates_per_mentee", "must be 0 (default) to 200")
    if config.request_expiry_seconds > MAX_EXPIRY_SECONDS:
        raise InvalidArgument(
            "config.request_expiry_seconds", f"must be 0 (default) to {MAX_EXPIRY_SECONDS}"
        )
    if config.reporting_line == matching_pb2.REPORTING_LINE_RULE_UNSPECIFIED:
        checked.reporting_line = matching_pb2.REPORTING_LINE_RULE_MANAGER_CHAIN
    if config.mode == matching_pb2.MATCHING_MODE_UNSPECIFIED:
        checked.mode = matching_pb2.MATCHING_MODE_CONTINUOUS
    checked.candidates_per_mentee = config.candidates_per_mentee or DEFAULT_CANDIDATES
    checked.request_expiry_seconds = config.request_expiry_seconds or DEFAULT_EXPIRY_SECONDS
    return checked


def engine_config(config: matching_pb2.MatchingConfig) -> MatchingConfig:
    return MatchingConfig(
        criteria=tuple(
            CriterionSpec(
                kind=KINDS[c.kind],
                weight=c.weight,
                hard=c.hard,
                min_level_gap=c.min_level_gap,
                max_level_gap=c.max_level_gap,
                allow_reverse=c.allow_reverse,
                prefer_same_department=c.prefer_same_department,
                max_timezone_hours=c.max_timezone_hours,
                min_overlap_minutes=c.min_overlap_minutes,
            )
            for c in config.criteria
        ),
        min_score=config.min_score,
        reporting_rule=(
            ReportingRule.MANAGER_CHAIN_AND_PEERS
            if config.reporting_line == matching_pb2.REPORTING_LINE_RULE_MANAGER_CHAIN_AND_PEERS
            else ReportingRule.MANAGER_CHAIN
        ),
        candidates_per_mentee=config.candidates_per_mentee or DEFAULT_CANDIDATES,
    )


def load_config(organization_id: str, program_id: str) -> matching_pb2.MatchingConfig:
    stored = ProgramConfig.objects(organization_id=organization_id, program_id=program_id).first()
    if stored is None:
        return default_config(organization_id, program_id)
    return matching_pb2.MatchingConfig.FromString(stored.config)


def save_config(config: matching_pb2.MatchingConfig) -> matching_pb2.MatchingConfig:
    ProgramConfig.objects(
        organization_id=config.organization_id, program_id=config.program_id
    ).update_one(upsert=True, set__config=config.SerializeToString(), set__updated_at=clock.now())
    return config


def validate_taxonomy(taxonomy: matching_pb2.SkillTaxonomy) -> Taxonomy:
    require_id("taxonomy.organization_id", taxonomy.organization_id)
    try:
        return engine_taxonomy(taxonomy)
    except ValueError as exc:
        raise InvalidArgument("taxonomy.skills", str(exc)) from None


def engine_taxonomy(taxonomy: matching_pb2.SkillTaxonomy) -> Taxonomy:
    parents: dict[str, str | None] = {}
    synonyms: dict[str, str] = {}
    for node in taxonomy.skills:
        name = " ".join(node.name.lower().split())
        if not name:
            raise ValueError("a skill needs a name")
        parents[name] = " ".join(node.parent.lower().split()) or None
        for alias in node.synonyms:
            synonyms[" ".join(alias.lower().split())] = name
    return Taxonomy(parents, synonyms)


def load_taxonomy_message(organization_id: str) -> matching_pb2.SkillTaxonomy:
    stored = SkillTaxonomy.objects(organization_id=organization_id).first()
    if stored is None:
        return matching_pb2.SkillTaxonomy(organization_id=organization_id)
    return matching_pb2.SkillTaxonomy.FromString(stored.taxonomy)


def load_taxonomy(organization_id: str) -> Taxonomy:
    return engine_taxonomy(load_taxonomy_message(organization_id))


def save_taxonomy(taxonomy: matching_pb2.SkillTaxonomy) -> matching_pb2.SkillTaxonomy:
    SkillTaxonomy.objects(organization_id=taxonomy.organization_id).update_one(
        upsert=True, set__taxonomy=taxonomy.SerializeToString(), set__updated_at=clock.now()
    )
    return taxonomy
