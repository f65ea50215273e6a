"""HTTP plumbing shared by the httpx-based channels: timeouts, the address guard, classification.

The guard runs inside the connection itself (a network backend that resolves the host, vets
every address and then connects to a vetted address), so a name that resolves to a public
address when checked and to 127.0.0.1 when connecting (DNS rebinding) cannot slip through.
Redirects are never followed: a redirect could point anywhere.
"""

from __future__ import annotations

import email.utils
import functools
import ssl
import typing
from dataclasses import dataclass
from datetime import UTC, datetime

import certifi
import httpcore
import httpx

from tocsin.notify.channels.base import DeliveryResult
from tocsin.notify.channels.outbound import (
    OutboundLookupFailed,
    UnsafeOutboundUrl,
    refused_addresses,
    resolve_host,
)


@dataclass(frozen=True)
class HttpConfig:
    """Outbound HTTP settings for one channel."""

    connect_timeout: float = 5.0
    # How long to wait for the answer once the request is written; past it the outcome is unknown.
    read_timeout: float = 15.0
    write_timeout: float = 10.0
    # Allow loopback/private/link-local targets: for receivers on the same network, and tests.
    allow_private_addresses: bool = False
    # True, False, or a CA bundle path for receivers behind a private CA.
    verify_tls: bool | str = True
    user_agent: str = "Tocsin-Notify/1"

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "write_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the outbound policy allows."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve_host(host, port, timeout)
        except OutboundLookupFailed as exc:
            raise httpcore.ConnectError(str(exc)) from None
        refused = refused_addresses(addresses, self._allow_private)
        if refused:
            raise UnsafeOutboundUrl(
                f"{host} resolves to {refused[0]}, which is not a public address "
                "(loopback, private, link-local, multicast and reserved ranges are refused)"
            )
        last_error: Exception | None = None
        for address in addresses:
            try:
                # TLS still verifies the certificate against the URL's host name (httpcore
                # passes the origin host as server_hostname), only the socket uses the address.
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeOutboundUrl("unix sockets are not an outbound destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.lru_cache(maxsize=16)
def tls_context(verify: bool | str) -> ssl.SSLContext:
    """Built once per setting: loading a CA bundle is the slow part of a new client."""
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=certifi.where() if verify is True else verify)


class GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, config: HttpConfig) -> None:
        context = tls_context(config.verify_tls)
        super().__init__(verify=context, trust_env=False)
        # Same pool httpx would build, with the guarded backend underneath.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            network_backend=GuardedNetworkBackend(config.allow_private_addresses),
        )


def guarded_client(config: HttpConfig) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=GuardedTransport(config),
        timeout=httpx.Timeout(
            connect=config.connect_timeout,
            read=config.read_timeout,
            write=config.write_timeout,
            pool=config.connect_timeout,
        ),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": config.user_agent},
    )


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a Retry-After header: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify_status(status: int, what: str, retry_after: float | None = None) -> DeliveryResult:
    """Map a non-2xx HTTP status to an outcome.

    408, 425, 429 and 5xx may pass; other 4xx will not until someone fixes the target.
    3xx is permanent because redirects are not followed (they could lead anywhere).
    """
    if 300 <= status < 400:
        return DeliveryResult.permanent(f"{what} answered {status} (redirects are not followed)")
    if status in (408, 425, 429) or status >= 500:
        return DeliveryResult.temporary(f"{what} answered {status}", retry_after=retry_after)
    return DeliveryResult.permanent(f"{what} answered {status}")


def classify_transport_error(exc: Exception, what: str) -> DeliveryResult:
    """Map an exception raised by an httpx request to an outcome.

    Errors while connecting or writing mean the receiver never got a complete request: temporary.
    A timeout or a dropped connection while waiting for the answer means the request was fully
    sent and may have been acted on: unknown.
    """
    if isinstance(exc, UnsafeOutboundUrl):
        return DeliveryResult.permanent(f"{what} refused by outbound policy: {exc}")
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return DeliveryResult.temporary(f"{what}: timed out connecting")
    if isinstance(exc, httpx.ConnectError):
        return DeliveryResult.temporary(f"{what}: cannot connect: {exc}")
    if isinstance(exc, httpx.WriteTimeout | httpx.WriteError):
        return DeliveryResult.temporary(f"{what}: connection failed while sending the request")
    if isinstance(exc, httpx.ReadTimeout):
        return DeliveryResult.unknown(f"{what}: no answer within the read timeout after sending")
    if isinstance(exc, httpx.ReadError | httpx.RemoteProtocolError):
        return DeliveryResult.unknown(f"{what}: connection lost before an answer: {exc}")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return DeliveryResult.permanent(f"{what}: invalid URL: {exc}")
    if isinstance(exc, httpx.TransportError):
        return DeliveryResult.unknown(f"{what}: {type(exc).__name__}: {exc}")
    raise exc
