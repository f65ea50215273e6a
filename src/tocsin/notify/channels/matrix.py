"""Matrix rooms through the client-server API (httpx).

PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId} with the bot's access token.
The txnId is derived from the idempotency key, so a retried attempt (same access token) is
recognised by the homeserver and answered with the first event's id instead of a second message.

Classification: 200 sent (provider id = event id); 429 / M_LIMIT_EXCEEDED temporary with the
server's retry_after_ms; 5xx temporary; 401 M_UNKNOWN_TOKEN, 403 M_FORBIDDEN (bot not in the
room), 404 and other 4xx permanent; cannot connect temporary; no answer after sending unknown
(safe to retry: the txnId deduplicates).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from tocsin.notify.channels.base import (
    Channel,
    DeliveryResult,
    Message,
    Target,
    option_str,
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
from tocsin.notify.channels.render import html_body, key_digest, one_line, plain_text

# "!opaque:server" in older room versions, "!opaque" (a hash) from room version 12 on.
_ROOM_ID = re.compile(r"^![^\s:/]+(?::[A-Za-z0-9.:\[\]-]+)?$")


@dataclass(frozen=True)
class MatrixConfig:
    """The default homeserver and bot account; a target may name its own in its options."""

    homeserver_url: str | None = None
    access_token: str | None = field(default=None, repr=False)
    http: HttpConfig = field(default_factory=HttpConfig)

    def __post_init__(self) -> None:
        if self.homeserver_url is not None:
            split_http_url(self.homeserver_url)


def transaction_id(message: Message) -> str:
    return "tocsin." + key_digest(message.idempotency_key, 40)


def event_content(message: Message) -> dict[str, Any]:
    return {
        "msgtype": "m.text",
        "body": f"{one_line(message.subject)}\n\n{plain_text(message)}".rstrip(),
        "format": "org.matrix.custom.html",
        "formatted_body": html_body(message),
    }


@register
class MatrixChannel(Channel):
    kind: ClassVar[str] = "matrix"
    allowed_options: ClassVar[tuple[str, ...]] = ("homeserver_url", "access_token")

    def __init__(self, config: MatrixConfig | None = None) -> None:
        self.config = config or MatrixConfig()

    def _homeserver(self, target: Target) -> str | None:
        return option_str(target, "homeserver_url") or self.config.homeserver_url

    def _token(self, target: Target) -> str | None:
        return option_str(target, "access_token") or self.config.access_token

    def validate_target(self, target: Target) -> None:
        require_options(target, self.allowed_options)
        if len(target.address) > 255 or not _ROOM_ID.match(target.address):
            raise ValueError(
                "Matrix address must be a room id like !AbCdEf:example.org or !AbCdEf "
                "(room aliases such as #room:example.org are not accepted)"
            )
        homeserver = self._homeserver(target)
        if not homeserver:
            raise ValueError("no Matrix homeserver: set option homeserver_url or the default")
        split_http_url(homeserver)
        if not self._token(target):
            raise ValueError("no Matrix access token: set option access_token or the default")

    def secrets(self, target: Target) -> Iterable[str]:
        token = target.options.get("access_token")
        return [self.config.access_token or "", token if isinstance(token, str) else ""]

    def send_url(self, homeserver: str, room_id: str, txn_id: str) -> str:
        return (
            f"{homeserver.rstrip('/')}/_matrix/client/v3/rooms/{quote(room_id, safe='')}"
            f"/send/m.room.message/{quote(txn_id, safe='')}"
        )

    async def deliver(self, message: Message, target: Target) -> DeliveryResult:
        homeserver, token = self._homeserver(target), self._token(target)
        assert homeserver and token  # validate_target ran
        url = self.send_url(homeserver, target.address, transaction_id(message))
        what = f"matrix homeserver {split_http_url(homeserver)[1]}"
        async with guarded_client(self.config.http) as client:
            try:
                response = await client.put(
                    url,
                    json=event_content(message),
                    headers={"Authorization": f"Bearer {token}"},
                )
            except Exception as exc:
                return classify_transport_error(exc, what)
        return self._result(response, what, target)

    def _result(self, response: httpx.Response, what: str, target: Target) -> DeliveryResult:
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        if response.status_code == 200 and isinstance(body.get("event_id"), str):
            return DeliveryResult.sent(
                f"sent to room {target.address}", provider_message_id=body["event_id"]
            )
        errcode = one_line(str(body.get("errcode") or ""), 60)
        error = one_line(str(body.get("error") or ""), 200)
        label = f"{what} answered {response.status_code} {errcode} {error}".strip()
        retry_ms = body.get("retry_after_ms")
        retry_after = (
            retry_ms / 1000
            if isinstance(retry_ms, int | float)
            else retry_after_seconds(response.headers.get("Retry-After"))
        )
        if errcode == "M_LIMIT_EXCEEDED":
            return DeliveryResult.temporary(label, retry_after=retry_after)
        if response.status_code == 200:
            return DeliveryResult.unknown(f"{what} answered 200 without an event id")
        result = classify_status(response.status_code, what, retry_after)
        return DeliveryResult(result.outcome, label, retry_after=result.retry_after)
