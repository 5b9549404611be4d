"""Development tokens: HS256 JWTs signed with the services' AUTH_JWT_SECRET.

In production tokens come from the company's identity provider; this is for `make up`, demos and
tests with authentication on (`mentoring auth token`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

import jwt

from services.common.auth import PARTICIPANT_IDS_CLAIM
from services.common.config import AuthSettings


def _put(claims: dict[str, Any], name: str, value: Any) -> None:
    """Set a claim; a dotted name (realm_access.roles) nests, as the verifier reads it."""
    *parents, last = name.split(".")
    for part in parents:
        claims = claims.setdefault(part, {})
    claims[last] = value


def mint(
    settings: AuthSettings,
    *,
    organization: str,
    subject: str,
    roles: Iterable[str],
    participant_ids: Iterable[str] = (),
    email: str = "",
    ttl_seconds: float = 3600,
    now: float | None = None,
) -> str:
    """A token the services configured with `settings` accept (its secret, issuer, audience
    and claim names)."""
    if not settings.jwt_secret:
        raise ValueError("AUTH_JWT_SECRET is not set: there is no secret to sign with")
    issued = time.time() if now is None else now
    claims: dict[str, Any] = {
        "sub": subject,
        "iat": int(issued),
        "exp": int(issued + ttl_seconds),
        "jti": uuid.uuid4().hex,
    }
    _put(claims, settings.org_claim, organization)
    _put(claims, settings.roles_claim, sorted(set(roles)))
    if extra := sorted(set(participant_ids)):
        claims[PARTICIPANT_IDS_CLAIM] = extra
    if email:
        _put(claims, settings.email_claim, email)
    if settings.issuer:
        claims["iss"] = settings.issuer
    if settings.audience:
        claims["aud"] = settings.audience
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
