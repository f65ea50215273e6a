"""Grouping rules: which open incident a new alert joins.

A service's ``grouping`` is one of
  {"type": "none"}                                   every new alert opens its own incident
  {"type": "time_window", "window_seconds": 300}     join the newest open incident younger than this
  {"type": "fields", "fields": ["labels.alertname"], "window_seconds": 3600 (optional)}
                                                     join the open incident whose alerts share these
                                                     field values, like Alertmanager's group_by
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

GROUPING_TYPES = ("none", "time_window", "fields")


@dataclass(frozen=True)
class GroupTarget:
    key: str | None
    window_seconds: int | None


def lookup_field(payload: dict[str, Any], path: str) -> Any:
    """Resolve a dotted path in the event payload, then inside its custom details."""
    for root in (payload, payload.get("custom_details") or {}):
        node: Any = root
        for part in path.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                node = None
                break
        if node is not None:
            return node
    return None


def group_target(grouping: dict[str, Any], payload: dict[str, Any]) -> GroupTarget:
    kind = grouping.get("type", "none")
    window = grouping.get("window_seconds")
    if kind == "time_window":
        return GroupTarget(key="time_window", window_seconds=int(window or 300))
    if kind == "fields":
        fields = list(grouping.get("fields") or [])
        values = [lookup_field(payload, f) for f in fields]
        digest = hashlib.sha256(orjson.dumps([fields, values], option=orjson.OPT_SORT_KEYS))
        return GroupTarget(
            key="fields:" + digest.hexdigest()[:40],
            window_seconds=int(window) if window else None,
        )
    return GroupTarget(key=None, window_seconds=None)
