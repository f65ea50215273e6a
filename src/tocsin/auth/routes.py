"""/api/v1 tokens and password login.

Nobody can mint a token for someone else unless they are an admin, and no token is minted with
more than its holder's role: a token is an identity, and timelines name that identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from tocsin.api.deps import Db, DbRead, Reader, get_runtime
from tocsin.api.pagination import Page, PageParams, fetch_page
from tocsin.api.routing import IdPath, Pages, api_router
from tocsin.auth.models import ApiToken
from tocsin.auth.schemas import LoginIn, TokenCreate, TokenCreated, TokenOut
from tocsin.auth.service import ROLE_RANK, Principal, authenticate_password, create_token
from tocsin.errors import ApiError
from tocsin.orgs import service as orgs
from tocsin.orgs.models import User
from tocsin.orgs.schemas import error_responses
from tocsin.runtime import Runtime

LOGIN_TOKEN_LIFETIME = timedelta(days=7)
_LOGIN_FAILED = "invalid username or password"

router = api_router(tags=["tokens"])
public = APIRouter(prefix="/api/v1", tags=["tokens"])
# Commit before the response is sent: the token shown must already work.


def tokens_out(session: Session, rows: Sequence[ApiToken]) -> list[TokenOut]:
    names = orgs.usernames_by_id(session, [r.user_id for r in rows])
    return [
        TokenOut(
            id=r.id,
            name=r.name,
            role=r.role,
            user=names.get(r.user_id) if r.user_id is not None else None,
            prefix=r.prefix,
            created_at=r.created_at,
            expires_at=r.expires_at,
            last_used_at=r.last_used_at,
            revoked_at=r.revoked_at,
        )
        for r in rows
    ]


def _token_owner(session: Session, principal: Principal, username: str | None) -> User | None:
    """Whose token this will be; refuses anything but the caller's own unless they are admin."""
    if username is None:
        if principal.user_id is None:
            if not principal.has_role("admin"):
                raise ApiError(403, "a service token cannot mint tokens")
            return None  # an admin service token (e.g. bootstrap) mints a service token
        owner = session.get(User, principal.user_id)
        if owner is None:
            raise ApiError(401, "your token's user no longer exists")
        return owner
    owner = orgs.user_by_username(session, username)
    if owner.id != principal.user_id and not principal.has_role("admin"):
        raise ApiError(403, "only an admin may mint a token for another user")
    return owner


@router.post(
    "/tokens", response_model=TokenCreated, status_code=201, responses=error_responses(403, 404)
)
def mint_token(
    body: TokenCreate,
    principal: Principal = Reader,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    if ROLE_RANK[body.role] > ROLE_RANK[principal.role]:
        raise ApiError(
            403, f"cannot mint a {body.role} token: your token has the {principal.role} role"
        )
    owner = _token_owner(session, principal, body.user)
    if owner is not None:
        if not owner.active:
            raise ApiError(409, f"{owner.username} is deactivated")
        if ROLE_RANK[body.role] > ROLE_RANK[owner.role]:
            raise ApiError(
                422, f"{owner.username} has the {owner.role} role; a {body.role} token is too high"
            )
    now = runtime.clock.now()
    expires = now + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    row, token = create_token(
        session,
        name=body.name,
        role=body.role,
        user_id=owner.id if owner else None,
        now=now,
        expires_at=expires,
    )
    [shown] = tokens_out(session, [row])
    return TokenCreated(**shown.model_dump(), token=token)


def _visible_tokens(principal: Principal) -> sa.Select[ApiToken]:
    stmt = sa.select(ApiToken)
    if principal.has_role("admin"):
        return stmt
    if principal.user_id is not None:
        return stmt.where(ApiToken.user_id == principal.user_id)
    return stmt.where(ApiToken.id == principal.token_id)


@router.get("/tokens", response_model=Page[TokenOut])
def list_tokens(
    principal: Principal = Reader,
    session: Session = DbRead,
    page: PageParams = Pages,
) -> Any:
    """Your own tokens; an admin sees everyone's. Never the secrets themselves."""
    rows, cursor = fetch_page(
        session, _visible_tokens(principal), [ApiToken.id], page, descending=False
    )
    return Page[TokenOut](items=tokens_out(session, rows), next_cursor=cursor)


@router.delete("/tokens/{token_id}", status_code=204, responses=error_responses(404))
def revoke_token(
    token_id: IdPath,
    principal: Principal = Reader,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Revoke one of your tokens (an admin: anyone's). Revoking twice is harmless."""
    row = session.scalars(_visible_tokens(principal).where(ApiToken.id == token_id)).one_or_none()
    if row is None:  # someone else's token looks exactly like a missing one
        raise ApiError(404, f"no token with id {token_id}")
    if row.revoked_at is None:
        row.revoked_at = runtime.clock.now()
    session.flush()
    return Response(status_code=204)


@public.post(
    "/auth/login",
    response_model=TokenCreated,
    status_code=201,
    responses=error_responses(401, 422),
)
def login(body: LoginIn, session: Session = Db, runtime: Runtime = Depends(get_runtime)) -> Any:
    """Exchange a username and password for a token with the user's role (valid 7 days)."""
    user = authenticate_password(session, body.username, body.password)
    if user is None:
        raise ApiError(401, _LOGIN_FAILED)
    now = runtime.clock.now()
    row, token = create_token(
        session,
        name="login",
        role=user.role,
        user_id=user.id,
        now=now,
        expires_at=now + LOGIN_TOKEN_LIFETIME,
    )
    [shown] = tokens_out(session, [row])
    return TokenCreated(**shown.model_dump(), token=token)
