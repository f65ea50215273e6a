"""What every /api/v1 route module shares: a router whose routes need a token and document their
errors in the one error shape, and the path and query parameters the routes take alike."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.security import HTTPBearer

from tocsin.api.fields import SLUG_PATTERN, USERNAME_PATTERN
from tocsin.api.pagination import MAX_ID, page_params
from tocsin.orgs.schemas import error_responses

# Documents 'Authorization: Bearer' in OpenAPI; api.deps does the actual checking.
BEARER = Depends(
    HTTPBearer(auto_error=False, description="An API token: 'Authorization: Bearer tcs_...'")
)


def api_router(
    prefix: str = "", *, tags: list[str | Enum] | None = None, errors: tuple[int, ...] = ()
) -> APIRouter:
    """A router under /api/v1 whose every route needs a token. Its routes may all answer 401
    (no valid token) and 422 (a request that does not fit); ``errors`` adds the statuses
    they may all answer besides, such as 403 or 404."""
    return APIRouter(
        prefix=f"/api/v1{prefix}",
        tags=tags,
        dependencies=[BEARER],
        responses=error_responses(401, *errors, 422),
    )


Pages = Depends(page_params)
SlugPath = Annotated[str, Path(pattern=SLUG_PATTERN)]
UsernamePath = Annotated[str, Path(pattern=USERNAME_PATTERN)]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
