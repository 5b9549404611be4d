"""An organisation's branding as SetOrganizationBranding gives it, checked: the name, colour
and portal its mails and invitations show. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.common.errors import InvalidArgument

MAX_NAME = 100
MAX_URL = 2000
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True, slots=True)
class Branding:
    display_name: str
    # Lower-case #rrggbb.
    brand_colour: str
    # Empty: the deployment's portal.
    portal_url: str = ""


def display_name(value: str) -> str:
    name = value.strip()
    if not name:
        raise InvalidArgument("display_name", "is required")
    if len(name) > MAX_NAME:
        raise InvalidArgument("display_name", f"must be at most {MAX_NAME} characters")
    # It becomes the From header's name and the invitations' organiser: no line breaks.
    if any(not c.isprintable() for c in name):
        raise InvalidArgument("display_name", "must not contain line breaks or control characters")
    return name


def brand_colour(value: str) -> str:
    # Mail styles take it as is: only a strict #rrggbb is safe there.
    if not _COLOUR.fullmatch(value):
        raise InvalidArgument("brand_colour", 'must be "#rrggbb", e.g. "#0b6e4f"')
    return value.lower()


def portal_url(value: str) -> str:
    if not value:
        return ""
    if len(value) > MAX_URL:
        raise InvalidArgument("portal_url", f"must be at most {MAX_URL} characters")
    if any(c.isspace() or not c.isprintable() or c in "<>\"'" for c in value):
        raise InvalidArgument("portal_url", "must not contain spaces, quotes or angle brackets")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InvalidArgument("portal_url", "is not a URL") from None
    if parts.scheme != "https":
        raise InvalidArgument("portal_url", "must be https")
    if not parts.hostname:
        raise InvalidArgument("portal_url", "must name a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument("portal_url", "must not carry a user name or password")
    return value


def checked(name: str, colour: str, url: str) -> Branding:
    """The request's fields in order, each failure naming its field."""
    return Branding(display_name(name), brand_colour(colour), portal_url(url))
