"""Notification channels. Every module in this package is imported here, and channel modules
register themselves with `@register`, so adding a channel means adding one module."""

from __future__ import annotations

import importlib
import pkgutil

from tocsin.notify.channels.base import (
    Channel,
    DeliveryResult,
    Message,
    Target,
    get_channel,
    register,
    registered_kinds,
)

__all__ = [
    "Channel",
    "DeliveryResult",
    "Message",
    "Target",
    "get_channel",
    "register",
    "registered_kinds",
]


def _import_channel_modules() -> None:
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_import_channel_modules()
