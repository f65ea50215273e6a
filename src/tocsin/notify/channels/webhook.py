"""Signed JSON webhooks (httpx).

Every request carries:
- `X-Tocsin-Webhook-Id`: the message's idempotency key, the same on every retry, so receivers
  can drop duplicates;
- `X-Tocsin-Timestamp`: Unix seconds when this attempt was made (also in the signed body);
- `X-Tocsin-Signature`: `v1=<hex HMAC-SHA256 of the raw body>` per configured secret,
  comma-separated, so a receiver keeps verifying while secrets are rotated.

Classification: 2xx sent; 3xx permanent (redirects are not followed); 408/425/429/5xx temporary;
other 4xx permanent; connection failures temporary; no answer after the request was written
unknown; a URL that resolves to a refused address permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import orjson

from tocsin.clock import Clock, SystemClock
from tocsin.notify.channels.base import (
    Channel,
    DeliveryResult,
    Message,
    Target,
    register,
    require_options,
)
from tocsin.notify.channels.http import (
    HttpConfig,
    classify_status,
    classify_transport_error,
    guarded_client,
    retry_after_seconds,
)
from tocsin.notify.channels.outbound import split_http_url
from tocsin.notify.channels.render import key_digest

SIGNATURE_HEADER = "X-Tocsin-Signature"
ID_HEADER = "X-Tocsin-Webhook-Id"
TIMESTAMP_HEADER = "X-Tocsin-Timestamp"
MIN_SECRET_LENGTH = 16

_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
_HEADER_VALUE = re.compile(r"^[\x20-\x7e]{0,1000}$")
_PRINTABLE_ID = re.compile(r"^[\x21-\x7e]{1,200}$")
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection"}
)


def sign(body: bytes, secrets: Iterable[str]) -> str:
    """The signature header value: one `v1=` entry per secret, newest secret first."""
    return ",".join(
        "v1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        for secret in secrets
    )


def verify(body: bytes, header: str, secret: str) -> bool:
    """What a receiver does: accept if any v1 signature matches (constant-time comparison)."""
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return any(
        hmac.compare_digest(expected, part.strip()[3:])
        for part in header.split(",")
        if part.strip().startswith("v1=")
    )


def webhook_secrets(target: Target) -> list[str]:
    raw = target.options.get("secrets", target.options.get("secret"))
    if raw is None:
        return []
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list | tuple) or not values:
        raise ValueError("option secrets must be a string or a non-empty list of strings")
    for value in values:
        if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
            raise ValueError(f"each webhook secret must be a string of {MIN_SECRET_LENGTH}+ chars")
    return list(values)


def extra_headers(target: Target) -> dict[str, str]:
    raw = target.options.get("headers", {})
    if not isinstance(raw, Mapping):
        raise ValueError("option headers must be a mapping of header name to value")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ValueError(f"invalid header name {name!r}")
        lowered = name.lower()
        if lowered in _RESERVED_HEADERS or lowered.startswith("x-tocsin-"):
            raise ValueError(f"header {name} is set by Tocsin and cannot be overridden")
        if not isinstance(value, str) or not _HEADER_VALUE.match(value):
            raise ValueError(f"header {name} must be printable ASCII of at most 1000 characters")
        headers[name] = value
    return headers


def webhook_id(message: Message) -> str:
    """The idempotency key itself when it is header-safe, else a stable digest of it."""
    key = message.idempotency_key
    return key if _PRINTABLE_ID.match(key) else "sha256:" + key_digest(key, 64)


@register
class WebhookChannel(Channel):
    kind: ClassVar[str] = "webhook"
    allowed_options: ClassVar[tuple[str, ...]] = ("secrets", "secret", "headers")

    def __init__(self, config: HttpConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or HttpConfig()
        self.clock: Clock = clock or SystemClock()

    def validate_target(self, target: Target) -> None:
        require_options(target, self.allowed_options)
        if "secret" in target.options and "secrets" in target.options:
            raise ValueError("give either secret or secrets, not both")
        if len(target.address) > 2048:
            raise ValueError("webhook URL must be at most 2048 characters")
        split_http_url(target.address)
        webhook_secrets(target)
        extra_headers(target)

    def secrets(self, target: Target) -> Iterable[str]:
        raw = target.options.get("secrets", target.options.get("secret")) or []
        found = [raw] if isinstance(raw, str) else [s for s in raw if isinstance(s, str)]
        headers = target.options.get("headers")
        if isinstance(headers, Mapping):
            found.extend(v for v in headers.values() if isinstance(v, str))
        return found

    def body(self, message: Message, timestamp: int) -> dict[str, Any]:
        return {
            "version": 1,
            "id": webhook_id(message),
            "timestamp": timestamp,
            "subject": message.subject,
            "text": message.text,
            "urgency": message.urgency,
            "incident": {"id": message.incident_id, "url": message.incident_url},
            "links": {"ack": message.ack_url, "resolve": message.resolve_url},
            "extra": dict(message.extra),
        }

    async def deliver(self, message: Message, target: Target) -> DeliveryResult:
        timestamp = int(self.clock.now().timestamp())
        try:
            raw = orjson.dumps(self.body(message, timestamp))
        except TypeError as exc:
            return DeliveryResult.permanent(f"message extra is not JSON-serializable: {exc}")
        headers = {
            **extra_headers(target),
            "Content-Type": "application/json",
            ID_HEADER: webhook_id(message),
            TIMESTAMP_HEADER: str(timestamp),
        }
        secrets = webhook_secrets(target)
        if secrets:
            headers[SIGNATURE_HEADER] = sign(raw, secrets)
        what = f"webhook {target.display_address()}"
        async with guarded_client(self.config) as client:
            try:
                response = await client.post(target.address, content=raw, headers=headers)
            except Exception as exc:
                return classify_transport_error(exc, what)
        if 200 <= response.status_code < 300:
            return DeliveryResult.sent(f"{what} answered {response.status_code}")
        return classify_status(
            response.status_code,
            what,
            retry_after_seconds(response.headers.get("Retry-After"), self.clock.now()),
        )
