"""Secrets at rest and signed links.

Contact-method secrets (webhook signing secrets, Slack tokens, Apprise URLs that embed
credentials) are stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256). The key comes from
TOCSIN_SECRET_KEY; without it a key file is created in the data directory on first start
(fine for one node; every node of a cluster must be given the same TOCSIN_SECRET_KEY).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "secret.key"

_lock = threading.Lock()
_fernet: Fernet | None = None
_signing_key: bytes = b""


class SecretsUnavailable(RuntimeError):
    """No key is configured, or the stored value was encrypted with another key."""


def load_or_create_key(data_dir: Path, configured: str | None) -> str:
    if configured:
        return configured
    path = data_dir / KEY_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def configure(key: str) -> None:
    """Install the process-wide key (every runtime of one process shares its secrets)."""
    global _fernet, _signing_key
    try:
        fernet = Fernet(key.encode())
    except ValueError as exc:
        raise SecretsUnavailable(
            "TOCSIN_SECRET_KEY must be 32 url-safe base64-encoded bytes "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())')"
        ) from exc
    with _lock:
        _fernet = fernet
        # A separate key for link signatures, derived so that one secret configures both.
        _signing_key = hashlib.sha256(b"tocsin-link-signing:" + key.encode()).digest()


def _box() -> Fernet:
    if _fernet is None:
        raise SecretsUnavailable("no secret key configured")
    return _fernet


def encrypt(plain: bytes) -> str:
    return _box().encrypt(plain).decode()


def decrypt(token: str) -> bytes:
    try:
        return _box().decrypt(token.encode())
    except InvalidToken as exc:
        raise SecretsUnavailable(
            "a stored secret cannot be decrypted with the current key"
        ) from exc


def sign(message: bytes) -> str:
    if not _signing_key:
        raise SecretsUnavailable("no secret key configured")
    digest = hmac.new(_signing_key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify(message: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(message), signature)


class EncryptedJson(sa.types.TypeDecorator[Any]):
    """A JSON value stored as one Fernet token: readable only with the key."""

    impl = sa.Text()
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        return encrypt(orjson.dumps(value))

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        return orjson.loads(decrypt(str(value)))
