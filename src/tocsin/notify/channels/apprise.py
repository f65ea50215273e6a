"""The long tail through Apprise: Twilio SMS, Telegram, Teams, Discord, ntfy, Pushover, Opsgenie...

A target's address is one Apprise URL (`tgram://bottoken/chat_id`, `twilio://sid:token@from/to`,
`json://receiver.example.com/hook`). The URL carries the service's credentials, so it is treated
as a secret: it is never logged and never appears in a result detail.

Classification: Apprise reports success or failure per service, not why. Success is `sent`;
every failure is `temporary_failure`, even one that retrying cannot fix (a revoked token), so the
outbox's attempt limit is what ends it. A failure may also hide a delivery that happened (a
timeout after the request was sent): a retried Apprise send can notify twice.

The outbound URL policy is applied to the schemes whose host the user chooses (generic JSON, form
and XML webhooks and self-hosted services, see `VETTED_SCHEMES`) before sending. Apprise's HTTP
client resolves names again when it connects, and its redirect following is switched off.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

import apprise

from tocsin.notify.channels.base import (
    Channel,
    DeliveryResult,
    Message,
    Target,
    register,
    require_options,
)
from tocsin.notify.channels.outbound import (
    OutboundLookupFailed,
    UnsafeOutboundUrl,
    check_outbound_url,
)
from tocsin.notify.channels.render import one_line, plain_text

# Apprise logs the URLs it loads and posts to at DEBUG, and urllib3 (under Apprise's HTTP client)
# logs each request line; service URLs and paths carry credentials (bot tokens, webhook keys).
for _name, _level in ((apprise.LOGGER_NAME, logging.WARNING), ("urllib3", logging.INFO)):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(_level)

# Schemes whose host is user-chosen: checked against the outbound policy before sending. Schemes
# whose "host" can be a token (matrix:// in t2bot mode, ntfy://topic) are left out; use Tocsin's
# own Matrix channel, and `allowed_schemes` to keep users to the services you intend.
VETTED_SCHEMES = frozenset(
    {
        "json", "jsons", "form", "forms", "xml", "xmls",
        "apprise", "apprises", "gotify", "gotifys", "mmost", "mmosts",
        "rocket", "rockets", "hassio", "hassios", "ncloud", "nclouds",
        "nctalk", "nctalks",
    }
)  # fmt: skip


@dataclass(frozen=True)
class AppriseConfig:
    # Seconds for the whole Apprise call; each service also has its own socket timeouts.
    timeout: float = 30.0
    allow_private_addresses: bool = False
    # When set, only these Apprise schemes may be used (e.g. {"twilio", "tgram", "ntfys"}).
    allowed_schemes: frozenset[str] | None = None


@register
class AppriseChannel(Channel):
    kind: ClassVar[str] = "apprise"
    also_serves: ClassVar[tuple[str, ...]] = ("sms", "voice", "push")

    def __init__(self, config: AppriseConfig | None = None) -> None:
        self.config = config or AppriseConfig()
        self.asset = apprise.AppriseAsset(storage_mode="memory", secure_logging=True)

    def secrets(self, target: Target) -> Iterable[str]:
        return [target.address]

    def _scheme(self, target: Target) -> str:
        return urlsplit(target.address).scheme.lower()

    def _service(self, target: Target) -> apprise.NotifyBase:
        try:
            service = apprise.Apprise.instantiate(
                target.address, asset=self.asset, suppress_exceptions=False
            )
        except Exception as exc:
            # The plugin's message may quote the bad token, so only its type is reported.
            raise ValueError(
                f"Apprise cannot use this {self._scheme(target)}:// URL ({type(exc).__name__}); "
                "check its required parts"
            ) from None
        if service is None:
            raise ValueError(
                f"Apprise does not recognise this {self._scheme(target) or 'scheme-less'} URL"
            )
        # Redirects could lead past the outbound policy.
        service.redirects = False
        return service

    def validate_target(self, target: Target) -> None:
        require_options(target, ())
        if len(target.address) > 4096 or "://" not in target.address:
            raise ValueError("address must be one Apprise URL such as tgram://token/chat_id")
        if any(ch.isspace() or ch == "," for ch in target.address):
            raise ValueError("address must be exactly one Apprise URL (no spaces or commas)")
        allowed = self.config.allowed_schemes
        scheme = self._scheme(target)
        if allowed is not None and scheme not in allowed:
            raise ValueError(f"Apprise scheme {scheme}:// is not enabled on this server")
        self._service(target)

    async def _vet(self, target: Target) -> DeliveryResult | None:
        scheme = self._scheme(target)
        if scheme not in VETTED_SCHEMES:
            return None
        parts = urlsplit(target.address)
        http_scheme = "https" if scheme.endswith("s") else "http"
        try:
            port = f":{parts.port}" if parts.port else ""
            await check_outbound_url(
                f"{http_scheme}://{parts.hostname}{port}/", self.config.allow_private_addresses
            )
        except (UnsafeOutboundUrl, ValueError) as exc:
            return DeliveryResult.permanent(
                f"apprise {scheme}:// refused by outbound policy: {exc}"
            )
        except OutboundLookupFailed as exc:
            return DeliveryResult.temporary(f"apprise {scheme}://: {exc}")
        return None

    async def deliver(self, message: Message, target: Target) -> DeliveryResult:
        refused = await self._vet(target)
        if refused is not None:
            return refused
        service = self._service(target)
        notifier = apprise.Apprise(asset=self.asset)
        notifier.add(service)
        result = await notifier.async_notify(
            body=plain_text(message),
            title=one_line(message.subject),
            notify_type=(
                apprise.NotifyType.FAILURE
                if message.urgency == "high"
                else apprise.NotifyType.WARNING
            ),
            body_format=apprise.NotifyFormat.TEXT,
            timeout=self.config.timeout,
        )
        name = service.service_name or self._scheme(target)
        if bool(result):
            return DeliveryResult.sent(f"delivered through apprise ({name})")
        status = getattr(result, "status", None)
        status_name = status.name.lower() if status is not None else "failure"
        return DeliveryResult.temporary(
            f"apprise ({name}) reported {status_name}; Apprise gives no reason, "
            "so this is treated as temporary"
        )
