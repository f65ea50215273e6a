"""Outbound URL policy: user-supplied URLs must not reach into the network Tocsin runs in.

Webhook, Slack and Apprise targets are URLs that users type in. Without a policy, a target of
`http://169.254.169.254/...` or `http://localhost:5432/` would make Tocsin an SSRF proxy. The
policy resolves the host and refuses loopback, private, link-local, multicast, reserved and
other non-global addresses unless the deployment allows them (an on-premises receiver, tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeOutboundUrl(ValueError):
    """The URL is malformed, uses a scheme other than http(s), or points at a refused address."""


class OutboundLookupFailed(OSError):
    """The host name could not be resolved; this may pass (a DNS outage), so it is temporary."""


def is_public_address(address: IPAddress) -> bool:
    """True for globally routable unicast addresses only; embedded IPv4 addresses are unwrapped."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None:
            return is_public_address(address.sixtofour)
        if address.teredo is not None:
            return all(is_public_address(part) for part in address.teredo)
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def refused_addresses(addresses: list[IPAddress], allow_private: bool) -> list[IPAddress]:
    return [] if allow_private else [a for a in addresses if not is_public_address(a)]


def split_http_url(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of an http(s) URL, or UnsafeOutboundUrl saying what is wrong."""
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise UnsafeOutboundUrl("URL must not contain whitespace or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeOutboundUrl(f"URL must start with http:// or https://, not {scheme or '?'}:")
    host = parts.hostname
    if not host:
        raise UnsafeOutboundUrl("URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UnsafeOutboundUrl("URL has an invalid port") from None
    return scheme, host, port


async def resolve_host(host: str, port: int, timeout: float | None = None) -> list[IPAddress]:
    """All addresses a host name resolves to (IP literals resolve to themselves)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
    except (TimeoutError, OSError) as exc:
        raise OutboundLookupFailed(f"cannot resolve {host}: {exc or 'timed out'}") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutboundLookupFailed(f"cannot resolve {host}: no addresses")
    return addresses


async def check_outbound_url(
    url: str, allow_private: bool, *, timeout: float | None = 10.0
) -> list[IPAddress]:
    """Resolve the URL's host and return its addresses if the policy lets Tocsin connect there.

    Raises UnsafeOutboundUrl (a permanent problem with the target) when the URL is not http(s)
    or any address it resolves to is refused, and OutboundLookupFailed (temporary) when the name
    does not resolve. Every address must pass: a name that resolves to one public and one private
    address is refused, since the client may pick either.
    """
    _scheme, host, port = split_http_url(url)
    addresses = await resolve_host(host, port, timeout)
    refused = refused_addresses(addresses, allow_private)
    if refused:
        raise UnsafeOutboundUrl(
            f"{host} resolves to {refused[0]}, which is not a public address "
            "(loopback, private, link-local, multicast and reserved ranges are refused)"
        )
    return addresses
