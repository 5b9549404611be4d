"""Slack and Teams webhook messages (what they hold, escaped) and the poster against a local
HTTP receiver: 2xx delivered, 429 and 5xx temporary (Retry-After kept), other 4xx permanent,
no redirect followed, nobody listening temporary."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from services.notifications import chat
from services.notifications.chat import Kind

DIGEST = chat.Digest(
    organisation="Acme",
    program="Women in Tech 2026",
    title="Daily digest",
    figures=[("Active pairs", "42"), ("Sessions this week", "17")],
    lines=["Ana <!channel> and Ben: no session for 21 days", "[Cy](https://evil.example) *bold*"],
    link="https://portal.acme.example/programs/wit",
)
ANNOUNCEMENT = chat.Announcement(
    organisation="Acme",
    program="Women in Tech 2026",
    title="Kick-off on Monday",
    message="Join us at 10:00 & bring <questions>",
)


def test_slack_digest_has_text_blocks_and_escapes_people_content() -> None:
    body = chat.digest(Kind.SLACK, DIGEST).body
    assert body["text"] == "Daily digest — Women in Tech 2026 (Acme)"
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds == ["header", "section", "section", "actions"]
    fields = [f["text"] for f in body["blocks"][1]["fields"]]
    assert fields == ["*Active pairs*\n42", "*Sessions this week*\n17"]
    lines = body["blocks"][2]["text"]["text"]
    assert "&lt;!channel&gt;" in lines and "<!channel>" not in lines
    assert body["blocks"][3]["elements"][0]["url"] == DIGEST.link
    json.dumps(body)  # what is posted


def test_slack_digest_caps_its_lines() -> None:
    many = chat.Digest("Acme", "P", "Digest", lines=[f"line {i}" for i in range(100)])
    text = chat.digest(Kind.SLACK, many).body["blocks"][1]["text"]["text"]
    assert text.count("•") == 40
    assert text.endswith("… and 60 more")


def test_slack_announcement() -> None:
    body = chat.announcement(Kind.SLACK, ANNOUNCEMENT).body
    assert body["blocks"][0]["text"]["text"].startswith("Kick-off on Monday")
    assert body["blocks"][1]["text"]["text"] == "Join us at 10:00 &amp; bring &lt;questions&gt;"
    assert "&lt;questions&gt;" in body["text"]


def card(body: dict[str, Any]) -> dict[str, Any]:
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    content: dict[str, Any] = attachment["content"]
    assert content["type"] == "AdaptiveCard"
    return content


def test_teams_digest_is_an_adaptive_card_with_facts_and_escaped_lines() -> None:
    content = card(dict(chat.digest(Kind.TEAMS, DIGEST).body))
    texts = [b.get("text") for b in content["body"] if b["type"] == "TextBlock"]
    assert texts[0] == "Daily digest"
    assert "- \\[Cy\\]\\(https://evil.example\\) \\*bold\\*" in texts
    [facts] = [b["facts"] for b in content["body"] if b["type"] == "FactSet"]
    assert facts[0] == {"title": "Active pairs", "value": "42"}
    assert content["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open the program", "url": DIGEST.link}
    ]


def test_teams_announcement_without_link_has_no_actions() -> None:
    content = card(dict(chat.announcement(Kind.TEAMS, ANNOUNCEMENT).body))
    assert content["body"][-1]["text"] == "Join us at 10:00 & bring \\<questions\\>"
    assert "actions" not in content


@dataclass
class Receiver:
    """A webhook endpoint answering the scripted statuses in turn (then 200)."""

    statuses: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    received: list[Any] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        status = self.statuses.pop(0) if self.statuses else 200
        if status in (301, 302, 307):
            return web.Response(status=status, headers={"Location": self.url + "/elsewhere"})
        return web.Response(
            status=status,
            text="ok" if status < 300 else "no_service",
            headers=self.headers if status >= 400 else {},
        )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    app.router.add_post("/hook/elsewhere", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    found.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield found
    finally:
        await runner.cleanup()


async def test_posting_delivers_the_payload(receiver: Receiver) -> None:
    message = chat.digest(Kind.SLACK, DIGEST)
    async with aiohttp.ClientSession() as session:
        outcome = await chat.post(session, receiver.url, message)
    assert outcome.delivered and outcome.code == 200
    assert receiver.received == [message.body]


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (429, "temporary"),
        (500, "temporary"),
        (503, "temporary"),
        (408, "temporary"),
        (400, "permanent"),
        (403, "permanent"),
        (404, "permanent"),
        (410, "permanent"),
        (302, "permanent"),
    ],
)
async def test_answers_are_classified(receiver: Receiver, status: int, verdict: str) -> None:
    receiver.statuses = [status]
    async with aiohttp.ClientSession() as session:
        outcome = await chat.post(
            session, receiver.url, chat.announcement(Kind.TEAMS, ANNOUNCEMENT)
        )
    assert outcome.verdict == verdict
    assert outcome.code == status
    assert f"HTTP {status}" in outcome.reason
    # A redirect is not followed.
    assert len(receiver.received) == 1


async def test_retry_after_is_kept(receiver: Receiver) -> None:
    receiver.statuses = [429]
    receiver.headers = {"Retry-After": "30"}
    async with aiohttp.ClientSession() as session:
        outcome = await chat.post(session, receiver.url, chat.digest(Kind.SLACK, DIGEST))
    assert outcome.temporary and outcome.retry_after == 30.0
    assert "no_service" in outcome.reason


async def test_nobody_listening_is_temporary() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        outcome = await chat.post(
            session, f"http://127.0.0.1:{port}/hook", chat.digest(Kind.SLACK, DIGEST)
        )
    assert outcome.temporary and outcome.code == 0
