"""Slack and Microsoft Teams incoming webhooks: the message for a coordinator's digest or an
announcement (pure builders), and one POST of it (aiohttp) classified like an SMTP attempt.

Slack gets `text` (the notification and fallback) and Block Kit `blocks`; text is escaped for
Slack's mrkdwn, so a name cannot mention @channel or make a link. Teams gets an Adaptive Card in
a message, the format Teams' Workflows webhooks take (Office 365 connector cards are retired);
markdown characters are escaped there for the same reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp

from services.notifications import outcomes
from services.notifications.outcomes import Outcome

# Slack caps a section's text at 3000 characters and a message at 50 blocks.
_SLACK_TEXT = 3000
_MAX_LINES = 40
# What makes emphasis, links, code or HTML in Teams' markdown; escaping more ("." or "-")
# would leave visible backslashes where Teams does not treat them as markdown.
_TEAMS_SPECIAL = re.compile(r"([\\`*_\[\]()<>~])")


class Kind(StrEnum):
    SLACK = "slack"
    TEAMS = "teams"


@dataclass(frozen=True, slots=True)
class Digest:
    """A coordinator's summary of a program: headline figures and the lines that need them."""

    organisation: str
    program: str
    title: str
    # (label, value) pairs, e.g. ("Active pairs", "42").
    figures: Sequence[tuple[str, str]] = ()
    # One line each, e.g. "Ana and Ben: no session for 21 days".
    lines: Sequence[str] = ()
    link: str = ""
    link_label: str = "Open the program"


@dataclass(frozen=True, slots=True)
class Announcement:
    organisation: str
    program: str
    title: str
    message: str
    link: str = ""
    link_label: str = "Open the portal"


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """Rendered for one kind of webhook: the JSON body to POST."""

    kind: Kind
    body: Mapping[str, Any] = field(default_factory=dict)


def slack_escape(text: str) -> str:
    """Slack's three control characters (https://api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams_escape(text: str) -> str:
    return _TEAMS_SPECIAL.sub(r"\\\1", text)


def digest(kind: Kind, value: Digest) -> ChatMessage:
    lines = list(value.lines[:_MAX_LINES])
    more = len(value.lines) - len(lines)
    if kind is Kind.SLACK:
        return ChatMessage(kind, _slack_digest(value, lines, more))
    return ChatMessage(kind, _teams_digest(value, lines, more))


def announcement(kind: Kind, value: Announcement) -> ChatMessage:
    if kind is Kind.SLACK:
        return ChatMessage(kind, _slack_announcement(value))
    return ChatMessage(kind, _teams_announcement(value))


# --- Slack ---------------------------------------------------------------------------------


def _slack_header(value: Digest | Announcement) -> str:
    return f"{value.title} — {value.program} ({value.organisation})"


def _slack_digest(value: Digest, lines: list[str], more: int) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [_slack_title(_slack_header(value))]
    if value.figures:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{slack_escape(k)}*\n{slack_escape(v)}"}
                    for k, v in value.figures[:10]
                ],
            }
        )
    if lines:
        bullets = "\n".join(f"• {slack_escape(line)}" for line in lines)
        if more:
            bullets += f"\n… and {more} more"
        blocks.append(_slack_section(bullets))
    if value.link:
        blocks.append(_slack_button(value.link, value.link_label))
    return {"text": slack_escape(_slack_header(value)), "blocks": blocks}


def _slack_announcement(value: Announcement) -> dict[str, Any]:
    blocks = [_slack_title(_slack_header(value)), _slack_section(slack_escape(value.message))]
    if value.link:
        blocks.append(_slack_button(value.link, value.link_label))
    return {"text": slack_escape(f"{_slack_header(value)}: {value.message}"), "blocks": blocks}


def _slack_title(text: str) -> dict[str, Any]:
    # Header blocks are plain text (no mrkdwn to escape) and at most 150 characters.
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}


def _slack_section(mrkdwn: str) -> dict[str, Any]:
    if len(mrkdwn) > _SLACK_TEXT:
        mrkdwn = mrkdwn[: _SLACK_TEXT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def _slack_button(url: str, label: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": label[:75]}, "url": url}
        ],
    }


# --- Teams ---------------------------------------------------------------------------------


def _teams_card(body: list[dict[str, Any]], link: str, label: str) -> dict[str, Any]:
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": label, "url": link}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def _teams_heading(value: Digest | Announcement) -> list[dict[str, Any]]:
    return [
        {
            "type": "TextBlock",
            "text": teams_escape(value.title),
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
        },
        {
            "type": "TextBlock",
            "text": teams_escape(f"{value.program} · {value.organisation}"),
            "isSubtle": True,
            "spacing": "None",
            "wrap": True,
        },
    ]


def _teams_digest(value: Digest, lines: list[str], more: int) -> dict[str, Any]:
    body = _teams_heading(value)
    if value.figures:
        facts = [{"title": teams_escape(k), "value": teams_escape(v)} for k, v in value.figures]
        body.append({"type": "FactSet", "facts": facts})
    for line in lines:
        body.append({"type": "TextBlock", "text": "- " + teams_escape(line), "wrap": True})
    if more:
        body.append({"type": "TextBlock", "text": f"… and {more} more", "isSubtle": True})
    return _teams_card(body, value.link, value.link_label)


def _teams_announcement(value: Announcement) -> dict[str, Any]:
    body = _teams_heading(value)
    body.append({"type": "TextBlock", "text": teams_escape(value.message), "wrap": True})
    return _teams_card(body, value.link, value.link_label)


# --- posting -------------------------------------------------------------------------------


async def post(
    session: aiohttp.ClientSession, url: str, message: ChatMessage, *, timeout_seconds: float = 10.0
) -> Outcome:
    """POSTs the message to the webhook. Never raises for a delivery failure: 2xx is
    delivered; 408, 429 and 5xx, a refused connection or a timeout are temporary (with
    Retry-After when the service gave one); any other answer is permanent (the webhook was
    removed, the payload refused). Redirects are not followed: a webhook URL answers itself.

    `session` is the caller's, so that it can bring its own resolver and TLS settings (the
    webhooks' egress policy)."""
    try:
        async with session.post(
            url,
            json=dict(message.body),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        ) as response:
            detail = (await response.text(errors="replace"))[:200].strip()
            status = response.status
            retry_after = _retry_after(response.headers.get("Retry-After", ""))
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return outcomes.temporary(f"{message.kind} webhook: {type(exc).__name__}: {exc}")
    if 200 <= status < 300:
        return outcomes.delivered(status)
    reason = f"{message.kind} webhook answered HTTP {status}" + (f": {detail}" if detail else "")
    if status in (408, 429) or status >= 500:
        return outcomes.temporary(reason, status, retry_after)
    return outcomes.permanent(reason, status)


def _retry_after(raw: str) -> float | None:
    """Seconds only: Slack and Teams send those (an HTTP date is left to the backoff)."""
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
