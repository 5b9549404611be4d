"""Requests one analytics worker forwards to another, authenticated both ways with a shared
secret, ANALYTICS_PEER_SECRET.

A worker that does not hold a program forwards the call to the worker that does, at the URL
that worker advertises in the consumer group, which any member of the group can write. So the
caller's bearer token never goes along; instead:

- The request carries, in the metadata `x-mentoring-analytics-forwarded`, a peer token: an
  HS256 JWT signed with the secret, valid for 30 seconds, for one use (`jti`), one RPC (`rpc`)
  and one worker (`aud`, the owner's advertised URL), holding the caller as the forwarding
  worker verified them (`caller`, a Principal; null when authentication is off). The owner's
  auth interceptor (services/common/auth.py) accepts it instead of a bearer token and applies
  the access policy to that caller, as to a direct one.
- The reply carries, in the trailing metadata `x-mentoring-analytics-proof`, an HMAC-SHA256
  with the secret over the token's `jti` and the serialized reply. The forwarding worker
  checks it before it reads the reply: an address that does not know the secret gets no
  credentials and cannot pass its own figures off as the owner's.

Without the secret a worker neither forwards nor accepts forwarded requests.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Iterable
from dataclasses import MISSING, fields
from typing import Any

import jwt

from services.common.access import Principal
from services.common.errors import Unauthenticated, Unavailable

SECRET_ENV = "ANALYTICS_PEER_SECRET"
# Request metadata: the peer token. Its presence is what marks a request as forwarded.
FORWARDED = "x-mentoring-analytics-forwarded"
# Trailing metadata of a forwarded call's reply: hex HMAC-SHA256(secret, jti + reply bytes).
PROOF = "x-mentoring-analytics-proof"
ISSUER = "analytics-peer"
TOKEN_LIFETIME_SECONDS = 30.0
# Clock skew tolerated between workers.
LEEWAY_SECONDS = 5.0
MIN_SECRET_LENGTH = 32
ALGORITHM = "HS256"


def forwarded_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The peer token of a request that claims to be forwarded; None for any other request."""
    for key, value in metadata or ():
        if key.lower() == FORWARDED:
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    return None


class Peers:
    """One worker's side of forwarding: its own advertised URL, and the shared secret."""

    def __init__(self, secret: str, url: str) -> None:
        if secret and len(secret) < MIN_SECRET_LENGTH:
            raise SystemExit(f"{SECRET_ENV} must be at least {MIN_SECRET_LENGTH} characters")
        self._secret = secret
        self.url = url
        # jti -> expiry of the peer tokens accepted: each is good for one request.
        self._used: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._secret)

    # --- the forwarding worker -----------------------------------------------------------

    def forward_metadata(
        self, owner_url: str, rpc: str, caller: Principal | None, now: float | None = None
    ) -> tuple[tuple[tuple[str, str], ...], str]:
        """The whole metadata of a request forwarded to `owner_url`, and its token's jti. It
        names the caller inside the signed token; their own credentials are not in it."""
        if not self.enabled:
            raise Unavailable(
                f"this program's figures are held by another analytics worker ({owner_url}), "
                f"and this worker cannot forward requests: {SECRET_ENV} is not set"
            )
        issued = time.time() if now is None else now
        jti = uuid.uuid4().hex
        claims = {
            "iss": ISSUER,
            "aud": owner_url,
            "iat": int(issued),
            "exp": int(issued + TOKEN_LIFETIME_SECONDS),
            "jti": jti,
            "rpc": rpc,
            "caller": _caller_claim(caller),
        }
        return ((FORWARDED, jwt.encode(claims, self._secret, algorithm=ALGORITHM)),), jti

    def verified_reply(
        self,
        owner_url: str,
        jti: str,
        reply: bytes,
        trailing: Iterable[tuple[str, str | bytes]] | None,
    ) -> bytes:
        """The reply's bytes once its proof shows the peer knows the secret; UNAVAILABLE
        otherwise, and the reply is not used."""
        proofs = [v for k, v in trailing or () if k.lower() == PROOF]
        proof = proofs[0] if len(proofs) == 1 else ""
        if isinstance(proof, bytes):
            proof = proof.decode(errors="replace")
        if not self.enabled or not hmac.compare_digest(proof, self.proof(jti, reply)):
            raise Unavailable(f"analytics peer at {owner_url} could not be verified")
        return reply

    # --- the owner -----------------------------------------------------------------------

    def accept(self, token: str, rpc: str) -> tuple[str, Principal | None]:
        """The jti and the caller of a forwarded request, if its token is good for this worker,
        this RPC and this once; UNAUTHENTICATED otherwise."""
        if not self.enabled:
            raise Unauthenticated(f"forwarded requests are refused: {SECRET_ENV} is not set")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self.url,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "jti", "rpc"]},
            )
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"forwarded request: invalid peer token: {exc}") from None
        if claims["exp"] - claims["iat"] > TOKEN_LIFETIME_SECONDS:
            raise Unauthenticated("forwarded request: the peer token is valid for too long")
        if claims["rpc"] != rpc:
            raise Unauthenticated(f"forwarded request: the peer token is for {claims['rpc']}")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise Unauthenticated("forwarded request: the peer token has no jti")
        now = time.time()
        self._used = {k: v for k, v in self._used.items() if v + LEEWAY_SECONDS >= now}
        if jti in self._used:
            raise Unauthenticated("forwarded request: the peer token was used already")
        self._used[jti] = float(claims["exp"])
        return jti, _principal(claims.get("caller"))

    def proof(self, jti: str, reply: bytes) -> str:
        return hmac.new(self._secret.encode(), jti.encode() + reply, hashlib.sha256).hexdigest()


def _caller_claim(caller: Principal | None) -> dict[str, Any] | None:
    """The caller as a claim: every field of Principal, sets as sorted lists."""
    if caller is None:
        return None
    claim: dict[str, Any] = {}
    for item in fields(Principal):
        value = getattr(caller, item.name)
        claim[item.name] = sorted(value) if isinstance(value, frozenset) else value
    return claim


def _principal(claim: Any) -> Principal | None:
    """The Principal a caller claim names; every field of it checked against its type."""
    if claim is None:
        return None
    malformed = Unauthenticated("forwarded request: the peer token's caller is malformed")
    if not isinstance(claim, dict):
        raise malformed
    values: dict[str, Any] = {}
    for item in fields(Principal):
        if item.name not in claim:
            if item.default is MISSING and item.default_factory is MISSING:
                raise malformed
            continue
        value = claim[item.name]
        if item.type in ("str", str) and isinstance(value, str):
            values[item.name] = value
        elif (
            item.type in ("frozenset[str]", frozenset[str])
            and isinstance(value, list)
            and all(isinstance(v, str) for v in value)
        ):
            values[item.name] = frozenset(value)
        else:
            raise malformed
    principal = Principal(**values)
    if not (principal.organization_id and principal.subject):
        raise malformed
    return principal
