"""What enrollment stores in its own database."""

from __future__ import annotations

from mongoengine import BinaryField, DateTimeField, Document, IntField, ListField, StringField


class Program(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    name = StringField(required=True)
    objective = StringField(default="")
    created_at = DateTimeField(required=True)
    meta = {
        "collection": "programs",
        "indexes": [{"fields": ["organization_id", "program_id"], "unique": True}],
    }


class Participant(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    participant_id = StringField(required=True)
    role = StringField(required=True, choices=("mentor", "mentee"))
    display_name = StringField(required=True)
    email = StringField(required=True)
    skills = ListField(StringField())
    capacity = IntField(min_value=0, default=0)
    registered_at = DateTimeField(required=True)
    # The serialized mentoring.v1.Profile.
    profile = BinaryField(default=b"")
    # The participant-registered event's id, reused when a retried request publishes it again.
    event_id = StringField(required=True)
    meta = {
        "collection": "participants",
        "indexes": [
            {"fields": ["organization_id", "participant_id"], "unique": True},
            # One registration per person and role in a program; a retry finds the first one.
            {"fields": ["organization_id", "program_id", "email", "role"], "unique": True},
            ["organization_id", "program_id", "role", "participant_id"],
        ],
    }
