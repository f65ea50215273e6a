"""Incident timers: auto-resolve and acknowledgement timeout.

incidents.service enqueues them on every state change with the incident's generation at that
moment. A timer acts only if the generation still matches: any later change (an acknowledgement,
a resolve, a reassignment) has bumped it, and the timer set for that change is the one in force.
"""

from __future__ import annotations

import sqlalchemy as sa

from tocsin.engine.worker import JobContext, PermanentJobError, handler
from tocsin.incidents import service as incidents
from tocsin.incidents.models import Incident
from tocsin.orgs.models import Service

ENGINE_ACTOR = "system:engine"


def _incident_if_current(ctx: JobContext) -> Incident | None:
    """The incident, locked against concurrent changes, or None when the timer is stale."""
    payload = ctx.job.payload
    try:
        incident_id = int(payload["incident_id"])
        generation = int(payload["generation"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentJobError(f"malformed incident timer payload: {payload!r}") from exc
    incident = ctx.session.scalars(
        sa.select(Incident).where(Incident.id == incident_id).with_for_update()
    ).one_or_none()
    if incident is None or incident.generation != generation:
        return None
    return incident


def _service_setting(ctx: JobContext, incident: Incident, name: str) -> int | None:
    service = ctx.session.get(Service, incident.service_id)
    value = getattr(service, name, None) if service is not None else None
    return int(value) if value else None


@handler(incidents.AUTO_RESOLVE_JOB)
def auto_resolve(ctx: JobContext) -> None:
    incident = _incident_if_current(ctx)
    if incident is None or incident.status == "resolved":
        return
    seconds = _service_setting(ctx, incident, "auto_resolve_seconds")
    reason = "auto-resolved" + (f" after {seconds} s without a change" if seconds else "")
    incidents.resolve(ctx.session, incident, now=ctx.clock.now(), actor=ENGINE_ACTOR, reason=reason)


@handler(incidents.ACK_TIMEOUT_JOB)
def acknowledgement_timeout(ctx: JobContext) -> None:
    incident = _incident_if_current(ctx)
    if incident is None or incident.status != "acknowledged":
        return
    seconds = _service_setting(ctx, incident, "ack_timeout_seconds")
    reason = "Acknowledgement timed out" + (f" after {seconds} s" if seconds else "")
    incidents.retrigger(
        ctx.session,
        incident,
        now=ctx.clock.now(),
        actor=ENGINE_ACTOR,
        reason=reason + "; the incident is triggered again",
    )
