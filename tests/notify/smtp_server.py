"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    over_tls: bool
    login: str | None

    def parsed(self) -> EmailMessage:
        message = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class SmtpBehaviour:
    rcpt_reply: str | None = None  # e.g. "550 5.1.1 no such user"
    data_hold: threading.Event | None = None  # answer DATA only once this is set
    users: dict[str, str] = field(default_factory=dict)


class RecordingHandler:
    def __init__(self, behaviour: SmtpBehaviour) -> None:
        self.behaviour = behaviour
        self.delivered: list[Delivered] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.behaviour.rcpt_reply:
            return self.behaviour.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        hold = self.behaviour.data_hold
        if hold is not None:
            await asyncio.get_running_loop().run_in_executor(None, hold.wait, 30)
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        self.delivered.append(
            Delivered(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content or envelope.content,
                server.transport.get_extra_info("ssl_object") is not None,
                login,
            )
        )
        return "250 2.0.0 Ok: queued as TEST1"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.behaviour.users.get(user) == password:
                return AuthResult(success=True, auth_data=user.encode())
        return AuthResult(success=False, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    def __init__(
        self,
        behaviour: SmtpBehaviour | None = None,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.behaviour = behaviour or SmtpBehaviour()
        self.handler = RecordingHandler(self.behaviour)
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=True, auth_require_tls=True)
        if implicit_tls is not None:
            kwargs.update(ssl_context=implicit_tls)
        if self.behaviour.users:
            kwargs.update(authenticator=self.handler.authenticate, auth_required=True)
        else:
            kwargs.update(auth_require_tls=False)
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, server_hostname="mx.test", **kwargs
        )
        self.controller.start()

    @property
    def delivered(self) -> list[Delivered]:
        return self.handler.delivered

    def stop(self) -> None:
        if self.behaviour.data_hold is not None:
            self.behaviour.data_hold.set()
        self.controller.stop()
