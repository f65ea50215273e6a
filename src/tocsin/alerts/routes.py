"""/api/v1/alerts: read-only; alerts change only through events and incident actions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import Query
from sqlalchemy.orm import Session

from tocsin.alerts.models import Alert
from tocsin.alerts.schemas import AlertOut
from tocsin.api.deps import DbRead, Reader
from tocsin.api.fields import SLUG_PATTERN
from tocsin.api.pagination import MAX_ID, Page, PageParams, fetch_page
from tocsin.api.routing import IdPath, Pages, api_router
from tocsin.auth.service import Principal
from tocsin.errors import ApiError
from tocsin.orgs import service as orgs
from tocsin.orgs.models import Service

router = api_router("/alerts", tags=["alerts"], errors=(404,))


def alerts_out(session: Session, rows: Sequence[Alert]) -> list[AlertOut]:
    services = orgs.slugs_by_id(session, Service, [a.service_id for a in rows])
    return [
        AlertOut(
            id=a.id,
            service=services.get(a.service_id, ""),
            integration_id=a.integration_id,
            incident_id=a.incident_id,
            dedup_key=a.dedup_key,
            status=a.status,
            summary=a.summary,
            severity=a.severity,
            source=a.source,
            details=a.details or {},
            created_at=a.created_at,
            last_event_at=a.last_event_at,
            event_count=a.event_count,
            acknowledged_at=a.acknowledged_at,
            resolved_at=a.resolved_at,
        )
        for a in rows
    ]


@router.get("", response_model=Page[AlertOut])
def list_alerts(
    _: Principal = Reader,
    session: Session = DbRead,
    page: PageParams = Pages,
    service: str | None = Query(None, pattern=SLUG_PATTERN, description="A service slug."),
    status: list[Literal["triggered", "acknowledged", "resolved"]] | None = Query(
        None, description="Repeat to match any of several statuses."
    ),
    incident_id: int | None = Query(None, ge=1, le=MAX_ID),
) -> Any:
    """Newest first."""
    stmt = sa.select(Alert)
    if service is not None:
        stmt = stmt.where(Alert.service_id == orgs.service_by_slug(session, service).id)
    if status:
        stmt = stmt.where(Alert.status.in_(status))
    if incident_id is not None:
        stmt = stmt.where(Alert.incident_id == incident_id)
    rows, cursor = fetch_page(session, stmt, [Alert.created_at, Alert.id], page, descending=True)
    return Page[AlertOut](items=alerts_out(session, rows), next_cursor=cursor)


@router.get("/{alert_id}", response_model=AlertOut)
def get_alert(
    alert_id: IdPath,
    _: Principal = Reader,
    session: Session = DbRead,
) -> Any:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise ApiError(404, f"no alert with id {alert_id}")
    return alerts_out(session, [alert])[0]
