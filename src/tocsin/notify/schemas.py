"""Request and response bodies for contact methods, notification rules and test
notifications. Addresses and options go in and never come out: responses show `display`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from tocsin.api.fields import no_nul
from tocsin.notify.contacts import ContactKind
from tocsin.orgs.schemas import InputModel, JsonObject, PatchModel, Urgency

CONTACT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_RULE_DELAY = 24 * 60

ContactName = Annotated[str, StringConstraints(pattern=CONTACT_NAME_PATTERN)]
Address = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4096),
    AfterValidator(no_nul),
]
Options = Annotated[
    JsonObject,
    Field(
        description=(
            "Channel options, e.g. a webhook's signing `secret` or `headers`, a Slack "
            "`bot_token`; write-only."
        )
    ),
]


class ContactMethodCreate(InputModel):
    name: ContactName = Field(description="Unique for the user; notification rules name it.")
    kind: ContactKind
    address: Address = Field(
        description="Email address, webhook URL, Slack channel or webhook URL, Matrix room id, "
        "or an Apprise URL for sms, voice, push and apprise; write-only."
    )
    options: Options = Field(default_factory=dict)
    enabled: bool = True


class ContactMethodUpdate(PatchModel):
    name: ContactName | None = None
    address: Address | None = Field(None, description="A new address must be verified again.")
    options: Options | None = Field(None, description="Replaces every option.")
    enabled: bool | None = None


class ContactMethodOut(BaseModel):
    id: int
    user: str
    name: str
    kind: str
    display: str = Field(description="The address with anything secret left out.")
    options: list[str] = Field(description="Names of the options set; values are not shown.")
    enabled: bool
    verified_at: datetime | None = Field(
        description="When a test notification to this address was last sent successfully."
    )
    created_at: datetime


class NotificationRuleCreate(InputModel):
    urgency: Urgency
    delay_minutes: Annotated[int, Field(ge=0, le=MAX_RULE_DELAY)] = Field(
        0, description="Minutes after the page starts."
    )
    contact_method: ContactName = Field(description="Name of one of the user's contact methods.")


class NotificationRuleOut(BaseModel):
    id: int
    user: str
    urgency: str
    delay_minutes: int
    contact_method: str


class NotificationSettings(BaseModel):
    handoff_notice_minutes: int | None = Field(
        description="Minutes before a shift starts to tell the user; null: never."
    )


class NotificationSettingsUpdate(PatchModel):
    nullable = frozenset({"handoff_notice_minutes"})

    handoff_notice_minutes: Annotated[int, Field(ge=1, le=10_080)] | None = None


class TestNotificationOut(BaseModel):
    id: int = Field(description="The notification's id in the outbox.")
    contact_method: str
    state: str
    due_at: datetime
