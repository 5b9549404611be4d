"""How the service sends e-mail: the SMTP server (smtp.SmtpSettings, SMTP_*) and the retry
policy (MAIL_*), read once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.notifications.smtp import SmtpSettings

# The gateway under `make up`.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"environment variable {name} must be a number, got {raw!r}") from None
    if value < 0:
        raise SystemExit(f"environment variable {name} must not be negative, got {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class MailSettings:
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    # Attempts before a message is dead-lettered, and the backoff between them (doubling from
    # the base up to the maximum), as for webhooks.
    max_attempts: int = 8
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 6 * 3600.0
    # Messages in flight at once per process (one SMTP connection each).
    concurrency: int = 4
    # The portal, for the links in messages; empty: none.
    portal_url: str = ""
    # Where the service's pages are reached from outside (the gateway): calendar feed and
    # unsubscribe URLs start with it. Empty: mails carry no unsubscribe link.
    public_url: str = DEFAULT_PUBLIC_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> MailSettings:
        settings = cls(
            smtp=SmtpSettings.from_env(env),
            max_attempts=int(_number(env, "MAIL_MAX_ATTEMPTS", 8)),
            retry_base_seconds=_number(env, "MAIL_RETRY_BASE_SECONDS", 60.0),
            retry_max_seconds=_number(env, "MAIL_RETRY_MAX_SECONDS", 6 * 3600.0),
            concurrency=int(_number(env, "MAIL_CONCURRENCY", 4)),
            portal_url=env.get("MAIL_PORTAL_URL", "").strip(),
            public_url=env.get("NOTIFICATIONS_PUBLIC_URL", DEFAULT_PUBLIC_URL).strip(),
        )
        if settings.max_attempts < 1 or settings.concurrency < 1:
            raise SystemExit("MAIL_MAX_ATTEMPTS and MAIL_CONCURRENCY must be at least 1")
        return settings
