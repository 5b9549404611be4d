"""When the daily chat digest goes (CHAT_DIGEST_HOUR_UTC), read once at start. Posts travel
like webhooks: the WEBHOOKS_* address policy, CA file, timeout and retry settings apply."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_DIGEST_HOUR = 8


@dataclass(frozen=True, slots=True)
class ChatSettings:
    # The hour (UTC, 0-23) of each day's digest, covering the 24 hours before it.
    digest_hour_utc: int = DEFAULT_DIGEST_HOUR

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ChatSettings:
        raw = env.get("CHAT_DIGEST_HOUR_UTC", "").strip()
        if not raw:
            return cls()
        if not raw.isdigit() or not 0 <= int(raw) <= 23:
            raise SystemExit(f"CHAT_DIGEST_HOUR_UTC must be an hour from 0 to 23, got {raw!r}")
        return cls(digest_hour_utc=int(raw))
