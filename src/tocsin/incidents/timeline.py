"""The one way anything is written to an incident's timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tocsin.incidents.models import TimelineEntry


def append(
    session: Session,
    *,
    incident_id: int,
    at: datetime,
    kind: str,
    actor: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> TimelineEntry:
    entry = TimelineEntry(
        incident_id=incident_id, at=at, kind=kind, actor=actor, message=message, data=data or {}
    )
    session.add(entry)
    return entry
