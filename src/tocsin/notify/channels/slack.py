"""Slack through slack_sdk: chat.postMessage with a bot token, or an incoming webhook URL.

A target whose address is an https URL is an incoming webhook (the URL is the credential and the
channel); any other address is a channel name or id posted to with a bot token (the target's
`bot_token` option, else the configured one). The message is Block Kit: a header, the escaped
alert text, and Acknowledge / Resolve / Open incident link buttons.

Classification:
- Web API `ok: true` -> sent (provider id `channel/ts`)
- HTTP 429 or error `ratelimited` -> temporary, with Retry-After; HTTP 5xx, `service_unavailable`,
  `request_timeout` -> temporary
- `internal_error` / `fatal_error` (Slack: "some aspect of the operation may have succeeded")
  -> unknown
- any other error (`channel_not_found`, `not_in_channel`, `invalid_auth`, `is_archived`...)
  and webhook 4xx (`invalid_payload`, `no_service`, `channel_is_archived`) -> permanent
- cannot connect -> temporary; no answer after the request was sent -> unknown (Slack has no
  idempotency key, so resending may post twice)

slack_sdk's HTTP client is synchronous; each attempt runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import math
import re
import urllib.error
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.client import WebClient
from slack_sdk.webhook.client import WebhookClient

from tocsin.notify.channels.base import (
    Channel,
    DeliveryResult,
    Message,
    Target,
    option_str,
    register,
    require_options,
)
from tocsin.notify.channels.http import classify_status, retry_after_seconds
from tocsin.notify.channels.outbound import (
    OutboundLookupFailed,
    UnsafeOutboundUrl,
    check_outbound_url,
    split_http_url,
)
from tocsin.notify.channels.render import action_links, one_line

# slack_sdk logs request URLs and bodies at DEBUG; an incoming webhook URL is a credential.
_sdk_logger = logging.getLogger("tocsin.notify.slack_sdk")
_sdk_logger.setLevel(logging.INFO)

_CHANNEL = re.compile(r"^#?[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_TEMPORARY_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
        "org_login_required",
    }
)
_UNKNOWN_ERRORS = frozenset({"internal_error", "fatal_error"})
_BUTTON_STYLES = {"ack": "primary", "resolve": "danger"}


@dataclass(frozen=True)
class SlackConfig:
    bot_token: str | None = field(default=None, repr=False)
    # Slack's Web API root; tests point it at a local server.
    api_base_url: str = "https://slack.com/api/"
    timeout: float = 15.0
    # Incoming webhook URLs come from users: only these hosts are accepted (urllib follows
    # redirects, so an arbitrary host could bounce the request elsewhere), and their addresses
    # still go through the outbound URL policy.
    webhook_hosts: tuple[str, ...] = ("hooks.slack.com",)
    allow_private_addresses: bool = False

    def __post_init__(self) -> None:
        split_http_url(self.api_base_url)
        if not self.api_base_url.endswith("/"):
            raise ValueError("Slack api_base_url must end with /")


def escape_mrkdwn(text: str) -> str:
    """Slack's required escaping; it also stops alert text from forming links or @mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def blocks_for(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(one_line(message.subject), 150)},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _cut(escape_mrkdwn(message.text) or " ", 3000)},
        },
    ]
    context = f"Urgency: *{message.urgency}*"
    if message.incident_id:
        context += f"  ·  Incident {escape_mrkdwn(one_line(message.incident_id, 80))}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    buttons = []
    for link in action_links(message):
        button: dict[str, Any] = {
            "type": "button",
            "action_id": f"tocsin_{link.role}",
            "text": {"type": "plain_text", "text": link.label},
            "url": link.url,
        }
        if link.role in _BUTTON_STYLES:
            button["style"] = _BUTTON_STYLES[link.role]
        buttons.append(button)
    if buttons:
        blocks.append({"type": "actions", "block_id": "tocsin_actions", "elements": buttons})
    return blocks


def fallback_text(message: Message) -> str:
    """The notification text (shown in push notifications and where blocks cannot render)."""
    return _cut(escape_mrkdwn(one_line(message.subject)), 3000)


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) else value)
    return None


def _is_webhook(target: Target) -> bool:
    return "://" in target.address


def classify_api_error(status: int, data: Any, headers: Mapping[str, Any] | None) -> DeliveryResult:
    error = data.get("error") if isinstance(data, Mapping) else None
    error = one_line(str(error), 100) if error else f"HTTP {status}"
    retry_after = retry_after_seconds(_header(headers, "Retry-After"))
    what = f"slack chat.postMessage failed: {error}"
    if status == 429 or error in _TEMPORARY_ERRORS:
        return DeliveryResult.temporary(what, retry_after=retry_after)
    if error in _UNKNOWN_ERRORS:
        return DeliveryResult.unknown(what)
    if status >= 500:
        return DeliveryResult.temporary(what, retry_after=retry_after)
    return DeliveryResult.permanent(what)


def classify_urllib_error(exc: Exception, what: str) -> DeliveryResult:
    """urllib wraps failures while connecting or sending in URLError; anything raised while
    reading the answer (timeout, reset, malformed status line) comes out bare: outcome unknown."""
    if isinstance(exc, SlackRequestError):
        return DeliveryResult.permanent(f"{what}: {exc}")
    if isinstance(exc, urllib.error.URLError):
        return DeliveryResult.temporary(f"{what}: cannot connect: {exc.reason}")
    if isinstance(exc, TimeoutError):
        return DeliveryResult.unknown(f"{what}: no answer within the timeout after sending")
    if isinstance(exc, OSError | http.client.HTTPException):
        return DeliveryResult.unknown(f"{what}: connection lost before an answer")
    raise exc


@register
class SlackChannel(Channel):
    kind: ClassVar[str] = "slack"
    allowed_options: ClassVar[tuple[str, ...]] = ("bot_token",)

    def __init__(self, config: SlackConfig | None = None) -> None:
        self.config = config or SlackConfig()

    @property
    def _timeout(self) -> int:
        return max(1, math.ceil(self.config.timeout))

    def validate_target(self, target: Target) -> None:
        require_options(target, self.allowed_options)
        token = option_str(target, "bot_token")
        if _is_webhook(target):
            scheme, host, _port = split_http_url(target.address)
            if scheme != "https" and not self.config.allow_private_addresses:
                raise ValueError("Slack incoming webhook URL must use https")
            if host.lower() not in self.config.webhook_hosts:
                allowed = ", ".join(self.config.webhook_hosts)
                raise ValueError(f"Slack incoming webhook URL must be on {allowed}")
            if token:
                raise ValueError("an incoming webhook URL needs no bot_token")
            return
        if not _CHANNEL.match(target.address):
            raise ValueError(
                "Slack address must be a channel id (C0123ABCD), a channel name (#alerts) "
                "or an incoming webhook URL"
            )
        if not (token or self.config.bot_token):
            raise ValueError("posting to a Slack channel needs a bot token (option bot_token)")

    def secrets(self, target: Target) -> Iterable[str]:
        found = [self.config.bot_token or ""]
        token = target.options.get("bot_token")
        if isinstance(token, str):
            found.append(token)
        if _is_webhook(target):
            found.append(target.address)
        return found

    async def deliver(self, message: Message, target: Target) -> DeliveryResult:
        if _is_webhook(target):
            return await self._via_webhook(message, target)
        return await self._via_api(message, target)

    async def _via_api(self, message: Message, target: Target) -> DeliveryResult:
        token = option_str(target, "bot_token") or self.config.bot_token
        client = WebClient(
            token=token,
            base_url=self.config.api_base_url,
            timeout=self._timeout,
            logger=_sdk_logger,
            # The outbox owns retries; the SDK's own retry could post a page twice.
            retry_handlers=[],
        )

        def post() -> Any:
            return client.chat_postMessage(
                channel=target.address,
                text=fallback_text(message),
                blocks=blocks_for(message),
                unfurl_links=False,
                unfurl_media=False,
            )

        try:
            response = await asyncio.to_thread(post)
        except SlackApiError as exc:
            return classify_api_error(
                exc.response.status_code, exc.response.data, exc.response.headers
            )
        except Exception as exc:
            return classify_urllib_error(exc, "slack chat.postMessage")
        channel, ts = response.get("channel"), response.get("ts")
        return DeliveryResult.sent(
            f"posted to slack channel {channel or target.address}",
            provider_message_id=f"{channel}/{ts}" if channel and ts else None,
        )

    async def _via_webhook(self, message: Message, target: Target) -> DeliveryResult:
        what = "slack incoming webhook"
        try:
            await check_outbound_url(target.address, self.config.allow_private_addresses)
        except UnsafeOutboundUrl as exc:
            return DeliveryResult.permanent(f"{what} refused by outbound policy: {exc}")
        except OutboundLookupFailed as exc:
            return DeliveryResult.temporary(f"{what}: {exc}")
        client = WebhookClient(
            target.address, timeout=self._timeout, logger=_sdk_logger, retry_handlers=[]
        )

        def post() -> Any:
            return client.send(
                text=fallback_text(message),
                blocks=blocks_for(message),
                unfurl_links=False,
                unfurl_media=False,
            )

        try:
            response = await asyncio.to_thread(post)
        except Exception as exc:
            return classify_urllib_error(exc, what)
        if response.status_code == 200:
            return DeliveryResult.sent(f"{what} accepted the message")
        reason = one_line(str(response.body or ""), 100)
        result = classify_status(
            response.status_code,
            f"{what} ({reason})" if reason else what,
            retry_after_seconds(_header(response.headers, "Retry-After")),
        )
        return result
