"""Keyset pagination for List RPCs: an opaque token holding the last key returned."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from services.common.errors import InvalidArgument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


def page_size(requested: int) -> int:
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"must be 0 (default) to {MAX_PAGE_SIZE}")
    return requested


def encode_token(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode()).decode()


def next_token(rows: Sequence[T], size: int, key: Callable[[T], str]) -> str:
    """The token of the page after these rows, read `size` at most: after the last row's key;
    none when the page came short (it was the last)."""
    return encode_token(key(rows[-1])) if rows and len(rows) == size else ""


def decode_token(token: str) -> str | None:
    if not token:
        return None
    try:
        # validate=True: by default base64 skips unknown characters, turning garbage into "".
        key = base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        key = ""
    if not key:
        raise InvalidArgument("page_token", "is not a token this API returned")
    return key
