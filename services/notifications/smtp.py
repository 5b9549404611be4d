"""Sends one e-mail over SMTP (aiosmtplib) and says whether a failure is worth retrying.

A 4xx reply, a refused or dropped connection, a timeout or a server that will not encrypt when
it must are temporary: the same message may go through later. A 5xx reply is permanent: the
server refused this message or recipient for good, so retrying it cannot help.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from enum import StrEnum

import aiosmtplib

from services.notifications import outcomes
from services.notifications.outcomes import Outcome


class StartTls(StrEnum):
    OFF = "off"
    # Encrypt when the server offers STARTTLS, send in the clear when it does not.
    OPPORTUNISTIC = "opportunistic"
    # Never send unencrypted: a server that does not offer STARTTLS gets nothing.
    REQUIRED = "required"


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    # The development catcher's port (mentoring.mailcatcher); 587 for a submission server.
    port: int = 1025
    starttls: StartTls = StartTls.OFF
    username: str = ""
    password: str = field(default="", repr=False)
    timeout_seconds: float = 30.0
    # The From of every message: "Name <address>" or a bare address.
    sender: str = "Mentoring <no-reply@localhost>"
    # Trusted CAs for STARTTLS (a private relay); empty: the system's.
    ca_file: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SmtpSettings:
        default = cls()
        raw_tls = env.get("SMTP_STARTTLS", "").strip().lower() or default.starttls.value
        try:
            starttls = StartTls(raw_tls)
        except ValueError:
            choices = ", ".join(s.value for s in StartTls)
            raise SystemExit(
                f"environment variable SMTP_STARTTLS must be one of {choices}, got {raw_tls!r}"
            ) from None
        return cls(
            host=env.get("SMTP_HOST", "").strip() or default.host,
            port=int(_number(env, "SMTP_PORT", default.port, integer=True)),
            starttls=starttls,
            username=env.get("SMTP_USERNAME", ""),
            password=env.get("SMTP_PASSWORD", ""),
            timeout_seconds=_number(env, "SMTP_TIMEOUT_SECONDS", default.timeout_seconds),
            sender=env.get("SMTP_FROM", "").strip() or default.sender,
            ca_file=env.get("SMTP_CA_FILE", "").strip(),
        )


def _number(env: Mapping[str, str], name: str, default: float, *, integer: bool = False) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise SystemExit(f"environment variable {name} must be {kind}, got {raw!r}") from None
    if value <= 0:
        raise SystemExit(f"environment variable {name} must be positive, got {raw!r}")
    return value


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.ca_file or None)


async def send(
    message: EmailMessage, settings: SmtpSettings, *, context: ssl.SSLContext | None = None
) -> Outcome:
    """Delivers `message` to its To/Cc/Bcc recipients (Bcc is not transmitted). Never raises
    for a delivery failure: the outcome says whether to retry. `context` overrides the TLS
    trust of `settings` (tests; a caller reusing one context)."""
    where = f"{settings.host}:{settings.port}"
    client = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        timeout=settings.timeout_seconds,
        # STARTTLS is done below, so that "required" fails with a reason of our own.
        start_tls=False,
        tls_context=context or tls_context(settings),
    )
    try:
        await client.connect()
        try:
            refused = await _transact(client, message, settings, where)
        finally:
            client.close()
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return _worst(exc.recipients, where)
    except aiosmtplib.SMTPResponseException as exc:
        return _reply(exc.code, exc.message, where)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        # Connection refused or dropped, timeouts, TLS handshake failures.
        return outcomes.temporary(f"SMTP server {where}: {exc}")
    if refused:
        return _worst(
            [aiosmtplib.SMTPRecipientRefused(r.code, r.message, to) for to, r in refused.items()],
            where,
        )
    return outcomes.delivered(250)


async def _transact(
    client: aiosmtplib.SMTP, message: EmailMessage, settings: SmtpSettings, where: str
) -> dict[str, aiosmtplib.SMTPResponse]:
    await client.ehlo()
    if settings.starttls is not StartTls.OFF:
        if client.supports_extension("starttls"):
            await client.starttls()
        elif settings.starttls is StartTls.REQUIRED:
            raise aiosmtplib.SMTPNotSupported(
                "does not offer STARTTLS, and SMTP_STARTTLS=required forbids sending "
                "unencrypted (set it to opportunistic or off only for a trusted relay)"
            )
    if settings.username:
        await client.login(settings.username, settings.password)
    refused, _ = await client.send_message(message)
    # A successful QUIT is a courtesy: the message is the server's once DATA is accepted.
    try:
        await client.quit()
    except aiosmtplib.SMTPException:
        pass
    return refused


def _reply(code: int, text: str, where: str) -> Outcome:
    reason = f"SMTP server {where} answered {code} {text}".strip()
    if 400 <= code < 500:
        return outcomes.temporary(reason, code)
    if code >= 500:
        return outcomes.permanent(reason, code)
    return outcomes.temporary(reason, code)


def _worst(refusals: list[aiosmtplib.SMTPRecipientRefused], where: str) -> Outcome:
    """One outcome for several refused recipients: permanent if any refusal is."""
    found = [_reply(r.code, f"{r.message} (for {r.recipient})", where) for r in refusals]
    return next((o for o in found if o.permanent), found[0])
