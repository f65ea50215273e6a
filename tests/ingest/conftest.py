"""Ingestion test helpers: a real uvicorn server in a thread, and what got stored."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trustme
import uvicorn

from tocsin.alerts.models import Alert, InboundEvent
from tocsin.api.app import create_app
from tocsin.orgs.models import Integration
from tocsin.runtime import Runtime


@dataclass(frozen=True)
class LiveServer:
    url: str
    ssl: ssl.SSLContext  # trusts the server's test certificate


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def live_server(runtime: Runtime, test_ca: trustme.CA, tmp_path: Path) -> Iterator[LiveServer]:
    """The app served over HTTPS by uvicorn on a free loopback port; stopped after the test.

    HTTPS because the official PagerDuty client refuses any other scheme.
    """
    cert = test_ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(runtime, manage_runtime=False),
        log_level="warning",
        lifespan="on",
        ssl_certfile=str(cert_file),
        ssl_keyfile=str(key_file),
        timeout_graceful_shutdown=5,  # a client that keeps its connection open cannot hang it
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    client_ssl = ssl.create_default_context()
    test_ca.configure_trust(client_ssl)
    try:
        yield LiveServer(f"https://127.0.0.1:{port}", client_ssl)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not stop"


def stored(runtime: Runtime) -> list[InboundEvent]:
    with runtime.factory() as s:
        return list(s.scalars(sa.select(InboundEvent).order_by(InboundEvent.id)).all())


def alerts(runtime: Runtime) -> list[Alert]:
    with runtime.factory() as s:
        return list(s.scalars(sa.select(Alert).order_by(Alert.id)).all())


def set_options(runtime: Runtime, key: str, options: dict[str, Any]) -> None:
    """Change an integration's options (before the first request, or invalidate the cache)."""
    with runtime.factory() as s, s.begin():
        s.scalars(sa.select(Integration).where(Integration.key == key)).one().options = options
