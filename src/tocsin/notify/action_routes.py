"""/actions/{token}: the pages behind the one-click links in notifications. Deliberately public:
the signed token is the credential (see notify/links.py).

GET only shows what the link would do, with a button; mail scanners and chat previews that
fetch links therefore never act. The button POSTs back to the same address, and the POST acts
as the user the link was sent to. Problems with the link are a 4xx page that says what is wrong.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from tocsin.api.deps import get_runtime
from tocsin.db.engine import transaction
from tocsin.incidents import service as incidents
from tocsin.incidents.models import Incident
from tocsin.notify import links, render
from tocsin.notify.links import ACTION_VERBS, LinkClaim, LinkError
from tocsin.notify.pages import ACTING_ROLES
from tocsin.orgs.models import Service, User
from tocsin.runtime import Runtime

router = APIRouter(prefix="/actions", tags=["actions"], include_in_schema=False)

MAX_FORM_BYTES = 2048
_HEADERS = {
    "Cache-Control": "no-store",
    # The token is in the address: never pass it on to another site.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


class _Refused(Exception):
    def __init__(self, status: int, heading: str, explanation: str) -> None:
        super().__init__(explanation)
        self.status = status
        self.heading = heading
        self.explanation = explanation


def _page(status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render.action_page(**context), status_code=status, headers=_HEADERS)


def _refused_page(exc: _Refused) -> HTMLResponse:
    return _page(exc.status, heading=exc.heading, explanation=exc.explanation, tone="error")


def _link_error_page(exc: LinkError) -> HTMLResponse:
    return _page(exc.status, heading=exc.title, explanation=str(exc), tone="error")


def _load(session: Session, claim: LinkClaim, *, lock: bool) -> tuple[Incident, User]:
    incident = session.get(Incident, claim.incident_id, with_for_update=lock)
    if incident is None:
        raise _Refused(404, "Incident not found", f"incident #{claim.incident_id} was deleted")
    user = session.get(User, claim.user_id)
    if user is None or not user.active or user.role not in ACTING_ROLES:
        raise _Refused(
            403,
            "This link no longer works",
            "the account it was sent to is deactivated or may no longer act on incidents",
        )
    return incident, user


def _shown(session: Session, incident: Incident) -> dict[str, Any]:
    service = session.get(Service, incident.service_id)
    return {
        "id": incident.id,
        "title": incident.title,
        "service": service.name if service is not None else "",
        "status": incident.status,
        "acknowledged_by": incident.acknowledged_by if incident.status != "triggered" else None,
        "resolved_by": incident.resolved_by if incident.status == "resolved" else None,
    }


def _nothing_to_do(incident: Incident, action: str) -> str | None:
    if incident.status == "resolved":
        return f"Incident #{incident.id} is already resolved (by {incident.resolved_by})."
    if action == "ack" and incident.status == "acknowledged":
        return f"Incident #{incident.id} is already acknowledged (by {incident.acknowledged_by})."
    return None


def _confirm(runtime: Runtime, token: str) -> HTMLResponse:
    try:
        claim = links.read_link(token, now=runtime.clock.now())
        with runtime.read_factory() as session:
            incident, user = _load(session, claim, lock=False)
            shown = _shown(session, incident)
    except LinkError as exc:
        return _link_error_page(exc)
    except _Refused as exc:
        return _refused_page(exc)
    verb = ACTION_VERBS[claim.action]
    done = _nothing_to_do(incident, claim.action)
    if done is not None:
        return _page(heading="Nothing to do", explanation=done, tone="info", incident=shown)
    return _page(
        heading=f"{verb.capitalize()} incident #{incident.id}?",
        explanation=(
            f"This link lets {user.username} {verb} this incident. Nothing happens until you "
            "press the button."
        ),
        tone="confirm",
        incident=shown,
        button=verb.capitalize(),
        action=claim.action,
    )


def _act(runtime: Runtime, token: str, action: str | None) -> HTMLResponse:
    now = runtime.clock.now()
    try:
        claim = links.read_link(token, now=now, action=action)
        with transaction(runtime.factory) as session:
            incident, user = _load(session, claim, lock=True)
            done = _nothing_to_do(incident, claim.action)
            if done is None:
                actor = f"user:{user.username} via link"
                if claim.action == "ack":
                    incidents.acknowledge(session, incident, now=now, actor=actor)
                else:
                    incidents.resolve(session, incident, now=now, actor=actor)
                session.flush()
            shown = _shown(session, incident)
    except LinkError as exc:
        return _link_error_page(exc)
    except _Refused as exc:
        return _refused_page(exc)
    if done is not None:
        return _page(heading="Nothing to do", explanation=done, tone="info", incident=shown)
    past = "acknowledged" if claim.action == "ack" else "resolved"
    return _page(
        heading=f"Incident #{incident.id} {past}",
        explanation=f"Incident #{incident.id} is now {past} by {user.username}.",
        tone="ok",
        incident=shown,
    )


@router.get("/{token}", response_class=HTMLResponse)
def confirm_action(token: str, runtime: Runtime = Depends(get_runtime)) -> HTMLResponse:
    return _confirm(runtime, token)


@router.post("/{token}", response_class=HTMLResponse)
async def take_action(
    token: str, request: Request, runtime: Runtime = Depends(get_runtime)
) -> HTMLResponse:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return _page(
                413, heading="Request too large", explanation="the form is too large", tone="error"
            )
    try:
        form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    except ValueError:
        return _page(400, heading="Bad request", explanation="the form is malformed", tone="error")
    action = form.get("action", [None])[0]
    return await run_in_threadpool(_act, runtime, token, action)
