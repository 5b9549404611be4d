"""The notifications service's mail and chat settings, read once by Settings.from_env: values,
defaults, the other services ignoring them, and bad values naming their variable."""

from __future__ import annotations

import pytest

from services.common.config import (
    DEFAULT_PUBLIC_URL,
    ChatSettings,
    MailSettings,
    Settings,
    SmtpSettings,
    StartTls,
)


def test_notifications_reads_mail_and_chat_from_the_environment() -> None:
    env = {
        "SMTP_HOST": "mail.acme.example",
        "SMTP_STARTTLS": "opportunistic",
        "MAIL_MAX_ATTEMPTS": "3",
        "MAIL_RETRY_BASE_SECONDS": "0",
        "MAIL_RETRY_MAX_SECONDS": "120",
        "MAIL_CONCURRENCY": "2",
        "MAIL_PORTAL_URL": " https://portal.acme.example ",
        "NOTIFICATIONS_PUBLIC_URL": "",
        "CHAT_DIGEST_HOUR_UTC": "23",
    }
    settings = Settings.from_env("notifications", env)
    assert settings.mail == MailSettings(
        smtp=SmtpSettings(host="mail.acme.example", starttls=StartTls.OPPORTUNISTIC),
        max_attempts=3,
        retry_base_seconds=0.0,
        retry_max_seconds=120.0,
        concurrency=2,
        portal_url="https://portal.acme.example",
        public_url="",
    )
    assert settings.chat == ChatSettings(digest_hour_utc=23)


def test_defaults_and_other_services_ignore_notification_settings() -> None:
    defaults = Settings.from_env("notifications", {})
    assert defaults.mail == MailSettings()
    assert defaults.mail.public_url == DEFAULT_PUBLIC_URL
    assert defaults.mail.smtp.port == 1025
    assert defaults.chat.digest_hour_utc == 8
    # A value only notifications would refuse does not stop another service from starting.
    bad = {"SMTP_PORT": "x", "MAIL_CONCURRENCY": "0", "CHAT_DIGEST_HOUR_UTC": "24"}
    matching = Settings.from_env("matching", bad)
    assert (matching.mail, matching.chat) == (MailSettings(), ChatSettings())


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MAIL_MAX_ATTEMPTS", "many", "must be a number"),
        ("MAIL_RETRY_BASE_SECONDS", "-1", "must not be negative"),
        ("MAIL_MAX_ATTEMPTS", "0", "must be at least 1"),
        ("MAIL_CONCURRENCY", "0", "must be at least 1"),
        ("SMTP_PORT", "0", "must be positive"),
        ("SMTP_TIMEOUT_SECONDS", "0", "must be positive"),
        ("CHAT_DIGEST_HOUR_UTC", "24", "an hour from 0 to 23"),
        ("CHAT_DIGEST_HOUR_UTC", "-1", "an hour from 0 to 23"),
        ("CHAT_DIGEST_HOUR_UTC", "noon", "an hour from 0 to 23"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(SystemExit, match=f"{name}.*{says}"):
        Settings.from_env("notifications", {name: value})
