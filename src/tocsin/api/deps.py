"""Request dependencies: the node's runtime, a database session and the caller's identity."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from tocsin.auth.service import Principal, authenticate_token
from tocsin.errors import ApiError
from tocsin.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_session(runtime: Runtime = Depends(get_runtime)) -> Iterator[Session]:
    """A session in one transaction: committed when the route returns, rolled back on error."""
    with runtime.factory() as session, session.begin():
        yield session


def get_read_session(runtime: Runtime = Depends(get_runtime)) -> Iterator[Session]:
    """A session for routes that only read; it never waits for SQLite's writer."""
    with runtime.read_factory() as session:
        yield session


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "missing credentials: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def current_principal(request: Request, runtime: Runtime = Depends(get_runtime)) -> Principal:
    token = _bearer(request)
    with runtime.read_factory() as session:
        principal = authenticate_token(
            session,
            token,
            now=runtime.clock.now(),
            bootstrap_token=runtime.settings.bootstrap_token,
        )
    if principal is None:
        raise ApiError(
            401, "invalid, expired or revoked token", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


def require(role: str) -> Callable[..., Principal]:
    """Dependency factory: the caller must hold at least ``role``."""

    def check(principal: Principal = Depends(current_principal)) -> Principal:
        if not principal.has_role(role):
            raise ApiError(
                403, f"this action needs the {role} role; your token has {principal.role}"
            )
        return principal

    return check


# A transaction that commits before the response is sent (the default scope would commit
# after it, so a failed commit could follow a 2xx).
Db = Depends(get_session, scope="function")
DbRead = Depends(get_read_session, scope="function")

# Reads need any valid token; writes need responder; administration needs admin.
Reader = Depends(require("observer"))
Responder = Depends(require("responder"))
Admin = Depends(require("admin"))
