"""Response bodies for alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AlertOut(BaseModel):
    id: int
    service: str = Field(description="The service's slug.")
    integration_id: int | None
    incident_id: int | None
    dedup_key: str
    status: str
    summary: str
    severity: str
    source: str
    details: dict[str, Any]
    created_at: datetime
    last_event_at: datetime
    event_count: int
    acknowledged_at: datetime | None
    resolved_at: datetime | None
