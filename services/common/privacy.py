"""Erasure by pseudonymisation: the rules every service applies to what it holds about a person
who asked to be forgotten (participant-erased). Pure: no I/O.

Ids stay (they are pseudonymous uuids), so counts, relationships and KPIs stay whole; what
names, describes or reaches the person goes: names, e-mail addresses, HR ids, profile fields,
demographics and free text.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from services.common.api import common_pb2
from services.common.errors import InvalidArgument
from services.common.validation import require_id

# What an erased text reads where the field must keep some value (a required name, a title).
ERASED = "[erased]"
# The reason an erasure gives where a reason is recorded (a withdrawal, a closed relationship).
ERASURE_REASON = "erased"
# Reserved for documentation and tests (RFC 2606): mail to it can never reach anyone.
ERASED_EMAIL_DOMAIN = "erased.invalid"
MAX_PARTICIPANT_IDS = 100


def pseudonymous_email(participant_id: str) -> str:
    """An address unique to the registration, so unique keys on e-mail hold, that names nobody
    and delivers nowhere."""
    return f"{participant_id}@{ERASED_EMAIL_DOMAIN}"


def is_pseudonymous_email(email: str) -> bool:
    return email.endswith(f"@{ERASED_EMAIL_DOMAIN}")


def redact(text: str, keep: Collection[str] = ()) -> str:
    """Free text erased: empty stays empty (nothing was said), values the platform itself
    writes (`keep`, e.g. "completed") stay, anything a person wrote becomes ERASED."""
    if not text or text in keep:
        return text
    return ERASED


def pseudonymous_profile(profile: common_pb2.Profile) -> common_pb2.Profile:
    """What is left of a profile: only the cohort, which is the program's structure and not
    the person's. HR and manager ids, department, location, time zone, languages, job level,
    goals, availability, demographics and preferred mentors all go."""
    return common_pb2.Profile(cohort_id=profile.cohort_id)


def require_participant_ids(ids: Sequence[str]) -> list[str]:
    """The participant ids an export names (one person's registrations), de-duplicated."""
    if not ids:
        raise InvalidArgument("participant_ids", "at least one is required")
    if len(ids) > MAX_PARTICIPANT_IDS:
        raise InvalidArgument("participant_ids", f"at most {MAX_PARTICIPANT_IDS}")
    return list(dict.fromkeys(require_id(f"participant_ids[{i}]", v) for i, v in enumerate(ids)))
