"""The configuration files' schema: what a YAML file in a configuration directory may hold.

Every model forbids unknown keys so that a typo is an error, not a silently ignored setting.
Secrets never appear in these files: Alertmanager credentials and contact-method secrets are
named by environment variable. A new top-level key is one field on ``ConfigFile`` plus one
applier (see ``config/sections``).
"""

from __future__ import annotations

import zoneinfo
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from tocsin.notify.contacts import SECRET_OPTIONS, ContactKind, address_is_secret
from tocsin.oncall.definitions import LayerIn, SupportHours

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
INTEGRATION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
KEY_PATTERN = r"^[a-z0-9]{32}$"
ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
CONTACT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
# The shapes schedules share with the REST API (tocsin.oncall.definitions).
API_USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"

# Human wording for the patterns above, used in validation messages.
PATTERN_HINTS = {
    SLUG_PATTERN: "lowercase letters, digits and dashes, starting with a letter or digit",
    USERNAME_PATTERN: (
        "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"
    ),
    INTEGRATION_NAME_PATTERN: "letters, digits, '.', '_' and '-', starting with a letter or digit",
    KEY_PATTERN: "exactly 32 lowercase letters and digits",
    ENV_PATTERN: "an environment variable name (letters, digits and '_')",
    EMAIL_PATTERN: "an email address",
    CONTACT_NAME_PATTERN: "letters, digits, '.', '_' and '-', starting with a letter or digit",
    API_USERNAME_PATTERN: (
        "a username: lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"
    ),
}

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=64)]
IntegrationName = Annotated[str, StringConstraints(pattern=INTEGRATION_NAME_PATTERN, max_length=64)]
Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN, max_length=64)]
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
IntegrationKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
EnvName = Annotated[str, StringConstraints(pattern=ENV_PATTERN, max_length=128)]
Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=320)]
FieldPath = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Seconds = Annotated[int, Field(ge=1, le=31_536_000)]

Role = Literal["admin", "responder", "observer"]
Urgency = Literal["high", "low"]
Severity = Literal["critical", "error", "warning", "info"]
EventAction = Literal["trigger", "acknowledge", "resolve"]


def _known_time_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from None
    return name


TimeZone = Annotated[str, AfterValidator(_known_time_zone)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- teams and users ---------------------------------------------------------------------


class TeamSpec(Strict):
    slug: Slug = Field(description="Stable identifier; services refer to the team by it.")
    name: DisplayName
    description: str = ""
    members: list[Username] = Field(
        default_factory=list, description="Usernames of the team's members."
    )


ContactName = Annotated[str, StringConstraints(pattern=CONTACT_NAME_PATTERN, max_length=64)]


class ContactMethodSpec(Strict):
    """How to reach a user. A secret address (an Apprise URL for sms, voice or push, a Slack
    webhook URL) and secret options (signing secrets, tokens, headers) are named by
    environment variable, never written here."""

    name: ContactName = Field(description="Unique for the user; notification rules name it.")
    kind: ContactKind
    address: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = Field(
        None, description="Email address, webhook URL, Slack channel, Matrix room id."
    )
    address_env: EnvName | None = Field(
        None, description="Environment variable holding the address, when it is a secret."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Channel options that are not secret."
    )
    options_env: dict[str, EnvName] = Field(
        default_factory=dict,
        description="Secret options: option name -> environment variable holding its value "
        "(JSON for a list or mapping, such as headers).",
    )
    enabled: bool = True

    @model_validator(mode="after")
    def _secrets_by_name(self) -> ContactMethodSpec:
        if (self.address is None) == (self.address_env is None):
            raise ValueError("give exactly one of 'address' and 'address_env'")
        if (
            self.address is not None
            and self.kind != "webhook"
            and address_is_secret(self.kind, self.address)
        ):
            raise ValueError(
                f"a {self.kind} address is a credential: configuration never holds secrets; "
                "put it in an environment variable and name that variable with 'address_env'"
            )
        secret = sorted(SECRET_OPTIONS & set(self.options))
        if secret:
            raise ValueError(
                f"option {', '.join(secret)} is secret: configuration never holds secrets; put "
                "it in an environment variable and name that variable under 'options_env'"
            )
        both = sorted(set(self.options) & set(self.options_env))
        if both:
            raise ValueError(f"option {', '.join(both)} is under both 'options' and 'options_env'")
        return self


class NotificationRuleSpec(Strict):
    urgency: Urgency
    delay_minutes: Annotated[int, Field(ge=0, le=1440)] = Field(
        0, description="Minutes after the page starts."
    )
    contact_method: ContactName = Field(description="Name of one of the user's contact methods.")


class UserSpec(Strict):
    username: Username = Field(description="Stable identifier; teams list members by it.")
    name: DisplayName
    email: Email
    role: Role = Field("responder", description="admin, responder or observer.")
    time_zone: TimeZone = Field("UTC", description="IANA time zone, e.g. Europe/Berlin.")
    handoff_notice_minutes: Annotated[int, Field(ge=1, le=10_080)] | None = Field(
        60, description="Minutes before a shift starts to tell the user; null: never."
    )
    contact_methods: list[ContactMethodSpec] | None = Field(
        None,
        description="Absent: contact methods are managed elsewhere (the API). Present: these "
        "are created and updated, and with --prune the user's others are deleted.",
    )
    notification_rules: list[NotificationRuleSpec] | None = Field(
        None,
        description="Absent: managed elsewhere. Present: the user's complete set of rules.",
    )


# --- services ----------------------------------------------------------------------------


class NoGrouping(Strict):
    type: Literal["none"]


class TimeWindowGrouping(Strict):
    type: Literal["time_window"]
    window_seconds: Seconds = Field(
        300, description="Join the newest open incident younger than this."
    )


class FieldsGrouping(Strict):
    type: Literal["fields"]
    fields: list[FieldPath] = Field(
        min_length=1, description="Dotted paths into the event; equal values share an incident."
    )
    window_seconds: Seconds | None = Field(
        None, description="Only join incidents younger than this; no limit when absent."
    )


Grouping = Annotated[NoGrouping | TimeWindowGrouping | FieldsGrouping, Field(discriminator="type")]


def _reject_plaintext(data: Any, secret_field: str, env_field: str) -> Any:
    """Names the right way when someone writes a secret into the file."""
    if isinstance(data, dict) and secret_field in data:
        raise ValueError(
            f"'{secret_field}' is not allowed: configuration never holds secrets; put it in "
            f"an environment variable and name that variable with '{env_field}'"
        )
    return data


class BearerAuth(Strict):
    type: Literal["bearer"]
    token_env: EnvName = Field(description="Environment variable holding the bearer token.")

    @model_validator(mode="before")
    @classmethod
    def _no_plaintext_token(cls, data: Any) -> Any:
        return _reject_plaintext(data, "token", "token_env")


class BasicAuth(Strict):
    type: Literal["basic"]
    username: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    password_env: EnvName = Field(description="Environment variable holding the password.")

    @model_validator(mode="before")
    @classmethod
    def _no_plaintext_password(cls, data: Any) -> Any:
        return _reject_plaintext(data, "password", "password_env")


# Credentials a sender must present besides the integration key (Alertmanager, webhooks).
RequestAuth = Annotated[BearerAuth | BasicAuth, Field(discriminator="type")]


class PagerDutyOptions(Strict):
    """The Events API v2 needs no options: the routing key is the whole credential."""


class AlertmanagerOptions(Strict):
    auth: RequestAuth | None = Field(
        None, description="Credentials Alertmanager must send in addition to the key."
    )
    default_severity: Severity | None = Field(
        None, description="For alerts without a recognised 'severity' label (else critical)."
    )


class WebhookMapping(Strict):
    """Where each event field is in a JSON body: dotted paths, a number indexes a list.
    An unset path defaults to the field's own name ("summary", "severity"...)."""

    summary: FieldPath | None = None
    severity: FieldPath | None = None
    dedup_key: FieldPath | None = None
    action: FieldPath | None = None
    source: FieldPath | None = None
    severity_map: dict[str, Severity] = Field(
        default_factory=dict, description="Body value -> critical/error/warning/info."
    )
    action_map: dict[str, EventAction] = Field(
        default_factory=dict, description="Body value -> trigger/acknowledge/resolve."
    )
    default_severity: Severity | None = Field(None, description="When no value maps (critical).")
    default_action: EventAction | None = Field(None, description="When the body has no action.")


class WebhookOptions(Strict):
    mapping: WebhookMapping = Field(default_factory=WebhookMapping)
    auth: RequestAuth | None = Field(
        None, description="Credentials the sender must send in addition to the key."
    )


class _IntegrationBase(Strict):
    name: IntegrationName = Field(description="Unique within the service.")
    key: IntegrationKey | None = Field(
        None, description="The routing key (32 of [a-z0-9]); generated at apply when absent."
    )


class PagerDutyIntegration(_IntegrationBase):
    type: Literal["pagerduty"]
    options: PagerDutyOptions = Field(default_factory=PagerDutyOptions)


class AlertmanagerIntegration(_IntegrationBase):
    type: Literal["alertmanager"]
    options: AlertmanagerOptions = Field(default_factory=AlertmanagerOptions)


class WebhookIntegration(_IntegrationBase):
    type: Literal["webhook"]
    options: WebhookOptions = Field(default_factory=WebhookOptions)


IntegrationSpec = Annotated[
    PagerDutyIntegration | AlertmanagerIntegration | WebhookIntegration,
    Field(discriminator="type"),
]


class ServiceSpec(Strict):
    slug: Slug = Field(description="Stable identifier of the service.")
    name: DisplayName
    description: str = ""
    team: Slug | None = Field(None, description="Slug of the owning team.")
    escalation_policy: Slug | None = Field(
        None, description="Slug of the escalation policy (defined under escalation_policies)."
    )
    urgency: Urgency = "high"
    auto_resolve_seconds: Seconds | None = Field(
        None, description="Resolve an untouched incident after this long; never when absent."
    )
    ack_timeout_seconds: Seconds | None = Field(
        None, description="Re-trigger an acknowledged, still open incident after this long."
    )
    grouping: Grouping = Field(default_factory=lambda: NoGrouping(type="none"))
    support_hours: SupportHours | None = Field(
        None, description="When low-urgency incidents may page; absent: at any time."
    )
    integrations: list[IntegrationSpec] = Field(default_factory=list)


# --- schedules and escalation policies ---------------------------------------------------


class ScheduleSpec(Strict):
    """Layers of rotations; overrides are operational and live in the API, not here."""

    slug: Slug = Field(description="Stable identifier; escalation policies target it.")
    name: DisplayName
    description: str = ""
    time_zone: TimeZone = Field(description="The zone the layers' times are read in.")
    team: Slug | None = Field(None, description="Slug of the owning team.")
    layers: list[LayerIn] = Field(
        default_factory=list, description="Bottom first; a later layer covers earlier ones."
    )


class TargetSpec(Strict):
    """Exactly one of user, schedule or team."""

    user: Username | None = None
    schedule: Slug | None = None
    team: Slug | None = None

    @model_validator(mode="after")
    def _one(self) -> TargetSpec:
        if sum(v is not None for v in (self.user, self.schedule, self.team)) != 1:
            raise ValueError("a target is exactly one of 'user', 'schedule' or 'team'")
        return self

    def ref(self) -> tuple[str, str]:
        for kind in ("user", "schedule", "team"):
            value = getattr(self, kind)
            if value is not None:
                return kind, value
        raise AssertionError("validated to hold one target")


class LevelSpec(Strict):
    delay_minutes: Annotated[int, Field(ge=1, le=1440)] = Field(
        30, description="Minutes from this level's pages to the next level (or loop)."
    )
    targets: list[TargetSpec] = Field(min_length=1, max_length=50)


class EscalationPolicySpec(Strict):
    slug: Slug = Field(description="Stable identifier; services name their policy by it.")
    name: DisplayName
    description: str = ""
    team: Slug | None = Field(None, description="Slug of the owning team.")
    repeat: Annotated[int, Field(ge=0, le=9)] = Field(
        0, description="How many more times the whole policy runs after its last level."
    )
    levels: list[LevelSpec] = Field(min_length=1, max_length=20)


# --- files -------------------------------------------------------------------------------


class ConfigFile(Strict):
    """One YAML file of a configuration directory; every key is optional."""

    model_config = ConfigDict(
        extra="forbid",
        title="Tocsin configuration file",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    teams: list[TeamSpec] = Field(default_factory=list)
    users: list[UserSpec] = Field(default_factory=list)
    services: list[ServiceSpec] = Field(default_factory=list)
    schedules: list[ScheduleSpec] = Field(default_factory=list)
    escalation_policies: list[EscalationPolicySpec] = Field(default_factory=list)


class OrgConfig(ConfigFile):
    """Every file of a directory merged: the desired state that ``apply`` converges to."""


SECTIONS = tuple(ConfigFile.model_fields)
