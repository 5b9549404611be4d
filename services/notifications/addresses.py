"""Which URLs the platform calls: https, and hosts on public addresses only, unless the
deployment allows more (WebhookSettings). Otherwise an organisation could register a URL that
makes the platform call into its own network: its databases, cloud metadata, admin ports.
Pure: resolving names is egress.py's."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.common.config import WebhookSettings
from services.common.errors import InvalidArgument

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2000
FIELD = "url"

# In the order they are named: 127.0.0.1 is private too, but "loopback" says more.
_KINDS = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_reserved", "reserved"),
    ("is_private", "private"),
)


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    allow_http: bool = False
    allow_private: bool = False
    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, settings: WebhookSettings) -> NetworkPolicy:
        return cls(
            allow_http=settings.allow_http,
            allow_private=settings.allow_private_networks,
            allowed=tuple(ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks),
        )

    def refusal(self, address: IPAddress) -> str | None:
        """Why the platform must not connect to this address (its kind), or None."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if self.allow_private or any(
            address.version == network.version and address in network for network in self.allowed
        ):
            return None
        for attribute, kind in _KINDS:
            if getattr(address, attribute):
                return kind
        return None if address.is_global else "non-public"


@dataclass(frozen=True, slots=True)
class Target:
    """A URL the policy takes, so far as can be told without resolving its host."""

    url: str
    host: str
    port: int
    # The host when it is an IP address: nothing to resolve.
    address: IPAddress | None


def refused(host: str, address: IPAddress, kind: str) -> InvalidArgument:
    shown = host if host == str(address) else f"{host} ({address})"
    return InvalidArgument(
        FIELD,
        f"{shown} is a {kind} address; webhooks go to public addresses only "
        "(WEBHOOKS_ALLOW_PRIVATE_NETWORKS, WEBHOOKS_ALLOWED_NETWORKS)",
    )


def target(url: str, policy: NetworkPolicy) -> Target:
    """The URL checked: scheme, no credentials, a host, a port, and an IP literal's address."""
    url = url.strip()
    if not url:
        raise InvalidArgument(FIELD, "is required")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidArgument(FIELD, f"must be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidArgument(FIELD, "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidArgument(FIELD, f"is not a URL: {exc}") from None
    schemes = ("https", "http") if policy.allow_http else ("https",)
    if parts.scheme.lower() not in schemes:
        raise InvalidArgument(FIELD, "must start with https://")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(FIELD, "must not carry a user name or password")
    host = parts.hostname or ""
    if not host:
        raise InvalidArgument(FIELD, "has no host")
    if parts.fragment:
        raise InvalidArgument(FIELD, "must not have a #fragment")
    try:
        address: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and (kind := policy.refusal(address)) is not None:
        raise refused(host, address, kind)
    default = 443 if parts.scheme.lower() == "https" else 80
    return Target(url, host, port or default, address)
