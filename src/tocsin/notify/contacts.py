"""Contact methods as people enter them (the REST API, the configuration files): which kinds
exist, whether an address and its options can work, and what may be shown of them.

Addresses and options are stored encrypted and never shown again; `display` is the shown form.
An email address, a Matrix room id and a Slack channel name are not credentials and are shown
whole; webhook URLs, Slack webhook URLs and Apprise URLs (SMS, voice, push) may embed tokens,
so only their scheme and host are shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Literal, get_args

from tocsin.notify.channels import Channel, Target
from tocsin.notify.channels.apprise import AppriseChannel
from tocsin.notify.channels.base import scrub
from tocsin.notify.channels.email import EmailChannel, EmailConfig
from tocsin.notify.channels.http import HttpConfig
from tocsin.notify.channels.matrix import MatrixChannel, MatrixConfig
from tocsin.notify.channels.slack import SlackChannel, SlackConfig
from tocsin.notify.channels.webhook import WebhookChannel

ContactKind = Literal["email", "sms", "voice", "push", "slack", "matrix", "webhook", "apprise"]
CONTACT_KINDS: tuple[str, ...] = get_args(ContactKind)
# Option names whose values are credentials: never shown, never written to files.
SECRET_OPTIONS = frozenset({"secret", "secrets", "headers", "bot_token", "access_token"})


@cache
def _checker(kind: str) -> Channel:
    """A channel that checks the shape of a target. Server-side settings (the default Slack bot
    token, the Matrix bot account) are assumed present: sending reports their absence, and
    a test notification finds it at once."""
    if kind == "email":
        return EmailChannel(EmailConfig())
    if kind == "webhook":
        return WebhookChannel(HttpConfig())
    if kind == "slack":
        return SlackChannel(SlackConfig(bot_token="configured-on-the-server"))  # noqa: S106
    if kind == "matrix":
        return MatrixChannel(
            MatrixConfig(
                homeserver_url="https://homeserver.invalid",
                access_token="configured-on-the-server",  # noqa: S106
            )
        )
    return AppriseChannel()


def address_is_secret(kind: str, address: str) -> bool:
    if kind in ("email", "matrix"):
        return False
    return not (kind == "slack" and "://" not in address)


def display(kind: str, address: str) -> str:
    """What the API and plans show of an address."""
    if not address_is_secret(kind, address):
        return address[:200]
    return Target(kind, address).display_address()[:200]  # type: ignore[arg-type]


def _strings(value: Any) -> list[str]:
    """Every string inside option values: any of them may be a credential."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


def check_contact(kind: str, address: str, options: Mapping[str, Any]) -> str:
    """The display form of a contact method that can work; ValueError saying what is wrong
    (without repeating the address or a secret) when it cannot."""
    if kind not in CONTACT_KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(CONTACT_KINDS)}")
    try:
        target = Target(kind, address, dict(options))  # type: ignore[arg-type]
        _checker(kind).validate_target(target)
    except ValueError as exc:
        hidden = _strings(dict(options))
        if address_is_secret(kind, address):
            hidden.append(address)
        raise ValueError(scrub(str(exc), hidden)) from None
    return display(kind, address)


def option_names(options: Mapping[str, Any] | None) -> list[str]:
    return sorted(options or {})
