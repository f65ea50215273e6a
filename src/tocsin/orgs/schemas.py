"""Request and response bodies for teams, users, services and integrations, and the input
building blocks every API body shares (strict shapes, bounded strings, no NUL characters)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from tocsin.api.fields import SLUG_PATTERN, USERNAME_PATTERN, no_nul
from tocsin.api.pagination import MAX_ID
from tocsin.oncall.definitions import SupportHours

INTEGRATION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Stored JSON (options, grouping) stays small and within what both databases can hold.
MAX_JSON_DEPTH = 16
MAX_JSON_INT = 2**63 - 1


def storable_json(value: Any, depth: int = 0) -> Any:
    """Refuse JSON the databases cannot store faithfully: NUL in strings, integers beyond 64
    bits, NaN and Infinity."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"is nested more than {MAX_JSON_DEPTH} levels deep")
    if isinstance(value, str):
        no_nul(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("holds NaN or Infinity, which JSON cannot represent")
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        if abs(value) > MAX_JSON_INT:
            raise ValueError("holds an integer beyond 64 bits")
    elif isinstance(value, list):
        for item in value:
            storable_json(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            no_nul(key)
            storable_json(item, depth + 1)
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("is not an email address")
    return value.lower()


def _time_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like Europe/Paris"
        ) from exc
    return value


Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(no_nul),
]
Description = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(no_nul)]
Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(_email)]
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_time_zone)]
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024), AfterValidator(no_nul)]
JsonObject = Annotated[dict[str, Any], AfterValidator(storable_json)]
Role = Literal["observer", "responder", "admin"]
Urgency = Literal["high", "low"]
Seconds = Annotated[int, Field(ge=1, le=365 * 86400)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class InputModel(BaseModel):
    """Request bodies: unknown fields are an error, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class PatchModel(InputModel):
    """PATCH bodies: only the fields sent change; null is only accepted where it means 'unset'."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}

    @model_validator(mode="after")
    def _refuse_null(self) -> Self:
        for name in sorted(self.model_fields_set):
            if getattr(self, name) is None and name not in self.nullable:
                raise ValueError(f"{name} cannot be null")
        return self


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[Any]


class ErrorOut(BaseModel):
    """Every error, whatever the route: {"error": {"code", "message", "details"}}."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of a route's error statuses, all in the one error shape."""
    return {status: {"model": ErrorOut} for status in statuses}


# ---- teams -------------------------------------------------------------------------------


class TeamCreate(InputModel):
    slug: Slug
    name: Name
    description: Description = ""


class TeamUpdate(PatchModel):
    slug: Slug | None = None
    name: Name | None = None
    description: Description | None = None


class MemberOut(BaseModel):
    username: str
    name: str
    role: str


class TeamOut(BaseModel):
    id: int
    slug: str
    name: str
    description: str
    created_at: datetime
    members: list[MemberOut]


class MemberAdd(InputModel):
    user: Username
    role: Literal["member", "manager"] = "member"


# ---- users -------------------------------------------------------------------------------


class UserCreate(InputModel):
    username: Username
    name: Name
    email: Email
    role: Role = "responder"
    time_zone: TimeZone = "UTC"
    password: Password | None = None


class UserUpdate(PatchModel):
    nullable = frozenset({"password"})

    # Anyone may change these on their own user.
    name: Name | None = None
    email: Email | None = None
    time_zone: TimeZone | None = None
    password: Password | None = Field(None, description="null removes the password (admin only)")
    current_password: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        None, description="Needed to change your own password when you have one."
    )
    # Only admins may change these.
    role: Role | None = None
    active: bool | None = None


class UserOut(BaseModel):
    id: int
    username: str
    name: str
    email: str
    role: str
    time_zone: str
    active: bool
    has_password: bool
    teams: list[str]
    created_at: datetime


class MeOut(BaseModel):
    actor: str = Field(description="How your actions appear on incident timelines.")
    role: str = Field(description="The role your token grants now.")
    token_id: int | None
    user: UserOut | None = Field(description="null for the bootstrap token and service tokens.")


# ---- services ----------------------------------------------------------------------------


class GroupingNone(InputModel):
    type: Literal["none"]


class GroupingTimeWindow(InputModel):
    type: Literal["time_window"]
    window_seconds: Annotated[int, Field(ge=1, le=7 * 86400)]


class GroupingFields(InputModel):
    type: Literal["fields"]
    fields: Annotated[
        list[
            Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(no_nul)]
        ],
        Field(min_length=1, max_length=20),
    ]
    window_seconds: Annotated[int, Field(ge=1, le=30 * 86400)] | None = None


Grouping = Annotated[
    GroupingNone | GroupingTimeWindow | GroupingFields, Field(discriminator="type")
]


class GroupingOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = "none"
    window_seconds: int | None = None
    fields: list[str] | None = None


class ServiceCreate(InputModel):
    slug: Slug
    name: Name
    description: Description = ""
    team: Slug | None = Field(None, description="Slug of the owning team.")
    escalation_policy: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = (
        Field(None, description="Slug of an existing escalation policy.")
    )
    urgency: Urgency = "high"
    auto_resolve_seconds: Seconds | None = None
    ack_timeout_seconds: Seconds | None = None
    grouping: Grouping = Field(default_factory=lambda: GroupingNone(type="none"))
    support_hours: SupportHours | None = Field(
        None, description="When low-urgency incidents may page; null: at any time."
    )


class ServiceUpdate(PatchModel):
    nullable = frozenset(
        {
            "team",
            "escalation_policy",
            "auto_resolve_seconds",
            "ack_timeout_seconds",
            "support_hours",
        }
    )

    slug: Slug | None = None
    name: Name | None = None
    description: Description | None = None
    team: Slug | None = None
    escalation_policy: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    urgency: Urgency | None = None
    auto_resolve_seconds: Seconds | None = None
    ack_timeout_seconds: Seconds | None = None
    grouping: Grouping | None = None
    support_hours: SupportHours | None = None


class ServiceOut(BaseModel):
    id: int
    slug: str
    name: str
    description: str
    team: str | None
    escalation_policy: str | None
    urgency: str
    auto_resolve_seconds: int | None
    ack_timeout_seconds: int | None
    grouping: GroupingOut
    support_hours: SupportHours | None
    internal: bool
    created_at: datetime


# ---- integrations ------------------------------------------------------------------------


class IntegrationCreate(InputModel):
    name: Annotated[str, StringConstraints(pattern=INTEGRATION_NAME_PATTERN)]
    type: Literal["pagerduty", "alertmanager", "webhook"]
    options: JsonObject = Field(
        default_factory=dict,
        description=(
            "Type-specific settings (a webhook's mapping, ...). Alertmanager and webhook "
            "integrations take auth: "
            '{"type": "bearer", "token": "..."} or '
            '{"type": "basic", "username": "...", "password": "..."}; '
            "secrets are stored only as SHA-256 and never returned."
        ),
    )


class IntegrationOut(BaseModel):
    id: int
    service: str
    name: str
    type: str
    key: str | None = Field(
        description="The routing key events are sent with; shown to admins only."
    )
    key_prefix: str
    options: dict[str, Any]
    created_at: datetime
