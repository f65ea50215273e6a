"""Generic JSON webhooks: the integration's mapping says where each field is in the body.

``Integration.options["mapping"]`` (every key optional):
  {"summary": "alerts.0.title", "severity": "level", "dedup_key": "id", "action": "state",
   "source": "host", "severity_map": {"p1": "critical"}, "action_map": {"ok": "resolve"},
   "default_severity": "critical", "default_action": "trigger"}
Paths are dotted; a numeric part indexes a list. Unset paths default to the field's own name
("summary", "severity", ...). The whole body is kept as the event's custom details.
"""

from __future__ import annotations

import uuid
from typing import Any

from tocsin.alerts.models import SEVERITIES
from tocsin.ingest.integrations import IntegrationInfo
from tocsin.ingest.pagerduty import ALERT_ACTIONS
from tocsin.ingest.rejection import MAX_DEDUP_KEY_CHARS, MAX_SUMMARY_CHARS, Rejected, invalid
from tocsin.ingest.writer import AcceptedEvent

_PATH_FIELDS = ("summary", "severity", "dedup_key", "action", "source")
_DEFAULT_ACTION_MAP = {
    "firing": "trigger",
    "alerting": "trigger",
    "problem": "trigger",
    "triggered": "trigger",
    "ok": "resolve",
    "resolved": "resolve",
    "recovered": "resolve",
    "acknowledged": "acknowledge",
    "ack": "acknowledge",
}


def _misconfigured(problem: str) -> Rejected:
    return Rejected(400, "invalid_mapping", [f"this integration's mapping is invalid: {problem}"])


def resolve_path(doc: Any, path: str) -> Any:
    """The value at a dotted path, or None. "alerts.0.title" indexes into lists."""
    node = doc
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.lstrip("-").isdigit():
            index = int(part)
            node = node[index] if -len(node) <= index < len(node) else None
        else:
            return None
        if node is None:
            return None
    return node


def _scalar_text(value: Any) -> str | None:
    """Strings, numbers and booleans as text; objects and lists are not a field value."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def _mapping(options: dict[str, Any]) -> dict[str, Any]:
    mapping = options.get("mapping") or {}
    if not isinstance(mapping, dict):
        raise _misconfigured("options.mapping must be an object")
    for name in _PATH_FIELDS:
        path = mapping.get(name, name)
        if not isinstance(path, str) or not path:
            raise _misconfigured(f"mapping.{name} must be a dotted path string")
    for name in ("severity_map", "action_map"):
        if not isinstance(mapping.get(name) or {}, dict):
            raise _misconfigured(f"mapping.{name} must be an object")
    return mapping


def webhook_event(doc: Any, integration: IntegrationInfo) -> AcceptedEvent:
    if not isinstance(doc, dict | list):
        raise invalid("the webhook body must be a JSON object or array")
    mapping = _mapping(integration.options)

    def field(name: str) -> tuple[str, str | None]:
        path: str = mapping.get(name, name)
        return path, _scalar_text(resolve_path(doc, path))

    summary_path, summary = field("summary")
    if summary is None or not summary.strip():
        raise invalid(f"no summary found at path {summary_path!r} in the request body")
    if len(summary) > MAX_SUMMARY_CHARS:
        raise invalid(
            f"the summary at path {summary_path!r} is longer than {MAX_SUMMARY_CHARS} characters"
        )
    action = _action(mapping, *field("action"))
    dedup_path, dedup_key = field("dedup_key")
    if dedup_key is not None and len(dedup_key) > MAX_DEDUP_KEY_CHARS:
        raise invalid(
            f"the dedup key at path {dedup_path!r} is longer than {MAX_DEDUP_KEY_CHARS} characters"
        )
    if not dedup_key:
        if action != "trigger":
            raise invalid(f"no dedup key found at path {dedup_path!r}; {action} needs one")
        dedup_key = uuid.uuid4().hex
    _, source = field("source")
    payload = {
        "summary": summary,
        "severity": _severity(mapping, integration.options, field("severity")[1]),
        "source": source or "webhook",
        "custom_details": doc,
    }
    return AcceptedEvent(integration.id, integration.service_id, action, dedup_key, payload)


def _lookup(table: dict[str, Any], value: str) -> Any:
    """Exact match first, then case-insensitive."""
    if value in table:
        return table[value]
    folded = value.lower()
    return next((v for k, v in table.items() if str(k).lower() == folded), None)


def _severity(mapping: dict[str, Any], options: dict[str, Any], value: str | None) -> str:
    default = mapping.get("default_severity", options.get("default_severity", "critical"))
    if default not in SEVERITIES:
        raise _misconfigured("default_severity must be one of critical, error, warning, info")
    if value is None:
        return str(default)
    mapped = _lookup(mapping.get("severity_map") or {}, value)
    if mapped is None:
        mapped = value.lower()
    return str(mapped) if mapped in SEVERITIES else str(default)


def _action(mapping: dict[str, Any], path: str, value: str | None) -> str:
    default = mapping.get("default_action", "trigger")
    if default not in ALERT_ACTIONS:
        raise _misconfigured("default_action must be one of trigger, acknowledge, resolve")
    if value is None:
        return str(default)
    table = {**_DEFAULT_ACTION_MAP, **(mapping.get("action_map") or {})}
    mapped = _lookup(table, value)
    if mapped is None and value.lower() in ALERT_ACTIONS:
        mapped = value.lower()
    if mapped not in ALERT_ACTIONS:
        raise invalid(
            f"the value {value[:64]!r} at path {path!r} is not an event action; map it with"
            " action_map to trigger, acknowledge or resolve"
        )
    return str(mapped)
