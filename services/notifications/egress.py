"""The network side of the address policy (addresses.py): names resolved and checked, at
creation and again by the resolver every delivery connects through, so a name that resolves to a
public address today and to an internal one tomorrow (DNS rebinding) is refused when it counts."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import ssl

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from services.common.config import WebhookSettings
from services.common.errors import InvalidArgument
from services.notifications import addresses
from services.notifications.addresses import NetworkPolicy, Target


class RefusedAddress(OSError):
    """A host resolved to an address the policy refuses."""

    def __init__(self, reason: str) -> None:
        # With an errno, aiohttp's connection error shows the reason (its strerror).
        super().__init__(errno.EPERM, reason)


def _check_all(host: str, found: list[str], policy: NetworkPolicy) -> None:
    for raw in found:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        if (kind := policy.refusal(address)) is not None:
            raise addresses.refused(host, address, kind)


async def checked_target(url: str, policy: NetworkPolicy) -> Target:
    """The URL checked (addresses.target), and every address its host resolves to allowed."""
    found = addresses.target(url, policy)
    if found.address is not None:
        return found
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(found.host, found.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InvalidArgument(addresses.FIELD, f"{found.host} does not resolve: {exc}") from None
    _check_all(found.host, [str(info[4][0]) for info in infos], policy)
    return found


class GuardedResolver(AbstractResolver):
    """Resolves as aiohttp would, then refuses the whole name if any address is refused: the
    connection is made to exactly the addresses checked."""

    def __init__(self, policy: NetworkPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        try:
            _check_all(host, [r["host"] for r in results], self._policy)
        except InvalidArgument as exc:
            raise RefusedAddress(str(exc).removeprefix(f"{addresses.FIELD}: ")) from None
        return results

    async def close(self) -> None:
        await self._inner.close()


def tls_context(settings: WebhookSettings) -> ssl.SSLContext:
    """The system's CAs, and the configured CA file's."""
    trusted = ssl.create_default_context()
    if settings.ca_file:
        trusted.load_verify_locations(cafile=settings.ca_file)
    return trusted


def session(settings: WebhookSettings) -> aiohttp.ClientSession:
    """The HTTP client of every delivery: checked addresses, verified TLS, no redirects (a
    redirect could point anywhere), no proxy from the environment (it would connect for us,
    to addresses we never checked)."""
    connector = aiohttp.TCPConnector(
        ssl=tls_context(settings),
        resolver=GuardedResolver(NetworkPolicy.of(settings)),
        limit=settings.concurrency,
        # Resolved again for each connection, not cached past the check.
        use_dns_cache=False,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=settings.timeout_seconds),
        trust_env=False,
        auto_decompress=False,
    )
