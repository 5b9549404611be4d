"""What matching stores in its own database."""

from __future__ import annotations

from mongoengine import (
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
    # updates (free_slots > 0), so capacity holds however many proposals race for it.
    free_slots = IntField(default=0)
    # Mentees: True while a proposal or relationship is live.
    matched = BooleanField(default=False)
    meta = {
        "collection": "pool",
        "indexes": [
            {"fields": ["organization_id", "participant_id"], "unique": True},
            ["organization_id", "program_id", "role", "matched"],
        ],
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
    status = StringField(required=True, choices=("proposed", "accepted", "declined"))
    created_at = DateTimeField(required=True)
    event_id = StringField(required=True)
    # Outbox flag: stored first, published after, so a crash in between republishes it.
    published = BooleanField(default=False)
    meta = {
        "collection": "proposals",
        "indexes": [
            {"fields": ["organization_id", "match_id"], "unique": True},
            ["organization_id", "program_id", "match_id"],
            ["organization_id", "program_id", "published"],
        ],
    }


class Exclusion(Document):
    """A pair never to propose again (declined before)."""

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
            }
        ],
    }
