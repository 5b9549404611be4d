"""The SMTP sender against a real SMTP server in this process (the development catcher,
aiosmtpd): delivered, refused for now then accepted (one message kept), refused for good,
STARTTLS required and missing, STARTTLS with authentication, nobody listening."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
import trustme

from mentoring.mailcatcher import Catcher, messages, refuse_next
from services.common.config import SmtpSettings, StartTls
from services.notifications import smtp


def message(subject: str = "Time for your next session") -> EmailMessage:
    m = EmailMessage()
    m["From"] = "Acme <no-reply@acme.example>"
    m["To"] = "Ana <ana@example.org>"
    m["Subject"] = subject
    m["Message-ID"] = "<abc@acme.example>"
    m.set_content("Hello Ana")
    return m


@pytest.fixture
async def catcher(tmp_path: Path) -> AsyncIterator[Catcher]:
    async with Catcher(tmp_path / "mail", port=0) as running:
        yield running


def settings(catcher: Catcher, **changes: object) -> SmtpSettings:
    fields: dict[str, object] = {"host": catcher.host, "port": catcher.port, "timeout_seconds": 10}
    fields.update(changes)
    return SmtpSettings(**fields)  # type: ignore[arg-type]


def kept(catcher: Catcher) -> list[EmailMessage]:
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(p.read_bytes()) for p in messages(catcher.directory)]  # type: ignore[misc]


async def test_a_message_is_delivered_and_kept_whole(catcher: Catcher) -> None:
    outcome = await smtp.send(message(), settings(catcher))
    assert outcome.delivered, outcome
    [got] = kept(catcher)
    assert got["Subject"] == "Time for your next session"
    assert got["Message-ID"] == "<abc@acme.example>"
    assert got["Delivered-To"] == "ana@example.org"
    assert got["Return-Path"] == "<no-reply@acme.example>"
    assert got.get_content().strip() == "Hello Ana"  # type: ignore[attr-defined]


async def test_a_temporary_refusal_then_acceptance_keeps_exactly_one_message(
    catcher: Catcher,
) -> None:
    refuse_next(catcher.directory, 1)
    first = await smtp.send(message(), settings(catcher))
    assert first.temporary and not first.delivered
    assert first.code == 451
    assert "451" in first.reason
    assert messages(catcher.directory) == []
    second = await smtp.send(message(), settings(catcher))
    assert second.delivered, second
    assert len(messages(catcher.directory)) == 1


async def test_a_permanent_refusal_is_permanent(catcher: Catcher) -> None:
    refuse_next(catcher.directory, 1, code=550)
    outcome = await smtp.send(message(), settings(catcher))
    assert outcome.permanent
    assert outcome.code == 550
    assert messages(catcher.directory) == []


async def test_starttls_required_refuses_a_server_without_it_clearly(catcher: Catcher) -> None:
    outcome = await smtp.send(message(), settings(catcher, starttls=StartTls.REQUIRED))
    assert not outcome.delivered
    assert "does not offer STARTTLS" in outcome.reason
    assert "SMTP_STARTTLS=required" in outcome.reason
    assert messages(catcher.directory) == []
    # Opportunistic sends in the clear to the same server.
    assert (
        await smtp.send(message(), settings(catcher, starttls=StartTls.OPPORTUNISTIC))
    ).delivered


async def test_nobody_listening_is_temporary() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = await smtp.send(message(), SmtpSettings(host="127.0.0.1", port=port))
    assert outcome.temporary
    assert outcome.code == 0
    assert f"127.0.0.1:{port}" in outcome.reason


async def test_starttls_and_authentication(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with Catcher(
        tmp_path / "mail", port=0, tls_context=server_context, credentials=("mailer", "s3cret")
    ) as secure:
        config = settings(secure, starttls=StartTls.REQUIRED, username="mailer", password="s3cret")
        delivered = await smtp.send(message(), config, context=client_context)
        assert delivered.delivered, delivered
        wrong = SmtpSettings(**{**_fields(config), "password": "wrong"})
        refused = await smtp.send(message("second"), wrong, context=client_context)
        assert refused.permanent
        assert refused.code == 535
        # The server's certificate is not trusted by default: no send, and worth a retry.
        untrusted = await smtp.send(message("third"), config)
        assert untrusted.temporary
        assert "certificate" in untrusted.reason.lower()
        assert [m["Subject"] for m in kept(secure)] == ["Time for your next session"]


def _fields(config: SmtpSettings) -> dict[str, object]:
    return {name: getattr(config, name) for name in SmtpSettings.__slots__}


def test_settings_come_from_the_environment() -> None:
    env = {
        "SMTP_HOST": "mail.acme.example",
        "SMTP_PORT": "587",
        "SMTP_STARTTLS": "Required",
        "SMTP_USERNAME": "mailer",
        "SMTP_PASSWORD": "s3cret",
        "SMTP_FROM": "Mentoring <no-reply@acme.example>",
        "SMTP_TIMEOUT_SECONDS": "12.5",
        "SMTP_CA_FILE": "/etc/ssl/relay.pem",
    }
    got = SmtpSettings.from_env(env)
    assert got == SmtpSettings(
        host="mail.acme.example",
        port=587,
        starttls=StartTls.REQUIRED,
        username="mailer",
        password="s3cret",
        timeout_seconds=12.5,
        sender="Mentoring <no-reply@acme.example>",
        ca_file="/etc/ssl/relay.pem",
    )
    assert "s3cret" not in repr(got)
    assert SmtpSettings.from_env({}) == SmtpSettings()


@pytest.mark.parametrize(
    ("name", "value"),
    [("SMTP_STARTTLS", "maybe"), ("SMTP_PORT", "twenty-five"), ("SMTP_TIMEOUT_SECONDS", "-1")],
)
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SystemExit, match=name):
        SmtpSettings.from_env({name: value})
