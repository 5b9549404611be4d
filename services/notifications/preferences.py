"""A participant's notification preferences and what they decide for one message. Pure: the
caller gives the clock and the time zone.

A category off on a channel suppresses its messages there. With the daily digest on, messages
wait for the next digest (08:00 local time, or the end of the quiet hours if that falls in
them); session messages never wait, since their invitations belong in a calendar now. Quiet
hours defer a message to the end of the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum

from services.notifications.invitations import zone

EMAIL = "email"
# The channels a participant chooses for themselves; Slack and Teams are an organisation's.
PARTICIPANT_CHANNELS = (EMAIL,)
NUDGES = "nudges"
ANNOUNCEMENTS = "announcements"
MATCHES = "matches"
SESSIONS = "sessions"
CATEGORIES = (NUDGES, ANNOUNCEMENTS, MATCHES, SESSIONS)
# Never collected into a digest.
IMMEDIATE = frozenset({SESSIONS})
DIGEST_MINUTE = 8 * 60
MINUTES_PER_DAY = 24 * 60


def key(category: str, channel: str) -> str:
    return f"{category}:{channel}"


@dataclass(frozen=True, slots=True)
class Rules:
    # key(category, channel) of each pair turned off.
    disabled: frozenset[str] = frozenset()
    daily_digest: bool = False
    # Minutes after local midnight; equal: none.
    quiet_start: int = 0
    quiet_end: int = 0
    # Empty: the contact's time zone.
    time_zone: str = ""

    def enabled(self, category: str, channel: str) -> bool:
        return key(category, channel) not in self.disabled

    @property
    def has_quiet_hours(self) -> bool:
        return self.quiet_start != self.quiet_end


class Kind(StrEnum):
    SEND = "send"
    SUPPRESS = "suppress"
    DIGEST = "digest"


@dataclass(frozen=True, slots=True)
class Decision:
    kind: Kind
    # SEND: when it may go; DIGEST: when the digest goes; SUPPRESS: now.
    at: datetime


def decide(rules: Rules, category: str, channel: str, now: datetime, time_zone: str) -> Decision:
    """What becomes of a message of `category` on `channel` queued at `now` (aware, UTC) for a
    participant whose time zone is `time_zone` (the rules' own one wins)."""
    if not rules.enabled(category, channel):
        return Decision(Kind.SUPPRESS, now)
    where = rules.time_zone or time_zone
    if rules.daily_digest and category not in IMMEDIATE:
        return Decision(Kind.DIGEST, next_digest(now, where, rules))
    return Decision(Kind.SEND, quiet_until(now, where, rules) or now)


def _local(moment: datetime, minute: int, days: int, time_zone: str) -> datetime:
    place = zone(time_zone)
    day = moment.astimezone(place).date() + timedelta(days=days)
    wall = time(minute // 60, minute % 60)
    return datetime.combine(day, wall, tzinfo=place).astimezone(moment.tzinfo)


def quiet_until(now: datetime, time_zone: str, rules: Rules) -> datetime | None:
    """The end of the quiet window `now` falls in, or None when it falls in none."""
    if not rules.has_quiet_hours:
        return None
    local = now.astimezone(zone(time_zone))
    minute = local.hour * 60 + local.minute
    start, end = rules.quiet_start, rules.quiet_end
    if start < end:
        return _local(now, end, 0, time_zone) if start <= minute < end else None
    # Across midnight: from start to midnight, then from midnight to end.
    if minute >= start:
        return _local(now, end, 1, time_zone)
    if minute < end:
        return _local(now, end, 0, time_zone)
    return None


def next_digest(now: datetime, time_zone: str, rules: Rules) -> datetime:
    """The next 08:00 local after `now`, moved to the end of the quiet hours if it is in them."""
    due = _local(now, DIGEST_MINUTE, 0, time_zone)
    if due <= now:
        due = _local(now, DIGEST_MINUTE, 1, time_zone)
    return quiet_until(due, time_zone, rules) or due
