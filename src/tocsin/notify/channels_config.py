"""The channel instances a node sends through, built from its Settings.

Email needs an SMTP relay (TOCSIN_SMTP_*); without one, email contact methods fail permanently
with a message saying so, and their pages fall back to the user's next contact method. The
HTTP-based channels (webhook, Slack, Matrix, Apprise for SMS, voice and push) need no node
settings beyond the outbound URL policy: their credentials live in each contact method.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tocsin.clock import Clock
from tocsin.notify.channels.apprise import AppriseChannel, AppriseConfig
from tocsin.notify.channels.base import TARGET_KINDS, Channel
from tocsin.notify.channels.email import EmailChannel, EmailConfig, SmtpSecurity
from tocsin.notify.channels.http import HttpConfig
from tocsin.notify.channels.matrix import MatrixChannel, MatrixConfig
from tocsin.notify.channels.slack import SlackChannel, SlackConfig
from tocsin.notify.channels.webhook import WebhookChannel
from tocsin.settings import Settings


@dataclass(frozen=True)
class ChannelSet:
    """Which channel delivers each contact-method kind, and why a kind has none."""

    channels: Mapping[str, Channel]
    missing: Mapping[str, str] = field(default_factory=dict)

    def get(self, kind: str) -> Channel | None:
        return self.channels.get(kind)

    def why_missing(self, kind: str) -> str:
        return self.missing.get(kind) or f"no channel delivers to {kind} contact methods"

    @classmethod
    def every_kind(cls, channel: Channel, kinds: Iterable[str] = TARGET_KINDS) -> ChannelSet:
        """One channel for every kind (tests hand a RecordingChannel in here)."""
        return cls({kind: channel for kind in kinds})


def email_config(settings: Settings) -> EmailConfig:
    security: SmtpSecurity = (
        "tls" if settings.smtp_tls else "starttls" if settings.smtp_starttls else "none"
    )
    return EmailConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=security,
        username=settings.smtp_username,
        password=settings.smtp_password,
        from_address=settings.smtp_from,
    )


def build_channels(settings: Settings, clock: Clock) -> ChannelSet:
    """Raises ValueError naming the setting when the SMTP settings cannot work."""
    private = settings.allow_private_urls
    http = HttpConfig(allow_private_addresses=private)
    apprise = AppriseChannel(AppriseConfig(allow_private_addresses=private))
    channels: dict[str, Channel] = {
        "webhook": WebhookChannel(http, clock),
        "slack": SlackChannel(SlackConfig(allow_private_addresses=private)),
        "matrix": MatrixChannel(MatrixConfig(http=http)),
        "apprise": apprise,
        "sms": apprise,
        "voice": apprise,
        "push": apprise,
    }
    missing: dict[str, str] = {}
    if settings.smtp_host:
        try:
            channels["email"] = EmailChannel(email_config(settings), clock)
        except ValueError as exc:
            raise ValueError(f"TOCSIN_SMTP_* settings: {exc}") from exc
    else:
        missing["email"] = "email delivery is not configured on this server (TOCSIN_SMTP_HOST)"
    return ChannelSet(channels, missing)
