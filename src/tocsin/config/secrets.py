"""Request credentials (Alertmanager, webhooks): read from the environment at apply time,
stored only as SHA-256.

Stored shapes (``Integration.options["auth"]``):
  {"type": "bearer", "token_sha256": hex}
  {"type": "basic", "username": ..., "password_sha256": hex}
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tocsin.config.models import BasicAuth, BearerAuth, RequestAuth


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ResolvedAuth:
    stored: dict[str, Any] | None  # what to store; None when it cannot be resolved
    missing_env: str | None = None  # the unset variable, if any
    kept: bool = False  # the variable is unset and the stored secret is kept


def resolve_auth(
    spec: RequestAuth, current: Mapping[str, Any] | None, env: Mapping[str, str]
) -> ResolvedAuth:
    """The auth to store for ``spec``. With the variable unset, an existing secret of the same
    kind is kept (so an exported configuration re-applies without the secret at hand)."""
    if isinstance(spec, BearerAuth):
        var, secret_field, base = spec.token_env, "token_sha256", {"type": "bearer"}
    else:
        assert isinstance(spec, BasicAuth)
        var, secret_field = spec.password_env, "password_sha256"
        base = {"type": "basic", "username": spec.username}
    value = env.get(var)
    if value:
        return ResolvedAuth({**base, secret_field: sha256_hex(value)})
    if current and current.get("type") == base["type"] and current.get(secret_field):
        return ResolvedAuth({**base, secret_field: current[secret_field]}, var, kept=True)
    return ResolvedAuth(None, var)


def redact(value: Any) -> Any:
    """A copy fit for printing: stored secret hashes replaced by a marker."""
    if isinstance(value, dict):
        return {k: ("(secret)" if k.endswith("_sha256") else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def placeholder_env(service: str, integration: str, what: str) -> str:
    """The variable name an export writes where a hashed secret cannot be written back."""
    raw = f"TOCSIN_{service}_{integration}_{what}".upper()
    return re.sub(r"[^A-Z0-9_]", "_", raw)
