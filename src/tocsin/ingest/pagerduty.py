"""PagerDuty Events API v2: alert events (/v2/enqueue) and change events (/v2/change/enqueue).

Hand-written validation (cheaper than a model per request) that reports every problem at
once, in PagerDuty's wording where it has one. The stored payload keeps only the known
fields, normalised: the timestamp as ISO text with an offset, severity in lower case.
"""

from __future__ import annotations

import uuid
from typing import Any

from tocsin.alerts.models import SEVERITIES
from tocsin.ingest.integrations import IntegrationInfo
from tocsin.ingest.rejection import MAX_DEDUP_KEY_CHARS, MAX_SUMMARY_CHARS, Rejected, invalid
from tocsin.ingest.timestamps import normalise_timestamp
from tocsin.ingest.writer import AcceptedEvent

ALERT_ACTIONS = ("trigger", "acknowledge", "resolve")
_OPTIONAL_TEXT = ("component", "group", "class")


def routing_key_of(doc: Any) -> str:
    if not isinstance(doc, dict):
        raise invalid("the event must be a JSON object")
    key = doc.get("routing_key")
    if not isinstance(key, str) or not key:
        raise invalid("routing_key is required: the 32 character integration key")
    return key


def alert_event(doc: dict[str, Any], integration: IntegrationInfo) -> AcceptedEvent:
    errors: list[str] = []
    action = doc.get("event_action")
    if action not in ALERT_ACTIONS:
        errors.append("event_action must be one of trigger, acknowledge, resolve")
    dedup_key = _dedup_key(doc.get("dedup_key"), errors)
    payload: dict[str, Any] = {}
    if action == "trigger":
        payload = _trigger_payload(doc, errors)
        if dedup_key is None:
            dedup_key = uuid.uuid4().hex
    elif action in ("acknowledge", "resolve"):
        # PagerDuty ignores the payload of follow-up events; so do we, beyond its type.
        if doc.get("payload") is not None and not isinstance(doc.get("payload"), dict):
            errors.append("payload must be an object")
        if dedup_key is None:
            errors.append(f"dedup_key is required for event_action {action}")
    if errors:
        raise invalid(*errors)
    return AcceptedEvent(integration.id, integration.service_id, str(action), dedup_key, payload)


def change_event(doc: dict[str, Any], integration: IntegrationInfo) -> AcceptedEvent:
    errors: list[str] = []
    raw = doc.get("payload")
    payload: dict[str, Any] = {}
    if not isinstance(raw, dict):
        errors.append("payload is required and must be an object")
    else:
        _summary(raw, payload, errors)
        _optional_text(raw, "source", payload, errors)
        _timestamp(raw, payload, errors)
        _custom_details(raw, payload, errors)
    _links(doc, payload, errors)
    _images(doc, payload, errors)
    if errors:
        raise invalid(*errors)
    return AcceptedEvent(integration.id, integration.service_id, "change", None, payload)


def _dedup_key(value: Any, errors: list[str]) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors.append("dedup_key must be a string")
        return None
    if len(value) > MAX_DEDUP_KEY_CHARS:
        errors.append(f"dedup_key must be at most {MAX_DEDUP_KEY_CHARS} characters")
        return None
    return value


def _trigger_payload(doc: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    raw = doc.get("payload")
    if not isinstance(raw, dict):
        errors.append("payload is required for event_action trigger and must be an object")
        return {}
    payload: dict[str, Any] = {}
    _summary(raw, payload, errors)
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        errors.append("payload.source is required: the affected system, e.g. a hostname")
    else:
        payload["source"] = source
    severity = raw.get("severity")
    if isinstance(severity, str) and severity.lower() in SEVERITIES:
        payload["severity"] = severity.lower()
    else:
        errors.append("payload.severity must be one of critical, error, warning, info")
    _timestamp(raw, payload, errors)
    for name in _OPTIONAL_TEXT:
        _optional_text(raw, name, payload, errors)
    _custom_details(raw, payload, errors)
    _links(doc, payload, errors)
    _images(doc, payload, errors)
    for name in ("client", "client_url"):
        _optional_text(doc, name, payload, errors, prefix="")
    return payload


def _summary(raw: dict[str, Any], payload: dict[str, Any], errors: list[str]) -> None:
    summary = raw.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("payload.summary is required: a brief text summary of the event")
    elif len(summary) > MAX_SUMMARY_CHARS:
        errors.append(f"payload.summary must be at most {MAX_SUMMARY_CHARS} characters")
    else:
        payload["summary"] = summary


def _timestamp(raw: dict[str, Any], payload: dict[str, Any], errors: list[str]) -> None:
    if raw.get("timestamp") is None:
        return
    try:
        payload["timestamp"] = normalise_timestamp(raw["timestamp"], "payload.timestamp")
    except Rejected as exc:
        errors.extend(exc.errors)


def _optional_text(
    raw: dict[str, Any],
    name: str,
    payload: dict[str, Any],
    errors: list[str],
    *,
    prefix: str = "payload.",
) -> None:
    value = raw.get(name)
    if value is None:
        return
    if not isinstance(value, str):
        errors.append(f"{prefix}{name} must be a string")
    elif value:
        payload[name] = value


def _custom_details(raw: dict[str, Any], payload: dict[str, Any], errors: list[str]) -> None:
    details = raw.get("custom_details")
    if details is None:
        return
    # The schema says object; PagerDuty also shows plain text details, so text is kept too.
    if not isinstance(details, dict | str):
        errors.append("payload.custom_details must be an object")
    else:
        payload["custom_details"] = details


def _links(doc: dict[str, Any], payload: dict[str, Any], errors: list[str]) -> None:
    _context_list(doc, "links", "href", ("href", "text"), payload, errors)


def _images(doc: dict[str, Any], payload: dict[str, Any], errors: list[str]) -> None:
    _context_list(doc, "images", "src", ("src", "href", "alt"), payload, errors)


def _context_list(
    doc: dict[str, Any],
    name: str,
    required: str,
    fields: tuple[str, ...],
    payload: dict[str, Any],
    errors: list[str],
) -> None:
    items = doc.get(name)
    if items is None:
        return
    if not isinstance(items, list):
        errors.append(f"{name} must be an array of objects")
        return
    kept: list[dict[str, str]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(f"{name}[{i}] must be an object")
            continue
        if not isinstance(item.get(required), str) or not item[required]:
            errors.append(f"{name}[{i}].{required} is required")
            continue
        bad = [f for f in fields if item.get(f) is not None and not isinstance(item[f], str)]
        if bad:
            errors.append(f"{name}[{i}].{bad[0]} must be a string")
            continue
        kept.append({f: item[f] for f in fields if item.get(f)})
    if kept:
        payload[name] = kept
