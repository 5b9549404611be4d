"""The time for records and events.

MongoDB keeps milliseconds: a time with microseconds would come back different from what the
first response or event said. Everything stored uses this clock, truncated to milliseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)
