"""Field checks every API shares; each failure names the field (INVALID_ARGUMENT)."""

from __future__ import annotations

import re

from services.common.errors import InvalidArgument

# What every id looks like, in requests and in event envelopes.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def require_id(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    if not ID_PATTERN.match(value):
        raise InvalidArgument(field, "must be 1-64 letters, digits or . _ : - characters")
    return value


def require_text(field: str, value: str, max_len: int = 200) -> str:
    text = value.strip()
    if not text:
        raise InvalidArgument(field, "is required")
    if len(text) > max_len:
        raise InvalidArgument(field, f"must be at most {max_len} characters")
    return text
