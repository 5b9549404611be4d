"""Sends one e-mail over SMTP (aiosmtplib) and says whether a failure is worth retrying.

A 4xx reply, a refused or dropped connection, a timeout or a server that will not encrypt when
it must are temporary: the same message may go through later. A 5xx reply is permanent: the
server refused this message or recipient for good, so retrying it cannot help.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage

import aiosmtplib

from services.common.config import SmtpSettings, StartTls
from services.notifications import outcomes
from services.notifications.outcomes import Outcome


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
