"""Imports every model so that the metadata (and Alembic) sees all tables."""

from tocsin.alerts.models import Alert, ChangeEvent, InboundEvent
from tocsin.auth.models import ApiToken
from tocsin.db.base import Base
from tocsin.engine.models import Effect, Job
from tocsin.incidents.models import Incident, TimelineEntry
from tocsin.notify.models import ContactMethod, Notification, NotificationRule
from tocsin.oncall.models import (
    EscalationLevel,
    EscalationPolicy,
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
)
from tocsin.orgs.models import Integration, Service, Team, TeamMember, User

__all__ = [
    "Alert",
    "ApiToken",
    "Base",
    "ChangeEvent",
    "ContactMethod",
    "Effect",
    "EscalationLevel",
    "EscalationPolicy",
    "InboundEvent",
    "Incident",
    "Integration",
    "Job",
    "Notification",
    "NotificationRule",
    "Schedule",
    "ScheduleLayer",
    "ScheduleOverride",
    "Service",
    "Team",
    "TeamMember",
    "TimelineEntry",
    "User",
]
