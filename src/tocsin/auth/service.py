"""Passwords (argon2) and API tokens (random, stored as SHA-256)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from tocsin.auth.models import ApiToken
from tocsin.orgs.models import User

ROLE_RANK = {"observer": 0, "responder": 1, "admin": 2}
TOKEN_PREFIX = "tcs_"  # noqa: S105 - a public prefix that makes leaked tokens greppable

_hasher = PasswordHasher()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the actor string goes on every timeline entry they cause."""

    actor: str
    role: str
    user_id: int | None = None
    token_id: int | None = None

    def has_role(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate_password(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, or None. An unknown username costs
    the same argon2 work as a wrong password, so timing does not reveal which usernames exist."""
    user = session.scalars(sa.select(User).where(User.username == username)).one_or_none()
    if user is None or not user.password_hash:
        verify_password(_unknown_user_hash(), password)
        return None
    if not verify_password(user.password_hash, password) or not user.active:
        return None
    return user


@functools.cache
def _unknown_user_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_token(
    session: Session,
    *,
    name: str,
    role: str,
    user_id: int | None,
    now: datetime,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Returns the stored row and the token itself, which is never stored or shown again."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLE_RANK)}")
    token = new_token()
    row = ApiToken(
        user_id=user_id,
        name=name,
        role=role,
        token_hash=token_digest(token),
        prefix=token[: len(TOKEN_PREFIX) + 6],
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row, token


def authenticate_token(
    session: Session, token: str, *, now: datetime, bootstrap_token: str | None
) -> Principal | None:
    if bootstrap_token and hmac.compare_digest(token.encode(), bootstrap_token.encode()):
        return Principal(actor="token:bootstrap", role="admin")
    row = session.scalars(
        sa.select(ApiToken).where(ApiToken.token_hash == token_digest(token))
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    role = row.role
    actor = f"token:{row.name}"
    if row.user_id is not None:
        user = session.get(User, row.user_id)
        if user is None or not user.active:
            return None
        # A token never grants more than its user currently has.
        if ROLE_RANK[user.role] < ROLE_RANK[role]:
            role = user.role
        actor = f"user:{user.username}"
    return Principal(actor=actor, role=role, user_id=row.user_id, token_id=row.id)
