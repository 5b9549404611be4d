"""Bearer token verification (services/common/auth.py) and the development minting helper."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mentoring.tokens import mint
from services.common.access import Principal
from services.common.auth import TokenVerifier, bearer_token, server_interceptors
from services.common.config import AuthSettings, Settings
from services.common.errors import Unauthenticated

SECRET = "s" * 40
SETTINGS = AuthSettings(jwt_secret=SECRET, issuer="https://idp.example", audience="mentoring")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "p-1",
        "org": "acme",
        "roles": ["participant"],
        "iss": "https://idp.example",
        "aud": "mentoring",
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs256(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(token)
    return str(caught.value)


def test_a_valid_token_gives_its_principal() -> None:
    token = hs256(claims(roles=["participant", "coordinator"], participant_ids=["p-2"]))
    principal = TokenVerifier(SETTINGS).verify(token)
    assert principal == Principal(
        organization_id="acme",
        subject="p-1",
        roles=frozenset({"participant", "coordinator"}),
        participant_ids=frozenset({"p-1", "p-2"}),
    )
    assert principal.is_staff
    assert principal.acts_as("p-2") and not principal.acts_as("p-3")


def test_roles_may_be_one_space_separated_string() -> None:
    principal = TokenVerifier(SETTINGS).verify(hs256(claims(roles="coordinator service")))
    assert principal.roles == {"coordinator", "service"}


def test_expired_token() -> None:
    past = int(time.time()) - 3600
    message = refused(TokenVerifier(SETTINGS), hs256(claims(iat=past - 60, exp=past)))
    assert message == "invalid token: it has expired"


def test_leeway_tolerates_small_clock_skew() -> None:
    just_expired = hs256(claims(exp=int(time.time()) - 5))
    assert TokenVerifier(SETTINGS).verify(just_expired).subject == "p-1"
    strict = AuthSettings(
        jwt_secret=SECRET, issuer=SETTINGS.issuer, audience="mentoring", leeway_seconds=0
    )
    assert "expired" in refused(TokenVerifier(strict), just_expired)


def test_wrong_signature() -> None:
    forged = hs256(claims(), secret="x" * 40)
    assert "Signature verification failed" in refused(TokenVerifier(SETTINGS), forged)


def test_wrong_audience_and_issuer() -> None:
    verifier = TokenVerifier(SETTINGS)
    assert "audience" in refused(verifier, hs256(claims(aud="another-app"))).lower()
    assert "issuer" in refused(verifier, hs256(claims(iss="https://evil.example"))).lower()
    # A token meant for some audience is refused where none is configured: it is not ours.
    no_audience = TokenVerifier(AuthSettings(jwt_secret=SECRET))
    assert "audience" in refused(no_audience, hs256(claims())).lower()


@pytest.mark.parametrize("claim", ["sub", "exp", "aud", "iss", "org", "roles"])
def test_a_missing_claim_is_refused_naming_it(claim: str) -> None:
    message = refused(TokenVerifier(SETTINGS), hs256(claims(**{claim: None})))
    assert f'"{claim}"' in message or f"'{claim}'" in message


@pytest.mark.parametrize(
    ("overrides", "claim"),
    [
        ({"org": ""}, "org"),
        ({"org": 7}, "org"),
        ({"roles": [1, 2]}, "roles"),
        ({"roles": {"coordinator": True}}, "roles"),
        ({"participant_ids": "p-1,p-2"}, None),
    ],
)
def test_malformed_claims_are_refused(overrides: dict[str, Any], claim: str | None) -> None:
    token = hs256(claims(**overrides))
    if claim is None:
        # A string is read as space-separated ids: "p-1,p-2" is one (odd) id, not an error.
        assert TokenVerifier(SETTINGS).verify(token).participant_ids == {"p-1", "p-1,p-2"}
        return
    assert f"'{claim}'" in refused(TokenVerifier(SETTINGS), token)


def test_unsigned_and_garbage_tokens_are_refused() -> None:
    unsigned = jwt.encode(claims(), key=None, algorithm="none")
    verifier = TokenVerifier(SETTINGS)
    assert "algorithm 'none' is not accepted" in refused(verifier, unsigned)
    assert refused(verifier, "not-a-jwt").startswith("invalid token:")


def test_claim_names_are_configurable_with_dotted_paths() -> None:
    settings = AuthSettings(jwt_secret=SECRET, org_claim="tenant", roles_claim="realm.roles")
    token = hs256(
        claims(org=None, roles=None, aud=None, tenant="acme", realm={"roles": ["coordinator"]})
    )
    principal = TokenVerifier(settings).verify(token)
    assert (principal.organization_id, principal.roles) == ("acme", {"coordinator"})
    # The minting helper writes them where the verifier reads them.
    minted = mint(settings, organization="acme", subject="me", roles=["coordinator"])
    assert TokenVerifier(settings).verify(minted).roles == {"coordinator"}


def write_public_key(tmp_path: Path, private_key: Any) -> Path:
    path = tmp_path / "idp.pem"
    path.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.mark.parametrize(
    ("private_key", "algorithm"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        (ec.generate_private_key(ec.SECP256R1()), "ES256"),
    ],
)
def test_tokens_from_an_identity_provider_verify_with_its_public_key(
    tmp_path: Path, private_key: Any, algorithm: str
) -> None:
    settings = AuthSettings(public_key_file=str(write_public_key(tmp_path, private_key)))
    verifier = TokenVerifier(settings)
    payload = claims(iss=None, aud=None)
    token = jwt.encode(payload, private_key, algorithm=algorithm)
    assert verifier.verify(token).organization_id == "acme"
    # An HMAC token is never checked against the public key (algorithm confusion).
    assert "algorithm 'HS256' is not accepted" in refused(verifier, hs256(payload))
    other = ec.generate_private_key(ec.SECP256R1()) if algorithm == "ES256" else None
    if other is not None:
        assert "Signature" in refused(verifier, jwt.encode(payload, other, algorithm="ES256"))


def test_bad_key_configuration_stops_the_service_at_startup(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="at least 32"):
        TokenVerifier(AuthSettings(jwt_secret="short"))
    garbage = tmp_path / "key.pem"
    garbage.write_text("not a key")
    with pytest.raises(SystemExit, match="AUTH_JWT_PUBLIC_KEY_FILE"):
        TokenVerifier(AuthSettings(public_key_file=str(garbage)))
    with pytest.raises(SystemExit, match="AUTH_JWT_PUBLIC_KEY_FILE"):
        TokenVerifier(AuthSettings(public_key_file=str(tmp_path / "missing.pem")))


def test_bearer_token_from_metadata() -> None:
    assert bearer_token([("x-other", "1"), ("authorization", "Bearer abc.def")]) == "abc.def"
    assert bearer_token([("authorization", "bearer  abc ")]) == "abc"
    with pytest.raises(Unauthenticated, match="missing credentials"):
        bearer_token([("x-other", "1")])
    with pytest.raises(Unauthenticated, match="missing credentials"):
        bearer_token(None)
    for bad in ("Basic dXNlcjpwYXNz", "Bearer", "abc.def"):
        with pytest.raises(Unauthenticated, match="expected `Bearer <token>`"):
            bearer_token([("authorization", bad)])


def test_settings_from_the_environment() -> None:
    assert not Settings.from_env("enrollment", {}).auth.enabled
    env = {
        "AUTH_JWT_SECRET": SECRET,
        "AUTH_JWT_ISSUER": " https://idp.example ",
        "AUTH_JWT_AUDIENCE": "mentoring",
        "AUTH_JWT_LEEWAY_SECONDS": "5",
        "AUTH_JWT_ROLES_CLAIM": "groups",
    }
    auth = Settings.from_env("enrollment", env).auth
    assert auth.enabled
    assert (auth.issuer, auth.audience, auth.leeway_seconds) == (
        "https://idp.example",
        "mentoring",
        5,
    )
    assert (auth.org_claim, auth.roles_claim) == ("org", "groups")
    assert AuthSettings.from_env({"AUTH_JWT_PUBLIC_KEY_FILE": "/k.pem"}).enabled


def test_off_without_a_key_and_the_service_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert server_interceptors(AuthSettings(), "enrollment") == []
    assert "AUTHENTICATION IS OFF for enrollment" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert len(server_interceptors(SETTINGS, "enrollment")) == 1
    assert "AUTHENTICATION IS OFF" not in caplog.text


def test_minted_tokens_verify_and_carry_what_was_asked() -> None:
    token = mint(
        SETTINGS,
        organization="acme",
        subject="m-1",
        roles=["participant"],
        participant_ids=["m-2"],
        ttl_seconds=60,
    )
    principal = TokenVerifier(SETTINGS).verify(token)
    assert principal.participant_ids == {"m-1", "m-2"}
    assert principal.roles == {"participant"}
    expired = mint(
        SETTINGS, organization="acme", subject="m", roles=["participant"], now=time.time() - 7200
    )
    assert "expired" in refused(TokenVerifier(SETTINGS), expired)
    with pytest.raises(ValueError, match="AUTH_JWT_SECRET"):
        mint(AuthSettings(), organization="a", subject="b", roles=[])


def test_a_token_valid_for_longer_than_the_maximum_is_refused() -> None:
    verifier = TokenVerifier(SETTINGS)
    day = SETTINGS.max_token_lifetime_seconds
    now = int(time.time())
    assert verifier.verify(hs256(claims(iat=now, exp=now + int(day))))
    reason = refused(verifier, hs256(claims(iat=now, exp=now + int(day) + 3600)))
    assert "valid for longer than 86400 seconds" in reason
    # Issued a week ago for a week and ten minutes: ten minutes left, but refused on exp - iat.
    old = now - 7 * 24 * 3600
    assert "longer than" in refused(verifier, hs256(claims(iat=old, exp=now + 600)))
    # No iat does not hide it: measured from now.
    assert "longer than" in refused(verifier, hs256(claims(iat=None, exp=now + 2 * int(day))))


def test_the_maximum_lifetime_is_configurable() -> None:
    short = AuthSettings.from_env(
        {"AUTH_JWT_SECRET": SECRET, "AUTH_MAX_TOKEN_LIFETIME_SECONDS": "900"}
    )
    assert short.max_token_lifetime_seconds == 900
    verifier = TokenVerifier(short)
    now = int(time.time())
    free = {"iss": None, "aud": None}
    assert verifier.verify(hs256(claims(**free, iat=now, exp=now + 900)))
    assert "longer than 900 seconds" in refused(
        verifier, hs256(claims(**free, iat=now, exp=now + 3600))
    )
