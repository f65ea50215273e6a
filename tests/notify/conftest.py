"""Real servers on loopback for the channel tests: HTTP receivers, SMTP, Synapse."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.notify.certs import CertPaths, make_certs
from tests.notify.loopback import LoopbackServer, Responder
from tests.notify.smtp_server import SmtpServer
from tests.notify.synapse import synapse  # noqa: F401  (session fixture)


@pytest.fixture
def http_server() -> Iterator[Callable[..., LoopbackServer]]:
    started: list[LoopbackServer] = []

    def start(responder: Responder, tls: ssl.SSLContext | None = None) -> LoopbackServer:
        server = LoopbackServer(responder, tls)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    started: list[SmtpServer] = []

    def start(*args: Any, **kwargs: Any) -> SmtpServer:
        server = SmtpServer(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertPaths:
    directory: Path = tmp_path_factory.mktemp("certs")
    return make_certs(directory)
