"""What matching stores in its own database."""

from __future__ import annotations

from mongoengine import (
    BinaryField,
    BooleanField,
    DateTimeField,
    Document,
    EmbeddedDocument,
    EmbeddedDocumentListField,
    FloatField,
    IntField,
    ListField,
    StringField,
)


class PoolMember(Document):
    """A registered participant as matching sees them."""

    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    participant_id = StringField(required=True)
    role = StringField(required=True, choices=("mentor", "mentee"))
    display_name = StringField(default="")
    skills = ListField(StringField())
    capacity = IntField(min_value=0, default=0)
    # Mentors: slots not taken by a live proposal or relationship. Changed only by conditional
    # updates (free_slots > 0), so capacity holds however many proposals race for it. Always
    # capacity minus live proposals: a capacity cut below what is taken leaves it negative
    # until enough of them end (the engine sees 0).
    free_slots = IntField(default=0)
    # Mentees: True while a proposal or relationship is live.
    matched = BooleanField(default=False)
    # The serialized mentoring.v1.Profile, as registered.
    profile = BinaryField(default=b"")
    hr_person_id = StringField(default="")
    cohort_id = StringField(default="")
    # Left the program (participant-withdrawn): never proposed again. Members stored before the
    # flag existed lack it, so queries test `withdrawn != True`.
    withdrawn = BooleanField(default=False)
    # Pseudonymised on request (participant-erased): withdrawn too, and never filled in again.
    erased = BooleanField(default=False)
    # Mentors: the program's revision (ProgramRevision) of the last change to anything the
    # recommendations see (profile, free slots, withdrawal), stamped in the change's transaction
    # so every worker's in-process index can read what changed since it last looked (live.py).
    revision = IntField(default=0)
    # Mentees: waiting for the continuous planner to consider them (registered, updated, or
    # back in the pool); it clears the flag once it has (arrivals.py).
    unplanned = BooleanField(default=False)
    meta = {
        "collection": "pool",
        "indexes": [
            {"fields": ["organization_id", "participant_id"], "unique": True},
            ["organization_id", "program_id", "role", "matched"],
            ["organization_id", "hr_person_id"],
            ["organization_id", "program_id", "revision"],
            ["organization_id", "program_id", "unplanned"],
        ],
    }


class ProgramRevision(Document):
    """A program's change counter: each change to one of its mentors takes the next value in
    the change's transaction (pool.next_revision), so values commit in order and a reader who
    sees value R also sees every change stamped up to R."""

    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    revision = IntField(default=0)
    meta = {
        "collection": "program_revisions",
        "indexes": [{"fields": ["organization_id", "program_id"], "unique": True}],
    }


class CriterionScore(EmbeddedDocument):
    criterion = StringField(required=True)
    score = FloatField(required=True)
    weight = FloatField(required=True)
    detail = StringField(default="")


class Proposal(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    match_id = StringField(required=True)
    mentor_id = StringField(required=True)
    mentee_id = StringField(required=True)
    score = FloatField(required=True)
    breakdown = EmbeddedDocumentListField(CriterionScore)
    status = StringField(
        required=True, choices=("proposed", "accepted", "declined", "expired", "ended", "withdrawn")
    )
    origin = StringField(required=True, default="engine")
    run_id = StringField(default="")
    override_reason = StringField(default="")
    proposed_by = StringField(default="")  # the coordinator, for a pair proposed by hand
    # Mentee requests: when silence counts as a decline, and the choices still to try.
    expires_at = DateTimeField()
    next_choices = ListField(StringField())
    created_at = DateTimeField(required=True)
    event_id = StringField(required=True)
    # Outbox flag: stored first (in the transaction that reserved the pair), published after,
    # so a crash in between republishes it (publication.py).
    published = BooleanField(default=False)
    # The status it had when it was released (declined, expired, ended, withdrawn): "proposed"
    # means nobody had answered it, and a withdrawal then publishes match-expired for it.
    released_from = StringField(default="")
    meta = {
        "collection": "proposals",
        "indexes": [
            {"fields": ["organization_id", "match_id"], "unique": True},
            ["organization_id", "program_id", "match_id"],
            ["organization_id", "program_id", "published"],
            # The relay's look for what writers left unpublished (pool.unpublished_since).
            ["published", "created_at"],
            ["status", "expires_at"],
        ],
    }


class Exclusion(Document):
    """A pair never to propose again (declined, not a good fit, or a coordinator said so)."""

    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    mentor_id = StringField(required=True)
    mentee_id = StringField(required=True)
    reason = StringField(required=True)
    meta = {
        "collection": "exclusions",
        "indexes": [
            {
                "fields": ["organization_id", "program_id", "mentor_id", "mentee_id"],
                "unique": True,
            },
            # A mentee's exclusions, read fresh for each recommendation (live.py).
            ["organization_id", "program_id", "mentee_id"],
        ],
    }


class ProgramConfig(Document):
    """A program's matching configuration: the serialized mentoring.v1.MatchingConfig."""

    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    config = BinaryField(required=True)
    updated_at = DateTimeField(required=True)
    meta = {
        "collection": "program_configs",
        "indexes": [{"fields": ["organization_id", "program_id"], "unique": True}],
    }


class SkillTaxonomy(Document):
    """An organisation's skill taxonomy: the serialized mentoring.v1.SkillTaxonomy."""

    organization_id = StringField(required=True, unique=True)
    taxonomy = BinaryField(required=True)
    updated_at = DateTimeField(required=True)
    meta = {"collection": "skill_taxonomies"}


class ReportingLine(Document):
    """Who reports to whom (HR ids), from profiles and HR events; for the reporting-line rule."""

    organization_id = StringField(required=True)
    hr_person_id = StringField(required=True)
    manager_id = StringField(required=True)
    meta = {
        "collection": "reporting_lines",
        "indexes": [{"fields": ["organization_id", "hr_person_id"], "unique": True}],
    }


class MatchingRun(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    run_id = StringField(required=True)
    status = StringField(required=True, choices=("queued", "completed", "failed"))
    requested_at = DateTimeField(required=True)
    # The serialized mentoring.v1.MatchingRunCompleted once done.
    result = BinaryField(default=b"")
    meta = {
        "collection": "matching_runs",
        "indexes": [{"fields": ["organization_id", "run_id"], "unique": True}],
    }
