"""Optional request credentials for the /integrations/* endpoints, on top of the secret key.

``Integration.options["auth"]`` holds only hashes:
  {"type": "bearer", "token_sha256": "<hex>"}                      Authorization: Bearer <token>
  {"type": "basic", "username": "...", "password_sha256": "<hex>"}  Authorization: Basic ...
Comparisons are constant-time. A malformed auth option fails closed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from typing import Any

from tocsin.ingest.rejection import Rejected

log = logging.getLogger(__name__)


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _unauthorized(scheme: str, message: str) -> Rejected:
    return Rejected(401, "unauthorized", [message], headers={"WWW-Authenticate": scheme})


def _equal_hex(presented: str, expected: Any) -> bool:
    return isinstance(expected, str) and hmac.compare_digest(
        sha256_hex(presented), expected.strip().lower()
    )


def check_request_auth(options: dict[str, Any], authorization: str | None) -> None:
    """Raise 401 unless the request carries the credentials the integration requires."""
    rule = options.get("auth")
    if not rule:
        return
    kind = rule.get("type") if isinstance(rule, dict) else None
    scheme, _, credentials = (authorization or "").partition(" ")
    credentials = credentials.strip()
    if kind == "bearer":
        if scheme.lower() != "bearer" or not credentials:
            raise _unauthorized("Bearer", "this integration requires 'Authorization: Bearer'")
        if not _equal_hex(credentials, rule.get("token_sha256")):
            raise _unauthorized("Bearer", "invalid bearer token")
        return
    if kind == "basic":
        realm = 'Basic realm="tocsin"'
        if scheme.lower() != "basic" or not credentials:
            raise _unauthorized(realm, "this integration requires HTTP basic authentication")
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized(realm, "malformed basic credentials") from None
        username, sep, password = decoded.partition(":")
        expected_user = rule.get("username")
        user_ok = isinstance(expected_user, str) and hmac.compare_digest(
            username.encode("utf-8"), expected_user.encode("utf-8")
        )
        password_ok = _equal_hex(password, rule.get("password_sha256"))
        if not (sep and user_ok and password_ok):
            raise _unauthorized(realm, "invalid username or password")
        return
    log.warning("integration has an unusable auth option (type %r); refusing requests", kind)
    raise _unauthorized("Bearer", "this integration's authentication is misconfigured")
