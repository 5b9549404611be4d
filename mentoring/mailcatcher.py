"""A development SMTP server (aiosmtpd) that delivers nothing: it keeps every message it
accepts as an .eml file in one directory, for `mentoring notifications list/show` and tests.

Files are named by arrival, UTC time then a sequence number (20261208T101500123456Z-000007.eml),
so sorting the names sorts the messages; each is written whole under a temporary name and then
renamed, so a reader never sees half a message.

For tests of retries, a file named `refuse-next` in the directory makes the catcher refuse the
next messages: it holds a count and optionally a reply code (`2` or `2 550`; the default code is
451, a temporary refusal). Each refused message takes one off; at zero the file goes. A file,
not an environment variable or a signal, because a test changes it while the catcher runs as a
separate process, and it needs no control port: write it with `refuse_next`.

Run: python -m mentoring.mailcatcher --dir .run/mail [--host 127.0.0.1] [--port 1025]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import ssl
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1025
REFUSE_FILE = "refuse-next"
TEMPORARY_REFUSAL = 451
SUFFIX = ".eml"
_REPLY_TEXT = {
    TEMPORARY_REFUSAL: "4.3.0 Refused for now (mail catcher, refuse-next)",
    550: "5.7.1 Refused (mail catcher, refuse-next)",
}


def message_name(arrived: datetime, sequence: int) -> str:
    return f"{arrived.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{sequence:06d}{SUFFIX}"


def messages(directory: Path) -> list[Path]:
    """The kept messages, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == SUFFIX and p.is_file())


def refuse_next(directory: Path, count: int, code: int = TEMPORARY_REFUSAL) -> None:
    """Makes a catcher on `directory` refuse its next `count` messages with `code`; 0 clears."""
    if not 400 <= code < 600:
        raise ValueError(f"code must be a 4xx or 5xx SMTP reply code, got {code}")
    path = directory / REFUSE_FILE
    if count <= 0:
        path.unlink(missing_ok=True)
        return
    _write_atomically(path, f"{count} {code}\n".encode())


def take_refusal(directory: Path) -> int | None:
    """The reply code to refuse this message with, taking one off the count; None: accept.
    A file that does not parse is left alone and ignored (a catcher must keep accepting)."""
    path = directory / REFUSE_FILE
    try:
        fields = path.read_text().split()
        count = int(fields[0])
        code = int(fields[1]) if len(fields) > 1 else TEMPORARY_REFUSAL
    except (OSError, ValueError, IndexError):
        return None
    if count <= 0 or not 400 <= code < 600:
        return None
    if count == 1:
        path.unlink(missing_ok=True)
    else:
        _write_atomically(path, f"{count - 1} {code}\n".encode())
    return code


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def with_envelope(content: bytes, sender: str, recipients: Sequence[str]) -> bytes:
    """The message as a mailbox would keep it: Return-Path and Delivered-To first, so that who
    it was really sent to (Bcc included) shows."""
    newline = b"\r\n" if b"\r\n" in content[:1000] else b"\n"
    lines = [f"Return-Path: <{sender}>".encode()]
    lines += [f"Delivered-To: {r}".encode() for r in recipients]
    return newline.join(lines) + newline + content


class Mailbox:
    """The aiosmtpd handler: refuses when told to, otherwise keeps the message."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # Carries on from the messages already there, so numbers grow across restarts too.
        self._sequence = len(messages(directory))
        # Two sessions at once must not both take the last refusal.
        self._refusals = asyncio.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        async with self._refusals:
            code = await asyncio.to_thread(take_refusal, self.directory)
        if code is not None:
            return f"{code} {_REPLY_TEXT.get(code, 'Refused (mail catcher, refuse-next)')}"
        self._sequence += 1
        path = self.directory / message_name(datetime.now(UTC), self._sequence)
        content = with_envelope(
            envelope.original_content or b"", envelope.mail_from or "", envelope.rcpt_tos
        )
        await asyncio.to_thread(_write_atomically, path, content)
        return f"250 2.0.0 Kept as {path.name}"


class Catcher:
    """The server, in the running event loop: `async with Catcher(dir) as c: c.port`.

    `tls_context` offers STARTTLS; `credentials` (login, password) requires AUTH, which
    aiosmtpd allows only after STARTTLS."""

    def __init__(
        self,
        directory: Path,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        tls_context: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self._tls_context = tls_context
        self._credentials = credentials
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        mailbox = Mailbox(self.directory)
        loop = asyncio.get_running_loop()

        def protocol() -> SMTP:
            return SMTP(
                mailbox,
                hostname="mailcatcher.localhost",
                enable_SMTPUTF8=True,
                tls_context=self._tls_context,
                auth_required=self._credentials is not None,
                authenticator=self._authenticate if self._credentials else None,
                loop=loop,
            )

        self._server = await loop.create_server(protocol, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self._credentials is not None
            and (data.login.decode(), data.password.decode()) == self._credentials
        )
        # handled=False: aiosmtpd then answers 535 itself (handled=True would leave the client
        # waiting for an answer we never send).
        return AuthResult(success=ok, handled=False)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Catcher:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve(directory: Path, host: str, port: int) -> None:
    """Runs until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Catcher(directory, host, port) as catcher:
        # One line for a launcher's log: where it listens and where the mail goes.
        print(
            f"mail catcher listening on {catcher.host}:{catcher.port}, keeping messages in "
            f"{directory}",
            flush=True,
        )
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mentoring.mailcatcher",
        description="Development SMTP server keeping every message as an .eml file.",
    )
    parser.add_argument("--dir", type=Path, required=True, help="Where to keep the messages.")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--refuse-next",
        type=int,
        default=0,
        metavar="N",
        help=f"Refuse the first N messages with {TEMPORARY_REFUSAL} (see the {REFUSE_FILE} file).",
    )
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.refuse_next:
        refuse_next(args.dir, args.refuse_next)
    try:
        asyncio.run(serve(args.dir, args.host, args.port))
    except OSError as exc:
        sys.exit(f"mail catcher ({args.host}:{args.port}, {args.dir}): {exc}")


if __name__ == "__main__":
    main()
