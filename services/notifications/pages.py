"""The service's plain HTTP pages, served beside its RPCs (grpc_server.run_service `pages`) and
routed by the gateway: a participant's calendar feed, GET /calendar/<token>.ics, and an e-mail's
one-click unsubscribe, /unsubscribe/<token> (RFC 8058: a POST with List-Unsubscribe=One-Click
does it; a GET only asks, since mail scanners open links). The token in the path is the only
credential (links.py); an unknown one is a 404 like any missing page.

Small ASGI callables; the database work runs off the event loop (storage.run_sync)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from urllib.parse import parse_qs

from services.common import clock
from services.common.config import MailSettings
from services.common.http_server import Asgi, Receive, Scope, Send
from services.common.storage import run_sync
from services.notifications import calendar_feeds, links, preferences, unsubscribes

# A one-click body is 26 bytes; a browser's form a few more.
MAX_BODY = 4096
ONE_CLICK = ("List-Unsubscribe", "One-Click")
CALENDAR_TYPE = "text/calendar; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
# The pages hold or lead to a credential: no caching anywhere, no referrer, no indexing, and
# nothing on them but their own form.
_PRIVATE = [
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-robots-tag", b"noindex, nofollow"),
    (b"x-content-type-options", b"nosniff"),
]
_CSP = (
    b"content-security-policy",
    b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
)
# What unsubscribing from each category stops, in the page's words.
WHAT = {
    preferences.NUDGES: "reminders about your mentoring",
    preferences.ANNOUNCEMENTS: "announcements from your program",
    preferences.MATCHES: "match proposals and new mentoring relationships",
    preferences.SESSIONS: "session invitations and their changes",
}


async def reply(
    scope: Scope,
    send: Send,
    status: int,
    content_type: str,
    body: bytes,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *_PRIVATE,
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


async def read_body(receive: Receive, limit: int = MAX_BODY) -> bytes | None:
    """The request body, or None when it is longer than `limit`."""
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return body


def header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def one_click(body: bytes, content_type: str) -> bool:
    """Whether the body says List-Unsubscribe=One-Click, as a urlencoded form (browsers, and
    most mail providers) or multipart/form-data (RFC 8058 allows both)."""
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
        form = BytesParser(policy=policy.HTTP).parsebytes(head + body)
        if not isinstance(form, EmailMessage) or not form.is_multipart():
            return False
        return any(
            part.get_param("name", header="content-disposition") == ONE_CLICK[0]
            and str(part.get_content()).strip() == ONE_CLICK[1]
            for part in form.iter_parts()
            if isinstance(part, EmailMessage)
        )
    fields = parse_qs(body.decode("latin-1"), keep_blank_values=True)
    return fields.get(ONE_CLICK[0]) == [ONE_CLICK[1]]


def page(title: str, *paragraphs: str, form: str = "") -> bytes:
    """A small HTML page; `paragraphs` are escaped, `form` is markup."""
    text = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        '<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto; padding: 0 1em">'
        f"<h1>{html.escape(title)}</h1>{text}{form}</body></html>\n"
    ).encode()


def _not_found() -> bytes:
    return page("Link not found", "This link does not work (any more).")


def _what(categories: Sequence[str]) -> str:
    return ", ".join(WHAT.get(c, c) for c in categories)


class CalendarPage:
    """GET /calendar/<token>.ics: the participant's sessions as text/calendar."""

    def __init__(self, sender: str, portal_url: str) -> None:
        self._sender = sender
        self._portal_url = portal_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await reply(scope, send, 405, "text/plain", b"GET only\n", [(b"allow", b"GET, HEAD")])
            return
        token = links.feed_token(scope["path"])
        ics = None
        if token is not None:
            ics = await run_sync(
                calendar_feeds.calendar,
                links.token_hash(token),
                self._sender,
                self._portal_url,
                clock.now(),
            )
        if ics is None:
            await reply(scope, send, 404, "text/plain", b"no such calendar\n")
            return
        disposition = (b"content-disposition", b'inline; filename="mentoring.ics"')
        await reply(scope, send, 200, CALENDAR_TYPE, ics, [disposition])


class UnsubscribePage:
    """/unsubscribe/<token>: GET asks (a button that POSTs), POST with List-Unsubscribe=One-Click
    turns the e-mail's categories off."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD", "POST"):
            allow = [(b"allow", b"GET, HEAD, POST")]
            await reply(scope, send, 405, "text/plain", b"GET or POST only\n", allow)
            return
        token = links.unsubscribe_token(scope["path"])
        hashed = links.token_hash(token) if token is not None else ""
        if method == "POST":
            await self._post(scope, receive, send, hashed)
            return
        found = await run_sync(unsubscribes.target, hashed) if hashed else None
        if found is None:
            await reply(scope, send, 404, HTML_TYPE, _not_found(), [_CSP])
            return
        # Posts the one-click body to this very URL (no action: the page's own address).
        form = (
            f'<form method="post"><input type="hidden" name="{ONE_CLICK[0]}" '
            f'value="{ONE_CLICK[1]}"><button type="submit">Unsubscribe</button></form>'
        )
        body = page(
            "Unsubscribe?",
            f"Stop e-mails from {found.organization_id} about {_what(found.categories)}?",
            "You can turn them on again in your notification preferences.",
            form=form,
        )
        await reply(scope, send, 200, HTML_TYPE, body, [_CSP])

    async def _post(self, scope: Scope, receive: Receive, send: Send, hashed: str) -> None:
        body = await read_body(receive)
        if body is None:
            await reply(scope, send, 413, "text/plain", b"body too large\n")
            return
        if not one_click(body, header(scope, b"content-type")):
            message = b"the body must be List-Unsubscribe=One-Click (RFC 8058)\n"
            await reply(scope, send, 400, "text/plain", message)
            return
        found = await run_sync(unsubscribes.apply, hashed, clock.now()) if hashed else None
        if found is None:
            await reply(scope, send, 404, HTML_TYPE, _not_found(), [_CSP])
            return
        body = page(
            "Unsubscribed",
            f"You will get no more e-mails about {_what(found.categories)}.",
            "You can turn them on again in your notification preferences.",
        )
        await reply(scope, send, 200, HTML_TYPE, body, [_CSP])


def pages(settings: MailSettings) -> Mapping[str, Asgi]:
    """The pages by their first path segment, for grpc_server.run_service."""
    return {
        links.FEED_PREFIX: CalendarPage(settings.smtp.sender, settings.portal_url),
        links.UNSUBSCRIBE_PREFIX: UnsubscribePage(),
    }
