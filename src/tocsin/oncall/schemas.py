"""Request and response bodies for schedules, overrides, escalation policies, who is on call,
coverage gaps, and the incident actions that page people (escalate, mobilise, page a team)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from tocsin.api.fields import no_nul
from tocsin.incidents.schemas import IncidentOut
from tocsin.oncall.definitions import (
    MAX_LAYERS,
    LayerIn,
    Rotation,
    TimeZoneName,
    check_layers,
)
from tocsin.orgs.schemas import Description, InputModel, Name, PatchModel, Slug, Urgency, Username

MAX_LEVELS = 20
MAX_TARGETS = 50
MAX_REPEAT = 9
MAX_DELAY_MINUTES = 24 * 60
MAX_MOBILISED = 50

Layers = Annotated[list[LayerIn], Field(max_length=MAX_LAYERS)]
Message = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=1000),
    AfterValidator(no_nul),
]


class UserBrief(BaseModel):
    username: str
    name: str


# ---- schedules -----------------------------------------------------------------------------


class ScheduleCreate(InputModel):
    slug: Slug
    name: Name
    description: Description = ""
    time_zone: TimeZoneName
    team: Slug | None = Field(None, description="Slug of the owning team.")
    layers: Layers = Field(
        default_factory=list, description="Bottom first; a later layer covers earlier ones."
    )

    @model_validator(mode="after")
    def _layers_fit(self) -> Self:
        check_layers(self.time_zone, self.layers)
        return self


class ScheduleUpdate(PatchModel):
    nullable: ClassVar[frozenset[str]] = frozenset({"team"})

    slug: Slug | None = None
    name: Name | None = None
    description: Description | None = None
    time_zone: TimeZoneName | None = None
    team: Slug | None = None
    layers: Layers | None = Field(None, description="Replaces every layer.")


class LayerOut(BaseModel):
    position: int = Field(description="0 is the bottom layer.")
    name: str
    members: list[str] = Field(description="Usernames in rotation order.")
    start: str
    rotation: Rotation
    restrictions: list[dict[str, Any]]
    end: str | None


class ScheduleOut(BaseModel):
    id: int
    slug: str
    name: str
    description: str
    time_zone: str
    team: str | None
    layers: list[LayerOut]
    created_at: datetime


class OverrideCreate(InputModel):
    user: Username | None = Field(
        None, description="Who takes over; yourself when absent. Only admins name others."
    )
    start: datetime
    end: datetime


class OverrideOut(BaseModel):
    id: int
    schedule: str
    user: str | None
    start: datetime
    end: datetime
    created_at: datetime
    created_by: str


class OnCallNow(BaseModel):
    schedule: str
    name: str
    time_zone: str
    at: datetime
    user: UserBrief | None = Field(description="null: nobody is on call (a gap).")


class ShiftOut(BaseModel):
    user: UserBrief | None = Field(description="null when the user no longer exists.")
    start: datetime
    end: datetime
    source: str = Field(description='The layer\'s name, or "override".')


class ShiftsOut(BaseModel):
    schedule: str
    time_zone: str
    start: datetime
    end: datetime
    shifts: list[ShiftOut]


# ---- escalation policies -------------------------------------------------------------------


class UserTarget(InputModel):
    type: Literal["user"]
    username: Username


class ScheduleTarget(InputModel):
    type: Literal["schedule"]
    slug: Slug


class TeamTarget(InputModel):
    type: Literal["team"]
    slug: Slug


Target = Annotated[UserTarget | ScheduleTarget | TeamTarget, Field(discriminator="type")]
Targets = Annotated[list[Target], Field(min_length=1, max_length=MAX_TARGETS)]


class LevelIn(InputModel):
    delay_minutes: Annotated[int, Field(ge=1, le=MAX_DELAY_MINUTES)] = Field(
        30, description="Minutes from this level's pages to the next level (or the next loop)."
    )
    targets: Targets


Levels = Annotated[list[LevelIn], Field(min_length=1, max_length=MAX_LEVELS)]
Repeat = Annotated[int, Field(ge=0, le=MAX_REPEAT)]


class PolicyCreate(InputModel):
    slug: Slug
    name: Name
    description: Description = ""
    team: Slug | None = None
    repeat: Repeat = Field(0, description="How many more times the policy runs after its end.")
    levels: Levels


class PolicyUpdate(PatchModel):
    nullable: ClassVar[frozenset[str]] = frozenset({"team"})

    slug: Slug | None = Field(None, description="Services using the policy follow the rename.")
    name: Name | None = None
    description: Description | None = None
    team: Slug | None = None
    repeat: Repeat | None = None
    levels: Levels | None = Field(None, description="Replaces every level.")


class TargetOut(BaseModel):
    type: str
    username: str | None = None
    slug: str | None = None


class LevelOut(BaseModel):
    level: int = Field(description="1 is the first level paged.")
    delay_minutes: int
    targets: list[TargetOut]


class PolicyOut(BaseModel):
    id: int
    slug: str
    name: str
    description: str
    team: str | None
    repeat: int
    levels: list[LevelOut]
    services: list[str] = Field(description="Slugs of the services that use this policy.")
    created_at: datetime


# ---- who is on call ------------------------------------------------------------------------


class LevelOnCallOut(BaseModel):
    level: int = Field(description="1 is the first level paged.")
    delay_minutes: int
    users: list[UserBrief] = Field(description="Everyone this level would page now.")


class PolicyOnCall(BaseModel):
    policy: str
    levels: list[LevelOnCallOut]


class PolicyOnCallOut(PolicyOnCall):
    at: datetime


class ServiceOnCallOut(BaseModel):
    service: str
    policy: str | None
    at: datetime
    levels: list[LevelOnCallOut]


class TeamOnCallOut(BaseModel):
    team: str
    at: datetime
    policies: list[PolicyOnCall]


class Period(BaseModel):
    start: datetime
    end: datetime


class ServiceGaps(BaseModel):
    service: str
    policy: str | None
    gaps: list[Period]


class GapsOut(BaseModel):
    start: datetime
    end: datetime
    services: list[ServiceGaps] = Field(
        description="Every high-urgency service, with the periods in which it reaches nobody."
    )


# ---- paging people -------------------------------------------------------------------------


class EscalateIn(InputModel):
    level: Annotated[int, Field(ge=1, le=MAX_LEVELS)] | None = Field(
        None, description="The level to page (1 is the first); the next level when absent."
    )


class MobiliseIn(InputModel):
    users: Annotated[list[Username], Field(max_length=MAX_MOBILISED)] = Field(default_factory=list)
    schedules: Annotated[list[Slug], Field(max_length=MAX_MOBILISED)] = Field(
        default_factory=list, description="Pages whoever is on call in each."
    )
    teams: Annotated[list[Slug], Field(max_length=MAX_MOBILISED)] = Field(
        default_factory=list, description="Pages every member of each."
    )
    message: Message | None = None

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if not (self.users or self.schedules or self.teams):
            raise ValueError("name at least one of users, schedules or teams")
        return self


class MobiliseOut(BaseModel):
    incident: int
    paged: list[str] = Field(description="Usernames paged by this request.")


class PageIn(InputModel):
    team: Slug
    message: Message
    urgency: Urgency = "high"


class EscalationOut(IncidentOut):
    escalation_policy: str | None
    escalation_level: int = Field(description="The level last paged (1 is the first).")
    escalation_loop: int = Field(description="0 in the first run through the policy.")
