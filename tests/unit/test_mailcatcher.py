"""The development mail catcher: files named in arrival order, written whole, the refuse-next
switch, and running as its own process the way the launcher starts it."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from mentoring import mailcatcher
from services.common.config import SmtpSettings
from services.notifications import smtp


def test_names_sort_by_arrival() -> None:
    times = [
        datetime(2026, 12, 8, 9, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 12, 8, 10, tzinfo=UTC),
    ]
    names = [mailcatcher.message_name(times[1], 1), mailcatcher.message_name(times[0], 12)]
    assert sorted(names) == names[::-1]
    assert names[0] == "20261208T100000000000Z-000001.eml"
    same = [mailcatcher.message_name(times[1], 9), mailcatcher.message_name(times[1], 10)]
    assert sorted(same) == same


def test_messages_lists_only_kept_messages_oldest_first(tmp_path: Path) -> None:
    for name in ("b-2.eml", "a-1.eml", ".tmp-x", "refuse-next", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in mailcatcher.messages(tmp_path)] == ["a-1.eml", "b-2.eml"]
    assert mailcatcher.messages(tmp_path / "missing") == []


def test_refuse_next_counts_down_then_accepts(tmp_path: Path) -> None:
    mailcatcher.refuse_next(tmp_path, 2, code=452)
    assert mailcatcher.take_refusal(tmp_path) == 452
    assert mailcatcher.take_refusal(tmp_path) == 452
    assert mailcatcher.take_refusal(tmp_path) is None
    assert not (tmp_path / mailcatcher.REFUSE_FILE).exists()
    mailcatcher.refuse_next(tmp_path, 1)
    mailcatcher.refuse_next(tmp_path, 0)
    assert mailcatcher.take_refusal(tmp_path) is None


def test_a_refuse_file_that_does_not_parse_is_ignored(tmp_path: Path) -> None:
    (tmp_path / mailcatcher.REFUSE_FILE).write_text("lots\n")
    assert mailcatcher.take_refusal(tmp_path) is None
    (tmp_path / mailcatcher.REFUSE_FILE).write_text("3 250\n")
    assert mailcatcher.take_refusal(tmp_path) is None
    with pytest.raises(ValueError, match="4xx or 5xx"):
        mailcatcher.refuse_next(tmp_path, 1, code=250)


def test_the_envelope_is_kept_in_front_of_the_message() -> None:
    kept = mailcatcher.with_envelope(
        b"Subject: x\r\n\r\nbody\r\n", "a@x.org", ["b@y.org", "c@z.org"]
    )
    assert kept.startswith(
        b"Return-Path: <a@x.org>\r\nDelivered-To: b@y.org\r\nDelivered-To: c@z.org\r\nSubject: x"
    )


async def test_it_runs_as_a_process_keeping_each_message(tmp_path: Path) -> None:
    directory = tmp_path / "mail"
    argv = ["--dir", str(directory), "--port", "0", "--refuse-next", "1"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mentoring.mailcatcher", *argv, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = (await process.stdout.readline()).decode()
        assert line.startswith("mail catcher listening on 127.0.0.1:"), line
        port = int(line.split("127.0.0.1:")[1].split(",")[0])
        settings = SmtpSettings(port=port, timeout_seconds=10)
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@x.org", "b@y.org", "Hello"
        message.set_content("Hi")
        assert (await smtp.send(message, settings)).temporary
        assert (await smtp.send(message, settings)).delivered
        [kept] = mailcatcher.messages(directory)
        assert b"Subject: Hello" in kept.read_bytes()
    finally:
        process.terminate()
        # SIGTERM is its ordinary stop: a clean exit.
        assert await process.wait() == 0
