"""CLI test helpers: invoke `tocsin` in-process, and a real HTTP server on loopback."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from typer.testing import CliRunner, Result

from tests.conftest import SECRET_KEY
from tocsin.api.app import create_app
from tocsin.cli.main import app
from tocsin.runtime import Runtime

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """`serve` and `demo` configure logging for the process; undo that after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def tocsin() -> Invoke:
    """tocsin("config", "validate", "dir", input=..., env=...) -> Result (stdout/stderr apart)."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        base = {
            "TOCSIN_TOKEN": None,
            "TOCSIN_URL": None,
            "TOCSIN_DATABASE_URL": None,
            # Contact-method secrets are encrypted with it; without it a key file would be
            # made in ./tocsin-data.
            "TOCSIN_SECRET_KEY": SECRET_KEY,
        }
        return runner.invoke(app, list(args), input=input, env={**base, **(env or {})})

    return invoke


@pytest.fixture
def db_args(db_url: str) -> list[str]:
    return ["--database-url", db_url]


@dataclass
class LiveServer:
    url: str
    runtime: Runtime


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[LiveServer]:
    """uvicorn serving the test runtime in a thread, on a socket bound to a free port. Its
    background threads do not run: tests drain the processor by hand."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(runtime, manage_runtime=False), log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", runtime)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
