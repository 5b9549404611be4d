"""Authenticated callers: JWT bearer tokens, verified by one server interceptor.

Callers send the gRPC metadata `authorization: Bearer <JWT>` (company portals and API gateways
forward their user's token; nginx passes the header on). The token is signed with the shared
secret `AUTH_JWT_SECRET` (HS256) or by the company's identity provider, whose public key is in
`AUTH_JWT_PUBLIC_KEY_FILE` (RS*, PS*, ES*, EdDSA). Its claims:

    org              the caller's organisation (AUTH_JWT_ORG_CLAIM renames it)
    sub              the caller; for a participant, the participant id they act as
    roles            coordinator, participant and/or service (AUTH_JWT_ROLES_CLAIM renames it;
                     a list, or one space-separated string)
    participant_ids  optional: more participant ids the subject acts as
    exp              required, at most AUTH_MAX_TOKEN_LIFETIME_SECONDS (24 h) after iat and
                     after now; iss and aud too when AUTH_JWT_ISSUER / AUTH_JWT_AUDIENCE are set

A missing or invalid token is UNAUTHENTICATED; what the caller may do is decided by the policy
table in services/common/access.py (PERMISSION_DENIED). Servicers never parse tokens: the
verified principal is `auth.current()` while their RPC runs. A request one analytics worker
forwards to another carries a peer token instead, naming the caller it verified
(services/common/peers.py); the same interceptor checks it.

With no key configured authentication is off (the embedded development mode of `make up` and
the tests): every caller is trusted, `current()` is None, and the service warns at startup.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from grpc import aio

from services.common import access
from services.common.access import Principal
from services.common.config import AuthSettings
from services.common.errors import PermissionDenied, Unauthenticated
from services.common.peers import PROOF, Peers, forwarded_token
from services.common.validation import require_text

log = logging.getLogger(__name__)

AUTHORIZATION = "authorization"
PARTICIPANT_IDS_CLAIM = "participant_ids"
MIN_SECRET_LENGTH = 32
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
_PUBLIC_KEY_ALGORITHMS: tuple[tuple[type, tuple[str, ...]], ...] = (
    (rsa.RSAPublicKey, ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")),
    (ec.EllipticCurvePublicKey, ("ES256", "ES384", "ES512")),
    (ed25519.Ed25519PublicKey, ("EdDSA",)),
    (ed448.Ed448PublicKey, ("EdDSA",)),
)

_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "mentoring_principal", default=None
)


def current() -> Principal | None:
    """The verified caller of the RPC being served; None when authentication is off."""
    return _current.get()


def require_pair_member(mentor_id: str, mentee_id: str, field_name: str) -> None:
    """For RPCs that name a pair without an actor: a participant caller must be one of them."""
    access.require_pair_member(current(), mentor_id, mentee_id, field_name)


def actor(field_name: str, claimed: str, *, required: bool, max_len: int = 200) -> str:
    """Who performs an audited action (an erasure, an override, a matching run). With
    authentication, the verified caller, so that a record never names someone else (a request
    naming another is refused); without it, the request's own value."""
    principal = current()
    value = claimed.strip()
    if principal is not None:
        if value and value != principal.subject:
            raise PermissionDenied(f"{field_name}: must be the caller ({principal.subject})")
        return principal.subject
    return require_text(field_name, value, max_len) if value or required else ""


def sees_private(participant_id: str) -> bool:
    """Whether the caller may see what is private to this participant (their session notes):
    only the participant themselves, not a coordinator acting for them."""
    principal = current()
    return principal is None or principal.acts_as(participant_id)


class TokenVerifier:
    """Checks signature, expiry, issuer and audience, and turns the claims into a Principal."""

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        # Algorithm -> key. The token's header picks the algorithm, but only among these: an
        # HMAC token is never checked against the public key, nor the reverse.
        self._keys: dict[str, Any] = {}
        if settings.jwt_secret:
            if len(settings.jwt_secret) < MIN_SECRET_LENGTH:
                raise SystemExit(f"AUTH_JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters")
            self._keys.update(dict.fromkeys(HMAC_ALGORITHMS, settings.jwt_secret))
        if settings.public_key_file:
            key = _load_public_key(settings.public_key_file)
            for kind, algorithms in _PUBLIC_KEY_ALGORITHMS:
                if isinstance(key, kind):
                    self._keys.update(dict.fromkeys(algorithms, key))
        if not self._keys:
            raise SystemExit("authentication needs AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY_FILE")

    def verify(self, token: str) -> Principal:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        if not isinstance(algorithm, str) or algorithm not in self._keys:
            raise Unauthenticated(f"invalid token: algorithm {algorithm!r} is not accepted")
        key = self._keys[algorithm]
        s = self._settings
        required = ["exp", "sub"] + ["iss"] * bool(s.issuer) + ["aud"] * bool(s.audience)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=s.audience or None,
                issuer=s.issuer or None,
                leeway=s.leeway_seconds,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("invalid token: it has expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        _check_lifetime(claims, s)
        return principal_from(claims, s)


def _check_lifetime(claims: dict[str, Any], settings: AuthSettings) -> None:
    """Refuse a token valid for longer than the configured maximum: from its `iat` when it
    has one, and from now in any case (a token without `iat` cannot hide its lifetime)."""
    limit = settings.max_token_lifetime_seconds
    expires = float(claims["exp"])
    starts = [time.time()]
    if "iat" in claims:
        if not isinstance(claims["iat"], int | float):
            raise Unauthenticated("invalid token: the claim 'iat' must be a number")
        starts.append(float(claims["iat"]))
    if any(expires - start > limit + settings.leeway_seconds for start in starts):
        raise Unauthenticated(
            f"invalid token: it is valid for longer than {limit:g} seconds "
            "(AUTH_MAX_TOKEN_LIFETIME_SECONDS)"
        )


def _load_public_key(path: str) -> Any:
    try:
        return load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise SystemExit(
            f"AUTH_JWT_PUBLIC_KEY_FILE={path!r} is not a readable PEM public key: {exc}"
        ) from None


def _claim(claims: dict[str, Any], name: str) -> Any:
    """A claim by name; a dotted name reaches into objects (Keycloak's realm_access.roles)."""
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise Unauthenticated(f"invalid token: the claim {name!r} is missing")
        value = value[part]
    return value


def _text(claims: dict[str, Any], name: str) -> str:
    value = _claim(claims, name)
    if not isinstance(value, str) or not value:
        raise Unauthenticated(f"invalid token: the claim {name!r} must be a non-empty string")
    return value


def _strings(value: Any, name: str) -> frozenset[str]:
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Unauthenticated(f"invalid token: the claim {name!r} must be a list of strings")
    return frozenset(v for v in value if v)


def principal_from(claims: dict[str, Any], settings: AuthSettings) -> Principal:
    subject = _text(claims, "sub")
    extra = claims.get(PARTICIPANT_IDS_CLAIM, [])
    return Principal(
        organization_id=_text(claims, settings.org_claim),
        subject=subject,
        roles=_strings(_claim(claims, settings.roles_claim), settings.roles_claim),
        participant_ids=frozenset({subject}) | _strings(extra, PARTICIPANT_IDS_CLAIM),
        email=_optional_text(claims, settings.email_claim),
    )


def _optional_text(claims: dict[str, Any], name: str) -> str:
    try:
        value = _claim(claims, name)
    except Unauthenticated:
        return ""
    return value.strip() if isinstance(value, str) else ""


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    values = [v for k, v in metadata or () if k.lower() == AUTHORIZATION]
    if not values:
        raise Unauthenticated(
            "missing credentials: send the metadata `authorization: Bearer <token>`"
        )
    value = values[0].decode() if isinstance(values[0], bytes) else values[0]
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization: expected `Bearer <token>`")
    return token.strip()


class AuthInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    """Verifies the caller of every mentoring.v1 RPC and applies the access policy before the
    servicer runs. Sits inside ObservabilityInterceptor, so refusals are counted by code.

    A request another worker forwarded (services/common/peers.py) shows a peer token instead
    of a bearer token; its caller is the one the token carries, under the same policy, and its
    reply gets the proof the forwarding worker checks. Without `peers` no forwarded request is
    accepted; without a verifier (authentication off) only forwarded requests are checked."""

    def __init__(self, verifier: TokenVerifier | None, peers: Peers | None = None) -> None:
        self._verifier = verifier
        self._peers = peers

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        service, _, method = details.method.lstrip("/").rpartition("/")
        if handler is None or not access.governs(service):
            return handler
        if handler.unary_unary is None:
            # Every mentoring.v1 RPC is unary (tests/unit/test_access.py); refuse, never pass.
            raise RuntimeError(f"{details.method}: only unary RPCs can be authorised")
        behavior = handler.unary_unary
        serialize = handler.response_serializer
        verifier, peers = self._verifier, self._peers

        async def authorised(request: Any, context: aio.ServicerContext) -> Any:
            metadata = context.invocation_metadata()
            forwarded = forwarded_token(metadata)
            jti = ""
            principal: Principal | None = None
            if forwarded is not None:
                if peers is None:
                    raise Unauthenticated("forwarded requests are not accepted by this service")
                jti, principal = peers.accept(forwarded, details.method)
                if principal is None and verifier is not None:
                    raise Unauthenticated(
                        "forwarded request: the peer token names no caller, and this worker "
                        "requires authentication"
                    )
            elif verifier is not None:
                principal = verifier.verify(bearer_token(metadata))
            if principal is not None:
                access.authorize(principal, service, method, request)
            token = _current.set(principal)
            try:
                reply = await behavior(request, context)
            finally:
                _current.reset(token)
            if forwarded is None or peers is None:
                return reply
            # The proof covers the very bytes sent back: the reply is serialized here, once.
            data = serialize(reply) if serialize is not None else reply
            context.set_trailing_metadata(((PROOF, peers.proof(jti, data)),))
            return data

        return grpc.unary_unary_rpc_method_handler(
            authorised,
            request_deserializer=handler.request_deserializer,
            response_serializer=_passing_bytes(serialize),
        )


def _passing_bytes(serialize: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """The handler's serializer, leaving a reply that is serialized already as it is."""
    if serialize is None:
        return None
    return lambda reply: reply if isinstance(reply, bytes) else serialize(reply)


def server_interceptors(
    settings: AuthSettings, service: str, peers: Peers | None = None
) -> list[aio.ServerInterceptor]:
    """The authentication part of the interceptor chain: none (with a warning) when no key is
    configured, unless the service takes forwarded requests (`peers`), which are checked even
    then."""
    if not settings.enabled:
        log.warning(
            "AUTHENTICATION IS OFF for %s: no AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY_FILE is set, "
            "so every caller may read and change every organisation's data. Fine for `make up` "
            "and tests on loopback; set one of them anywhere else (see README, Authentication).",
            service,
        )
        return [] if peers is None else [AuthInterceptor(None, peers)]
    verifier = TokenVerifier(settings)
    log.info(
        "%s requires bearer tokens (issuer %s, audience %s)",
        service,
        settings.issuer or "any",
        settings.audience or "none",
    )
    return [AuthInterceptor(verifier, peers)]
