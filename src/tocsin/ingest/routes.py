"""The ingestion endpoints: PagerDuty Events API v2, Alertmanager webhooks, generic webhooks.

Deliberately public routes: the integration key in the body (PagerDuty's routing_key) or in
the path is the credential, optionally with request auth on /integrations/*. Each request is
validated on the event loop and answered 2xx only after its events are committed by the
group-commit writer; 503 (retry) is the only 5xx, when the store cannot take events.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request, Response

from tocsin.errors import STATUS_CODES, error_body
from tocsin.ingest import alertmanager, pagerduty, webhook
from tocsin.ingest.auth import check_request_auth
from tocsin.ingest.body import read_json
from tocsin.ingest.integrations import IntegrationCache, IntegrationInfo
from tocsin.ingest.ratelimit import TokenBuckets, retry_after_header
from tocsin.ingest.rejection import Rejected
from tocsin.ingest.writer import AcceptedEvent, WriterStopped
from tocsin.observability.metrics import EVENTS_ACCEPTED, EVENTS_REJECTED, INGEST_LATENCY
from tocsin.runtime import Runtime

log = logging.getLogger(__name__)

# Plain Starlette routes: these handlers take the raw request and validate by hand, so
# FastAPI's per-request dependency and model machinery would only cost time on the hot path.
# They are described in docs/ingestion.md rather than in the OpenAPI schema.
router = APIRouter()

PD_ENQUEUE = "pagerduty"
PD_CHANGE = "pagerduty_change"
ALERTMANAGER = "alertmanager"
WEBHOOK = "webhook"


@dataclass
class IngestState:
    """Per-app, in-memory: the integration key cache and the rate limiter."""

    runtime: Runtime
    integrations: IntegrationCache
    limiter: TokenBuckets


def ingest_state(app: FastAPI) -> IngestState:
    state: IngestState | None = getattr(app.state, "ingest", None)
    runtime: Runtime = app.state.runtime
    if state is None or state.runtime is not runtime:
        state = IngestState(
            runtime=runtime,
            integrations=IntegrationCache(runtime.read_factory, runtime.clock),
            limiter=TokenBuckets(
                runtime.clock,
                rate_per_second=runtime.settings.ingest_rate_per_second,
                burst=runtime.settings.ingest_burst,
            ),
        )
        app.state.ingest = state
    return state


def invalidate_integration(app: FastAPI, key: str | None = None) -> None:
    """Call after changing or deleting an integration so this node stops using the old one."""
    ingest_state(app).integrations.invalidate(key)


# --- rendering ------------------------------------------------------------------------------


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _pagerduty_error(rej: Rejected) -> Response:
    """PagerDuty's error object: {"status", "message", "errors": [...]}."""
    if rej.reason in ("malformed_json", "invalid_utf8"):
        status, name, message = 400, "Unrecognized object", "Event object format is unrecognized"
    elif rej.status == 429:
        status, name = 429, "throttle event"
        message = "Requests for this routing key are arriving too quickly. Please retry later."
    elif rej.status >= 500:
        status, name, message = rej.status, "unavailable", "Event not stored. Please retry later."
    else:
        # PagerDuty answers every bad request 400, except that a body over its limit is 413.
        status = 413 if rej.status == 413 else 400
        name, message = "invalid event", "Event object is invalid"
    return _json(status, {"status": name, "message": message, "errors": rej.errors}, rej.headers)


def _api_error(rej: Rejected) -> Response:
    body = error_body(
        STATUS_CODES.get(rej.status, "error"),
        "; ".join(rej.errors),
        [{"reason": rej.reason, "message": e} for e in rej.errors],
    )
    return _json(rej.status, body, rej.headers)


def _key_hint(key: str | None) -> str:
    """Enough to correlate log lines, never the key itself."""
    if not key:
        return "-"
    return "key#" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:8]


def _rejected(
    endpoint: str, rej: Rejected, key: str | None, render: Callable[[Rejected], Response]
) -> Response:
    EVENTS_REJECTED.labels(endpoint, rej.reason).inc()
    level = (
        logging.WARNING
        if rej.status >= 500
        else (
            logging.INFO
            if rej.status in (401, 404) or rej.reason == "unknown_key"
            else logging.DEBUG
        )
    )
    if log.isEnabledFor(level):
        log.log(
            level,
            "%s event rejected (%d %s, %s): %s",
            endpoint,
            rej.status,
            rej.reason,
            _key_hint(key),
            "; ".join(rej.errors)[:500],
        )
    return render(rej)


# --- the shared steps -----------------------------------------------------------------------


async def _integration(
    state: IngestState, key: str, kind: str, *, in_body: bool
) -> IntegrationInfo:
    try:
        info = await state.integrations.get(key)
    except Exception:
        log.warning("integration lookup failed", exc_info=True)
        raise Rejected(503, "unavailable", ["the database is unavailable; retry later"]) from None
    if info is None:
        if in_body:
            raise Rejected(400, "unknown_key", ["Invalid routing key"])
        raise Rejected(404, "unknown_key", ["unknown integration key"])
    if info.type != kind:
        where = {
            "pagerduty": "/v2/enqueue",
            "alertmanager": "/integrations/alertmanager/<key>",
            "webhook": "/integrations/webhook/<key>",
        }.get(info.type, "no ingestion endpoint")
        raise Rejected(
            400 if in_body else 404,
            "wrong_integration",
            [f"this key belongs to a {info.type} integration; its events go to {where}"],
        )
    return info


def _rate_limit(state: IngestState, info: IntegrationInfo, cost: int) -> None:
    wait = state.limiter.take(info.id, cost)
    if wait > 0:
        retry_after = retry_after_header(wait)
        raise Rejected(
            429,
            "rate_limited",
            [f"rate limit exceeded for this integration key; retry after {retry_after}s"],
            headers={"Retry-After": retry_after},
        )


async def _store(runtime: Runtime, events: list[AcceptedEvent]) -> None:
    """Returns once the events are durable. Any failure is a 503 so that senders retry."""
    if not events:
        return
    try:
        await runtime.writer.submit(events)
    except WriterStopped:
        raise Rejected(503, "unavailable", ["this node is not accepting events; retry"]) from None
    except Exception:
        raise Rejected(503, "unavailable", ["the events could not be stored; retry"]) from None


def _accepted(endpoint: str, count: int, started: float) -> None:
    EVENTS_ACCEPTED.labels(endpoint).inc(count)
    INGEST_LATENCY.labels(endpoint).observe(time.perf_counter() - started)


# --- PagerDuty Events API v2 ----------------------------------------------------------------


async def _pagerduty(
    request: Request,
    endpoint: str,
    build: Callable[[dict[str, Any], IntegrationInfo], AcceptedEvent],
) -> tuple[AcceptedEvent | None, Response | None]:
    started = time.perf_counter()
    state = ingest_state(request.app)
    key: str | None = None
    try:
        try:
            doc = await read_json(request)
        except Rejected as rej:
            if rej.status == 415:  # PagerDuty answers a wrong content type 400
                raise Rejected(400, rej.reason, rej.errors) from None
            raise
        key = pagerduty.routing_key_of(doc)
        info = await _integration(state, key, "pagerduty", in_body=True)
        _rate_limit(state, info, 1)
        event = build(doc, info)
        await _store(state.runtime, [event])
    except Rejected as rej:
        return None, _rejected(endpoint, rej, key, _pagerduty_error)
    _accepted(endpoint, 1, started)
    return event, None


async def enqueue(request: Request) -> Response:
    """Trigger, acknowledge or resolve an alert, exactly as PagerDuty's /v2/enqueue."""
    event, error = await _pagerduty(request, PD_ENQUEUE, pagerduty.alert_event)
    if error is not None:
        return error
    assert event is not None
    body = {"status": "success", "message": "Event processed", "dedup_key": event.dedup_key}
    return _json(202, body)


async def change_enqueue(request: Request) -> Response:
    """Record a change (a deploy, a configuration change) for triage."""
    _, error = await _pagerduty(request, PD_CHANGE, pagerduty.change_event)
    if error is not None:
        return error
    return _json(202, {"status": "success", "message": "Change event processed"})


# --- Alertmanager and generic webhooks ------------------------------------------------------


async def _keyed(
    request: Request,
    endpoint: str,
    kind: str,
    build: Callable[[Any, IntegrationInfo], list[AcceptedEvent]],
) -> tuple[list[AcceptedEvent] | None, Response | None]:
    started = time.perf_counter()
    state = ingest_state(request.app)
    key: str = request.path_params["integration_key"]
    try:
        info = await _integration(state, key, kind, in_body=False)
        check_request_auth(info.options, request.headers.get("authorization"))
        doc = await read_json(request)
        events = build(doc, info)
        _rate_limit(state, info, max(1, len(events)))
        await _store(state.runtime, events)
    except Rejected as rej:
        return None, _rejected(endpoint, rej, key, _api_error)
    _accepted(endpoint, len(events), started)
    return events, None


async def alertmanager_webhook(request: Request) -> Response:
    """Alertmanager's webhook (payload version 4): every alert becomes an event keyed by its
    fingerprint."""
    events, error = await _keyed(
        request, ALERTMANAGER, "alertmanager", alertmanager.alertmanager_events
    )
    if error is not None:
        return error
    assert events is not None
    return _json(200, {"status": "success", "message": "Events processed", "events": len(events)})


async def generic_webhook(request: Request) -> Response:
    """One event from any JSON body, located by the integration's field mapping."""
    events, error = await _keyed(
        request, WEBHOOK, "webhook", lambda d, i: [webhook.webhook_event(d, i)]
    )
    if error is not None:
        return error
    assert events is not None
    [event] = events
    body = {
        "status": "success",
        "message": "Event processed",
        "dedup_key": event.dedup_key,
        "event_action": event.action,
    }
    return _json(200, body)


router.add_route("/v2/enqueue", enqueue, methods=["POST"])
router.add_route("/v2/change/enqueue", change_enqueue, methods=["POST"])
router.add_route(
    "/integrations/alertmanager/{integration_key}", alertmanager_webhook, methods=["POST"]
)
router.add_route("/integrations/webhook/{integration_key}", generic_webhook, methods=["POST"])
