"""Settings from environment variables, the only place configuration comes from."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# (gRPC port, metrics port) per service; the README's configuration table lists them.
DEFAULT_PORTS: dict[str, tuple[int, int]] = {
    "enrollment": (50051, 9101),
    "matching": (50052, 9102),
    "engagement": (50053, 9103),
    "analytics": (50054, 9104),
}
DEFAULT_BROKER_PORT = 9092
DEFAULT_MONGODB_PORT = 27017


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"environment variable {name} must be an integer, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"environment variable {name} must be a number, got {raw!r}") from None


def service_address(service: str, env: Mapping[str, str] = os.environ) -> str:
    """Where clients reach a service's gRPC API: `<SERVICE>_ADDR`, else loopback default port."""
    return env.get(f"{service.upper()}_ADDR") or f"127.0.0.1:{DEFAULT_PORTS[service][0]}"


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """How callers prove who they are: JWT bearer tokens (services/common/auth.py).

    No key configured means authentication is off: the embedded development mode of `make up`
    and the tests, where every caller is trusted. The service warns about it at startup.
    """

    # Shared secret for HS256 tokens (at least 32 characters).
    jwt_secret: str = ""
    # PEM public key (RSA, EC, Ed25519) of the company's identity provider, for RS*/PS*/ES*/EdDSA.
    public_key_file: str = ""
    # When set, tokens must carry exactly this `iss` / an `aud` containing this audience.
    issuer: str = ""
    audience: str = ""
    # Clock skew tolerated on exp/nbf/iat.
    leeway_seconds: float = 30.0
    # Longest a token may be valid for (exp - iat, and exp - now): a leaked long-lived token
    # would otherwise open the platform for as long as its issuer chose.
    max_token_lifetime_seconds: float = 24 * 3600.0
    # Claim names, for identity providers that name them differently.
    org_claim: str = "org"
    roles_claim: str = "roles"
    # The caller's verified e-mail: a participant registers only under it.
    email_claim: str = "email"

    @property
    def enabled(self) -> bool:
        return bool(self.jwt_secret or self.public_key_file)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> AuthSettings:
        return cls(
            jwt_secret=env.get("AUTH_JWT_SECRET", ""),
            public_key_file=env.get("AUTH_JWT_PUBLIC_KEY_FILE", "").strip(),
            issuer=env.get("AUTH_JWT_ISSUER", "").strip(),
            audience=env.get("AUTH_JWT_AUDIENCE", "").strip(),
            leeway_seconds=_float(env, "AUTH_JWT_LEEWAY_SECONDS", 30.0),
            max_token_lifetime_seconds=_float(env, "AUTH_MAX_TOKEN_LIFETIME_SECONDS", 24 * 3600.0),
            org_claim=env.get("AUTH_JWT_ORG_CLAIM", "").strip() or "org",
            roles_claim=env.get("AUTH_JWT_ROLES_CLAIM", "").strip() or "roles",
            email_claim=env.get("AUTH_JWT_EMAIL_CLAIM", "").strip() or "email",
        )


@dataclass(frozen=True, slots=True)
class Settings:
    service: str
    bind_host: str
    grpc_port: int
    metrics_port: int
    kafka_bootstrap_servers: str
    topic_partitions: int
    fetch_max_wait_ms: int
    fetch_min_bytes: int
    mongodb_uri: str
    mongodb_database: str
    shutdown_grace_seconds: float
    # How often timers (request expiry, reminders) look for due work.
    scheduler_interval_seconds: float
    auth: AuthSettings = AuthSettings()
    # JSON file of each organisation's HR producer public keys (services/common/hr_signatures.py);
    # unset, no hr-event is trusted. Read when an hr-event arrives and again when it changes.
    hr_producer_keys_file: str = ""
    # Shared secret (32+ characters) with which analytics workers authenticate the requests they
    # forward to one another and the replies (services/common/peers.py). Unset, a worker neither
    # forwards nor accepts forwarded requests: it answers what it holds, UNAVAILABLE otherwise.
    analytics_peer_secret: str = ""

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] = os.environ) -> Settings:
        grpc_port, metrics_port = DEFAULT_PORTS[service]
        prefix = service.upper()
        return cls(
            service=service,
            bind_host=env.get("BIND_HOST", "127.0.0.1"),
            grpc_port=_int(env, f"{prefix}_GRPC_PORT", grpc_port),
            metrics_port=_int(env, f"{prefix}_METRICS_PORT", metrics_port),
            kafka_bootstrap_servers=env.get(
                "KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{DEFAULT_BROKER_PORT}"
            ),
            topic_partitions=_int(env, "KAFKA_TOPIC_PARTITIONS", 6),
            # Kafka answers a fetch once it holds this many bytes or after the wait. Answering at
            # the first record made every consumer fetch after every small produce: under load
            # that cost the broker and the consumers more than the records (bench/scale.py: the
            # broker's CPU per imported row fell by a third, accepted answers/s rose 1.6x), for
            # at most the wait's delay per hop when the platform is quiet.
            fetch_max_wait_ms=_int(env, "KAFKA_FETCH_MAX_WAIT_MS", 100),
            fetch_min_bytes=_int(env, "KAFKA_FETCH_MIN_BYTES", 64 * 1024),
            mongodb_uri=env.get("MONGODB_URI", "").strip()
            or f"mongodb://127.0.0.1:{DEFAULT_MONGODB_PORT}/",
            mongodb_database=env.get(f"{prefix}_MONGODB_DATABASE", f"mentoring_{service}"),
            shutdown_grace_seconds=_float(env, "SHUTDOWN_GRACE_SECONDS", 5.0),
            scheduler_interval_seconds=_float(env, "SCHEDULER_INTERVAL_SECONDS", 30.0),
            auth=AuthSettings.from_env(env),
            hr_producer_keys_file=env.get("HR_PRODUCER_KEYS_FILE", "").strip(),
            analytics_peer_secret=env.get("ANALYTICS_PEER_SECRET", ""),
        )
