"""A real Matrix homeserver (Synapse, SQLite, client API only) for the whole test session.

Synapse is started once in a temporary directory: its own generated config plus overrides that
listen on a free loopback port, turn federation off and lift rate limits so the tests do not wait.
Users are made with the shared-secret registration admin API. If Synapse is not installed or does
not come up, the tests that need it skip loudly (fail under TOCSIN_TEST_STRICT=1).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from tests.notify.smtp_server import free_port
from tests.services import require_service

SERVER_NAME = "tocsin.test"
START_DEADLINE_SECONDS = 90.0
_UNLIMITED = {"per_second": 10000, "burst_count": 10000}


@dataclass(frozen=True)
class MatrixUser:
    user_id: str
    access_token: str


@dataclass
class Homeserver:
    url: str
    shared_secret: str

    def _client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def register(self, username: str) -> MatrixUser:
        """Shared-secret registration: HMAC-SHA1 over nonce, user, password and admin flag."""
        password = secrets.token_urlsafe(16)
        with self._client() as client:
            nonce = client.get("/_synapse/admin/v1/register").raise_for_status().json()["nonce"]
            content = b"\x00".join(
                [nonce.encode(), username.encode(), password.encode(), b"notadmin"]
            )
            mac = hmac.new(self.shared_secret.encode(), content, hashlib.sha1).hexdigest()
            reply = client.post(
                "/_synapse/admin/v1/register",
                json={
                    "nonce": nonce,
                    "username": username,
                    "password": password,
                    "admin": False,
                    "mac": mac,
                },
            )
            body = reply.raise_for_status().json()
        return MatrixUser(body["user_id"], body["access_token"])

    def create_room(self, owner: MatrixUser, invite: list[MatrixUser]) -> str:
        with self._client(owner.access_token) as client:
            reply = client.post(
                "/_matrix/client/v3/createRoom",
                json={"preset": "private_chat", "invite": [u.user_id for u in invite]},
            )
            room_id: str = reply.raise_for_status().json()["room_id"]
        return room_id

    def join(self, user: MatrixUser, room_id: str) -> None:
        with self._client(user.access_token) as client:
            reply = client.post(f"/_matrix/client/v3/join/{quote(room_id, safe='')}", json={})
            reply.raise_for_status()

    def messages(self, user: MatrixUser, room_id: str) -> list[dict[str, Any]]:
        """The room's m.room.message events, oldest first, as `user` sees them."""
        with self._client(user.access_token) as client:
            reply = client.get(
                f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages",
                params={"dir": "b", "limit": "100"},
            )
            chunk = reply.raise_for_status().json()["chunk"]
        events = [e for e in chunk if e.get("type") == "m.room.message"]
        return list(reversed(events))


def _overrides(port: int, shared_secret: str) -> dict[str, Any]:
    return {
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "registration_shared_secret": shared_secret,
        "enable_registration": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "report_stats": False,
        "enable_metrics": False,
        "presence": {"enabled": False},
        "rc_message": _UNLIMITED,
        "rc_registration": _UNLIMITED,
        "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
        "rc_invites": {"per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED},
        "rc_login": {
            "address": _UNLIMITED,
            "account": _UNLIMITED,
            "failed_attempts": _UNLIMITED,
        },
    }


def _log_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> str | None:
    """None when the homeserver answers, else why it did not."""
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"synapse exited with {process.returncode}: {_log_tail(log)}"
        try:
            if httpx.get(f"{url}/_matrix/client/versions", timeout=2).status_code == 200:
                return None
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling a real process for readiness, bounded by the deadline
    return f"synapse did not answer within {START_DEADLINE_SECONDS:.0f}s: {_log_tail(log)}"


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homeserver]:
    require_service(
        "matrix-synapse",
        importlib.util.find_spec("synapse") is not None,
        "the synapse package is missing; pip install -e '.[dev]'",
    )
    directory = tmp_path_factory.mktemp("synapse")
    config = directory / "homeserver.yaml"
    generated = subprocess.run(
        [
            sys.executable, "-m", "synapse.app.homeserver",
            "--server-name", SERVER_NAME,
            "--config-path", str(config),
            "--data-directory", str(directory),
            "--generate-config", "--report-stats=no",
        ],
        cwd=directory, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    require_service(
        "matrix-synapse",
        generated.returncode == 0,
        f"config generation failed: {generated.stderr.decode(errors='replace')[-2000:]}",
    )
    port, shared_secret = free_port(), secrets.token_hex(24)
    overrides = directory / "overrides.yaml"
    overrides.write_text(yaml.safe_dump(_overrides(port, shared_secret)))
    log = directory / "synapse.out"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "synapse.app.homeserver",
                "--config-path", str(config), "--config-path", str(overrides),
            ],
            cwd=directory, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        problem = _wait_until_up(process, url, log)
        require_service("matrix-synapse", problem is None, problem or "")
        yield Homeserver(url, shared_secret)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
