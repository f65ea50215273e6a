"""Paging people: the channel layer, one interface and one module per way of reaching someone.

A channel class is looked up by target kind (`get_channel("webhook")`), built with its typed
config, and asked to `send(message, target)`, which always returns a `DeliveryResult`.
"""

from __future__ import annotations

from tocsin.notify.channels import (
    Channel,
    DeliveryResult,
    Message,
    Target,
    get_channel,
    register,
    registered_kinds,
)
from tocsin.notify.channels.apprise import AppriseChannel, AppriseConfig
from tocsin.notify.channels.email import EmailChannel, EmailConfig
from tocsin.notify.channels.http import HttpConfig
from tocsin.notify.channels.matrix import MatrixChannel, MatrixConfig
from tocsin.notify.channels.outbound import (
    OutboundLookupFailed,
    UnsafeOutboundUrl,
    check_outbound_url,
)
from tocsin.notify.channels.recording import RecordingChannel
from tocsin.notify.channels.slack import SlackChannel, SlackConfig
from tocsin.notify.channels.webhook import WebhookChannel

__all__ = [
    "AppriseChannel",
    "AppriseConfig",
    "Channel",
    "DeliveryResult",
    "EmailChannel",
    "EmailConfig",
    "HttpConfig",
    "MatrixChannel",
    "MatrixConfig",
    "Message",
    "OutboundLookupFailed",
    "RecordingChannel",
    "SlackChannel",
    "SlackConfig",
    "Target",
    "UnsafeOutboundUrl",
    "WebhookChannel",
    "check_outbound_url",
    "get_channel",
    "register",
    "registered_kinds",
]
