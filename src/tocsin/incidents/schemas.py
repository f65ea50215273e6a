"""Request and response bodies for incidents, their actions and their timelines."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from tocsin.api.fields import no_nul
from tocsin.orgs.schemas import InputModel, Username


class IncidentOut(BaseModel):
    id: int
    service: str = Field(description="The service's slug.")
    title: str
    status: str
    urgency: str
    priority: str | None
    severity: str
    assignee: str | None = Field(description="The assignee's username.")
    alert_count: int
    created_at: datetime
    updated_at: datetime
    last_alert_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None


class AlertBrief(BaseModel):
    id: int
    status: str
    summary: str
    severity: str
    source: str
    dedup_key: str
    event_count: int
    created_at: datetime
    last_event_at: datetime


class AlertsSummary(BaseModel):
    total: int
    by_status: dict[str, int] = Field(description="Alert counts per status.")
    recent: list[AlertBrief] = Field(description="The newest alerts (at most 20).")


class IncidentDetail(IncidentOut):
    alerts: AlertsSummary


class ResolveIn(InputModel):
    reason: Annotated[str, StringConstraints(max_length=1000), AfterValidator(no_nul)] = ""


class ReassignIn(InputModel):
    user: Username = Field(description="Username of the new assignee.")


class NoteIn(InputModel):
    text: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000),
        AfterValidator(no_nul),
    ]


class TimelineEntryOut(BaseModel):
    id: int
    incident_id: int
    at: datetime
    kind: str
    actor: str
    message: str
    data: dict[str, Any]
