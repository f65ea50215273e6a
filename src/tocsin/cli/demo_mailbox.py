"""The demo's mailbox: a local SMTP server, so pages can be seen (and acknowledged) without
configuring a real mail server. Every message is kept as an .eml file and announced on the
terminal with its acknowledge link."""

from __future__ import annotations

import re
import socket
import sys
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

_ACK_LINK = re.compile(r"https?://\S+/actions/\S+")


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class _Handler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = len(list(directory.glob("*.eml")))

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.count += 1
        raw: bytes = envelope.original_content or envelope.content
        (self.directory / f"{self.count:05d}.eml").write_bytes(raw)
        message = message_from_bytes(raw, policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        links = _ACK_LINK.findall(str(text))
        # Straight to the terminal, not the log: the log redacts link tokens, and here the
        # person running the demo is the recipient.
        sys.stdout.write(
            f"[mailbox] to {', '.join(envelope.rcpt_tos)}: {message.get('subject', '')}\n"
            + (f"          acknowledge: {links[0]}\n" if links else "")
        )
        sys.stdout.flush()
        return "250 Message accepted for delivery"


class DemoMailbox:
    def __init__(self, directory: Path, host: str = "127.0.0.1") -> None:
        self.directory = directory
        self.host = host
        self.port = 0
        self._controller: Any = None

    def start(self) -> bool:
        """False when aiosmtpd (a development dependency) is not installed."""
        try:
            from aiosmtpd.controller import Controller
        except ImportError:
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = _free_port(self.host)
        self._controller = Controller(_Handler(self.directory), hostname=self.host, port=self.port)
        self._controller.start()
        return True

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
