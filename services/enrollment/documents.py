"""What enrollment stores in its own database."""

from __future__ import annotations

from mongoengine import (
    BinaryField,
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    IntField,
    ListField,
    StringField,
)


class Program(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    name = StringField(required=True)
    objective = StringField(default="")
    created_at = DateTimeField(required=True)
    # The serialized mentoring.v1.ProgramSettings.
    settings = BinaryField(default=b"")
    requires_approval = BooleanField(default=False)
    status = StringField(default="open", choices=("draft", "open", "running", "closed"))
    # The last program-changed event, rebuilt from these fields when a retry republishes it.
    version = IntField(default=1)
    updated_at = DateTimeField()
    previous_status = StringField(default="")
    change = StringField(default="created")
    event_id = StringField(default="")
    meta = {
        "collection": "programs",
        "indexes": [
            {"fields": ["organization_id", "program_id"], "unique": True},
            ["organization_id", "status", "program_id"],
        ],
    }


class Cohort(Document):
    organization_id = StringField(required=True)
    program_id = StringField(required=True)
    cohort_id = StringField(required=True)
    name = StringField(required=True)
    starts_on = DateTimeField()
    ends_on = DateTimeField()
    created_at = DateTimeField(required=True)
    meta = {
        "collection": "cohorts",
        "indexes": [
            {"fields": ["organization_id", "program_id", "cohort_id"], "unique": True},
        ],
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
    # applied, waitlisted, rejected, registered (announced) or withdrawn.
    status = StringField(
        default="registered",
        choices=("applied", "waitlisted", "rejected", "registered", "withdrawn"),
    )
    status_reason = StringField(default="")
    status_changed_at = DateTimeField()
    answers = DictField()
    campaign = StringField(default="")
    # Copied from the profile, to find the person again by their HR id.
    hr_person_id = StringField(default="")
    # A digest of the import row the participant was last imported or updated from: the same
    # row again is "unchanged" even after the person edited their profile since.
    import_digest = StringField(default="")
    # The last participant-updated / participant-withdrawn events, republished on a retry.
    updated_at = DateTimeField()
    update_event_id = StringField(default="")
    withdraw_event_id = StringField(default="")
    # A leave of absence the HR systems reported (hr-events); unset when none.
    leave_starts_on = DateTimeField()
    leave_ends_on = DateTimeField()
    meta = {
        "collection": "participants",
        "indexes": [
            {"fields": ["organization_id", "participant_id"], "unique": True},
            # One registration per person and role in a program; a retry finds the first one.
            {"fields": ["organization_id", "program_id", "email", "role"], "unique": True},
            ["organization_id", "program_id", "role", "participant_id"],
            ["organization_id", "program_id", "status", "participant_id"],
            # A person across programs (HR events, personal-data export and erasure).
            ["organization_id", "email"],
            # Also one HR person's registrations in a program (filtered there: a person is in
            # few programs); one index fewer for every registration to write.
            ["organization_id", "hr_person_id"],
        ],
    }
