"""What engagement stores in its own database."""

from __future__ import annotations

from mongoengine import DateTimeField, Document, FloatField, IntField, StringField

DECISIONS = ("none", "accept", "decline")


class Match(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    match_id = StringField(required=True)
    mentor_id = StringField(required=True)
    mentee_id = StringField(required=True)
    score = FloatField(default=0.0)
    status = StringField(required=True, choices=("proposed", "accepted", "declined", "expired"))
    origin = StringField(default="engine")
    mentor_decision = StringField(default="none", choices=DECISIONS)
    mentee_decision = StringField(default="none", choices=DECISIONS)
    relationship_id = StringField(default="")
    proposed_at = DateTimeField(required=True)
    meta = {
        "collection": "matches",
        "indexes": [
            {"fields": ["organization_id", "match_id"], "unique": True},
            ["organization_id", "program_id", "match_id"],
            ["organization_id", "mentor_id"],
            ["organization_id", "mentee_id"],
        ],
    }


class Relationship(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    relationship_id = StringField(required=True)
    match_id = StringField(required=True)
    mentor_id = StringField(required=True)
    mentee_id = StringField(required=True)
    status = StringField(
        required=True, default="active", choices=("active", "completed", "closed_early")
    )
    end_reason = StringField(default="")
    ended_at = DateTimeField()
    started_at = DateTimeField(required=True)
    sessions = IntField(default=0)
    minutes = IntField(default=0)
    meta = {
        "collection": "relationships",
        "indexes": [
            {"fields": ["organization_id", "relationship_id"], "unique": True},
            {"fields": ["organization_id", "match_id"], "unique": True},
        ],
    }


class Session(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    session_id = StringField(required=True)
    relationship_id = StringField(required=True)
    held_at = DateTimeField(required=True)
    minutes = IntField(required=True)
    mode = StringField(required=True)
    logged_at = DateTimeField(required=True)
    meta = {
        "collection": "sessions",
        "indexes": [
            {"fields": ["organization_id", "session_id"], "unique": True},
            ["organization_id", "relationship_id", "held_at"],
        ],
    }
