"""Alertmanager webhook payloads (version "4") to events: one event per alert of the group.

Each alert is keyed by its fingerprint, so Alertmanager's repeats join the open alert and its
"resolved" notification resolves it. Alertmanager does not retry 4xx answers, so content it
cannot help (an over-long annotation) is truncated rather than refused; only a malformed
payload is refused.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from tocsin.alerts.models import SEVERITIES
from tocsin.ingest.integrations import IntegrationInfo
from tocsin.ingest.rejection import MAX_SUMMARY_CHARS, Rejected, invalid
from tocsin.ingest.timestamps import normalise_timestamp
from tocsin.ingest.writer import AcceptedEvent

SUPPORTED_VERSION = "4"
_STATUS_ACTIONS = {"firing": "trigger", "resolved": "resolve"}

# Common severity label values onto PagerDuty's four.
SEVERITY_ALIASES = {
    **{s: s for s in SEVERITIES},
    "crit": "critical",
    "fatal": "critical",
    "emergency": "critical",
    "alert": "critical",
    "page": "critical",
    "p1": "critical",
    "err": "error",
    "high": "error",
    "major": "error",
    "p2": "error",
    "warn": "warning",
    "medium": "warning",
    "minor": "warning",
    "p3": "warning",
    "informational": "info",
    "notice": "info",
    "low": "info",
    "none": "info",
    "debug": "info",
    "p4": "info",
    "p5": "info",
}


def fingerprint_of(labels: dict[str, str]) -> str:
    """Stable across senders and restarts: a hash of the sorted label set."""
    return hashlib.sha256(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def default_severity(options: dict[str, Any]) -> str:
    value = options.get("default_severity")
    return value if isinstance(value, str) and value in SEVERITIES else "critical"


def severity_of(labels: dict[str, str], fallback: str) -> str:
    raw = labels.get("severity")
    if not raw:
        return fallback
    return SEVERITY_ALIASES.get(raw.strip().lower(), fallback)


def alertmanager_events(doc: Any, integration: IntegrationInfo) -> list[AcceptedEvent]:
    if not isinstance(doc, dict):
        raise invalid("the webhook payload must be a JSON object")
    version = doc.get("version", SUPPORTED_VERSION)
    if version != SUPPORTED_VERSION:
        raise invalid(
            f"unsupported webhook payload version {version!r}; this endpoint reads version"
            f" {SUPPORTED_VERSION!r}"
        )
    alerts = doc.get("alerts")
    if not isinstance(alerts, list):
        raise invalid("alerts must be an array")
    group_status = doc.get("status")
    context = {
        "groupKey": _text(doc, "groupKey"),
        "receiver": _text(doc, "receiver"),
        "externalURL": _text(doc, "externalURL"),
        "groupLabels": _string_map(doc.get("groupLabels"), "groupLabels"),
    }
    fallback = default_severity(integration.options)
    events = [
        _event(alert, i, group_status, context, fallback, integration)
        for i, alert in enumerate(alerts)
    ]
    return events


def _event(
    alert: Any,
    index: int,
    group_status: Any,
    context: dict[str, Any],
    fallback_severity: str,
    integration: IntegrationInfo,
) -> AcceptedEvent:
    where = f"alerts[{index}]"
    if not isinstance(alert, dict):
        raise invalid(f"{where} must be an object")
    labels = _string_map(alert.get("labels"), f"{where}.labels")
    annotations = _string_map(alert.get("annotations"), f"{where}.annotations")
    status = alert.get("status") or group_status
    action = _STATUS_ACTIONS.get(status) if isinstance(status, str) else None
    if action is None:
        raise invalid(f"{where}.status must be firing or resolved")
    fingerprint = alert.get("fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise invalid(f"{where}.fingerprint must be a string")
    dedup_key = (fingerprint or fingerprint_of(labels))[:255]
    summary = (
        annotations.get("summary")
        or annotations.get("description")
        or labels.get("alertname")
        or f"Alertmanager alert {dedup_key}"
    )
    starts_at = _instant(alert, "startsAt", where)
    ends_at = _instant(alert, "endsAt", where)
    generator_url = _text(alert, "generatorURL", where)
    payload: dict[str, Any] = {
        "summary": summary[:MAX_SUMMARY_CHARS],
        "severity": severity_of(labels, fallback_severity),
        "source": labels.get("instance")
        or labels.get("job")
        or context["externalURL"]
        or "alertmanager",
        "client": "Alertmanager",
        "custom_details": {
            "labels": labels,
            "annotations": annotations,
            "startsAt": starts_at,
            "endsAt": ends_at,
            "generatorURL": generator_url,
            "groupKey": context["groupKey"],
            "receiver": context["receiver"],
            "externalURL": context["externalURL"],
            "groupLabels": context["groupLabels"],
        },
    }
    if labels.get("alertname"):
        payload["class"] = labels["alertname"]
    if starts_at:
        payload["timestamp"] = starts_at
    if context["externalURL"]:
        payload["client_url"] = context["externalURL"]
    if generator_url:
        payload["links"] = [{"href": generator_url, "text": "Source"}]
    return AcceptedEvent(integration.id, integration.service_id, action, dedup_key, payload)


def _string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise invalid(f"{where} must be an object of string values")
    return value


def _text(doc: dict[str, Any], name: str, where: str = "") -> str:
    value = doc.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid(f"{where + '.' if where else ''}{name} must be a string")
    return value


def _instant(alert: dict[str, Any], name: str, where: str) -> str:
    value = alert.get(name)
    if value is None or value == "" or str(value).startswith("0001-01-01"):
        return ""  # Go's zero time: Alertmanager's "not set"
    try:
        return normalise_timestamp(value, f"{where}.{name}")
    except Rejected:
        raise invalid(f"{where}.{name} is not an RFC 3339 timestamp: {str(value)[:64]!r}") from None
