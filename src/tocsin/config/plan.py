"""A plan: the changes that would bring the database to the state the files describe."""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from tocsin.config.located import Locator
from tocsin.config.problems import Problem

Action = Literal["create", "update", "delete"]
KEY_ALPHABET = string.ascii_lowercase + string.digits

# Shown in place of credentials: a plan is printed and may end up in CI logs.
SECRET_SHOWN = "(secret)"  # noqa: S105 - a placeholder, not a password
NEW_SECRET_SHOWN = "(new secret)"  # noqa: S105


def generate_key() -> str:
    """A routing key: 32 characters of [a-z0-9], about 165 bits."""
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(32))


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any

    def describe(self) -> str:
        if isinstance(self.old, list) and isinstance(self.new, list):
            added = [f"+{v}" for v in self.new if v not in self.old]
            removed = [f"-{v}" for v in self.old if v not in self.new]
            if not added and not removed:  # the same items in another order
                return f"{self.field}: {_show(self.old)} -> {_show(self.new)}"
            return f"{self.field}: {' '.join(added + removed)}"
        if self.old is None:
            return f"{self.field}: {_show(self.new)}"
        if self.new is None:
            return f"{self.field}: {_show(self.old)} -> (none)"
        return f"{self.field}: {_show(self.old)} -> {_show(self.new)}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {_show(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class Change:
    kind: str  # "team", "user", "service", "integration"
    action: Action
    name: str  # the identity: slug, username, "service/integration"
    fields: tuple[FieldChange, ...] = ()
    note: str = ""
    # What executing the change needs; not shown and not compared between two plans.
    target_id: int | None = field(default=None, compare=False)
    desired: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def describe(self) -> str:
        head = f"{self.action} {self.kind} {self.name}"
        return head + (f" ({self.note})" if self.note else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "action": self.action,
            "name": self.name,
            "fields": {f.field: {"old": f.old, "new": f.new} for f in self.fields},
            "note": self.note,
        }


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    def summary(self) -> str:
        if self.empty:
            return "no changes: the database already matches the configuration"
        return (
            f"{self.count('create')} to create, {self.count('update')} to update, "
            f"{self.count('delete')} to delete"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [c.to_json() for c in self.changes],
            "warnings": [str(w) for w in self.warnings],
            "summary": self.summary(),
        }


@dataclass
class Context:
    """What planning and applying need besides the session and the desired state."""

    now: datetime
    prune: bool = False
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    at: Locator = field(default_factory=Locator)
    new_key: Callable[[], str] = generate_key
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def diff_fields(current: Mapping[str, Any], desired: Mapping[str, Any]) -> list[FieldChange]:
    """Field-by-field differences, in the order of ``desired``."""
    return [
        FieldChange(name, current.get(name), value)
        for name, value in desired.items()
        if current.get(name) != value
    ]


def create_or_update(
    kind: str,
    name: str,
    fields: list[FieldChange],
    *,
    target_id: int | None,
    desired: Mapping[str, Any],
) -> list[Change]:
    """What brings one item in line with the files, given how its fields differ from the
    stored ones (with no row, from nothing): a create showing the values it sets when there is
    no row (``target_id`` None), an update when some field differs, else nothing."""
    if target_id is None:
        shown = tuple(f for f in fields if f.new not in (None, ""))
        return [Change(kind, "create", name, shown, desired=desired)]
    if not fields:
        return []
    return [Change(kind, "update", name, tuple(fields), target_id=target_id, desired=desired)]
