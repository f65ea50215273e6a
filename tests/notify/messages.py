"""Pages used across the channel tests, with hostile alert text in them."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from tocsin.notify import Message

T = TypeVar("T")

HOSTILE = '<script>alert("pwned")</script> & <b>bold</b> <!channel> <http://evil.test|click>'
ACK_URL = "https://tocsin.example.com/actions/ack/ack-token-1"
RESOLVE_URL = "https://tocsin.example.com/actions/resolve/resolve-token-1"
INCIDENT_URL = "https://tocsin.example.com/incidents/42"


def page(**overrides: Any) -> Message:
    fields: dict[str, Any] = {
        "idempotency_key": "incident-42/escalation-1/contact-7",
        "subject": "Disk full on db-1",
        "text": f"Summary: {HOSTILE}\nHost: db-1",
        "urgency": "high",
        "incident_id": "42",
        "incident_url": INCIDENT_URL,
        "ack_url": ACK_URL,
        "resolve_url": RESOLVE_URL,
    }
    fields.update(overrides)
    return Message(**fields)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def fail_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Name lookups fail at once, without a query leaving the machine."""

    async def no_answer(*_args: object, **_kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", no_answer)
