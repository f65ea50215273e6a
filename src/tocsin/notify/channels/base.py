"""The channel interface: what a page says, where it goes, how it went, and the channel registry.

A channel turns one `Message` into one delivery attempt to one `Target` and reports a
`DeliveryResult`. Channels never raise for delivery problems: the caller (the outbox) decides
what to do from the outcome. Retries are the caller's business; a channel makes exactly one
attempt and, where the provider supports it, passes the message's idempotency key along so that
a retried attempt is not shown twice.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args
from urllib.parse import urlsplit

from tocsin.observability.logging import redact

log = logging.getLogger(__name__)

Outcome = Literal["sent", "temporary_failure", "permanent_failure", "unknown"]
Urgency = Literal["high", "low"]
TargetKind = Literal["email", "webhook", "slack", "matrix", "apprise", "sms", "voice", "push"]

OUTCOMES: tuple[str, ...] = get_args(Outcome)
URGENCIES: tuple[str, ...] = get_args(Urgency)
TARGET_KINDS: tuple[str, ...] = get_args(TargetKind)

# Kinds whose address is itself a credential (Apprise URLs carry API keys and passwords).
_SECRET_ADDRESS_KINDS = frozenset({"apprise", "sms", "voice", "push"})
_DETAIL_LIMIT = 500


@dataclass(frozen=True)
class Message:
    """One page, rendered once and sent through any channel.

    `idempotency_key` stays the same for every retry of the same page to the same target, so
    providers that deduplicate (Matrix txnId, webhook receivers, mail clients via Message-ID)
    show a retried page once. `text` and `subject` are untrusted (they carry alert summaries) and
    every channel escapes them for its markup. `html`, when given, must be markup produced by an
    autoescaping template; channels embed it as is.
    """

    idempotency_key: str
    subject: str
    text: str
    html: str | None = None
    urgency: Urgency = "high"
    incident_id: str | None = None
    incident_url: str | None = None
    ack_url: str | None = None
    resolve_url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.idempotency_key or not self.idempotency_key.strip():
            raise ValueError("message idempotency_key must not be empty")
        if self.urgency not in URGENCIES:
            raise ValueError(f"message urgency must be one of {', '.join(URGENCIES)}")


@dataclass(frozen=True)
class Target:
    """A contact method: which channel kind, the address there, and channel-specific options.

    Options hold secrets (webhook signing secrets, bot tokens) and Apprise addresses are
    credentials themselves, so the repr never shows them.
    """

    kind: TargetKind
    address: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ValueError(
                f"unknown target kind {self.kind!r}; expected one of {', '.join(TARGET_KINDS)}"
            )

    def display_address(self) -> str:
        """The address with credentials left out, safe for logs and result details."""
        parts = urlsplit(self.address) if "://" in self.address else None
        if parts is None or not parts.scheme:
            return self.address if self.kind not in _SECRET_ADDRESS_KINDS else "<redacted>"
        if self.kind in _SECRET_ADDRESS_KINDS:
            return f"{parts.scheme}://…"
        host = parts.hostname or ""
        port = f":{parts.port}" if _safe_port(parts) else ""
        return f"{parts.scheme}://{host}{port}/…"

    def __repr__(self) -> str:
        keys = ", ".join(sorted(self.options))
        return f"Target(kind={self.kind!r}, address={self.display_address()!r}, options=[{keys}])"


def _safe_port(parts: Any) -> int | None:
    try:
        port: int | None = parts.port
    except ValueError:
        return None
    return port


@dataclass(frozen=True)
class DeliveryResult:
    """How one attempt went.

    - sent: the provider accepted the message.
    - temporary_failure: nothing was delivered and trying again later may work (connection
      refused, DNS failure, rate limited, provider 5xx).
    - permanent_failure: nothing was delivered and trying again will not help until someone
      changes the target or the configuration (bad address, revoked token, 4xx).
    - unknown: the request was fully sent but no answer came back; the provider may or may not
      have delivered it.

    `detail` is for humans and never contains secrets. `retry_after` is the provider's own hint in
    seconds, when it gave one.
    """

    outcome: Outcome
    detail: str
    provider_message_id: str | None = None
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}")

    @property
    def ok(self) -> bool:
        return self.outcome == "sent"

    @classmethod
    def sent(cls, detail: str, provider_message_id: str | None = None) -> DeliveryResult:
        return cls("sent", detail, provider_message_id)

    @classmethod
    def temporary(cls, detail: str, retry_after: float | None = None) -> DeliveryResult:
        return cls("temporary_failure", detail, retry_after=retry_after)

    @classmethod
    def permanent(cls, detail: str) -> DeliveryResult:
        return cls("permanent_failure", detail)

    @classmethod
    def unknown(cls, detail: str) -> DeliveryResult:
        return cls("unknown", detail)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove every known secret from a text and cut it to a readable length."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    text = redact(text)
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


class Channel(ABC):
    """One way of reaching people. Subclasses set `kind`, validate targets and deliver.

    Settings (hosts, timeouts, URL policy) come in through a typed config object given to the
    constructor. `send` is the one entry point: it validates, delivers, and turns anything that
    escaped the channel's own error handling into a result instead of an exception.
    """

    kind: ClassVar[str]
    # Further target kinds this channel delivers to (Apprise serves sms, voice and push).
    also_serves: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def kinds(cls) -> tuple[str, ...]:
        return (cls.kind, *cls.also_serves)

    @abstractmethod
    def validate_target(self, target: Target) -> None:
        """Raise ValueError with a message a user can act on when the target cannot work."""

    @abstractmethod
    async def deliver(self, message: Message, target: Target) -> DeliveryResult:
        """Make exactly one attempt; map every failure to a result."""

    def secrets(self, target: Target) -> Iterable[str]:
        """Values that must never appear in a result detail or a log line."""
        return ()

    def serves(self, kind: str) -> bool:
        return kind in self.kinds()

    async def send(self, message: Message, target: Target) -> DeliveryResult:
        hidden = list(self.secrets(target))
        if not self.serves(target.kind):
            return DeliveryResult.permanent(
                f"{self.kind} channel cannot deliver to a {target.kind} target"
            )
        try:
            self.validate_target(target)
        except ValueError as exc:
            return DeliveryResult.permanent(scrub(f"invalid target: {exc}", hidden))
        try:
            result = await self.deliver(message, target)
        except Exception as exc:
            # A bug or a library surprise: the request may already have gone out.
            detail = scrub(f"{type(exc).__name__}: {exc}", hidden)
            log.error("%s channel failed unexpectedly: %s", self.kind, detail)
            return DeliveryResult.unknown(f"unexpected error: {detail}")
        return DeliveryResult(
            result.outcome,
            scrub(result.detail, hidden),
            result.provider_message_id,
            result.retry_after,
        )


def require_options(target: Target, allowed: Iterable[str]) -> None:
    """Reject option keys a channel does not know, so that a typo does not pass silently."""
    unknown = sorted(set(target.options) - set(allowed))
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; this channel takes: {known}")


def option_str(target: Target, name: str) -> str | None:
    value = target.options.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"option {name} must be a non-empty string")
    return value


_REGISTRY: dict[str, type[Channel]] = {}


def register(channel_cls: type[Channel]) -> type[Channel]:
    """Class decorator: make a channel available under its kind (and `also_serves` kinds)."""
    for kind in channel_cls.kinds():
        existing = _REGISTRY.get(kind)
        if existing is not None and existing is not channel_cls:
            raise ValueError(f"kind {kind!r} is already served by {existing.__name__}")
        _REGISTRY[kind] = channel_cls
    return channel_cls


def get_channel(kind: str) -> type[Channel]:
    """The channel class that delivers to targets of `kind`."""
    # Importing the package loads every channel module, each of which registers itself.
    import tocsin.notify.channels  # noqa: F401

    try:
        return _REGISTRY[kind]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ValueError(f"no channel delivers to {kind!r}; registered kinds: {known}") from None


def registered_kinds() -> list[str]:
    import tocsin.notify.channels  # noqa: F401

    return sorted(_REGISTRY)
