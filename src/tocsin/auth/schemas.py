"""Request and response bodies for API tokens and password login."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from tocsin.api.fields import no_nul
from tocsin.orgs.schemas import InputModel, Name, Role, Username


class TokenCreate(InputModel):
    name: Name = Field(description="What the token is for, e.g. 'ci-deploys'.")
    role: Role = Field(description="No higher than your own role.")
    user: Username | None = Field(
        None, description="Whose token it is; only admins may name another user."
    )
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] | None = Field(
        None, description="Omit for a token that does not expire."
    )


class TokenOut(BaseModel):
    id: int
    name: str
    role: str
    user: str | None = Field(description="The owner's username; null for a service token.")
    prefix: str = Field(description="The token's first characters, to recognise it.")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret itself; shown only in this response.")


class LoginIn(InputModel):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(no_nul)]
    password: Annotated[
        str, StringConstraints(min_length=1, max_length=1024), AfterValidator(no_nul)
    ]
