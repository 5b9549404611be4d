"""Settings from environment variables, the only place configuration comes from."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

# (gRPC port, metrics port) per service; the README's configuration table lists them.
DEFAULT_PORTS: dict[str, tuple[int, int]] = {
    "enrollment": (50051, 9101),
    "matching": (50052, 9102),
    "engagement": (50053, 9103),
    "analytics": (50054, 9104),
    "notifications": (50055, 9105),
}
# The HTTP/JSON API's port per service (Connect protocol; services/common/http_server.py).
DEFAULT_HTTP_PORTS: dict[str, int] = {
    "enrollment": 8101,
    "matching": 8102,
    "engagement": 8103,
    "analytics": 8104,
    "notifications": 8105,
}
DEFAULT_BROKER_PORT = 9092
DEFAULT_MONGODB_PORT = 27017
# The gateway under `make up`: where calendar feed and unsubscribe links point by default.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"
DEFAULT_DIGEST_HOUR = 8


def _int(
    env: Mapping[str, str],
    name: str,
    default: int,
    *,
    positive: bool = False,
    non_negative: bool = False,
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"environment variable {name} must be an integer, got {raw!r}") from None
    _check_sign(name, raw, value, positive=positive, non_negative=non_negative)
    return value


def _float(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    positive: bool = False,
    non_negative: bool = False,
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"environment variable {name} must be a number, got {raw!r}") from None
    _check_sign(name, raw, value, positive=positive, non_negative=non_negative)
    return value


def _check_sign(name: str, raw: str, value: float, *, positive: bool, non_negative: bool) -> None:
    if positive and value <= 0:
        raise SystemExit(f"environment variable {name} must be positive, got {raw!r}")
    if non_negative and value < 0:
        raise SystemExit(f"environment variable {name} must not be negative, got {raw!r}")


def _hour(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 <= int(raw) <= 23:
        raise SystemExit(f"{name} must be an hour from 0 to 23, got {raw!r}")
    return int(raw)


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SystemExit(f"environment variable {name} must be true or false, got {raw!r}")


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    networks = tuple(n.strip() for n in env.get(name, "").split(",") if n.strip())
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise SystemExit(f"{name}: {network!r} is not a network (e.g. 10.1.0.0/16)") from None
    return networks


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        scheme, _, host = origin.partition("://")
        if scheme not in ("http", "https") or not host or "/" in host:
            raise SystemExit(
                f"HTTP_CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port])"
            )
    return origins


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
class WebhookSettings:
    """Where and how the notifications service delivers webhooks (services/notifications)."""

    # Plain http:// endpoints, for development only: deliveries would cross networks unencrypted.
    allow_http: bool = False
    # Endpoints on loopback, private, link-local and other non-public addresses. Off, a URL that
    # resolves to one is refused at creation and at each delivery, so an organisation cannot make
    # the platform call into its own network (server-side request forgery).
    allow_private_networks: bool = False
    # Networks (CIDR) allowed although not public: a receiver inside the deployment's network.
    allowed_networks: tuple[str, ...] = ()
    # PEM file of CA certificates trusted besides the system's, for receivers with a private CA.
    ca_file: str = ""
    # One attempt's limit: connecting, sending and the answer.
    timeout_seconds: float = 10.0
    # Attempts before a delivery is dead-lettered, and the backoff between them: the base delay
    # doubles after each failure, up to the maximum.
    max_attempts: int = 8
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 6 * 3600.0
    # Deliveries in flight at once per process.
    concurrency: int = 16

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> WebhookSettings:
        settings = cls(
            allow_http=_bool(env, "WEBHOOKS_ALLOW_HTTP"),
            allow_private_networks=_bool(env, "WEBHOOKS_ALLOW_PRIVATE_NETWORKS"),
            allowed_networks=_networks(env, "WEBHOOKS_ALLOWED_NETWORKS"),
            ca_file=env.get("WEBHOOKS_CA_FILE", "").strip(),
            timeout_seconds=_float(env, "WEBHOOKS_TIMEOUT_SECONDS", 10.0),
            max_attempts=_int(env, "WEBHOOKS_MAX_ATTEMPTS", 8),
            retry_base_seconds=_float(env, "WEBHOOKS_RETRY_BASE_SECONDS", 30.0),
            retry_max_seconds=_float(env, "WEBHOOKS_RETRY_MAX_SECONDS", 6 * 3600.0),
            concurrency=_int(env, "WEBHOOKS_CONCURRENCY", 16),
        )
        if settings.max_attempts < 1 or settings.concurrency < 1:
            raise SystemExit("WEBHOOKS_MAX_ATTEMPTS and WEBHOOKS_CONCURRENCY must be at least 1")
        if settings.timeout_seconds <= 0 or settings.retry_base_seconds < 0:
            raise SystemExit("WEBHOOKS_TIMEOUT_SECONDS must be positive, retry delays not negative")
        return settings


class StartTls(StrEnum):
    OFF = "off"
    # Encrypt when the server offers STARTTLS, send in the clear when it does not.
    OPPORTUNISTIC = "opportunistic"
    # Never send unencrypted: a server that does not offer STARTTLS gets nothing.
    REQUIRED = "required"


def _starttls(env: Mapping[str, str], name: str, default: StartTls) -> StartTls:
    raw = env.get(name, "").strip().lower() or default.value
    try:
        return StartTls(raw)
    except ValueError:
        choices = ", ".join(s.value for s in StartTls)
        raise SystemExit(
            f"environment variable {name} must be one of {choices}, got {raw!r}"
        ) from None


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """The mail server the notifications service sends through (services/notifications/smtp.py)."""

    host: str = "127.0.0.1"
    # The development catcher's port (mentoring.mailcatcher); 587 for a submission server.
    port: int = 1025
    starttls: StartTls = StartTls.OFF
    username: str = ""
    password: str = field(default="", repr=False)
    timeout_seconds: float = 30.0
    # The From of every message: "Name <address>" or a bare address.
    sender: str = "Mentoring <no-reply@localhost>"
    # Trusted CAs for STARTTLS (a private relay); empty: the system's.
    ca_file: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SmtpSettings:
        default = cls()
        return cls(
            host=env.get("SMTP_HOST", "").strip() or default.host,
            port=_int(env, "SMTP_PORT", default.port, positive=True),
            starttls=_starttls(env, "SMTP_STARTTLS", default.starttls),
            username=env.get("SMTP_USERNAME", ""),
            password=env.get("SMTP_PASSWORD", ""),
            timeout_seconds=_float(
                env, "SMTP_TIMEOUT_SECONDS", default.timeout_seconds, positive=True
            ),
            sender=env.get("SMTP_FROM", "").strip() or default.sender,
            ca_file=env.get("SMTP_CA_FILE", "").strip(),
        )


@dataclass(frozen=True, slots=True)
class MailSettings:
    """How the notifications service sends e-mail: the SMTP server and the retry policy."""

    smtp: SmtpSettings = SmtpSettings()
    # Attempts before a message is dead-lettered, and the backoff between them (doubling from
    # the base up to the maximum), as for webhooks.
    max_attempts: int = 8
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 6 * 3600.0
    # Messages in flight at once per process (one SMTP connection each).
    concurrency: int = 4
    # The portal, for the links in messages; empty: none.
    portal_url: str = ""
    # Where the service's pages are reached from outside (the gateway): calendar feed and
    # unsubscribe URLs start with it. Empty: mails carry no unsubscribe link.
    public_url: str = DEFAULT_PUBLIC_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> MailSettings:
        settings = cls(
            smtp=SmtpSettings.from_env(env),
            # Read as numbers, as they always were: "8.0" still means 8.
            max_attempts=int(_float(env, "MAIL_MAX_ATTEMPTS", 8, non_negative=True)),
            retry_base_seconds=_float(env, "MAIL_RETRY_BASE_SECONDS", 60.0, non_negative=True),
            retry_max_seconds=_float(env, "MAIL_RETRY_MAX_SECONDS", 6 * 3600.0, non_negative=True),
            concurrency=int(_float(env, "MAIL_CONCURRENCY", 4, non_negative=True)),
            portal_url=env.get("MAIL_PORTAL_URL", "").strip(),
            public_url=env.get("NOTIFICATIONS_PUBLIC_URL", DEFAULT_PUBLIC_URL).strip(),
        )
        if settings.max_attempts < 1 or settings.concurrency < 1:
            raise SystemExit("MAIL_MAX_ATTEMPTS and MAIL_CONCURRENCY must be at least 1")
        return settings


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """When the daily chat digest goes. Posts travel like webhooks: the WEBHOOKS_* address
    policy, CA file, timeout and retry settings apply."""

    # The hour (UTC, 0-23) of each day's digest, covering the 24 hours before it.
    digest_hour_utc: int = DEFAULT_DIGEST_HOUR

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ChatSettings:
        return cls(digest_hour_utc=_hour(env, "CHAT_DIGEST_HOUR_UTC", DEFAULT_DIGEST_HOUR))


@dataclass(frozen=True, slots=True)
class Settings:
    service: str
    bind_host: str
    grpc_port: int
    metrics_port: int
    # The same RPCs as HTTP/JSON (Connect protocol); 0 turns it off.
    http_port: int
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
    # Browser origins (scheme://host[:port]) whose pages may call the HTTP/JSON API (CORS); none
    # by default, so a browser page from elsewhere cannot read the answers.
    cors_origins: tuple[str, ...] = ()
    webhooks: WebhookSettings = WebhookSettings()
    mail: MailSettings = MailSettings()
    chat: ChatSettings = ChatSettings()

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] = os.environ) -> Settings:
        grpc_port, metrics_port = DEFAULT_PORTS[service]
        prefix = service.upper()
        # Only the service that delivers them reads (and may refuse) these.
        notifying = service == "notifications"
        return cls(
            service=service,
            bind_host=env.get("BIND_HOST", "127.0.0.1"),
            grpc_port=_int(env, f"{prefix}_GRPC_PORT", grpc_port),
            metrics_port=_int(env, f"{prefix}_METRICS_PORT", metrics_port),
            http_port=_int(env, f"{prefix}_HTTP_PORT", DEFAULT_HTTP_PORTS[service]),
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
            cors_origins=_origins(env.get("HTTP_CORS_ORIGINS", "")),
            webhooks=WebhookSettings.from_env(env) if notifying else WebhookSettings(),
            mail=MailSettings.from_env(env) if notifying else MailSettings(),
            chat=ChatSettings.from_env(env) if notifying else ChatSettings(),
        )
