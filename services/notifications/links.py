"""The capability URLs the service hands out: a participant's calendar feed and the one-click
unsubscribe link of an e-mail. Each holds a random token that is its only credential (calendar
programs and mail providers send no other), so the database keeps only the token's hash: a
copy of the database opens no calendar and unsubscribes nobody. Pure."""

from __future__ import annotations

import hashlib
import re
import secrets

FEED_PREFIX = "/calendar/"
FEED_SUFFIX = ".ics"
UNSUBSCRIBE_PREFIX = "/unsubscribe/"
# 32 random bytes, URL-safe base64 without padding: 43 characters.
TOKEN_BYTES = 32
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What is stored and looked up. A plain SHA-256 is enough: the token has 256 random bits,
    so no guess list can be tried against the hash."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def feed_url(base: str, token: str) -> str:
    return f"{base.rstrip('/')}{FEED_PREFIX}{token}{FEED_SUFFIX}"


def unsubscribe_url(base: str, token: str) -> str:
    return f"{base.rstrip('/')}{UNSUBSCRIBE_PREFIX}{token}"


def _token_after(path: str, prefix: str, suffix: str = "") -> str | None:
    if not path.startswith(prefix) or not path.endswith(suffix):
        return None
    token = path[len(prefix) : len(path) - len(suffix)]
    return token if _TOKEN.fullmatch(token) else None


def feed_token(path: str) -> str | None:
    """The token of /calendar/<token>.ics; None for any other path."""
    return _token_after(path, FEED_PREFIX, FEED_SUFFIX)


def unsubscribe_token(path: str) -> str | None:
    """The token of /unsubscribe/<token>; None for any other path."""
    return _token_after(path, UNSUBSCRIBE_PREFIX)
