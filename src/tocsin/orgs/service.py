"""Teams, users, services and integrations: lookups that answer 404 in the API's error shape,
uniqueness checks that answer 409, integration keys and Alertmanager credentials."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tocsin.errors import ApiError
from tocsin.orgs.models import Integration, Service, Team, TeamMember, User

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# Integrations whose endpoints (/integrations/...) can demand request credentials.
AUTH_CAPABLE_TYPES = ("alertmanager", "webhook")


def team_by_slug(session: Session, slug: str) -> Team:
    team = session.scalars(sa.select(Team).where(Team.slug == slug)).one_or_none()
    if team is None:
        raise ApiError(404, f"no team with slug {slug!r}")
    return team


def team_id(session: Session, slug: str | None) -> int | None:
    """The id of the team with this slug (a 404 when there is none); None for no team."""
    return team_by_slug(session, slug).id if slug is not None else None


def user_by_username(session: Session, username: str) -> User:
    user = session.scalars(sa.select(User).where(User.username == username)).one_or_none()
    if user is None:
        raise ApiError(404, f"no user named {username!r}")
    return user


def service_by_slug(session: Session, slug: str) -> Service:
    service = session.scalars(sa.select(Service).where(Service.slug == slug)).one_or_none()
    if service is None:
        raise ApiError(404, f"no service with slug {slug!r}")
    return service


def ensure_unique(
    session: Session, column: Any, value: Any, what: str, *, exclude_id: int | None = None
) -> None:
    """Refuse a duplicate with a clear 409 before the database refuses it less clearly."""
    model = column.class_
    stmt = sa.select(model.id).where(column == value)
    if exclude_id is not None:
        stmt = stmt.where(model.id != exclude_id)
    if session.scalars(stmt.limit(1)).first() is not None:
        raise ApiError(409, f"{what} {value!r} is already taken")


def flush_or_conflict(session: Session, message: str) -> None:
    """Flush now, so a unique violation raced in by another request is a 409, not a 5xx."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise ApiError(409, message) from exc


def slugs_by_id(
    session: Session, model: type[Team] | type[Service], ids: Iterable[int | None]
) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(sa.select(model.id, model.slug).where(model.id.in_(wanted)))
    return {row.id: row.slug for row in rows}


def usernames_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(sa.select(User.id, User.username).where(User.id.in_(wanted)))
    return {row.id: row.username for row in rows}


def team_slugs_of_users(session: Session, user_ids: Iterable[int]) -> dict[int, list[str]]:
    wanted = set(user_ids)
    result: dict[int, list[str]] = {i: [] for i in wanted}
    if not wanted:
        return result
    rows = session.execute(
        sa.select(TeamMember.user_id, Team.slug)
        .join(Team, Team.id == TeamMember.team_id)
        .where(TeamMember.user_id.in_(wanted))
        .order_by(Team.slug)
    )
    for row in rows:
        result[row.user_id].append(row.slug)
    return result


# ---- integrations ------------------------------------------------------------------------


def new_integration_key() -> str:
    """32 lowercase hex characters, the shape of a PagerDuty routing key."""
    return secrets.token_hex(16)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _secret(auth: dict[str, Any], plain: str, hashed: str) -> str:
    """The SHA-256 of a secret given either in plaintext or already hashed."""
    if plain in auth and hashed in auth:
        raise ApiError(422, f"options.auth: give {plain} or {hashed}, not both")
    if plain in auth:
        value = auth[plain]
        if not isinstance(value, str) or not 1 <= len(value) <= 1024:
            raise ApiError(422, f"options.auth.{plain} must be a string of 1 to 1024 characters")
        return _sha256(value)
    value = auth.get(hashed)
    if not isinstance(value, str) or not _SHA256_HEX.match(value):
        raise ApiError(
            422, f"options.auth needs {plain} (or {hashed}: 64 lowercase hexadecimal characters)"
        )
    return value


def hash_auth(auth: Any) -> dict[str, Any]:
    """Request credentials as stored: only SHA-256 digests, never the secrets."""
    if not isinstance(auth, dict):
        raise ApiError(
            422, 'options.auth must be an object like {"type": "bearer", "token": "..."}'
        )
    kind = auth.get("type")
    if kind == "bearer":
        allowed = {"type", "token", "token_sha256"}
        stored = {"type": "bearer", "token_sha256": _secret(auth, "token", "token_sha256")}
    elif kind == "basic":
        allowed = {"type", "username", "password", "password_sha256"}
        username = auth.get("username")
        if not isinstance(username, str) or not 1 <= len(username) <= 200:
            raise ApiError(422, "options.auth.username must be a string of 1 to 200 characters")
        stored = {
            "type": "basic",
            "username": username,
            "password_sha256": _secret(auth, "password", "password_sha256"),
        }
    else:
        raise ApiError(422, 'options.auth.type must be "bearer" or "basic"')
    unknown = sorted(set(auth) - allowed)
    if unknown:
        raise ApiError(422, f"options.auth: unknown field(s) {', '.join(unknown)}")
    return stored


def stored_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    if "auth" not in options:
        return dict(options)
    if kind not in AUTH_CAPABLE_TYPES:
        raise ApiError(
            422, f"options.auth is for {' and '.join(AUTH_CAPABLE_TYPES)} integrations only"
        )
    return {**options, "auth": hash_auth(options["auth"])}


def public_options(options: dict[str, Any]) -> dict[str, Any]:
    """Options as the API shows them: the auth type and username, never a digest."""
    auth = options.get("auth")
    if not isinstance(auth, dict):
        return dict(options)
    shown = {k: v for k, v in auth.items() if k in ("type", "username")}
    return {**options, "auth": shown}


def integration_by_id(session: Session, integration_id: int) -> Integration:
    integration = session.get(Integration, integration_id)
    if integration is None:
        raise ApiError(404, f"no integration with id {integration_id}")
    return integration
